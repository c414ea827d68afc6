"""The caption pane: committed paragraphs, then the live text of the open utterance.

The document is a QPlainTextEdit's: it lays out only the blocks it shows, so an edit
costs the same after three hours as after three seconds. Its shape is fixed:

    paragraph, blank, paragraph, blank, ..., live

Every update touches only the last block (the live one); a committed utterance is
inserted in front of it together with the blank that separates paragraphs. Nothing
ever reads or rewrites the whole text, except "Copy all", which a person asks for.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QGuiApplication,
    QPalette,
    QResizeEvent,
    QTextCharFormat,
    QTextCursor,
    QWheelEvent,
)
from PySide6.QtWidgets import QPlainTextEdit, QPushButton, QTextEdit, QVBoxLayout, QWidget

from captioner.core.captions import CaptionEvent, Committed, LiveChanged, Utterance, separator_for
from captioner.core.exports import SPEAKER_COLOURS as SPEAKER_COLOURS_FOR_SUBTITLES
from captioner.core.exports import clock
from captioner.core.languages import right_to_left
from captioner.core.voices import Voices

__all__ = [
    "DEFAULT_FONT_SIZE",
    "MAX_FONT_SIZE",
    "MIN_FONT_SIZE",
    "CaptionPane",
    "is_dark",
    "speaker_colour",
]

DEFAULT_FONT_SIZE = 16
MIN_FONT_SIZE = 8
MAX_FONT_SIZE = 72
FONT_STEP = 2
INTERIM_ALPHA = 0.55

# Speaker n takes colour n modulo the list: one list readable on light backgrounds, one on
# dark (the overlay's usual black, and the dark and high-contrast themes).
SPEAKER_COLOURS = (
    "#1f5fa8",
    "#c0262d",
    "#237a2c",
    "#7b4bb3",
    "#b35900",
    "#0f7585",
    "#b0307f",
    "#7a4a3a",
)
SPEAKER_COLOURS_ON_DARK = SPEAKER_COLOURS_FOR_SUBTITLES  # the exports' colours too
# Gap markers: (text, background) on light and on dark backgrounds.
GAP_COLOURS = ("#7a4d00", "#ffefc2")
GAP_COLOURS_ON_DARK = ("#ffd27a", "#3d3000")


def speaker_colour(speaker: int, *, on_dark: bool) -> QColor:
    colours = SPEAKER_COLOURS_ON_DARK if on_dark else SPEAKER_COLOURS
    return QColor(colours[speaker % len(colours)])


def is_dark(colour: QColor) -> bool:
    return colour.lightnessF() < 0.5


_LINE_SEPARATOR = "\u2028"


class _CaptionView(QPlainTextEdit):
    """Read-only, selectable text; Ctrl + wheel asks the pane to zoom instead of zooming itself."""

    zoom_requested = Signal(int)
    palette_changed = Signal()

    def changeEvent(self, e: QEvent) -> None:
        super().changeEvent(e)
        if e.type() == QEvent.Type.PaletteChange:
            self.palette_changed.emit()

    def wheelEvent(self, e: QWheelEvent) -> None:
        if e.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = e.angleDelta().y()
            if steps:
                self.zoom_requested.emit(1 if steps > 0 else -1)
            e.accept()
            return
        super().wheelEvent(e)


class CaptionPane(QWidget):
    """Shows caption events; follows the newest line until the reader scrolls up."""

    font_size_changed = Signal(int)
    following_changed = Signal(bool)
    matches_changed = Signal()
    """Find's matches or the match shown changed (a search, new captions, a clear)."""

    def __init__(self, parent: QWidget | None = None, font_size: int = DEFAULT_FONT_SIZE) -> None:
        super().__init__(parent)
        self.setObjectName("captionPane")
        self._view = _CaptionView(self)
        self._view.setObjectName("captionText")
        self._view.setReadOnly(True)
        self._view.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self._view.setCursorWidth(0)  # keyboard selection works; no caret blinks in captions
        self._view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self._view.setFrameShape(QPlainTextEdit.Shape.NoFrame)
        self._view.setPlaceholderText("Captions appear here. Press Start to begin.")
        self._doc = self._view.document()
        self._doc.setUndoRedoEnabled(False)  # an undo history would keep every edit forever
        self._doc.setDocumentMargin(12)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._view)

        self._jump = QPushButton(self)
        self._jump.setObjectName("jumpToLatest")
        self._jump.setCursor(Qt.CursorShape.PointingHandCursor)
        self._jump.clicked.connect(self.jump_to_latest)
        self._jump.hide()

        self._live: dict[int, tuple[str, str]] = {}
        self._utterances: list[Utterance] = []
        self._timestamps = False
        self._paragraphs = 0
        self._following = True
        self._new_while_away = 0
        self._scrolling = False
        self._font_size = 0
        self._separator = " "
        self._voices = Voices()
        self._solid = QTextCharFormat()
        self._interim = QTextCharFormat()
        self._muted = QTextCharFormat()
        self._gap = QTextCharFormat()
        self._time = QTextCharFormat()
        self._on_dark = False
        self._query = ""
        self._matches: list[tuple[int, int]] = []  # (start, end) in the committed text
        self._searched_to = 0  # the committed text searched so far ends here
        self._current = -1
        self._refresh_formats()
        self._view.setAccessibleName("Captions")
        self._view.setAccessibleDescription(
            "The transcript: one paragraph per utterance, the newest at the end"
        )

        bar = self._view.verticalScrollBar()
        bar.rangeChanged.connect(self._on_scrollbar_range_changed)
        bar.valueChanged.connect(self._on_scrollbar_value_changed)
        self._view.zoom_requested.connect(self._on_view_zoom_requested)
        self._view.palette_changed.connect(self._on_view_palette_changed)
        self.set_font_size(font_size)

    # -- reading ------------------------------------------------------------------------

    @property
    def view(self) -> QPlainTextEdit:
        return self._view

    @property
    def paragraph_count(self) -> int:
        """Committed paragraphs shown (gap markers included)."""
        return self._paragraphs

    @property
    def following(self) -> bool:
        """Whether the pane scrolls to each new line by itself."""
        return self._following

    @property
    def new_while_away(self) -> int:
        """Paragraphs committed since the reader scrolled away from the newest line."""
        return self._new_while_away

    @property
    def jump_button(self) -> QPushButton:
        return self._jump

    @property
    def font_size(self) -> int:
        return self._font_size

    @property
    def timestamps(self) -> bool:
        """Whether each paragraph starts with its time."""
        return self._timestamps

    def utterances(self) -> list[Utterance]:
        """The committed lines shown, in order."""
        return list(self._utterances)

    def live_text(self) -> tuple[str, str]:
        """(settled, interim) text of the live block, channels joined by a line break."""
        finals = [f for _, (f, _i) in sorted(self._live.items()) if f]
        interims = [i for _, (_f, i) in sorted(self._live.items()) if i]
        return "\n".join(finals), "\n".join(interims)

    def transcript(self) -> str:
        """Everything shown, paragraphs separated by blank lines (reads the whole text)."""
        text = self._doc.toPlainText().replace(_LINE_SEPARATOR, "\n")
        return text.strip()

    def last_paragraph(self) -> str:
        """The newest committed paragraph, or "" (constant cost)."""
        if not self._paragraphs:
            return ""
        block = self._doc.lastBlock().previous().previous()
        return block.text().replace(_LINE_SEPARATOR, "\n")

    # -- updating -------------------------------------------------------------------------

    def set_language(self, language: str | None) -> None:
        """How settled and interim text are joined (no space for Japanese and Chinese), and
        which edge paragraphs start from: the right for Arabic, Hebrew, Persian, Urdu….

        The text widget aligns every paragraph alike, so the side follows the language asked
        for; each paragraph's words still read in Unicode's bidirectional order."""
        self._separator = separator_for(language)
        option = self._doc.defaultTextOption()
        if right_to_left(language):
            option.setTextDirection(Qt.LayoutDirection.RightToLeft)
            option.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignAbsolute)
        else:
            option.setTextDirection(Qt.LayoutDirection.LayoutDirectionAuto)
            option.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignAbsolute)
        self._doc.setDefaultTextOption(option)

    def apply(self, events: Sequence[CaptionEvent]) -> None:
        """Fold caption events into the view; only the last block changes."""
        live_dirty = False
        for event in events:
            if isinstance(event, Committed):
                self._insert_paragraph(event.utterance)
            elif isinstance(event, LiveChanged):
                if event.final_text or event.interim_text:
                    self._live[event.channel] = (event.final_text, event.interim_text)
                else:
                    self._live.pop(event.channel, None)
                live_dirty = True
        if live_dirty:
            self._render_live()
        if self._query and any(isinstance(event, Committed) for event in events):
            self._search_new_text()
        if self._following:
            self._scroll_to_end()

    @property
    def voices(self) -> Voices:
        return self._voices

    def set_voices(self, voices: Voices) -> None:
        """How paragraphs are labelled: by speaker (one input), or by side for a call ("You",
        "Others", each in its own colour); redraws what is shown."""
        if voices != self._voices:
            self._voices = voices
            self._rebuild()

    def set_timestamps(self, on: bool) -> None:
        """Show (or hide) the time at each paragraph's start; redraws what is shown."""
        if on != self._timestamps:
            self._timestamps = on
            self._rebuild()

    def clear(self) -> None:
        self._live.clear()
        self._utterances.clear()
        self._paragraphs = 0
        self._doc.clear()
        self._matches, self._searched_to, self._current = [], 0, -1
        self._show_matches()
        self._set_new_while_away(0)
        self._set_following(True)

    def copy_all(self) -> str:
        """Put the whole transcript on the clipboard; returns what was copied."""
        text = self.transcript()
        QGuiApplication.clipboard().setText(text)
        return text

    # -- find -----------------------------------------------------------------------------

    MAX_HIGHLIGHTS = 2000
    """Matches highlighted at once (all are counted and reachable)."""

    @property
    def find_query(self) -> str:
        return self._query

    def match_count(self) -> int:
        return len(self._matches)

    def current_match(self) -> int:
        """The index of the match shown, or -1."""
        return self._current

    def matched_text(self, index: int) -> str:
        start, end = self._matches[index]
        cursor = QTextCursor(self._doc)
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        return cursor.selectedText()

    def find_text(self, query: str) -> int:
        """Highlight every match of `query` (case-insensitive) in the committed paragraphs and
        show the newest; returns how many there are. Captions keep arriving meanwhile: each
        new paragraph is searched as it is committed."""
        self._query = query
        self._matches, self._searched_to, self._current = [], 0, -1
        if query:
            self._search_new_text()
            if self._matches:
                self._go_to(len(self._matches) - 1)
                return len(self._matches)
        self._show_matches()
        return len(self._matches)

    def find_next(self) -> int:
        """Show the next (newer) match, wrapping around; returns its index or -1."""
        if self._matches:
            self._go_to((self._current + 1) % len(self._matches))
        return self._current

    def find_previous(self) -> int:
        """Show the previous (older) match, wrapping around; returns its index or -1."""
        if self._matches:
            self._go_to((self._current - 1) % len(self._matches))
        return self._current

    def _committed_end(self) -> int:
        """Where the live block starts: everything before it is settled text."""
        return self._doc.lastBlock().position()

    def _search_new_text(self) -> None:
        end = self._committed_end()
        cursor = QTextCursor(self._doc)
        cursor.setPosition(self._searched_to)
        while True:
            found = self._doc.find(self._query, cursor)
            if found.isNull() or found.selectionEnd() > end:
                break
            self._matches.append((found.selectionStart(), found.selectionEnd()))
            cursor = found
        self._searched_to = end
        self._show_matches()

    def _go_to(self, index: int) -> None:
        self._current = index
        start, end = self._matches[index]
        cursor = QTextCursor(self._doc)
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        self._view.setTextCursor(cursor)
        self._view.ensureCursorVisible()
        self._show_matches()

    def _show_matches(self) -> None:
        highlight = QTextCharFormat()
        current = QTextCharFormat()
        if self._on_dark:
            highlight.setBackground(QColor("#6b5a00"))
            current.setBackground(QColor("#c77800"))
        else:
            highlight.setBackground(QColor("#fff0a0"))
            current.setBackground(QColor("#ffb347"))
        selections = []
        shown = self._matches
        first = 0
        if len(shown) > self.MAX_HIGHLIGHTS:  # those around the one shown
            first = max(0, min(self._current, len(shown) - 1) - self.MAX_HIGHLIGHTS // 2)
            shown = shown[first : first + self.MAX_HIGHLIGHTS]
        for offset, (start, end) in enumerate(shown):
            selection = QTextEdit.ExtraSelection()
            cursor = QTextCursor(self._doc)
            cursor.setPosition(start)
            cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
            selection.cursor = cursor
            selection.format = current if first + offset == self._current else highlight
            selections.append(selection)
        self._view.setExtraSelections(selections)
        self.matches_changed.emit()

    # -- scrolling ------------------------------------------------------------------------

    def jump_to_latest(self) -> None:
        self._set_following(True)
        self._scroll_to_end()

    def _scroll_to_end(self) -> None:
        bar = self._view.verticalScrollBar()
        if bar.value() != bar.maximum():
            self._scrolling = True
            try:
                bar.setValue(bar.maximum())
            finally:
                self._scrolling = False

    def _on_scrollbar_range_changed(self, _low: int, high: int) -> None:
        if self._following:
            self._scroll_to_end()

    def _on_scrollbar_value_changed(self, value: int) -> None:
        if self._scrolling:
            return
        at_end = value >= self._view.verticalScrollBar().maximum()
        self._set_following(at_end)

    def _set_following(self, on: bool) -> None:
        if on:
            self._set_new_while_away(0)
        if on == self._following:
            self._update_jump_button()
            return
        self._following = on
        self._update_jump_button()
        self.following_changed.emit(on)

    def _set_new_while_away(self, count: int) -> None:
        self._new_while_away = count
        self._update_jump_button()

    def _update_jump_button(self) -> None:
        if self._following:
            self._jump.hide()
            return
        count = self._new_while_away
        self._jump.setText(f"Jump to latest ({count} new)" if count else "Jump to latest")
        self._jump.adjustSize()
        self._place_jump_button()
        self._jump.show()
        self._jump.raise_()

    def _place_jump_button(self) -> None:
        viewport = self._view.viewport().geometry()
        size = self._jump.sizeHint()
        x = viewport.right() - size.width() - 16
        y = viewport.bottom() - size.height() - 12
        self._jump.setGeometry(max(0, x), max(0, y), size.width(), size.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._jump.isVisible():
            self._place_jump_button()

    def _on_view_palette_changed(self) -> None:
        self._refresh_formats()
        if self._utterances:
            self._rebuild()  # the colours of what is shown were the old theme's

    # -- text size ------------------------------------------------------------------------

    def set_font_size(self, points: int) -> None:
        points = max(MIN_FONT_SIZE, min(MAX_FONT_SIZE, int(points)))
        if points == self._font_size:
            return
        self._font_size = points
        font = QFont(self._view.font())
        font.setPointSize(points)
        self._view.setFont(font)
        self._jump.setFont(QFont(self.font()))
        if self._following:
            self._scroll_to_end()
        self.font_size_changed.emit(points)

    def zoom_in(self) -> None:
        self.set_font_size(self._font_size + FONT_STEP)

    def zoom_out(self) -> None:
        self.set_font_size(self._font_size - FONT_STEP)

    def reset_zoom(self) -> None:
        self.set_font_size(DEFAULT_FONT_SIZE)

    def _on_view_zoom_requested(self, direction: int) -> None:
        if direction > 0:
            self.zoom_in()
        else:
            self.zoom_out()

    # -- the document ---------------------------------------------------------------------

    def _refresh_formats(self) -> None:
        palette = self._view.palette()
        text = palette.color(QPalette.ColorRole.Text)
        self._on_dark = is_dark(palette.color(QPalette.ColorRole.Base))
        self._solid = QTextCharFormat()
        self._solid.setForeground(text)
        dim = QColor(text)
        dim.setAlphaF(INTERIM_ALPHA)
        self._interim = QTextCharFormat()
        self._interim.setForeground(dim)
        self._muted = QTextCharFormat()
        self._muted.setForeground(dim)
        self._muted.setFontItalic(True)
        foreground, background = GAP_COLOURS_ON_DARK if self._on_dark else GAP_COLOURS
        self._gap = QTextCharFormat()
        self._gap.setForeground(QColor(foreground))
        self._gap.setBackground(QColor(background))
        self._gap.setFontItalic(True)
        self._gap.setFontWeight(QFont.Weight.DemiBold)
        self._time = QTextCharFormat()
        self._time.setForeground(palette.color(QPalette.ColorRole.PlaceholderText))

    def _insert_paragraph(self, utterance: Utterance) -> None:
        self._utterances.append(utterance)
        self._write_paragraph(QTextCursor(self._doc.lastBlock()), utterance)
        self._paragraphs += 1
        if not self._following:
            self._set_new_while_away(self._new_while_away + 1)

    def _write_paragraph(self, cursor: QTextCursor, utterance: Utterance) -> None:
        if self._timestamps:
            cursor.insertText(f"[{clock(utterance.start)}] ", self._time)
        if not utterance.gap:
            self._write_label(cursor, utterance.channel, utterance.speaker)
        if utterance.gap:
            cursor.insertText(utterance.text, self._gap)
        elif utterance.unconfirmed:
            cursor.insertText(utterance.text, self._muted)
        else:
            cursor.insertText(utterance.text, self._solid)
        cursor.insertBlock()
        cursor.insertBlock()

    def _write_label(self, cursor: QTextCursor, channel: int, speaker: int | None) -> None:
        name = self._voices.label(channel, speaker)
        colour = self._voices.colour(channel, speaker)
        if name is None or colour is None:
            return
        label = QTextCharFormat(self._solid)
        label.setForeground(speaker_colour(colour, on_dark=self._on_dark))
        label.setFontWeight(QFont.Weight.Bold)
        cursor.insertText(f"{name}: ", label)

    def _rebuild(self) -> None:
        """Write every paragraph again (a theme or the timestamps changed; rare)."""
        bar = self._view.verticalScrollBar()
        position = bar.value()
        self._doc.clear()
        cursor = QTextCursor(self._doc)
        cursor.beginEditBlock()
        for utterance in self._utterances:
            self._write_paragraph(cursor, utterance)
        cursor.endEditBlock()
        self._render_live()
        if self._query:  # positions moved (timestamps): search again, keep the place
            kept = self._current
            self._matches, self._searched_to = [], 0
            self._search_new_text()
            self._current = min(kept, len(self._matches) - 1)
            self._show_matches()
        if self._following:
            self._scroll_to_end()
        else:
            self._scrolling = True
            try:
                bar.setValue(position)
            finally:
                self._scrolling = False

    def _render_live(self) -> None:
        cursor = QTextCursor(self._doc.lastBlock())
        cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
        first = True
        for channel, (final, interim) in sorted(self._live.items()):
            if not first:
                cursor.insertText(_LINE_SEPARATOR, self._solid)
            first = False
            if self._voices.by_channel:  # a call: whose words these are, as they come
                self._write_label(cursor, channel, None)
            if final:
                cursor.insertText(final, self._solid)
            if interim:
                cursor.insertText((self._separator if final else "") + interim, self._interim)
        if first:
            cursor.removeSelectedText()
