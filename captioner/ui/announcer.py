"""Finished caption lines, announced to screen readers (never interims).

An interim changes several times a second; reading each version aloud would bury the
words under their own corrections. Only committed lines are announced, politely (after
whatever the screen reader is saying), through Qt's accessibility announcement event.
When no assistive technology is running, Qt drops the event at no cost.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent

from captioner.core.captions import CaptionEvent, Committed, Utterance
from captioner.core.voices import Voices

__all__ = ["Announcer", "spoken_text"]

KEPT = 50


def spoken_text(utterance: Utterance, voices: Voices | None = None) -> str:
    """What a screen reader says for a finished line ("Others: ..." in a call)."""
    text = " ".join(utterance.text.split())
    label = (
        None if utterance.gap else (voices or Voices()).label(utterance.channel, utterance.speaker)
    )
    return f"{label}: {text}" if label is not None else text


class Announcer(QObject):
    """Announces committed lines on behalf of `target` (the caption pane's text)."""

    announced = Signal(str)

    def __init__(self, target: QObject, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._target = target
        self.enabled = True
        self.recent: collections.deque[str] = collections.deque(maxlen=KEPT)
        """The newest announcements, newest last."""
        self.voices = Voices()

    def apply(self, events: Sequence[CaptionEvent]) -> None:
        if not self.enabled:
            return
        for event in events:
            if isinstance(event, Committed):
                self.announce(spoken_text(event.utterance, self.voices))

    def announce(self, text: str) -> None:
        if not text:
            return
        announcement = QAccessibleAnnouncementEvent(self._target, text)
        announcement.setPoliteness(QAccessible.AnnouncementPoliteness.Polite)
        QAccessible.updateAccessibility(announcement)
        self.recent.append(text)
        self.announced.emit(text)
