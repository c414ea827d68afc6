"""The caption overlay, fed plain caption events: lines, look, click-through, silence."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from captioner.ui.overlay import CaptionOverlay, always_on_top_problem
from captioner.ui.preferences import AfterSilence, OverlayLook, PreferencesStore, open_qsettings
from tests.ui_support import QT_MARKS, committed, live

pytestmark = QT_MARKS

SENTENCES = [
    "Good morning everyone and welcome to the weekly planning meeting.",
    "First a quick look at last week and the release on Thursday.",
    "Then the budget for the third quarter and questions from the floor.",
]


def make(qtbot: QtBot, **look: object) -> CaptionOverlay:
    overlay = CaptionOverlay(dataclasses.replace(OverlayLook(), **look))  # type: ignore[arg-type]
    qtbot.addWidget(overlay)
    overlay.place(None)
    overlay.show()
    qtbot.waitExposed(overlay)
    return overlay


def pixels(image: QImage, step: int = 2) -> list[QColor]:
    return [
        image.pixelColor(x, y)
        for x in range(0, image.width(), step)
        for y in range(0, image.height(), step)
    ]


def near(colour: QColor, wanted: str, tolerance: int = 40) -> bool:
    target = QColor(wanted)
    return (
        colour.alpha() > 200
        and abs(colour.red() - target.red()) <= tolerance
        and abs(colour.green() - target.green()) <= tolerance
        and abs(colour.blue() - target.blue()) <= tolerance
    )


def test_a_frameless_translucent_window_that_stays_on_top(qtbot: QtBot) -> None:
    overlay = make(qtbot)
    flags = overlay.windowFlags()
    for flag in (
        Qt.WindowType.FramelessWindowHint,
        Qt.WindowType.WindowStaysOnTopHint,
        Qt.WindowType.WindowDoesNotAcceptFocus,
    ):
        assert flags & flag
    assert overlay.testAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
    assert always_on_top_problem("wayland") is not None
    assert "Wayland" in (always_on_top_problem("wayland-egl") or "")
    assert always_on_top_problem("xcb") is None and always_on_top_problem("windows") is None


def test_two_lines_by_default_rolling_up_from_the_bottom(qtbot: QtBot) -> None:
    overlay = make(qtbot)
    overlay.apply([committed(SENTENCES[0]), committed(SENTENCES[1])])
    lines = overlay.shown_lines()
    assert len(lines) == 2
    assert lines[-1].text.endswith("Thursday.")
    before = overlay.height()
    overlay.apply([live("Then the budget", "for the third")])
    assert overlay.shown_lines()[-1].text.endswith("for the third")
    assert "interim" in overlay.shown_lines()[-1].kinds

    overlay.set_look(dataclasses.replace(overlay.look, lines=5))
    five = overlay.shown_lines()
    assert 2 < len(five) <= 5
    assert overlay.height() > 2 * before
    assert " ".join(line.text for line in five).endswith("for the third")
    overlay.set_look(dataclasses.replace(overlay.look, lines=9))  # out of range: kept to 5
    assert overlay.look.lines == 5


def test_speakers_get_a_coloured_label_and_the_gap_a_line_of_its_own(qtbot: QtBot) -> None:
    overlay = make(qtbot, lines=4, font_size=18)
    overlay.apply(
        [
            committed("Shall we start?", speaker=0),
            committed("[connection lost 0:12-1:27]", gap=True),
            committed("Yes, the budget first.", speaker=1),
        ]
    )
    lines = overlay.shown_lines()
    texts = [line.text for line in lines]
    assert texts == [
        "Speaker 1: Shall we start?",
        "[connection lost 0:12-1:27]",
        "Speaker 2: Yes, the budget first.",
    ]
    assert lines[1].kinds == {"gap"}
    assert lines[2].words[0] == ("Speaker 2:", "label", 1)
    image = overlay.grab().toImage()
    seen = pixels(image, 1)
    assert any(near(p, "#ffd27a") for p in seen), "the gap marker's amber"
    assert any(near(p, "#ff8a8a") for p in seen), "speaker 2's colour"
    assert any(near(p, "#7cc0ff") for p in seen), "speaker 1's colour"


def test_text_and_background_look_are_set_separately(qtbot: QtBot) -> None:
    overlay = make(qtbot, text_colour="#ffff00", background_colour="#102040", background_opacity=60)
    overlay.apply([committed("Readable words on a dark box.")])
    image = overlay.grab().toImage()
    corner = image.pixelColor(image.width() - 12, image.height() // 2)
    assert corner.alpha() == pytest.approx(0.6 * 255, abs=3)
    assert (corner.red(), corner.green(), corner.blue()) == pytest.approx((16, 32, 64), abs=3)
    assert any(near(p, "#ffff00") for p in pixels(image))
    assert not any(p.alpha() > 200 and p.value() < 40 for p in pixels(image)), "no outline"

    overlay.set_look(dataclasses.replace(overlay.look, background_opacity=0, text_opacity=100))
    clear = overlay.grab().toImage()
    assert clear.pixelColor(clear.width() - 12, clear.height() // 2).alpha() == 0
    outline = [p for p in pixels(clear) if p.alpha() > 200 and p.value() < 40]
    assert len(outline) > 50, "a clear background outlines the text"

    bigger = dataclasses.replace(overlay.look, font_size=overlay.look.font_size * 2)
    height = overlay.height()
    overlay.set_look(bigger)
    assert overlay.height() > 1.7 * height


def test_click_through_lets_the_mouse_pass(qtbot: QtBot) -> None:
    overlay = make(qtbot)
    assert not overlay.windowFlags() & Qt.WindowType.WindowTransparentForInput
    overlay.set_look(dataclasses.replace(overlay.look, click_through=True))
    assert overlay.windowFlags() & Qt.WindowType.WindowTransparentForInput
    assert overlay.isVisible()  # changing the flag re-shows the window
    overlay.set_look(dataclasses.replace(overlay.look, click_through=False))
    assert not overlay.windowFlags() & Qt.WindowType.WindowTransparentForInput


@pytest.mark.parametrize("mode", list(AfterSilence))
def test_after_silence_it_fades_clears_or_keeps_the_last_line(
    qtbot: QtBot, mode: AfterSilence
) -> None:
    overlay = make(qtbot, after_silence=mode, silence_seconds=1)
    overlay.apply([committed(SENTENCES[0]), committed(SENTENCES[1])])
    assert len(overlay.shown_lines()) == 2
    if mode is AfterSilence.KEEP:
        qtbot.waitUntil(lambda: len(overlay.shown_lines()) == 1, timeout=3000)
        assert overlay.shown_lines()[0].text.endswith("Thursday.")
    elif mode is AfterSilence.CLEAR:
        qtbot.waitUntil(lambda: overlay.shown_lines() == [], timeout=3000)
        assert overlay.opacity == 1.0
    else:
        qtbot.waitUntil(lambda: 0.0 < overlay.opacity < 1.0, timeout=3000)
        qtbot.waitUntil(lambda: overlay.shown_lines() == [], timeout=3000)
    overlay.apply([live("", "New words")])  # speech again: shown at once, fully
    assert overlay.opacity == 1.0
    assert overlay.shown_lines()[-1].text == "New words"


def test_a_place_on_no_screen_falls_back_to_the_bottom_centre(qtbot: QtBot) -> None:
    overlay = make(qtbot)
    overlay.place((90_000, 90_000, 500, 80))
    screen = overlay.screen().availableGeometry()
    assert screen.contains(overlay.geometry().center())
    assert overlay.geometry().center().y() > screen.center().y()
    overlay.place((30, 40, 500, 999))
    assert overlay.placement()[:3] == (30, 40, 500)  # the height follows the lines


def test_an_empty_overlay_shows_where_it_is_for_a_moment(qtbot: QtBot) -> None:
    overlay = make(qtbot)
    assert overlay.shown_lines() == []  # nothing to say: nothing drawn
    overlay.show_where(300)
    assert [line.text for line in overlay.shown_lines()] == ["Captions appear here"]
    qtbot.waitUntil(lambda: overlay.shown_lines() == [], timeout=2000)
    overlay.set_preview(True)  # while its settings are open
    assert overlay.shown_lines()[0].kinds == {"placeholder"}


def test_dragging_moves_it_and_its_edge_resizes_it(qtbot: QtBot) -> None:
    overlay = make(qtbot)
    overlay.place((100, 300, 500, 80))
    placed: list[bool] = []
    overlay.placed.connect(lambda: placed.append(True))
    start = overlay.geometry()
    middle = QPoint(250, 20)
    QTest.mousePress(overlay, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, middle)
    QTest.mouseMove(overlay, middle + QPoint(40, -30))
    QTest.mouseRelease(
        overlay, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, middle + QPoint(40, -30)
    )
    moved = overlay.geometry()
    if moved == start:  # the platform moved it itself (startSystemMove), as a desktop does
        pytest.skip("this platform moves windows itself")
    assert (moved.x() - start.x(), moved.y() - start.y()) == (40, -30)
    assert moved.size() == start.size()
    edge = QPoint(moved.width() - 3, 20)
    QTest.mousePress(overlay, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, edge)
    QTest.mouseMove(overlay, edge + QPoint(60, 0))
    QTest.mouseRelease(
        overlay, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, edge + QPoint(60, 0)
    )
    assert overlay.width() == moved.width() + 60 and overlay.x() == moved.x()
    qtbot.waitUntil(lambda: bool(placed), timeout=2000)  # so the app saves the new place


def test_a_hand_edited_look_is_read_forgivingly(tmp_path: Path) -> None:
    settings = open_qsettings(tmp_path)
    for key, value in {
        "overlay/lines": "12",
        "overlay/font_size": "big",
        "overlay/text_colour": "#FFFF00",
        "overlay/background_colour": "purple-ish",
        "overlay/background_opacity": "-5",
        "overlay/after_silence": "explode",
        "overlay/geometry": "10,20,oops",
    }.items():
        settings.setValue(key, value)
    store = PreferencesStore(settings)
    look = store.load().overlay
    assert (look.lines, look.font_size, look.text_colour) == (5, OverlayLook().font_size, "#ffff00")
    assert look.background_colour == "#000000" and look.background_opacity == 0
    assert look.after_silence is OverlayLook().after_silence
    assert store.overlay_geometry() is None
    store.save_overlay_geometry((10, 20, 640, 90))
    assert PreferencesStore(open_qsettings(tmp_path)).overlay_geometry() == (10, 20, 640, 90)


def test_more_lines_grow_upwards(qtbot: QtBot) -> None:
    overlay = make(qtbot)
    overlay.place((100, 400, 600, 0))
    bottom = overlay.geometry().bottom()
    overlay.set_look(dataclasses.replace(overlay.look, lines=4))
    assert overlay.geometry().bottom() == bottom and overlay.y() < 400
