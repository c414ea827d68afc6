"""Both sides of a call in the window, end to end: the Call box clicked, a virtual microphone
and virtual speakers (two PulseAudio sources), the embedded Whisper engine, the pane, the two
level meters, the journal and an export."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from captioner.app.root import CaptionerApp
from captioner.session import State
from captioner.ui.run_state import RunState
from testkit.virtual_mic import SPEAKERS, VirtualMic, make_speech_wav
from tests.test_app import run_window
from tests.test_call_e2e import MINE, THEIRS, close_to
from tests.test_cli import words_of
from tests.ui_support import QT_MARKS, app_args, wait_until

pytestmark = [*QT_MARKS, pytest.mark.e2e]


def side(transcript: str, label: str) -> str:
    lines = [p for p in transcript.split("\n") if p.startswith(f"{label}: ")]
    return " ".join(words_of([p.split(": ", 1)[1] for p in lines]))


def test_the_window_captions_both_sides_of_a_call_each_under_its_label(
    qapp: QApplication,
    call_virtual_mic: VirtualMic,
    config_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mic = call_virtual_mic
    for name, value in mic.env.items():
        monkeypatch.setenv(name, value)  # the rescan at launch re-reads PortAudio's devices
    mine = make_speech_wav(tmp_path / "mine.wav", MINE)
    theirs = make_speech_wav(tmp_path / "theirs.wav", THEIRS)
    exported = tmp_path / "call.json"
    seen: dict[str, object] = {}

    async def body(app: CaptionerApp) -> None:
        window, pane = app.window, app.window.pane
        assert window.call_row.isHidden()
        window.picker.call_box.click()  # "Call": the other side's row appears
        assert not window.call_row.isHidden() and app.store.current.call
        assert window.call_row.combo.currentText().startswith("What this computer plays")
        app.captioning.start()
        await wait_until(lambda: window.status.state is State.LIVE, 60, "live")
        levels: list[tuple[float | None, float | None]] = []

        async def watch_levels() -> None:
            while True:
                levels.append((window.picker.meter.level, window.call_row.meter.level))
                await asyncio.sleep(0.1)

        watcher = asyncio.ensure_future(watch_levels())
        players = [
            await asyncio.to_thread(mic.play, mine, wait=False),
            await asyncio.to_thread(mic.play, theirs, wait=False, sink=SPEAKERS),
        ]
        for player in players:
            await asyncio.to_thread(mic.wait_played, player)

        def committed(channel: int) -> str:
            lines = [u.text for u in app.transcript.utterances if u.channel == channel]
            return " ".join(words_of(lines))

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 45  # the engine decodes both sides on a busy machine
        while not (close_to(MINE, committed(0)) and close_to(THEIRS, committed(1))):
            assert loop.time() < deadline, f"both sides' lines finished: {pane.transcript()!r}"
            await asyncio.sleep(0.1)
        assert close_to(MINE, side(pane.transcript(), "You"))
        assert close_to(THEIRS, side(pane.transcript(), "Others"))
        watcher.cancel()
        seen["transcript"] = pane.transcript()
        seen["levels"] = levels
        assert await app.export.export_to(exported, "json")
        app.captioning.stop()
        await wait_until(lambda: app.captioning.run_state is RunState.IDLE, 10, "stopped")
        assert app.errors == []

    run_window(qapp, app_args("--device", "pulse"), body, timeout=150)
    transcript = str(seen["transcript"])
    assert "friday" not in side(transcript, "You") and "river" not in side(transcript, "Others")
    loud = [(a, b) for a, b in seen["levels"] if a is not None and b is not None]  # type: ignore[union-attr]
    assert max(a for a, _ in loud) > -40 and max(b for _, b in loud) > -40  # both meters moved
    document = json.loads(exported.read_text())
    assert document["channel_names"] == ["You", "Others"]
    assert {u["speaker_label"] for u in document["utterances"]} == {"You", "Others"}
