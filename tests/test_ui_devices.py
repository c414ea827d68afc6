"""The device picker, the level meter and the level hints, fed plain device lists."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from captioner.audio.devices import DeviceError, InputDevice
from captioner.ui.device_picker import NO_DEVICE_MESSAGE, DevicePicker, device_key
from captioner.ui.levels import SILENCE_DBFS, LevelHint, LevelHints
from tests.ui_support import QT_MARKS, device

pytestmark = QT_MARKS

USB = device(3, "USB Microphone", hostapi="ALSA")
BUILT_IN = device(0, "Built-in Audio", hostapi="ALSA", default=True)
PULSE = device(5, "pulse", hostapi="ALSA")


@pytest.fixture
def picker(qtbot: QtBot) -> DevicePicker:
    widget = DevicePicker()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def items(picker: DevicePicker) -> list[str]:
    return [picker.combo.itemText(i) for i in range(picker.combo.count())]


def test_devices_are_listed_with_host_api_and_the_default_marked(picker: DevicePicker) -> None:
    picker.set_devices([BUILT_IN, USB, PULSE])
    assert items(picker) == [
        "Built-in Audio (ALSA)  — system default",
        "USB Microphone (ALSA)",
        "pulse (ALSA)",
    ]
    assert picker.current_device() == BUILT_IN
    assert picker.message_text() == ""


def test_the_same_list_again_leaves_the_open_list_alone(picker: DevicePicker) -> None:
    picker.set_devices([BUILT_IN, USB])
    picker.combo.setCurrentIndex(1)  # the person is looking at the second entry
    assert not picker.set_devices([BUILT_IN, USB])  # a periodic rescan finds the same
    assert picker.combo.currentIndex() == 1 and picker.combo.count() == 2


def test_no_device_says_so_clearly(picker: DevicePicker) -> None:
    picker.set_devices([])
    assert items(picker) == ["No input device"]
    assert not picker.combo.isEnabled()
    assert picker.current_device() is None
    assert picker.message_text() == NO_DEVICE_MESSAGE


def test_a_pick_is_reported_and_kept_when_the_list_changes(
    picker: DevicePicker, qtbot: QtBot
) -> None:
    picker.set_devices([BUILT_IN, USB])
    chosen: list[InputDevice] = []
    picker.device_selected.connect(chosen.append)
    picker.combo.setFocus()
    qtbot.keyClick(picker.combo, Qt.Key.Key_Down)  # the person picks the next device
    assert chosen == [USB] and picker.current_device() == USB
    # a device appears and indexes shift: the choice follows the device, not the index
    moved_usb = device(4, "USB Microphone", hostapi="ALSA")
    assert not picker.set_devices([device(1, "Webcam"), BUILT_IN, moved_usb])
    assert picker.current_device() == moved_usb
    assert picker.combo.currentText() == "USB Microphone (ALSA)"


def test_an_absent_choice_falls_back_to_the_default_and_returns(picker: DevicePicker) -> None:
    picker.set_wanted(device_key(USB))
    picker.set_devices([BUILT_IN])
    assert picker.current_device() == BUILT_IN
    assert "USB Microphone is not connected; using the system default." in picker.message_text()
    changed = picker.set_devices([BUILT_IN, USB])
    assert changed and picker.current_device() == USB
    assert picker.message_text() == ""


def test_select_by_index_or_name(picker: DevicePicker) -> None:
    picker.set_devices([BUILT_IN, USB, PULSE])
    assert picker.select_spec("5") == PULSE
    assert picker.select_spec("usb") == USB
    assert picker.current_device() == USB and picker.wanted == ("USB Microphone", "ALSA")
    with pytest.raises(DeviceError, match="No input device name contains"):
        picker.select_spec("nothing like it")


def test_a_file_replaces_the_list(picker: DevicePicker) -> None:
    picker.set_devices([BUILT_IN])
    picker.show_file("talk.wav")
    assert items(picker) == ["File: talk.wav"] and not picker.combo.isEnabled()
    assert picker.current_device() is None


def test_the_meter_and_its_hint(picker: DevicePicker) -> None:
    picker.set_devices([BUILT_IN])
    assert picker.meter.fraction() == 0.0
    picker.set_level(-30.0)
    assert picker.meter.fraction() == pytest.approx(0.5)
    picker.set_level(SILENCE_DBFS)
    assert picker.meter.fraction() == 0.0
    picker.set_level(-2.0, LevelHint.TOO_LOUD)
    assert picker.meter.fraction() > 0.9
    assert picker.message_text() == LevelHint.TOO_LOUD.value
    picker.set_level(None)  # nothing measured: no hint either
    assert picker.meter.level is None and picker.message_text() == ""


def feed(hints: LevelHints, levels: list[float], step: float = 0.1) -> LevelHint:
    hint = LevelHint.NONE
    for n, level in enumerate(levels):
        hint = hints.update(level, n * step)
    return hint


def test_speech_with_pauses_gets_no_hint() -> None:
    speech = ([-25.0] * 10 + [-62.0] * 15) * 6
    assert feed(LevelHints(), speech) is LevelHint.NONE


def test_a_clipping_input_is_too_loud_at_once() -> None:
    assert feed(LevelHints(), [-30.0, -3.0]) is LevelHint.TOO_LOUD


def test_a_faint_input_is_too_quiet_after_a_while() -> None:
    hints = LevelHints()
    assert feed(hints, [-58.0] * 30) is LevelHint.NONE  # 3 s: not judged yet
    assert feed(LevelHints(), [-58.0] * 70) is LevelHint.TOO_QUIET


def test_digital_silence_is_called_out() -> None:
    assert feed(LevelHints(), [SILENCE_DBFS] * 50) is LevelHint.ONLY_SILENCE
    hints = LevelHints()
    feed(hints, [SILENCE_DBFS] * 50)
    hints.reset()
    assert hints.update(-20.0, 100.0) is LevelHint.NONE


def test_silence_after_sound_is_a_pause_and_sound_clears_the_hint_at_once() -> None:
    # a device that sends exact zeros between phrases (a gate, a noise suppressor)
    talk = [-25.0] * 20 + [SILENCE_DBFS] * 100  # 2 s of speech, then 10 s of zeros
    assert feed(LevelHints(), talk) is LevelHint.NONE
    hints = LevelHints()
    assert feed(hints, [SILENCE_DBFS] * 50) is LevelHint.ONLY_SILENCE
    assert hints.update(-30.0, 5.1) is LevelHint.NONE  # the very first sound clears it
    assert hints.update(SILENCE_DBFS, 20.0) is LevelHint.NONE
