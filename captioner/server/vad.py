"""Voice-activity detection: per-frame speech probabilities for 16 kHz mono float32 audio.

Two detectors share one small interface so the recogniser does not care which one runs:

* `EnergyVad`: frame energy against an adaptive noise floor, in numpy. Cheap, deterministic and
  exact on clean audio, but it calls any loud noise speech.
* `SileroVad`: the Silero model that faster-whisper ships (onnxruntime), run statefully frame
  by frame. It separates speech from noise, which matters for a microphone in a real room.

The default is Silero, chosen by measurement (`bench/engine.py --vad`: 14 espeak-ng sentences,
300 ms endpointing). On clean audio the energy detector segments all 14 exactly with ends within
~10 ms, Silero 12 of 14 (it also ends utterances at two comma pauses) with ends ~65 ms late. Add
noise at 10 dB SNR (white, brown, mains hum) and the energy detector segments 0-8 of 14, while
Silero still gets 13-14. A microphone is never clean, so Silero it is; its cost is ~2.4 ms of
CPU per second of audio. The energy detector remains the fallback when onnxruntime or the
model file is missing, and drives the deterministic test engine.

`SpeechGate` turns probabilities into speech/silence decisions with hysteresis (a higher
threshold to enter speech than to stay in it), so one quiet frame inside a word does not end it.
"""

from __future__ import annotations

import importlib
import math
import os
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
Samples = npt.NDArray[np.float32]


class FrameVad(Protocol):
    """Streaming detector: push any number of samples, get one probability per full frame."""

    name: str
    frame_samples: int

    def push(self, samples: Samples) -> npt.NDArray[np.float32]: ...

    def reset(self) -> None: ...


class _Framer:
    """Keeps the incomplete tail between pushes so callers may push arbitrary lengths."""

    def __init__(self, frame_samples: int) -> None:
        self.frame_samples = frame_samples
        self._tail = np.zeros(0, dtype=np.float32)

    def frames(self, samples: Samples) -> Samples:
        data = np.concatenate([self._tail, samples.astype(np.float32, copy=False)])
        count = len(data) // self.frame_samples
        self._tail = data[count * self.frame_samples :].copy()
        return data[: count * self.frame_samples].reshape(count, self.frame_samples)

    def reset(self) -> None:
        self._tail = np.zeros(0, dtype=np.float32)


class EnergyVad:
    """Frame energy relative to a noise floor that follows quiet stretches.

    The floor drops immediately to any quieter frame and creeps up slowly (a few dB per second),
    so it tracks a changing background without rising into speech. A frame's probability is a
    logistic function of how far it sits above `floor + margin_db`; frames quieter than
    `min_level_db` are silence whatever the floor says (digital silence would otherwise make
    faint hiss look like speech).
    """

    name = "energy"

    def __init__(
        self,
        frame_ms: int = 20,
        margin_db: float = 12.0,
        min_level_db: float = -55.0,
        floor_rise_db_per_s: float = 3.0,
        initial_floor_db: float = -70.0,
    ) -> None:
        self.frame_samples = SAMPLE_RATE * frame_ms // 1000
        self._framer = _Framer(self.frame_samples)
        self._margin = margin_db
        self._min_level = min_level_db
        self._rise = floor_rise_db_per_s * frame_ms / 1000
        self._initial_floor = initial_floor_db
        self._floor = initial_floor_db

    def push(self, samples: Samples) -> npt.NDArray[np.float32]:
        frames = self._framer.frames(samples)
        if not len(frames):
            return np.zeros(0, dtype=np.float32)
        levels = 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
        out = np.empty(len(levels), dtype=np.float32)
        floor = self._floor
        for i, level in enumerate(levels):
            floor = level if level < floor else floor + self._rise
            floor = max(floor, -90.0)
            excess = level - max(floor + self._margin, self._min_level)
            out[i] = 1.0 / (1.0 + math.exp(-excess / 2.0))
        self._floor = floor
        return out

    def reset(self) -> None:
        self._framer.reset()
        self._floor = self._initial_floor


def silero_model_path() -> str | None:
    """The Silero model bundled with faster-whisper, if that package is installed."""
    try:
        from faster_whisper.utils import get_assets_path
    except ImportError:
        return None
    path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
    return path if os.path.isfile(path) else None


class SileroVad:
    """Silero VAD run incrementally: 512-sample frames, the LSTM state carried across pushes.

    The ONNX session is created once and shared (it is stateless; the recurrent state lives in
    this object), so each connection costs two small arrays, not a second model.
    """

    name = "silero"
    _CONTEXT = 64
    _sessions: ClassVar[dict[str, Any]] = {}

    def __init__(self, model_path: str | None = None) -> None:
        path = model_path or silero_model_path()
        if path is None:
            raise RuntimeError("the Silero VAD model (from faster-whisper) is not installed")
        self.frame_samples = 512
        self._framer = _Framer(self.frame_samples)
        self._session = self._session_for(path)
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(self._CONTEXT, dtype=np.float32)

    @classmethod
    def _session_for(cls, path: str) -> Any:
        session = cls._sessions.get(path)
        if session is None:
            onnxruntime = importlib.import_module("onnxruntime")
            options = onnxruntime.SessionOptions()
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = 1
            options.enable_cpu_mem_arena = False
            options.log_severity_level = 4
            session = onnxruntime.InferenceSession(
                path, providers=["CPUExecutionProvider"], sess_options=options
            )
            cls._sessions[path] = session
        return session

    def push(self, samples: Samples) -> npt.NDArray[np.float32]:
        frames = self._framer.frames(samples)
        if not len(frames):
            return np.zeros(0, dtype=np.float32)
        contexts = np.concatenate([self._context[None, :], frames[:-1, -self._CONTEXT :]])
        batch = np.ascontiguousarray(np.concatenate([contexts, frames], axis=1))
        self._context = frames[-1, -self._CONTEXT :].copy()
        probs, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        return np.asarray(probs, dtype=np.float32).reshape(-1)[: len(frames)]

    def reset(self) -> None:
        self._framer.reset()
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(self._CONTEXT, dtype=np.float32)


def make_vad(kind: str = "auto") -> FrameVad:
    """`auto` prefers Silero and falls back to energy when onnxruntime is missing."""
    if kind == "energy":
        return EnergyVad()
    if kind == "silero":
        return SileroVad()
    if kind != "auto":
        raise ValueError(f"unknown VAD {kind!r}; expected auto, silero or energy")
    try:
        return SileroVad()
    except (ImportError, RuntimeError):
        return EnergyVad()


class SpeechGate:
    """Hysteresis over frame probabilities: enter speech at `on`, leave below `off`.

    Entering also needs `min_on_frames` consecutive frames above `on`, so a click is not speech.
    """

    def __init__(self, on: float = 0.5, off: float = 0.35, min_on_frames: int = 2) -> None:
        self.on = on
        self.off = off
        self.min_on_frames = max(1, min_on_frames)
        self.speaking = False
        self._run = 0

    def step(self, probability: float) -> bool:
        if self.speaking:
            if probability < self.off:
                self.speaking = False
                self._run = 0
        else:
            self._run = self._run + 1 if probability >= self.on else 0
            if self._run >= self.min_on_frames:
                self.speaking = True
        return self.speaking

    def reset(self) -> None:
        self.speaking = False
        self._run = 0
