"""Find in the transcript (Ctrl+F): a bar under the captions, as in a browser.

Typing searches at once; Enter and F3 go to the next (newer) match, Shift+Enter and
Shift+F3 to the previous one; Escape closes the bar and takes the highlights away. The
count says "3 of 12" and follows new captions as they arrive.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from captioner.ui.caption_pane import CaptionPane

__all__ = ["FindBar"]


class FindBar(QWidget):
    closed = Signal()

    def __init__(self, pane: CaptionPane, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("findBar")
        self._pane = pane
        self.edit = QLineEdit(self)
        self.edit.setObjectName("findEdit")
        self.edit.setPlaceholderText("Find in the captions")
        self.edit.setClearButtonEnabled(True)
        self.edit.setAccessibleName("Find in the captions")
        self.count = QLabel("", self)
        self.count.setObjectName("findCount")
        self.count.setMinimumWidth(90)
        self.previous_button = QPushButton("Previous", self)
        self.previous_button.setObjectName("findPrevious")
        self.previous_button.setToolTip("Older match (Shift+Enter, Shift+F3)")
        self.next_button = QPushButton("Next", self)
        self.next_button.setObjectName("findNext")
        self.next_button.setToolTip("Newer match (Enter, F3)")
        self.close_button = QPushButton("Close", self)
        self.close_button.setObjectName("findClose")
        self.close_button.setToolTip("Close (Escape)")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 2, 0, 4)
        row.addWidget(QLabel("Find:", self))
        row.addWidget(self.edit, 1)
        row.addWidget(self.count)
        row.addWidget(self.previous_button)
        row.addWidget(self.next_button)
        row.addWidget(self.close_button)
        self.edit.textChanged.connect(self._on_text_changed)
        self.edit.installEventFilter(self)
        self.previous_button.clicked.connect(self.previous)
        self.next_button.clicked.connect(self.next)
        self.close_button.clicked.connect(self.close_bar)
        pane.matches_changed.connect(self.refresh)
        self.hide()

    def open_bar(self) -> None:
        """Show the bar with its text selected, so typing replaces it; search again."""
        self.show()
        self.edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.edit.selectAll()
        if self.edit.text():
            self._pane.find_text(self.edit.text())
        self.refresh()

    def close_bar(self) -> None:
        self._pane.find_text("")
        self.hide()
        self.closed.emit()

    def next(self) -> None:
        if self.isVisible():
            self._pane.find_next()
            self.refresh()

    def previous(self) -> None:
        if self.isVisible():
            self._pane.find_previous()
            self.refresh()

    def refresh(self) -> None:
        """The count, after a search or when new captions may have matched."""
        total = self._pane.match_count()
        query = self.edit.text()
        if not query:
            self.count.setText("")
        elif total == 0:
            self.count.setText("No matches")
        elif self._pane.current_match() < 0:  # matches arrived after the search found none
            self.count.setText(f"{total} match" if total == 1 else f"{total} matches")
        else:
            self.count.setText(f"{self._pane.current_match() + 1} of {total}")
        self.edit.setStyleSheet(
            "QLineEdit { background: #fde8e7; color: #5c1410; }" if query and not total else ""
        )
        moves = total > 1 or (total == 1 and self._pane.current_match() < 0)
        self.previous_button.setEnabled(moves)
        self.next_button.setEnabled(moves)

    def _on_text_changed(self, text: str) -> None:
        self._pane.find_text(text)
        self.refresh()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.edit and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                    self.previous()
                else:
                    self.next()
                return True
            if key == Qt.Key.Key_Escape:
                self.close_bar()
                return True
        return super().eventFilter(watched, event)
