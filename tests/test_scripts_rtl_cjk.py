"""Right-to-left (Arabic, Hebrew) and unspaced (Japanese, Chinese) captions, with real text:
in the pane, on the overlay and in every export."""

from __future__ import annotations

import dataclasses
import json

import srt
import webvtt
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from captioner.core.captions import Committed, Utterance
from captioner.core.exports import FORMATS, render
from captioner.core.messages import Word
from captioner.ui.caption_pane import CaptionPane
from captioner.ui.overlay import CaptionOverlay, right_to_left
from captioner.ui.preferences import OverlayLook
from tests.ui_support import QT_MARKS, committed

pytestmark = QT_MARKS

HEBREW = "שלום לכולם וברוכים הבאים לפגישה"
ARABIC = "مرحبا بكم في اجتماع الفريق الأسبوعي"
JAPANESE_WORDS = ["今日", "は", "とても", "いい", "天気", "です", "ね。"]
CHINESE_WORDS = ["我们", "今天", "开会", "讨论", "预算。"]


def spoken(words: list[str], start: float, language: str, joiner: str) -> Utterance:
    timed = tuple(
        Word(w, start + 0.4 * i, start + 0.4 * i + 0.35, 0.9, w, None, language)
        for i, w in enumerate(words)
    )
    return Utterance(0, joiner.join(words), start, timed[-1].end, timed, None)


UTTERANCES = [
    spoken(HEBREW.split(), 0.0, "he", " "),
    spoken(ARABIC.split(), 4.0, "ar", " "),
    spoken(JAPANESE_WORDS, 8.0, "ja", ""),
    spoken(CHINESE_WORDS, 12.0, "zh", ""),
]


def test_every_export_keeps_the_scripts_and_never_spaces_japanese_or_chinese() -> None:
    japanese, chinese = "".join(JAPANESE_WORDS), "".join(CHINESE_WORDS)
    for fmt in FORMATS:
        text = render(fmt, UTTERANCES)
        for line in (HEBREW, ARABIC, japanese, chinese):
            if fmt in ("srt", "vtt"):  # cues may break a line in two; the words stay whole
                assert all(part in text for part in line.split()), (fmt, line)
            else:
                assert line in text, (fmt, line)
        assert "今日 は" not in text and "我们 今天" not in text, fmt
    cues = list(srt.parse(render("srt", UTTERANCES)))
    assert cues[0].content.replace("\n", " ") == HEBREW  # logical order, as Unicode stores it
    assert cues[-1].content.replace("\n", "") == "".join(CHINESE_WORDS)
    vtt = webvtt.from_buffer(__import__("io").StringIO(render("vtt", UTTERANCES)))
    assert vtt.captions[2].text.replace("\n", "") == "".join(JAPANESE_WORDS)
    document = json.loads(render("json", UTTERANCES))
    assert HEBREW in render("json", UTTERANCES)  # not \\u-escaped: readable in any editor
    assert document["utterances"][2]["text"] == "".join(JAPANESE_WORDS)


def test_the_pane_lays_out_right_to_left_paragraphs_from_the_right(qtbot: QtBot) -> None:
    pane = CaptionPane()
    qtbot.addWidget(pane)
    pane.resize(600, 300)
    pane.show()
    pane.apply([committed("Good morning everyone.", 0.0)])
    pane.apply([Committed(UTTERANCES[0]), Committed(UTTERANCES[1]), Committed(UTTERANCES[2])])
    document = pane.view.document()
    directions = {}
    block = document.begin()
    while block.isValid():
        if block.text().strip():
            directions[block.text().strip()[:6]] = block.textDirection()
        block = block.next()
    assert directions["Good m"] == Qt.LayoutDirection.LeftToRight
    assert directions[HEBREW[:6]] == Qt.LayoutDirection.RightToLeft
    assert directions[ARABIC[:6]] == Qt.LayoutDirection.RightToLeft
    assert directions["今日はとても"] == Qt.LayoutDirection.LeftToRight
    assert "今日はとてもいい天気ですね。" in pane.transcript()


def ink_columns(image: QImage) -> list[int]:
    """The x of every column with text in it (opaque, bright pixels on the dark box)."""
    return [
        x
        for x in range(image.width())
        if any(
            image.pixelColor(x, y).alpha() > 200 and image.pixelColor(x, y).value() > 200
            for y in range(0, image.height(), 2)
        )
    ]


def test_the_overlay_runs_a_right_to_left_line_from_the_right(qtbot: QtBot) -> None:
    assert right_to_left([HEBREW]) and right_to_left([ARABIC])
    assert not right_to_left(["Hello"]) and not right_to_left(["今日は"])
    assert right_to_left(["123", HEBREW])  # digits have no direction of their own
    look = dataclasses.replace(OverlayLook(), text_colour="#ffffff", background_opacity=80)
    shown = []
    for text in ("Hi all", "שלום לכולם"):
        overlay = CaptionOverlay(look)
        qtbot.addWidget(overlay)
        overlay.place(None)
        overlay.show()
        qtbot.waitExposed(overlay)
        overlay.apply([committed(text, 0.0)])
        shown.append(ink_columns(overlay.grab().toImage()))
    english, hebrew = shown
    width = overlay.width()
    assert english and hebrew
    assert min(english) < width * 0.2 and max(english) < width * 0.5  # from the left edge
    assert max(hebrew) > width * 0.8 and min(hebrew) > width * 0.5  # from the right edge
    lines = overlay.shown_lines()
    assert [text for text, _, _ in lines[-1].words] == ["שלום", "לכולם"]


def test_the_overlay_wraps_a_long_japanese_line_without_adding_spaces(qtbot: QtBot) -> None:
    sentence = "今日はとてもいい天気ですね。午後から会議室で来年度の予算について話し合います。"
    look = dataclasses.replace(OverlayLook(), lines=4, font_size=32)
    overlay = CaptionOverlay(look)
    qtbot.addWidget(overlay)
    overlay.place(None)
    overlay.resize(420, overlay.height())
    overlay.show()
    qtbot.waitExposed(overlay)
    overlay.apply([committed(sentence, 0.0)])
    lines = overlay.shown_lines()
    assert len(lines) >= 2, [line.text for line in lines]  # wrapped, not one long overflow
    shown = "".join(line.text for line in lines)  # the newest lines: the sentence's end
    assert len(shown) > 20 and sentence.endswith(shown)  # and no space was added
    assert not any(line.text.startswith(("。", "、")) for line in lines)
    image = overlay.grab().toImage()
    ink = ink_columns(image)
    assert ink and max(ink) < overlay.width() - 4  # nothing drawn past the edge
    # Latin text keeps its spaces, and a Latin word inside Japanese stays whole
    overlay.apply([committed("Zoom会議 at 3 pm", 1.0)])
    tail = " ".join(line.text for line in overlay.shown_lines()[-2:])
    assert "Zoom会議" in tail and tail.endswith("at 3 pm"), tail


def test_a_right_to_left_session_starts_its_paragraphs_at_the_right(qtbot: QtBot) -> None:
    pane = CaptionPane()
    qtbot.addWidget(pane)
    pane.resize(700, 300)
    pane.show()
    qtbot.waitExposed(pane)

    def ink() -> list[int]:
        image = pane.view.viewport().grab().toImage()
        return [
            x
            for x in range(image.width())
            if any(image.pixelColor(x, y).value() < 128 for y in range(0, 60, 2))
        ]

    pane.set_language("he")
    pane.apply([Committed(UTTERANCES[0])])
    hebrew = ink()
    assert hebrew and min(hebrew) > pane.view.viewport().width() * 0.4, hebrew[:3]
    pane.clear()
    pane.set_language("en-GB")
    pane.apply([committed("Good morning everyone.", 0.0)])
    english = ink()
    assert english and max(english) < pane.view.viewport().width() * 0.6
