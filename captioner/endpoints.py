"""Where to stream, with which key: one answer for the command line and the window.

The rule: a URL given for this run wins; otherwise the endpoint chosen in the settings (the
window) or implied by a key (the command line); with no key and nothing chosen, the offline
engine on this computer. The key for a run comes from `--api-key`, then `DEEPGRAM_API_KEY`,
then (the window only) the keychain.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from captioner.core.config import DEEPGRAM_EU_URL, DEEPGRAM_URL

__all__ = [
    "DEEPGRAM",
    "DEEPGRAM_EU",
    "OFFLINE",
    "Target",
    "engine_name",
    "is_deepgram",
    "key_for_run",
]

DEEPGRAM = "Deepgram"
DEEPGRAM_EU = "Deepgram EU"
OFFLINE = "Offline engine"
CUSTOM = "Custom URL"


@dataclass(frozen=True)
class Target:
    """The endpoint a session streams to. `url` is None for the offline engine until it runs
    (its address and token exist only then)."""

    engine: str
    url: str | None
    api_key: str | None = None

    @property
    def offline(self) -> bool:
        return self.url is None

    @property
    def detail(self) -> str:
        return (
            "The embedded engine on this computer; no key needed" if self.offline else str(self.url)
        )

    def running_at(self, url: str, token: str | None) -> Target:
        """The offline engine, now that it listens at `url` with `token`."""
        return Target(self.engine, url, token)


def is_deepgram(url: str) -> bool:
    """Whether `url` is Deepgram's cloud (any region), by its host name."""
    try:
        host = (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return False
    return host == "deepgram.com" or host.endswith(".deepgram.com")


def engine_name(url: str) -> str:
    """How a URL's server is named to a person."""
    if not is_deepgram(url):
        return CUSTOM
    try:
        host = (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        host = ""
    return DEEPGRAM_EU if host == urlsplit(DEEPGRAM_EU_URL).hostname else DEEPGRAM


def key_for_run(given: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """`--api-key`, else `DEEPGRAM_API_KEY`, else None (empty counts as none)."""
    env = os.environ if environ is None else environ
    return given or env.get("DEEPGRAM_API_KEY") or None


def for_command_line(url: str | None, key: str | None) -> Target:
    """`captioner listen`: the URL given, else Deepgram with a key, else the offline engine."""
    if url:
        return Target(engine_name(url), url, key)
    if key:
        return Target(DEEPGRAM, DEEPGRAM_URL, key)
    return Target(OFFLINE, None)


def offline() -> Target:
    return Target(OFFLINE, None)
