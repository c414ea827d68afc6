"""The main window: device picker and controls on top, captions in the middle, status below.

The window decides nothing about sessions: it shows what it is given and reports what
the person asked for through signals. Closing it is a request too (`close_requested`):
the app runs its ordered shutdown and then lets the window go with `allow_close()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeAlias

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSizePolicy,
    QStyle,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from captioner.ui.caption_pane import DEFAULT_FONT_SIZE, CaptionPane
from captioner.ui.device_picker import CallRow, DevicePicker
from captioner.ui.find_bar import FindBar
from captioner.ui.help_dialog import ShortcutsDialog
from captioner.ui.preferences import Theme
from captioner.ui.run_state import RunState
from captioner.ui.status_bar import CaptionStatusBar

__all__ = ["Action", "MainWindow", "MessageBanner", "RestoreBar", "RunState"]

Action: TypeAlias = tuple[str, Callable[[], object]]
"""A message's one button: its text, and what pressing it does."""


def _boxed(name: str, background: str, text: str, border: str) -> str:
    """A coloured box whose own text and buttons keep their colours whatever the theme."""
    return (
        f"#{name} {{ background: {background}; border: 1px solid {border}; }}"
        f"#{name} QLabel {{ color: {text}; background: transparent; border: none; }}"
        f"#{name} QPushButton {{ color: {text}; background: #ffffff; border: 1px solid {text};"
        " border-radius: 3px; padding: 3px 10px; }"
        f"#{name} QPushButton:focus {{ border: 2px solid {text}; }}"
    )


class MessageBanner(QFrame):
    """One message above the captions: what happened, and one thing to do about it."""

    # (background, text, border): light boxes with dark text, readable in every theme
    _STYLES: ClassVar[dict[str, tuple[str, str, str]]] = {
        "error": ("#fde8e7", "#5c1410", "#e8a29d"),
        "info": ("#fff6d6", "#4a3b00", "#e6cf7a"),
    }

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBanner")
        self.text = QLabel(self)
        self.text.setObjectName("bannerText")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action_button = QPushButton(self)
        self.action_button.setObjectName("bannerAction")
        self.action_button.clicked.connect(self._on_action_clicked)
        self.close_button = QPushButton("Dismiss", self)
        self.close_button.setObjectName("bannerDismiss")
        self.close_button.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.action_button)
        layout.addWidget(self.close_button)
        self._action: Callable[[], object] | None = None
        self._kind = ""
        self.hide()

    @property
    def kind(self) -> str:
        """The message's kind ("error" or "info") while one is shown, else empty."""
        return "" if self.isHidden() else self._kind

    def show_message(self, text: str, *, kind: str = "error", action: Action | None = None) -> None:
        """`action` is (button text, what it does); pressing it dismisses the message first."""
        self._kind = kind
        self.setStyleSheet(_boxed("messageBanner", *self._STYLES.get(kind, self._STYLES["info"])))
        self.text.setText(text)
        if action is None:
            self._action = None
            self.action_button.hide()
        else:
            self.action_button.setText(action[0])
            self._action = action[1]
            self.action_button.show()
        self.show()

    def message(self) -> str:
        return "" if self.isHidden() else self.text.text()

    def dismiss(self) -> None:
        self._kind = ""
        self.hide()

    def _on_action_clicked(self) -> None:
        action = self._action
        self.dismiss()
        if action is not None:
            action()


class RestoreBar(QFrame):
    """The offer to bring back what a crash left unfinished; never in the way of captioning."""

    restore_clicked = Signal()
    delete_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("restoreBar")
        self.setStyleSheet(_boxed("restoreBar", "#e6f0ff", "#0f2a55", "#9fbbe8"))
        self.text = QLabel(self)
        self.text.setObjectName("restoreText")
        self.text.setWordWrap(True)
        self.restore_button = QPushButton("&Restore", self)
        self.restore_button.setObjectName("restoreButton")
        self.restore_button.setToolTip("Put the lost lines back in the window (Ctrl+Shift+R)")
        self.restore_button.clicked.connect(self.restore_clicked)
        self.delete_button = QPushButton("&Delete", self)
        self.delete_button.setObjectName("restoreDelete")
        self.delete_button.setToolTip("Delete the unfinished journal for good")
        self.delete_button.clicked.connect(self.delete_clicked)
        self.later_button = QPushButton("Not now", self)
        self.later_button.setObjectName("restoreLater")
        self.later_button.setToolTip("Offer it again at the next start")
        self.later_button.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.text, 1)
        for button in (self.restore_button, self.delete_button, self.later_button):
            layout.addWidget(button)
        self.hide()

    def offer(self, text: str) -> None:
        self.text.setText(text)
        self.show()

    def message(self) -> str:
        return "" if self.isHidden() else self.text.text()


DEFAULT_SIZE = (960, 620)
"""The window's first size; wider when the toolbar needs it (large text)."""


class MainWindow(QMainWindow):
    start_requested = Signal()
    stop_requested = Signal()
    mute_toggled = Signal(bool)
    settings_requested = Signal()
    close_requested = Signal()
    export_requested = Signal()
    restore_requested = Signal()
    history_requested = Signal()
    overlay_toggled = Signal(bool)
    click_through_toggled = Signal(bool)
    overlay_settings_requested = Signal()
    timestamps_toggled = Signal(bool)
    theme_chosen = Signal(object)
    """A `Theme`."""
    cleared = Signal()
    """The person cleared the captions (the pane is empty already)."""

    def __init__(self, font_size: int = DEFAULT_FONT_SIZE) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Captioner")
        self._may_close = False
        self._run_state = RunState.IDLE
        self._shortcuts: ShortcutsDialog | None = None

        self.picker = DevicePicker(self)
        self.call_row = CallRow(self)
        self.pane = CaptionPane(self, font_size=font_size)
        self.banner = MessageBanner(self)
        self.restore_bar = RestoreBar(self)
        self.status = CaptionStatusBar(self)
        self.setStatusBar(self.status)
        self.find_bar = FindBar(self.pane, self)

        self._make_actions()
        self._make_toolbar()
        self._make_menus()
        self.resize(*DEFAULT_SIZE)
        self._fitted = False

        central = QWidget(self)
        column = QVBoxLayout(central)
        column.setContentsMargins(8, 6, 8, 0)
        column.setSpacing(6)
        column.addWidget(self.banner)
        column.addWidget(self.restore_bar)
        self.picker.message.setParent(central)
        self.picker.message.setContentsMargins(4, 0, 4, 0)
        self._apply_accents()
        column.addWidget(self.picker.message)
        self.call_row.setParent(central)
        self.call_row.hide()
        column.addWidget(self.call_row)
        column.addWidget(self.pane, 1)
        column.addWidget(self.find_bar)
        self.find_bar.closed.connect(self._on_find_bar_closed)
        self.setCentralWidget(central)
        self.set_run_state(RunState.IDLE)

    # -- actions --------------------------------------------------------------------------

    def _action(
        self,
        text: str,
        *shortcuts: str,
        tip: str = "",
        everywhere: bool = False,
        checkable: bool = False,
    ) -> QAction:
        """An action of the window; `everywhere`: its keys work in any Captioner window."""
        action = QAction(text, self)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
            action.setShortcutContext(
                Qt.ShortcutContext.ApplicationShortcut
                if everywhere
                else Qt.ShortcutContext.WindowShortcut
            )
        keys = ", ".join(
            QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText) for s in shortcuts
        )
        action.setToolTip(f"{tip or text} ({keys})" if keys else tip or text)
        action.setStatusTip(tip or text)
        action.setCheckable(checkable)
        self.addAction(action)
        return action

    def _make_actions(self) -> None:
        self.start_action = self._action("Start", "Ctrl+R", tip="Start or stop captioning")
        self.start_action.setObjectName("startAction")
        self.start_action.triggered.connect(self._on_start_action_triggered)
        self.mute_action = self._action(
            "Mute", "Ctrl+M", tip="Stop sending audio; the connection stays open", checkable=True
        )
        self.mute_action.setObjectName("muteAction")
        self.mute_action.toggled.connect(self._on_mute_action_toggled)
        self._on_mute_action_toggled(False, announce=False)
        self.clear_action = self._action("Clear", "Ctrl+L", tip="Clear the captions")
        self.clear_action.setObjectName("clearAction")
        self.clear_action.triggered.connect(self._on_clear_action_triggered)
        self.copy_action = self._action("Copy all", "Ctrl+Shift+C", tip="Copy every caption")
        self.copy_action.setObjectName("copyAllAction")
        self.copy_action.triggered.connect(self._on_copy_action_triggered)
        self.device_action = self._action(
            "Choose the input…", "Ctrl+I", tip="Open the list of microphones and system audio"
        )
        self.device_action.triggered.connect(self._on_device_action_triggered)
        self.find_action = self._action("Find…", "Ctrl+F", tip="Find words in the captions")
        self.find_action.setObjectName("findAction")
        self.find_action.triggered.connect(self.find_bar.open_bar)
        self.find_next_action = self._action("Find next", "F3")
        self.find_next_action.triggered.connect(self.find_bar.next)
        self.find_previous_action = self._action("Find previous", "Shift+F3")
        self.find_previous_action.triggered.connect(self.find_bar.previous)
        self.rescan_action = self._action("Look for devices again", "F5")
        self.rescan_action.triggered.connect(self.picker.rescan_requested)

        self.export_action = self._action(
            "Export…", "Ctrl+E", tip="Save the transcript as text, SRT, WebVTT or JSON"
        )
        self.export_action.setObjectName("exportAction")
        self.export_action.triggered.connect(self.export_requested)
        self.restore_action = self._action(
            "Restore unfinished session",
            "Ctrl+Shift+R",
            tip="Bring back the lines of a session that ended without finishing",
        )
        self.restore_action.setObjectName("restoreAction")
        self.restore_action.triggered.connect(self.restore_requested)
        self.history_action = self._action(
            "History…", "Ctrl+H", tip="Find, open, export or delete earlier sessions"
        )
        self.history_action.setObjectName("historyAction")
        self.history_action.triggered.connect(self.history_requested)
        self.settings_action = self._action("Settings…", "Ctrl+,")
        self.settings_action.setObjectName("settingsAction")
        self.settings_action.triggered.connect(self.settings_requested)
        self.quit_action = self._action("Quit", "Ctrl+Q")
        self.quit_action.triggered.connect(self.close)

        self.zoom_in_action = self._action("Larger text", "Ctrl++", "Ctrl+=")
        self.zoom_in_action.triggered.connect(self.pane.zoom_in)
        self.zoom_out_action = self._action("Smaller text", "Ctrl+-")
        self.zoom_out_action.triggered.connect(self.pane.zoom_out)
        self.zoom_reset_action = self._action("Normal text size", "Ctrl+0")
        self.zoom_reset_action.triggered.connect(self.pane.reset_zoom)
        self.jump_action = self._action("Jump to latest", "Ctrl+End")
        self.jump_action.triggered.connect(self.pane.jump_to_latest)
        self.timestamps_action = self._action(
            "Timestamps",
            "Ctrl+T",
            tip="Show the time at the start of each paragraph",
            checkable=True,
        )
        self.timestamps_action.setObjectName("timestampsAction")
        self.timestamps_action.toggled.connect(self._on_timestamps_action_toggled)
        self.theme_action = self._action(
            "Next theme",
            "Ctrl+Shift+T",
            tip="Switch between following the system, light, dark and high contrast",
        )
        self.theme_action.triggered.connect(self._on_theme_action_triggered)
        self.theme_group = QActionGroup(self)
        self.theme_actions: dict[Theme, QAction] = {}
        for theme in Theme:
            choice = QAction(theme.label, self.theme_group)
            choice.setCheckable(True)
            choice.setData(theme.value)
            choice.triggered.connect(self._on_theme_choice_triggered)
            self.theme_actions[theme] = choice
        self.theme_actions[Theme.SYSTEM].setChecked(True)

        self.overlay_action = self._action(
            "Show overlay",
            "Ctrl+Shift+O",
            tip="Show or hide the subtitle overlay",
            everywhere=True,
            checkable=True,
        )
        self.overlay_action.setObjectName("overlayAction")
        self.overlay_action.setIconText("Overlay")  # the toolbar's shorter label
        self.overlay_action.toggled.connect(self.overlay_toggled)
        self.click_through_action = self._action(
            "Click-through overlay",
            "Ctrl+Shift+K",
            tip="Let the mouse reach the windows below the overlay",
            everywhere=True,
            checkable=True,
        )
        self.click_through_action.setObjectName("clickThroughAction")
        self.click_through_action.toggled.connect(self.click_through_toggled)
        self.overlay_settings_action = self._action(
            "Overlay settings…", "Ctrl+Shift+P", tip="Lines, font, colours, fading", everywhere=True
        )
        self.overlay_settings_action.setObjectName("overlaySettingsAction")
        self.overlay_settings_action.triggered.connect(self.overlay_settings_requested)

        self.help_action = self._action("Keyboard shortcuts", "F1", "Ctrl+?")
        self.help_action.setObjectName("shortcutsAction")
        self.help_action.triggered.connect(self.show_shortcuts)

    def _make_toolbar(self) -> None:
        bar = QToolBar("Controls", self)
        bar.setObjectName("controls")
        bar.setMovable(False)
        bar.setFloatable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.addWidget(self.picker)
        bar.addSeparator()
        bar.addAction(self.start_action)
        bar.addAction(self.mute_action)
        bar.addSeparator()
        bar.addAction(self.clear_action)
        bar.addAction(self.copy_action)
        bar.addAction(self.export_action)
        spacer = QWidget(bar)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        bar.addAction(self.overlay_action)
        smaller = QAction("A−", self)
        smaller.setToolTip(self.zoom_out_action.toolTip())
        smaller.triggered.connect(self.pane.zoom_out)
        larger = QAction("A+", self)
        larger.setToolTip(self.zoom_in_action.toolTip())
        larger.triggered.connect(self.pane.zoom_in)
        bar.addAction(smaller)
        bar.addAction(larger)
        bar.addAction(self.settings_action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.toolbar = bar

    def _make_menus(self) -> None:
        menus = self.menuBar()
        file = menus.addMenu("&File")
        for action in (self.export_action, self.history_action, self.restore_action):
            file.addAction(action)
        file.addSeparator()
        file.addAction(self.settings_action)
        file.addSeparator()
        file.addAction(self.quit_action)
        captions = menus.addMenu("C&aptions")
        for action in (
            self.start_action,
            self.mute_action,
            self.clear_action,
            self.copy_action,
            self.find_action,
            self.find_next_action,
            self.find_previous_action,
            self.device_action,
            self.rescan_action,
        ):
            captions.addAction(action)
        view = menus.addMenu("&View")
        for action in (
            self.zoom_in_action,
            self.zoom_out_action,
            self.zoom_reset_action,
            self.jump_action,
            self.timestamps_action,
        ):
            view.addAction(action)
        view.addSeparator()
        themes = view.addMenu("T&heme")
        themes.addAction(self.theme_action)
        themes.addSeparator()
        for choice in self.theme_actions.values():
            themes.addAction(choice)
        overlay = menus.addMenu("&Overlay")
        for action in (
            self.overlay_action,
            self.click_through_action,
            self.overlay_settings_action,
        ):
            overlay.addAction(action)
        help_menu = menus.addMenu("&Help")
        help_menu.addAction(self.help_action)

    def _on_find_bar_closed(self) -> None:
        self.pane.view.setFocus(Qt.FocusReason.OtherFocusReason)

    def show_shortcuts(self) -> ShortcutsDialog:
        """Help > Keyboard shortcuts (non-modal; a second press brings it forward)."""
        if self._shortcuts is None or not self._shortcuts.isVisible():
            self._shortcuts = ShortcutsDialog(self.menuBar(), self)
            self._shortcuts.show()
        self._shortcuts.raise_()
        self._shortcuts.activateWindow()
        return self._shortcuts

    def set_theme_choice(self, theme: Theme) -> None:
        """Tick the theme in the menu (without announcing a choice)."""
        self.theme_actions[theme].setChecked(True)

    def set_checked_quietly(self, action: QAction, on: bool) -> None:
        """Reflect a state in a checkable action without emitting its signal."""
        action.blockSignals(True)
        action.setChecked(on)
        action.blockSignals(False)

    def _on_theme_choice_triggered(self) -> None:
        checked = self.theme_group.checkedAction()
        if checked is not None:
            self.theme_chosen.emit(Theme(str(checked.data())))

    def _on_theme_action_triggered(self) -> None:
        themes = list(Theme)
        checked = self.theme_group.checkedAction()
        current = Theme(str(checked.data())) if checked is not None else Theme.SYSTEM
        following = themes[(themes.index(current) + 1) % len(themes)]
        self.theme_actions[following].setChecked(True)
        self.status.showMessage(f"Theme: {following.label}", 3000)
        self.theme_chosen.emit(following)

    def _on_timestamps_action_toggled(self, on: bool) -> None:
        self.pane.set_timestamps(on)
        self.timestamps_toggled.emit(on)

    def _on_device_action_triggered(self) -> None:
        combo = self.picker.combo
        combo.setFocus(Qt.FocusReason.ShortcutFocusReason)
        if combo.isEnabled():
            combo.showPopup()

    # -- state ----------------------------------------------------------------------------

    @property
    def run_state(self) -> RunState:
        return self._run_state

    def set_run_state(self, state: RunState) -> None:
        self._run_state = state
        style = self.style()
        if state is RunState.IDLE:
            self.start_action.setText("Start")
            self.start_action.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
            self.start_action.setEnabled(True)
        else:
            self.start_action.setText("Stop")
            self.start_action.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop))
            self.start_action.setEnabled(state is not RunState.STOPPING)
        self.mute_action.setEnabled(state is RunState.RUNNING)
        if state is RunState.IDLE and self.mute_action.isChecked():
            self.mute_action.blockSignals(True)
            self.mute_action.setChecked(False)
            self.mute_action.blockSignals(False)
            self._on_mute_action_toggled(False, announce=False)

    def _on_start_action_triggered(self) -> None:
        if self._run_state is RunState.IDLE:
            self.start_requested.emit()
        else:
            self.stop_requested.emit()

    def _on_mute_action_toggled(self, on: bool, *, announce: bool = True) -> None:
        icon = (
            QStyle.StandardPixmap.SP_MediaVolumeMuted
            if on
            else QStyle.StandardPixmap.SP_MediaVolume
        )
        self.mute_action.setIcon(self.style().standardIcon(icon))
        self.mute_action.setText("Unmute" if on else "Mute")
        if announce:
            self.mute_toggled.emit(on)

    def _on_clear_action_triggered(self) -> None:
        self.pane.clear()
        self.cleared.emit()

    def _on_copy_action_triggered(self) -> None:
        text = self.pane.copy_all()
        self.status.showMessage(f"Copied {len(text):,} characters", 4000)

    def showEvent(self, event: QShowEvent) -> None:
        """The first time, unless a saved size was restored: wide enough for the whole toolbar
        at the text size in use (styled and polished only now), so no button hides behind the
        overflow "»"."""
        if not self._fitted:
            self._fitted = True
            need = self.toolbar.sizeHint().width() + 8
            if self.size().toTuple() == DEFAULT_SIZE and self.width() < need:
                self.resize(need, self.height())
        super().showEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_accents()

    def _apply_accents(self) -> None:
        """Warning colours that stay readable on the theme's background."""
        dark = self.palette().color(QPalette.ColorRole.Window).lightnessF() < 0.5
        self.picker.message.setStyleSheet(f"color: {'#ffc266' if dark else '#8a5a00'};")
        self.status.set_dark(dark)

    # -- closing --------------------------------------------------------------------------

    def allow_close(self) -> None:
        """The app has shut down: the next close really closes."""
        self._may_close = True

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._may_close:
            event.accept()
            return
        event.ignore()
        self.close_requested.emit()
