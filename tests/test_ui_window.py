"""The main window's first size: every toolbar button in view, at normal and large text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QApplication, QToolButton
from pytestqt.qtbot import QtBot

from captioner.ui.window import DEFAULT_SIZE, MainWindow
from tests.ui_support import QT_MARKS

pytestmark = QT_MARKS


@pytest.fixture
def text_scale(request: pytest.FixtureRequest, qapp: QApplication) -> Iterator[float]:
    """The application's text at `request.param` times its usual size, as a person's
    accessibility setting would make it."""
    scale: float = request.param
    normal = qapp.font()
    larger = QFont(normal)
    larger.setPointSizeF(normal.pointSizeF() * scale)
    qapp.setFont(larger)
    try:
        yield scale
    finally:
        qapp.setFont(normal)
        assert qapp.font().pointSizeF() == normal.pointSizeF()


def _hidden(window: MainWindow) -> list[str]:
    bar = window.toolbar
    out = []
    for action in bar.actions():
        widget = bar.widgetForAction(action)
        if not action.isSeparator() and widget is not None and not widget.isVisible():
            out.append(action.text() or "(picker)")
    return out


@pytest.mark.parametrize("text_scale", [1.0, 1.5], indirect=True, ids=["100%", "150%"])
def test_the_whole_toolbar_fits_the_first_window(qtbot: QtBot, text_scale: float) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert _hidden(window) == []
    overflow = [
        b
        for b in window.toolbar.findChildren(QToolButton)
        if b.objectName() == "qt_toolbar_ext_button"
    ]
    assert not any(b.isVisible() for b in overflow)
    assert window.width() >= DEFAULT_SIZE[0]


def test_a_restored_size_is_kept(qtbot: QtBot) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(700, 500)  # what the person left it at last time
    window.show()
    qtbot.waitExposed(window)
    assert window.size().toTuple() == (700, 500)
