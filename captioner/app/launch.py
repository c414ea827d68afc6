"""The window's process: the QApplication and the qasync loop, signals, and the exit code.

Rules followed here (docs/architecture.md explains them): PySide6 is imported before
qasync, so that qasync binds to it; the window and every task are created inside the
running loop; SIGINT and SIGTERM start the same ordered shutdown as closing the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from captioner.app.options import AppOptions
from captioner.audio.sources import AudioFileError
from captioner.audio.wavfile import WavFileSource
from captioner.core.config import StreamSettings
from captioner.logs import setup_logging

if TYPE_CHECKING:
    from captioner.app.root import CaptionerApp

__all__ = ["EXIT_NO_DISPLAY", "EXIT_USAGE", "display_problem", "run_app"]

EXIT_USAGE = 2
EXIT_NO_DISPLAY = 2
SHUTDOWN_DEADLINE_SECONDS = 20.0
"""After this long a stuck shutdown ends the process anyway (`run_app` only)."""


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


def _argument_problem(options: AppOptions) -> str | None:
    """Options that cannot work, found before any window opens (exit code 2)."""
    if options.file:
        try:
            WavFileSource(options.file)
        except AudioFileError as exc:
            return f"captioner: {exc}"
    if options.url:
        settings = StreamSettings(url=options.url, api_key="x")
        problems = [e for e in settings.errors() if e.setting == "url"]
        if problems:
            return f"captioner: --url: {problems[0].reason}"
    return None


def run_app(options: AppOptions, *, on_ready: Callable[[CaptionerApp], None] | None = None) -> int:
    """Open the window and run until it is closed; the process exit code.

    `on_ready` is called once the window is shown (benchmarks and screenshots use it).
    """
    problem = display_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_NO_DISPLAY
    problem = _argument_problem(options)
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    setup_logging(options.verbose, (options.api_key,), replace=False)

    # Heavy, and only for the window: PySide6 first, so that qasync binds to it.
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
        return int(loop.run_until_complete(_run_window(options, on_ready)))
    finally:
        loop.close()
        asyncio.set_event_loop(None)


async def _run_window(options: AppOptions, on_ready: Callable[[CaptionerApp], None] | None) -> int:
    """The window's whole life, inside the running loop (Qt objects made before the loop
    runs belong to no loop; tasks made before it would belong to another)."""
    from captioner.app.root import CaptionerApp

    controller = CaptionerApp(options, shutdown_deadline=SHUTDOWN_DEADLINE_SECONDS)
    restore_hooks = controller.install_error_hooks()
    try:
        with _route_signals(controller):
            await controller.launch(on_shown=on_ready)
            return await controller.finished
    finally:
        restore_hooks()


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
