"""Everything a server says is untrusted: its text and its numbers pass through here.

A server (or anything between us and it) may echo the API key back, put terminal escape
sequences in a transcript or a close reason, or send numbers that are valid JSON but absurd
(1e308 seconds). Every string that came from a server goes through `clean()` before it is
shown, logged, exported or journalled: the process's secrets are masked and control
characters removed. Every time value goes through `seconds()`, which refuses what is not a
finite number in a sane range.

The secrets are the process's own: the API key in use, the offline engine's token. They are
registered once, when known (`remember_secret`), so that code far from the settings (a log
formatter, a close reason) can still mask them.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable

__all__ = [
    "MAX_SECONDS",
    "clean",
    "forget_secrets",
    "known_secrets",
    "number",
    "redact",
    "remember_secret",
    "seconds",
]

MAX_SECONDS = 31_536_000.0
"""A year of audio: no real stream's clock gets near it, and far below float trouble."""

_MASK = "***"
_secrets: set[str] = set()
_lock = threading.Lock()

# ANSI/VT escape sequences (CSI, OSC, DCS and the rest), then every control character except
# tab and newline: C0, DEL, C1, and the Unicode controls that reorder or hide text (bidi
# embeddings and overrides, isolates, the byte-order mark and interlinear annotations).
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI ... final byte
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, DCS, SOS, PM, APC ... BEL or ST
    r"|\x1b[@-Z\\-_]"  # other two-character escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|[\x9d\x90\x98\x9e\x9f][^\x07\x9c]*(?:\x07|\x9c)?"  # 8-bit OSC, DCS, SOS, PM, APC
)
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff\ufff9-\ufffb]")


def remember_secret(secret: str | None) -> None:
    """Mask `secret` (an API key, a token) wherever server text or logs might show it."""
    if secret and len(secret) >= 4:
        with _lock:
            _secrets.add(secret)


def forget_secrets() -> None:
    """Forget every secret (tests; a process that changed its key keeps the old one masked)."""
    with _lock:
        _secrets.clear()


def known_secrets() -> tuple[str, ...]:
    with _lock:
        return tuple(_secrets)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every known secret (and `extra`) replaced by "***", longest first, so a
    secret that contains another is hidden whole."""
    secrets = {s for s in (*known_secrets(), *extra) if s}
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


def clean(text: object, limit: int | None = 2000, *, newlines: bool = False) -> str:
    """Server text made safe to show, log or store: secrets masked, escape sequences and
    control characters removed (newlines too, unless `newlines`), lone surrogates replaced,
    at most `limit` characters (an ellipsis marks the cut)."""
    if not isinstance(text, str):
        return ""
    if limit is not None and len(text) > 4 * limit:
        text = text[: 4 * limit]  # bound the work on a flood; the cut below is the real one
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = _ESCAPES.sub("", text)
    text = _CONTROLS.sub("", text)
    text = text.replace("\t", " ")
    if not newlines:
        text = text.replace("\r", " ").replace("\n", " ")
    text = redact(text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def number(value: object) -> float | None:
    """A finite number from a JSON number or a numeric string; None otherwise (booleans,
    NaN, infinities, integers too large for a float, anything else)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            result = float(value)
        except OverflowError:
            return None
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def seconds(value: object, *, allow_negative_one: bool = False) -> float | None:
    """A time in seconds from a server: a finite number in [0, MAX_SECONDS], or None.

    JSON numbers and numeric strings are accepted, booleans are not. `allow_negative_one`
    admits -1, which UtteranceEnd uses to say "no word".
    """
    time = number(value)
    if time is None:
        return None
    if allow_negative_one and time == -1:
        return -1.0
    if 0.0 <= time <= MAX_SECONDS:
        return time
    return None
