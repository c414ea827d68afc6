"""The offline model, installed from the window: the banner's "Download the offline model"
opens a dialog, the download runs on a worker thread (the same `fetch_model` as
`captioner models fetch`), and captioning starts by itself once the model is in place.

A cancel or a failure keeps what arrived; the next attempt, from the dialog or the banner,
continues from there. A model that is not complete and verified is never used: the
download is renamed into place only after its checks.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path

from captioner.app.notify import Notifier
from captioner.app.tasks import TaskKeeper
from captioner.server import models
from captioner.server.download import RateMeter
from captioner.ui.model_download import ModelDownloadDialog
from captioner.ui.window import MainWindow

__all__ = ["DOWNLOAD_BUTTON", "ModelDownloadController"]

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.1
"""Seconds between the dialog's updates: the worker reports every few kilobytes."""


def _size_mb(spec: models.ModelSpec) -> int:
    """The download's size as said to a person: "about 150 MB"."""
    size = spec.download_size / 1e6
    return int(round(size, -1)) if size >= 50 else max(1, round(size))


DOWNLOAD_BUTTON = "Download the offline model (about {size} MB)"


class ModelDownloadController:
    """Installs the model for the window, and says when it is missing."""

    def __init__(
        self,
        window: MainWindow,
        *,
        model_dir: str | None,
        notifier: Notifier,
        tasks: TaskKeeper,
        spec: models.ModelSpec | None = None,
    ) -> None:
        self.window = window
        self.model_dir = model_dir
        self.notifier = notifier
        self.tasks = tasks
        self.spec = spec or models.default_spec()
        self.dialog: ModelDownloadDialog | None = None
        self.installed: Callable[[], object] = lambda: None
        """What to do once the model is in place (the app starts captioning)."""
        self.closing = False
        self._cancel = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._latest: tuple[str, int, int | None] | None = None
        self._rate = RateMeter()
        self._stage = ""

    @property
    def folder(self) -> Path:
        return models.resolve_model_dir(self.model_dir)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def problem(self) -> str | None:
        """Why the model cannot be used (cheap: no hashing), or None when it is in place."""
        return models.check_model_dir(self.folder, self.spec)

    def offer(self, problem: str) -> None:
        """The banner that says the model is missing, with the button that fetches it."""
        size = _size_mb(self.spec)
        self.notifier.info(
            "The offline speech model is not on this computer yet"
            + ("" if problem.startswith("no Whisper model") else f" ({problem})")
            + f". It is downloaded once (about {size} MB) and checked before use.",
            (DOWNLOAD_BUTTON.format(size=size), self.download),
        )

    def download(self) -> None:
        """Open the dialog and start (or continue) the download."""
        if self.closing:
            return
        dialog = self.dialog
        if dialog is None:
            dialog = self.dialog = ModelDownloadDialog(_size_mb(self.spec), self.window)
            dialog.cancel_requested.connect(self.cancel)
            dialog.retry_requested.connect(self.download)
        if self.running:
            dialog.open()
            return
        dialog.show_running()
        dialog.open()
        self._cancel = threading.Event()
        self._rate = RateMeter()
        self._stage = ""
        self._task = self.tasks.spawn(self._run(self._cancel), "model download")

    def cancel(self) -> None:
        if self.running:
            self._cancel.set()
            if self.dialog is not None:
                self.dialog.show_cancelling()

    async def close(self) -> None:
        """At quit: stop a download (what arrived is kept) and wait briefly for the worker."""
        self.closing = True
        task = self._task
        if task is not None and not task.done():
            self._cancel.set()
            await asyncio.wait({task}, timeout=3.0)
        if self.dialog is not None:
            self.dialog.dismiss()

    async def _run(self, cancel: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        pump = loop.create_task(self._pump())

        def progress(stage: str, done: int, total: int | None) -> None:
            self._latest = (stage, done, total)  # read by the pump on the GUI thread

        try:
            source = await asyncio.to_thread(
                models.fetch_model, self.folder, progress, spec=self.spec, cancel=cancel
            )
        except models.ModelCancelled:
            self._finish_dialog()
            if not self.closing:
                self.notifier.info(
                    "The model download is paused. What arrived is kept, and it continues "
                    "from there.",
                    ("Continue the download", self.download),
                )
            return
        except models.ModelError as exc:
            log.warning("model download failed: %s", exc)
            if self.dialog is not None and not self.closing:
                self.dialog.show_failure(str(exc))
            return
        finally:
            pump.cancel()
        log.info("offline model installed at %s from %s", self.folder, source)
        self._finish_dialog()
        if not self.closing:
            self.notifier.note("The offline speech model is installed and checked.")
            self.installed()

    async def _pump(self) -> None:
        """Show the newest progress ten times a second."""
        while True:
            latest, self._latest = self._latest, None
            if latest is not None and self.dialog is not None:
                stage, done, total = latest
                if stage != self._stage:
                    self._stage, self._rate = stage, RateMeter()
                self._rate.add(done)
                text = models.describe_progress(stage, done, total, self._rate)
                heading, _, detail = text.partition(": ")
                detail = re.sub(r" \(\d+%\)", "", detail)  # the bar shows the percentage
                label = "Downloading…" if heading == "Downloading" else f"{heading}…"
                fraction = done / total if total else None
                self.dialog.show_progress(label, fraction, detail)
            await asyncio.sleep(PROGRESS_INTERVAL)

    def _finish_dialog(self) -> None:
        if self.dialog is not None:
            self.dialog.dismiss()
