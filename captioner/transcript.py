"""The transcript: every finished line, on one timeline, journaled before it is shown.

The window and `captioner listen` both keep theirs here. In the window, each Start opens a
new session whose times count from zero; the window puts them on one timeline (a later
session starts where the wall clock says, never before the last line), so an export of
several sessions keeps them in order. Lines restored from an unfinished journal go after
what is shown, and a running session moves along behind them.

The journal is `captioner.journal`'s: one per transcript (Clear finishes it and the next
line starts another), each line on disk before it reaches the screen. A journal that cannot
be written is said once (`take_problem`) and captioning goes on: losing the captions would
be worse. No Qt.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from captioner.core.captions import Utterance
from captioner.core.exports import shifted
from captioner.journal import JournalError, JournalWriter

__all__ = ["RESTORE_SPACING", "Transcript"]

log = logging.getLogger(__name__)

RESTORE_SPACING = 1.0
"""Seconds between what was shown and restored lines placed after it."""


class Transcript:
    """The committed lines, journaled, with their export details.

    `settings` is what the journal records about how the captions were made.
    """

    def __init__(
        self,
        *,
        journal: bool = True,
        journal_folder: Path | None = None,
        settings: Mapping[str, object] | None = None,
    ) -> None:
        self.utterances: list[Utterance] = []
        self.journal: JournalWriter | None = None
        self._problem = ""
        self._journaling = journal
        self._journal_folder = journal_folder
        self._settings: dict[str, object] = (
            dict(settings) if settings is not None else {"window": True}
        )
        self._journal_failed = False
        self._offset = 0.0
        self._epoch: float | None = None
        self._engine = ""
        self._source = ""
        self._started: str | None = None

    # -- reading ------------------------------------------------------------------------

    @property
    def end(self) -> float:
        """Where the transcript's timeline has got to (seconds)."""
        return max((u.end for u in self.utterances), default=0.0)

    def __len__(self) -> int:
        return len(self.utterances)

    def export_info(self) -> dict[str, Any]:
        """What the JSON export says about where the transcript came from (and, for a call,
        what its two sides are called: every export labels the lines with them)."""
        info: dict[str, Any] = {
            "started": self._started,
            "engine": self._engine,
            "source": self._source,
        }
        names = self._settings.get("channel_names")
        if isinstance(names, list) and names:
            info["channel_names"] = list(names)
        return info

    def set_channel_names(self, names: Sequence[str] | None) -> None:
        """A call's sides from now on (None: one input). Recorded in the journal's header, so
        a journal opened after this labels its lines when exported or restored; a journal
        already open keeps the header it was written with."""
        if names:
            self._settings["channel_names"] = list(names)
        else:
            self._settings.pop("channel_names", None)

    # -- sessions -----------------------------------------------------------------------

    def begin_session(self, *, engine: str, source: str, now: float) -> None:
        """A session starts at monotonic time `now`: its times go after what is shown."""
        if self._epoch is None:
            self._epoch = now - self.end
        self._offset = max(self.end, now - self._epoch)
        self._engine, self._source = engine, source
        if self._started is None:
            self._started = datetime.now().astimezone().isoformat(timespec="seconds")

    def commit(self, utterance: Utterance) -> Utterance:
        """A session's line, on the window's timeline; on disk before this returns."""
        placed = shifted(utterance, self._offset)
        self._journal(placed)
        self.utterances.append(placed)
        return placed

    def restore(
        self, utterances: Sequence[Utterance], *, engine: str = "", source: str = ""
    ) -> list[Utterance]:
        """Lines from an unfinished journal, placed after what is shown; returns them placed."""
        if not utterances:
            return []
        if not self._engine:
            self._engine, self._source = engine, source
        if self._started is None:
            self._started = datetime.now().astimezone().isoformat(timespec="seconds")
        before = self.end
        first = min(u.start for u in utterances)
        base = before + (RESTORE_SPACING if self.utterances else 0.0) - first
        placed = [shifted(u, base) for u in utterances]
        for line in placed:
            self._journal(line)
            self.utterances.append(line)
        # a running session carries on after the restored lines, not among them
        self._offset += self.end - before
        if self._epoch is not None:
            self._epoch -= self.end - before
        return placed

    def clear(self) -> None:
        """Start afresh: the journal so far is finished and kept; the next line opens another."""
        self.finish("cleared")
        self.utterances = []
        self._epoch = None
        self._started = None
        self._journal_failed = False

    def abandon(self) -> None:
        """Close the journal as a crash would leave it: unfinished, for `restore` to find."""
        journal, self.journal = self.journal, None
        if journal is not None:
            journal.abandon()

    def finish(self, outcome: str = "finished") -> Path | None:
        """Close the journal cleanly; returns where it was kept (None if there was none)."""
        journal, self.journal = self.journal, None
        if journal is None:
            return None
        try:
            return journal.finish(outcome)
        except OSError as exc:
            journal.close()
            self._say(f"The journal {journal.path} could not be finished: {exc}")
            return None

    # -- the journal --------------------------------------------------------------------

    def open_journal(self) -> bool:
        """Open the journal now rather than at the first line (so that a folder that cannot
        be written is said before captioning starts); False if it could not be opened."""
        if not self._journaling or self._journal_failed:
            return False
        if self.journal is None:
            try:
                self.journal = JournalWriter.create(
                    engine=self._engine or "unknown engine",
                    source=self._source or "unknown source",
                    settings=self._settings,
                    folder=self._journal_folder,
                )
            except JournalError as exc:
                self._journal_failed = True
                text = str(exc)
                self._say(f"{text[:1].upper()}{text[1:]}: captions will not survive a crash.")
                return False
        return True

    def _journal(self, utterance: Utterance) -> None:
        if not self.open_journal():
            return
        assert self.journal is not None
        try:
            self.journal.append(utterance)
        except OSError as exc:
            self._journal_failed = True
            self._say(
                f"The journal {self.journal.path} could not be written ({exc}): "
                "captions may not survive a crash."
            )

    def take_problem(self) -> str:
        """Why the journal is not being written, once; empty when all is well or already said."""
        problem, self._problem = self._problem, ""
        return problem

    def _say(self, message: str) -> None:
        log.warning("%s", message)
        self._problem = message
