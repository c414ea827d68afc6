"""The caption pane, fed plain caption events (no session, no network)."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QTextCharFormat, QTextCursor, QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from captioner.ui.caption_pane import DEFAULT_FONT_SIZE, MAX_FONT_SIZE, CaptionPane
from tests.ui_support import QT_MARKS, committed, live, transcript_events

pytestmark = QT_MARKS


@pytest.fixture
def pane(qtbot: QtBot) -> CaptionPane:
    widget = CaptionPane()
    qtbot.addWidget(widget)
    widget.resize(500, 240)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def fragments(pane: CaptionPane) -> list[tuple[str, int]]:
    """(text, foreground alpha) of every fragment in the live (last) block."""
    block = pane.view.document().lastBlock()
    found = []
    it = block.begin()
    while not it.atEnd():
        fragment = it.fragment()
        found.append((fragment.text(), fragment.charFormat().foreground().color().alpha()))
        it += 1
    return found


def test_interim_is_dimmer_than_the_settled_text(pane: CaptionPane) -> None:
    pane.apply([live("Hello there,", "how are")])
    parts = fragments(pane)
    assert "".join(t for t, _ in parts) == "Hello there, how are"
    solid = [a for t, a in parts if "Hello" in t]
    dim = [a for t, a in parts if "how" in t]
    assert solid == [255]
    assert dim and dim[0] < 200


def test_interim_is_replaced_in_place_never_appended(pane: CaptionPane) -> None:
    blocks = pane.view.document().blockCount()
    for interim in ("one", "one two", "one two three", "one two"):
        pane.apply([live("", interim)])
    assert pane.view.document().blockCount() == blocks
    assert pane.transcript() == "one two"
    assert pane.live_text() == ("", "one two")


def test_each_utterance_end_starts_a_new_paragraph(pane: CaptionPane) -> None:
    pane.apply([live("First sentence.", "and")])
    pane.apply([committed("First sentence and more."), live("", "Second")])
    pane.apply([committed("Second one."), live("", "")])
    assert pane.paragraph_count == 2
    assert pane.last_paragraph() == "Second one."
    assert pane.transcript() == "First sentence and more.\n\nSecond one."


def test_speakers_and_gaps_are_marked(pane: CaptionPane) -> None:
    pane.apply([committed("Hello.", speaker=0), committed("Hi!", speaker=1)])
    pane.apply([committed("[connection lost 0:12-1:27]", gap=True)])
    assert pane.transcript().split("\n\n") == [
        "Speaker 1: Hello.",
        "Speaker 2: Hi!",
        "[connection lost 0:12-1:27]",
    ]
    document = pane.view.document()
    first = document.firstBlock().begin().fragment().charFormat()
    third = document.findBlockByNumber(2).begin().fragment().charFormat()
    assert first.fontWeight() > 400 and first.foreground().color() != third.foreground().color()


def test_spaceless_languages_join_without_a_space(pane: CaptionPane) -> None:
    pane.set_language("ja")
    pane.apply([live("こんにちは", "世界")])
    assert pane.transcript() == "こんにちは世界"


def test_text_is_selectable_and_copy_all_copies_everything(pane: CaptionPane) -> None:
    pane.apply([committed("Alpha."), committed("Beta."), live("Gamma", "is near")])
    flags = pane.view.textInteractionFlags()
    assert flags & Qt.TextInteractionFlag.TextSelectableByMouse
    assert flags & Qt.TextInteractionFlag.TextSelectableByKeyboard
    cursor = pane.view.textCursor()
    cursor.setPosition(0)
    cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
    pane.view.setTextCursor(cursor)
    pane.view.copy()
    assert QGuiApplication.clipboard().text() == "Alpha."
    assert pane.copy_all() == "Alpha.\n\nBeta.\n\nGamma is near"
    assert QGuiApplication.clipboard().text() == "Alpha.\n\nBeta.\n\nGamma is near"


def test_autoscroll_pauses_when_the_reader_scrolls_up(pane: CaptionPane, qtbot: QtBot) -> None:
    for n in range(60):
        pane.apply([committed(f"Line {n} of a long meeting.")])
    bar = pane.view.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == bar.maximum()
    assert pane.following and pane.jump_button.isHidden()

    bar.setValue(bar.maximum() // 2)  # the reader scrolls up
    assert not pane.following
    assert pane.jump_button.isVisible() and pane.jump_button.text() == "Jump to latest"
    parked = bar.value()
    for n in range(3):
        pane.apply([committed(f"New line {n}."), live("", "still talking")])
    assert bar.value() == parked, "the view must not move while the reader is away"
    assert pane.jump_button.text() == "Jump to latest (3 new)"

    qtbot.mouseClick(pane.jump_button, Qt.MouseButton.LeftButton)
    assert pane.following and pane.jump_button.isHidden()
    assert bar.value() == bar.maximum()
    pane.apply([committed("After the jump.")])
    assert bar.value() == bar.maximum()


def test_scrolling_back_to_the_bottom_resumes_following(pane: CaptionPane) -> None:
    for n in range(60):
        pane.apply([committed(f"Line {n}.")])
    bar = pane.view.verticalScrollBar()
    bar.setValue(0)
    pane.apply([committed("Missed.")])
    assert pane.new_while_away == 1
    bar.setValue(bar.maximum())
    assert pane.following and pane.new_while_away == 0 and pane.jump_button.isHidden()


def test_text_size_changes_and_is_bounded(pane: CaptionPane, qtbot: QtBot) -> None:
    sizes: list[int] = []
    pane.font_size_changed.connect(sizes.append)
    assert pane.font_size == DEFAULT_FONT_SIZE
    pane.zoom_in()
    assert pane.view.font().pointSize() == DEFAULT_FONT_SIZE + 2
    pane.zoom_out()
    pane.zoom_out()
    assert pane.font_size == DEFAULT_FONT_SIZE - 2
    for _ in range(100):
        pane.zoom_in()
    assert pane.font_size == MAX_FONT_SIZE
    pane.reset_zoom()
    assert sizes[:3] == [DEFAULT_FONT_SIZE + 2, DEFAULT_FONT_SIZE, DEFAULT_FONT_SIZE - 2]
    assert sizes[-1] == DEFAULT_FONT_SIZE


def test_ctrl_wheel_zooms_the_pane(pane: CaptionPane) -> None:
    viewport = pane.view.viewport()
    event = QWheelEvent(
        QPointF(10, 10),
        QPointF(viewport.mapToGlobal(QPoint(10, 10))),
        QPoint(0, 0),
        QPoint(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(viewport, event)
    assert pane.font_size == DEFAULT_FONT_SIZE + 2


def test_clear_empties_the_pane(pane: CaptionPane) -> None:
    pane.apply([committed("Gone soon."), live("and", "this")])
    pane.clear()
    assert pane.transcript() == "" and pane.paragraph_count == 0
    pane.apply([live("", "fresh")])
    assert pane.transcript() == "fresh"


def test_twenty_thousand_updates_cost_the_same_at_the_end(
    pane: CaptionPane, qapp: QApplication
) -> None:
    """Guards the PySide6 none_dealloc abort (thousands of None-returning calls) and the
    cost per update: the last thousand updates (three hours of captions in the pane) may
    not be much slower than the first thousand."""
    pane.resize(900, 600)
    events = transcript_events(20_000)
    measured = 1000
    costs: list[float] = []
    for number, batch in enumerate(events):
        timed = number < 2 * measured or number >= len(events) - measured
        began = time.perf_counter()
        pane.apply(batch)  # type: ignore[arg-type]
        if timed or number % 50 == 0:
            qapp.processEvents()  # layout and paint, as the event loop would
        if timed:
            costs.append(time.perf_counter() - began)
    assert pane.paragraph_count == 20_000 // 6

    def typical(sample: list[float]) -> float:
        ordered = sorted(sample)
        return ordered[len(ordered) // 2]

    early, late = typical(costs[measured : 2 * measured]), typical(costs[-measured:])
    assert late < early * 2.0 + 0.0005, f"update cost grew from {early:.6f}s to {late:.6f}s"
    assert pane.following and pane.view.verticalScrollBar().value() > 0


def test_gap_markers_stand_out_from_every_other_line(pane: CaptionPane) -> None:
    pane.apply([committed("Before.", 3.0), committed("[connection lost 0:12-1:27]", gap=True)])
    pane.apply([committed("tail never confirmed", unconfirmed=True)])
    document = pane.view.document()

    def format_of(block: int) -> QTextCharFormat:
        return document.findBlockByNumber(block).begin().fragment().charFormat()

    normal, gap, unconfirmed = format_of(0), format_of(2), format_of(4)
    assert gap.background().style() != Qt.BrushStyle.NoBrush
    assert normal.background().style() == Qt.BrushStyle.NoBrush
    assert unconfirmed.background().style() == Qt.BrushStyle.NoBrush
    assert gap.foreground().color() not in (
        normal.foreground().color(),
        unconfirmed.foreground().color(),
    )


def test_timestamps_at_paragraph_starts_can_be_switched(pane: CaptionPane) -> None:
    pane.apply([committed("Hello.", 62.4, speaker=0), live("", "still talking")])
    assert pane.transcript() == "Speaker 1: Hello.\n\nstill talking"
    pane.set_timestamps(True)
    assert pane.transcript() == "[0:01:02] Speaker 1: Hello.\n\nstill talking"
    pane.apply([committed("Then this.", 3725.0)])
    assert pane.last_paragraph() == "[1:02:05] Then this."
    pane.set_timestamps(False)
    assert pane.transcript() == "Speaker 1: Hello.\n\nThen this.\n\nstill talking"
    assert pane.paragraph_count == 2


def test_a_new_theme_recolours_what_is_already_shown(pane: CaptionPane) -> None:
    from captioner.ui.preferences import Theme
    from captioner.ui.theme import palette_for

    pane.apply([committed("Hello.", speaker=0)])
    light = pane.view.document().firstBlock().begin().fragment().charFormat()
    pane.setPalette(palette_for(Theme.DARK))
    QApplication.processEvents()
    dark = pane.view.document().firstBlock().begin().fragment().charFormat()
    assert light.foreground().color() != dark.foreground().color()
    assert dark.foreground().color().lightnessF() > 0.5  # readable on the dark base
    assert pane.transcript() == "Speaker 1: Hello."
