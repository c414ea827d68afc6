"""The device picker and the input level meter.

The picker is fed plain `InputDevice` lists (the app reads them from PortAudio), keeps
the person's choice by name and host API (indexes change when devices come and go), and
falls back to the system default, saying so, while the chosen device is away.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from captioner.audio.devices import InputDevice, choose_input_device
from captioner.ui.levels import SILENCE_DBFS, LevelHint

__all__ = ["SYSTEM_AUDIO", "CallRow", "DeviceKey", "DevicePicker", "LevelMeter", "device_key"]

SYSTEM_AUDIO = "system"
"""A call's other side when none was picked: what this computer plays (its default output)."""

DeviceKey = tuple[str, str]
"""(name, host API): how a device is remembered across runs and re-plugs."""

NO_DEVICE_MESSAGE = (
    "No audio input device found. Connect a microphone and check that the audio server "
    "(PulseAudio or PipeWire) is running and that you may record; the list refreshes by itself."
)


def device_key(device: InputDevice) -> DeviceKey:
    return (device.name, device.hostapi)


class LevelMeter(QWidget):
    """A horizontal bar from -60 to 0 dBFS, green to red; grey when nothing is measured."""

    FLOOR_DBFS = -60.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("levelMeter")
        self._dbfs: float | None = None
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setToolTip("Input level")

    def sizeHint(self) -> QSize:
        return QSize(120, 14)

    @property
    def level(self) -> float | None:
        return self._dbfs

    def fraction(self) -> float:
        """How much of the bar is lit, 0..1."""
        if self._dbfs is None or self._dbfs <= SILENCE_DBFS:
            return 0.0
        span = -self.FLOOR_DBFS
        return max(0.0, min(1.0, (self._dbfs - self.FLOOR_DBFS) / span))

    def set_level(self, dbfs: float | None) -> None:
        """None: no measurement (idle). Repaints only when the lit width changes."""
        before = self._lit_width()
        self._dbfs = dbfs
        self.setToolTip("Input level" if dbfs is None else f"Input level {dbfs:.0f} dBFS")
        if self._lit_width() != before or dbfs is None:
            self.update()

    def _lit_width(self) -> int:
        return round(self.fraction() * max(0, self.width() - 2))

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        palette = self.palette()
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.setBrush(palette.color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(rect, 3, 3)
        lit = self._lit_width()
        if lit > 0:
            gradient = QLinearGradient(rect.left(), 0, rect.right(), 0)
            gradient.setColorAt(0.0, QColor("#2e9d44"))
            gradient.setColorAt(0.7, QColor("#2e9d44"))
            gradient.setColorAt(0.85, QColor("#e0b000"))
            gradient.setColorAt(1.0, QColor("#d0342c"))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(gradient)
            painter.drawRoundedRect(QRectF(1.5, 1.5, lit - 1, rect.height() - 2), 2, 2)
        painter.end()


class DevicePicker(QWidget):
    """Input devices by name and host API, the default marked; the level and its hint."""

    device_selected = Signal(object)
    """The person picked a device (an `InputDevice`)."""
    rescan_requested = Signal()
    call_toggled = Signal(bool)
    """The person turned "both sides of a call" on or off."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("devicePicker")
        self._devices: list[InputDevice] = []
        self._wanted: DeviceKey | None = None
        self._current: InputDevice | None = None
        self._filled = False

        self.combo = QComboBox(self)
        self.combo.setObjectName("deviceCombo")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setMinimumContentsLength(24)
        self.combo.setToolTip("The microphone, or the system audio, to caption")
        self.combo.setAccessibleName("Input device")
        self.combo.activated.connect(self._on_combo_activated)
        self.rescan_button = QToolButton(self)
        self.rescan_button.setObjectName("rescanDevices")
        self.rescan_button.setText("⟳")
        self.rescan_button.setToolTip("Look for new devices now")
        self.rescan_button.clicked.connect(self.rescan_requested)
        self.meter = LevelMeter(self)
        self.call_box = QCheckBox("Ca&ll", self)
        self.call_box.setObjectName("callBox")
        self.call_box.setToolTip(
            "Caption both sides of a call: this input and what the computer plays, each labelled"
        )
        self.call_box.setAccessibleName("Both sides of a call")
        self.call_box.toggled.connect(self.call_toggled)
        # The window places the message (no device, level hints) where there is room for it.
        self.message = QLabel(self)
        self.message.setObjectName("deviceMessage")
        self.message.setWordWrap(True)
        self.message.hide()

        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        label = QLabel("&Input", self)
        label.setBuddy(self.combo)
        row.addWidget(label)
        row.addWidget(self.combo, 1)
        row.addWidget(self.rescan_button)
        row.addWidget(self.meter)
        row.addWidget(self.call_box)
        self._hint = LevelHint.NONE
        self._note = ""
        self.set_devices([])

    # -- the list ---------------------------------------------------------------------------

    @property
    def devices(self) -> list[InputDevice]:
        return list(self._devices)

    def current_device(self) -> InputDevice | None:
        return self._current

    @property
    def wanted(self) -> DeviceKey | None:
        """The remembered choice, which may be absent right now."""
        return self._wanted

    def set_wanted(self, key: DeviceKey | None) -> None:
        """Remember a choice (from settings); selected now if present, else when it appears."""
        self._wanted = key
        self._select_best()

    def set_devices(self, devices: Sequence[InputDevice]) -> bool:
        """Replace the list; returns whether another device (not just a new index) is selected.

        The same list again changes nothing on screen, so a periodic rescan never closes
        the drop-down under a person's pointer.
        """
        before = None if self._current is None else device_key(self._current)
        if self._filled and list(devices) == self._devices:
            return False
        self._devices = list(devices)
        self._select_best()
        return (None if self._current is None else device_key(self._current)) != before

    def show_file(self, name: str) -> None:
        """Captioning a file: the list gives way to the file's name."""
        self._devices = []
        self._current = None
        self._filled = False
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(f"File: {name}")
        self.combo.blockSignals(False)
        self.combo.setEnabled(False)
        self.rescan_button.setEnabled(False)
        self._note = ""
        self.message.hide()

    def select_spec(self, spec: str) -> InputDevice:
        """Select by index or part of a name (the --device flag); raises DeviceError."""
        device = choose_input_device(spec, self._devices)
        self._wanted = device_key(device)
        self._select_best()
        return device

    def _select_best(self) -> None:
        chosen: InputDevice | None = None
        note = ""
        if self._wanted is not None:
            chosen = next((d for d in self._devices if device_key(d) == self._wanted), None)
            if chosen is None and self._devices:
                note = f"{self._wanted[0]} is not connected; using the system default."
        if chosen is None:
            chosen = next((d for d in self._devices if d.is_default), None)
        if chosen is None and self._devices:
            chosen = self._devices[0]
        self._current = chosen
        self._note = note
        self._fill_combo()
        self._update_message()

    def _fill_combo(self) -> None:
        self._filled = True
        combo = self.combo
        combo.blockSignals(True)
        try:
            combo.clear()
            if not self._devices:
                combo.addItem("No input device")
                combo.setEnabled(False)
                return
            combo.setEnabled(True)
            for position, device in enumerate(self._devices):
                text = device.label + ("  — system default" if device.is_default else "")
                combo.addItem(text)
                combo.setItemData(position, device.label, Qt.ItemDataRole.ToolTipRole)
                if device is self._current:
                    combo.setCurrentIndex(position)
        finally:
            combo.blockSignals(False)

    def _on_combo_activated(self, position: int) -> None:
        if not 0 <= position < len(self._devices):
            return
        device = self._devices[position]
        self._wanted = device_key(device)
        self._current = device
        self._note = ""
        self._update_message()
        self.device_selected.emit(device)

    # -- the level --------------------------------------------------------------------------

    def set_call(self, on: bool) -> None:
        """Show the call box checked or not, without asking for anything."""
        self.call_box.blockSignals(True)
        self.call_box.setChecked(on)
        self.call_box.blockSignals(False)

    def set_level(self, dbfs: float | None, hint: LevelHint = LevelHint.NONE) -> None:
        self.meter.set_level(dbfs)
        if hint is not self._hint:
            self._hint = hint
            self._update_message()

    @property
    def hint(self) -> LevelHint:
        return self._hint

    def _update_message(self) -> None:
        if not self._devices:
            text = NO_DEVICE_MESSAGE
        else:
            text = " ".join(t for t in (self._note, self._hint.value) if t)
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def message_text(self) -> str:
        return self.message.text() if not self.message.isHidden() else ""


class CallRow(QWidget):
    """A call's other side: which input it is (what this computer plays, unless another is
    picked), and its level; shown under the toolbar while "Call" is on."""

    other_selected = Signal(object)
    """The person picked the other side: an `InputDevice`, or `SYSTEM_AUDIO`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("callRow")
        self._devices: list[InputDevice] = []
        self._wanted: DeviceKey | None = None
        self.combo = QComboBox(self)
        self.combo.setObjectName("otherCombo")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setMinimumContentsLength(24)
        self.combo.setAccessibleName("The other side of the call")
        self.combo.setToolTip("Where the other side of the call comes from")
        self.combo.activated.connect(self._on_activated)
        self.meter = LevelMeter(self)
        self.meter.setAccessibleName("The other side's level")
        self.you_label = QLabel(self)
        self.you_label.setObjectName("callLabels")
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 0, 4, 0)
        label = QLabel("&Other side", self)
        label.setBuddy(self.combo)
        row.addWidget(label)
        row.addWidget(self.combo, 1)
        row.addWidget(self.meter)
        row.addWidget(self.you_label)
        self.set_devices([])

    def set_names(self, you: str, others: str) -> None:
        self.you_label.setText(f"Labelled “{you}” and “{others}”")

    def set_wanted(self, key: DeviceKey | None) -> None:
        self._wanted = key
        self._fill()

    def set_devices(self, devices: Sequence[InputDevice]) -> None:
        if list(devices) == self._devices and self.combo.count():
            return
        self._devices = list(devices)
        self._fill()

    def current(self) -> InputDevice | str:
        """The other side's input, or `SYSTEM_AUDIO` (also while the picked one is away)."""
        if self._wanted is not None:
            found = next((d for d in self._devices if device_key(d) == self._wanted), None)
            if found is not None:
                return found
        return SYSTEM_AUDIO

    def set_level(self, dbfs: float | None) -> None:
        self.meter.set_level(dbfs)

    def _fill(self) -> None:
        combo = self.combo
        combo.blockSignals(True)
        try:
            combo.clear()
            combo.addItem("What this computer plays (system audio)")
            current = self.current()
            for position, device in enumerate(self._devices, 1):
                combo.addItem(device.label)
                if device is current:
                    combo.setCurrentIndex(position)
        finally:
            combo.blockSignals(False)

    def _on_activated(self, position: int) -> None:
        if position == 0:
            self._wanted = None
            self.other_selected.emit(SYSTEM_AUDIO)
        elif 0 < position <= len(self._devices):
            device = self._devices[position - 1]
            self._wanted = device_key(device)
            self.other_selected.emit(device)
