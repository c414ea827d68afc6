"""Run the offline server as a child process of the app (or of a test).

A separate process keeps Whisper's CPU work and memory out of the GUI process and lets the app
talk to it exactly as it talks to Deepgram. The child is `python -m captioner.server serve
--port 0` (in a frozen bundle, which has no `python -m`, the bundle's own executable:
`captioner serve --port 0`); it announces the port it got on stdout
(`LISTENING ws://127.0.0.1:PORT/v1/listen`).
We wait for that line and for the port to accept a TCP connection, and on the way out we
terminate it (then kill it if it lingers). The child also watches our PID and exits if we die
without stopping it.

By default the child requires a random token, passed through the environment (not the command
line, which other local users can read): use `server.token` as the API key
(`Authorization: Token <token>`), so other processes on the machine cannot use the engine.

    async with start_embedded_server() as server:
        settings = StreamSettings(url=server.listen_url, api_key=server.token)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import secrets
import sys
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from captioner.server.cli import EXIT_MODEL_MISSING, LISTENING_PREFIX, TOKEN_ENV
from captioner.server.models import FETCH_HINT

log = logging.getLogger("captioner.server.child")

STDERR_TAIL_LINES = 40


class EmbeddedServerError(RuntimeError):
    """The child did not come up; the message includes the end of its stderr."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr

    @property
    def model_missing(self) -> bool:
        return self.returncode == EXIT_MODEL_MISSING


@dataclass
class EmbeddedServer:
    """A running child server. `stop()` (or leaving `async with`) ends it."""

    process: asyncio.subprocess.Process
    listen_url: str
    port: int
    host: str
    token: str | None
    _stderr: collections.deque[str] = field(repr=False)
    _drains: list[asyncio.Task[None]] = field(repr=False)

    @property
    def url(self) -> str:
        """Base URL (`ws://host:port`), e.g. for an SDK's environment setting."""
        return self.listen_url.removesuffix("/v1/listen")

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    async def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; returns the exit code."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                log.warning("offline server (pid %d) ignored SIGTERM; killing it", self.pid)
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        await _finish_drains(self._drains)
        return self.process.returncode

    async def __aenter__(self) -> EmbeddedServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class _Starter:
    """Lets `start_embedded_server()` be awaited or used directly in `async with`."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._server: EmbeddedServer | None = None

    def __await__(self) -> Generator[Any, None, EmbeddedServer]:
        return _launch(**self._kwargs).__await__()

    async def __aenter__(self) -> EmbeddedServer:
        self._server = await _launch(**self._kwargs)
        return self._server

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            await self._server.stop()


def start_embedded_server(
    *,
    model_dir: str | os.PathLike[str] | None = None,
    token: str | None = None,
    require_token: bool = True,
    host: str = "127.0.0.1",
    inactivity_timeout: float | None = None,
    engine: str = "whisper",
    extra_args: Sequence[str] = (),
    python: str | None = None,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 60.0,
) -> _Starter:
    """Start `python -m captioner.server serve --port 0 ...` and wait until it accepts connections.

    `token`: the token clients must send; when None and `require_token` is true a random one is
    made (read it from `server.token`). `engine="test"` runs the fake engine (no model needed).
    Raises `EmbeddedServerError` if the child exits or stays silent for `startup_timeout`
    seconds; when the Whisper model is missing its message says to run `captioner models fetch`.
    """
    if token is None and require_token:
        token = secrets.token_urlsafe(24)
    return _Starter(
        model_dir=model_dir,
        token=token,
        host=host,
        inactivity_timeout=inactivity_timeout,
        engine=engine,
        extra_args=tuple(extra_args),
        python=python,
        env=env,
        startup_timeout=startup_timeout,
    )


async def _launch(
    *,
    model_dir: str | os.PathLike[str] | None,
    token: str | None,
    host: str,
    inactivity_timeout: float | None,
    engine: str,
    extra_args: tuple[str, ...],
    python: str | None,
    env: Mapping[str, str] | None,
    startup_timeout: float,
) -> EmbeddedServer:
    command = _serve_command(python, host, engine, model_dir, inactivity_timeout, extra_args)
    child_env = _child_env(env, token)

    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env,
        # our own process group: a Ctrl+C in the terminal reaches the app, which stops us
        start_new_session=os.name == "posix",
    )
    assert process.stdout is not None and process.stderr is not None
    stderr_lines: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    announced: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    drains = [
        asyncio.create_task(_drain_stdout(process.stdout, announced)),
        asyncio.create_task(_drain_stderr(process.stderr, stderr_lines)),
    ]

    async def fail(message: str) -> EmbeddedServerError:
        return await _failed(process, drains, stderr_lines, message)

    try:
        async with asyncio.timeout(startup_timeout):
            waiter = asyncio.create_task(process.wait())
            pending: set[asyncio.Future[Any]] = {announced, waiter}
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if announced not in done:
                await asyncio.sleep(0.1)  # let stderr's last lines arrive
                raise await fail(
                    f"the offline server exited with code {process.returncode} before it was ready"
                )
            waiter.cancel()
            listen_url = announced.result()
            port = int(listen_url.rsplit(":", 1)[1].split("/", 1)[0])
            await _wait_accepting(host, port, process)
    except TimeoutError:
        raise await fail(
            f"the offline server did not become ready within {startup_timeout:.0f} s"
        ) from None
    except asyncio.CancelledError:
        await fail("cancelled")
        raise
    if process.returncode is not None:
        raise await fail(f"the offline server exited with code {process.returncode}")
    log.info("offline server ready at %s (pid %d)", listen_url, process.pid)
    return EmbeddedServer(process, listen_url, port, host, token, stderr_lines, drains)


def _serve_command(
    python: str | None,
    host: str,
    engine: str,
    model_dir: str | os.PathLike[str] | None,
    inactivity_timeout: float | None,
    extra_args: tuple[str, ...],
) -> list[str]:
    command = [
        *_server_command(python),
        "serve",
        "--host",
        host,
        "--port",
        "0",
        "--engine",
        engine,
        "--parent-pid",
        str(os.getpid()),
    ]
    if model_dir is not None:
        command += ["--model-dir", str(Path(model_dir))]
    if inactivity_timeout is not None:
        command += ["--inactivity-timeout", str(inactivity_timeout)]
    return command + list(extra_args)


def _child_env(env: Mapping[str, str] | None, token: str | None) -> dict[str, str]:
    """The child's environment: the token (if any) in its variable, never on its command line."""
    child_env = dict(os.environ if env is None else env)
    child_env.pop(TOKEN_ENV, None)
    if token is not None:
        child_env[TOKEN_ENV] = token
    child_env["PYTHONUNBUFFERED"] = "1"
    return child_env


async def _failed(
    process: asyncio.subprocess.Process,
    drains: list[asyncio.Task[None]],
    stderr_lines: collections.deque[str],
    message: str,
) -> EmbeddedServerError:
    """End a child that did not start, and say why, with the end of what it wrote."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    await process.wait()
    await _finish_drains(drains)
    tail = "\n".join(stderr_lines)
    if process.returncode == EXIT_MODEL_MISSING:
        message = f"the offline speech model is not installed: {FETCH_HINT}. {message}"
    return EmbeddedServerError(
        f"{message}\n--- server stderr ---\n{tail}" if tail else message,
        returncode=process.returncode,
        stderr=tail,
    )


def _server_command(python: str | None) -> list[str]:
    """How to run the server's command line: `python -m captioner.server`, or in a frozen
    bundle (PyInstaller), which has no `python -m`, the bundle's own executable (`captioner`)."""
    if python is None and getattr(sys, "frozen", False):
        return [sys.executable]
    return [python or sys.executable, "-m", "captioner.server"]


async def _wait_accepting(host: str, port: int, process: asyncio.subprocess.Process) -> None:
    connect_host = "127.0.0.1" if host in ("", "0.0.0.0") else host.strip("[]")
    while process.returncode is None:
        try:
            _, writer = await asyncio.open_connection(connect_host, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


async def _drain_stdout(stream: asyncio.StreamReader, announced: asyncio.Future[str]) -> None:
    """Find the LISTENING line, then keep reading so the child never blocks on a full pipe."""
    while line := await stream.readline():
        text = line.decode(errors="replace").strip()
        if text.startswith(LISTENING_PREFIX) and not announced.done():
            announced.set_result(text.removeprefix(LISTENING_PREFIX).strip())


async def _drain_stderr(stream: asyncio.StreamReader, tail: collections.deque[str]) -> None:
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip()
        tail.append(text)
        log.info("server: %s", text)


async def _finish_drains(drains: list[asyncio.Task[None]]) -> None:
    """The pipes reach EOF once the child is gone; give the readers a moment, then cancel."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*drains, return_exceptions=True), 2.0)
    for task in drains:
        task.cancel()
    await asyncio.gather(*drains, return_exceptions=True)
