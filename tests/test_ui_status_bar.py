"""The status bar, fed plain `Status` values and meanings from the close-code table."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from captioner.core.closecodes import close_meaning, http_meaning, network_meaning
from captioner.session import State, Status
from captioner.ui.status_bar import CaptionStatusBar, state_words
from tests.ui_support import QT_MARKS

pytestmark = QT_MARKS

NET0001 = (
    "Deepgram did not receive audio data or a text message within the timeout window. "
    "See https://dpgr.am/net0001"
)


@pytest.fixture
def bar(qtbot: QtBot) -> CaptionStatusBar:
    widget = CaptionStatusBar()
    qtbot.addWidget(widget)
    widget.resize(1200, 30)
    widget.show()
    return widget


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (State.IDLE, "Idle"),
        (State.CONNECTING, "Connecting"),
        (State.LIVE, "Live"),
        (State.RECONNECTING, "Reconnecting"),
        (State.STOPPED, "Stopped"),
        (State.ERROR, "Error"),
    ],
)
def test_the_state_in_words(bar: CaptionStatusBar, state: State, words: str) -> None:
    bar.show_status(Status(state))
    assert bar.state_label.text() == f"● {words}"
    assert bar.state is state


def test_reconnecting_says_when_and_which_attempt() -> None:
    status = Status(State.RECONNECTING, "reconnecting in 2 s (attempt 3, audio kept)")
    assert state_words(status) == "Reconnecting in 2 s (attempt 3, audio kept)"


def test_the_source_says_what_is_heard(bar: CaptionStatusBar) -> None:
    bar.set_source("USB Microphone", listening=True)
    assert bar.source_label.text() == "Listening · USB Microphone"
    bar.set_source("USB Microphone", listening=True, muted=True)
    assert bar.source_label.text() == "Muted · USB Microphone"
    bar.set_source("USB Microphone")
    assert bar.source_label.text() == "Ready · USB Microphone"
    bar.set_source(None)
    assert bar.source_label.text() == "No input"


def test_the_engine_is_named(bar: CaptionStatusBar) -> None:
    bar.set_engine("Offline engine", "runs on this computer")
    assert bar.engine_label.text() == "Offline engine"
    assert bar.engine_label.toolTip() == "runs on this computer"


def test_net0001_shows_code_meaning_and_reason(bar: CaptionStatusBar) -> None:
    meaning = close_meaning(1011, NET0001)
    bar.show_status(Status(State.ERROR, NET0001, meaning, "req-1", reason=NET0001))
    text = bar.close_label.text()
    assert text.startswith("1011 NET-0001: No audio reached the server for 10 s")
    assert "Deepgram: “Deepgram did not receive audio" in text
    tip = bar.close_label.toolTip()
    assert NET0001 in tip and meaning.explanation in tip and meaning.action in tip
    assert bar.request_label.text() == "Request req-1"


def test_data0000_and_http_401(bar: CaptionStatusBar) -> None:
    bar.show_status(
        Status(State.ERROR, "DATA-0000", close_meaning(1008, "DATA-0000"), reason="DATA-0000")
    )
    assert bar.close_label.text() == "1008 DATA-0000: Audio format not accepted"
    bar.show_status(
        Status(
            State.ERROR, "Invalid credentials.", http_meaning(401), reason="Invalid credentials."
        )
    )
    assert bar.close_label.text() == "HTTP 401: API key rejected · Deepgram: “Invalid credentials.”"


def test_a_reconnect_shows_the_servers_reason_too(bar: CaptionStatusBar) -> None:
    meaning = close_meaning(1011, NET0001)
    schedule = "Reconnecting in 2 s (attempt 1, audio kept)"
    bar.show_status(Status(State.RECONNECTING, schedule, meaning, reason=NET0001))
    assert bar.close_label.text().startswith("1011 NET-0001")
    assert "Deepgram: “Deepgram did not receive audio" in bar.close_label.text()
    assert schedule not in bar.close_label.text()


def test_the_last_close_stays_while_the_state_moves_on(bar: CaptionStatusBar) -> None:
    meaning = close_meaning(1011, NET0001)
    bar.show_status(Status(State.RECONNECTING, "reconnecting in 1 s", meaning))
    bar.show_status(Status(State.LIVE, "Microphone"))
    assert bar.close_label.isVisible()
    assert bar.close_label.text().startswith("1011 NET-0001")
    assert bar.last_meaning == meaning
    bar.show_status(Status(State.ERROR, "offline", network_meaning("connection refused")))
    assert bar.close_label.text().startswith("network: Connection refused")
    bar.clear_close()
    assert not bar.close_label.isVisible()


def test_a_normal_finish_is_not_shown_as_a_close_problem(bar: CaptionStatusBar) -> None:
    bar.show_status(Status(State.STOPPED, "finished", close_meaning(1000, "")))
    assert not bar.close_label.isVisible()


def test_lag_and_dropped_blocks(bar: CaptionStatusBar) -> None:
    assert not bar.lag_label.isVisible() and not bar.dropped_label.isVisible()
    bar.set_lag(0.84)
    assert bar.lag_label.text() == "0.8 s behind" and bar.lag_label.styleSheet() == ""
    bar.set_lag(4.2)
    assert "c98a00" in bar.lag_label.styleSheet()
    bar.set_lag(None)
    assert not bar.lag_label.isVisible()
    bar.set_dropped(1)
    assert bar.dropped_label.text() == "1 audio block dropped"
    bar.set_dropped(12)
    assert bar.dropped_label.text() == "12 audio blocks dropped"
    bar.set_dropped(0)
    assert not bar.dropped_label.isVisible()
