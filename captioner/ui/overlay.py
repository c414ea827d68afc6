"""The caption overlay: a frameless, always-on-top, translucent subtitle window.

It shows the newest 1 to 5 lines of captions rolling up from the bottom, the way
subtitles read: words flow on, a new speaker starts a new line, and a gap marker stands on
a line of its own in a colour of its own. Text, its opacity, the background and the
background's opacity are set separately; when the background is (nearly) clear the text
gets an outline so it reads over anything. After a while of silence it fades out, clears,
or keeps just the last line.

The overlay is painted by hand (QPainter paths) rather than with labels: outlines need
paths, and painting only the last few lines keeps the cost flat however long the
transcript grows. It never takes the keyboard focus; when click-through is on, the mouse
goes to the windows below it, and the main window's shortcuts drive it.

Platforms differ in what they let a window do. X11, Windows and macOS honour
"always on top"; Wayland compositors decide stacking and placement themselves, so there
the overlay may be covered and cannot restore its position: `always_on_top_problem` says so.
"""

from __future__ import annotations

import collections
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import (
    QEasingCurve,
    QEvent,
    QPoint,
    QPointF,
    QRect,
    Qt,
    QTimer,
    QVariantAnimation,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QCursor,
    QEnterEvent,
    QFont,
    QFontMetricsF,
    QGuiApplication,
    QMouseEvent,
    QMoveEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QResizeEvent,
)
from PySide6.QtWidgets import QWidget

from captioner.core.captions import CaptionEvent, Committed, LiveChanged, Utterance
from captioner.core.exports import unspaced
from captioner.core.voices import Voices
from captioner.ui.caption_pane import GAP_COLOURS, GAP_COLOURS_ON_DARK, is_dark, speaker_colour
from captioner.ui.preferences import AfterSilence, OverlayLook

__all__ = ["CaptionOverlay", "OverlayLine", "always_on_top_problem"]

KEPT_UTTERANCES = 40
"""Committed lines the overlay holds: far more than five screen lines need."""
PLACEHOLDER = "Captions appear here"
FADE_MS = 900
INTERIM_ALPHA = 0.8
EDGE_PX = 10
MIN_WIDTH = 240
PLACED_DELAY_MS = 400
"""A move or resize is reported once it has rested this long (one save per drag)."""

WAYLAND_NOTE = (
    "This desktop runs Wayland, where the compositor decides which window is on top and "
    "where windows go: the overlay may be covered by other windows, and its position "
    "cannot be restored. Under an X11 session (or with a compositor rule that keeps it "
    "above) it stays on top."
)


def always_on_top_problem(platform_name: str) -> str | None:
    """What the platform will not do for the overlay, in words; None when it keeps it on top."""
    if platform_name.lower().startswith("wayland"):
        return WAYLAND_NOTE
    return None


def right_to_left(texts: Iterable[str]) -> bool:
    """Whether the first letter with a direction is Arabic, Hebrew or another right-to-left
    script (the Unicode paragraph rule): such a line is laid out from the right."""
    for text in texts:
        for char in text:
            kind = unicodedata.bidirectional(char)
            if kind in ("R", "AL"):
                return True
            if kind == "L":
                return False
    return False


@dataclass(frozen=True, slots=True)
class _Word:
    text: str
    kind: str
    """"final", "interim", "label" or "gap"."""
    speaker: int | None = None
    joined: bool = False
    """No space before it: a character of Japanese or Chinese text after another."""


@dataclass(frozen=True, slots=True)
class OverlayLine:
    """One line on screen: its words, each with its kind ("final", "interim", "label", "gap")."""

    words: tuple[tuple[str, str, int | None], ...]
    joined: tuple[bool, ...] = ()
    """Per word: drawn without a space before it (empty: every word is spaced)."""

    @property
    def text(self) -> str:
        text = ""
        for i, (word, _k, _s) in enumerate(self.words):
            glue = "" if not text or (self.joined and self.joined[i]) else " "
            text += glue + word
        return text

    @property
    def kinds(self) -> set[str]:
        return {k for _w, k, _s in self.words}


_BREAK = _Word("", "break")


class _OverlayText:
    """The captions the overlay may show: the last committed lines and each channel's live
    text. No Qt: what to show, not how."""

    def __init__(self) -> None:
        self.committed: collections.deque[Utterance] = collections.deque(maxlen=KEPT_UTTERANCES)
        self.live: dict[int, tuple[str, str]] = {}
        self.voices = Voices()

    def apply(self, events: Sequence[CaptionEvent]) -> bool:
        """Fold caption events in; whether anything shown changed."""
        changed = False
        for event in events:
            if isinstance(event, Committed):
                self.committed.append(event.utterance)
                changed = True
            elif isinstance(event, LiveChanged):
                now = (event.final_text, event.interim_text)
                if self.live.get(event.channel, ("", "")) == now:
                    continue
                if event.final_text or event.interim_text:
                    self.live[event.channel] = now
                else:
                    self.live.pop(event.channel, None)
                changed = True
        return changed

    def clear(self) -> None:
        self.committed.clear()
        self.live.clear()

    def words(self) -> list[_Word]:
        words: list[_Word] = []
        voices = self.voices
        who: tuple[int, int | None] | None = None
        for utterance in self.committed:
            if utterance.gap:
                words += [_BREAK, *(_Word(w, "gap") for w in utterance.text.split()), _BREAK]
                who = None
                continue
            now = (utterance.channel, utterance.speaker)
            label = voices.label(*now)
            if label is not None and now != who:
                words += [_BREAK, _Word(f"{label}:", "label", voices.colour(*now))]
            who = now if label is not None else None
            words += _pieces(utterance.text, "final", words)
        for channel, (final, interim) in sorted(self.live.items()):
            if voices.by_channel and (channel, None) != who:  # a call: whose words come
                label = voices.label(channel, None)
                words += [_BREAK, _Word(f"{label}:", "label", voices.colour(channel, None))]
                who = (channel, None)
            words += _pieces(final, "final", words)
            words += _pieces(interim, "interim", words)
        return words


_CLOSING = set("。、，．！？：；」』）】〉》…ー")
"""Punctuation that stays with the character before it (never starts a line)."""


def _pieces(text: str, kind: str, before: Sequence[_Word]) -> list[_Word]:
    """The words of `text`; Japanese and Chinese, written without spaces, are cut into single
    characters (joined, so drawn without spaces) so that a long line can wrap anywhere."""
    out: list[_Word] = []
    previous = before[-1].text if before and before[-1].kind != "break" else ""
    for token in text.split():
        if not any(unspaced(c) for c in token):
            out.append(_Word(token, kind))
            previous = token
            continue
        piece = ""
        joined = bool(previous) and unspaced(previous[-1]) and unspaced(token[0])
        for char in token:
            if piece and (char in _CLOSING or not (unspaced(char) or unspaced(piece[-1]))):
                piece += char  # closing punctuation, or a run of Latin letters and digits
                continue
            if piece:
                out.append(_Word(piece, kind, joined=joined))
                joined = True
            piece = char
        out.append(_Word(piece, kind, joined=joined))
        previous = token
    return out


def wrap_words(
    words: Sequence[_Word], advance: Callable[[_Word], float], space: float, room: float
) -> list[OverlayLine]:
    """Words into lines no wider than `room`: a break word starts a new line."""
    lines: list[list[_Word]] = [[]]
    used = 0.0
    for word in words:
        if word.kind == "break":
            if lines[-1]:
                lines.append([])
                used = 0.0
            continue
        width = advance(word)
        gap = 0.0 if word.joined else space
        if lines[-1] and used + gap + width > room:
            lines.append([])
            used = 0.0
        used += (gap if lines[-1] else 0.0) + width
        lines[-1].append(word)
    return [
        OverlayLine(
            tuple((w.text, w.kind, w.speaker) for w in line),
            tuple(i > 0 and w.joined for i, w in enumerate(line))
            if any(w.joined for w in line)
            else (),
        )
        for line in lines
        if line
    ]


class CaptionOverlay(QWidget):
    """Subtitles on top of everything. Fed caption events like the pane; painted by hand."""

    placed = Signal()
    """The person moved or resized the overlay (reported once it rests)."""

    def __init__(self, look: OverlayLook | None = None) -> None:
        super().__init__(None)
        self.setObjectName("captionOverlay")
        self.setWindowTitle("Captioner overlay")
        self.setAccessibleName("Caption overlay")
        self.setWindowFlags(
            Qt.WindowType.Window
            | Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint
            | Qt.WindowType.Tool
            | Qt.WindowType.WindowDoesNotAcceptFocus
            | Qt.WindowType.NoDropShadowWindowHint
        )
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setAttribute(Qt.WidgetAttribute.WA_MacAlwaysShowToolWindow)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.setMouseTracking(True)
        self.setMinimumWidth(MIN_WIDTH)

        self._look = OverlayLook()
        self._font = QFont()
        self._label_font = QFont()
        self._text = _OverlayText()
        self._opacity = 1.0
        self._last_line_only = False
        self._preview = False
        self._hover = False
        self._layout_cache: tuple[tuple[int, int], list[OverlayLine]] | None = None
        self._version = 0
        self._drag_from: QPoint | None = None
        self._resize_from: tuple[Qt.Edge, int, QRect] | None = None

        self._silence = QTimer(self)
        self._silence.setSingleShot(True)
        self._silence.timeout.connect(self._on_silence_timeout)
        self._fade = QVariantAnimation(self)
        self._fade.setStartValue(1.0)
        self._fade.setEndValue(0.0)
        self._fade.setDuration(FADE_MS)
        self._fade.setEasingCurve(QEasingCurve.Type.InQuad)
        self._fade.valueChanged.connect(self._on_fade_value_changed)
        self._fade.finished.connect(self._on_fade_finished)
        self._placed_timer = QTimer(self)
        self._placed_timer.setSingleShot(True)
        self._placed_timer.setInterval(PLACED_DELAY_MS)
        self._placed_timer.timeout.connect(self.placed)
        self._placing = False
        self._hint = QTimer(self)
        self._hint.setSingleShot(True)
        self._hint.timeout.connect(self._changed)

        self.set_look(look or OverlayLook())
        self.resize(self._default_width(), self.height())

    # -- the look -----------------------------------------------------------------------

    @property
    def look(self) -> OverlayLook:
        return self._look

    def set_look(self, look: OverlayLook) -> None:
        """Apply a look at once (the settings dialog previews with this)."""
        look = look.normalised()
        previous = self._look
        self._look = look
        font = QFont(self.font())
        if look.font_family:
            font.setFamily(look.font_family)
        font.setPointSize(look.font_size)
        font.setWeight(QFont.Weight.Bold if look.bold else QFont.Weight.Medium)
        self._font = font
        self._label_font = QFont(font)
        self._label_font.setWeight(QFont.Weight.Black if look.bold else QFont.Weight.Bold)
        bottom = self.geometry().bottom()
        height = self._height_for(look)
        if height != self.height():
            self.setFixedHeight(height)
            if self.isVisible():  # subtitles grow upwards: the bottom edge stays put
                self.move(self.x(), bottom + 1 - height)
        if previous.click_through != look.click_through:
            self._apply_click_through(look.click_through)
        if previous.silence_seconds != look.silence_seconds or not self._silence.isActive():
            self._silence.setInterval(look.silence_seconds * 1000)
        self._changed()

    def _height_for(self, look: OverlayLook) -> int:
        metrics = QFontMetricsF(self._font)
        return round(look.lines * metrics.lineSpacing() + 2 * self._padding()[1])

    def _padding(self) -> tuple[float, float]:
        size = QFontMetricsF(self._font).height()
        return max(10.0, size * 0.55), max(6.0, size * 0.22)

    def _default_width(self) -> int:
        """About 42 characters of the overlay's font, within the screen."""
        metrics = QFontMetricsF(self._font)
        wanted = round(metrics.averageCharWidth() * 42 + 2 * self._padding()[0])
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is not None:
            wanted = min(wanted, round(screen.availableGeometry().width() * 0.9))
        return max(MIN_WIDTH, wanted)

    @property
    def click_through(self) -> bool:
        return self._look.click_through

    def _apply_click_through(self, on: bool) -> None:
        visible = self.isVisible()
        self.setWindowFlag(Qt.WindowType.WindowTransparentForInput, on)
        self.setCursor(QCursor(Qt.CursorShape.ArrowCursor))
        if visible:
            self.show()  # changing window flags hides a window

    # -- where it is ----------------------------------------------------------------------

    def place(self, geometry: tuple[int, int, int, int] | None) -> None:
        """Put the overlay where it was (x, y, width, height); at the bottom centre of the
        screen when it was never placed or that place is on no screen now."""
        height = self.height()
        if geometry is not None:
            x, y, width, _old_height = geometry
            rect = QRect(x, y, max(MIN_WIDTH, width), height)
            if any(s.availableGeometry().intersects(rect) for s in QGuiApplication.screens()):
                self._placing = True
                try:
                    self.setGeometry(rect)
                finally:
                    self._placing = False
                return
        screen = QGuiApplication.primaryScreen()
        width = self._default_width()
        if screen is None:
            self.resize(width, height)
            return
        area = screen.availableGeometry()
        self._placing = True
        try:
            self.setGeometry(
                area.x() + (area.width() - width) // 2,
                area.bottom() - height - max(40, area.height() // 12),
                width,
                height,
            )
        finally:
            self._placing = False

    def placement(self) -> tuple[int, int, int, int]:
        rect = self.geometry()
        return rect.x(), rect.y(), rect.width(), rect.height()

    def moveEvent(self, event: QMoveEvent) -> None:
        super().moveEvent(event)
        if not self._placing:
            self._placed_timer.start()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._layout_cache = None
        if not self._placing and event.oldSize().isValid():
            self._placed_timer.start()

    # -- captions -------------------------------------------------------------------------

    def apply(self, events: Sequence[CaptionEvent]) -> None:
        """Fold caption events in; the newest lines show and the silence clock restarts."""
        if self._text.apply(events):
            self._wake()
            self._changed()

    def set_voices(self, voices: Voices) -> None:
        """Label lines by speaker (one input) or by side for a call ("You", "Others")."""
        if voices != self._text.voices:
            self._text.voices = voices
            self._changed()

    def clear(self) -> None:
        self._text.clear()
        self._silence.stop()
        self._fade.stop()
        self._opacity = 1.0
        self._last_line_only = False
        self._changed()

    def set_preview(self, on: bool) -> None:
        """While the look is being edited: show a sample when there are no captions."""
        self._preview = on
        if on:
            self._wake()
        self._changed()

    def show_where(self, milliseconds: int = 3000) -> None:
        """Show a sample for a moment when there are no captions, so the overlay can be found."""
        self._hint.start(milliseconds)
        self._changed()

    @property
    def opacity(self) -> float:
        """1 normally; falls to 0 while fading out after silence."""
        return self._opacity

    def shown_lines(self) -> list[OverlayLine]:
        """The lines on screen now, top to bottom (none while cleared)."""
        if self._opacity <= 0.0:
            return []
        lines = self._layout()
        if self._last_line_only:
            lines = lines[-1:]
        return lines[-self._look.lines :]

    def _wake(self) -> None:
        self._fade.stop()
        self._opacity = 1.0
        self._last_line_only = False
        self._silence.start(self._look.silence_seconds * 1000)

    def _on_silence_timeout(self) -> None:
        if self._preview:
            return
        mode = self._look.after_silence
        if mode is AfterSilence.KEEP:
            self._last_line_only = True
            self.update()
        elif mode is AfterSilence.CLEAR:
            self._forget_shown()
        elif self._fade.state() != QVariantAnimation.State.Running:
            self._fade.start()

    def _on_fade_value_changed(self, value: object) -> None:
        if isinstance(value, float):
            self._opacity = value
            self.update()

    def _on_fade_finished(self) -> None:
        if self._opacity <= 0.0:
            self._forget_shown()

    def _forget_shown(self) -> None:
        """Silence cleared the screen: what was shown goes; new words start afresh."""
        self._text.clear()
        self._opacity = 1.0
        self._changed()

    def _changed(self) -> None:
        self._version += 1
        self._layout_cache = None
        self.update()

    # -- layout ---------------------------------------------------------------------------

    def _layout(self) -> list[OverlayLine]:
        width = self.width()
        key = (self._version, width)
        if self._layout_cache is not None and self._layout_cache[0] == key:
            return self._layout_cache[1]
        words = self._text.words()
        hinting = self._hint.isActive() or (self._hover and not self.click_through)
        if not words and (self._preview or hinting):
            words = [_Word(w, "placeholder") for w in PLACEHOLDER.split(" ")]
        metrics = QFontMetricsF(self._font)
        label_metrics = QFontMetricsF(self._label_font)

        def advance(word: _Word) -> float:
            return (label_metrics if word.kind == "label" else metrics).horizontalAdvance(word.text)

        room = width - 2 * self._padding()[0]
        result = wrap_words(words, advance, metrics.horizontalAdvance(" "), room)
        self._layout_cache = (key, result)
        return result

    # -- painting -------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        lines = self.shown_lines()
        if not lines:
            return
        look = self._look
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        painter.setOpacity(self._opacity)
        if look.background_opacity > 0:
            background = QColor(look.background_colour)
            background.setAlphaF(look.background_opacity / 100)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(background)
            radius = min(14.0, self.height() / 4)
            painter.drawRoundedRect(self.rect(), radius, radius)
        text_colour = QColor(look.text_colour)
        on_dark = is_dark(QColor(look.background_colour)) if not look.outlined else True
        if look.outlined:
            on_dark = not is_dark(text_colour)
        outline = QColor("#000000") if not is_dark(text_colour) else QColor("#ffffff")
        metrics = QFontMetricsF(self._font)
        pad_x, pad_y = self._padding()
        spacing = metrics.lineSpacing()
        baseline = self.height() - pad_y - metrics.descent() - (len(lines) - 1) * spacing
        space = metrics.horizontalAdvance(" ")
        for line in lines:
            # a right-to-left line (Arabic, Hebrew) runs from the right edge, word by word
            rtl = right_to_left(text for text, kind, _ in line.words if kind != "label")
            x = self.width() - pad_x if rtl else pad_x
            for index, (text, kind, speaker) in enumerate(line.words):
                if index and line.joined and line.joined[index]:
                    x += space if rtl else -space  # no space before a joined character
                font = self._label_font if kind == "label" else self._font
                colour = self._colour(kind, speaker, text_colour, on_dark)
                width = QFontMetricsF(font).horizontalAdvance(text)
                if rtl:
                    x -= width
                path = QPainterPath()
                path.addText(QPointF(x, baseline), font, text)
                if look.outlined:
                    pen = QPen(outline, max(2.0, look.font_size * 0.14))
                    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
                    painter.strokePath(path, pen)
                painter.fillPath(path, colour)
                x += -space if rtl else width + space
            baseline += spacing
        painter.end()

    def _colour(self, kind: str, speaker: int | None, text: QColor, on_dark: bool) -> QColor:
        look = self._look
        if kind == "label" and speaker is not None:
            colour = speaker_colour(speaker, on_dark=on_dark)
        elif kind == "gap":
            colour = QColor((GAP_COLOURS_ON_DARK if on_dark else GAP_COLOURS)[0])
        else:
            colour = QColor(text)
        alpha = look.text_opacity / 100
        if kind in ("interim", "placeholder"):
            alpha *= INTERIM_ALPHA if kind == "interim" else 0.6
        colour.setAlphaF(alpha)
        return colour

    # -- the mouse: move, resize, hover -------------------------------------------------

    def _edge(self, x: float) -> Qt.Edge | None:
        if x <= EDGE_PX:
            return Qt.Edge.LeftEdge
        if x >= self.width() - EDGE_PX:
            return Qt.Edge.RightEdge
        return None

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        edge = self._edge(event.position().x())
        handle = self.windowHandle()
        if edge is not None:
            if handle is None or not handle.startSystemResize(edge):
                self._resize_from = (edge, event.globalPosition().toPoint().x(), self.geometry())
        elif handle is None or not handle.startSystemMove():
            self._drag_from = event.globalPosition().toPoint() - self.pos()
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        point = event.globalPosition().toPoint()
        if self._drag_from is not None:
            self.move(point - self._drag_from)
        elif self._resize_from is not None:
            edge, start_x, rect = self._resize_from
            delta = point.x() - start_x
            if edge is Qt.Edge.RightEdge:
                self.resize(max(MIN_WIDTH, rect.width() + delta), self.height())
            else:
                width = max(MIN_WIDTH, rect.width() - delta)
                self.setGeometry(rect.right() + 1 - width, rect.y(), width, self.height())
        else:
            near = self._edge(event.position().x())
            shape = Qt.CursorShape.SizeHorCursor if near else Qt.CursorShape.SizeAllCursor
            self.setCursor(QCursor(shape))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag_from is not None or self._resize_from is not None:
            self._drag_from = None
            self._resize_from = None
            self._placed_timer.start()
        super().mouseReleaseEvent(event)

    def enterEvent(self, event: QEnterEvent) -> None:
        self._hover = True
        self._changed()
        super().enterEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        self._hover = False
        self._changed()
        super().leaveEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        self._drag_from = None
        self._resize_from = None
        super().contextMenuEvent(event)
