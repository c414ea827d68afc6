"""Take docs/screenshot.png: the real window captioning real speech on the offline engine.

Run it on an X display (a virtual one is fine):

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshot.py
    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshot.py --call

`--call` takes docs/call.png instead: both sides of a call, the microphone and virtual
speakers taking turns (the Call box is clicked before Start).

A private virtual microphone (testkit/virtual_mic.py: a PulseAudio daemon of its
own) is started, the window listens to it, espeak-ng speaks into it, and the window is
grabbed from the X server once a few paragraphs and a live line are on screen. Settings
go to a temporary folder; the user's own configuration is not touched.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.virtual_mic import VirtualMic, make_speech_wav  # noqa: E402

SPEECH = (
    "Good morning everyone, and welcome to the weekly planning meeting. "
    "First, a quick look at last week. The new captioning app shipped on Thursday, "
    "and the feedback so far has been very positive. "
    "Next, we need to agree on the budget for the third quarter. "
    "Please send me your estimates by Friday, so that I can prepare the summary."
)


CALL = (
    ("you", "Hi Sam, thanks for joining. Can you hear me all right?"),
    ("others", "Yes, loud and clear. Shall we go through the schedule first?"),
    ("you", "Good idea. The design review moved to Thursday afternoon."),
    ("others", "Thursday works for me. I will send the slides tomorrow morning."),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    parser.add_argument("--paragraphs", type=int, default=3, help="wait for this many")
    parser.add_argument("--call", action="store_true", help="both sides of a call")
    options = parser.parse_args()
    if options.call and options.out == str(ROOT / "docs" / "screenshot.png"):
        options.out = str(ROOT / "docs" / "call.png")
    if not os.environ.get("DISPLAY"):
        print("screenshot: needs an X display; run it under xvfb-run -a", file=sys.stderr)
        return 2

    # The QApplication first: if Qt cannot open the display it aborts the process, and
    # then better before the microphone's daemon exists than after.
    from PySide6.QtWidgets import QApplication

    qt_app = QApplication(["captioner"])
    work = Path(tempfile.mkdtemp(prefix="captioner-shot-"))
    os.environ["CAPTIONER_CONFIG_DIR"] = str(work / "config")
    os.environ.pop("DEEPGRAM_API_KEY", None)
    mic = VirtualMic(work / "mic", speakers=options.call)
    mic.start()
    mic.apply_to_environ()  # before sounddevice is imported: PortAudio must see the mic
    speech = make_speech_wav(work / "speech.wav", SPEECH)
    turns = [
        (who, make_speech_wav(work / f"turn{n}.wav", text, voice="en" if who == "you" else "en+f3"))
        for n, (who, text) in enumerate(CALL)
    ]

    from captioner.app import AppOptions, add_app_arguments, run_app
    from captioner.app.root import CaptionerApp

    app_parser = argparse.ArgumentParser()
    add_app_arguments(app_parser)
    start = [] if options.call else ["--start"]
    args = AppOptions.from_args(app_parser.parse_args([*start, "--device", "default"]))
    result: dict[str, object] = {}

    def on_ready(app: CaptionerApp) -> None:
        app.window.resize(1040, 620)
        asyncio.get_running_loop().create_task(scenario(app))

    async def scenario(app: CaptionerApp) -> None:
        from captioner.session import State

        try:
            status, pane = app.window.status, app.window.pane
            if options.call:
                await call_scenario(app)
                return
            deadline = time.monotonic() + 90
            while status.state is not State.LIVE and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            player = mic.play(speech, wait=False)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                _final, interim = pane.live_text()
                if pane.paragraph_count >= options.paragraphs and interim:
                    break
            await asyncio.sleep(0.05)
            grab(app, Path(options.out))
            result["transcript"] = pane.transcript()
            mic.stop_playing(player)
        finally:
            app.request_shutdown()

    async def call_scenario(app: CaptionerApp) -> None:
        from captioner.session import State
        from testkit.virtual_mic import SPEAKERS

        window, pane = app.window, app.window.pane
        await asyncio.sleep(1.0)  # the first device scan
        window.picker.call_box.click()
        app.captioning.start()
        deadline = time.monotonic() + 90
        while window.status.state is not State.LIVE and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        for n, (who, wav) in enumerate(turns):
            sink = SPEAKERS if who == "others" else None
            player = mic.play(wav, wait=False, **({"sink": sink} if sink else {}))
            if n == len(turns) - 1:
                break  # the last turn is caught while it is spoken: a live line, a lit meter
            while player.poll() is None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.8)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            _final, interim = pane.live_text()
            lit = (window.call_row.meter.level or -120) > -40
            if pane.paragraph_count >= len(turns) - 1 and len(interim.split()) >= 4 and lit:
                break
        grab(app, Path(options.out))
        mic.stop_playing(player)
        result["transcript"] = pane.transcript()

    try:
        code = run_app(args, on_ready=on_ready)
    finally:
        mic.stop()
    print(result.get("transcript", ""))
    print(f"screenshot: wrote {options.out}", file=sys.stderr)
    del qt_app
    return code


def grab(app: object, out: Path) -> None:
    """The window's pixels as the X server shows them."""
    from PySide6.QtGui import QGuiApplication

    from captioner.app.root import CaptionerApp

    assert isinstance(app, CaptionerApp)
    window = app.window
    screen = QGuiApplication.primaryScreen()
    frame = window.frameGeometry()
    pixmap = screen.grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
    out.parent.mkdir(parents=True, exist_ok=True)
    if not pixmap.save(str(out)):
        raise OSError(f"could not write {out}")


if __name__ == "__main__":
    sys.exit(main())
