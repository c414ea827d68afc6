"""Both sides of a call, end to end: `captioner listen --call` on a virtual microphone and
virtual speakers (two PulseAudio sources), captioned by the embedded Whisper engine.

Two different sentences are spoken at the same time, one into the microphone and one out of
the speakers; each must come back whole, under its own label, on screen and in the exports.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import jiwer
import pytest

from testkit.virtual_mic import SPEAKERS, VirtualMic, make_speech_wav
from tests.test_cli import listen_live, words_of

# Sentences Whisper base hears right from espeak whatever silence precedes them: the ones used
# before ("The weather is lovely today", "by Friday afternoon") were misheard by the batch
# decode itself at some leading silences, so these tests failed now and then under load.
MINE = "Good morning everyone. We will walk to the river after lunch."
THEIRS = "Please send me the report before the meeting on Friday."


async def start_listen(mic: VirtualMic, *args: str) -> asyncio.subprocess.Process:
    proc, seen = await listen_live(mic, "--call", "--device", "pulse", *args)
    names = args[args.index("--names") + 1].split(",") if "--names" in args else ["You", "Others"]
    described = f"{names[0]}: Microphone", f"{names[1]}: System audio"
    assert any(all(part in line for part in described) for line in seen), seen
    return proc


async def stop(proc: asyncio.subprocess.Process) -> tuple[str, str]:
    await asyncio.sleep(2.5)  # the last words' endpoint
    proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode(), err.decode()


def said(lines: list[str], label: str) -> str:
    return " ".join(words_of([ln.split(":", 1)[1] for ln in lines if ln.startswith(f"{label}:")]))


KEY_WORDS = {
    MINE: ("morning", "river", "lunch"),
    THEIRS: ("please", "send", "report", "meeting"),
}


def close_to(reference: str, heard: str) -> bool:
    """The sentences in `reference` came back: every key word of each, and most of the rest.

    espeak through a sound server, both sides at once on one busy decoder, is misheard now and
    then ("walk" as "work"); whole words missing or on the wrong side are what these tests are
    about."""
    keys = [key for sentence, words in KEY_WORDS.items() if sentence in reference for key in words]
    return all(word in heard.split() for word in keys) and (
        jiwer.wer(" ".join(words_of([reference])), heard) <= 0.4
    )


async def test_each_side_of_a_call_comes_back_under_its_own_label(
    call_virtual_mic: VirtualMic, tmp_path: Path
) -> None:
    mine = make_speech_wav(tmp_path / "mine.wav", MINE)
    theirs = make_speech_wav(tmp_path / "theirs.wav", THEIRS)
    txt, js = tmp_path / "call.txt", tmp_path / "call.json"
    proc = await start_listen(call_virtual_mic, "--export", f"txt:{txt}", "--export", f"json:{js}")
    playing = [
        await asyncio.to_thread(call_virtual_mic.play, mine, wait=False),
        await asyncio.to_thread(call_virtual_mic.play, theirs, wait=False, sink=SPEAKERS),
    ]
    for player in playing:  # both at once: the two sides talk over each other
        await asyncio.to_thread(call_virtual_mic.wait_played, player)
    out, _ = await stop(proc)
    lines = out.splitlines()
    assert all(ln.startswith(("You: ", "Others: ")) for ln in lines), lines
    assert close_to(MINE, said(lines, "You")), lines
    assert close_to(THEIRS, said(lines, "Others")), lines
    assert "friday" not in said(lines, "You") and "river" not in said(lines, "Others")
    # the exports say the same, with the channel index in JSON
    assert txt.read_text().splitlines() == lines
    document = json.loads(js.read_text())
    assert document["channel_names"] == ["You", "Others"]
    sides = {(u["channel"], u["speaker_label"]) for u in document["utterances"]}
    assert sides == {(0, "You"), (1, "Others")}


@pytest.mark.slow
async def test_speakers_unplugged_mid_call_the_microphone_keeps_captioning(
    call_virtual_mic: VirtualMic, tmp_path: Path
) -> None:
    theirs = make_speech_wav(tmp_path / "theirs.wav", THEIRS)
    mine = make_speech_wav(tmp_path / "mine.wav", MINE)
    proc = await start_listen(call_virtual_mic, "--names", "Ana,Support")
    await asyncio.to_thread(call_virtual_mic.play, theirs, sink=SPEAKERS)
    await asyncio.sleep(1.5)
    await asyncio.to_thread(call_virtual_mic.remove_speakers)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(call_virtual_mic.play, mine)
    out, err = await stop(proc)
    lines = out.splitlines()
    # the sentence before the unplugging, under Support (key words: espeak through a sound
    # server is misheard now and then)
    first = said(lines[:1], "Support").split()
    assert sum(w in first for w in ("please", "send", "report", "meeting")) >= 3, lines
    assert close_to(MINE, said(lines, "Ana")), lines  # after the loss: nothing lost
    # the sound server moved the lost monitor's stream to the microphone: that copy is
    # recognised within about a second and a half and muted (what it caught before shows
    # once more, under Support), and the input is reported lost
    assert "Support: System audio lost" in err and "records the same sound as Ana" in err, err
    copied = said(lines[1:], "Support").split()
    assert len(copied) <= 6, lines


@pytest.mark.slow
async def test_speakers_heard_by_the_microphone_are_captioned_once_under_others(
    call_virtual_mic: VirtualMic, tmp_path: Path
) -> None:
    """No headset: the far side plays from the speakers and reaches the microphone too, later,
    quieter and coloured by the room (sox: 80 ms delay, reverb, noise)."""
    far = make_speech_wav(tmp_path / "far.wav", f"{THEIRS} {LONGER}", rate=48000)
    echo = tmp_path / "echo.wav"
    await asyncio.to_thread(
        subprocess.run,
        ["sox", str(far), "-r", "16000", str(echo), "pad", "0.08", "reverb", "30", "vol", "0.4"],
        check=True,
    )
    proc = await start_listen(call_virtual_mic)
    playing = [
        await asyncio.to_thread(call_virtual_mic.play, far, wait=False, sink=SPEAKERS),
        await asyncio.to_thread(call_virtual_mic.play, echo, wait=False),
    ]
    for player in playing:
        await asyncio.to_thread(call_virtual_mic.wait_played, player)
    out, err = await stop(proc)
    lines = out.splitlines()
    assert close_to(f"{THEIRS} {LONGER}", said(lines, "Others")), lines
    assert "A headset would help" in err, err
    # what the microphone heard before the echo was certain (about 2.5 s) shows under You
    # once more; everything after it, only under Others
    assert len(said(lines, "You").split()) <= 8, lines


LONGER = "Then we can talk about the budget for next year and the new office."


async def test_inputs_that_make_no_call_are_usage_errors(tmp_path: Path) -> None:
    from tests.test_cli import captioner

    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")
    for args, said in (
        (["--call", "--file", str(wav)], "--call takes the microphone"),
        (["--names", "A,B"], "--names is for a call"),
        (["--device", "a", "--device", "b", "--device", "c"], "at most two inputs"),
        (["--file", str(wav), "--file", str(wav), "--fast"], "--fast is for one file"),
    ):
        run = await captioner("listen", *args, "--url", "ws://127.0.0.1:9/v1/listen")
        assert run.code == 2, (args, run.err)
        assert said in run.err, (args, run.err)
