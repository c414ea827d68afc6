"""The main window: device picker and controls on top, captions in the middle, status below.

The window decides nothing about sessions: it shows what it is given and reports what
the person asked for through signals. Closing it is a request too (`close_requested`):
the app runs its ordered shutdown and then lets the window go with `allow_close()`.
"""

from __future__ import annotations

from typing import ClassVar

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
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
from captioner.ui.device_picker import DevicePicker
from captioner.ui.run_state import RunState
from captioner.ui.status_bar import CaptionStatusBar

__all__ = ["MainWindow", "MessageBanner", "RunState"]


class MessageBanner(QFrame):
    """One message above the captions: what happened, and one thing to do about it."""

    action_triggered = Signal(str)

    _STYLES: ClassVar[dict[str, str]] = {
        "error": "background: #fde8e7; color: #5c1410; border: 1px solid #e8a29d;",
        "info": "background: #fff6d6; color: #4a3b00; border: 1px solid #e6cf7a;",
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
        self._action = ""
        self._kind = ""
        self.hide()

    @property
    def kind(self) -> str:
        """The message's kind ("error" or "info") while one is shown, else empty."""
        return "" if self.isHidden() else self._kind

    def show_message(
        self, text: str, *, kind: str = "error", action: tuple[str, str] | None = None
    ) -> None:
        """`action` is (button text, action id); the id comes back in `action_triggered`."""
        self._kind = kind
        self.setStyleSheet(f"#messageBanner {{ {self._STYLES.get(kind, '')} }}")
        self.text.setText(text)
        if action is None:
            self._action = ""
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
        self.action_triggered.emit(self._action)


class MainWindow(QMainWindow):
    start_requested = Signal()
    stop_requested = Signal()
    mute_toggled = Signal(bool)
    settings_requested = Signal()
    close_requested = Signal()

    def __init__(self, font_size: int = DEFAULT_FONT_SIZE) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Captioner")
        self.resize(960, 620)
        self._may_close = False
        self._run_state = RunState.IDLE

        self.picker = DevicePicker(self)
        self.pane = CaptionPane(self, font_size=font_size)
        self.banner = MessageBanner(self)
        self.status = CaptionStatusBar(self)
        self.setStatusBar(self.status)

        self._make_actions()
        self._make_toolbar()
        self._make_menus()

        central = QWidget(self)
        column = QVBoxLayout(central)
        column.setContentsMargins(8, 6, 8, 0)
        column.setSpacing(6)
        column.addWidget(self.banner)
        self.picker.message.setParent(central)
        self.picker.message.setContentsMargins(4, 0, 4, 0)
        self.picker.message.setStyleSheet("color: #8a5a00;")
        column.addWidget(self.picker.message)
        column.addWidget(self.pane, 1)
        self.setCentralWidget(central)
        self.set_run_state(RunState.IDLE)

    # -- actions --------------------------------------------------------------------------

    def _action(self, text: str, *shortcuts: str, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        keys = ", ".join(
            QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText) for s in shortcuts
        )
        action.setToolTip(f"{tip or text} ({keys})" if keys else tip or text)
        self.addAction(action)
        return action

    def _make_actions(self) -> None:
        self.start_action = self._action("Start", "Ctrl+R", tip="Start or stop captioning")
        self.start_action.setObjectName("startAction")
        self.start_action.triggered.connect(self._on_start_action_triggered)
        self.mute_action = self._action(
            "Mute", "Ctrl+M", tip="Stop sending audio; the connection stays open"
        )
        self.mute_action.setObjectName("muteAction")
        self.mute_action.setCheckable(True)
        self.mute_action.toggled.connect(self._on_mute_action_toggled)
        self._on_mute_action_toggled(False, announce=False)
        self.clear_action = self._action("Clear", "Ctrl+L", tip="Clear the captions")
        self.clear_action.setObjectName("clearAction")
        self.clear_action.triggered.connect(self._on_clear_action_triggered)
        self.copy_action = self._action("Copy all", "Ctrl+Shift+C", tip="Copy every caption")
        self.copy_action.setObjectName("copyAllAction")
        self.copy_action.triggered.connect(self._on_copy_action_triggered)
        self.zoom_in_action = self._action("Larger text", "Ctrl++", "Ctrl+=")
        self.zoom_in_action.triggered.connect(self.pane.zoom_in)
        self.zoom_out_action = self._action("Smaller text", "Ctrl+-")
        self.zoom_out_action.triggered.connect(self.pane.zoom_out)
        self.zoom_reset_action = self._action("Normal text size", "Ctrl+0")
        self.zoom_reset_action.triggered.connect(self.pane.reset_zoom)
        self.jump_action = self._action("Jump to latest", "Ctrl+End")
        self.jump_action.triggered.connect(self.pane.jump_to_latest)
        self.settings_action = self._action("Settings…", "Ctrl+,")
        self.settings_action.setObjectName("settingsAction")
        self.settings_action.triggered.connect(self.settings_requested)
        self.quit_action = self._action("Quit", "Ctrl+Q")
        self.quit_action.triggered.connect(self.close)

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
        spacer = QWidget(bar)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
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
        app_menu = menus.addMenu("&Captioner")
        app_menu.addAction(self.settings_action)
        app_menu.addSeparator()
        app_menu.addAction(self.quit_action)
        captions = menus.addMenu("C&aptions")
        for action in (self.start_action, self.mute_action, self.clear_action, self.copy_action):
            captions.addAction(action)
        view = menus.addMenu("&View")
        for action in (
            self.zoom_in_action,
            self.zoom_out_action,
            self.zoom_reset_action,
            self.jump_action,
        ):
            view.addAction(action)

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

    def _on_copy_action_triggered(self) -> None:
        text = self.pane.copy_all()
        self.status.showMessage(f"Copied {len(text):,} characters", 4000)

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
