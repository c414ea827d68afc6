"""The command line: `captioner devices`, `listen`, `restore`, `serve`, `models`.

stdout carries captions only (one committed utterance per line, or one JSON event per
line with --json); everything else (status, interims, errors) goes to stderr, so
`captioner listen > notes.txt` is a transcript. `listen` also keeps a crash-safe journal
of what it commits, which `captioner restore` gives back after a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from captioner import __version__, endpoints
from captioner.audio.factory import build_source
from captioner.core import closecodes
from captioner.core.captions import CaptionEvent, Committed, LiveChanged, Utterance
from captioner.core.config import SettingsError, StreamSettings
from captioner.core.exports import FORMATS
from captioner.core.messages import ServerMessage
from captioner.endpoints import Target
from captioner.journal import ExportTarget
from captioner.logs import setup_logging
from captioner.transcript import Transcript

if TYPE_CHECKING:
    from captioner.audio.resilient import SourceEvent
    from captioner.audio.sources import AudioSource
    from captioner.session import SessionEnd, Status

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

log = logging.getLogger("captioner")


def _say(text: str) -> None:
    print(f"captioner: {text}", file=sys.stderr, flush=True)


# -- devices ------------------------------------------------------------------------


def cmd_devices(args: argparse.Namespace) -> int:
    from captioner.audio.devices import DeviceError
    from captioner.audio.system import list_capture_devices

    try:
        devices = list_capture_devices()
    except DeviceError as exc:
        _say(str(exc))
        return EXIT_USAGE
    if args.json:
        for d in devices:
            print(
                json.dumps(
                    {
                        "index": d.index,
                        "name": d.name,
                        "hostapi": d.hostapi,
                        "channels": d.max_input_channels,
                        "default_samplerate": d.default_samplerate,
                        "default": d.is_default,
                        "kind": d.kind,
                    }
                )
            )
        return EXIT_OK
    if not devices:
        _say("no audio input device found")
        return EXIT_OK
    for d in devices:
        mark = "*" if d.is_default else " "
        kind = "system audio · " if d.is_system_audio else ""
        print(
            f"{mark} {d.index:>3}  {d.name}  ({kind}{d.hostapi}, {d.max_input_channels} ch, "
            f"{d.default_samplerate:g} Hz)"
        )
    return EXIT_OK


# -- listen -------------------------------------------------------------------------


def _utterance_json(u: Utterance) -> dict[str, object]:
    return {
        "type": "gap" if u.gap else "utterance",
        "channel": u.channel,
        "start": round(u.start, 3),
        "end": round(u.end, 3),
        "text": u.text,
        "speaker": u.speaker,
        "unconfirmed": u.unconfirmed,
        "words": [
            {
                "word": w.display,
                "start": round(w.start, 3),
                "end": round(w.end, 3),
                "confidence": round(w.confidence, 4),
                "speaker": w.speaker,
            }
            for w in u.words
        ],
    }


class ConsoleObserver:
    """Writes committed captions to stdout, and status and interims to stderr."""

    def __init__(self, *, json_lines: bool, interim: bool, out: TextIO, err: TextIO) -> None:
        self.json_lines = json_lines
        self.interim = interim
        self.out = out
        self.err = err
        self._interim_shown = False
        self._err_tty = err.isatty()

    def status_changed(self, status: Status) -> None:
        from captioner.session import State

        if status.state is State.ERROR:
            return  # the final report says it once, with what to do
        if status.state is State.RECONNECTING and status.meaning is not None:
            m = status.meaning
            text = f"{status.detail} · {m.label}: {m.title}" if status.detail else m.title
        else:
            text = status.state.value
            if status.detail:
                text += f" · {status.detail}"
        if status.request_id and status.state is State.LIVE:
            text += f" · request id {status.request_id}"
        self._clear_interim()
        print(f"captioner: {text}", file=self.err, flush=True)

    def captions_changed(self, events: Sequence[CaptionEvent]) -> None:
        for event in events:
            if isinstance(event, Committed):
                self._clear_interim()
                u = event.utterance
                if self.json_lines:
                    print(json.dumps(_utterance_json(u), ensure_ascii=False), file=self.out)
                else:
                    print(u.text, file=self.out)
                self.out.flush()
            elif isinstance(event, LiveChanged) and self.interim:
                text = f"{event.final_text} {event.interim_text}".strip()
                if not text:
                    continue
                if self._err_tty:
                    width = 100
                    shown = text if len(text) <= width else "…" + text[-width + 1 :]
                    print(f"\r\x1b[2K… {shown}", end="", file=self.err, flush=True)
                    self._interim_shown = True
                else:
                    print(f"… {text}", file=self.err, flush=True)

    def message_received(self, message: ServerMessage) -> None:
        pass

    def source_changed(self, event: SourceEvent) -> None:
        pass  # the session's status line already says it, with what the connection does

    def _clear_interim(self) -> None:
        if self._interim_shown:
            print("\r\x1b[2K", end="", file=self.err, flush=True)
            self._interim_shown = False


class TranscriptKeeper:
    """The console behind the transcript: each committed line is journaled (see
    `captioner.transcript`) before the console prints it."""

    def __init__(self, console: ConsoleObserver, transcript: Transcript) -> None:
        self.console = console
        self.transcript = transcript

    def status_changed(self, status: Status) -> None:
        self.console.status_changed(status)

    def captions_changed(self, events: Sequence[CaptionEvent]) -> None:
        for event in events:
            if isinstance(event, Committed):
                self.transcript.commit(event.utterance)
        self.say_problem()
        self.console.captions_changed(events)

    def message_received(self, message: ServerMessage) -> None:
        self.console.message_received(message)

    def source_changed(self, event: SourceEvent) -> None:
        self.console.source_changed(event)

    def end(self, outcome: str | None) -> None:
        """Finish the journal with `outcome`; None (a crash) leaves it to `restore`."""
        if outcome is None:
            self.transcript.abandon()
        else:
            self.transcript.finish(outcome)
        self.say_problem()

    def say_problem(self) -> None:
        problem = self.transcript.take_problem()
        if problem:
            _say(problem)


def _notice_unfinished() -> None:
    """One line when an earlier session's journal was never finished."""
    from captioner import journal

    kept = [i for i in journal.find_unfinished() if i.count]
    if not kept:
        return
    count = sum(i.count for i in kept)
    utterances = f"{count} utterance{'' if count == 1 else 's'} kept"
    who = "An earlier session" if len(kept) == 1 else f"{len(kept)} earlier sessions"
    _say(f"{who} ended without finishing: {utterances}. `captioner restore` shows them.")


def _export_info(started: str | None, engine: str, source: str) -> dict[str, Any]:
    return {"started": started, "engine": engine, "source": source}


def _check_targets(targets: Sequence[ExportTarget]) -> str | None:
    """Why the exports cannot be written, checked before anything starts; None if they can."""
    from captioner.journal import check_target

    seen: set[str] = set()
    for target in targets:
        key = os.path.abspath(target.path)
        if key in seen:
            return f"--export {target}: that file is already named by another --export"
        seen.add(key)
        problem = check_target(target)
        if problem is not None:
            return f"--export {target}: {problem}"
    return None


def _write_exports(
    targets: Sequence[ExportTarget], utterances: Sequence[Utterance], info: dict[str, Any]
) -> bool:
    """Write every export (each atomically); False if any failed, which is said."""
    from captioner.journal import write_export

    ok = True
    for target in targets:
        try:
            write_export(target, utterances, info)
        except OSError as exc:
            _say(f"could not write {target.path}: {exc.strerror or exc}")
            ok = False
        else:
            _say(f"wrote {target.format} to {target.path}")
    return ok


def _outcome(end: SessionEnd) -> str:
    if end.meaning is not None and not end.ok:
        return f"error: {end.meaning.label} {end.meaning.title}"
    return end.detail or "finished"


@contextlib.asynccontextmanager
async def _endpoint(args: argparse.Namespace) -> AsyncIterator[Target]:
    """Where to stream: the given URL, Deepgram with a key, or the embedded engine."""
    target = endpoints.for_command_line(args.url, endpoints.key_for_run(args.api_key))
    if not target.offline:
        yield target
        return
    from captioner.server.child import start_embedded_server

    _say("no API key set: starting the offline engine")
    async with start_embedded_server(model_dir=args.model_dir) as server:
        yield target.running_at(server.listen_url, server.token)


def _settings(args: argparse.Namespace, endpoint: Target) -> StreamSettings:
    return StreamSettings(
        url=endpoint.url or "",
        api_key=endpoint.api_key,
        model=args.model,
        language=args.language,
        chunk_ms=args.chunk_ms,
        interim_results=True,
    )


async def _listen(args: argparse.Namespace) -> int:
    from captioner.audio.devices import DeviceError
    from captioner.audio.sources import AudioFileError

    console = ConsoleObserver(
        json_lines=args.json, interim=args.interim, out=sys.stdout, err=sys.stderr
    )
    transcript = Transcript(
        journal=not args.no_journal, settings={"model": args.model, "language": args.language}
    )
    keeper = TranscriptKeeper(console, transcript)
    try:
        source = build_source(
            file=args.file, fast=args.fast, device=args.device, chunk_ms=args.chunk_ms
        )
    except (DeviceError, AudioFileError, ValueError) as exc:
        _say(str(exc))
        return EXIT_USAGE
    # Validate what can be validated before any child process or socket exists.
    probe = endpoints.for_command_line(args.url, endpoints.key_for_run(args.api_key))
    if probe.offline:
        probe = probe.running_at("ws://127.0.0.1:1/v1/listen", None)
    try:
        _settings(args, probe).validate()
    except SettingsError as exc:
        _say(str(exc))
        return EXIT_USAGE
    _notice_unfinished()
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    info = _export_info(started, "", source.description)
    outcome: str | None = None
    try:
        code, outcome = await _run_listen(args, source, keeper, info)
    finally:
        keeper.end(outcome)
        exported = _write_exports(args.export, transcript.utterances, info)
    return code if exported or code != EXIT_OK else EXIT_FAILED


async def _run_listen(
    args: argparse.Namespace,
    source: AudioSource,
    keeper: TranscriptKeeper,
    info: dict[str, Any],
) -> tuple[int, str]:
    """Run the session to its end: (exit code, outcome for the journal)."""
    from captioner.session import Session, SessionOptions

    async with _endpoint(args) as endpoint:
        settings = _settings(args, endpoint)
        _say(f"engine: {endpoint.engine} · {source.description}")
        info["engine"] = endpoint.engine
        keeper.transcript.begin_session(
            engine=endpoint.engine, source=source.description, now=time.monotonic()
        )
        keeper.transcript.open_journal()
        keeper.say_problem()
        session = Session(
            settings,
            source,
            keeper,
            SessionOptions(
                max_realtime=None if args.fast else 1.2, give_up_after=args.give_up_after
            ),
        )
        loop = asyncio.get_running_loop()
        interrupts = 0

        def on_interrupt() -> None:
            nonlocal interrupts
            interrupts += 1
            if interrupts == 1:
                _say("stopping (press Ctrl-C again to quit at once)")
                session.request_stop()
            else:
                runner.cancel()

        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGINT, on_interrupt)
            loop.add_signal_handler(signal.SIGTERM, on_interrupt)
        if args.duration is not None:
            loop.call_later(args.duration, session.request_stop)
        runner = asyncio.create_task(session.run())
        try:
            end = await runner
        except asyncio.CancelledError:
            _say("interrupted")
            return EXIT_INTERRUPTED, "interrupted"
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, ValueError):
                    loop.remove_signal_handler(sig)
        dropped = getattr(source, "dropped_blocks", 0)
        if dropped:
            _say(f"{dropped} audio blocks were dropped (the computer could not keep up)")
        if end.meaning is not None and not end.ok:
            _say(closecodes.describe(end.meaning, end.detail))
            if end.note:
                _say(end.note)
            if session.request_id:
                _say(f"request id {session.request_id}")
        return end.exit_code, _outcome(end)


def cmd_listen(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        _say("--duration must be a positive number of seconds")
        return EXIT_USAGE
    problem = _check_targets(args.export)
    if problem is not None:
        _say(problem)
        return EXIT_USAGE
    try:
        return asyncio.run(_listen(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


# -- restore ------------------------------------------------------------------------


def cmd_restore(args: argparse.Namespace) -> int:
    from captioner import journal

    if args.list:
        if args.export or args.discard or args.journal:
            _say("--list shows the unfinished sessions; use it alone")
            return EXIT_USAGE
        found = journal.find_unfinished()
        if not found:
            _say("no unfinished session: every earlier session finished")
        for item in found:
            print(f"{item.id}  {item.describe()}")
        return EXIT_OK
    if args.journal:
        path = journal.resolve(args.journal)
        if path is None:
            _say(f"no journal {args.journal!r} (`captioner restore --list` shows them)")
            return EXIT_USAGE
        if journal.in_use(path):
            _say(f"{path} belongs to a session that is still running")
            return EXIT_USAGE
        paths = [path]
    else:
        paths = [item.path for item in journal.find_unfinished()]
        if not paths:
            _say("nothing to restore: every earlier session finished")
            return EXIT_OK
    if args.export and len(paths) > 1:
        _say(
            f"{len(paths)} sessions ended without finishing; name one to export "
            "(`captioner restore --list` shows them)"
        )
        return EXIT_USAGE
    problem = _check_targets(args.export)
    if problem is not None:
        _say(problem)
        return EXIT_USAGE
    code = EXIT_OK
    for path in paths:
        try:
            contents = journal.read(path)
        except journal.JournalError as exc:
            _say(str(exc))
            return EXIT_USAGE
        found_info = contents.info
        _say(f"session of {found_info.describe()}")
        if found_info.damaged_lines:
            _say(f"{found_info.damaged_lines} damaged line(s) skipped (a write was cut short)")
        if found_info.invalid_lines:
            _say(f"{found_info.invalid_lines} line(s) with impossible values skipped")
        if not args.export and not args.discard:
            for u in contents.utterances:
                if args.json:
                    print(json.dumps(_utterance_json(u), ensure_ascii=False))
                else:
                    print(u.text)
            sys.stdout.flush()
        header = contents.header
        started = header.get("started")
        info = _export_info(
            started if isinstance(started, str) else None,
            found_info.engine,
            found_info.source,
        )
        if not _write_exports(args.export, contents.utterances, info):
            code = EXIT_FAILED
            continue
        if args.discard:
            journal.discard(path)
            _say(f"discarded {path}")
        else:
            kept = journal.mark_restored(path)
            _say(f"the journal is kept in {kept}")
    return code


# -- parser -------------------------------------------------------------------------


def _verbosity(default: object) -> argparse.ArgumentParser:
    """-v for subcommands too; SUPPRESS keeps a subcommand from resetting the main -v."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-v", "--verbose", action="count", default=default, help=argparse.SUPPRESS)
    return parent


def _add_listen_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "listen",
        parents=[_verbosity(argparse.SUPPRESS)],
        help="caption a microphone or a WAV file on the command line",
        description="Caption audio without a window. Committed captions go to stdout, "
        "one line each; status and interims go to stderr.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--device", help="input device name (or part of it) or index")
    src.add_argument("--file", help="caption a WAV file as if it were the microphone")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--realtime", action="store_true", help="play the file at its own pace (default)"
    )
    pace.add_argument("--fast", action="store_true", help="send the file as fast as possible")
    p.add_argument("--url", help="a Deepgram-compatible endpoint, ws:// or wss://")
    p.add_argument("--api-key", help="Deepgram API key (default: $DEEPGRAM_API_KEY)")
    p.add_argument("--model", default="nova-3")
    p.add_argument("--language", default="en")
    p.add_argument("--chunk-ms", type=int, default=100, help="audio per message, 20-250 ms")
    p.add_argument("--interim", action="store_true", help="show interim results on stderr")
    p.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument(
        "--give-up-after",
        type=float,
        default=30.0,
        metavar="S",
        help="end with exit code 5 when the server stays unreachable this long (default 30)",
    )
    p.add_argument("--model-dir", help="offline engine model folder")
    _add_export_option(p, "when the session ends, also on Ctrl-C or an error")
    p.add_argument(
        "--no-journal",
        action="store_true",
        help="keep no crash-safe journal (by default every committed line is written to "
        "the data folder first, for `captioner restore`)",
    )
    p.set_defaults(func=cmd_listen)


def _export_spec(text: str) -> ExportTarget:
    from captioner.journal import parse_export_spec

    try:
        return parse_export_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_export_option(p: argparse.ArgumentParser, when: str) -> None:
    p.add_argument(
        "--export",
        action="append",
        default=[],
        type=_export_spec,
        metavar="FORMAT:PATH",
        help=f"write the transcript to PATH {when}; repeatable. FORMAT is one of "
        f"{', '.join(FORMATS)}: txt has one line per utterance, txt-timestamps starts each "
        "line with [h:mm:ss], srt and vtt (WebVTT) are subtitles, json has words, times, "
        "confidence and speakers",
    )


def _add_restore_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "restore",
        parents=[_verbosity(argparse.SUPPRESS)],
        help="give back the transcript of a session that ended without finishing",
        description="Every committed caption is journaled before it is shown. When a "
        "session crashes or is killed, its journal stays unfinished; this prints its "
        "transcript on stdout (one line per utterance) and marks it restored.",
    )
    p.add_argument(
        "journal",
        nargs="?",
        help="one journal, by id (see --list) or path; default: every unfinished one",
    )
    p.add_argument("--list", action="store_true", help="list the unfinished sessions")
    _add_export_option(p, "instead of printing it")
    p.add_argument("--discard", action="store_true", help="delete the journal (after any --export)")
    p.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    p.set_defaults(func=cmd_restore)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="captioner", description="Live captions from a microphone."
    )
    parser.add_argument("--version", action="version", version=f"captioner {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more detail on stderr (-vv: debug)"
    )
    from captioner.app import add_app_arguments

    add_app_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    devices = sub.add_parser(
        "devices", help="list audio input devices", parents=[_verbosity(argparse.SUPPRESS)]
    )
    devices.add_argument("--json", action="store_true", help="one JSON object per line")
    devices.set_defaults(func=cmd_devices)
    _add_listen_parser(sub)
    _add_restore_parser(sub)
    from captioner.server.cli import add_models_parser, add_serve_parser

    add_serve_parser(sub)
    add_models_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(
        args.verbose,
        (getattr(args, "api_key", None), os.environ.get("DEEPGRAM_API_KEY")),
        replace=True,
    )
    if args.command is None:
        from captioner.app import AppOptions, run_app

        return run_app(AppOptions.from_args(args))
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
