"""One Results message's last steps: each finished line to disk, then to every reader.

The order matters: a line is journaled before the pane, the overlay or a screen reader
gets it, so whatever was shown survives a crash.
"""

from __future__ import annotations

from captioner.app.notify import Notifier
from captioner.core.captions import CaptionEvent, Committed
from captioner.core.languages import describe
from captioner.transcript import Transcript
from captioner.ui.announcer import Announcer
from captioner.ui.bridge import SessionBridge
from captioner.ui.overlay import CaptionOverlay
from captioner.ui.window import MainWindow

__all__ = ["CaptionRouter"]


class CaptionRouter:
    def __init__(
        self,
        window: MainWindow,
        bridge: SessionBridge,
        *,
        transcript: Transcript,
        overlay: CaptionOverlay,
        announcer: Announcer,
        notifier: Notifier,
    ) -> None:
        self.window = window
        self.transcript = transcript
        self.overlay = overlay
        self.announcer = announcer
        self.notifier = notifier
        bridge.captions_updated.connect(self._on_captions_updated)
        window.cleared.connect(self._on_window_cleared)

    def _on_captions_updated(self, events: list[CaptionEvent]) -> None:
        placed: list[CaptionEvent] = [
            Committed(self.transcript.commit(e.utterance)) if isinstance(e, Committed) else e
            for e in events
        ]
        problem = self.transcript.take_problem()
        if problem:
            self.notifier.error(problem)
        self.window.pane.apply(placed)
        self.overlay.apply(placed)
        self.announcer.apply(placed)
        heard = [w.language for e in placed if isinstance(e, Committed) for w in e.utterance.words]
        detected = [code for code in heard if code]
        if detected:  # the server says which language (multilingual, or detection)
            self.window.status.set_language(describe(detected[-1]))

    def _on_window_cleared(self) -> None:
        self.transcript.clear()  # the journal so far is finished and kept
        self.overlay.clear()
