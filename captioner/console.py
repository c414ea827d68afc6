"""What `captioner listen` prints: captions on stdout (text, or one JSON object a line),
status and interims on stderr, so `captioner listen > notes.txt` is a transcript. Exit codes
are the command line's."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from captioner.core.captions import CaptionEvent, Committed, LiveChanged, Utterance
from captioner.core.messages import ServerMessage
from captioner.core.voices import Voices
from captioner.journal import ExportTarget, check_target, write_export
from captioner.session import State, Status

if TYPE_CHECKING:
    from captioner.audio.resilient import SourceEvent

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "ConsoleObserver",
    "check_targets",
    "export_info",
    "say",
    "utterance_json",
    "write_exports",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def say(text: str) -> None:
    print(f"captioner: {text}", file=sys.stderr, flush=True)


def utterance_json(u: Utterance) -> dict[str, object]:
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

    def __init__(
        self,
        *,
        json_lines: bool,
        interim: bool,
        out: TextIO,
        err: TextIO,
        voices: Voices | None = None,
    ) -> None:
        self.json_lines = json_lines
        self.voices = voices or Voices()
        """A call's lines are printed with their side ("You: ...", "Others: ...")."""
        self.interim = interim
        self.out = out
        self.err = err
        self._interim_shown = False
        self._err_tty = err.isatty()

    def status_changed(self, status: Status) -> None:
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
                label = (
                    self.voices.label(u.channel, u.speaker)
                    if self.voices.by_channel and not u.gap
                    else None
                )
                if self.json_lines:
                    record = utterance_json(u)
                    if label is not None:
                        record["label"] = label
                    print(json.dumps(record, ensure_ascii=False), file=self.out)
                else:
                    print(u.text if label is None else f"{label}: {u.text}", file=self.out)
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


# -- --export files, for `listen` and `restore` ----------------------------------------


def export_info(started: str | None, engine: str, source: str) -> dict[str, Any]:
    return {"started": started, "engine": engine, "source": source}


def check_targets(targets: Sequence[ExportTarget]) -> str | None:
    """Why the exports cannot be written, checked before anything starts; None if they can."""
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


def write_exports(
    targets: Sequence[ExportTarget], utterances: Sequence[Utterance], info: dict[str, Any]
) -> bool:
    """Write every export (each atomically); False if any failed, which is said."""
    ok = True
    for target in targets:
        try:
            write_export(target, utterances, info)
        except OSError as exc:
            say(f"could not write {target.path}: {exc.strerror or exc}")
            ok = False
        else:
            say(f"wrote {target.format} to {target.path}")
    return ok
