"""The window's overlay, exports, speakers, journal and restore, accessibility and themes.

The real app on a qasync loop; captions arrive through the bridge exactly as a session
delivers them (`SessionObserver.captions_changed`), so no network or microphone is needed.
A crash is a real `kill -9` of a child process running the window.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import srt
import webvtt
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog

from captioner import journal
from captioner.app.root import CaptionerApp
from captioner.core.captions import CaptionEvent, Committed, LiveChanged, Utterance, format_gap
from captioner.core.exports import SPEAKER_COLOURS
from captioner.core.messages import Word
from captioner.ui.export_dialog import export_target, filter_for
from captioner.ui.help_dialog import menu_actions, shortcut_text
from captioner.ui.preferences import AfterSilence, Theme
from captioner.ui.theme import contrast_ratio, palette_for
from tests.test_app import run_window
from tests.ui_support import QT_MARKS, app_args, committed, wait_until

pytestmark = QT_MARKS

ROOT = Path(__file__).resolve().parents[1]
TAG = re.compile(r"</?font[^>]*>")
COLOUR = re.compile(r'<font color="(#[0-9a-f]{6})">')


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A settings folder and a data folder (journals) of the test's own."""
    found = {"config": tmp_path / "config", "data": tmp_path / "data"}
    monkeypatch.setenv("CAPTIONER_CONFIG_DIR", str(found["config"]))
    monkeypatch.setenv("CAPTIONER_DATA_DIR", str(found["data"]))
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    return found


@pytest.fixture
def light_afterwards(qapp: QApplication) -> Iterator[None]:
    yield
    qapp.setPalette(palette_for(Theme.LIGHT))
    qapp.setStyleSheet("")


def said(text: str, start: float, speaker: int) -> Utterance:
    words = tuple(
        Word(
            word=w.lower().strip(".,?!"),
            start=start + i * 0.4,
            end=start + i * 0.4 + 0.3,
            confidence=0.9,
            punctuated_word=w,
            speaker=speaker,
        )
        for i, w in enumerate(text.split())
    )
    return Utterance(0, text, words[0].start, words[-1].end, words, speaker)


def diarized_meeting() -> list[list[CaptionEvent]]:
    """What a diarized session delivers: interims, two speakers, an outage, more speech."""
    gap = Utterance(0, format_gap(6.0, 14.0), 6.0, 14.0, (), None, gap=True)
    return [
        [LiveChanged(0, "", "Good morning")],
        [Committed(said("Good morning, everyone. The Q3 numbers first.", 0.5, 0))],
        [LiveChanged(0, "", "")],
        [Committed(said("Revenue grew by 12% in Europe.", 3.5, 1))],
        [Committed(gap)],
        [Committed(said("Thanks, Ana. Next item.", 14.5, 0))],
    ]


def feed(app: CaptionerApp, batches: list[list[CaptionEvent]]) -> None:
    for batch in batches:
        app.bridge.captions_changed(batch)


# -- speakers, gaps, exports -------------------------------------------------------------


def test_file_export_of_two_speakers_and_a_gap_in_every_format(
    qapp: QApplication, dirs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()

    async def body(app: CaptionerApp) -> None:
        assert app.export.open() is None  # nothing yet: said, no empty file
        assert "Nothing to export" in app.window.status.currentMessage()
        feed(app, diarized_meeting())
        pane = app.window.pane
        assert pane.transcript().split("\n\n") == [
            "Speaker 1: Good morning, everyone. The Q3 numbers first.",
            "Speaker 2: Revenue grew by 12% in Europe.",
            "[connection lost 0:06-0:14]",
            "Speaker 1: Thanks, Ana. Next item.",
        ]
        # File > Export: the dialog (opened with open(), answered by a signal)
        app.window.export_action.trigger()
        dialog = app.window.findChild(QFileDialog, "exportDialog")
        assert dialog is not None and dialog.isVisible()
        dialog.selectNameFilter(filter_for("srt"))
        dialog.selectFile(str(out / "meeting"))
        dialog.accept()
        await wait_until(lambda: (out / "meeting.srt").exists(), 5, "meeting.srt")
        for fmt, name in (
            ("vtt", "meeting.vtt"),
            ("json", "meeting.json"),
            ("txt", "meeting.txt"),
            ("txt-timestamps", "stamped.txt"),
        ):
            assert await app.export.export_to(out / name, fmt)
        assert "Exported 4 lines" in app.window.status.currentMessage()
        assert not await app.export.export_to(out / "missing" / "x.srt", "srt")
        assert "Could not export" in app.window.banner.message()

    run_window(qapp, app_args(), body, device_lister=list)

    subs = list(srt.parse((out / "meeting.srt").read_text()))
    text = [TAG.sub("", s.content).replace("\n", " ") for s in subs]
    # a colour per speaker, the same in every cue of theirs; none on the gap marker
    colours = [set(COLOUR.findall(s.content)) for s in subs]
    assert colours[0] == {SPEAKER_COLOURS[0]} and colours[-1] == {SPEAKER_COLOURS[0]}
    assert {SPEAKER_COLOURS[1]} in colours
    assert colours[text.index("[connection lost 0:06-0:14]")] == set()
    assert text[0].startswith("Speaker 1: Good morning, everyone.")
    assert any(t.startswith("Speaker 2: Revenue grew by 12% in Europe.") for t in text)
    assert "[connection lost 0:06-0:14]" in text
    gap_cue = subs[text.index("[connection lost 0:06-0:14]")]
    assert (gap_cue.start.total_seconds(), gap_cue.end.total_seconds()) == (6.0, 14.0)
    assert all(a.end <= b.start for a, b in itertools.pairwise(subs))

    captions = webvtt.read(str(out / "meeting.vtt"))
    assert [c.text.replace("\n", " ") for c in captions] == text
    assert captions.styles[0].text.splitlines() == [
        f"::cue(.speaker1) {{ color: {SPEAKER_COLOURS[0]}; }}",
        f"::cue(.speaker2) {{ color: {SPEAKER_COLOURS[1]}; }}",
    ]
    assert captions[0].raw_text.startswith("<c.speaker1>Speaker 1: Good morning")

    document = json.loads((out / "meeting.json").read_text())
    records = document["utterances"]
    assert [r["speaker"] for r in records] == [0, 1, None, 0]
    assert records[1]["speaker_label"] == "Speaker 2"
    assert records[2]["gap"] is True and records[2]["words"] == []
    assert records[1]["words"][3] == {
        "word": "12%",
        "punctuated_word": "12%",
        "start": 4.7,
        "end": 5.0,
        "confidence": 0.9,
        "speaker": 1,
    }
    assert (out / "meeting.txt").read_text().splitlines() == [
        "Speaker 1: Good morning, everyone. The Q3 numbers first.",
        "Speaker 2: Revenue grew by 12% in Europe.",
        "[connection lost 0:06-0:14]",
        "Speaker 1: Thanks, Ana. Next item.",
    ]
    assert (out / "stamped.txt").read_text().splitlines()[2] == (
        "[0:00:06] [connection lost 0:06-0:14]"
    )


def test_export_names_pick_the_format() -> None:
    assert export_target("/x/notes", filter_for("vtt")) == ("vtt", Path("/x/notes.vtt"))
    assert export_target("/x/notes.srt", filter_for("json")) == ("srt", Path("/x/notes.srt"))
    assert export_target("/x/a.txt", filter_for("txt-timestamps")) == (
        "txt-timestamps",
        Path("/x/a.txt"),
    )
    assert export_target("/x/a.txt", filter_for("srt")) == ("txt", Path("/x/a.txt"))
    assert export_target("/x/a.b", filter_for("json")) == ("json", Path("/x/a.b.json"))


# -- the journal, and restoring after a crash ----------------------------------------------

CRASHING_WINDOW = textwrap.dedent(
    """
    import asyncio, sys
    from PySide6.QtWidgets import QApplication
    import qasync
    from keyring.backends import fail

    qt = QApplication([])
    loop = qasync.QEventLoop(qt)
    asyncio.set_event_loop(loop)

    async def main():
        from captioner.app.root import CaptionerApp
        from tests.ui_support import app_args, committed
        app = CaptionerApp(app_args(), keyring_backend=fail.Keyring(), device_lister=list)
        await app.launch()
        app.bridge.captions_changed([committed("First line.", 1.0)])
        app.bridge.captions_changed([committed("Second line.", 3.0, speaker=1)])
        print("SHOWN", app.window.pane.paragraph_count, flush=True)
        await asyncio.sleep(120)

    loop.run_until_complete(main())
    """
)


def test_a_crash_loses_nothing_shown_and_the_next_launch_restores_it(
    qapp: QApplication, dirs: dict[str, Path]
) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WINDOW],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "SHOWN 2", child.stderr
    finally:
        child.send_signal(signal.SIGKILL)  # a crash: no shutdown, no finished journal
        child.communicate(timeout=10)
    folder = dirs["data"] / "journal"
    (lost,) = folder.glob("*.live.jsonl")
    assert [u.text for u in journal.load(lost)] == ["First line.", "Second line."]

    async def restore(app: CaptionerApp) -> None:
        bar = app.window.restore_bar
        await wait_until(bar.isVisible, 5, "the offer to restore")
        assert "ended without finishing" in bar.message() and "2 lines" in bar.message()
        assert app.window.isEnabled() and not app.window.isModal()  # nothing blocks the window
        bar.restore_button.click()
        pane = app.window.pane
        await wait_until(lambda: pane.paragraph_count == 2, 5, "the restored lines")
        assert pane.transcript() == "First line.\n\nSpeaker 2: Second line."
        assert not bar.isVisible()
        app.bridge.captions_changed([committed("After the restart.", 0.5)])
        assert app.transcript.journal is not None
        kept = journal.load(app.transcript.journal.path)  # on disk before it was shown
        assert [u.text for u in kept] == ["First line.", "Second line.", "After the restart."]
        assert kept[2].start > kept[1].end  # the new session goes after the restored lines

    run_window(qapp, app_args(), restore, device_lister=list)
    assert not lost.exists() and lost.with_name(lost.name.replace(".live", ".restored")).exists()
    assert not list(folder.glob("*.live.jsonl"))  # this window finished its own journal

    async def nothing_to_offer(app: CaptionerApp) -> None:
        await asyncio.sleep(0.3)
        assert not app.window.restore_bar.isVisible() and app.restore.unfinished == []

    run_window(qapp, app_args(), nothing_to_offer, device_lister=list)


def test_an_unfinished_journal_can_be_deleted_instead(
    qapp: QApplication, dirs: dict[str, Path]
) -> None:
    writer = journal.JournalWriter.create(engine="Offline engine", source="Microphone · USB")
    writer.append(committed("Lost words.").utterance)
    writer.close()  # never finished: what a crash leaves

    async def body(app: CaptionerApp) -> None:
        bar = app.window.restore_bar
        await wait_until(bar.isVisible, 5, "the offer")
        assert "Microphone · USB" in bar.message() and "1 line" in bar.message()
        bar.delete_button.click()
        await wait_until(lambda: not writer.path.exists(), 5, "the journal deleted")
        assert app.window.pane.paragraph_count == 0

    run_window(qapp, app_args(), body, device_lister=list)


# -- the overlay -------------------------------------------------------------------------------


def test_the_overlay_keeps_its_place_and_look_across_a_restart(
    qapp: QApplication, dirs: dict[str, Path]
) -> None:
    kept: dict[str, object] = {}

    async def first(app: CaptionerApp) -> None:
        window, overlay = app.window, app.overlay
        assert not overlay.isVisible() and overlay.look.lines == 2
        window.overlay_action.trigger()
        assert overlay.isVisible()
        dialog = app.overlays.open_settings()
        assert dialog.isVisible()
        dialog.lines_spin.setValue(3)
        assert overlay.look.lines == 3  # previewed at once
        dialog.reject()  # Cancel takes the preview back
        assert overlay.look.lines == 2
        dialog = app.overlays.open_settings()
        dialog.lines_spin.setValue(4)
        dialog.size_spin.setValue(24)
        dialog.text_colour.set_colour("#ffff00")
        dialog.background_colour.set_colour("#001040")
        dialog.background_opacity.setValue(0)
        dialog.silence_combo.setCurrentIndex(list(AfterSilence).index(AfterSilence.CLEAR))
        dialog.silence_spin.setValue(9)
        dialog.buttons.accepted.emit()
        await wait_until(lambda: not dialog.isVisible(), 2, "the dialog to close")
        overlay.setGeometry(37, 52, 555, overlay.height())
        window.click_through_action.trigger()
        assert overlay.click_through
        window.timestamps_action.trigger()
        feed(app, diarized_meeting())
        shown = [line.text for line in overlay.shown_lines()]
        assert "[connection lost 0:06-0:14]" in shown and len(shown) == 4
        assert " ".join(shown).endswith("Speaker 1: Thanks, Ana. Next item.")
        kept["look"] = overlay.look
        kept["place"] = overlay.placement()

    run_window(qapp, app_args(), first, device_lister=list)
    look = kept["look"]
    assert look.lines == 4 and look.font_size == 24 and look.text_colour == "#ffff00"  # type: ignore[attr-defined]
    assert look.background_opacity == 0 and look.outlined and look.click_through  # type: ignore[attr-defined]

    async def second(app: CaptionerApp) -> None:
        assert app.overlay.isVisible()
        assert app.overlay.look == kept["look"]
        assert app.overlay.placement() == kept["place"]
        assert app.window.click_through_action.isChecked()
        assert app.window.timestamps_action.isChecked() and app.window.pane.timestamps
        app.window.overlay_action.trigger()  # Ctrl+Shift+O's action: hidden, and remembered
        assert not app.overlay.isVisible()

    run_window(qapp, app_args(), second, device_lister=list)

    async def third(app: CaptionerApp) -> None:
        assert not app.overlay.isVisible()

    run_window(qapp, app_args(), third, device_lister=list)


# -- accessibility --------------------------------------------------------------------------


def test_every_action_has_a_shortcut_and_help_lists_them(
    qapp: QApplication, dirs: dict[str, Path]
) -> None:
    async def body(app: CaptionerApp) -> None:
        window = app.window
        actions = [
            (menu, a)
            for menu, a in menu_actions(window.menuBar())
            if a not in window.theme_group.actions()
        ]
        assert len(actions) >= 20
        missing = [a.text() for _m, a in actions if not a.shortcuts()]
        assert missing == []
        keys = [s.toString() for _m, a in actions for s in a.shortcuts()]
        assert len(keys) == len(set(keys)), "two actions share a shortcut"
        window.help_action.trigger()
        dialog = window.show_shortcuts()
        assert dialog.isVisible() and not dialog.isModal()
        rows = dialog.rows()
        for menu, action in actions:
            assert (menu, action.text().replace("&", "").rstrip("…"), shortcut_text(action)) in rows
        wanted = {
            "Export": "Ctrl+E",
            "Show overlay": "Ctrl+Shift+O",
            "Click-through overlay": "Ctrl+Shift+K",
            "Next theme": "Ctrl+Shift+T",
            "Timestamps": "Ctrl+T",
            "Start": "Ctrl+R",
        }
        shown = {action: keys for _menu, action, keys in rows}
        for action, keys in wanted.items():
            assert shown[action] == keys
        # the theme choices are reached by "Next theme" (Ctrl+Shift+T)
        assert all(a in window.theme_group.actions() for a in window.theme_actions.values())
        dialog.close()
        # and the keys work: real key presses on the active window
        window.activateWindow()
        await wait_until(lambda: QApplication.activeWindow() is window, 3, "an active window")
        ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
        QTest.keyClick(window, Qt.Key.Key_O, ctrl | shift)
        assert app.overlay.isVisible()
        QTest.keyClick(window, Qt.Key.Key_K, ctrl | shift)
        assert app.overlay.click_through
        QTest.keyClick(window, Qt.Key.Key_T, ctrl)
        assert window.pane.timestamps
        QTest.keyClick(window, Qt.Key.Key_F1)
        assert window.show_shortcuts().isVisible()

    run_window(qapp, app_args(), body, device_lister=list)


def test_finished_lines_are_announced_to_screen_readers_never_interims(
    qapp: QApplication, dirs: dict[str, Path]
) -> None:
    async def body(app: CaptionerApp) -> None:
        heard: list[str] = []
        app.announcer.announced.connect(heard.append)
        for interim in ("Good", "Good morning", "Good morning every"):
            app.bridge.captions_changed([LiveChanged(0, "", interim)])
        assert heard == []
        feed(app, diarized_meeting())
        assert heard == [
            "Speaker 1: Good morning, everyone. The Q3 numbers first.",
            "Speaker 2: Revenue grew by 12% in Europe.",
            "[connection lost 0:06-0:14]",
            "Speaker 1: Thanks, Ana. Next item.",
        ]
        assert app.window.pane.view.accessibleName() == "Captions"

    run_window(qapp, app_args(), body, device_lister=list)


def test_themes_follow_the_system_until_one_is_chosen(
    qapp: QApplication, dirs: dict[str, Path], light_afterwards: None
) -> None:
    def window_colour() -> str:
        return QApplication.palette().color(QPalette.ColorRole.Window).name()

    light, dark, high = (
        palette_for(t).color(QPalette.ColorRole.Window).name()
        for t in (Theme.LIGHT, Theme.DARK, Theme.HIGH_CONTRAST)
    )
    hints = QGuiApplication.styleHints()

    async def first(app: CaptionerApp) -> None:
        assert window_colour() == light  # the system says nothing: light
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
        assert window_colour() == dark
        hints.accessibility().contrastPreferenceChanged.emit(Qt.ContrastPreference.HighContrast)
        assert window_colour() == high
        hints.accessibility().contrastPreferenceChanged.emit(Qt.ContrastPreference.NoPreference)
        assert window_colour() == dark
        app.window.theme_actions[Theme.LIGHT].trigger()  # a person's choice wins
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
        assert window_colour() == light
        app.window.theme_action.trigger()  # Ctrl+Shift+T: the next one
        assert window_colour() == dark and app.themes.choice is Theme.DARK
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Unknown)

    run_window(qapp, app_args(), first, device_lister=list)

    async def second(app: CaptionerApp) -> None:
        assert window_colour() == dark
        assert app.window.theme_actions[Theme.DARK].isChecked()

    run_window(qapp, app_args(), second, device_lister=list)

    for theme, at_least in ((Theme.LIGHT, 4.5), (Theme.DARK, 4.5), (Theme.HIGH_CONTRAST, 7.0)):
        palette = palette_for(theme)
        for fore, back in (
            (QPalette.ColorRole.Text, QPalette.ColorRole.Base),
            (QPalette.ColorRole.WindowText, QPalette.ColorRole.Window),
            (QPalette.ColorRole.ButtonText, QPalette.ColorRole.Button),
            (QPalette.ColorRole.HighlightedText, QPalette.ColorRole.Highlight),
        ):
            ratio = contrast_ratio(palette.color(fore), palette.color(back))
            assert ratio >= at_least, (theme, fore, back, ratio)


def test_no_journal_keeps_nothing_on_disk(qapp: QApplication, dirs: dict[str, Path]) -> None:
    async def body(app: CaptionerApp) -> None:
        app.bridge.captions_changed([committed("Not kept on disk.")])
        assert app.window.pane.paragraph_count == 1 and app.transcript.journal is None

    run_window(qapp, app_args("--no-journal"), body, device_lister=list)
    assert not list((dirs["data"] / "journal").glob("*.jsonl"))
