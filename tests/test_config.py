"""Stream settings: validation and the /v1/listen URL (docs/protocol.md, "Connecting")."""

from __future__ import annotations

import dataclasses
import re
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.core.config import (
    BUILT_PARAMS,
    DEEPGRAM_EU_URL,
    DEEPGRAM_URL,
    SettingError,
    SettingsError,
    StreamSettings,
    redact,
)

KEY = "0123456789abcdef0123456789abcdef01234567"
RECOMMENDED_URL = (
    "wss://api.deepgram.com/v1/listen?model=nova-3&language=en&encoding=linear16"
    "&sample_rate=16000&channels=1&interim_results=true&smart_format=true&endpointing=300"
    "&utterance_end_ms=1000&vad_events=true"
)
FIELD_NAMES = {f.name for f in dataclasses.fields(StreamSettings)}


def with_key(**changes: Any) -> StreamSettings:
    return StreamSettings(api_key=KEY, **changes)


def bad_settings(s: StreamSettings) -> set[str]:
    return {e.setting for e in s.errors()}


def query(s: StreamSettings) -> dict[str, list[str]]:
    return parse_qs(urlsplit(s.listen_url()).query, keep_blank_values=True)


def test_defaults_build_the_recommended_url() -> None:
    s = with_key()
    assert s.errors() == ()
    s.validate()
    assert s.listen_url() == RECOMMENDED_URL


def test_api_key_stays_out_of_url_and_repr() -> None:
    s = with_key(keyterms=("Captioner",))
    assert KEY not in s.listen_url()
    assert KEY not in repr(s)
    assert KEY not in str(s)
    assert s.auth_header() == f"Token {KEY}"
    assert StreamSettings(url="ws://127.0.0.1:8080").auth_header() is None


def test_api_key_in_an_extra_param_is_refused() -> None:
    s = with_key(extra_params=(("tag", KEY),))
    assert bad_settings(s) == {"extra_params"}
    assert KEY not in str(s.errors())


# B.10
@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"utterance_end_ms": 500}, "utterance_end_ms"),
        ({"utterance_end_ms": 999}, "utterance_end_ms"),
        ({"interim_results": False}, "utterance_end_ms"),
        ({"keywords": ("Pennace:2",)}, "keywords"),
        ({"model": "nova-3-medical", "keywords": ("aspirin",)}, "keywords"),
    ],
)
def test_invalid_combinations_are_refused_locally(changes: dict[str, Any], setting: str) -> None:
    s = with_key(**changes)
    assert bad_settings(s) == {setting}
    with pytest.raises(SettingsError) as caught:
        s.validate()
    assert [e.setting for e in caught.value.errors] == [setting]
    assert setting in str(caught.value)
    with pytest.raises(SettingsError):
        s.listen_url()


def test_utterance_end_error_names_interim_results() -> None:
    [error] = with_key(interim_results=False).errors()
    assert "interim_results" in error.reason


def test_interim_off_without_utterance_end_is_fine() -> None:
    s = with_key(interim_results=False, utterance_end_ms=None)
    assert s.errors() == ()
    assert "utterance_end_ms" not in query(s)
    assert query(s)["interim_results"] == ["false"]


def test_check_false_builds_a_url_the_server_would_refuse() -> None:
    url = with_key(utterance_end_ms=999).listen_url(check=False)
    assert "utterance_end_ms=999" in url


# B.11
@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_raw_pcm_always_declares_its_format(rate: int) -> None:
    q = query(with_key(sample_rate=rate))
    assert q["encoding"] == ["linear16"]
    assert q["sample_rate"] == [str(rate)]
    assert q["channels"] == ["1"]
    assert "multichannel" not in q


def test_two_inputs_declare_two_channels_transcribed_apart() -> None:
    q = query(with_key(channels=2, multichannel=True))
    assert q["channels"] == ["2"]
    assert q["multichannel"] == ["true"]
    assert with_key(channels=2, multichannel=True).frame_bytes == 4


# B.12
def test_booleans_and_numbers_are_plain_strings() -> None:
    s = with_key(
        punctuate=True,
        endpointing=500,
        diarize=True,
        profanity_filter=True,
        smart_format=False,
        vad_events=False,
    )
    pairs = parse_qsl(urlsplit(s.listen_url()).query)
    values = dict(pairs)
    for key in (
        "interim_results",
        "smart_format",
        "punctuate",
        "vad_events",
        "diarize",
        "profanity_filter",
    ):
        assert values[key] in ("true", "false"), key
    assert values["smart_format"] == "false"
    assert values["punctuate"] == "true"
    for key in ("sample_rate", "channels", "endpointing", "utterance_end_ms"):
        assert re.fullmatch(r"\d+", values[key]), key
    assert values["endpointing"] == "500"
    assert "True" not in s.listen_url() and ".0" not in s.listen_url()


def test_endpointing_false_none_and_zero() -> None:
    assert query(with_key(endpointing=False))["endpointing"] == ["false"]
    assert "endpointing" not in query(with_key(endpointing=None))
    assert query(with_key(endpointing=0))["endpointing"] == ["0"]


def test_optional_flags_are_sent_only_when_set() -> None:
    q = query(with_key())
    for key in ("punctuate", "diarize", "profanity_filter", "keyterm", "keywords"):
        assert key not in q
    assert query(with_key(punctuate=False))["punctuate"] == ["false"]
    assert "diarize" not in query(with_key(diarize=False))


def test_repeatable_params_become_repeated_keys() -> None:
    s = with_key(
        keyterms=("Rupert Pennace", "Captioner"), extra_params=(("tag", "a"), ("tag", "b"))
    )
    url = s.listen_url()
    assert "keyterm=Rupert%20Pennace&keyterm=Captioner" in url
    assert "[" not in url and "%5B" not in url
    q = query(s)
    assert q["keyterm"] == ["Rupert Pennace", "Captioner"]
    assert q["tag"] == ["a", "b"]
    assert url.endswith("&tag=a&tag=b")


def test_keywords_with_a_nova_2_model() -> None:
    s = with_key(model="nova-2", keywords=("Pennace:2", "Rupert"))
    assert s.errors() == ()
    assert query(s)["keywords"] == ["Pennace:2", "Rupert"]


# B.13
def test_eu_endpoint_keeps_host_path_and_params() -> None:
    s = with_key(url=DEEPGRAM_EU_URL)
    parts = urlsplit(s.listen_url())
    assert (parts.scheme, parts.netloc, parts.path) == ("wss", "api.eu.deepgram.com", "/v1/listen")
    assert parts.query == urlsplit(RECOMMENDED_URL).query
    assert s.is_deepgram_cloud


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("wss://api.eu.deepgram.com", "wss://api.eu.deepgram.com/v1/listen"),
        ("wss://api.eu.deepgram.com/", "wss://api.eu.deepgram.com/v1/listen"),
        ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765/v1/listen"),
        ("ws://[::1]:8765/v1/listen/", "ws://[::1]:8765/v1/listen"),
        ("WSS://dg.example.org/proxy/v1/listen", "wss://dg.example.org/proxy/v1/listen"),
    ],
)
def test_base_urls_get_the_listen_path(url: str, expected: str) -> None:
    built = StreamSettings(url=url, api_key=KEY).listen_url()
    assert built.split("?")[0] == expected


def test_self_hosted_needs_no_key_and_may_use_plain_ws() -> None:
    s = StreamSettings(url="ws://127.0.0.1:8765/v1/listen")
    assert not s.is_deepgram_cloud
    assert s.errors() == ()
    assert s.listen_url().startswith("ws://127.0.0.1:8765/v1/listen?model=nova-3&")


@pytest.mark.parametrize(
    ("url", "cloud"),
    [
        (DEEPGRAM_URL, True),
        (DEEPGRAM_EU_URL, True),
        ("wss://deepgram.com/v1/listen", True),
        ("wss://notdeepgram.com/v1/listen", False),
        ("wss://api.deepgram.com.evil.example/v1/listen", False),
        ("ws://localhost:1234", False),
        ("wss://[::1", False),
    ],
)
def test_is_deepgram_cloud(url: str, cloud: bool) -> None:
    assert StreamSettings(url=url).is_deepgram_cloud is cloud


def test_cloud_without_a_key_is_refused() -> None:
    for key in (None, ""):
        [error] = StreamSettings(api_key=key).errors()
        assert error.setting == "api_key"
        assert "API key" in error.reason


@pytest.mark.parametrize("key", [f"{KEY}\n", f" {KEY}", "abc def", "abc\tdef", "clé", "a\x00b"])
def test_malformed_api_keys_are_refused(key: str) -> None:
    s = StreamSettings(api_key=key)
    assert bad_settings(s) == {"api_key"}
    assert key not in " ".join(e.reason for e in s.errors())


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("https://api.deepgram.com/v1/listen", "wss://"),
        ("http://127.0.0.1:8765/v1/listen", "ws://"),
        ("ftp://api.deepgram.com/v1/listen", "wss://"),
        ("api.deepgram.com/v1/listen", "wss://"),
        ("wss:///v1/listen", "host"),
        ("wss://api.deepgram.com/v2/listen", "Flux"),
        ("wss://api.deepgram.com/v1/speak", "/v1/listen"),
        ("wss://api.deepgram.com/v1/listen?model=nova-2", "query"),
        ("wss://api.deepgram.com/v1/listen#top", "fragment"),
        ("wss://user:secret@api.deepgram.com/v1/listen", "credentials"),
        ("wss://[::1/v1/listen", "valid URL"),
        ("wss://host:99999/v1/listen", "valid URL"),
        ("ws://api.deepgram.com/v1/listen", "wss://"),
        ("", "empty"),
    ],
)
def test_bad_urls_are_explained(url: str, hint: str) -> None:
    errors = [e for e in StreamSettings(url=url, api_key=KEY).errors() if e.setting == "url"]
    assert len(errors) == 1
    assert hint in errors[0].reason
    assert "secret" not in errors[0].reason


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"model": "flux-general-en"}, "model"),
        ({"model": "Flux-General-En"}, "model"),
        ({"model": ""}, "model"),
        ({"model": "nova 3"}, "model"),
        ({"language": "english"}, "language"),
        ({"language": ""}, "language"),
        ({"language": "en_US"}, "language"),
        ({"encoding": "mulaw"}, "encoding"),
        ({"encoding": "opus"}, "encoding"),
        ({"sample_rate": 7999}, "sample_rate"),
        ({"sample_rate": 192001}, "sample_rate"),
        ({"sample_rate": 16000.0}, "sample_rate"),
        ({"sample_rate": True}, "sample_rate"),
        ({"channels": 0}, "channels"),
        ({"channels": 21}, "channels"),
        ({"channels": 2}, "channels"),  # two channels are sent only as multichannel
        ({"channels": 1, "multichannel": True}, "channels"),
        ({"extra_params": (("multichannel", "false"),)}, "extra_params"),
        ({"endpointing": -1}, "endpointing"),
        ({"endpointing": True}, "endpointing"),
        ({"endpointing": 300.5}, "endpointing"),
        ({"utterance_end_ms": 1500.0}, "utterance_end_ms"),
        ({"utterance_end_ms": True}, "utterance_end_ms"),
        ({"chunk_ms": 19}, "chunk_ms"),
        ({"chunk_ms": 251}, "chunk_ms"),
        ({"smart_format": "yes"}, "smart_format"),
        ({"punctuate": "true"}, "punctuate"),
        ({"model": "nova-2", "keyterms": ("Pennace",)}, "keyterms"),
        ({"keyterms": tuple(f"term{i}" for i in range(101))}, "keyterms"),
        ({"keyterms": ("ok", "  ")}, "keyterms"),
        ({"keyterms": ("word " * 501,)}, "keyterms"),
        ({"model": "nova-2", "keywords": tuple(f"w{i}" for i in range(101))}, "keywords"),
        ({"extra_params": (("model", "nova-2"),)}, "extra_params"),
        ({"extra_params": (("keyterm", "x"),)}, "extra_params"),
        ({"extra_params": (("", "x"),)}, "extra_params"),
        ({"extra_params": (("tag",),)}, "extra_params"),
    ],
)
def test_each_bad_setting_is_named(changes: dict[str, Any], setting: str) -> None:
    s = with_key(**changes)
    assert bad_settings(s) == {setting}
    for error in s.errors():
        assert error.reason
        assert error.setting in FIELD_NAMES


@pytest.mark.parametrize(
    "changes",
    [
        {"language": "en-US"},
        {"language": "multi"},
        {"language": "zh-Hans"},
        {"language": "es-419"},
        {"model": "nova-2-meeting"},
        {"url": "ws://127.0.0.1:8765", "model": "Systran/faster-whisper-base"},
        {"model": "nova-3-medical", "keyterms": ("aspirin",)},
        {"sample_rate": 8000},
        {"sample_rate": 192000},
        {"channels": 20, "multichannel": True},
        {"chunk_ms": 20},
        {"chunk_ms": 250},
        {"utterance_end_ms": 1000},
        {"keyterms": tuple(f"term{i}" for i in range(100))},
        {"extra_params": (("no_delay", "true"), ("numerals", "true"))},
    ],
)
def test_valid_settings(changes: dict[str, Any]) -> None:
    assert with_key(**changes).errors() == ()


def test_all_problems_are_reported_together() -> None:
    s = StreamSettings(
        url="https://api.deepgram.com/v1/listen",
        model="flux-general-en",
        sample_rate=1,
        utterance_end_ms=10,
    )
    assert bad_settings(s) >= {"url", "model", "sample_rate", "utterance_end_ms"}
    error = SettingsError(s.errors())
    assert all(str(e) in str(error) for e in s.errors())


def test_extra_params_cannot_shadow_built_keys() -> None:
    for key in sorted(BUILT_PARAMS):
        assert bad_settings(with_key(extra_params=((key, "x"),))) == {"extra_params"}


def test_setting_error_reads_as_a_sentence() -> None:
    assert str(SettingError("chunk_ms", "must be from 20 to 250 ms")) == (
        "chunk_ms: must be from 20 to 250 ms"
    )


def test_settings_are_frozen() -> None:
    s = with_key()
    field = "model"
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(s, field, "nova-2")


def test_redact() -> None:
    line = f"connecting with Token {KEY} to wss://host (again: {KEY})"
    assert redact(line, [KEY]) == "connecting with Token *** to wss://host (again: ***)"
    assert redact("abc", ["", "zzz"]) == "abc"
    assert redact("the key abcdef", ["abc", "abcdef"]) == "the key ***"
    assert redact("nothing here", []) == "nothing here"


terms = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), min_size=1, max_size=12
).filter(lambda t: t.strip() != "")


@settings(max_examples=150)
@given(
    sample_rate=st.integers(8000, 192000),
    endpointing=st.none() | st.just(False) | st.integers(0, 10_000),
    utterance_end_ms=st.none() | st.integers(1000, 10_000),
    punctuate=st.none() | st.booleans(),
    smart_format=st.booleans(),
    diarize=st.booleans(),
    keyterms=st.lists(terms, max_size=5).map(tuple),
    tags=st.lists(terms, max_size=3),
)
def test_url_round_trips_through_a_query_parser(
    sample_rate: int,
    endpointing: int | bool | None,
    utterance_end_ms: int | None,
    punctuate: bool | None,
    smart_format: bool,
    diarize: bool,
    keyterms: tuple[str, ...],
    tags: list[str],
) -> None:
    s = with_key(
        sample_rate=sample_rate,
        endpointing=endpointing,
        utterance_end_ms=utterance_end_ms,
        punctuate=punctuate,
        smart_format=smart_format,
        diarize=diarize,
        keyterms=keyterms,
        extra_params=tuple(("tag", t) for t in tags),
    )
    assert s.errors() == ()
    url = s.listen_url()
    assert url.startswith(DEEPGRAM_URL + "?")
    assert parse_qsl(urlsplit(url).query) == s.query_params()
    assert " " not in url and KEY not in url
    # Python's spellings never leak into the values we build (user text may say anything)
    user_text = set(keyterms) | set(tags)
    built = [v for k, v in parse_qsl(urlsplit(url).query) if v not in user_text]
    assert not {"True", "False", "None"} & set(built)
