"""What a crash left: journals of sessions that never finished, offered back at launch.

The offer is a bar above the captions, never a modal dialog: captioning can start at once.
"""

from __future__ import annotations

import asyncio
import logging

from captioner import journal
from captioner.app.notify import Notifier
from captioner.app.tasks import TaskKeeper
from captioner.core.captions import Committed
from captioner.journal import JournalInfo
from captioner.transcript import Transcript
from captioner.ui.announcer import Announcer
from captioner.ui.window import MainWindow

__all__ = ["RestoreController"]

log = logging.getLogger(__name__)


class RestoreController:
    def __init__(
        self,
        window: MainWindow,
        *,
        transcript: Transcript,
        announcer: Announcer,
        notifier: Notifier,
        tasks: TaskKeeper,
    ) -> None:
        self.window = window
        self.transcript = transcript
        self.announcer = announcer
        self.notifier = notifier
        self.tasks = tasks
        self.unfinished: list[JournalInfo] = []
        """Journals of earlier sessions that ended without finishing, offered for restoring."""
        self.closing = False
        self._task: asyncio.Task[int] | None = None
        window.restore_requested.connect(self.restore)
        window.restore_bar.restore_clicked.connect(self.restore)
        window.restore_bar.delete_clicked.connect(self.delete)

    async def offer(self) -> None:
        """Say so when earlier sessions ended without finishing (non-modal)."""
        found = await asyncio.to_thread(journal.find_unfinished)
        self.unfinished = [i for i in found if i.count]
        if not self.unfinished or self.closing:
            return
        lines = sum(i.count for i in self.unfinished)
        newest = self.unfinished[-1]
        if len(self.unfinished) == 1:
            what = f"The session of {newest.describe()} ended without finishing."
            ask = f"Restore its {lines} line{'' if lines == 1 else 's'} into the window?"
        else:
            what = (
                f"{len(self.unfinished)} earlier sessions ended without finishing "
                f"({lines} lines; the newest: {newest.describe()})."
            )
            ask = "Restore them into the window?"
        self.window.restore_bar.offer(f"{what} {ask}")

    def restore(self) -> asyncio.Task[int]:
        """Put the unfinished journals' lines back in the window; returns how many.

        A second press while one restore runs joins it (the lines come back once).
        """
        if self._task is None or self._task.done():
            self._task = self.tasks.spawn(self._restore(), "restore")
        return self._task

    def restore_journal(self, info: JournalInfo) -> asyncio.Task[int]:
        """Put one unfinished journal's lines back in the window (History's Restore)."""
        self.unfinished = [i for i in self.unfinished if i.path != info.path]
        if not self.unfinished:
            self.window.restore_bar.hide()
        return self.tasks.spawn(self._restore_infos([info]), "restore")

    def delete(self) -> asyncio.Task[int]:
        return self.tasks.spawn(self._delete(), "delete journals")

    async def _restore(self) -> int:
        if not self.unfinished:
            await self.offer()
        if not self.unfinished:
            self.notifier.note("No unfinished session to restore.", 5)
            return 0
        infos, self.unfinished = self.unfinished, []
        self.window.restore_bar.hide()
        return await self._restore_infos(infos)

    async def _restore_infos(self, infos: list[JournalInfo]) -> int:
        restored = 0
        for info in infos:
            try:
                contents = await asyncio.to_thread(journal.read, info.path)
            except journal.JournalError as exc:
                self.notifier.error(f"Could not restore: {exc}")
                continue
            placed = self.transcript.restore(
                contents.utterances, engine=info.engine, source=info.source
            )
            self.window.pane.apply([Committed(u) for u in placed])
            restored += len(placed)
            try:
                await asyncio.to_thread(journal.mark_restored, info.path)
            except OSError as exc:
                log.warning("could not mark %s as restored: %s", info.path, exc)
        problem = self.transcript.take_problem()
        if problem:
            self.notifier.error(problem)
        text = (
            f"Restored {restored} line{'' if restored == 1 else 's'} from the unfinished session."
        )
        self.notifier.note(text, 8)
        self.announcer.announce(text)
        return restored

    async def _delete(self) -> int:
        infos, self.unfinished = self.unfinished, []
        self.window.restore_bar.hide()
        deleted = 0
        for info in infos:
            try:
                await asyncio.to_thread(journal.discard, info.path)
                deleted += 1
            except OSError as exc:
                self.notifier.error(f"Could not delete {info.path}: {exc.strerror or exc}")
        self.notifier.note(f"Deleted {deleted} unfinished journal{'' if deleted == 1 else 's'}.", 5)
        return deleted
