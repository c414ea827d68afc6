"""The real window on a qasync loop, against the scripted Deepgram emulator.

The fakes are at the boundaries only: a WAV file stands in for the microphone (`--file`),
the emulator for Deepgram, a device list for PortAudio's. Everything in between is the
app as it ships: window, bridge, session, transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from keyring.backends import fail
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from captioner.app import AppOptions, display_problem, run_app
from captioner.app.root import CaptionerApp
from captioner.audio.devices import InputDevice
from captioner.session import State
from captioner.ui.preferences import Endpoint, PreferencesStore, open_qsettings
from captioner.ui.run_state import RunState
from testkit import audio_files
from testkit.deepgram_emulator import (
    DATA0000_REASON,
    NET0001_REASON,
    AfterAudio,
    Close,
    DeepgramEmulator,
    Script,
)
from testkit.virtual_mic import VirtualMic
from tests.ui_support import QT_MARKS, app_args, device, run_qasync, wait_until

pytestmark = QT_MARKS

KEY = "test-key-123"


@pytest.fixture
def noise_wav(tmp_path: Path) -> Path:
    """Three seconds of quiet noise at 16 kHz: the emulator makes a word of every slot."""
    return audio_files.noise_wav(tmp_path / "noise.wav", 3.0)


def run_window(
    qapp: QApplication,
    args: AppOptions,
    body: Callable[[CaptionerApp], Awaitable[None]],
    *,
    timeout: float = 20.0,
    **options: object,
) -> CaptionerApp:
    """Launch the app in a fresh qasync loop, run `body`, then shut it down as a close does."""

    async def main() -> CaptionerApp:
        app = CaptionerApp(args, keyring_backend=fail.Keyring(), **options)  # type: ignore[arg-type]
        restore = app.install_error_hooks()
        try:
            await app.launch()
            await body(app)
            app.window.close()  # the close button: an ordered shutdown, not an abrupt exit
            app.window.close()  # twice: the shutdown runs once
            assert await asyncio.wait_for(asyncio.shield(app.finished), 10.0) == 0
        finally:
            if not app.finished.done():  # the body failed: still leave nothing running
                app.request_shutdown()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(app.finished), 10.0)
            restore()
        return app

    return run_qasync(qapp, main, timeout)


# -- command line and no display ----------------------------------------------------------


def test_arguments_parse() -> None:
    args = app_args("--device", "USB", "--start", "--url", "ws://h/v1/listen", "--file", "x.wav")
    assert (args.device, args.start, args.url, args.file) == (
        "USB",
        True,
        "ws://h/v1/listen",
        "x.wav",
    )
    assert args.api_key is None and args.model_dir is None


def test_the_window_stops_retrying_a_server_that_drops_every_stream_and_says_so(
    qapp: QApplication, noise_wav: Path, config_dir: Path
) -> None:
    """Every connection is accepted and dropped at once: the window gives up after its limit
    (measured from the last transcript, not the last handshake) and says what happened."""
    from testkit.deepgram_emulator import Accept, Drop

    async def body(app: CaptionerApp) -> None:
        script = Script(handshake_hook=lambda record: Accept(timeline=[Drop()]))
        async with DeepgramEmulator(script) as emu:
            app.use_url(emu.url)
            app.captioning.start()
            await wait_until(lambda: len(emu.connections) >= 2, 10, "reconnects")
            await wait_until(lambda: app.captioning.run_state is RunState.IDLE, 15, "giving up")
            tries = len(emu.connections)
            await asyncio.sleep(1.5)
            assert len(emu.connections) == tries  # no more attempts
        banner = app.window.banner.message()
        assert "Gave up after" in banner, banner
        assert app.window.banner.action_button.text() == "Start again"
        assert "Error" in app.window.status.state_label.text()
        assert app.errors == []

    run_window(qapp, app_args("--api-key", KEY, "--file", str(noise_wav)), body, give_up_after=3.0)


def test_no_display_is_explained_with_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert run_app(app_args()) == 2
    err = capsys.readouterr().err
    assert "no display" in err and "xvfb-run -a .venv/bin/captioner" in err
    assert "captioner listen" in err
    assert display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({}, "darwin") is None


def test_a_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_app(app_args("--file", str(tmp_path / "nope.wav"))) == 2
    assert "no such file" in capsys.readouterr().err


# -- captioning against the emulator -------------------------------------------------------


def test_captions_flow_and_stop_drains(
    qapp: QApplication, noise_wav: Path, config_dir: Path
) -> None:
    async def body(app: CaptionerApp) -> None:
        async with DeepgramEmulator(Script(expected_key=KEY)) as emu:
            app.use_url(emu.url)
            app.captioning.start()
            status = app.window.status
            pane = app.window.pane
            await wait_until(lambda: status.state is State.LIVE, 5, "Live")
            assert status.state_label.text() == "● Live"
            assert status.source_label.text() == "Listening · noise.wav"
            assert status.engine_label.text() == "Custom URL"
            await wait_until(lambda: status.lag_label.isVisible(), 3, "the lag")
            assert status.lag_label.text().endswith(" s behind")
            assert status.request_label.text().startswith("Request ")
            await wait_until(lambda: pane.paragraph_count >= 1, 5, "a committed line")
            assert pane.transcript().startswith("One two three")
            app.captioning.stop()
            await wait_until(
                lambda: app.captioning.run_state is RunState.IDLE, 6, "idle after Stop"
            )
            assert status.state_label.text() == "● Stopped"
            assert emu.connections[0].control_types[-1] == "CloseStream"
            assert app.errors == []

    run_window(qapp, app_args("--api-key", KEY, "--file", str(noise_wav)), body)


def test_the_status_bar_names_the_language_the_engine_hears(
    qapp: QApplication, noise_wav: Path, config_dir: Path
) -> None:
    """With language=multi the server tags each word with its language; the status bar says
    which, by name. A language asked for is not repeated there."""

    async def body(app: CaptionerApp) -> None:
        status = app.window.status
        assert not status.language_label.isVisibleTo(app.window)
        app.store.update(language="multi")
        quick = Script(
            expected_key=KEY,
            spoken_language="de",
            words_per_second=6.0,
            final_every=0.5,
            speech_final_every=1,
        )
        async with DeepgramEmulator(quick) as emu:
            app.use_url(emu.url)
            app.captioning.start()
            await wait_until(lambda: app.window.pane.paragraph_count >= 1, 5, "a line")
            assert emu.connections[0].query["language"] == ["multi"]
            assert status.language_label.text() == "Hearing German — Deutsch"
            assert status.language_label.isVisibleTo(app.window)
            app.captioning.stop()
            await wait_until(lambda: app.captioning.run_state is RunState.IDLE, 6, "idle")
            app.store.update(language="de")
            app.captioning.start()
            await wait_until(lambda: len(emu.connections) == 2, 5, "a second connection")
            await wait_until(lambda: app.window.pane.paragraph_count >= 2, 5, "another line")
            assert not status.language_label.isVisibleTo(app.window)
            app.captioning.stop()
            await wait_until(lambda: app.captioning.run_state is RunState.IDLE, 6, "idle")
        assert app.errors == []

    run_window(qapp, app_args("--api-key", KEY, "--file", str(noise_wav)), body)


def scripted_close(code: int, reason: str) -> Script:
    return Script(expected_key=KEY, timeline=[AfterAudio(0.3), Close(code, reason, metadata=True)])


@pytest.mark.parametrize(
    ("script", "key", "label", "meaning", "final"),
    [
        (
            scripted_close(1008, DATA0000_REASON),
            KEY,
            "1008 DATA-0000",
            "Audio format not accepted",
            "Error",
        ),
        (Script(expected_key=KEY), "wrong-key", "HTTP 401", "API key rejected", "Error"),
        (
            scripted_close(1011, NET0001_REASON),
            KEY,
            "1011 NET-0001",
            "No audio reached the server for 10 s",
            "Reconnecting",
        ),
    ],
    ids=["1008-DATA-0000", "401", "1011-NET-0001"],
)
def test_close_codes_are_shown_with_their_meaning(
    qapp: QApplication,
    noise_wav: Path,
    config_dir: Path,
    script: Script,
    key: str,
    label: str,
    meaning: str,
    final: str,
) -> None:
    async def body(app: CaptionerApp) -> None:
        async with DeepgramEmulator(script) as emu:
            app.use_url(emu.url)
            app.captioning.start()
            status = app.window.status
            await wait_until(lambda: status.close_label.isVisible(), 5, f"{label} shown")
            text = status.close_label.text()
            assert text.startswith(f"{label}: {meaning}"), text
            await wait_until(lambda: final in status.state_label.text(), 5, final)
            if final == "Error":  # the end: said once, with what to do
                await wait_until(lambda: app.captioning.run_state is RunState.IDLE, 5, "idle")
                banner = app.window.banner.message()
                assert meaning in banner and banner.count(label) == 1
                assert app.window.banner.action_button.text() == "Open settings"
            else:  # a retry: the session reconnects by itself and keeps the code shown
                await wait_until(lambda: len(emu.connections) >= 2, 5, "a reconnect")
                assert status.close_label.text().startswith(f"{label}: {meaning}")
                assert app.captioning.run_state is RunState.RUNNING
            assert app.errors == []

    run_window(qapp, app_args("--api-key", key, "--file", str(noise_wav)), body)


def test_mute_holds_the_connection_with_keepalive(
    qapp: QApplication, noise_wav: Path, config_dir: Path
) -> None:
    async def body(app: CaptionerApp) -> None:
        async with DeepgramEmulator(Script(expected_key=KEY, inactivity_timeout=1.0)) as emu:
            app.use_url(emu.url)
            app.captioning.start()
            await wait_until(lambda: app.captioning.run_state is RunState.RUNNING, 5, "running")
            app.window.mute_action.trigger()
            assert app.captioning.session is not None and app.captioning.session.muted
            assert app.window.status.source_label.text() == "Muted · noise.wav"
            assert app.window.mute_action.text() == "Unmute"
            await wait_until(
                lambda: "KeepAlive" in emu.connections[0].control_types, 3, "a KeepAlive"
            )
            await asyncio.sleep(1.5)  # longer than the emulator's inactivity limit
            assert emu.connections[0].is_open
            assert app.window.status.state is State.LIVE

    run_window(
        qapp,
        app_args("--api-key", KEY, "--file", str(noise_wav)),
        body,
        keepalive_interval=0.3,
    )


def test_closing_mid_stream_sends_closestream_and_ends(
    qapp: QApplication, noise_wav: Path, config_dir: Path
) -> None:
    records: list[object] = []

    async def body(app: CaptionerApp) -> None:
        async with DeepgramEmulator(Script(expected_key=KEY)) as emu:
            app.use_url(emu.url)
            app.captioning.start()
            await wait_until(lambda: app.window.status.state is State.LIVE, 5, "Live")
            await asyncio.sleep(0.5)
            source = app.captioning.source
            app.request_shutdown()
            app.request_shutdown()
            await asyncio.wait_for(app.finished, 8.0)
            assert not app.window.isVisible()
            records.extend(emu.connections)
            assert emu.connections[0].control_types[-1] == "CloseStream"
            assert emu.connections[0].close_code == 1000
            assert source is not None and getattr(source, "end_reason", None) == "closed"

    run_window(qapp, app_args("--api-key", KEY, "--file", str(noise_wav)), body)
    assert records


# -- devices, settings, errors ---------------------------------------------------------------


def test_devices_are_listed_remembered_and_preselected(
    qapp: QApplication, config_dir: Path
) -> None:
    devices = [device(0, "Built-in Audio", default=True), device(2, "USB Microphone")]

    def lister() -> list[InputDevice]:
        return list(devices)

    async def first(app: CaptionerApp) -> None:
        assert app.window.picker.current_device() == devices[1]
        assert app.window.status.source_label.text() == "Ready · USB Microphone"
        assert app.window.status.engine_label.text() == "Offline engine"

    run_window(qapp, app_args("--device", "usb"), first, device_lister=lister)
    assert PreferencesStore(open_qsettings(config_dir)).load().device_name == "USB Microphone"

    async def second(app: CaptionerApp) -> None:
        assert app.window.picker.current_device() == devices[1]  # remembered
        devices.pop(1)  # unplugged
        await app.devices.refresh()
        assert app.window.picker.current_device() == devices[0]
        assert "USB Microphone is not connected" in app.window.picker.message_text()

    run_window(qapp, app_args(), second, device_lister=lister)


def test_no_device_is_said_and_start_explains(qapp: QApplication, config_dir: Path) -> None:
    async def body(app: CaptionerApp) -> None:
        assert "No audio input device found" in app.window.picker.message_text()
        assert app.window.status.source_label.text() == "No input"
        app.captioning.start()
        await wait_until(lambda: app.captioning.run_state is RunState.IDLE, 3, "back to idle")
        await wait_until(lambda: app.window.banner.message() != "", 3, "the banner")
        assert "No audio input device found" in app.window.banner.message()

    run_window(qapp, app_args(), body, device_lister=list)


def test_settings_are_saved_and_used_next_time(
    qapp: QApplication, qtbot: QtBot, config_dir: Path
) -> None:
    async def change(app: CaptionerApp) -> None:
        dialog = app.settings.open()
        assert dialog.isVisible() and app.settings.open() is dialog
        dialog.endpoint_combo.setCurrentIndex(list(Endpoint).index(Endpoint.CUSTOM))
        dialog.url_edit.setText("ws://10.1.2.3:9000/v1/listen")
        dialog.model_edit.setText("nova-2")
        dialog.keyterms_edit.setText("")
        dialog.buttons.accepted.emit()
        await wait_until(lambda: not dialog.isVisible(), 2, "the dialog to close")
        assert app.window.status.engine_label.text() == "Custom URL"
        app.window.zoom_in_action.trigger()

    run_window(qapp, app_args(), change, device_lister=list)
    prefs = PreferencesStore(open_qsettings(config_dir)).load()
    assert prefs.endpoint is Endpoint.CUSTOM and prefs.model == "nova-2"
    assert prefs.custom_url == "ws://10.1.2.3:9000/v1/listen" and prefs.font_size == 18

    async def reopen(app: CaptionerApp) -> None:
        assert app.window.pane.font_size == 18
        assert app.endpoints.title() == ("Custom URL", "ws://10.1.2.3:9000/v1/listen")

    run_window(qapp, app_args(), reopen, device_lister=list)


def test_the_key_is_redacted_from_every_log_line(qapp: QApplication, config_dir: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)

    async def body(app: CaptionerApp) -> None:
        logging.getLogger("anywhere").warning("sending Authorization: Token %s", KEY)

    try:
        run_window(qapp, app_args("--api-key", KEY), body, device_lister=list)
    finally:
        logging.getLogger().removeHandler(handler)
    assert "Authorization: Token ***" in stream.getvalue()
    assert KEY not in stream.getvalue()


def test_errors_in_slots_and_tasks_are_surfaced(qapp: QApplication, config_dir: Path) -> None:
    async def body(app: CaptionerApp) -> None:
        def broken_slot() -> None:
            raise RuntimeError("a slot broke")

        QTimer.singleShot(0, broken_slot)
        await wait_until(lambda: app.errors, 2, "the slot error")

        async def broken_task() -> None:
            raise ValueError("a task broke")

        app.tasks.spawn(broken_task(), "demo")
        await wait_until(lambda: len(app.errors) == 2, 2, "the task error")
        assert "RuntimeError: a slot broke" in app.errors[0]
        assert "ValueError: a task broke" in app.errors[1]
        assert "a task broke" in app.window.banner.message()

    run_window(qapp, app_args(), body, device_lister=list)


# -- the microphone goes away and comes back ------------------------------------------------


def test_the_window_says_when_the_microphone_is_lost_and_when_it_is_back(
    qapp: QApplication,
    private_virtual_mic: VirtualMic,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real PortAudio input whose audio server dies mid-session, as an unplugged USB
    microphone does: the banner says it is lost (the connection is kept), then that it is
    back. The app once gave the source its own listener and the session replaced it, so
    this banner never showed."""
    mic = private_virtual_mic
    for name, value in mic.env.items():
        monkeypatch.setenv(name, value)  # the rescan at launch re-reads PortAudio's devices

    async def body(app: CaptionerApp) -> None:
        banner = app.window.banner
        async with DeepgramEmulator(Script(expected_key=KEY)) as emu:
            app.use_url(emu.url)
            app.captioning.start()
            await wait_until(
                lambda: bool(emu.connections and emu.connections[0].binary_frames), 15, "audio"
            )
            await asyncio.to_thread(mic.stop)
            await wait_until(lambda: "Microphone lost" in banner.message(), 15, "the loss said")
            assert banner.kind == "error"
            await asyncio.to_thread(mic.start)
            await wait_until(lambda: "Microphone back" in banner.message(), 20, "the return said")
            assert banner.kind == "info"
            assert len(emu.connections) == 1  # the connection was held meanwhile
            app.captioning.stop()
            await wait_until(lambda: app.captioning.run_state is RunState.IDLE, 10, "stopped")
        assert app.errors == []

    run_window(qapp, app_args("--api-key", KEY, "--device", "pulse"), body, timeout=60)
