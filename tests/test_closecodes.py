"""Close codes, handshake statuses and network failures mapped to what a person sees (§5)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.core.closecodes import (
    EXIT_AUTH,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_REFUSED,
    Meaning,
    close_meaning,
    http_meaning,
    network_meaning,
    reason_code,
)
from tests.fixtures import load_fixture

NET_0001 = (
    "Deepgram did not receive audio data or a text message within the timeout window. "
    "See https://dpgr.am/net0001"
)
NET_0000 = (
    "Deepgram did not provide a response message within the timeout window. "
    "See https://dpgr.am/net0000"
)
KINDS = {"normal", "auth", "refused", "data", "idle", "network", "server", "rate-limit"}


def close_frames() -> list[dict[str, Any]]:
    frames = json.loads(load_fixture("close_frames"))
    assert isinstance(frames, list)
    return frames


def handshake_errors() -> list[dict[str, Any]]:
    errors = json.loads(load_fixture("handshake_errors"))
    assert isinstance(errors, list)
    return errors


def assert_well_formed(meaning: Meaning) -> None:
    assert meaning.label and meaning.title and meaning.explanation and meaning.action
    assert meaning.kind in KINDS
    assert meaning.exit_code in (EXIT_OK, EXIT_AUTH, EXIT_REFUSED, EXIT_NETWORK)
    assert meaning.retry == (meaning.exit_code == EXIT_NETWORK)


def test_recorded_close_frames() -> None:
    got = {(f["code"], f["reason"]): close_meaning(f["code"], f["reason"]) for f in close_frames()}
    idle = got[(1011, NET_0001)]
    assert (idle.label, idle.kind, idle.retry, idle.exit_code) == (
        "1011 NET-0001",
        "idle",
        True,
        5,
    )
    assert idle.title == "No audio reached the server for 10 s"
    hiccup = got[(1011, NET_0000)]
    assert (hiccup.label, hiccup.kind, hiccup.retry, hiccup.exit_code) == (
        "1011 NET-0000",
        "server",
        True,
        5,
    )
    data = got[(1008, "DATA-0000")]
    assert (data.label, data.kind, data.retry, data.exit_code) == (
        "1008 DATA-0000",
        "data",
        False,
        4,
    )
    assert "sample rate" in data.action
    normal = got[(1000, "")]
    assert (normal.label, normal.kind, normal.retry, normal.exit_code) == (
        "1000",
        "normal",
        False,
        0,
    )
    for meaning in got.values():
        assert_well_formed(meaning)


@pytest.mark.parametrize(
    "reason",
    [NET_0001, "NET-0001", "net0001", "net-0001", "See dpgr.am/NET0001.", "  NET_0001  "],
)
def test_net_0001_in_any_spelling(reason: str) -> None:
    meaning = close_meaning(1011, reason)
    assert meaning.label == "1011 NET-0001"
    assert meaning.kind == "idle"


@pytest.mark.parametrize("reason", [NET_0000, "NET-0000", "net0000"])
def test_net_0000_in_any_spelling(reason: str) -> None:
    assert close_meaning(1011, reason).label == "1011 NET-0000"


@pytest.mark.parametrize("code", [1008, 1002])
@pytest.mark.parametrize(
    "reason",
    ["DATA-0000", "data0000", "Payload could not be decoded. See https://dpgr.am/data0000"],
)
def test_data_0000_under_1008_and_1002(code: int, reason: str) -> None:
    meaning = close_meaning(code, reason)
    assert meaning.label == f"{code} DATA-0000"
    assert (meaning.kind, meaning.retry, meaning.exit_code) == ("data", False, EXIT_REFUSED)


def test_1008_without_a_known_reason_is_still_an_audio_format_problem() -> None:
    meaning = close_meaning(1008, "policy violation")
    assert (meaning.label, meaning.kind, meaning.exit_code) == ("1008", "data", EXIT_REFUSED)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (NET_0001, "NET-0001"),
        ("DATA-0000", "DATA-0000"),
        ("data0000", "DATA-0000"),
        ("planet0001 is not a code", None),
        ("NET-00012", None),
        ("NET-0002", "NET-0002"),
        ("", None),
        (None, None),
    ],
)
def test_reason_code(reason: str | None, expected: str | None) -> None:
    assert reason_code(reason) == expected


def test_going_away_and_no_close_frame() -> None:
    away = close_meaning(1001, "")
    assert (away.label, away.kind, away.retry, away.exit_code) == ("1001", "server", True, 5)
    for code in (1006, None):
        lost = close_meaning(code, None)
        assert lost.label == "1006"
        assert lost.title == "Connection lost"
        assert (lost.kind, lost.retry, lost.exit_code) == ("network", True, 5)


def test_1011_without_a_known_code_is_a_server_error() -> None:
    meaning = close_meaning(1011, "internal error")
    assert (meaning.label, meaning.kind, meaning.retry) == ("1011", "server", True)
    assert '"internal error"' in meaning.explanation


def test_keepalive_ping_timeout_sent_by_our_client() -> None:
    meaning = close_meaning(1011, "keepalive ping timeout", sent_by_client=True)
    assert meaning.title == "Connection lost"
    assert meaning.label.startswith("1011")
    assert "Captioner" in meaning.label
    assert (meaning.kind, meaning.retry, meaning.exit_code) == ("network", True, EXIT_NETWORK)
    assert "20 s" in meaning.explanation


def test_our_own_normal_close_is_normal() -> None:
    meaning = close_meaning(1000, "", sent_by_client=True)
    assert (meaning.kind, meaning.retry, meaning.exit_code) == ("normal", False, EXIT_OK)


def test_unknown_close_code_is_retried_and_quotes_the_reason() -> None:
    meaning = close_meaning(4321, "something new")
    assert (meaning.label, meaning.retry, meaning.exit_code) == ("4321", True, EXIT_NETWORK)
    assert "4321" in meaning.title
    assert '"something new"' in meaning.explanation


def test_reason_code_wins_over_the_close_code() -> None:
    assert close_meaning(1000, "NET-0001").label == "1000 NET-0001"


def test_recorded_handshake_errors() -> None:
    for entry in handshake_errors():
        status = entry["status"]
        dg_error = entry.get("headers", {}).get("dg-error") or (entry["body"] or {}).get("err_msg")
        meaning = http_meaning(status, dg_error)
        assert_well_formed(meaning)
        assert meaning.label == f"HTTP {status}"
        assert isinstance(dg_error, str)
        assert dg_error in meaning.explanation


def test_400_shows_dg_error_verbatim() -> None:
    text = "Invalid 'utterance_end_ms' value of '999'."
    meaning = http_meaning(400, text)
    assert text in meaning.explanation
    assert (meaning.kind, meaning.retry, meaning.exit_code) == ("refused", False, EXIT_REFUSED)
    assert "setting" in meaning.action.lower()
    bare = http_meaning(400)
    assert bare.explanation
    assert "None" not in bare.explanation


@pytest.mark.parametrize(
    ("status", "title", "kind", "retry", "exit_code"),
    [
        (401, "API key rejected", "auth", False, EXIT_AUTH),
        (402, "Deepgram account out of credit", "refused", False, EXIT_REFUSED),
        (403, "Model not available for this key", "auth", False, EXIT_AUTH),
        (404, "Bad endpoint URL", "refused", False, EXIT_REFUSED),
        (405, "Bad endpoint URL", "refused", False, EXIT_REFUSED),
        (408, "Timed out connecting", "network", True, EXIT_NETWORK),
        (413, "Too many custom terms", "refused", False, EXIT_REFUSED),
        (414, "Too many custom terms", "refused", False, EXIT_REFUSED),
        (429, "Too many simultaneous sessions", "rate-limit", True, EXIT_NETWORK),
        (500, "Deepgram unavailable", "server", True, EXIT_NETWORK),
        (502, "Deepgram unavailable", "server", True, EXIT_NETWORK),
        (503, "Deepgram unavailable", "server", True, EXIT_NETWORK),
        (504, "Deepgram unavailable", "server", True, EXIT_NETWORK),
        (520, "Deepgram unavailable", "server", True, EXIT_NETWORK),
        (418, "Connection refused", "refused", False, EXIT_REFUSED),
        (451, "Connection refused", "refused", False, EXIT_REFUSED),
    ],
)
def test_http_statuses(status: int, title: str, kind: str, retry: bool, exit_code: int) -> None:
    meaning = http_meaning(status)
    assert meaning.label == f"HTTP {status}"
    assert (meaning.title, meaning.kind, meaning.retry, meaning.exit_code) == (
        title,
        kind,
        retry,
        exit_code,
    )


def test_401_mentions_where_to_fix_the_key() -> None:
    meaning = http_meaning(401, "Invalid credentials.")
    assert "API key" in meaning.action
    assert "Invalid credentials." in meaning.explanation


@pytest.mark.parametrize(
    ("description", "title"),
    [
        ("[Errno -2] Name or service not known", "Server name not found"),
        ("[Errno 8] nodename nor servname provided, or not known", "Server name not found"),
        ("timed out during opening handshake", "Timed out connecting"),
        ("[Errno 111] Connect call failed ('127.0.0.1', 9)", "Connection refused"),
        ("Connection refused", "Connection refused"),
        ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", "Secure connection failed"),
        ("network is unreachable", "Offline"),
        ("", "Offline"),
    ],
)
def test_network_meaning(description: str, title: str) -> None:
    meaning = network_meaning(description)
    assert meaning.title == title
    assert (meaning.label, meaning.kind, meaning.retry, meaning.exit_code) == (
        "network",
        "network",
        True,
        EXIT_NETWORK,
    )
    assert description in meaning.explanation


@settings(max_examples=300)
@given(
    st.none() | st.integers(min_value=0, max_value=5000),
    st.none() | st.text(max_size=40) | st.sampled_from([NET_0000, NET_0001, "DATA-0000"]),
    st.booleans(),
)
def test_every_close_is_well_formed(code: int | None, reason: str | None, ours: bool) -> None:
    assert_well_formed(close_meaning(code, reason, sent_by_client=ours))


@settings(max_examples=300)
@given(st.integers(min_value=100, max_value=999), st.none() | st.text(max_size=40))
def test_every_status_is_well_formed(status: int, dg_error: str | None) -> None:
    meaning = http_meaning(status, dg_error)
    assert_well_formed(meaning)
    if dg_error and dg_error.strip():
        assert dg_error.strip() in meaning.explanation
    if 400 <= status <= 499 and status not in (408, 429):
        assert not meaning.retry
    if 500 <= status <= 599:
        assert meaning.retry
