"""The status bar: what is heard, by which engine, in what state, and what went wrong last.

Fed plain values (`Status`, numbers, strings) so tests can drive it without a session.
The last close code stays visible after the state moves on (a reconnect, a new start):
it is the first thing support asks for, together with the request id.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QGuiApplication, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStatusBar, QVBoxLayout, QWidget

from captioner.core.closecodes import Meaning
from captioner.session import State, Status

__all__ = ["CaptionStatusBar", "describe_close", "state_words"]

_STATE_COLOURS = {
    State.LIVE: "#2e9d44",
    State.CONNECTING: "#c98a00",
    State.RECONNECTING: "#c98a00",
    State.STOPPING: "#c98a00",
    State.ERROR: "#d0342c",
}
_STATE_COLOURS_ON_DARK = {
    State.LIVE: "#5fd37a",
    State.CONNECTING: "#ffc266",
    State.RECONNECTING: "#ffc266",
    State.STOPPING: "#ffc266",
    State.ERROR: "#ff8a80",
}
_REASON_SHOWN = 160
LAG_WARNING_SECONDS = 3.0


def state_words(status: Status) -> str:
    """The state as a person reads it: "Live", or "Reconnecting in 2 s (attempt 3)"."""
    words = status.state.value
    if status.state is State.RECONNECTING and status.detail:
        detail = status.detail
        if detail.lower().startswith("reconnecting"):
            return detail[0].upper() + detail[1:]
        return f"{words} · {detail}"
    return words


def describe_close(meaning: Meaning, reason: str) -> tuple[str, str]:
    """(short text, full text) for a close code or refusal: code, meaning, the server's words."""
    reason = " ".join(reason.split())
    quoted = ""
    if reason and reason not in meaning.label and reason not in meaning.title:
        shown = reason if len(reason) <= _REASON_SHOWN else reason[: _REASON_SHOWN - 1] + "…"
        quoted = f" · Deepgram: “{shown}”"
    short = f"{meaning.label}: {meaning.title}{quoted}"
    parts = [f"{meaning.label}: {meaning.title}."]
    if reason and reason not in meaning.explanation:
        parts.append(f"The server said: “{reason}”.")
    parts.append(meaning.explanation)
    parts.append(meaning.action)
    return short, "\n".join(p for p in parts if p)


class StatusField(QLabel):
    """A status bar field that gives up width by eliding its text rather than growing the window.

    `text()` stays the whole text; only the painting is shortened, with a tooltip that
    holds everything.
    """

    min_width: int | None = None

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        if self.min_width is None:
            return hint
        return QSize(min(hint.width(), self.min_width), hint.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        self.drawFrame(painter)
        rect = self.contentsRect()
        shown = self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideRight, rect.width()
        )
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        painter.drawText(
            rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), shown
        )
        painter.end()


class CaptionStatusBar(QStatusBar):
    """Two rows. The first, left to right: what is heard, the engine, the state, the request
    id, how far behind the captions are, and dropped audio. The second appears once there is
    a close code or refusal to show: the code, its meaning and Deepgram's own words."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusBar")
        self.setSizeGripEnabled(True)
        panel = QWidget(self)
        rows = QVBoxLayout(panel)
        rows.setContentsMargins(4, 2, 4, 2)
        rows.setSpacing(2)
        self._first_row = QHBoxLayout()
        self._first_row.setSpacing(8)
        rows.addLayout(self._first_row)
        self.source_label = self._field("sourceStatus", shrink_to=140, rule=False)
        self.engine_label = self._field("engineStatus")
        self.state_label = self._field("stateStatus", shrink_to=120)
        self.request_label = self._field("requestStatus", shrink_to=120)
        self.language_label = self._field("languageStatus", shrink_to=120)
        self.lag_label = self._field("lagStatus")
        self.dropped_label = self._field("droppedStatus")
        self._dark = False
        self._first_row.addStretch(1)
        self.close_label = StatusField(panel)
        self.close_label.setObjectName("closeStatus")
        self.close_label.min_width = 200

        rows.addWidget(self.close_label)
        self.addPermanentWidget(panel, 1)

        copy_request = QAction("Copy request id", self.request_label)
        copy_request.triggered.connect(self.copy_request_id)
        self.request_label.addAction(copy_request)
        self.request_label.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

        self._state = State.IDLE
        self._request_id: str | None = None
        self._last_meaning: Meaning | None = None
        self.show_status(Status(State.IDLE))
        self.set_source(None)
        self.set_lag(None)
        self.set_dropped(0)
        self.set_request_id(None)
        self.set_language(None)
        self.close_label.hide()
        self.set_dark(False)

    def set_dark(self, dark: bool) -> None:
        """Red and amber that read on the theme's background (the window says which)."""
        self._dark = dark
        self.dropped_label.setStyleSheet(f"color: {'#ff8a80' if dark else '#d0342c'};")
        self.close_label.setStyleSheet(f"color: {'#ff8a80' if dark else '#a8322b'};")
        self._colour_state()

    def _colour_state(self) -> None:
        colour = _STATE_COLOURS.get(self._state)
        if colour is not None and self._dark:
            colour = _STATE_COLOURS_ON_DARK.get(self._state, colour)
        # no colour of its own: the palette's text colour, which follows the theme
        self.state_label.setStyleSheet(f"color: {colour};" if colour else "")

    def _field(self, name: str, *, shrink_to: int | None = None, rule: bool = True) -> StatusField:
        """A field of the first row, after a thin rule; `shrink_to` None: never shortened."""
        holder = QWidget(self)
        line = QHBoxLayout(holder)
        line.setContentsMargins(0, 0, 0, 0)
        line.setSpacing(8)
        if rule:
            separator = QFrame(holder)
            separator.setFrameShape(QFrame.Shape.VLine)
            separator.setFrameShadow(QFrame.Shadow.Sunken)
            line.addWidget(separator)
        label = StatusField(holder)
        label.setObjectName(name)
        label.min_width = shrink_to
        line.addWidget(label, 1)
        self._first_row.addWidget(holder)
        return label

    @staticmethod
    def _show_field(label: QLabel, on: bool) -> None:
        holder = label.parentWidget()
        (holder if holder is not None else label).setVisible(on)

    # -- what is heard, and by which engine ---------------------------------------------

    def set_source(self, name: str | None, *, listening: bool = False, muted: bool = False) -> None:
        """`name` is the device (or file) name; None when there is nothing to listen to."""
        self.source_label.setToolTip(name or "No input device")
        if name is None:
            self.source_label.setText("No input")
        elif muted and listening:
            self.source_label.setText(f"Muted · {name}")
        elif listening:
            self.source_label.setText(f"Listening · {name}")
        else:
            self.source_label.setText(f"Ready · {name}")

    def set_engine(self, name: str, detail: str = "") -> None:
        self.engine_label.setText(name)
        self.engine_label.setToolTip(detail or name)

    def set_language(self, name: str | None) -> None:
        """The language the engine says it hears (multilingual or detected); None hides it."""
        self._show_field(self.language_label, name is not None)
        self.language_label.setText(f"Hearing {name}" if name else "")
        self.language_label.setToolTip(f"The engine recognises {name}" if name else "")

    # -- state ----------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def last_meaning(self) -> Meaning | None:
        return self._last_meaning

    def show_status(self, status: Status) -> None:
        self._state = status.state
        self.state_label.setText(f"● {state_words(status)}")
        self._colour_state()
        self.state_label.setToolTip(state_words(status))
        if status.meaning is not None and status.meaning.kind != "normal":
            reason = status.reason
            if reason or self._last_meaning != status.meaning:
                self.show_close(status.meaning, reason)
        if status.request_id:
            self.set_request_id(status.request_id)

    def show_close(self, meaning: Meaning, reason: str = "") -> None:
        """Show (and keep) the last close code or refusal with its meaning."""
        self._last_meaning = meaning
        short, full = describe_close(meaning, reason)
        self.close_label.setText(short)
        self.close_label.setToolTip(full)
        self.close_label.show()

    def clear_close(self) -> None:
        self._last_meaning = None
        self.close_label.clear()
        self.close_label.hide()

    def set_request_id(self, request_id: str | None) -> None:
        self._request_id = request_id
        if not request_id:
            self._show_field(self.request_label, False)
            return
        self.request_label.setText(
            f"Request {request_id[:8]}…" if len(request_id) > 9 else f"Request {request_id}"
        )
        self.request_label.setToolTip(
            f"Request {request_id}: the id Deepgram support asks for (right-click to copy)"
        )
        self._show_field(self.request_label, True)

    def copy_request_id(self) -> None:
        if self._request_id:
            QGuiApplication.clipboard().setText(self._request_id)

    @property
    def request_id(self) -> str | None:
        return self._request_id

    # -- how well it keeps up -----------------------------------------------------------

    def set_lag(self, seconds: float | None) -> None:
        """How far behind the captions are; None hides it (nothing is streaming)."""
        if seconds is None:
            self._show_field(self.lag_label, False)
            return
        self.lag_label.setText(f"{seconds:.1f} s behind")
        warn = seconds >= LAG_WARNING_SECONDS
        self.lag_label.setStyleSheet("color: #c98a00;" if warn else "")
        self.lag_label.setToolTip(
            "How far the newest final caption is behind the audio captured so far"
        )
        self._show_field(self.lag_label, True)

    def set_dropped(self, blocks: int) -> None:
        if blocks <= 0:
            self._show_field(self.dropped_label, False)
            return
        noun = "block" if blocks == 1 else "blocks"
        self.dropped_label.setText(f"{blocks} audio {noun} dropped")
        self.dropped_label.setToolTip(
            "Audio the computer could not keep up with was lost; captions may miss words"
        )
        self._show_field(self.dropped_label, True)
