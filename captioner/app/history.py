"""File > History (Ctrl+H): past sessions listed, searched, opened, exported, deleted and, for
one that crashed, restored into the window. The index is read and changed on worker threads
(each call opens its own connection: SQLite's are per thread); the dialog gets the results.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from PySide6.QtWidgets import QFileDialog, QMessageBox

from captioner import history, journal
from captioner.app.notify import Notifier
from captioner.app.restore import RestoreController
from captioner.app.tasks import TaskKeeper
from captioner.core.exports import render
from captioner.history import HistoryError, SessionSummary
from captioner.journal import ExportTarget, check_target, write_atomic
from captioner.ui.export_dialog import export_target, make_export_dialog
from captioner.ui.history_dialog import HistoryDialog, SessionViewer
from captioner.ui.preferences import PreferencesStore
from captioner.ui.window import MainWindow

__all__ = ["HistoryController"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class HistoryController:
    def __init__(
        self,
        window: MainWindow,
        *,
        store: PreferencesStore,
        notifier: Notifier,
        tasks: TaskKeeper,
        restore: RestoreController,
        folder: Path | None = None,
    ) -> None:
        self.window = window
        self.store = store
        self.notifier = notifier
        self.tasks = tasks
        self.restorer = restore
        self.folder = folder
        """The journal folder (None: the user's)."""
        self.dialog: HistoryDialog | None = None
        self.viewers: list[SessionViewer] = []
        self.export_dialog: QFileDialog | None = None
        self.confirm: QMessageBox | None = None
        self._generation = 0
        self._one_at_a_time = asyncio.Lock()
        """Index work runs one call at a time: a search typed while the first look at a
        big folder builds the index waits for it instead of fighting over SQLite's lock."""
        window.history_requested.connect(self.open)

    def open(self) -> HistoryDialog:
        dialog = self.dialog
        if dialog is None:
            dialog = self.dialog = HistoryDialog(self.window)
            dialog.search_changed.connect(self.search)
            dialog.open_requested.connect(self.view)
            dialog.export_requested.connect(self.export)
            dialog.delete_requested.connect(self.ask_delete)
            dialog.restore_requested.connect(self.restore)
        dialog.show()
        dialog.raise_()
        dialog.search.setFocus()
        # the first look at a big journal folder builds the index (seconds for a year of it)
        dialog.show_problem("Reading the sessions…")
        self.search(dialog.query())
        return dialog

    def close(self) -> None:
        for widget in (self.dialog, self.export_dialog, self.confirm, *self.viewers):
            if widget is not None:
                widget.close()

    # -- reading --------------------------------------------------------------------------

    def search(self, query: str) -> asyncio.Task[None]:
        """The list, or the lines matching `query`; a newer request wins over an older one."""
        self._generation += 1
        return self.tasks.spawn(self._search(query, self._generation), "history search")

    async def _search(self, query: str, generation: int) -> None:
        try:
            if query:
                hits = await self._in_thread(lambda h: h.search(query))
                if generation == self._generation and self.dialog is not None:
                    self.dialog.show_hits(query, hits)
            else:
                sessions = await self._in_thread(lambda h: h.sessions())
                if generation == self._generation and self.dialog is not None:
                    self.dialog.show_sessions(sessions)
        except HistoryError as exc:
            if self.dialog is not None:
                self.dialog.show_problem(f"The history cannot be read: {exc}")

    async def _in_thread(self, action: Callable[[history.History], T]) -> T:
        folder = self.folder

        def run() -> T:
            with history.opened(folder) as past:
                return action(past)

        async with self._one_at_a_time:
            return await asyncio.to_thread(run)

    def view(self, session: SessionSummary) -> asyncio.Task[SessionViewer | None]:
        return self.tasks.spawn(self._view(session), "history open")

    async def _view(self, session: SessionSummary) -> SessionViewer | None:
        try:
            utterances = await self._in_thread(lambda h: h.utterances(session))
        except HistoryError as exc:
            self.notifier.error(f"Could not open the session: {exc}")
            return None
        query = self.dialog.query() if self.dialog is not None else ""
        viewer = SessionViewer(session, utterances, query, self.dialog or self.window)
        viewer.finished.connect(lambda _r: self._forget_viewer(viewer))
        self.viewers.append(viewer)
        viewer.show()
        return viewer

    def _forget_viewer(self, viewer: SessionViewer) -> None:
        if viewer in self.viewers:
            self.viewers.remove(viewer)
        viewer.deleteLater()

    # -- changing -------------------------------------------------------------------------

    def export(self, session: SessionSummary) -> QFileDialog:
        folder = self.store.export_folder() or Path.home()
        when = session.started or datetime.now()
        stem = f"captions-{when:%Y-%m-%d-%H%M}"
        dialog = make_export_dialog(
            self.dialog or self.window, folder, self.store.export_format(), stem
        )

        def on_file_selected(path: str) -> None:
            fmt, target = export_target(path, dialog.selectedNameFilter())
            self.export_to(session, target, fmt)

        dialog.fileSelected.connect(on_file_selected)
        self.export_dialog = dialog
        dialog.open()
        return dialog

    def export_to(self, session: SessionSummary, path: Path, fmt: str) -> asyncio.Task[bool]:
        return self.tasks.spawn(self._export(session, path, fmt), "history export")

    async def _export(self, session: SessionSummary, path: Path, fmt: str) -> bool:
        info: dict[str, object] = {
            "started": session.started.isoformat() if session.started else None,
            "engine": session.engine,
            "source": session.source,
        }
        try:
            contents = await self._in_thread(lambda h: h.contents(session))
            if contents.voices.by_channel:
                info["channel_names"] = list(contents.voices.channel_names)
            problem = await asyncio.to_thread(check_target, ExportTarget(fmt, path))
            if problem is None:
                text = render(fmt, contents.utterances, info=info, speaker_colours=True)
                await asyncio.to_thread(write_atomic, path, text)
        except HistoryError as exc:
            problem = str(exc)
        except OSError as exc:
            problem = exc.strerror or str(exc)
        if problem is not None:
            self.notifier.error(f"Could not export to {path}: {problem}.")
            return False
        self.store.save_export_choice(path.parent, fmt)
        self.notifier.note(f"Exported the session of {session.describe()} to {path}", 8)
        return True

    def ask_delete(self, session: SessionSummary) -> QMessageBox:
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Delete this session?",
            f"The session of {session.describe()} ({session.lines} lines) will be deleted "
            "from this computer. This cannot be undone.",
            QMessageBox.StandardButton.Cancel,
            self.dialog or self.window,
        )
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def on_finished(_result: int) -> None:
            if box.clickedButton() is delete:
                self.delete(session)

        box.finished.connect(on_finished)
        self.confirm = box
        box.open()
        return box

    def delete(self, session: SessionSummary) -> asyncio.Task[bool]:
        return self.tasks.spawn(self._delete(session), "history delete")

    async def _delete(self, session: SessionSummary) -> bool:
        try:
            await self._in_thread(lambda h: h.delete(session))
        except HistoryError as exc:
            self.notifier.error(f"Could not delete the session: {exc}")
            return False
        self.notifier.note(f"Deleted the session of {session.describe()}.", 6)
        if self.dialog is not None:
            await self.search(self.dialog.query())
        return True

    def restore(self, session: SessionSummary) -> asyncio.Task[int]:
        """A session that crashed: its lines back into the window, as the launch offer does."""
        info = journal.JournalInfo(
            path=session.path,
            id=session.id,
            started=session.started,
            engine=session.engine,
            source=session.source,
            count=session.lines,
            finished=False,
        )
        task = self.restorer.restore_journal(info)
        task.add_done_callback(lambda _t: self.search(self.dialog.query() if self.dialog else ""))
        return task
