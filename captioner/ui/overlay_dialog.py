"""The overlay's settings: every change shows on the overlay at once; Cancel takes it back.

Opened with `open()` (no nested event loop under qasync), like the colour pickers it opens.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFontComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from captioner.ui.preferences import (
    OVERLAY_MAX_FONT,
    OVERLAY_MAX_LINES,
    OVERLAY_MAX_SILENCE,
    OVERLAY_MIN_FONT,
    OVERLAY_MIN_LINES,
    OVERLAY_MIN_SILENCE,
    AfterSilence,
    OverlayLook,
)

__all__ = ["ColourButton", "OverlayDialog"]


class ColourButton(QPushButton):
    """A button showing a colour; pressing it opens a colour picker (with `open()`)."""

    colour_changed = Signal(str)

    def __init__(self, colour: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = title
        self._colour = ""
        self._picker: QColorDialog | None = None
        self.clicked.connect(self._on_clicked)
        self.set_colour(colour)

    @property
    def colour(self) -> str:
        return self._colour

    def set_colour(self, colour: str) -> None:
        colour = QColor(colour).name()
        if colour == self._colour:
            return
        self._colour = colour
        swatch = QPixmap(18, 18)
        swatch.fill(QColor(colour))
        self.setIcon(QIcon(swatch))
        self.setText(colour)
        self.setAccessibleName(f"{self._title}: {colour}")
        self.colour_changed.emit(colour)

    def _on_clicked(self) -> None:
        picker = QColorDialog(QColor(self._colour), self)
        picker.setWindowTitle(self._title)
        picker.colorSelected.connect(self._on_picker_color_selected)
        picker.finished.connect(picker.deleteLater)
        self._picker = picker
        picker.open()

    def _on_picker_color_selected(self, colour: QColor) -> None:
        self.set_colour(colour.name())


def _percent_slider(value: int, low: int, name: str) -> tuple[QSlider, QLabel]:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setObjectName(name)
    slider.setRange(low, 100)
    slider.setSingleStep(5)
    slider.setPageStep(10)
    slider.setValue(value)
    shown = QLabel(f"{value} %")
    shown.setMinimumWidth(48)
    slider.valueChanged.connect(lambda v: shown.setText(f"{v} %"))
    return slider, shown


class OverlayDialog(QDialog):
    look_changed = Signal(object)
    """An `OverlayLook` to preview (also the original one again on Cancel)."""
    saved = Signal(object)
    """The `OverlayLook` to keep, on Save."""

    def __init__(
        self, look: OverlayLook, platform_note: str | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("overlayDialog")
        self.setWindowTitle("Caption overlay")
        self._original = look
        self._look = look
        self._filling = False

        self.lines_spin = QSpinBox()
        self.lines_spin.setObjectName("overlayLines")
        self.lines_spin.setRange(OVERLAY_MIN_LINES, OVERLAY_MAX_LINES)
        self.font_combo = QFontComboBox()
        self.font_combo.setObjectName("overlayFont")
        self.size_spin = QSpinBox()
        self.size_spin.setObjectName("overlaySize")
        self.size_spin.setRange(OVERLAY_MIN_FONT, OVERLAY_MAX_FONT)
        self.size_spin.setSuffix(" pt")
        self.bold_check = QCheckBox("Bold")
        self.bold_check.setObjectName("overlayBold")
        self.text_colour = ColourButton(look.text_colour, "Text colour")
        self.text_colour.setObjectName("overlayTextColour")
        self.text_opacity, text_opacity_shown = _percent_slider(
            look.text_opacity, 10, "overlayTextOpacity"
        )
        self.background_colour = ColourButton(look.background_colour, "Background colour")
        self.background_colour.setObjectName("overlayBackgroundColour")
        self.background_opacity, background_opacity_shown = _percent_slider(
            look.background_opacity, 0, "overlayBackgroundOpacity"
        )
        self.click_through_check = QCheckBox(
            "Click-through: the mouse reaches the windows below (Ctrl+Shift+K switches it)"
        )
        self.click_through_check.setObjectName("overlayClickThrough")
        self.silence_combo = QComboBox()
        self.silence_combo.setObjectName("overlayAfterSilence")
        for mode in AfterSilence:
            self.silence_combo.addItem(mode.label, mode.value)
        self.silence_spin = QSpinBox()
        self.silence_spin.setObjectName("overlaySilenceSeconds")
        self.silence_spin.setRange(OVERLAY_MIN_SILENCE, OVERLAY_MAX_SILENCE)
        self.silence_spin.setSuffix(" s")
        self.outline_note = QLabel(
            "At 20 % or less the text gets an outline, so it reads over anything."
        )
        self.outline_note.setWordWrap(True)
        self.platform_note = QLabel(platform_note or "")
        self.platform_note.setObjectName("overlayPlatformNote")
        self.platform_note.setWordWrap(True)
        self.platform_note.setVisible(bool(platform_note))

        def row(*widgets: QWidget) -> QWidget:
            holder = QWidget()
            layout = QHBoxLayout(holder)
            layout.setContentsMargins(0, 0, 0, 0)
            for widget in widgets:
                layout.addWidget(widget)
            return holder

        yellow = QPushButton("Yellow")
        yellow.clicked.connect(lambda: self.text_colour.set_colour("#ffff00"))
        white = QPushButton("White")
        white.clicked.connect(lambda: self.text_colour.set_colour("#ffffff"))
        form = QFormLayout()

        def add(label: str, field: QWidget, buddy: QWidget) -> None:
            text = QLabel(label)
            text.setBuddy(buddy)  # Alt + the underlined letter goes to the control itself
            form.addRow(text, field)

        add("&Lines", self.lines_spin, self.lines_spin)
        add("&Font", row(self.font_combo, self.size_spin, self.bold_check), self.font_combo)
        add("&Text colour", row(self.text_colour, white, yellow), self.text_colour)
        add("Text &opacity", row(self.text_opacity, text_opacity_shown), self.text_opacity)
        add("&Background", self.background_colour, self.background_colour)
        add(
            "Background o&pacity",
            row(self.background_opacity, background_opacity_shown),
            self.background_opacity,
        )
        form.addRow("", self.outline_note)
        add(
            "After &silence",
            row(self.silence_combo, QLabel("after"), self.silence_spin),
            self.silence_combo,
        )
        form.addRow("", self.click_through_check)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self.buttons.accepted.connect(self._on_save_clicked)
        self.buttons.rejected.connect(self.reject)
        defaults = self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        defaults.clicked.connect(self._on_defaults_clicked)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.platform_note)
        layout.addWidget(self.buttons)

        self._fill(look)
        for spin in (self.lines_spin, self.size_spin, self.silence_spin):
            spin.valueChanged.connect(self._on_field_changed)
        for slider in (self.text_opacity, self.background_opacity):
            slider.valueChanged.connect(self._on_field_changed)
        for check in (self.bold_check, self.click_through_check):
            check.toggled.connect(self._on_field_changed)
        for button in (self.text_colour, self.background_colour):
            button.colour_changed.connect(self._on_field_changed)
        self.font_combo.currentFontChanged.connect(self._on_field_changed)
        self.silence_combo.currentIndexChanged.connect(self._on_field_changed)
        self.rejected.connect(self._on_rejected)

    @property
    def look(self) -> OverlayLook:
        """The look as the form shows it now."""
        return self._look

    def _fill(self, look: OverlayLook) -> None:
        self._filling = True
        try:
            self.lines_spin.setValue(look.lines)
            family = look.font_family or QFont().family()
            self.font_combo.setCurrentFont(QFont(family))
            self.size_spin.setValue(look.font_size)
            self.bold_check.setChecked(look.bold)
            self.text_colour.set_colour(look.text_colour)
            self.text_opacity.setValue(look.text_opacity)
            self.background_colour.set_colour(look.background_colour)
            self.background_opacity.setValue(look.background_opacity)
            self.click_through_check.setChecked(look.click_through)
            self.silence_combo.setCurrentIndex(list(AfterSilence).index(look.after_silence))
            self.silence_spin.setValue(look.silence_seconds)
        finally:
            self._filling = False
        self._look = look

    def _read(self) -> OverlayLook:
        family = self.font_combo.currentFont().family()
        return dataclasses.replace(
            self._look,
            lines=self.lines_spin.value(),
            font_family="" if family == QFont().family() and not self._look.font_family else family,
            font_size=self.size_spin.value(),
            bold=self.bold_check.isChecked(),
            text_colour=self.text_colour.colour,
            text_opacity=self.text_opacity.value(),
            background_colour=self.background_colour.colour,
            background_opacity=self.background_opacity.value(),
            click_through=self.click_through_check.isChecked(),
            after_silence=AfterSilence(str(self.silence_combo.currentData())),
            silence_seconds=self.silence_spin.value(),
        ).normalised()

    def _on_field_changed(self, *_args: object) -> None:
        if self._filling:
            return
        look = self._read()
        if look != self._look:
            self._look = look
            self.outline_note.setEnabled(look.outlined)
            self.look_changed.emit(look)

    def _on_defaults_clicked(self) -> None:
        self._fill(OverlayLook())
        self.look_changed.emit(self._look)

    def _on_save_clicked(self) -> None:
        self.saved.emit(self._look)
        self.accept()

    def _on_rejected(self) -> None:
        if self._look != self._original:
            self._look = self._original
            self.look_changed.emit(self._original)
