"""How good are the offline engine's live captions on real human speech? Prints a table.

    .venv/bin/python bench/stream_quality.py                 # every recording and variant
    .venv/bin/python bench/stream_quality.py --quick         # clean and noisy sonnet only
    .venv/bin/python bench/stream_quality.py --simulate      # in-process, no real-time waits
    .venv/bin/python bench/stream_quality.py --simulate --exact   # same decisions every run
    .venv/bin/python bench/stream_quality.py --simulate --exact --by-final   # where errors are
    .venv/bin/python bench/stream_quality.py --simulate --exact --offset 13  # the same, 13 ms on
    .venv/bin/python bench/stream_quality.py --simulate --exact --offset 0,7,13   # and the mean
    .venv/bin/python bench/stream_quality.py --invented      # 60 s of noise, music, silence
    .venv/bin/python bench/stream_quality.py --long 60       # server memory over 60 minutes
    .venv/bin/python bench/stream_quality.py --peer          # WhisperLiveKit, same model

Recordings of people with known texts (see `testkit/speech_corpus.py`: a LibriVox reading of
Sonnet 1, five sentences of *Sense and Sensibility*, and a two-person telephone call), each
clean, with pink noise at 12 dB SNR, with room reverb, spoken 1.25x faster (sox tempo), and
sent at twice real time (a client catching up after a reconnect). Each is streamed through
`captioner serve` in 100 ms linear16 chunks with interim results, endpointing=300 and
utterance_end_ms=1000, as the app does, and compared with the ceiling: the same Whisper model
decoding the whole file in one faster-whisper call (beam 5).

Columns (targets in brackets): WER of the finals (batch + 1.5 points), words the batch decode
got right that the finals lost (0), when a word is first shown in its place after its audio
was sent, p50/p90 (0.8 / 1.5 s), when it becomes final, p90 (2.0 s), flicker: shown words
replaced per final word (0.15), server CPU seconds per audio second (0.6) and peak memory
(500 MB).

`--simulate` runs the engine in this process on a simulated clock: audio arrives at its pace,
and a single decoder thread takes what has arrived, as the server does, each step costing its
measured time. It is much faster than the real run and close to it on an idle machine; use it
to compare tunings, and the real run for figures. Its decisions still depend on how long each
decode took (a slow step gathers more audio for the next), so two runs differ by a point or two
of WER on a recording; `--exact` feeds one chunk per step, which makes the WER repeatable: use
it to tell a real improvement from that noise.

`--offset MS` starts every recording MS milliseconds later (silence before it), for the batch
decode and the stream alike. Nobody can hear the difference, but it moves every decode's
window against the speech, so a few words a decode was unsure of come out differently: a
change to the engine that moves the WER by less than runs at a few offsets differ from each
other is noise, not an improvement. Given several (`--offset 0,7,13`), it measures at each
and ends with a table of the labelled recordings' pooled WER at each offset, their mean, and
the mean and range of the finals' distance from the batch decode.

`--by-final` adds a table that splits the labelled recordings' errors by the kind of final
that carried the words (settled mid-phrase by agreement, or at an endpoint), with the batch
decode's errors on the same words of the text beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from captioner.server.streaming import parse_tuning  # noqa: E402
from testkit import speech_corpus  # noqa: E402
from testkit.ceiling import ChildBatchDecoder  # noqa: E402
from testkit.stream_metrics import (  # noqa: E402
    Message,
    Scores,
    Timing,
    errors_by_final,
    score,
)

RATE = 16_000
CHUNK_BYTES = 3200  # 100 ms of 16 kHz int16
PARAMS = {
    "encoding": "linear16",
    "sample_rate": str(RATE),
    "channels": "1",
    "language": "en",
    "interim_results": "true",
    "punctuate": "true",
    "endpointing": "300",
    "utterance_end_ms": "1000",
    "vad_events": "true",
}


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


# ---------------------------------------------------------------------- the ceiling


# ---------------------------------------------------------------------- running


@dataclass
class Run:
    arrivals: list[tuple[float, Message]]
    timing: Timing
    cpu_seconds: float
    peak_mb: float
    audio_seconds: float


def simulate(audio: np.ndarray, pace: float, engine: Any, *, exact: bool = False) -> Run:
    """The server's processor on a simulated clock: chunks arrive at `pace`; one decoder thread
    takes everything that has arrived (up to 5 s), and its results leave when it finishes.

    `exact`: the decoder thread takes one chunk at a time, as on a machine that keeps up, so
    the recogniser's decisions (and the WER) are the same on every run and every machine;
    latencies still count the measured decode times."""
    from captioner.server.pipeline import ListenPipeline
    from captioner.server.query import parse_query

    pipeline = ListenPipeline(parse_query(urlencode(PARAMS)), engine, "simulated")
    data = pcm16(audio)
    chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]
    step = CHUNK_BYTES / 2 / RATE / pace
    arrived = [(i + 1) * step for i in range(len(chunks))]
    out: list[tuple[float, Message]] = []
    free, index, cpu = 0.0, 0, 0.0
    batch_limit = CHUNK_BYTES if exact else 5 * RATE * 2
    while index < len(chunks):
        now = max(free, arrived[index])
        end, size = index, 0
        while end < len(chunks) and arrived[end] <= now + 1e-9 and size < batch_limit:
            size += len(chunks[end])
            end += 1
        wall, clock = time.perf_counter(), time.process_time()
        messages = pipeline.push_audio(b"".join(chunks[index:end]))
        cpu += time.process_time() - clock
        free = now + time.perf_counter() - wall
        out += [(free, m) for m in messages]
        index = end
    wall, clock = time.perf_counter(), time.process_time()
    messages = pipeline.finish()
    cpu += time.process_time() - clock
    free = max(free, arrived[-1]) + time.perf_counter() - wall
    out += [(free, m) for m in messages]
    pipeline.close()
    return Run(out, Timing(0.0, pace), cpu, peak_rss_mb(os.getpid()), len(audio) / RATE)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """`captioner serve` in a child process, as the app starts it."""

    def __init__(self, *extra: str) -> None:
        from captioner.server.cli import LISTENING_PREFIX

        self.process = subprocess.Popen(
            [sys.executable, "-m", "captioner.server", "serve", "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith(LISTENING_PREFIX):
            self.process.wait()
            raise SystemExit("the server did not start (is the model installed?)")
        self.url = line.removeprefix(LISTENING_PREFIX).strip()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


PEER_PROGRAM = ROOT / ".venv-peer" / "bin" / "whisperlivekit-server"
PEER_START_S = 600.0  # loading torch and the model, and its warm-up decode


class PeerServer:
    """A peer beside us: WhisperLiveKit's server (its own virtualenv, made by `bench/peer-setup`;
    an optional benchmark dependency, never a test one), with the same Whisper base files,
    faster-whisper and its LocalAgreement policy, English, raw PCM, on loopback. It speaks
    Deepgram's `/v1/listen`, so the same client streams the same audio to it and the same
    scoring applies. Its warm-up decode reads a local recording (by default it downloads one)."""

    def __init__(self, program: Path = PEER_PROGRAM) -> None:
        import socket

        from captioner.server import models

        if not program.exists():
            raise SystemExit(f"no peer at {program}: run bench/peer-setup first")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [
                str(program),
                *("--host", "127.0.0.1", "--port", str(port)),
                *("--model_dir", str(models.require_model_dir())),
                *("--backend", "faster-whisper", "--backend-policy", "localagreement"),
                *("--lan", "en", "--pcm-input"),
                *("--warmup-file", str(speech_corpus.cache_dir() / "jfk.wav")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + PEER_START_S
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"the peer exited with {self.process.returncode} while starting")
            if time.monotonic() > deadline:
                self.close()
                raise SystemExit(f"the peer did not listen within {PEER_START_S:.0f} s")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        self.url = f"ws://127.0.0.1:{port}/v1/listen"

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def stream(url: str, audio: np.ndarray, pace: float, pid: int | None) -> Run:
    """Send at `pace` in 100 ms chunks, CloseStream, and collect until the server closes."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    data = pcm16(audio)
    out: list[tuple[float, Message]] = []
    cpu_before = cpu_seconds(pid) if pid else 0.0
    async with connect(f"{url}?{urlencode(PARAMS)}", max_size=None) as ws:

        async def receive() -> None:
            try:
                async for raw in ws:
                    out.append((time.monotonic(), json.loads(raw)))
            except ConnectionClosed:
                pass

        reader = asyncio.create_task(receive())
        started = time.monotonic()
        for sent, i in enumerate(range(0, len(data), CHUNK_BYTES)):
            await ws.send(data[i : i + CHUNK_BYTES])
            due = started + (sent + 1) * CHUNK_BYTES / 2 / RATE / pace
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await ws.send(json.dumps({"type": "CloseStream"}))
        await reader
    cpu = (cpu_seconds(pid) - cpu_before) if pid else float("nan")
    # the first chunk left at `started`, after 100 ms of audio had been captured
    timing = Timing(started - CHUNK_BYTES / 2 / RATE / pace, pace)
    return Run(out, timing, cpu, peak_rss_mb(pid) if pid else float("nan"), len(audio) / RATE)


# ---------------------------------------------------------------------- the table


CONDITIONS = ("clean", "noisy", "reverb", "fast talker", "2x pace")


def condition_audio(speech: speech_corpus.Speech, condition: str) -> tuple[np.ndarray, float]:
    if condition == "2x pace":
        return speech.audio, 2.0
    return speech_corpus.VARIANTS[condition](speech.audio), 1.0


def delayed(audio: np.ndarray, offset_ms: float) -> np.ndarray:
    """`audio` starting `offset_ms` milliseconds later: silence first."""
    silence = np.zeros(round(offset_ms * speech_corpus.RATE / 1000), dtype=audio.dtype)
    return np.concatenate([silence, audio])


def row(name: str, condition: str, run: Run, scores: Scores, labelled: bool = True) -> str:
    batch = "-" if scores.batch_wer is None else f"{scores.batch_wer * 100:.1f} %"
    if not labelled:
        batch = "(reference)"
    return (
        f"| {name} | {condition} | {batch} | {scores.wer * 100:.1f} % | {scores.words_lost} | "
        f"{scores.pct(scores.first_shown, 50):.2f} / {scores.pct(scores.first_shown, 90):.2f} s | "
        f"{scores.pct(scores.final_latency, 50):.2f} / "
        f"{scores.pct(scores.final_latency, 90):.2f} s | {scores.flicker:.2f} | "
        f"{run.cpu_seconds / run.audio_seconds:.2f} | {run.peak_mb:.0f} MB |"
    )


HEADER = (
    "| recording | condition | batch WER | finals WER | words lost | first shown p50 / p90 | "
    "final p50 / p90 | flicker | CPU s / audio s | peak memory |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def invented(server: Server | PeerServer | None, engine: Any) -> str:
    """60 s of noise, music and near-silence: every final word is an invented one."""
    audio = speech_corpus.not_speech(60.0)
    if engine is not None:
        run = simulate(audio, 1.0, engine)
    else:
        assert server is not None
        run = asyncio.run(stream(server.url, audio, 1.0, server.process.pid))
    words = [
        w["punctuated_word"]
        for _, m in run.arrivals
        if m.get("type") == "Results" and m["is_final"]
        for w in m["channel"]["alternatives"][0]["words"]
    ]
    shown = "; ".join(words) if words else "none"
    return (
        "| audio | invented words in the finals | which |\n|---|---|---|\n"
        f"| 20 s pink noise, 20 s music, 20 s hiss at -60 dBFS | {len(words)} | {shown} |"
    )


async def long_session(server: Server, minutes: float, pace: float) -> str:
    """Continuous speech (every recording in turn, again and again) for `minutes` of audio;
    the server's resident memory after 1, 5, 30 and 60 minutes of audio."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    loop = np.concatenate([speech_corpus.load(n).audio for n in speech_corpus.RECORDINGS])
    total = round(minutes * 60 * RATE)
    marks = [m for m in (1, 5, 10, 20, 30, 45, 60, 90, 120) if m <= minutes]
    samples: dict[float, float] = {}
    words = 0
    async with connect(f"{server.url}?{urlencode(PARAMS)}", max_size=None) as ws:

        async def receive() -> None:
            nonlocal words
            try:
                async for raw in ws:
                    message = json.loads(raw)
                    if message.get("type") == "Results" and message["is_final"]:
                        words += len(message["channel"]["alternatives"][0]["words"])
                        end = message["start"] + message["duration"]
                        for mark in marks:
                            if mark not in samples and end >= mark * 60:
                                samples[mark] = rss_mb(server.process.pid)
            except ConnectionClosed:
                pass

        reader = asyncio.create_task(receive())
        started = time.monotonic()
        sent = 0
        while sent < total:
            piece = loop[(sent % len(loop)) :][: CHUNK_BYTES // 2]
            await ws.send(pcm16(piece))
            sent += len(piece)
            due = started + sent / RATE / pace
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await ws.send(json.dumps({"type": "CloseStream"}))
        await reader
    rows = ["| audio so far | server RSS |", "|---|---|"]
    rows += [f"| {mark} min | {samples.get(mark, float('nan')):.0f} MB |" for mark in marks]
    rows.append(f"| words transcribed | {words} |")
    rows.append(f"| wall time | {(time.monotonic() - started) / 60:.1f} min at {pace:g}x |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", default=",".join(speech_corpus.RECORDINGS))
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--quick", action="store_true", help="sonnet, clean and noisy")
    parser.add_argument("--simulate", action="store_true", help="in-process, simulated clock")
    parser.add_argument(
        "--exact", action="store_true", help="with --simulate: one chunk per step, repeatable"
    )
    parser.add_argument("--show", action="store_true", help="print each transcript")
    parser.add_argument(
        "--by-final",
        action="store_true",
        help="also split the labelled errors by the kind of final (mid-phrase, endpoint)",
    )
    parser.add_argument(
        "--offset",
        default="0",
        metavar="MS[,MS...]",
        help="start every recording this many milliseconds later (0 to 1000); several: each, "
        "then the mean",
    )
    parser.add_argument("--invented", action="store_true", help="only: noise, music, silence")
    parser.add_argument("--long", type=float, metavar="MINUTES", help="only: memory over time")
    parser.add_argument("--pace", type=float, default=1.0, help="with --long: times real time")
    parser.add_argument(
        "--tune",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a streaming.Tuning field, in process or in the server (repeatable)",
    )
    parser.add_argument(
        "--decoder",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="with --simulate: override a WhisperDecoder setting (beam_final, beam_interim, ...)",
    )
    parser.add_argument(
        "--peer",
        action="store_true",
        help="stream to WhisperLiveKit (LocalAgreement, same model) instead; see bench/peer-setup",
    )
    args = parser.parse_args()
    if args.peer and (args.simulate or args.tune or args.long or args.decoder):
        parser.error("--peer is a real server: no --simulate, --tune, --decoder or --long")
    try:
        offsets = [float(item) for item in args.offset.split(",")]
    except ValueError:
        parser.error(f"--offset: milliseconds, or several separated by commas, not {args.offset!r}")
    if not all(0.0 <= offset <= 1000.0 for offset in offsets):
        parser.error("--offset: from 0 to 1000 milliseconds")
    if args.quick:
        args.recordings, args.conditions = "sonnet", "clean,noisy"
    for given, known, what in (
        (args.recordings, speech_corpus.RECORDINGS, "--recordings"),
        (args.conditions, CONDITIONS, "--conditions"),
    ):
        unknown = [name for name in given.split(",") if name not in known]
        if unknown:
            parser.error(f"{what}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    try:
        tuning = parse_tuning(args.tune)
    except ValueError as exc:
        parser.error(f"--tune: {exc}")
    tune_args = [f"--tune={item}" for item in args.tune]
    speech_corpus.fetch(quiet=True)
    if args.long:
        long_server = Server(*tune_args)
        try:
            print(asyncio.run(long_session(long_server, args.long, args.pace)))
        finally:
            long_server.close()
        return
    server: Server | PeerServer | None = None
    if args.peer:
        server = PeerServer()
    elif not args.simulate:
        server = Server(*tune_args)
    engine = None
    if args.simulate:
        from captioner.server import models
        from captioner.server.cli import default_threads
        from captioner.server.whisper import WhisperEngine

        engine = WhisperEngine(
            models.require_model_dir(), cpu_threads=default_threads(), tuning=tuning
        )
        for name, value in (d.split("=") for d in args.decoder):
            setattr(engine.decoder, name, type(getattr(engine.decoder, name))(value))
        engine.warm_up()
    if args.invented:
        print(invented(server, engine))
        if server is not None:
            server.close()
        return
    pooled: dict[str, list[tuple[float, float]]] = {}
    try:
        for offset in offsets:
            if len(offsets) > 1:
                print(f"\n## Every recording {offset:g} ms later\n", flush=True)
            measure(
                args.recordings.split(","),
                args.conditions.split(","),
                server=server,
                engine=engine,
                out=lambda line: print(line, flush=True),
                show=args.show,
                exact=args.exact,
                by_final=args.by_final,
                offset_ms=offset,
                pooled=pooled,
            )
        if len(offsets) > 1 and pooled:
            print("\n" + offsets_table(offsets, pooled))
    finally:
        if server is not None:
            server.close()


def measure(
    recordings: list[str],
    conditions: list[str],
    *,
    server: Server | PeerServer | None,
    engine: Any = None,
    out: Any = print,
    show: bool = False,
    exact: bool = False,
    by_final: bool = False,
    offset_ms: float = 0.0,
    pooled: dict[str, list[tuple[float, float]]] | None = None,
) -> tuple[list[str], str]:
    """Stream every recording in every condition (through `server`, or `engine` in-process);
    emit each table row through `out` as it is measured; return the rows and the summary.
    With `pooled`, also append each condition's (batch, finals) WER over the labelled
    recordings to its list there."""
    from captioner.server import models

    batch_decoder = ChildBatchDecoder(models.require_model_dir())
    out(HEADER)
    rows: list[str] = []
    totals: dict[str, list[tuple[speech_corpus.Speech, Scores, Run]]] = {}
    split: dict[str, list[int]] = {}
    try:
        for name in recordings:
            speech = speech_corpus.load(name)
            for condition in conditions:
                audio, pace = condition_audio(speech, condition)
                audio = delayed(audio, offset_ms)
                batch = batch_decoder.ceiling(audio, speech.text)
                if engine is not None:
                    run = simulate(audio, pace, engine, exact=exact)
                else:
                    assert server is not None
                    run = asyncio.run(stream(server.url, audio, pace, server.process.pid))
                reference = speech.text if speech.text is not None else batch
                scores = score(run.arrivals, run.timing, reference, batch)
                rows.append(row(name, condition, run, scores, speech.text is not None))
                out(rows[-1])
                totals.setdefault(condition, []).append((speech, scores, run))
                if show:
                    out(f"\n    batch: {batch}\n    ours:  {scores.text}\n")
                if by_final and speech.text is not None:
                    results = [message for _, message in run.arrivals]
                    for kind, counts in errors_by_final(speech.text, batch, results).items():
                        before = split.get(kind, [0, 0, 0])
                        split[kind] = [a + b for a, b in zip(before, counts, strict=True)]
    finally:
        batch_decoder.close()
    text = summary(totals)
    if pooled is not None:
        for condition, runs in totals.items():
            wers = labelled_wer(runs)
            if wers is not None:
                pooled.setdefault(condition, []).append(wers)
    if split:
        text += "\n\n" + by_final_table(split)
    out("")
    out(text)
    return rows, text


def by_final_table(split: dict[str, list[int]]) -> str:
    """The labelled recordings' errors by the kind of final that carried the words."""
    lines = [
        "| words of the text covered by | words | our finals' errors | the batch decode's "
        "errors on the same words |",
        "|---|---|---|---|",
    ]
    for kind, (words, ours, theirs) in split.items():
        mine, batch = (f"{n} ({n / max(1, words) * 100:.1f} %)" for n in (ours, theirs))
        lines.append(f"| {kind} | {words} | {mine} | {batch} |")
    return "\n".join(lines)


def summary(totals: dict[str, list[tuple[speech_corpus.Speech, Scores, Run]]]) -> str:
    """Per condition: word errors over every labelled recording against the batch's, and how
    far the rest stray from their batch decodes; latency and flicker over all words."""
    lines = [
        "| condition | batch WER (labelled) | finals WER (labelled) | finals vs batch "
        "(unlabelled) | words lost | first shown p50 / p90 | final p90 | flicker |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for condition, runs in totals.items():
        un_words = un_err = 0.0
        lost = final_words = replaced = 0
        shown: list[float] = []
        final: list[float] = []
        for speech, scores, _ in runs:
            lost += scores.words_lost
            final_words += scores.final_words
            replaced += scores.replaced
            shown += scores.first_shown
            final += scores.final_latency
            if speech.text is None:
                n = max(1, round(scores.final_words))
                un_words += n
                un_err += scores.wer * n
        pct = lambda v, q: float(np.percentile(v, q)) if v else float("nan")  # noqa: E731
        share = lambda err, n: f"{err / n * 100:.1f} %" if n else "—"  # noqa: E731
        wers = labelled_wer(runs)
        batch, ours = ("—", "—") if wers is None else (f"{w * 100:.1f} %" for w in wers)
        lines.append(
            f"| {condition} | {batch} | {ours} | "
            f"{share(un_err, un_words)} | {lost} | "
            f"{pct(shown, 50):.2f} / {pct(shown, 90):.2f} s | {pct(final, 90):.2f} s | "
            f"{replaced / max(1, final_words):.2f} |"
        )
    return "\n".join(lines)


def labelled_wer(
    runs: list[tuple[speech_corpus.Speech, Scores, Run]],
) -> tuple[float, float] | None:
    """(batch, finals) WER pooled over the recordings with a published text: every word
    error over every word of their texts. None when no recording has a text."""
    words = batch_errors = our_errors = 0.0
    for speech, scores, _ in runs:
        if speech.text is None:
            continue
        n = len(speech_corpus.normalise(speech.text).split())
        words += n
        batch_errors += (scores.batch_wer or 0.0) * n
        our_errors += scores.wer * n
    if not words:
        return None
    return batch_errors / words, our_errors / words


def offsets_table(offsets: list[float], pooled: dict[str, list[tuple[float, float]]]) -> str:
    """Per condition, the labelled recordings' pooled WER at each offset and the mean, and the
    finals' distance from the batch decode: mean, and lowest to highest."""
    at = " / ".join(f"{offset:g}" for offset in offsets)
    lines = [
        f"| condition | batch WER at {at} ms | mean | finals WER at {at} ms | mean "
        "| finals minus batch: mean [range] |",
        "|---|---|---|---|---|---|",
    ]
    for condition, pairs in pooled.items():
        batch = [b * 100 for b, _ in pairs]
        ours = [o * 100 for _, o in pairs]
        gaps = [o - b for b, o in zip(batch, ours, strict=True)]
        listed = lambda values: " / ".join(f"{v:.1f}" for v in values)  # noqa: E731
        lines.append(
            f"| {condition} | {listed(batch)} % | {np.mean(batch):.1f} % | {listed(ours)} % | "
            f"{np.mean(ours):.1f} % | {np.mean(gaps):+.1f} [{min(gaps):+.1f} to "
            f"{max(gaps):+.1f}] points |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
