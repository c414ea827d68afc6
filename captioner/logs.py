"""One logging set-up for the command line and the window: secrets masked, escapes removed.

Every record goes through `untrusted.clean` after formatting, so a key the process knows of
(`untrusted.remember_secret`) never reaches the terminal or a log file, whoever logs it and
whatever it quotes, and a server's text cannot smuggle terminal escape sequences in.
websockets logs handshake headers (the Authorization header among them) at DEBUG, so its
logger stays at WARNING whatever the verbosity.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from captioner.core import untrusted

__all__ = ["RedactingFormatter", "setup_logging"]


class RedactingFormatter(logging.Formatter):
    """Formats records, then masks every known secret and removes control characters."""

    def __init__(self) -> None:
        super().__init__("captioner: %(levelname)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return untrusted.clean(super().format(record), None, newlines=True)


def setup_logging(verbose: int, secrets: Iterable[str | None] = (), *, replace: bool) -> None:
    """Log to stderr at WARNING, INFO (-v) or DEBUG (-vv), masking `secrets` and any secret
    remembered later. `replace=False` keeps handlers someone installed already (pytest's)."""
    for secret in secrets:
        untrusted.remember_secret(secret)
    root = logging.getLogger()
    if root.handlers and not replace:
        for handler in root.handlers:
            if not isinstance(handler.formatter, RedactingFormatter):
                handler.addFilter(_redact_record)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter())
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)


def _redact_record(record: logging.LogRecord) -> bool:
    """For handlers with their own format: the message itself loses every known secret."""
    if untrusted.known_secrets():
        message = record.getMessage()
        cleaned = untrusted.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
    return True
