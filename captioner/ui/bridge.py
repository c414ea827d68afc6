"""The one place where session callbacks become Qt signals.

The session runs on the qasync loop, which is the GUI thread, so each emit delivers
directly: a caption reaches the pane in the same loop iteration it arrived in, with no
queue in between. The bridge holds no state and never calls back into the session.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal

from captioner.audio.resilient import SourceEvent
from captioner.core.captions import CaptionEvent
from captioner.core.messages import ServerMessage
from captioner.session import Status

__all__ = ["SessionBridge"]


class SessionBridge(QObject):
    """A `SessionObserver` (its four methods) that re-emits each call as a signal."""

    status_updated = Signal(object)
    """A `Status`."""
    captions_updated = Signal(object)
    """A list of `CaptionEvent`."""
    message_arrived = Signal(object)
    """A `ServerMessage` the session passed on (not Results: those come as captions)."""
    source_updated = Signal(object)
    """A `SourceEvent`: the microphone was lost, came back, or went digitally silent."""

    def status_changed(self, status: Status) -> None:
        self.status_updated.emit(status)

    def captions_changed(self, events: Sequence[CaptionEvent]) -> None:
        self.captions_updated.emit(list(events))

    def message_received(self, message: ServerMessage) -> None:
        self.message_arrived.emit(message)

    def source_changed(self, event: SourceEvent) -> None:
        self.source_updated.emit(event)
