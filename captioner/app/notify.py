"""How the app's features tell a person something: the `Notifier`, and the window's version.

Features never reach into the banner or the status bar; they say `error`, `info` or `note`
and, where there is one thing to do about it, pass an `Action`: the button's text and a
callable. Pressing the button dismisses the message and calls it.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

from captioner.ui.window import Action, MainWindow

__all__ = ["Action", "Notifier", "WindowNotifier"]


class Notifier(Protocol):
    def error(self, text: str, action: Action | None = None) -> None:
        """Something failed: stays until dismissed or replaced."""

    def info(self, text: str, action: Action | None = None) -> None:
        """Something to know: stays until dismissed or replaced."""

    def note(self, text: str, seconds: float = 6.0) -> None:
        """A passing remark (an export done, a toggle's effect), gone after `seconds`."""

    def dismiss(self) -> None:
        """Take down the message shown, if any."""


class WindowNotifier:
    """Messages in the window's banner, remarks in its status bar."""

    def __init__(self, window: MainWindow) -> None:
        self._window = window

    def error(self, text: str, action: Action | None = None) -> None:
        with contextlib.suppress(RuntimeError):  # the window may already be gone
            self._window.banner.show_message(text, kind="error", action=action)

    def info(self, text: str, action: Action | None = None) -> None:
        with contextlib.suppress(RuntimeError):
            self._window.banner.show_message(text, kind="info", action=action)

    def note(self, text: str, seconds: float = 6.0) -> None:
        with contextlib.suppress(RuntimeError):
            self._window.status.showMessage(text, round(seconds * 1000))

    def dismiss(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._window.banner.dismiss()
