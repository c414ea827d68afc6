"""The offline model's download, as a person sees it: what it is, how far it has got, how fast,
and a way to stop it. Opened with `open()` (no nested event loop under qasync).

The dialog only shows and asks; `captioner.app.model.ModelDownloadController` runs the
download and feeds it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["ModelDownloadDialog"]

_STEPS = 1000


class ModelDownloadDialog(QDialog):
    """Progress of the model download, with Cancel; after a failure, the reason and Try again."""

    cancel_requested = Signal()
    retry_requested = Signal()

    def __init__(self, size_mb: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelDownloadDialog")
        self.setWindowTitle("Download the offline speech model")
        self.setMinimumWidth(480)
        intro = QLabel(
            "Captioner makes captions on this computer with a speech model (Whisper base, "
            f"about {size_mb} MB). It is downloaded once, checked, and kept for every later "
            "session. Captioning starts as soon as it is ready.",
            self,
        )
        intro.setWordWrap(True)
        self.stage = QLabel("Connecting…", self)
        self.stage.setObjectName("downloadStage")
        self.bar = QProgressBar(self)
        self.bar.setObjectName("downloadBar")
        self.bar.setRange(0, 0)  # busy until the first byte says how much there is
        self.bar.setTextVisible(True)
        self.detail = QLabel("", self)
        self.detail.setObjectName("downloadDetail")
        self.problem = QLabel("", self)
        self.problem.setObjectName("downloadProblem")
        self.problem.setWordWrap(True)
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem.setStyleSheet("color: #a01d14;")
        self.problem.hide()
        self.buttons = QDialogButtonBox(self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("downloadCancel")
        self.retry_button = QPushButton("Try again", self)
        self.retry_button.setObjectName("downloadRetry")
        self.close_button = QPushButton("Close", self)
        self.close_button.setObjectName("downloadClose")
        for button in (self.retry_button, self.cancel_button, self.close_button):
            self.buttons.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.retry_button.clicked.connect(self.retry_requested)
        self.close_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addSpacing(6)
        layout.addWidget(self.stage)
        layout.addWidget(self.bar)
        layout.addWidget(self.detail)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.show_running()

    def show_running(self) -> None:
        self.problem.hide()
        self.stage.setText("Connecting…")
        self.detail.setText("")
        self.bar.setRange(0, 0)
        self.cancel_button.show()
        self.cancel_button.setEnabled(True)
        self.retry_button.hide()
        self.close_button.hide()

    def show_progress(self, stage: str, fraction: float | None, detail: str) -> None:
        """`fraction` in 0..1, or None while the size is unknown."""
        self.stage.setText(stage)
        if fraction is None:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, _STEPS)
            self.bar.setValue(round(max(0.0, min(1.0, fraction)) * _STEPS))
        self.detail.setText(detail)

    def show_cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.stage.setText("Stopping…")

    def show_failure(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.show()
        self.stage.setText("The download stopped.")
        self.bar.setRange(0, _STEPS)
        self.cancel_button.hide()
        self.retry_button.show()
        self.close_button.show()
        self.retry_button.setFocus()

    def reject(self) -> None:
        """Escape or the window's close button: a running download is cancelled, not hidden."""
        if self.cancel_button.isVisible():
            if self.cancel_button.isEnabled():
                self.cancel_requested.emit()
            return
        super().reject()

    def dismiss(self) -> None:
        """Close, whatever state it is in (the controller's call once the download ended)."""
        super().reject()
