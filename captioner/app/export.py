"""File > Export: the finished lines to SRT, WebVTT, text or JSON, written off the GUI thread."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from captioner.app.notify import Notifier
from captioner.app.tasks import TaskKeeper
from captioner.core.exports import render
from captioner.journal import ExportTarget, check_target, write_atomic
from captioner.transcript import Transcript
from captioner.ui.export_dialog import EXPORT_FILTERS, export_target, make_export_dialog
from captioner.ui.preferences import PreferencesStore
from captioner.ui.window import MainWindow

__all__ = ["ExportController"]


class ExportController:
    def __init__(
        self,
        window: MainWindow,
        *,
        transcript: Transcript,
        store: PreferencesStore,
        notifier: Notifier,
        tasks: TaskKeeper,
    ) -> None:
        self.window = window
        self.transcript = transcript
        self.store = store
        self.notifier = notifier
        self.tasks = tasks
        self.dialog: QFileDialog | None = None
        window.export_requested.connect(self.open)

    def open(self) -> QFileDialog | None:
        """A save dialog (opened with `open()`, not a nested loop); None when there is nothing."""
        if not self.transcript.utterances:
            self.notifier.note(
                "Nothing to export yet: finished lines are exported, and none has arrived."
            )
            return None
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            return self.dialog
        folder = self.store.export_folder() or Path.home()
        stem = f"captions-{datetime.now():%Y-%m-%d-%H%M}"
        dialog = make_export_dialog(self.window, folder, self.store.export_format(), stem)

        def on_file_selected(path: str) -> None:
            fmt, target = export_target(path, dialog.selectedNameFilter())
            self.export_to(target, fmt)

        dialog.fileSelected.connect(on_file_selected)
        dialog.finished.connect(self._on_dialog_finished)
        self.dialog = dialog
        dialog.open()
        return dialog

    def export_to(self, path: Path, fmt: str) -> asyncio.Task[bool]:
        """Write the transcript shown (finished lines) to `path` as `fmt`, off the GUI thread."""
        return self.tasks.spawn(self._export(path, fmt), "export")

    def _on_dialog_finished(self, _result: int) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is not None:
            dialog.deleteLater()

    async def _export(self, path: Path, fmt: str) -> bool:
        utterances = list(self.transcript.utterances)
        info = self.transcript.export_info()

        def write() -> None:
            # as `listen --export` writes it, with each speaker's subtitles in their colour
            write_atomic(path, render(fmt, utterances, info=info, speaker_colours=True))

        problem = await asyncio.to_thread(check_target, ExportTarget(fmt, path))
        if problem is None:
            try:
                await asyncio.to_thread(write)
            except OSError as exc:
                problem = exc.strerror or str(exc)
        if problem is not None:
            self.notifier.error(
                f"Could not export to {path}: {problem}. Choose another place (Ctrl+E).",
                ("Export…", self.open),
            )
            return False
        self.store.save_export_choice(path.parent, fmt)
        kind = EXPORT_FILTERS[fmt][0].split(" (")[0]
        count = len(utterances)
        self.notifier.note(
            f"Exported {count} line{'' if count == 1 else 's'} to {path} ({kind})", 8
        )
        return True
