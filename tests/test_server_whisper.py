"""Real speech through the offline server with the Whisper base model.

espeak-ng sentences (generated into a temp folder at test time) are streamed faster than real
time to a `python -m captioner.server serve` child, first with a raw websockets client, then
with the official Deepgram SDK. Nothing is skipped: without the model the tests fail and say to
run `captioner models fetch`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jiwer
import numpy as np
import pytest
import soxr
from websockets.asyncio.client import connect

from captioner.server import cli, models
from captioner.server.app import MAX_BATCH_BYTES_SECONDS
from captioner.server.streaming import Tuning
from testkit import speech_corpus
from testkit.ceiling import BatchDecoder
from testkit.server_audio import (
    RATE,
    SENTENCES,
    Received,
    SpeechTrack,
    collect,
    normalise,
    pcm16,
    silence,
    speech_track,
    stream,
)
from testkit.stream_metrics import word_error, words_lost

pytestmark = pytest.mark.e2e

STARTUP_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def whisper_model_dir() -> Path:
    try:
        return models.require_model_dir()
    except models.ModelError as exc:
        pytest.fail(f"Whisper model missing: run captioner models fetch ({exc})", pytrace=False)


@pytest.fixture(scope="session")
def whisper_server(
    whisper_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real `serve` child on a free port; yields its listen URL."""
    log_path = tmp_path_factory.mktemp("whisper-server") / "stderr.txt"
    with log_path.open("w") as stderr:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "captioner.server",
                "serve",
                "--port",
                "0",
                "--model-dir",
                str(whisper_model_dir),
                "--parent-pid",
                str(os.getpid()),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # blocks until ready or exit
        if not line.startswith(cli.LISTENING_PREFIX):
            child.wait(STARTUP_TIMEOUT)
            pytest.fail(f"server did not start:\n{log_path.read_text()}", pytrace=False)
        yield line.removeprefix(cli.LISTENING_PREFIX).strip()
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


@pytest.fixture(scope="session")
def track(tmp_path_factory: pytest.TempPathFactory) -> SpeechTrack:
    folder = tmp_path_factory.mktemp("espeak")
    return speech_track(SENTENCES[:8], folder, gap=0.9)


def wer(references: list[str], hypothesis: str) -> float:
    return float(jiwer.wer(normalise(" ".join(references)), normalise(hypothesis)))


async def run_session(
    listen_url: str, audio: bytes, params: dict[str, Any], *, speed: float | None, rate: int = RATE
) -> Received:
    query = {"encoding": "linear16", "sample_rate": str(rate), **params}
    async with connect(f"{listen_url}?{urlencode(query)}") as ws:
        received = Received()
        reader = asyncio.create_task(collect(ws, received))
        channels = int(params.get("channels", 1))
        await stream(
            ws,
            audio,
            chunk_bytes=rate // 10 * 2 * channels,
            speed=speed,
            bytes_per_second=2 * rate * channels,
        )
        await ws.send(json.dumps({"type": "CloseStream"}))
        await asyncio.wait_for(reader, 60)
    return received


@pytest.mark.slow
async def test_finals_have_a_low_word_error_rate(whisper_server: str, track: SpeechTrack) -> None:
    params = {
        "interim_results": "true",
        "punctuate": "true",
        "vad_events": "true",
        "utterance_end_ms": "1000",
        "endpointing": "300",
    }
    started = time.monotonic()
    received = await run_session(whisper_server, pcm16(track.audio), params, speed=4.0)
    elapsed = time.monotonic() - started

    error = wer(track.texts, received.final_text())
    assert error < 0.15, (error, received.final_text())
    assert received.close_code == 1000
    assert received.messages[-1]["type"] == "Metadata"
    # one speech_final per sentence (espeak pauses inside a sentence may add a few)
    speech_finals = [m for m in received.finals if m["speech_final"]]
    assert len(track.texts) <= len(speech_finals) <= len(track.texts) + 3
    assert len(received.of("UtteranceEnd")) >= len(track.texts) - 1
    assert len(received.of("SpeechStarted")) >= len(track.texts)
    assert len(received.interims) >= len(track.texts)
    words = [w for m in received.finals for w in m["channel"]["alternatives"][0]["words"]]
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)
    for w in words:
        assert w["start"] <= w["end"] and 0.0 <= w["confidence"] <= 1.0
        assert w["word"] == w["word"].lower() and w["punctuated_word"]
    # every sentence's words sit inside that sentence's audio (give or take the padding)
    for (begin, end), text in zip(track.spans, track.texts, strict=True):
        inside = [w for w in words if begin - 0.4 <= w["start"] <= end + 0.4]
        assert abs(len(inside) - len(normalise(text).split())) <= 3, (text, inside)
    assert elapsed < 1.5 * track.seconds / 4.0 + 10


async def test_official_deepgram_sdk_parses_every_message(
    whisper_server: str, track: SpeechTrack
) -> None:
    with warnings.catch_warnings():
        # the SDK imports websockets' deprecated legacy client
        warnings.simplefilter("ignore", DeprecationWarning)
        from deepgram import AsyncDeepgramClient
        from deepgram.environment import DeepgramClientEnvironment
        from deepgram.listen.v1.types import (
            ListenV1Metadata,
            ListenV1Results,
            ListenV1SpeechStarted,
            ListenV1UtteranceEnd,
        )

    base = whisper_server.removesuffix("/v1/listen")
    environment = DeepgramClientEnvironment(
        base=base.replace("ws://", "http://"),
        production=base,
        agent=base,
        agent_rest=base.replace("ws://", "http://"),
    )
    client = AsyncDeepgramClient(api_key="not-needed-on-loopback", environment=environment)
    end = round(track.spans[2][1] * RATE) + RATE
    audio = pcm16(track.audio[:end])
    messages: list[Any] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        async with client.listen.v1.connect(
            model="nova-3",
            encoding="linear16",
            sample_rate=RATE,
            interim_results="true",
            smart_format="true",
            vad_events="true",
            utterance_end_ms=1000,
            endpointing=300,
        ) as connection:

            async def read() -> None:
                async for message in connection:
                    messages.append(message)

            reader = asyncio.create_task(read())
            for i in range(0, len(audio), 3200):
                await connection.send_media(audio[i : i + 3200])
                await asyncio.sleep(0.01)
            await connection.send_close_stream()
            await asyncio.wait_for(reader, 60)

    kinds = {type(m) for m in messages}
    assert kinds <= {ListenV1Results, ListenV1Metadata, ListenV1SpeechStarted, ListenV1UtteranceEnd}
    assert {ListenV1Results, ListenV1Metadata, ListenV1SpeechStarted} <= kinds
    assert isinstance(messages[-1], ListenV1Metadata)
    finals = [m for m in messages if isinstance(m, ListenV1Results) and m.is_final]
    text = " ".join(m.channel.alternatives[0].transcript for m in finals)
    assert wer(track.texts[:3], text) < 0.2, text
    word = finals[0].channel.alternatives[0].words[0]
    assert word.punctuated_word and word.end >= word.start
    assert messages[-1].request_id == finals[0].metadata.request_id
    assert messages[-1].duration == pytest.approx(len(audio) / 2 / RATE, abs=1e-3)


async def test_long_speech_is_split_so_finals_do_not_wait(
    whisper_server: str, tmp_path: Path
) -> None:
    texts = list(SENTENCES[8:12])
    long = speech_track(texts, tmp_path, lead=0.3, gap=0.15, tail=1.5)  # no pause >= 0.5 s
    params = {"endpointing": "500", "punctuate": "true"}
    received = await run_session(whisper_server, pcm16(long.audio), params, speed=4.0)
    spoken = [m for m in received.finals if m["channel"]["alternatives"][0]["words"]]
    assert len(spoken) >= 2
    assert not spoken[0]["speech_final"]
    # open speech settles after `max_open_s`, at the server's next decode: on a machine that
    # keeps up that is within half a second, on one that falls behind at 4x pace it is after
    # the backlog it hands the recogniser next (at most MAX_BATCH_BYTES_SECONDS of audio)
    longest = Tuning().max_open_s + MAX_BATCH_BYTES_SECONDS
    assert all(m["duration"] <= longest for m in received.finals)
    speech_end = long.spans[-1][1]
    assert spoken[0]["start"] + spoken[0]["duration"] < speech_end - 3
    assert wer(texts, received.final_text()) < 0.25, received.final_text()


async def test_stereo_48k_speech_is_mixed_down(whisper_server: str, track: SpeechTrack) -> None:
    begin, end = track.spans[3]
    clip = np.concatenate(
        [silence(0.3), track.audio[round(begin * RATE) : round(end * RATE)], silence(0.8)]
    )
    high = soxr.resample(clip, RATE, 48_000).astype(np.float32)
    params = {"channels": "2", "punctuate": "true"}
    received = await run_session(whisper_server, pcm16(high, 2), params, speed=4.0, rate=48_000)
    assert wer([track.texts[3]], received.final_text()) < 0.2, received.final_text()
    assert received.of("Metadata")[0]["channels"] == 2


@pytest.fixture(scope="session")
def batch_decoder(whisper_model_dir: Path) -> BatchDecoder:
    return BatchDecoder(whisper_model_dir)


def test_the_batch_ceiling_is_the_same_in_every_process(batch_decoder: BatchDecoder) -> None:
    """faster-whisper decodes a window again by sampling where its beam search fails a quality
    check, from a random generator that each process seeds its own way. On the telephone call
    most windows fall back: one model seeded 1 and another seeded 3 wrote "I needed to design
    ... I heard of deep" and "I need to design ... I heard a beep". The ceiling must not depend
    on what ran before it. Here every draw is a sample (temperature 1, one candidate), so two
    seeds give different words unless the decoder sets its own: JFK came out "My fellow" and
    "And so my fellow America, ask not what your country can do for you." """
    import ctranslate2

    audio = speech_corpus.load("jfk").audio
    sampled = {"vad_filter": False, "temperature": 1.0, "best_of": 1}
    ctranslate2.set_random_seed(1)
    first = batch_decoder.transcribe(audio, **sampled)
    ctranslate2.set_random_seed(3)
    assert batch_decoder.transcribe(audio, **sampled) == first


def test_the_ceiling_of_one_audio_is_never_served_for_another(batch_decoder: BatchDecoder) -> None:
    """The bench once kept ceilings under a key of every Nth byte of the samples, which for
    audio made from 16-bit samples is all zeros whenever N is a multiple of four: the sonnet in
    reverb was scored against the clean sonnet's batch decode. Two audios of the same length
    and the same 16-bit grid, one with its second half silent, get their own ceilings."""
    jfk = speech_corpus.load("jfk")
    assert jfk.text is not None
    # on the 16-bit grid (as sox writes it), N = 40: the old key saw only zero bytes
    whole = (np.round(jfk.audio[: 4096 * 40] * 32768) / 32768).astype(np.float32)
    half = whole.copy()
    half[len(half) // 2 :] = 0.0
    first = batch_decoder.ceiling(whole, jfk.text)
    assert batch_decoder.ceiling(half, jfk.text) != first
    assert batch_decoder.ceiling(whole, jfk.text) == first


REAL_SPEECH_PARAMS = {
    "interim_results": "true",
    "punctuate": "true",
    "endpointing": "300",
    "utterance_end_ms": "1000",
    "language": "en",
}


@pytest.fixture(scope="session")
def streaming_engine(whisper_model_dir: Path) -> Any:
    """The engine `captioner serve` runs, loaded in this process with the server's defaults."""
    from captioner.server.whisper import WhisperEngine

    engine = WhisperEngine(whisper_model_dir, cpu_threads=cli.default_threads())
    engine.warm_up()
    return engine


def test_the_engine_holds_numpys_blas_to_one_thread(whisper_model_dir: Path) -> None:
    """An idle OpenBLAS thread spins through every decode (twice the CPU for the same wall
    time on 2 cores), so loading the engine limits BLAS to one thread. Checked in a fresh
    process that first allows two, whatever this machine's core count."""
    script = (
        "import sys\n"
        "from threadpoolctl import threadpool_info, threadpool_limits\n"
        "threadpool_limits(limits=2, user_api='blas')\n"
        "from captioner.server.whisper import WhisperEngine\n"
        "before = [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']\n"
        "WhisperEngine(sys.argv[1], cpu_threads=1)\n"
        "after = [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']\n"
        "print(before, after)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(whisper_model_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    before, after = done.stdout.strip().split(" ", 1)
    assert before == "[2]", done.stdout  # numpy's BLAS was found, and allowed two threads
    assert after == "[1]", done.stdout


def stream_in_process(engine: Any, audio: np.ndarray, piece_s: float = 0.1) -> Received:
    """Every 100 ms chunk (or `piece_s`) through the server's pipeline, one at a time, as a
    server that keeps up receives them: what the recogniser decides, independent of how fast
    this machine is."""
    from captioner.server.pipeline import ListenPipeline
    from captioner.server.query import parse_query

    query = {**REAL_SPEECH_PARAMS, "encoding": "linear16", "sample_rate": str(RATE)}
    pipeline = ListenPipeline(parse_query(urlencode(query)), engine, "test")
    data = pcm16(audio)
    step = round(RATE * piece_s) * 2
    received = Received()
    try:
        for offset in range(0, len(data), step):
            received.messages += pipeline.push_audio(data[offset : offset + step])
        received.messages += pipeline.finish()
    finally:
        pipeline.close()
    return received


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "noisy"), [("sonnet", False), ("austen", True)], ids=["sonnet", "austen-pink-noise"]
)
def test_real_speech_finals_come_close_to_the_batch_decode(
    streaming_engine: Any, batch_decoder: BatchDecoder, name: str, noisy: bool
) -> None:
    """A person reading (LibriVox: Sonnet 1 as recorded, and five sentences of Austen with
    pink noise at 12 dB SNR), through the server's pipeline chunk by chunk: the finals' word
    error rate stays within 6 points of the same model decoding the whole file at once, at
    most one word the batch decode heard is missing, and words settle while the reader goes
    on. The engine this replaced was 6.5 points off on the sonnet, lost 3 words at utterance
    edges, and settled words only at pauses."""
    speech = speech_corpus.load(name)
    audio = speech_corpus.with_pink_noise(speech.audio) if noisy else speech.audio
    assert speech.text is not None
    received = stream_in_process(streaming_engine, audio)
    ours = received.final_text()
    batch = batch_decoder.ceiling(audio, speech.text)
    assert word_error(speech.text, ours) <= word_error(speech.text, batch) + 0.06, (ours, batch)
    assert words_lost(speech.text, batch, ours) <= 1, (ours, batch)
    spoken = [m for m in received.finals if m["channel"]["alternatives"][0]["words"]]
    assert sum(1 for m in spoken if not m["speech_final"]) >= 5  # not only at pauses


@pytest.mark.slow
def test_real_speech_fed_in_other_pieces_repeats_no_line(streaming_engine: Any) -> None:
    """The sonnet handed to the recogniser 300 ms at a time (a busy server joins what queued):
    once, an endpoint's decode went on past the end of its audio and repeated a 15-word line
    twice more, and all of it became final. No run of four words may appear more often than
    the poem has it."""
    speech = speech_corpus.load("sonnet")
    assert speech.text is not None
    ours = normalise(stream_in_process(streaming_engine, speech.audio, 0.3).final_text()).split()
    poem = normalise(speech.text).split()

    def runs(words: list[str]) -> Counter[tuple[str, ...]]:
        return Counter(tuple(words[i : i + 4]) for i in range(len(words) - 3))

    in_poem = runs(poem)
    repeated = [run for run, n in runs(ours).items() if n > max(1, in_poem[run])]
    assert not repeated, " ".join(ours)
    assert len(ours) <= len(poem) + 5, " ".join(ours)


@pytest.mark.slow
async def test_real_speech_over_the_wire_tiles_the_clock_and_settles_mid_phrase(
    whisper_server: str, batch_decoder: BatchDecoder
) -> None:
    """The same recording sent to `captioner serve` three times faster than it was spoken. A
    server that falls behind decodes what has queued up in bigger steps, so accuracy here
    depends on this machine's speed (bench/stream_quality.py measures it at real pace); what
    must hold on any machine: the final windows tile the clock, words settle while the reader
    goes on, and no phrase is lost."""
    speech = speech_corpus.load("sonnet")
    assert speech.text is not None
    received = await run_session(whisper_server, pcm16(speech.audio), REAL_SPEECH_PARAMS, speed=3.0)
    ours = received.final_text()
    batch = batch_decoder.ceiling(speech.audio, speech.text)
    assert word_error(speech.text, ours) <= word_error(speech.text, batch) + 0.12, ours
    assert words_lost(speech.text, batch, ours) <= 3, (ours, batch)
    finals = received.finals
    for before, after in itertools.pairwise(finals):
        assert before["start"] + before["duration"] == pytest.approx(after["start"], abs=1e-5)
    spoken = [m for m in finals if m["channel"]["alternatives"][0]["words"]]
    assert sum(1 for m in spoken if not m["speech_final"]) >= 3


async def test_detected_language_is_reported_on_every_word(
    whisper_server: str, tmp_path: Path
) -> None:
    """language=multi: Whisper detects the language, and the results say which one, in
    Deepgram's multilingual shape (`languages` on the alternative, `language` on each word).
    The short phrase after the pause, which decoded alone comes out as English ("Good
    morning."), must stay German."""
    from testkit.server_audio import espeak, silence

    long = espeak(
        "Heute ist das Wetter schön, und wir gehen am Nachmittag in den Park.",
        tmp_path,
        "de1",
        voice="de",
    )
    short = espeak("Guten Morgen.", tmp_path, "de2", voice="de")
    audio = np.concatenate([silence(0.5), long, silence(1.5), short, silence(1.5)])
    params = {"language": "multi", "punctuate": "true", "interim_results": "false"}
    received = await run_session(whisper_server, pcm16(audio), params, speed=4.0)
    spoken = [m for m in received.finals if m["channel"]["alternatives"][0]["words"]]
    assert "morgen" in received.final_text().lower(), received.final_text()
    for message in spoken:
        alternative = message["channel"]["alternatives"][0]
        assert alternative["languages"] == ["de"], alternative
        assert {word["language"] for word in alternative["words"]} == {"de"}
    # with a language asked for, nothing is said about languages (as Deepgram does)
    received = await run_session(
        whisper_server, pcm16(audio), {**params, "language": "de"}, speed=4.0
    )
    for message in received.finals:
        alternative = message["channel"]["alternatives"][0]
        assert "languages" not in alternative
        assert all("language" not in word for word in alternative["words"])
