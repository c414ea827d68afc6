"""Hostile servers and faults, against `captioner listen` as a user runs it (a real process).

Each test plays one class of bad input from the scripted emulator (numbers at the edges of
JSON, duplicated headers, the key echoed back, escape sequences, redirects, connections that
die at once, streams that end before the last audio was transcribed) and checks what a person
would see: no traceback, no key, no raw escape sequence, a clear message and the right exit
code, and every word the server did transcribe still on stdout and in the export.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from testkit.deepgram_emulator import (
    Accept,
    AfterAudio,
    DeepgramEmulator,
    Drop,
    Refuse,
    Script,
    counting_words,
)
from tests.test_cli import KEY, captioner, noise_wav, words_of

ESCAPES = ("\x1b]0;owned\x07", "\x1b[2J", "\x1b[31m", "\x9b1;1H", "\x07", "\u202e")


def results(start: float, duration: float, words: list[dict[str, object]], **extra: object) -> str:
    transcript = " ".join(str(w.get("punctuated_word", w.get("word"))) for w in words)
    message = {
        "type": "Results",
        "channel_index": [0, 1],
        "start": start,
        "duration": duration,
        "is_final": True,
        "speech_final": True,
        "channel": {
            "alternatives": [{"transcript": transcript, "confidence": 0.9, "words": words}]
        },
    }
    message.update(extra)
    return json.dumps(message)


def word(text: str, start: float, end: float) -> dict[str, object]:
    return {"word": text, "start": start, "end": end, "confidence": 0.9, "punctuated_word": text}


def no_traceback(err: str) -> None:
    """No Python traceback and no bare exception line (`OverflowError: ...`) on stderr."""
    assert "Traceback" not in err, err
    assert not re.search(r"^[\w.]*(Error|Exception)\b", err, re.MULTILINE), err


async def listen(emu: DeepgramEmulator, wav: Path, *extra: str, limit: float = 60) -> object:
    return await captioner(
        "listen", "--file", str(wav), "--fast", "--url", emu.url, "--api-key", KEY, *extra,
        limit=limit,
    )  # fmt: skip


# ---------------------------------------------------------------------- numbers at the edges

HUGE = (1e308, -1e308, 1.7976931348623157e308, 4e18, -0.5, 31_536_001)


@pytest.mark.parametrize("value", HUGE)
async def test_absurd_numbers_are_ignored_and_the_session_goes_on(
    tmp_path: Path, value: float
) -> None:
    wav = noise_wav(tmp_path / "n.wav", 6.0)
    hostile = [
        results(value, 1.0, [word("junk", 0.1, 0.2)]),
        results(1.0, 1.0, [word("junk", value, 0.2)]),
        results(1.0, 1.0, [word("junk", 0.1, value)]),
        json.dumps({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": value}),
        json.dumps({"type": "SpeechStarted", "channel": [0, 1], "timestamp": value}),
        json.dumps({"type": "Metadata", "duration": value, "channels": 1}),
    ]
    script = Script(generate=True, timeline=[AfterAudio(1.0, hostile)])
    export = tmp_path / "out.srt"
    async with DeepgramEmulator(script) as emu:
        run = await listen(
            emu, wav, "--export", f"srt:{export}", "--export", f"json:{tmp_path / 'o.json'}"
        )
    no_traceback(run.err)
    assert run.code == 0, run.err
    assert "junk" not in run.out
    assert words_of(run.lines) == counting_words(12)  # every real word survived
    assert export.exists() and "One two three" in export.read_text()


# ---------------------------------------------------------------------- headers


async def test_a_duplicated_request_id_header_on_the_upgrade_is_read(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 3.0)
    script = Script(response_headers=(("dg-request-id", "second-id"), ("dg-error", "x")))
    async with DeepgramEmulator(script) as emu:
        run = await listen(emu, wav)
    no_traceback(run.err)
    assert run.code == 0, run.err
    assert words_of(run.lines) == counting_words(6)


async def test_a_duplicated_header_on_a_refusal_still_reads_as_the_refusal(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 3.0)
    refusal = Refuse(401, headers=(("dg-request-id", "again"), ("dg-error", "Bad key, twice.")))
    async with DeepgramEmulator(Script(handshakes=[refusal])) as emu:
        run = await listen(emu, wav)
    no_traceback(run.err)
    assert run.code == 3, run.err
    assert "Invalid credentials" in run.err


# ---------------------------------------------------------------------- the key echoed back


async def test_the_key_echoed_anywhere_never_reaches_the_user(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 6.0)
    echo = f"your key {KEY} is fine"
    steps = [
        AfterAudio(
            1.0,
            [
                json.dumps({"type": "Error", "description": echo, "message": echo}),
                json.dumps({"type": "Warning", "description": echo}),
                results(0.0, 0.5, [word(KEY, 0.1, 0.2)]),
                json.dumps({"type": echo}),
            ],
        )
    ]
    export = tmp_path / "out.txt"
    async with DeepgramEmulator(
        Script(generate=True, timeline=steps, close_after_audio=(4.0, 1011, echo))
    ) as emu:
        run = await listen(emu, wav, "--export", f"txt:{export}", "-v")
    no_traceback(run.err)
    assert KEY not in run.out + run.err + export.read_text()
    assert "***" in run.out + run.err  # masked, not silently dropped


async def test_the_key_in_a_refusal_is_masked(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 3.0)
    echo = f"key {KEY} is not valid"
    refusal = Refuse(401, dg_error=echo, err_msg=echo)
    async with DeepgramEmulator(Script(handshakes=[refusal])) as emu:
        run = await listen(emu, wav)
    assert run.code == 3
    assert KEY not in run.out + run.err
    assert "key *** is not valid" in run.err


# ---------------------------------------------------------------------- escape sequences


async def test_escape_sequences_from_the_server_are_never_printed(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 6.0)
    bad = "".join(ESCAPES)
    steps = [
        AfterAudio(
            1.0,
            [
                results(0.0, 0.5, [word(f"evil{bad}word", 0.1, 0.2)]),
                json.dumps({"type": "Error", "description": f"boom{bad}"}),
            ],
        )
    ]
    export = tmp_path / "out.vtt"
    async with DeepgramEmulator(
        Script(generate=True, timeline=steps, close_after_audio=(3.0, 1011, f"gone{bad}"))
    ) as emu:
        run = await listen(emu, wav, "--export", f"vtt:{export}", "--interim", "-v")
    no_traceback(run.err)
    everything = run.out + run.err + export.read_text()
    for sequence in ESCAPES:
        assert sequence not in everything
    assert "evilword" in run.out


async def test_a_refusal_body_with_escapes_is_cleaned(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 3.0)
    refusal = Refuse(403, body="\x1b[2Jforbidden\x1b]0;t\x07", dg_error="")
    async with DeepgramEmulator(Script(handshakes=[refusal])) as emu:
        run = await listen(emu, wav)
    assert run.code == 3
    assert "\x1b" not in run.err and "forbidden" in run.err


# ---------------------------------------------------------------------- redirects


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirects_are_refused_and_named(tmp_path: Path, status: int) -> None:
    wav = noise_wav(tmp_path / "n.wav", 3.0)
    async with DeepgramEmulator(Script()) as elsewhere:
        refusal = Refuse(status, headers=(("Location", elsewhere.url),))
        async with DeepgramEmulator(Script(handshakes=[refusal] * 5)) as emu:
            run = await listen(emu, wav)
    no_traceback(run.err)
    assert run.code == 4, run.err
    assert "redirect" in run.err.lower() and elsewhere.url in run.err
    assert not elsewhere.connections  # the audio never went there
    assert len(emu.connections) == 1  # and the same place was not asked again


async def test_a_redirect_to_the_same_place_is_not_followed_in_a_loop(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 3.0)
    async with DeepgramEmulator(Script()) as emu:
        emu.script.handshakes = [Refuse(302, headers=(("Location", emu.url),))] * 50
        run = await listen(emu, wav)
    assert run.code == 4
    assert len(emu.connections) == 1


# ---------------------------------------------------------------------- connections that die


async def test_give_up_after_fires_when_every_connection_dies_at_once(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 60.0)
    script = Script(handshake_hook=lambda record: Accept(timeline=[Drop()]))
    started = time.monotonic()
    async with DeepgramEmulator(script) as emu:
        run = await captioner(
            "listen", "--file", str(wav), "--url", emu.url, "--api-key", KEY,
            "--give-up-after", "3", limit=40,
        )  # fmt: skip
    no_traceback(run.err)
    assert run.code == 5, run.err
    assert "Gave up" in run.err
    assert time.monotonic() - started < 25
    assert len(emu.connections) >= 2


async def test_give_up_after_fires_when_every_connection_closes_1011(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 60.0)
    script = Script(handshake_hook=lambda record: Accept(close_after_audio=(0.0, 1011, "x")))
    async with DeepgramEmulator(script) as emu:
        run = await captioner(
            "listen", "--file", str(wav), "--url", emu.url, "--api-key", KEY,
            "--give-up-after", "3", limit=40,
        )  # fmt: skip
    assert run.code == 5, run.err
    assert "Gave up" in run.err


# ---------------------------------------------------------------------- the unconfirmed tail


@pytest.mark.parametrize("mode", ["drop", "close-1011", "ignore", "close-1000"])
async def test_a_tail_the_server_never_transcribed_is_sent_again(tmp_path: Path, mode: str) -> None:
    """The first connection ends badly after CloseStream; the session reconnects, sends the
    unconfirmed tail again, and this time it is transcribed: exit 0, no word lost."""
    wav = noise_wav(tmp_path / "n.wav", 5.0)
    script = Script(
        final_every=100.0, handshakes=[Accept(on_close_stream=mode), Accept()]
    )  # no final until the flush
    async with DeepgramEmulator(script) as emu:
        run = await listen(emu, wav, limit=40)
    no_traceback(run.err)
    assert run.code == 0, run.err
    assert words_of(run.lines) == counting_words(10)
    assert len(emu.connections) == 2


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["drop", "close-1011", "ignore", "close-1000"])
async def test_a_tail_never_transcribed_ends_with_an_error_that_says_how_much(
    tmp_path: Path, mode: str
) -> None:
    wav = noise_wav(tmp_path / "n.wav", 5.0)
    script = Script(final_every=2.0, on_close_stream=mode)
    async with DeepgramEmulator(script) as emu:
        run = await listen(emu, wav, limit=60)
    no_traceback(run.err)
    assert run.code == 5, run.err
    assert "not transcribed" in run.err
    assert "finished" not in run.err.lower().split("captioner: stopped")[-1]
    # what was transcribed is kept: the finals that arrived before the end (at least the
    # first at 2 s), then at most the interim the last try heard of the tail
    confirmed = words_of(run.lines)
    assert confirmed[:4] == counting_words(4)
    assert len(confirmed) <= 10
