"""End to end: the real window, on a qasync loop, captioning spoken words from a WAV file
(`--file`) through the embedded offline engine (a child process running Whisper)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from keyring.backends import fail
from PySide6.QtWidgets import QApplication

from captioner.app.root import CaptionerApp
from captioner.session import State
from testkit.virtual_mic import VirtualMicError, make_speech_wav
from tests.ui_support import QT_MARKS, app_args, run_qasync, wait_until

pytestmark = [*QT_MARKS, pytest.mark.e2e]

SPOKEN = "Captions appear while you speak. The quick brown fox jumps over the lazy dog."
EXPECTED = ("captions", "speak", "quick", "brown", "fox", "lazy", "dog")


@pytest.fixture
def spoken_wav(tmp_path: Path) -> Path:
    try:
        return make_speech_wav(tmp_path / "spoken.wav", SPOKEN)
    except VirtualMicError as exc:
        pytest.fail(str(exc), pytrace=False)


def words_of(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def test_the_window_captions_speech_through_the_offline_engine(
    qapp: QApplication, spoken_wav: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPTIONER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    seen: dict[str, object] = {}

    async def main() -> None:
        app = CaptionerApp(
            app_args("--file", str(spoken_wav), "--start"), keyring_backend=fail.Keyring()
        )
        restore = app.install_error_hooks()
        status = app.window.status
        pane = app.window.pane
        try:
            await app.launch()
            assert status.engine_label.text() == "Offline engine"
            await wait_until(lambda: status.state is State.LIVE, 60, "the engine to be live")
            seen["live"] = status.state_label.text()
            seen["source"] = status.source_label.text()
            await wait_until(
                lambda: len(words_of(pane.transcript()) & set(EXPECTED)) >= 2,
                20,
                "spoken words in the pane",
            )
            seen["early"] = pane.transcript()
            await wait_until(
                lambda: app.captioning.last_end is not None, 20, "the file to be captioned"
            )
            seen["transcript"] = pane.transcript()
            seen["final_state"] = status.state_label.text()
            assert app.engine.running  # kept for the next Start
            app.window.close()
            await asyncio.wait_for(asyncio.shield(app.finished), 15)
            seen["engine_after"] = app.engine.running
            assert app.errors == []
        finally:
            if not app.finished.done():
                app.request_shutdown()
                await asyncio.wait_for(asyncio.shield(app.finished), 15)
            restore()

    run_qasync(qapp, main, timeout=90)
    assert seen["live"] == "● Live"
    assert seen["source"] == "Listening · spoken.wav"
    heard = words_of(str(seen["transcript"]))
    assert len(heard & set(EXPECTED)) >= 5, seen["transcript"]
    assert seen["final_state"] == "● Stopped"
    assert seen["engine_after"] is False  # the shutdown stopped the engine's process
