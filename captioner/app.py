"""The window's composition root: QApplication and the qasync loop, wiring, ordered shutdown.

`run_app` owns the process-wide pieces (the QApplication, the loop, signal handling, the
exception hooks); `CaptionerApp` owns one window and what it drives: the session of the
moment, its audio source, and the offline engine when that is the endpoint.

Rules from DESIGN.md followed here: PySide6 is imported before qasync; the window and
every task are created inside the running loop; slots are plain methods that start
tasks, keep a reference and report failures (no `asyncSlot`); no dialog runs a nested
event loop; quitting is an ordered, idempotent, bounded shutdown. PySide6 is imported
lazily so that `captioner listen` never loads Qt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from captioner.ui.run_state import RunState

if TYPE_CHECKING:
    from PySide6.QtWidgets import QFileDialog

    from captioner.audio.devices import InputDevice
    from captioner.audio.resilient import SourceEvent
    from captioner.audio.sources import AudioSource
    from captioner.core.captions import CaptionEvent
    from captioner.core.config import StreamSettings
    from captioner.journal import JournalInfo
    from captioner.session import Session, SessionEnd, Status
    from captioner.ui.announcer import Announcer
    from captioner.ui.bridge import SessionBridge
    from captioner.ui.keystore import KeyStore
    from captioner.ui.overlay import CaptionOverlay
    from captioner.ui.overlay_dialog import OverlayDialog
    from captioner.ui.preferences import OverlayLook, Preferences, PreferencesStore, Theme
    from captioner.ui.settings_dialog import SettingsDialog, SettingsResult
    from captioner.ui.theme import ThemeManager
    from captioner.ui.transcript import WindowTranscript
    from captioner.ui.window import MainWindow

__all__ = [
    "EXIT_NO_DISPLAY",
    "CaptionerApp",
    "OfflineEngine",
    "add_app_arguments",
    "display_problem",
    "rescan_input_devices",
    "run_app",
]

log = logging.getLogger("captioner.app")

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NO_DISPLAY = 2

DRAIN_SECONDS = 3.0
"""How long Stop (and quitting) waits for the last finals after CloseStream."""
GIVE_UP_SECONDS = 300.0
"""How long the window keeps reconnecting without a transcript before it stops and says so."""
ENGINE_STOP_SECONDS = 5.0
SHUTDOWN_DEADLINE_SECONDS = 20.0
"""After this long a stuck shutdown ends the process anyway (`run_app` only)."""
STATS_INTERVAL = 0.1
DEVICE_POLL_SECONDS = 5.0


# -- the command line -------------------------------------------------------------------


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """The window's options, on the top-level `captioner` parser."""
    group = parser.add_argument_group("window (when no command is given)")
    group.add_argument(
        "--device", metavar="NAME|INDEX", help="preselect an input device by name or index"
    )
    group.add_argument("--start", action="store_true", help="start captioning at launch")
    group.add_argument(
        "--url", metavar="URL", help="a Deepgram-compatible endpoint for this run (ws:// or wss://)"
    )
    group.add_argument(
        "--file", metavar="WAV", help="caption a WAV file as if it were the microphone"
    )
    group.add_argument(
        "--api-key", metavar="KEY", help="Deepgram API key for this run (not stored)"
    )
    group.add_argument("--model-dir", metavar="DIR", help="the offline engine's model folder")
    group.add_argument(
        "--no-journal",
        action="store_true",
        help="keep no crash-safe journal of the captions (by default every finished line is "
        "written to one before it is shown)",
    )


def display_problem(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> str | None:
    """Why no window can be opened here, with what to run instead; None when one can."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform in ("win32", "darwin", "cygwin"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or env.get("QT_QPA_PLATFORM"):
        return None
    return (
        "captioner: there is no display to open the window on "
        "(DISPLAY and WAYLAND_DISPLAY are not set).\n"
        "  Open it on a virtual display:   xvfb-run -a .venv/bin/captioner\n"
        "  Or caption in the terminal:     .venv/bin/captioner listen\n"
        "  (QT_QPA_PLATFORM=offscreen runs the window without showing it.)"
    )


def _argument_problem(args: argparse.Namespace) -> str | None:
    """Options that cannot work, found before any window opens (exit code 2)."""
    from captioner.core.config import StreamSettings

    file = getattr(args, "file", None)
    if file:
        from captioner.audio.sources import AudioFileError, WavFileSource

        try:
            WavFileSource(file)
        except AudioFileError as exc:
            return f"captioner: {exc}"
    url = getattr(args, "url", None)
    if url:
        problems = [e for e in StreamSettings(url=url, api_key="x").errors() if e.setting == "url"]
        if problems:
            return f"captioner: --url: {problems[0].reason}"
    return None


def run_app(
    args: argparse.Namespace, *, on_ready: Callable[[CaptionerApp], None] | None = None
) -> int:
    """Open the window and run until it is closed; the process exit code.

    `on_ready` is called once the window is shown (benchmarks and screenshots use it).
    """
    problem = display_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_NO_DISPLAY
    problem = _argument_problem(args)
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    _ensure_logging(getattr(args, "verbose", 0))

    # PySide6 first, so that qasync binds to it (DESIGN.md, pitfall 6).
    from PySide6.QtWidgets import QApplication

    os.environ.setdefault("QT_API", "pyside6")
    import qasync

    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication([sys.argv[0] if sys.argv else "captioner"])
    app.setApplicationName("Captioner")
    app.setOrganizationName("Captioner")
    app.setApplicationDisplayName("Captioner")
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        return int(loop.run_until_complete(_run_window(args, on_ready)))
    finally:
        loop.close()
        asyncio.set_event_loop(None)


async def _run_window(
    args: argparse.Namespace, on_ready: Callable[[CaptionerApp], None] | None
) -> int:
    """The window's whole life, inside the running loop (DESIGN.md, pitfall 5)."""
    controller = CaptionerApp(args, shutdown_deadline=SHUTDOWN_DEADLINE_SECONDS)
    restore_hooks = controller.install_error_hooks()
    try:
        with _route_signals(controller):
            await controller.launch(on_shown=on_ready)
            return await controller.finished
    finally:
        restore_hooks()


def _ensure_logging(verbose: int) -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("captioner: %(levelname)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(
            logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
        )
        logging.getLogger("websockets").setLevel(logging.WARNING)


class _RedactKeys(logging.Filter):
    """Removes the keys the app knows of from every record, whoever logs it."""

    def __init__(self, secrets: Callable[[], list[str]]) -> None:
        super().__init__("captioner-redact")
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        from captioner.core.config import redact

        secrets = [s for s in self._secrets() if s]
        if secrets:
            message = record.getMessage()
            cleaned = redact(message, secrets)
            if cleaned != message:
                record.msg = cleaned
                record.args = None
        return True


@contextlib.contextmanager
def _route_signals(controller: CaptionerApp) -> Iterator[None]:
    """SIGINT and SIGTERM start the same shutdown as closing the window.

    Python runs signal handlers only between bytecodes, and the Qt loop runs none while it
    waits; the wakeup fd wakes it through a socket notifier so the handler runs at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from PySide6.QtCore import QSocketNotifier

    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    loop = asyncio.get_running_loop()

    def on_wakeup() -> None:
        with contextlib.suppress(OSError):
            reader.recv(64)

    def on_signal(signum: int, _frame: object) -> None:
        loop.call_soon(controller.request_shutdown)

    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read)
    notifier.activated.connect(on_wakeup)
    previous_fd = signal.set_wakeup_fd(writer.fileno())
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(previous_fd)
        notifier.setEnabled(False)
        reader.close()
        writer.close()


# -- devices ------------------------------------------------------------------------------


def rescan_input_devices() -> list[InputDevice]:
    """The input devices as they are now, not as PortAudio saw them at start-up, with the
    system audio sources the platform offers (monitors, loopbacks) after them.

    PortAudio reads the device list once per initialisation, so this re-initialises it.
    Only call it while no stream is open (the app never rescans during a session).
    """
    from captioner.audio.devices import (
        DeviceError,
        list_input_devices,
        load_sounddevice,
        rescan_input_devices,
    )
    from captioner.audio.system import with_system_audio

    sd = load_sounddevice()
    try:
        rescan_input_devices()
    except sd.PortAudioError as exc:
        raise DeviceError(f"Could not look for audio devices again: {exc}") from exc
    return with_system_audio(list_input_devices())


# -- the offline engine -----------------------------------------------------------------


class EmbeddedServer(Protocol):
    """What `captioner.server.child.start_embedded_server` yields, as far as the app cares."""

    @property
    def url(self) -> str: ...

    @property
    def token(self) -> str | None: ...


class OfflineEngine:
    """The embedded engine, started on first need and kept until the app quits.

    The server's context manager is entered and left in one dedicated task, so whatever
    it holds (a child process, a task group) is opened and closed by the same task.
    """

    def __init__(self, model_dir: str | None = None) -> None:
        self.model_dir = model_dir
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[EmbeddedServer] | None = None
        self._stop = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def ensure_started(self) -> EmbeddedServer:
        if self._task is None or self._task.done() or self._ready is None:
            loop = asyncio.get_running_loop()
            ready: asyncio.Future[EmbeddedServer] = loop.create_future()
            ready.add_done_callback(_consume_exception)
            self._ready = ready
            self._stop = asyncio.Event()
            self._task = loop.create_task(self._serve(ready, self._stop), name="offline engine")
        return await asyncio.shield(self._ready)

    async def _serve(self, ready: asyncio.Future[EmbeddedServer], stop: asyncio.Event) -> None:
        from captioner.server.child import start_embedded_server

        try:
            async with start_embedded_server(model_dir=self.model_dir) as server:
                ready.set_result(server)
                await stop.wait()
        except Exception as exc:
            if ready.done():
                log.error("the offline engine stopped: %s", exc)
            else:
                ready.set_exception(exc)
        finally:
            if not ready.done():
                ready.cancel()

    async def stop(self, limit: float = ENGINE_STOP_SECONDS) -> None:
        task = self._task
        if task is None or task.done():
            return
        self._stop.set()
        done, _ = await asyncio.wait({task}, timeout=limit)
        if not done:
            log.warning("the offline engine did not stop within %.0f s; cancelling it", limit)
            task.cancel()
            await asyncio.wait({task}, timeout=2.0)


def _consume_exception(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen: whoever awaits it reports it."""
    if not future.cancelled():
        future.exception()


# -- the app --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointChoice:
    url: str
    api_key: str | None
    engine: str
    detail: str


def _is_deepgram(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host == "deepgram.com" or host.endswith(".deepgram.com")


class CaptionerApp:
    """One window and what it drives. Create it inside the running qasync loop."""

    def __init__(
        self,
        args: argparse.Namespace,
        *,
        config_dir: Path | None = None,
        keyring_backend: Any = None,
        device_lister: Callable[[], list[InputDevice]] | None = None,
        keepalive_interval: float = 4.0,
        shutdown_deadline: float | None = None,
        journal_folder: Path | None = None,
        give_up_after: float = GIVE_UP_SECONDS,
    ) -> None:
        from PySide6.QtWidgets import QApplication

        from captioner.ui.announcer import Announcer
        from captioner.ui.bridge import SessionBridge
        from captioner.ui.keystore import KeySource, KeyStore
        from captioner.ui.overlay import CaptionOverlay
        from captioner.ui.preferences import PreferencesStore, open_qsettings
        from captioner.ui.theme import ThemeManager
        from captioner.ui.transcript import WindowTranscript
        from captioner.ui.window import MainWindow

        qt_app = QApplication.instance()
        if not isinstance(qt_app, QApplication):
            raise RuntimeError("create the QApplication before the CaptionerApp")
        # Closing the window starts the shutdown; Qt must not quit the loop under it.
        qt_app.setQuitOnLastWindowClosed(False)
        self.args = args
        self.errors: list[str] = []
        """Unexpected errors surfaced while running (tests assert it stays empty)."""
        self.store: PreferencesStore = PreferencesStore(open_qsettings(config_dir))
        self.prefs: Preferences = self.store.load()
        given = getattr(args, "api_key", None)
        source = KeySource.ARGUMENT
        if not given and os.environ.get("DEEPGRAM_API_KEY"):
            given, source = os.environ["DEEPGRAM_API_KEY"], KeySource.ENVIRONMENT
        self.keys: KeyStore = KeyStore(
            self.store.config_dir, backend=keyring_backend, given=given, given_source=source
        )
        self.window: MainWindow = MainWindow(font_size=self.prefs.font_size)
        self.bridge: SessionBridge = SessionBridge(self.window)
        self.themes: ThemeManager = ThemeManager(qt_app, self.window)
        self.overlay: CaptionOverlay = CaptionOverlay(self.prefs.overlay)
        self.transcript: WindowTranscript = WindowTranscript(
            journal=not getattr(args, "no_journal", False), journal_folder=journal_folder
        )
        self.announcer: Announcer = Announcer(self.window.pane.view, self.window)
        self.unfinished: list[JournalInfo] = []
        """Journals of earlier sessions that ended without finishing, offered for restoring."""
        self.engine = OfflineEngine(getattr(args, "model_dir", None))
        self.session: Session | None = None
        self.source: AudioSource | None = None
        self.last_end: SessionEnd | None = None
        self.finished: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._file = Path(args.file) if getattr(args, "file", None) else None
        self._device_lister = device_lister or rescan_input_devices
        self._keepalive_interval = keepalive_interval
        self._give_up_after = give_up_after
        self._shutdown_deadline = shutdown_deadline
        self._watchdog: threading.Timer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._start_task: asyncio.Task[None] | None = None
        self._session_task: asyncio.Task[None] | None = None
        self._rescan: asyncio.Future[list[InputDevice]] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._closing = False
        self._stop_asked = False
        self._restart_asked = False
        self._dialog: SettingsDialog | None = None
        self._overlay_dialog: OverlayDialog | None = None
        self._restore_task: asyncio.Task[int] | None = None
        self._export_dialog: QFileDialog | None = None
        self._overlay_shown_before_dialog = False
        self._wayland_said = False
        self._system_audio = False
        self._redactor = _RedactKeys(lambda: [k for k in (self.keys.load(),) if k])
        self._wire()

    # -- wiring -----------------------------------------------------------------------------

    def _wire(self) -> None:
        w = self.window
        w.start_requested.connect(self.start)
        w.stop_requested.connect(self.stop)
        w.mute_toggled.connect(self.set_muted)
        w.settings_requested.connect(self.open_settings)
        w.close_requested.connect(self.request_shutdown)
        w.banner.action_triggered.connect(self._on_banner_action_triggered)
        w.picker.device_selected.connect(self._on_picker_device_selected)
        w.picker.rescan_requested.connect(self.refresh_devices)
        w.pane.font_size_changed.connect(self._on_pane_font_size_changed)
        w.cleared.connect(self._on_window_cleared)
        w.export_requested.connect(self.open_export)
        w.restore_requested.connect(self.restore_unfinished)
        w.restore_bar.restore_clicked.connect(self.restore_unfinished)
        w.restore_bar.delete_clicked.connect(self.delete_unfinished)
        w.overlay_toggled.connect(self.show_overlay)
        w.click_through_toggled.connect(self.set_click_through)
        w.overlay_settings_requested.connect(self.open_overlay_settings)
        w.timestamps_toggled.connect(self._on_window_timestamps_toggled)
        w.theme_chosen.connect(self.set_theme)
        self.overlay.placed.connect(self._on_overlay_placed)
        for action in (w.overlay_settings_action, w.click_through_action, w.overlay_action):
            self.overlay.addAction(action)  # its right-click menu
        self.bridge.status_updated.connect(self._on_bridge_status_updated)
        self.bridge.captions_updated.connect(self._on_bridge_captions_updated)
        # the look chosen last time, before anything is shown
        self.themes.apply(self.prefs.theme)
        w.set_theme_choice(self.prefs.theme)
        w.set_checked_quietly(w.timestamps_action, self.prefs.timestamps)
        w.pane.set_timestamps(self.prefs.timestamps)
        w.set_checked_quietly(w.click_through_action, self.prefs.overlay.click_through)

    def install_error_hooks(self) -> Callable[[], None]:
        """Route uncaught exceptions (slots, callbacks, tasks) to the log and the window."""
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
        for root_handler in logging.getLogger().handlers:
            root_handler.addFilter(self._redactor)

        def restore() -> None:
            sys.excepthook = previous_hook
            loop.set_exception_handler(previous_handler)
            for root_handler in logging.getLogger().handlers:
                root_handler.removeFilter(self._redactor)

        return restore

    def report_error(
        self,
        context: str,
        exc: BaseException | None,
        exc_info: tuple[type[BaseException], BaseException, TracebackType | None] | None,
    ) -> None:
        what = f"{type(exc).__name__}: {exc}" if exc is not None else context
        self.errors.append(f"{context}: {what}")
        log.error("%s: %s", context, what, exc_info=exc_info)
        with contextlib.suppress(RuntimeError):  # the window may already be gone
            self.window.banner.show_message(
                f"Something went wrong inside Captioner ({what}). The details are in the log. "
                "If captions stop, press Stop and Start again.",
                kind="error",
            )

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A task that is kept alive and whose failure is reported, not lost."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._on_task_done)
        return task

    def _on_task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.report_error(f"{task.get_name()} failed", exc, (type(exc), exc, exc.__traceback__))

    # -- launch -----------------------------------------------------------------------------

    async def launch(self, on_shown: Callable[[CaptionerApp], None] | None = None) -> None:
        """Show the window, then find devices and the key; start if --start was given."""
        geometry = self.store.window_geometry()
        if geometry is not None:
            self.window.restoreGeometry(geometry)
        self.overlay.place(self.store.overlay_geometry())
        self.window.show()
        if self.prefs.overlay_visible:
            self.window.overlay_action.setChecked(True)  # shows the overlay
        if on_shown is not None:
            on_shown(self)
        await asyncio.sleep(0)
        self._spawn(self._offer_restore(), "restore offer")
        self.keys.load()
        self._show_engine()
        if self._file is not None:
            self.window.picker.show_file(self._file.name)
            self.window.status.set_source(self._file.name)
        else:
            wanted = self.prefs.device
            if wanted is not None:
                self.window.picker.set_wanted(wanted)
            await self.refresh_devices()
            spec = getattr(self.args, "device", None)
            if spec:
                self._select_device_spec(str(spec))
            self._spawn(self._watch_devices(), "device watch")
        if getattr(self.args, "start", False):
            self.start()

    def _select_device_spec(self, spec: str) -> None:
        from captioner.audio.devices import DeviceError

        try:
            device = self.window.picker.select_spec(spec)
        except DeviceError as exc:
            self.window.banner.show_message(f"--device {spec}: {exc}", kind="error")
            return
        self._remember_device(device)
        self._show_source(listening=False)

    # -- the engine label -------------------------------------------------------------------

    def endpoint_title(self) -> tuple[str, str]:
        """(engine name, detail) for the status bar, without starting anything."""
        from captioner.ui.preferences import Endpoint

        url = getattr(self.args, "url", None)
        if url:
            return ("Deepgram" if _is_deepgram(url) else "Custom URL", url)
        endpoint = self.prefs.effective_endpoint(have_key=bool(self.keys.load()))
        if endpoint is Endpoint.OFFLINE:
            return ("Offline engine", "The embedded engine on this computer; no key needed")
        return (endpoint.label, self.prefs.endpoint_url(endpoint))

    def _show_engine(self) -> None:
        name, detail = self.endpoint_title()
        self.window.status.set_engine(name, detail)

    async def _resolve_endpoint(self) -> EndpointChoice:
        from captioner.session import State, Status
        from captioner.ui.preferences import Endpoint

        key = self.keys.load()
        url = getattr(self.args, "url", None)
        if url:
            engine = "Deepgram" if _is_deepgram(url) else "Custom URL"
            return EndpointChoice(url, key, engine, url)
        endpoint = self.prefs.effective_endpoint(have_key=bool(key))
        if endpoint is not Endpoint.OFFLINE:
            target = self.prefs.endpoint_url(endpoint)
            return EndpointChoice(target, key, endpoint.label, target)
        if not self.engine.running:
            self._on_bridge_status_updated(
                Status(State.CONNECTING, "starting the offline engine (loading the speech model)")
            )
        server = await self.engine.ensure_started()
        return EndpointChoice(server.url, server.token, "Offline engine", server.url)

    # -- start, stop, mute ------------------------------------------------------------------

    @property
    def run_state(self) -> RunState:
        return self.window.run_state

    def start(self) -> None:
        if self._closing or self.window.run_state is not RunState.IDLE:
            return
        self.window.set_run_state(RunState.STARTING)
        self._stop_asked = False
        self._start_task = self._spawn(self._start(), "start")

    def stop(self) -> None:
        self._stop_asked = True
        self._restart_asked = False
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
            return
        if self.session is not None:
            self.window.set_run_state(RunState.STOPPING)
            self.session.request_stop()

    def set_muted(self, on: bool) -> None:
        session = self.session
        if session is None:
            return
        session.mute(on)
        self._show_source(listening=True)

    async def _start(self) -> None:
        from captioner.audio.devices import DeviceError
        from captioner.audio.sources import AudioFileError
        from captioner.session import Session

        window = self.window
        window.banner.dismiss()
        window.status.clear_close()
        window.status.set_request_id(None)
        try:
            await self._wait_for_rescan()
            self._check_input()  # before the engine: no point loading a model with no microphone
            endpoint = await self._resolve_endpoint()
        except asyncio.CancelledError:
            self._idle()
            raise
        except DeviceError as exc:
            self._idle_after_failure(str(exc), action=("Look again", "rescan"))
            return
        except Exception as exc:
            offline = self.endpoint_title()[0] == "Offline engine"
            self._idle_after_failure(
                f"Could not start the offline engine: {exc}"
                if offline
                else f"Could not start: {exc}",
                action=("Open settings", "settings"),
            )
            return
        window.status.set_engine(endpoint.engine, endpoint.detail)
        settings = self.prefs.stream_settings(url=endpoint.url, api_key=endpoint.api_key)
        problems = settings.errors()
        if problems:
            self._idle_after_failure(
                "These settings need attention before captioning can start: "
                + "; ".join(f"{p.setting.replace('_', ' ')}: {p.reason}" for p in problems)
                + ".",
                action=("Open settings", "settings"),
            )
            return
        try:
            source = self._make_source(settings)
        except (DeviceError, AudioFileError, ValueError) as exc:
            self._idle_after_failure(str(exc), action=("Look again", "rescan"))
            return
        session = Session(
            settings,
            source,
            self.bridge,
            drain_timeout=DRAIN_SECONDS,
            keepalive_interval=self._keepalive_interval,
            give_up_after=self._give_up_after,
        )
        self.session = session
        self.source = source
        self.transcript.begin_session(
            engine=endpoint.engine, source=source.description, now=time.monotonic()
        )
        window.pane.set_language(settings.language)
        window.set_run_state(RunState.RUNNING)
        self._show_source(listening=True)
        self._session_task = self._spawn(self._run_session(session, source), "session")

    def _check_input(self) -> None:
        from captioner.audio.devices import DeviceError
        from captioner.ui.device_picker import NO_DEVICE_MESSAGE

        if self._file is None and self.window.picker.current_device() is None:
            raise DeviceError(NO_DEVICE_MESSAGE)

    def _make_source(self, settings: StreamSettings) -> AudioSource:
        """The file, or the microphone: one that waits for its device to come back.

        A device the person picked is kept to; with no pick the system default is followed.
        """
        from captioner.audio.devices import DeviceError
        from captioner.audio.resilient import ResilientMicrophone
        from captioner.audio.sources import WavFileSource
        from captioner.ui.device_picker import NO_DEVICE_MESSAGE

        self._system_audio = False
        if self._file is not None:
            return WavFileSource(self._file, pacing="realtime", block_ms=settings.chunk_ms)
        picker = self.window.picker
        device = picker.current_device()
        if device is None:
            raise DeviceError(NO_DEVICE_MESSAGE)
        self._system_audio = device.is_system_audio
        follow_default = picker.wanted is None and device.is_default
        return ResilientMicrophone(
            None if follow_default else device,
            rate=settings.sample_rate,
            block_ms=settings.chunk_ms,
            listener=self._on_source_event,
        )

    def _on_source_event(self, event: SourceEvent) -> None:
        """The microphone was lost or came back (silence has its own hint under the list)."""
        if event.kind == "lost":
            self.window.banner.show_message(event.message, kind="error")
        elif event.kind == "restored":
            self.window.banner.show_message(event.message, kind="info")
        self._show_source(listening=self.session is not None)

    async def _run_session(self, session: Session, source: AudioSource) -> None:
        from captioner.audio.devices import DeviceError
        from captioner.audio.sources import AudioFileError
        from captioner.core.config import SettingsError

        stats = self._spawn(self._poll_stats(session, source), "stats")
        end: SessionEnd | None = None
        failure = ""
        try:
            end = await session.run()
        except (DeviceError, AudioFileError, SettingsError) as exc:
            failure = str(exc)
        finally:
            stats.cancel()
            source.close()
            self.session = None
            self.source = None
            self.last_end = end
            self._idle()
        if failure:
            self.window.banner.show_message(failure, kind="error")
        elif end is not None:
            self._report_end(end, source)
        if self._closing:
            return
        if self._restart_asked:
            self._restart_asked = False
            self.start()

    def _idle(self) -> None:
        self.window.set_run_state(RunState.IDLE)
        self.window.picker.set_level(None)
        self.window.status.set_lag(None)
        self._show_source(listening=False)

    def _idle_after_failure(self, message: str, *, action: tuple[str, str] | None) -> None:
        from captioner.session import State, Status

        self._idle()
        self.window.status.show_status(Status(State.ERROR, message))
        self.window.banner.show_message(message, kind="error", action=action)

    def _report_end(self, end: SessionEnd, source: AudioSource) -> None:
        if end.ok or end.meaning is None:
            return
        meaning = end.meaning
        detail = end.detail.strip()
        text = f"{meaning.title} ({meaning.label}). {meaning.explanation}"
        if detail and detail not in meaning.explanation and detail not in meaning.label:
            text += f" The server said: “{detail}”."
        if end.note:
            text += f" {end.note}"
        text += f" {meaning.action}"
        action: tuple[str, str] | None = ("Start again", "start")
        if meaning.kind in ("auth", "refused", "data"):
            action = ("Open settings", "settings")
        self.window.banner.show_message(text, kind="error", action=action)

    async def _poll_stats(self, session: Session, source: AudioSource) -> None:
        """Level, lag and dropped blocks, ten times a second while a session runs."""
        from captioner.audio.sources import WavFileSource
        from captioner.session import State
        from captioner.ui.levels import LevelHint, LevelHints

        hints = LevelHints()
        # A file's level is the file's business; system audio is silent whenever nothing plays.
        judge = not isinstance(source, WavFileSource) and not self._system_audio
        picker = self.window.picker
        status = self.window.status
        while True:
            await asyncio.sleep(STATS_INTERVAL)
            live = session.status.state is State.LIVE
            if session.muted or not live:
                picker.set_level(None)
                hints.reset()
            else:
                level = session.stats.level_dbfs
                hint = hints.update(level, time.monotonic()) if judge else LevelHint.NONE
                picker.set_level(level, hint)
            received = session.stats.results_received > 0
            status.set_lag(session.stats.lag_seconds if live and received else None)
            status.set_dropped(source.dropped_blocks)

    def _show_source(self, *, listening: bool) -> None:
        status = self.window.status
        if self._file is not None:
            name: str | None = self._file.name
        else:
            device = self.window.picker.current_device()
            name = device.name if device is not None else None
        muted = self.session is not None and self.session.muted
        status.set_source(name, listening=listening, muted=muted)

    def _on_bridge_status_updated(self, status: Status) -> None:
        self.window.status.show_status(status)

    # -- captions: journal, pane, overlay, screen readers ------------------------------------

    def _on_bridge_captions_updated(self, events: list[CaptionEvent]) -> None:
        """Each finished line goes to disk first, then to the screen and to screen readers."""
        from captioner.core.captions import Committed

        placed: list[CaptionEvent] = [
            Committed(self.transcript.commit(e.utterance)) if isinstance(e, Committed) else e
            for e in events
        ]
        problem = self.transcript.take_problem()
        if problem:
            self.window.banner.show_message(problem, kind="error")
        self.window.pane.apply(placed)
        self.overlay.apply(placed)
        self.announcer.apply(placed)

    def _on_window_cleared(self) -> None:
        self.transcript.clear()  # the journal so far is finished and kept
        self.overlay.clear()

    def _on_window_timestamps_toggled(self, on: bool) -> None:
        self.prefs = dataclasses.replace(self.prefs, timestamps=on)
        self.store.save(self.prefs)

    def set_theme(self, theme: Theme) -> None:
        self.themes.apply(theme)
        self.window.set_theme_choice(theme)
        self.prefs = dataclasses.replace(self.prefs, theme=theme)
        self.store.save(self.prefs)

    # -- export -------------------------------------------------------------------------------

    def open_export(self) -> QFileDialog | None:
        """File > Export: a save dialog (opened with `open()`); None when there is nothing."""
        from datetime import datetime

        from captioner.ui.export_dialog import export_target, make_export_dialog

        if not self.transcript.utterances:
            self.window.status.showMessage(
                "Nothing to export yet: finished lines are exported, and none has arrived.", 6000
            )
            return None
        if self._export_dialog is not None and self._export_dialog.isVisible():
            self._export_dialog.raise_()
            return self._export_dialog
        folder = self.store.export_folder() or Path.home()
        stem = f"captions-{datetime.now():%Y-%m-%d-%H%M}"
        dialog = make_export_dialog(self.window, folder, self.store.export_format(), stem)

        def on_file_selected(path: str) -> None:
            fmt, target = export_target(path, dialog.selectedNameFilter())
            self.export_to(target, fmt)

        dialog.fileSelected.connect(on_file_selected)
        dialog.finished.connect(self._on_export_dialog_finished)
        self._export_dialog = dialog
        dialog.open()
        return dialog

    def _on_export_dialog_finished(self, _result: int) -> None:
        dialog, self._export_dialog = self._export_dialog, None
        if dialog is not None:
            dialog.deleteLater()

    def export_to(self, path: Path, fmt: str) -> asyncio.Task[bool]:
        """Write the transcript shown (finished lines) to `path` as `fmt`, off the GUI thread."""
        return self._spawn(self._export(path, fmt), "export")

    async def _export(self, path: Path, fmt: str) -> bool:
        from captioner.core.exports import render
        from captioner.journal import ExportTarget, check_target, write_atomic
        from captioner.ui.export_dialog import EXPORT_FILTERS

        target = ExportTarget(fmt, path)
        utterances = list(self.transcript.utterances)
        info = self.transcript.export_info()

        def write() -> None:
            # as `listen --export` writes it, with each speaker's subtitles in their colour
            write_atomic(path, render(fmt, utterances, info=info, speaker_colours=True))

        problem = await asyncio.to_thread(check_target, target)
        if problem is None:
            try:
                await asyncio.to_thread(write)
            except OSError as exc:
                problem = exc.strerror or str(exc)
        if problem is not None:
            self.window.banner.show_message(
                f"Could not export to {path}: {problem}. Choose another place (Ctrl+E).",
                kind="error",
                action=("Export…", "export"),
            )
            return False
        self.store.save_export_choice(path.parent, fmt)
        kind = EXPORT_FILTERS[fmt][0].split(" (")[0]
        count = len(utterances)
        self.window.status.showMessage(
            f"Exported {count} line{'' if count == 1 else 's'} to {path} ({kind})", 8000
        )
        return True

    # -- restoring what a crash left ------------------------------------------------------------

    async def _offer_restore(self) -> None:
        """At launch: say so when earlier sessions ended without finishing (non-modal)."""
        from captioner import journal

        found = await asyncio.to_thread(journal.find_unfinished)
        self.unfinished = [i for i in found if i.utterances]
        if not self.unfinished or self._closing:
            return
        lines = sum(i.utterances for i in self.unfinished)
        newest = self.unfinished[-1]
        if len(self.unfinished) == 1:
            what = f"The session of {newest.describe()} ended without finishing."
        else:
            what = (
                f"{len(self.unfinished)} earlier sessions ended without finishing "
                f"({lines} lines; the newest: {newest.describe()})."
            )
        self.window.restore_bar.offer(
            f"{what} Restore its {lines} line{'' if lines == 1 else 's'} into the window?"
            if len(self.unfinished) == 1
            else f"{what} Restore them into the window?"
        )

    def restore_unfinished(self) -> asyncio.Task[int]:
        """Put the unfinished journals' lines back in the window; returns how many.

        A second press while one restore runs joins it (the lines come back once).
        """
        if self._restore_task is None or self._restore_task.done():
            self._restore_task = self._spawn(self._restore(), "restore")
        return self._restore_task

    async def _restore(self) -> int:
        from captioner import journal
        from captioner.core.captions import Committed

        if not self.unfinished:
            await self._offer_restore()
        if not self.unfinished:
            self.window.status.showMessage("No unfinished session to restore.", 5000)
            return 0
        infos, self.unfinished = self.unfinished, []
        self.window.restore_bar.hide()
        restored = 0
        for info in infos:
            try:
                contents = await asyncio.to_thread(journal.read, info.path)
            except journal.JournalError as exc:
                self.window.banner.show_message(f"Could not restore: {exc}", kind="error")
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
            self.window.banner.show_message(problem, kind="error")
        text = (
            f"Restored {restored} line{'' if restored == 1 else 's'} from the unfinished session."
        )
        self.window.status.showMessage(text, 8000)
        self.announcer.announce(text)
        return restored

    def delete_unfinished(self) -> asyncio.Task[int]:
        return self._spawn(self._delete_unfinished(), "delete journals")

    async def _delete_unfinished(self) -> int:
        from captioner import journal

        infos, self.unfinished = self.unfinished, []
        self.window.restore_bar.hide()
        deleted = 0
        for info in infos:
            try:
                await asyncio.to_thread(journal.discard, info.path)
                deleted += 1
            except OSError as exc:
                self.window.banner.show_message(
                    f"Could not delete {info.path}: {exc.strerror or exc}", kind="error"
                )
        self.window.status.showMessage(
            f"Deleted {deleted} unfinished journal{'' if deleted == 1 else 's'}.", 5000
        )
        return deleted

    # -- the overlay ------------------------------------------------------------------------------

    def show_overlay(self, on: bool) -> None:
        """Show or hide the subtitle overlay (the window's checkable action calls this)."""
        from PySide6.QtGui import QGuiApplication

        from captioner.ui.overlay import always_on_top_problem

        self.window.set_checked_quietly(self.window.overlay_action, on)
        if on:
            self.overlay.show()
            self.overlay.show_where()
            problem = always_on_top_problem(QGuiApplication.platformName())
            if problem and not self._wayland_said:
                self._wayland_said = True
                self.window.banner.show_message(problem, kind="info")
        else:
            self.overlay.hide()
        if self.prefs.overlay_visible != on and not self._closing:
            self.prefs = dataclasses.replace(self.prefs, overlay_visible=on)
            self.store.save(self.prefs)

    def set_click_through(self, on: bool) -> None:
        self.window.set_checked_quietly(self.window.click_through_action, on)
        self._keep_overlay_look(dataclasses.replace(self.prefs.overlay, click_through=on))
        self.window.status.showMessage(
            "Overlay click-through on: the mouse reaches the windows below "
            "(Ctrl+Shift+K turns it off)."
            if on
            else "Overlay click-through off: drag the overlay to move it, its edges to resize.",
            6000,
        )

    def _keep_overlay_look(self, look: OverlayLook) -> None:
        self.overlay.set_look(look)
        self.prefs = dataclasses.replace(self.prefs, overlay=self.overlay.look)
        self.store.save(self.prefs)

    def _on_overlay_placed(self) -> None:
        self.store.save_overlay_geometry(self.overlay.placement())

    def open_overlay_settings(self) -> OverlayDialog:
        """The overlay's look, previewed live on the overlay; opened with `open()`."""
        from PySide6.QtGui import QGuiApplication

        from captioner.ui.overlay import always_on_top_problem
        from captioner.ui.overlay_dialog import OverlayDialog

        if self._overlay_dialog is not None and self._overlay_dialog.isVisible():
            self._overlay_dialog.raise_()
            self._overlay_dialog.activateWindow()
            return self._overlay_dialog
        note = always_on_top_problem(QGuiApplication.platformName())
        dialog = OverlayDialog(self.prefs.overlay, note, self.window)
        dialog.look_changed.connect(self.overlay.set_look)
        dialog.saved.connect(self._on_overlay_dialog_saved)
        dialog.finished.connect(self._on_overlay_dialog_finished)
        self._overlay_dialog = dialog
        self._overlay_shown_before_dialog = self.overlay.isVisible()
        self.overlay.set_preview(True)
        self.overlay.show()
        dialog.open()
        return dialog

    def _on_overlay_dialog_saved(self, look: OverlayLook) -> None:
        self._keep_overlay_look(look)
        self.window.set_checked_quietly(self.window.click_through_action, look.click_through)

    def _on_overlay_dialog_finished(self, _result: int) -> None:
        dialog, self._overlay_dialog = self._overlay_dialog, None
        self.overlay.set_preview(False)
        if not self._overlay_shown_before_dialog and not self.window.overlay_action.isChecked():
            self.overlay.hide()
        if dialog is not None:
            dialog.deleteLater()

    # -- devices ----------------------------------------------------------------------------

    def refresh_devices(self) -> asyncio.Task[None]:
        """Read the device list again (in a worker thread) unless something is streaming."""
        return self._spawn(self._refresh_devices(), "device scan")

    async def _refresh_devices(self) -> None:
        from captioner.audio.devices import DeviceError

        if self._file is not None or self._closing:
            return
        if self._rescan is not None:
            await asyncio.shield(self._rescan)
            return
        if self.session is not None or self.window.run_state is not RunState.IDLE:
            return
        loop = asyncio.get_running_loop()
        rescan = loop.run_in_executor(None, self._device_lister)
        self._rescan = rescan
        problem = ""
        try:
            devices = await rescan
        except DeviceError as exc:
            devices, problem = [], str(exc)
        finally:
            self._rescan = None
        picker = self.window.picker
        picker.set_devices(devices)
        if problem:
            self.window.banner.show_message(problem, kind="error")
        if self.session is None:
            self._show_source(listening=False)

    async def _wait_for_rescan(self) -> None:
        rescan = self._rescan
        if rescan is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(rescan)

    async def _watch_devices(self) -> None:
        """Plugging a device in or out updates the list (PortAudio is re-read while idle)."""
        while not self._closing:
            await asyncio.sleep(DEVICE_POLL_SECONDS)
            if self.session is None and self.window.run_state is RunState.IDLE:
                await self._refresh_devices()

    def _on_picker_device_selected(self, device: InputDevice) -> None:
        self._remember_device(device)
        self._show_source(listening=self.session is not None)
        if self.session is not None:
            self._restart_asked = True
            self.window.set_run_state(RunState.STOPPING)
            self.session.request_stop()

    def _remember_device(self, device: InputDevice) -> None:
        self.prefs = dataclasses.replace(
            self.prefs, device_name=device.name, device_hostapi=device.hostapi
        )
        self.store.save(self.prefs)

    def _on_pane_font_size_changed(self, points: int) -> None:
        self.prefs = dataclasses.replace(self.prefs, font_size=points)
        self.store.save(self.prefs)

    # -- settings ---------------------------------------------------------------------------

    def open_settings(self) -> SettingsDialog:
        from captioner.ui.settings_dialog import KeyInfo, SettingsDialog

        if self._dialog is not None and self._dialog.isVisible():
            self._dialog.raise_()
            self._dialog.activateWindow()
            return self._dialog
        keys = self.keys
        info = KeyInfo(
            keychain_available=keys.keychain_available,
            keychain_name=keys.keychain_name,
            source=keys.source,
            file_path=keys.file_path,
            problem=keys.problem,
        )
        dialog = SettingsDialog(self.prefs, keys.load(), info, self.window)
        dialog.saved.connect(self._on_settings_saved)
        dialog.finished.connect(self._on_settings_finished)
        self._dialog = dialog
        dialog.open()
        return dialog

    def _on_settings_finished(self, _result: int) -> None:
        dialog = self._dialog
        self._dialog = None
        if dialog is not None:
            dialog.deleteLater()

    def _on_settings_saved(self, result: SettingsResult) -> None:
        from captioner.ui.keystore import KeySource

        self.prefs = result.preferences
        self.store.save(self.prefs)
        given_for_this_run = self.keys.source in (KeySource.ARGUMENT, KeySource.ENVIRONMENT)
        if result.api_key != self.keys.load() or not given_for_this_run:
            self.keys.save(result.api_key, remember_in_file=result.remember_in_file)
        self._show_engine()
        if self.session is not None:
            self.window.banner.show_message(
                "The new settings apply from the next start.",
                kind="info",
                action=("Restart now", "restart"),
            )

    def _on_banner_action_triggered(self, action: str) -> None:
        self.window.banner.dismiss()
        if action == "settings":
            self.open_settings()
        elif action == "start":
            self.start()
        elif action == "rescan":
            self.refresh_devices()
        elif action == "export":
            self.open_export()
        elif action == "restart" and self.session is not None:
            self._restart_asked = True
            self.window.set_run_state(RunState.STOPPING)
            self.session.request_stop()

    # -- shutdown ---------------------------------------------------------------------------

    def request_shutdown(self) -> None:
        """Begin the ordered shutdown once; later calls do nothing."""
        if self._shutdown_task is None:
            if self._shutdown_deadline is not None:
                # Every step below is bounded, but a call that blocks the GUI thread cannot
                # be cancelled: past the deadline the process ends anyway.
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
        self._closing = True
        started = time.monotonic()
        try:
            self._save_window()
            self.window.status.showMessage("Closing…")
            if self._start_task is not None and not self._start_task.done():
                self._start_task.cancel()
                await asyncio.wait({self._start_task}, timeout=2.0)
            session, task, source = self.session, self._session_task, self.source
            if session is not None:
                session.request_stop()  # CloseStream once the queued audio is out
            if task is not None and not task.done():
                done, _ = await asyncio.wait({task}, timeout=DRAIN_SECONDS + 2.0)
                if not done:
                    log.warning("the session did not finish in time; cancelling it")
                    task.cancel()
                    await asyncio.wait({task}, timeout=2.0)
            if source is not None:
                source.close()
            self.transcript.finish("closed")
            await self.engine.stop()
            rescan = self._rescan
            if rescan is not None:
                await asyncio.wait({rescan}, timeout=2.0)
            pending = [t for t in self._tasks if not t.done()]
            for leftover in pending:
                leftover.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        except Exception as exc:
            self.report_error("shutdown", exc, (type(exc), exc, exc.__traceback__))
        finally:
            log.debug("shutdown took %.2f s", time.monotonic() - started)
            for dialog in (self._dialog, self._overlay_dialog, self._export_dialog):
                if dialog is not None:
                    dialog.reject()
            self.themes.detach()
            self.overlay.close()
            self.overlay.deleteLater()
            self.window.allow_close()
            self.window.close()
            if self._watchdog is not None:
                self._watchdog.cancel()
            if not self.finished.done():
                self.finished.set_result(EXIT_OK)

    def _save_window(self) -> None:
        self.store.save_window_geometry(self.window.saveGeometry())
        self.store.save_overlay_geometry(self.overlay.placement())


def _exit_stuck(deadline: float) -> None:
    """The shutdown watchdog (a timer thread): end the process that could not end itself."""
    log.error("quitting took longer than %.0f s; ending the process", deadline)
    logging.shutdown()
    os._exit(1)
