"""Who said a line: the label and colour a caption line is shown with.

One input: lines are labelled only when the server tells speakers apart (diarization), as
"Speaker 1", "Speaker 2" (Deepgram counts from 0, people from 1).

Two inputs (both sides of a call): every line is labelled by its channel, "You" for the
microphone and "Others" for what the computer plays, or names the person chose. With
diarization on as well, the people on the far side are told apart: "Others 1", "Others 2".
The microphone's channel keeps its one name: it is the person using the app.

Colours are indexes into a palette (the pane, the overlay and the subtitle exports each have
their own colours for the same index): channel by channel, then speaker by speaker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["MAX_NAME_CHARS", "Voices", "clean_name", "speaker_label"]

MAX_NAME_CHARS: Final = 40


def speaker_label(speaker: int) -> str:
    """The label people read: Deepgram's speaker 0 is "Speaker 1"."""
    return f"Speaker {speaker + 1}"


def clean_name(name: object, fallback: str) -> str:
    """A channel name fit to show: one line of printable text, at most 40 characters."""
    if not isinstance(name, str):
        return fallback
    text = "".join(ch for ch in name if ch.isprintable()).strip()
    text = " ".join(text.split())[:MAX_NAME_CHARS].strip()
    return text or fallback


@dataclass(frozen=True, slots=True)
class Voices:
    """How lines are labelled: `channel_names` empty for one input, one name per channel
    for a call."""

    channel_names: tuple[str, ...] = ()

    @classmethod
    def of(cls, names: Sequence[object] | None) -> Voices:
        """From untrusted names (a journal header, settings): cleaned, defaulted."""
        if not names:
            return cls()
        return cls(tuple(clean_name(n, f"Input {i + 1}") for i, n in enumerate(names)))

    @classmethod
    def from_info(cls, info: Mapping[str, Any] | None) -> Voices:
        """From a transcript's recorded details (`channel_names`, if it was a call)."""
        names = (info or {}).get("channel_names")
        return cls.of(names if isinstance(names, list | tuple) else None)

    @property
    def by_channel(self) -> bool:
        return bool(self.channel_names)

    def channel_name(self, channel: int) -> str:
        if 0 <= channel < len(self.channel_names):
            return self.channel_names[channel]
        return f"Input {channel + 1}"

    def label(self, channel: int, speaker: int | None) -> str | None:
        """What the line is labelled with; None for an unlabelled line."""
        if not self.by_channel:
            return None if speaker is None else speaker_label(speaker)
        name = self.channel_name(channel)
        if speaker is None or channel == 0:
            return name
        return f"{name} {speaker + 1}"

    def colour(self, channel: int, speaker: int | None) -> int | None:
        """The palette index of the line's colour; None when the line is unlabelled."""
        if not self.by_channel:
            return speaker
        if channel <= 0:
            return 0
        # the far side's people follow the channels: Others 1, Others 2, ... (then any
        # further channel's, offset so two channels' first speakers never share a colour)
        return channel + (speaker or 0) + (channel - 1) * 4
