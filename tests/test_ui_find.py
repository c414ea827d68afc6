"""Find in the captions (Ctrl+F): matches highlighted, next and previous, the count, and
captions that keep arriving meanwhile."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from captioner.ui.window import MainWindow
from tests.ui_support import QT_MARKS, committed, live

pytestmark = QT_MARKS

LINES = [
    "Good morning and welcome to the planning meeting.",
    "First the budget for the third quarter.",
    "Then questions from the floor.",
    "The Budget was approved last week.",
]


def make(qtbot: QtBot) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.pane.apply([committed(text, 4.0 * i) for i, text in enumerate(LINES)])
    return window


def test_find_highlights_counts_and_moves_between_matches(qtbot: QtBot) -> None:
    window = make(qtbot)
    bar, pane = window.find_bar, window.pane
    assert not bar.isVisible()
    window.find_action.trigger()
    assert bar.isVisible() and window.focusWidget() is bar.edit
    qtbot.keyClicks(bar.edit, "budget")
    # case-insensitive; the newest match is shown first
    assert pane.match_count() == 2 and bar.count.text() == "2 of 2"
    assert pane.matched_text(1) == "Budget"
    assert len(pane.view.extraSelections()) == 2
    assert pane.view.textCursor().selectedText() == "Budget"
    qtbot.keyClick(bar.edit, Qt.Key.Key_Return)  # next wraps to the oldest
    assert bar.count.text() == "1 of 2" and pane.view.textCursor().selectedText() == "budget"
    qtbot.keyClick(bar.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert bar.count.text() == "2 of 2"
    window.find_previous_action.trigger()
    assert bar.count.text() == "1 of 2"

    # captions keep arriving: a new paragraph is searched, the live line is not counted
    pane.apply([live("", "the budget again"), committed("A new budget line.", 20.0)])
    assert pane.match_count() == 3 and bar.count.text() == "1 of 3"
    pane.apply([live("", "budget budget budget")])
    assert pane.match_count() == 3
    window.find_next_action.trigger()
    window.find_next_action.trigger()
    assert bar.count.text() == "3 of 3"
    assert pane.matched_text(2) == "budget"

    # timestamps rewrite every paragraph: the matches follow
    pane.set_timestamps(True)
    assert pane.match_count() == 3 and bar.count.text() == "3 of 3"
    assert all(pane.matched_text(i).lower() == "budget" for i in range(3))

    # nothing found: said, and Next does nothing
    bar.edit.clear()
    qtbot.keyClicks(bar.edit, "zebra")
    assert bar.count.text() == "No matches" and not bar.next_button.isEnabled()
    assert pane.view.extraSelections() == []

    # Escape closes the bar and takes the highlights away; the captions keep their focus
    bar.edit.setText("budget")
    assert len(pane.view.extraSelections()) == 3
    qtbot.keyClick(bar.edit, Qt.Key.Key_Escape)
    assert not bar.isVisible() and pane.view.extraSelections() == []
    assert pane.find_query == ""


def test_clear_empties_the_matches(qtbot: QtBot) -> None:
    window = make(qtbot)
    window.find_action.trigger()
    qtbot.keyClicks(window.find_bar.edit, "the")
    assert window.pane.match_count() >= 4
    window.pane.clear()
    assert window.pane.match_count() == 0 and window.find_bar.count.text() == "No matches"
    window.pane.apply([committed("the end", 30.0)])
    assert window.pane.match_count() == 1 and window.find_bar.count.text() == "1 match"
    window.find_next_action.trigger()
    assert window.find_bar.count.text() == "1 of 1"
