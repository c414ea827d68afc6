"""`CaptionerApp`: the window's composition root. It builds the services and the feature
controllers, wires them to each other and to the window, launches, and shuts down in order.

It decides nothing itself: what Start does is `CaptioningController`'s, what a device change
does is `DevicesController`'s, and so on. Create it inside the running qasync loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtWidgets import QApplication

from captioner.app.call import CallController
from captioner.app.captioning import GIVE_UP_SECONDS, CaptioningController
from captioner.app.captions import CaptionRouter
from captioner.app.devices import DevicesController
from captioner.app.endpoint import EndpointChooser
from captioner.app.engine import OfflineEngine
from captioner.app.export import ExportController
from captioner.app.history import HistoryController
from captioner.app.model import ModelDownloadController
from captioner.app.notify import WindowNotifier
from captioner.app.options import AppOptions
from captioner.app.overlay import OverlayController
from captioner.app.restore import RestoreController
from captioner.app.settings import SettingsController
from captioner.app.tasks import ExcInfo, TaskKeeper
from captioner.audio.devices import InputDevice
from captioner.core import untrusted
from captioner.core.voices import Voices
from captioner.logs import setup_logging
from captioner.server.models import ModelSpec
from captioner.transcript import Transcript
from captioner.ui.announcer import Announcer
from captioner.ui.bridge import SessionBridge
from captioner.ui.keystore import KeySource, KeyStore
from captioner.ui.overlay import CaptionOverlay
from captioner.ui.preferences import PreferencesStore, open_qsettings
from captioner.ui.theme import ThemeManager
from captioner.ui.window import MainWindow

__all__ = ["EXIT_OK", "CaptionerApp"]

log = logging.getLogger("captioner.app")

EXIT_OK = 0


class CaptionerApp:
    """One window and what it drives."""

    def __init__(
        self,
        options: AppOptions,
        *,
        config_dir: Path | None = None,
        keyring_backend: Any = None,
        device_lister: Callable[[], list[InputDevice]] | None = None,
        keepalive_interval: float = 4.0,
        shutdown_deadline: float | None = None,
        journal_folder: Path | None = None,
        give_up_after: float = GIVE_UP_SECONDS,
        model_spec: ModelSpec | None = None,
    ) -> None:
        qt_app = QApplication.instance()
        if not isinstance(qt_app, QApplication):
            raise RuntimeError("create the QApplication before the CaptionerApp")
        # Closing the window starts the shutdown; Qt must not quit the loop under it.
        qt_app.setQuitOnLastWindowClosed(False)
        self.options = options
        self._config_dir = config_dir
        self.errors: list[str] = []
        """Unexpected errors surfaced while running (tests assert it stays empty)."""
        self.finished: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._shutdown_deadline = shutdown_deadline
        self._watchdog: threading.Timer | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._journal_folder = journal_folder
        self._build_services(qt_app, keyring_backend, journal_folder)
        self._build_features(device_lister, keepalive_interval, give_up_after, model_spec)
        self._wire()

    def _build_services(
        self, qt_app: QApplication, keyring_backend: Any, journal_folder: Path | None
    ) -> None:
        """What the features share: preferences and keys, the window, the transcript, the
        engine and where to stream."""
        options = self.options
        self.store = PreferencesStore(open_qsettings(self._config_dir))
        given, given_source = options.api_key, KeySource.ARGUMENT
        if not given and os.environ.get("DEEPGRAM_API_KEY"):
            given, given_source = os.environ["DEEPGRAM_API_KEY"], KeySource.ENVIRONMENT
        untrusted.remember_secret(given)
        self.keys = KeyStore(
            self.store.config_dir, backend=keyring_backend, given=given, given_source=given_source
        )
        self.window = MainWindow(font_size=self.store.current.font_size)
        self.notifier = WindowNotifier(self.window)
        self.tasks = TaskKeeper(self.report_error)
        self.bridge = SessionBridge(self.window)
        self.themes = ThemeManager(qt_app, self.window)
        self.overlay = CaptionOverlay(self.store.current.overlay)
        self.transcript = Transcript(journal=options.journal, journal_folder=journal_folder)
        self.announcer = Announcer(self.window.pane.view, self.window)
        self.engine = OfflineEngine(options.model_dir)
        self.endpoints = EndpointChooser(options.url, self.store, self.keys, self.engine)

    def _build_features(
        self,
        device_lister: Callable[[], list[InputDevice]] | None,
        keepalive_interval: float,
        give_up_after: float,
        model_spec: ModelSpec | None,
    ) -> None:
        """One controller per feature, each wired to the window signals it serves."""
        file = Path(self.options.file) if self.options.file else None
        w = self.window
        self.settings = SettingsController(
            w, store=self.store, keys=self.keys, themes=self.themes, notifier=self.notifier
        )
        self.devices = DevicesController(
            w,
            store=self.store,
            notifier=self.notifier,
            tasks=self.tasks,
            file=file,
            lister=device_lister,
        )
        self.model = ModelDownloadController(
            w,
            model_dir=self.options.model_dir,
            notifier=self.notifier,
            tasks=self.tasks,
            spec=model_spec,
        )
        self.captioning = CaptioningController(
            w,
            self.bridge,
            store=self.store,
            endpoints=self.endpoints,
            devices=self.devices,
            transcript=self.transcript,
            notifier=self.notifier,
            tasks=self.tasks,
            file=file,
            open_settings=self.settings.open,
            model=self.model,
            keepalive_interval=keepalive_interval,
            give_up_after=give_up_after,
        )
        self.call = CallController(w, store=self.store)
        self.captions = CaptionRouter(
            w,
            self.bridge,
            transcript=self.transcript,
            overlay=self.overlay,
            announcer=self.announcer,
            notifier=self.notifier,
        )
        self.export = ExportController(
            w,
            transcript=self.transcript,
            store=self.store,
            notifier=self.notifier,
            tasks=self.tasks,
        )
        self.restore = RestoreController(
            w,
            transcript=self.transcript,
            announcer=self.announcer,
            notifier=self.notifier,
            tasks=self.tasks,
        )
        self.overlays = OverlayController(w, self.overlay, store=self.store, notifier=self.notifier)
        self.history = HistoryController(
            w,
            store=self.store,
            notifier=self.notifier,
            tasks=self.tasks,
            restore=self.restore,
            folder=self._journal_folder,
        )

    def _wire(self) -> None:
        """What one feature tells another, and the window's requests that are the root's."""
        captioning, devices = self.captioning, self.devices
        w = self.window
        w.start_requested.connect(captioning.start)
        w.stop_requested.connect(captioning.stop)
        w.mute_toggled.connect(captioning.set_muted)
        w.close_requested.connect(self.request_shutdown)
        devices.busy = lambda: captioning.busy
        devices.changed = self._on_devices_changed
        self.call.changed = self._on_call_changed
        captioning.voices_changed = self._on_voices_changed
        self._on_voices_changed(self.call.voices())
        self.settings.saved = self._on_settings_saved
        self.model.installed = captioning.start

    def _on_call_changed(self) -> None:
        running = self.captioning.session is not None
        self.captioning.show_source(listening=running)
        if running:
            self.captioning.restart()  # the other side changed: start again with it

    def _on_voices_changed(self, voices: Voices) -> None:
        self.window.pane.set_voices(voices)
        self.overlay.set_voices(voices)
        self.announcer.voices = voices

    def _on_devices_changed(self, chosen: bool) -> None:
        self.call.devices_changed()
        running = self.captioning.session is not None
        if chosen:
            self.captioning.show_source(listening=running)
            self.captioning.restart()  # another device: start again on it
        elif not running:
            self.captioning.show_source(listening=False)

    def _on_settings_saved(self) -> None:
        self.call.names_changed()
        self.captioning.show_engine()
        if self.captioning.session is not None:
            self.notifier.info(
                "The new settings apply from the next start.",
                ("Restart now", self.captioning.restart),
            )

    # -- errors -------------------------------------------------------------------------------

    def install_error_hooks(self) -> Callable[[], None]:
        """Route uncaught exceptions (slots, callbacks, tasks) to the log and the window, and
        mask the keys this app knows of in every log record."""
        loop = asyncio.get_running_loop()
        previous_hook = sys.excepthook
        previous_handler = loop.get_exception_handler()

        def excepthook(
            kind: type[BaseException], exc: BaseException, tb: TracebackType | None
        ) -> None:
            if issubclass(kind, KeyboardInterrupt):
                self.request_shutdown()
                return
            self.report_error("unexpected error", exc, (kind, exc, tb))

        def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            exc = context.get("exception")
            message = str(context.get("message") or "error in the event loop")
            if isinstance(exc, BaseException):
                self.report_error(message, exc, (type(exc), exc, exc.__traceback__))
            else:
                self.report_error(message, None, None)

        sys.excepthook = excepthook
        loop.set_exception_handler(handler)
        setup_logging(self.options.verbose, (self.keys.load(),), replace=False)

        def restore() -> None:
            sys.excepthook = previous_hook
            loop.set_exception_handler(previous_handler)

        return restore

    def report_error(
        self, context: str, exc: BaseException | None, exc_info: ExcInfo | None
    ) -> None:
        what = f"{type(exc).__name__}: {exc}" if exc is not None else context
        self.errors.append(f"{context}: {what}")
        log.error("%s: %s", context, what, exc_info=exc_info)
        self.notifier.error(
            f"Something went wrong inside Captioner ({what}). The details are in the log. "
            "If captions stop, press Stop and Start again."
        )

    # -- launch -------------------------------------------------------------------------------

    async def launch(self, on_shown: Callable[[CaptionerApp], None] | None = None) -> None:
        """Show the window, then find devices and the key; start if --start was given."""
        geometry = self.store.window_geometry()
        if geometry is not None:
            self.window.restoreGeometry(geometry)
        self.window.show()
        self.overlays.launch()
        if on_shown is not None:
            on_shown(self)
        await asyncio.sleep(0)
        self.tasks.spawn(self.restore.offer(), "restore offer")
        self.captioning.show_engine()
        file = self.captioning.file
        if file is not None:
            self.window.picker.show_file(file.name)
            self.window.status.set_source(file.name)
        else:
            await self.devices.launch(self.options.device)
        if self.options.start:
            self.captioning.start()

    def use_url(self, url: str) -> None:
        """Stream to `url` from the next start, as `--url` does."""
        self.endpoints.run_url = url
        self.captioning.show_engine()

    # -- shutdown -----------------------------------------------------------------------------

    def request_shutdown(self) -> None:
        """Begin the ordered shutdown once; later calls do nothing."""
        if self._shutdown_task is not None:
            return
        if self._shutdown_deadline is not None:
            # Every step below is bounded, but a call that blocks the GUI thread cannot be
            # cancelled: past the deadline the process ends anyway.
            self._watchdog = threading.Timer(
                self._shutdown_deadline, _exit_stuck, (self._shutdown_deadline,)
            )
            self._watchdog.daemon = True
            self._watchdog.start()
        self._shutdown_task = asyncio.get_running_loop().create_task(
            self._shutdown(), name="shutdown"
        )

    async def _shutdown(self) -> None:
        """CloseStream and drain (bounded), stop audio, stop the engine, then close."""
        started = time.monotonic()
        for feature in (self.restore, self.overlays, self.devices, self.captioning, self.model):
            feature.closing = True
        try:
            self.store.save_window_geometry(self.window.saveGeometry())
            self.overlays.save_place()
            self.notifier.note("Closing…", 60)
            await self.model.close()
            await self.captioning.close()
            self.transcript.finish("closed")
            await self.engine.stop()
            await self.devices.close()
            await self.tasks.cancel_all()
        except Exception as exc:
            self.report_error("shutdown", exc, (type(exc), exc, exc.__traceback__))
        finally:
            log.debug("shutdown took %.2f s", time.monotonic() - started)
            for dialog in (self.export.dialog,):
                if dialog is not None:
                    dialog.reject()
            self.settings.close()
            self.history.close()
            self.overlays.close()
            self.window.allow_close()
            self.window.close()
            if self._watchdog is not None:
                self._watchdog.cancel()
            if not self.finished.done():
                self.finished.set_result(EXIT_OK)


def _exit_stuck(deadline: float) -> None:
    """The shutdown watchdog (a timer thread): end the process that could not end itself."""
    log.error("quitting took longer than %.0f s; ending the process", deadline)
    logging.shutdown()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(1)
