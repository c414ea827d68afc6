"""`captioner listen`: caption a microphone or a file in the terminal.

Where to stream (`endpoints`), the audio source (`audio.factory`) and the journaled
transcript (`transcript`) are the same services the window uses; what is printed is
`console`'s. Every line is journaled before it is printed, and `--export` files are
checked before anything starts and written when the session ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from captioner import endpoints, journal
from captioner.audio.devices import DeviceError
from captioner.audio.factory import CALL_NAMES, build_call_source, build_source
from captioner.audio.sources import AudioFileError, AudioSource
from captioner.console import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ConsoleObserver,
    check_targets,
    export_info,
    say,
    write_exports,
)
from captioner.core import closecodes
from captioner.core.captions import CaptionEvent, Committed
from captioner.core.config import SettingsError, StreamSettings
from captioner.core.messages import ServerMessage
from captioner.core.voices import Voices
from captioner.endpoints import Target
from captioner.session import Session, SessionEnd, SessionOptions, Status
from captioner.transcript import Transcript

if TYPE_CHECKING:
    from captioner.audio.resilient import SourceEvent

__all__ = ["TranscriptKeeper", "cmd_listen"]


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
            say(problem)


def _notice_unfinished() -> None:
    """One line when an earlier session's journal was never finished."""
    kept = [i for i in journal.find_unfinished() if i.count]
    if not kept:
        return
    count = sum(i.count for i in kept)
    utterances = f"{count} utterance{'' if count == 1 else 's'} kept"
    who = "An earlier session" if len(kept) == 1 else f"{len(kept)} earlier sessions"
    say(f"{who} ended without finishing: {utterances}. `captioner restore` shows them.")


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

    say("no API key set: starting the offline engine")
    async with start_embedded_server(model_dir=args.model_dir) as server:
        yield target.running_at(server.listen_url, server.token)


def _settings(args: argparse.Namespace, endpoint: Target, channels: int = 1) -> StreamSettings:
    return StreamSettings(
        url=endpoint.url or "",
        api_key=endpoint.api_key,
        model=args.model,
        language=args.language,
        chunk_ms=args.chunk_ms,
        interim_results=True,
        channels=channels,
        multichannel=channels > 1,
    )


def _is_call(args: argparse.Namespace) -> bool:
    return bool(args.call or len(args.device or ()) > 1 or len(args.file or ()) > 1)


def _call_problem(args: argparse.Namespace) -> str | None:
    """Why the inputs asked for cannot make a call (or one input); None when they can."""
    devices, files = args.device or [], args.file or []
    if len(devices) > 2 or len(files) > 2:
        return "at most two inputs: --device A --device B, or --file A --file B"
    if args.call and (len(devices) > 1 or files):
        return "--call takes the microphone (or one --device) and adds what the computer plays"
    if args.names is not None and not _is_call(args):
        return "--names is for a call's two inputs (--call, or --device/--file twice)"
    if args.fast and _is_call(args):
        return "--fast is for one file: a call's two inputs are aligned on the clock"
    return None


def _call_names(args: argparse.Namespace) -> tuple[str, ...]:
    if args.names is None:
        return CALL_NAMES
    parts = [part.strip() for part in args.names.split(",")]
    return Voices.of(parts + [""] * (2 - len(parts))).channel_names[:2]


def _open_source(args: argparse.Namespace) -> AudioSource:
    if not _is_call(args):
        return build_source(
            file=(args.file or [None])[0],
            fast=args.fast,
            device=(args.device or [None])[0],
            chunk_ms=args.chunk_ms,
        )
    names = _call_names(args)
    if args.file:
        return build_call_source(files=args.file, names=names, chunk_ms=args.chunk_ms)
    devices: list[str | None] = list(args.device or [None])
    if args.call:
        devices.append("system")
    return build_call_source(devices=devices, names=names, chunk_ms=args.chunk_ms)


async def _listen(args: argparse.Namespace) -> int:
    problem = _call_problem(args)
    if problem is not None:
        say(problem)
        return EXIT_USAGE
    call = _is_call(args)
    voices = Voices(_call_names(args)) if call else Voices()
    console = ConsoleObserver(
        json_lines=args.json, interim=args.interim, out=sys.stdout, err=sys.stderr, voices=voices
    )
    recorded: dict[str, object] = {"model": args.model, "language": args.language}
    if call:
        recorded["channel_names"] = list(voices.channel_names)
    transcript = Transcript(journal=not args.no_journal, settings=recorded)
    keeper = TranscriptKeeper(console, transcript)
    try:
        source = _open_source(args)
    except (DeviceError, AudioFileError, ValueError) as exc:
        say(str(exc))
        return EXIT_USAGE
    # Validate what can be validated before any child process or socket exists.
    probe = endpoints.for_command_line(args.url, endpoints.key_for_run(args.api_key))
    if probe.offline:
        probe = probe.running_at("ws://127.0.0.1:1/v1/listen", None)
    try:
        _settings(args, probe, source.channels if call else 1).validate()
    except SettingsError as exc:
        say(str(exc))
        return EXIT_USAGE
    _notice_unfinished()
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    info = export_info(started, "", source.description)
    if call:
        info["channel_names"] = list(voices.channel_names)
    outcome: str | None = None
    try:
        code, outcome = await _run_listen(args, source, keeper, info)
    finally:
        keeper.end(outcome)
        exported = write_exports(args.export, transcript.utterances, info)
    return code if exported or code != EXIT_OK else EXIT_FAILED


async def _run_listen(
    args: argparse.Namespace,
    source: AudioSource,
    keeper: TranscriptKeeper,
    info: dict[str, Any],
) -> tuple[int, str]:
    """Run the session to its end: (exit code, outcome for the journal)."""
    async with _endpoint(args) as endpoint:
        settings = _settings(args, endpoint, source.channels if _is_call(args) else 1)
        say(f"engine: {endpoint.engine} · {source.description}")
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
                say("stopping (press Ctrl-C again to quit at once)")
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
            say("interrupted")
            return EXIT_INTERRUPTED, "interrupted"
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, ValueError):
                    loop.remove_signal_handler(sig)
        _report(end, source, session.request_id)
        return end.exit_code, _outcome(end)


def _report(end: SessionEnd, source: AudioSource, request_id: str | None) -> None:
    """What the terminal says after the last caption: lost audio, and why a session failed."""
    dropped = getattr(source, "dropped_blocks", 0)
    if dropped:
        say(f"{dropped} audio blocks were dropped (the computer could not keep up)")
    if end.meaning is not None and not end.ok:
        say(closecodes.describe(end.meaning, end.detail))
        if end.note:
            say(end.note)
        if request_id:
            say(f"request id {request_id}")


def cmd_listen(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        say("--duration must be a positive number of seconds")
        return EXIT_USAGE
    problem = check_targets(args.export)
    if problem is not None:
        say(problem)
        return EXIT_USAGE
    try:
        return asyncio.run(_listen(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
