"""Take docs/overlay.png and docs/overlay-speakers.png: the caption overlay on a real desktop.

Run it on a virtual X display:

    xvfb-run -a -s "-screen 0 1600x900x24" .venv/bin/python scripts/overlay_screenshot.py

The desktop is Debian's own wallpaper (package desktop-base) set on the root window with
xwallpaper, under the xcompmgr compositing manager, so the overlay's translucency is
composited by the X server as on a desktop (sudo apt-get install desktop-base xwallpaper
xcompmgr). A private PulseAudio daemon (testkit/virtual_mic.py) gets a "Speakers"
output; speech played there is captioned by the real window from that output's monitor
(system audio) through the offline engine, and the screen is grabbed from the X server.

The second picture shows diarization: the offline engine labels no speakers, so it feeds
the window the caption events a diarized Deepgram session delivers (two speakers and a
connection-lost gap marker), through the same bridge a session uses.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.virtual_mic import VirtualMic, make_speech_wav  # noqa: E402

WALLPAPERS = Path("/usr/share/desktop-base")
SPEECH = (
    "Good morning everyone, and welcome to the weekly planning meeting. "
    "First, a quick look at last week. The new captioning app shipped on Thursday, "
    "and the feedback so far has been very positive. "
    "Next, we need to agree on the budget for the third quarter."
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", default=str(ROOT / "docs"))
    options = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        print("overlay_screenshot: needs an X display; run it under xvfb-run -a", file=sys.stderr)
        return 2
    missing = [t for t in ("xwallpaper", "xcompmgr") if shutil.which(t) is None]
    if missing or not WALLPAPERS.is_dir():
        print(
            "overlay_screenshot: sudo apt-get install desktop-base xwallpaper xcompmgr",
            file=sys.stderr,
        )
        return 2

    from PySide6.QtWidgets import QApplication

    qt_app = QApplication(["captioner"])
    work = Path(tempfile.mkdtemp(prefix="captioner-overlay-shot-"))
    set_wallpaper("emerald", work)
    compositor = subprocess.Popen(["xcompmgr", "-c"], stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # Qt picks translucent visuals only once a compositor is running
    os.environ["CAPTIONER_CONFIG_DIR"] = str(work / "config")
    os.environ["CAPTIONER_DATA_DIR"] = str(work / "data")
    os.environ.pop("DEEPGRAM_API_KEY", None)
    mic = VirtualMic(work / "mic")
    mic.start()
    subprocess.run(
        [
            *("pactl", "load-module", "module-null-sink", "sink_name=speakers"),
            "sink_properties=device.description=Speakers",
        ],
        env=mic.child_env(),
        check=True,
        capture_output=True,
    )
    mic.apply_to_environ()  # before sounddevice is imported: PortAudio must see the server
    speech = make_speech_wav(work / "speech.wav", SPEECH)

    from captioner.app import AppOptions, add_app_arguments, run_app
    from captioner.app.root import CaptionerApp
    from captioner.ui.preferences import PreferencesStore, open_qsettings

    store = PreferencesStore(open_qsettings(work / "config"))
    prefs = store.load()
    store.save(dataclasses.replace(prefs, overlay_visible=True))
    app_parser = argparse.ArgumentParser()
    add_app_arguments(app_parser)
    args = AppOptions.from_args(
        app_parser.parse_args(["--start", "--device", "Monitor of Speakers"])
    )
    out = Path(options.out)
    result: dict[str, object] = {}

    def on_ready(app: CaptionerApp) -> None:
        app.window.setGeometry(60, 50, 980, 560)
        asyncio.get_running_loop().create_task(scenario(app))

    async def scenario(app: CaptionerApp) -> None:
        try:
            await live_speech(app, mic, speech, out / "overlay.png", result)
            await diarized(app, work, out / "overlay-speakers.png")
        finally:
            app.request_shutdown()

    try:
        code = run_app(args, on_ready=on_ready)
    finally:
        mic.stop()
        compositor.terminate()
        compositor.wait()
    print(result.get("transcript", ""))
    del qt_app
    return code


def set_wallpaper(theme: str, work: Path) -> None:
    """Render one of Debian's wallpapers at the screen's size and put it on the root window."""
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    screen = QGuiApplication.primaryScreen().geometry()
    svg = WALLPAPERS / f"{theme}-theme" / "wallpaper" / "contents" / "images" / "1920x1080.svg"
    image = QImage(screen.width(), screen.height(), QImage.Format.Format_RGB32)
    painter = QPainter(image)
    QSvgRenderer(str(svg)).render(painter)
    painter.end()
    path = work / f"{theme}.png"
    image.save(str(path))
    subprocess.run(["xwallpaper", "--zoom", str(path)], check=True)


async def wait_for(predicate: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"overlay_screenshot: no {what} within {within:g} s")
        await asyncio.sleep(0.05)


async def live_speech(
    app: object, mic: VirtualMic, speech: Path, out: Path, result: dict[str, object]
) -> None:
    """Real speech on the speakers, captioned from their monitor by the offline engine."""
    from captioner.app.root import CaptionerApp
    from captioner.session import State

    assert isinstance(app, CaptionerApp)
    status, pane, overlay = app.window.status, app.window.pane, app.overlay
    await wait_for(lambda: status.state is State.LIVE, 120, "live engine")
    player = subprocess.Popen(  # noqa: ASYNC220 (paplay runs on its own; nothing waits here)
        ["paplay", "--device=speakers", str(speech)],
        env=mic.child_env(),
        stderr=subprocess.DEVNULL,
    )
    await wait_for(
        lambda: (
            pane.paragraph_count >= 2
            and len(overlay.shown_lines()) == 2
            and "interim" in overlay.shown_lines()[-1].kinds
        ),
        90,
        "two paragraphs and an interim on the overlay",
    )
    await asyncio.sleep(0.1)
    grab(out)
    result["transcript"] = pane.transcript()
    player.kill()
    player.wait()
    app.captioning.stop()
    await wait_for(lambda: app.captioning.session is None, 15, "the session to stop")


async def diarized(app: object, work: Path, out: Path) -> None:
    """Two speakers and a gap, as a diarized session delivers them; an outlined overlay."""
    from captioner.app.root import CaptionerApp
    from captioner.core.captions import Committed, LiveChanged, Utterance, format_gap
    from captioner.core.messages import Word
    from captioner.ui.preferences import Theme

    assert isinstance(app, CaptionerApp)
    set_wallpaper("softwaves", work)
    window = app.window
    window.clear_action.trigger()
    app.set_theme(Theme.DARK)
    if not window.timestamps_action.isChecked():
        window.timestamps_action.trigger()
    look = dataclasses.replace(
        app.overlay.look,
        lines=4,
        text_colour="#ffff00",
        background_opacity=0,
        font_size=30,
    )
    app.overlay.set_look(look)

    def said(text: str, start: float, speaker: int) -> Utterance:
        words = tuple(
            Word(w.lower().strip(".,?!"), start + i * 0.4, start + i * 0.4 + 0.3, 0.93, w, speaker)
            for i, w in enumerate(text.split())
        )
        return Utterance(0, text, words[0].start, words[-1].end, words, speaker)

    lines = [
        said("Welcome back. Let's look at the third quarter budget.", 61.2, 0),
        said("Sure. Marketing asked for twelve percent more.", 66.0, 1),
        said("For what, exactly?", 70.4, 0),
        Utterance(0, format_gap(72.0, 84.0), 72.0, 84.0, (), None, gap=True),
        said("Twelve percent, mostly for the autumn campaign.", 84.3, 1),
    ]
    for line in lines:
        app.bridge.captions_changed([Committed(line)])
    app.bridge.captions_changed([LiveChanged(0, "", "That sounds reasonable if")])
    await asyncio.sleep(0.5)
    grab(out)


def grab(out: Path) -> None:
    """The whole screen as the X server composites it."""
    from PySide6.QtGui import QGuiApplication

    screen = QGuiApplication.primaryScreen()
    pixmap = screen.grabWindow(0)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not pixmap.save(str(out)):
        raise OSError(f"could not write {out}")
    print(f"overlay_screenshot: wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
