"""The command line: `captioner devices`, `listen`, `restore`, `serve`, `models`.

stdout carries captions only (one committed utterance per line, or one JSON event per
line with --json); everything else (status, interims, errors) goes to stderr, so
`captioner listen > notes.txt` is a transcript. `listen` also keeps a crash-safe journal
of what it commits, which `captioner restore` gives back after a crash.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from captioner import __version__, journal
from captioner.app import AppOptions, add_app_arguments, run_app
from captioner.audio.devices import DeviceError
from captioner.audio.system import list_capture_devices
from captioner.console import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    check_targets,
    export_info,
    say,
    utterance_json,
    write_exports,
)
from captioner.core.exports import FORMATS, clock
from captioner.journal import ExportTarget, JournalContents, parse_export_spec
from captioner.listen import cmd_listen
from captioner.logs import setup_logging

log = logging.getLogger("captioner")


# -- devices ------------------------------------------------------------------------


def cmd_devices(args: argparse.Namespace) -> int:

    try:
        devices = list_capture_devices()
    except DeviceError as exc:
        say(str(exc))
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
        say("no audio input device found")
        return EXIT_OK
    for d in devices:
        mark = "*" if d.is_default else " "
        kind = "system audio · " if d.is_system_audio else ""
        print(
            f"{mark} {d.index:>3}  {d.name}  ({kind}{d.hostapi}, {d.max_input_channels} ch, "
            f"{d.default_samplerate:g} Hz)"
        )
    return EXIT_OK


# -- restore ------------------------------------------------------------------------


def cmd_restore(args: argparse.Namespace) -> int:
    if args.list:
        if args.export or args.discard or args.journal:
            say("--list shows the unfinished sessions; use it alone")
            return EXIT_USAGE
        found = journal.find_unfinished()
        if not found:
            say("no unfinished session: every earlier session finished")
        for item in found:
            print(f"{item.id}  {item.describe()}")
        return EXIT_OK
    if args.journal:
        path = journal.resolve(args.journal)
        if path is None:
            say(f"no journal {args.journal!r} (`captioner restore --list` shows them)")
            return EXIT_USAGE
        if journal.in_use(path):
            say(f"{path} belongs to a session that is still running")
            return EXIT_USAGE
        paths = [path]
    else:
        paths = [item.path for item in journal.find_unfinished()]
        if not paths:
            say("nothing to restore: every earlier session finished")
            return EXIT_OK
    if args.export and len(paths) > 1:
        say(
            f"{len(paths)} sessions ended without finishing; name one to export "
            "(`captioner restore --list` shows them)"
        )
        return EXIT_USAGE
    problem = check_targets(args.export)
    if problem is not None:
        say(problem)
        return EXIT_USAGE
    code = EXIT_OK
    for path in paths:
        try:
            contents = journal.read(path)
        except journal.JournalError as exc:
            say(str(exc))
            return EXIT_USAGE
        if not _restore_one(args, path, contents):
            code = EXIT_FAILED
    return code


def _restore_one(args: argparse.Namespace, path: Path, contents: JournalContents) -> bool:
    """Print (or export) one unfinished journal, then keep it as restored or discard it;
    False when an export could not be written (the journal is then left as it was)."""
    found_info = contents.info
    say(f"session of {found_info.describe()}")
    if found_info.damaged_lines:
        say(f"{found_info.damaged_lines} damaged line(s) skipped (a write was cut short)")
    if found_info.invalid_lines:
        say(f"{found_info.invalid_lines} line(s) with impossible values skipped")
    if not args.export and not args.discard:
        for u in contents.utterances:
            if args.json:
                print(json.dumps(utterance_json(u), ensure_ascii=False))
            else:
                print(u.text)
        sys.stdout.flush()
    header = contents.header
    started = header.get("started")
    info = export_info(
        started if isinstance(started, str) else None,
        found_info.engine,
        found_info.source,
    )
    if contents.voices.by_channel:
        info["channel_names"] = list(contents.voices.channel_names)
    if not write_exports(args.export, contents.utterances, info):
        return False
    if args.discard:
        journal.discard(path)
        say(f"discarded {path}")
    else:
        kept = journal.mark_restored(path)
        say(f"the journal is kept in {kept}")
    return True


def cmd_history(args: argparse.Namespace) -> int:
    """List past sessions (newest first), search them, or print / export / delete one."""
    from captioner import history

    try:
        with history.opened() as past:
            if args.session:
                found = past.session(args.session)
                if found is None:
                    say(f"no session {args.session!r} (`captioner history` lists them)")
                    return EXIT_USAGE
                if args.delete:
                    past.delete(found)
                    say(f"deleted the session of {found.describe()}")
                    return EXIT_OK
                problem = check_targets(args.export)
                if problem is not None:
                    say(problem)
                    return EXIT_USAGE
                contents = past.contents(found)
                utterances, voices = contents.utterances, contents.voices
                if args.export:
                    info = export_info(
                        found.started.isoformat() if found.started else None,
                        found.engine,
                        found.source,
                    )
                    if voices.by_channel:
                        info["channel_names"] = list(voices.channel_names)
                    return EXIT_OK if write_exports(args.export, utterances, info) else EXIT_FAILED
                for u in utterances:
                    label = voices.label(u.channel, u.speaker) if voices.by_channel else None
                    if args.json:
                        record = utterance_json(u)
                        if label is not None and not u.gap:
                            record["label"] = label
                        print(json.dumps(record, ensure_ascii=False))
                    else:
                        print(f"{label}: {u.text}" if label and not u.gap else u.text)
                return EXIT_OK
            if args.search:
                hits = past.search(" ".join(args.search))
                for hit in hits:
                    snippet = hit.snippet.replace(history.HIT_START, "[").replace(
                        history.HIT_END, "]"
                    )
                    if args.json:
                        print(
                            json.dumps(
                                {"session": hit.session.id, "start": hit.start, "text": snippet},
                                ensure_ascii=False,
                            )
                        )
                    else:
                        print(f"{hit.session.id}  {clock(hit.start)}  {snippet}")
                if not hits:
                    say("nothing found")
                return EXIT_OK
            sessions = past.sessions()
            for item in sessions:
                if args.json:
                    print(
                        json.dumps(
                            {
                                "id": item.id,
                                "started": item.started.isoformat() if item.started else None,
                                "duration": round(item.duration, 1),
                                "source": item.source,
                                "engine": item.engine,
                                "lines": item.lines,
                                "state": item.state,
                                "first_words": item.first_words,
                            },
                            ensure_ascii=False,
                        )
                    )
                else:
                    mark = {
                        "unfinished": " (ended without finishing)",
                        "recording": " (recording now)",
                    }.get(item.state, "")
                    print(f"{item.id}  {item.describe()}{mark}\n    {item.first_words}")
            if not sessions:
                say("no sessions yet: each captioning session is kept here once it has a line")
            return EXIT_OK
    except history.HistoryError as exc:
        say(str(exc))
        return EXIT_FAILED


def _add_history_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "history",
        parents=[_verbosity(argparse.SUPPRESS)],
        help="list, search, print, export or delete past sessions",
        description="Every session is journaled. With no argument this lists them, newest "
        "first: id, date, duration, device, engine and first words. --search finds lines in "
        "all of them; a session id prints that session (or --export / --delete it).",
    )
    p.add_argument("session", nargs="?", help="one session, by the id the list shows")
    p.add_argument("--search", nargs="+", metavar="WORD", help="lines with every WORD")
    _add_export_option(p, "instead of printing it")
    p.add_argument("--delete", action="store_true", help="delete the session's journal")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_history)


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
    src.add_argument(
        "--device",
        action="append",
        help="input device name (or part of it) or index; give it twice to caption two "
        "inputs at once, each labelled (both sides of a call)",
    )
    src.add_argument(
        "--file",
        action="append",
        help="caption a WAV file as if it were the microphone (twice: as a call's two inputs)",
    )
    p.add_argument(
        "--call",
        action="store_true",
        help="caption both sides of a call: the microphone (or --device) and what the "
        "computer plays, labelled You and Others",
    )
    p.add_argument(
        "--names",
        metavar="YOU,OTHERS",
        help='what a call\'s two sides are called (default "You,Others")',
    )
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

    add_app_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    devices = sub.add_parser(
        "devices", help="list audio input devices", parents=[_verbosity(argparse.SUPPRESS)]
    )
    devices.add_argument("--json", action="store_true", help="one JSON object per line")
    devices.set_defaults(func=cmd_devices)
    _add_listen_parser(sub)
    _add_restore_parser(sub)
    _add_history_parser(sub)
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
        return run_app(AppOptions.from_args(args))
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
