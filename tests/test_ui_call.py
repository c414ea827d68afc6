"""A call's two sides in the pane, on the overlay, for screen readers, and in the window's
controls (the Call box, the other side's row, the names in Settings)."""

from __future__ import annotations

import dataclasses

import pytest
from pytestqt.qtbot import QtBot

from captioner.audio.devices import InputDevice
from captioner.core.captions import Committed, LiveChanged, Utterance
from captioner.core.voices import Voices
from captioner.ui.announcer import spoken_text
from captioner.ui.caption_pane import CaptionPane
from captioner.ui.device_picker import SYSTEM_AUDIO, CallRow, DevicePicker
from captioner.ui.preferences import Preferences
from tests.test_ui_overlay import make, near, pixels
from tests.ui_support import QT_MARKS

pytestmark = QT_MARKS

CALL = Voices(("You", "Others"))


def said(channel: int, text: str, start: float, speaker: int | None = None) -> Committed:
    return Committed(Utterance(channel, text, start, start + 1.0, (), speaker))


def test_the_pane_labels_each_paragraph_with_its_side_in_its_colour(qtbot: QtBot) -> None:
    pane = CaptionPane()
    qtbot.addWidget(pane)
    pane.set_voices(CALL)
    pane.apply([said(0, "Can you hear me?", 0.0), said(1, "Yes, loud and clear.", 1.5)])
    pane.apply([LiveChanged(1, "", "Shall we"), LiveChanged(0, "", "Great")])
    paragraphs = pane.transcript().split("\n\n")
    assert paragraphs[:2] == ["You: Can you hear me?", "Others: Yes, loud and clear."]
    assert paragraphs[2].split("\n") == ["You: Great", "Others: Shall we"]  # live, by side
    document = pane.view.document()
    you = document.firstBlock().begin().fragment().charFormat().foreground().color()
    others = document.findBlockByNumber(2).begin().fragment().charFormat().foreground().color()
    assert you != others
    pane.set_voices(Voices())  # one input again: the same lines, unlabelled
    assert pane.transcript().split("\n\n")[:2] == ["Can you hear me?", "Yes, loud and clear."]


def test_the_overlay_labels_each_side_once_per_turn(qtbot: QtBot) -> None:
    overlay = make(qtbot, lines=4, font_size=18)
    overlay.set_voices(CALL)
    overlay.apply(
        [
            said(0, "Can you hear me?", 0.0),
            said(1, "Yes.", 1.5),
            said(1, "Loud and clear.", 2.0),
        ]
    )
    texts = [line.text for line in overlay.shown_lines()]
    assert texts == ["You: Can you hear me?", "Others: Yes. Loud and clear."]
    seen = pixels(overlay.grab().toImage(), 1)
    assert any(near(p, "#ff8a8a") for p in seen), "the other side's colour"


def test_screen_readers_hear_the_side_too() -> None:
    line = Utterance(1, "Yes.", 0.0, 1.0, (), 1)
    assert spoken_text(line, Voices(("Ana", "Support"))) == "Support 2: Yes."
    assert spoken_text(line) == "Speaker 2: Yes."


def device(index: int, name: str, kind: str = "input") -> InputDevice:
    return InputDevice(index, name, "ALSA", 2, 48000.0, index == 0, kind)


def test_the_call_box_and_the_other_sides_row(qtbot: QtBot) -> None:
    picker, row = DevicePicker(), CallRow()
    qtbot.addWidget(picker)
    qtbot.addWidget(row)
    toggled: list[bool] = []
    picker.call_toggled.connect(toggled.append)
    picker.call_box.click()
    assert toggled == [True]
    picker.set_call(False)  # shown from settings: nothing is asked for
    assert toggled == [True] and not picker.call_box.isChecked()
    devices = [device(0, "Mic"), device(1, "Monitor of Speakers", "monitor")]
    row.set_devices(devices)
    assert row.current() == SYSTEM_AUDIO
    assert row.combo.itemText(0) == "What this computer plays (system audio)"
    chosen: list[object] = []
    row.other_selected.connect(chosen.append)
    row.combo.activated.emit(2)
    assert chosen == [devices[1]] and row.current() == devices[1]
    row.set_devices(devices[:1])  # that input went away: the computer's sound meanwhile
    assert row.current() == SYSTEM_AUDIO


@pytest.mark.parametrize(
    ("you", "others", "expected"),
    [("Ana", "Support", ("Ana", "Support")), ("", "\x1b[2J", ("You", "[2J"))],
)
def test_call_settings_make_a_two_channel_multichannel_stream(
    you: str, others: str, expected: tuple[str, str]
) -> None:
    prefs = dataclasses.replace(Preferences(), call=True, call_you=you, call_others=others)
    settings = prefs.stream_settings(url="ws://127.0.0.1:1/v1/listen", api_key=None)
    assert (settings.channels, settings.multichannel) == (2, True)
    assert prefs.call_names == expected
    one = Preferences().stream_settings(url="ws://127.0.0.1:1/v1/listen", api_key=None)
    assert (one.channels, one.multichannel) == (1, False)
