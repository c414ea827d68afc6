"""History (Ctrl+H): past sessions, newest first, with a search across all of them.

The dialog only shows and asks; `captioner.app.history.HistoryController` reads the index
off the GUI thread and feeds it plain values. Opened with `open()` / `show()`, never
`exec()` (no nested event loop under qasync).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QTimer, Signal, SignalInstance
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from captioner.core.captions import Committed, Utterance
from captioner.core.exports import clock
from captioner.history import HIT_END, HIT_START, SearchHit, SessionSummary, duration_text
from captioner.ui.caption_pane import CaptionPane

__all__ = ["HistoryDialog", "SessionViewer"]

SEARCH_DELAY_MS = 250
_STATES = {
    "unfinished": "Ended without finishing",
    "restored": "Restored",
    "recording": "Recording now",
    "finished": "",
}


class HistoryDialog(QDialog):
    search_changed = Signal(str)
    open_requested = Signal(object)
    """A `SessionSummary` (and the search, for the viewer to highlight)."""
    export_requested = Signal(object)
    delete_requested = Signal(object)
    restore_requested = Signal(object)

    COLUMNS = ("Date", "Duration", "Device", "Engine", "Lines", "First words")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("historyDialog")
        self.setWindowTitle("History")
        self.resize(980, 560)
        self.search = QLineEdit(self)
        self.search.setObjectName("historySearch")
        self.search.setPlaceholderText("Search every session")
        self.search.setClearButtonEnabled(True)
        self.status = QLabel("", self)
        self.status.setObjectName("historyStatus")
        self.table = QTreeWidget(self)
        self.table.setObjectName("historyTable")
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(True)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setHeaderLabels(list(self.COLUMNS))
        header = self.table.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.open_button = QPushButton("Open", self)
        self.open_button.setObjectName("historyOpen")
        self.export_button = QPushButton("Export…", self)
        self.export_button.setObjectName("historyExport")
        self.restore_button = QPushButton("Restore into the window", self)
        self.restore_button.setObjectName("historyRestore")
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.setObjectName("historyDelete")
        self.close_button = QPushButton("Close", self)
        buttons = QHBoxLayout()
        for button in (self.open_button, self.export_button, self.restore_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.delete_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        self._sessions: list[SessionSummary] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SEARCH_DELAY_MS)
        self._timer.timeout.connect(self._on_search_timer)
        self.search.textChanged.connect(self._on_search_text_changed)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemActivated.connect(self._on_item_activated)
        self.open_button.clicked.connect(lambda: self._emit(self.open_requested))
        self.export_button.clicked.connect(lambda: self._emit(self.export_requested))
        self.delete_button.clicked.connect(lambda: self._emit(self.delete_requested))
        self.restore_button.clicked.connect(lambda: self._emit(self.restore_requested))
        self.close_button.clicked.connect(self.reject)
        self._update_buttons()

    # -- what the controller shows ----------------------------------------------------------

    def show_sessions(self, sessions: list[SessionSummary]) -> None:
        self._sessions = sessions
        self.table.clear()
        self.table.setHeaderLabels(list(self.COLUMNS))
        for session in sessions:
            self.table.addTopLevelItem(self._row(session, session.first_words))
        total = sum(s.duration for s in sessions)
        self.status.setText(
            f"{len(sessions)} session{'' if len(sessions) == 1 else 's'}, "
            f"{duration_text(total)} in all"
            if sessions
            else "No sessions yet: each captioning session is kept here once it has a line."
        )
        self._select_first()

    def show_hits(self, query: str, hits: list[SearchHit]) -> None:
        """One row per matching line, the line's words in bold."""
        self.table.clear()
        self.table.setHeaderLabels([*self.COLUMNS[:-1], "Matching line"])
        for hit in hits:
            item = self._row(hit.session, "")
            label = QLabel(f"<tt>{clock(hit.start)}</tt>&nbsp; {_marked(hit.snippet)}", self.table)
            label.setTextFormat(Qt.TextFormat.RichText)
            item.setData(5, Qt.ItemDataRole.UserRole + 1, hit.start)
            item.setToolTip(5, hit.snippet.replace(HIT_START, "").replace(HIT_END, ""))
            self.table.addTopLevelItem(item)
            self.table.setItemWidget(item, 5, label)
        sessions = len({hit.session.id for hit in hits})
        self.status.setText(
            f"“{query}”: {len(hits)} line{'' if len(hits) == 1 else 's'} in {sessions} "
            f"session{'' if sessions == 1 else 's'}"
            if hits
            else f"“{query}”: nothing found"
        )
        self._select_first()

    def show_problem(self, text: str) -> None:
        self.status.setText(text)

    def selected(self) -> SessionSummary | None:
        items = self.table.selectedItems()
        if not items:
            return None
        session = items[0].data(0, Qt.ItemDataRole.UserRole)
        return session if isinstance(session, SessionSummary) else None

    def query(self) -> str:
        return self.search.text().strip()

    # -- internals ------------------------------------------------------------------------

    def _row(self, session: SessionSummary, last: str) -> QTreeWidgetItem:
        when = session.started.strftime("%a %d %b %Y, %H:%M") if session.started else "?"
        state = _STATES.get(session.state, "")
        item = QTreeWidgetItem(
            [
                when,
                duration_text(session.duration),
                session.source,
                session.engine,
                str(session.lines),
                f"[{state}] {last}" if state and last else last,
            ]
        )
        item.setData(0, Qt.ItemDataRole.UserRole, session)
        item.setTextAlignment(4, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if state:
            item.setToolTip(0, state)
        return item

    def _select_first(self) -> None:
        first = self.table.topLevelItem(0)
        if first is not None:
            self.table.setCurrentItem(first)
        self._update_buttons()

    def _update_buttons(self) -> None:
        session = self.selected()
        for button in (self.open_button, self.export_button, self.delete_button):
            button.setEnabled(session is not None)
        self.restore_button.setEnabled(session is not None and session.state == "unfinished")
        if session is not None and session.state == "recording":
            self.delete_button.setEnabled(False)

    def _emit(self, signal: SignalInstance) -> None:
        session = self.selected()
        if session is not None:
            signal.emit(session)

    def _on_item_activated(self, _item: QTreeWidgetItem, _column: int) -> None:
        self._emit(self.open_requested)

    def _on_search_text_changed(self, _text: str) -> None:
        self._timer.start()

    def _on_search_timer(self) -> None:
        self.search_changed.emit(self.query())


def _marked(snippet: str) -> str:
    text = html.escape(snippet)
    return text.replace(HIT_START, "<b>").replace(HIT_END, "</b>")


class SessionViewer(QDialog):
    """One past session, read-only, with its times; the search's words highlighted."""

    def __init__(
        self,
        session: SessionSummary,
        utterances: list[Utterance],
        query: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("sessionViewer")
        self.setWindowTitle(f"Session of {session.describe()}")
        self.resize(820, 560)
        self.pane = CaptionPane(self)
        self.pane.set_timestamps(True)
        self.pane.apply([Committed(u) for u in utterances])
        heading = QLabel(
            f"{session.describe()} · {session.lines} line{'' if session.lines == 1 else 's'}"
            + (f" · {_STATES[session.state]}" if _STATES.get(session.state) else ""),
            self,
        )
        heading.setObjectName("viewerHeading")
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.pane, 1)
        close = QPushButton("Close", self)
        close.clicked.connect(self.accept)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(close)
        layout.addLayout(row)
        if query:
            self.pane.find_text(query.split()[0])
        else:
            self.pane.view.moveCursor(self.pane.view.textCursor().MoveOperation.Start)
