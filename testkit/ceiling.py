"""The ceiling a live transcript is judged against: the same Whisper model decoding a whole
recording in one call (faster-whisper's `transcribe`, beam 5, previous text as prompt).

It is decoded with and without faster-whisper's VAD filter. Without the filter a file of
exactly 30 s ends in a second window that Whisper fills by repeating itself (the telephone
call came out at 27-96 % WER); with it, the sonnet loses words. Given the text, the ceiling
is whichever of the two is closer to it.

`transcribe` is not deterministic by itself: where a window's beam-search text fails its
compression-ratio or log-probability check, it decodes that window again by *sampling* at a
temperature of 0.2 and up. On the telephone call most windows fall back, and six processes
decoding its faster version gave six different transcripts. CTranslate2 draws those samples
from a generator that each of the model's worker threads seeds once, on its first draw, from
the process's seed (random unless `set_random_seed` was called): seeding again later changes
nothing for a model already used. So every decode here loads the model afresh (0.3 s) after
seeding, and the ceiling of a given audio is the same in every run, process and order.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from testkit.stream_metrics import word_error

SEED = 0


class BatchDecoder:
    """Whole-file decodes with faster-whisper, the same for the same audio every time."""

    def __init__(self, model_dir: Path | str, cpu_threads: int | None = None) -> None:
        self.model_dir = str(model_dir)
        self.cpu_threads = cpu_threads or os.cpu_count() or 1
        self._ceilings: dict[tuple[str, str | None], str] = {}

    def transcribe(self, audio: np.ndarray, *, vad_filter: bool, **options: Any) -> str:
        """One whole-file decode; `options` go to faster-whisper's `transcribe` as they are
        (a test asks for pure sampling, `temperature=1.0, best_of=1`)."""
        import ctranslate2
        from faster_whisper import WhisperModel

        ctranslate2.set_random_seed(SEED)
        model = WhisperModel(
            self.model_dir,
            device="cpu",
            compute_type="int8",
            cpu_threads=self.cpu_threads,
            local_files_only=True,
        )
        asked = {"language": "en", "beam_size": 5, "vad_filter": vad_filter, **options}
        segments, _ = model.transcribe(audio, **asked)
        return " ".join(segment.text.strip() for segment in segments)

    def both(self, audio: np.ndarray) -> tuple[str, str]:
        """The transcripts without and with the VAD filter."""
        return self.transcribe(audio, vad_filter=False), self.transcribe(audio, vad_filter=True)

    def ceiling(self, audio: np.ndarray, reference: str | None) -> str:
        """The batch transcript. Given the text, the one of the two closer to it; without, the
        one without the VAD filter unless that one repeats itself (a fifth more words than the
        other). Decoded once per audio and text: the same audio always gives the same."""
        key = (hashlib.sha256(np.ascontiguousarray(audio).tobytes()).hexdigest(), reference)
        if key not in self._ceilings:
            plain, filtered = self.both(audio)
            if reference is not None:
                best = min((plain, filtered), key=lambda text: word_error(reference, text))
            else:
                looped = len(plain.split()) > 1.2 * len(filtered.split())
                best = filtered if looped else plain
            self._ceilings[key] = best
        return self._ceilings[key]


_IN_CHILD: dict[str, BatchDecoder] = {}


def _ceiling_in_child(model_dir: str, audio: np.ndarray, reference: str | None) -> str:
    decoder = _IN_CHILD.get(model_dir)
    if decoder is None:
        decoder = _IN_CHILD[model_dir] = BatchDecoder(model_dir)
    return decoder.ceiling(audio, reference)


class ChildBatchDecoder:
    """`BatchDecoder.ceiling` in a child process of its own.

    A benchmark that streams through the engine in its own process reads that process's peak
    memory; the ceiling's model, loaded afresh for every decode, would count there too (the
    in-process table once said 616-764 MB where the server itself peaks at 328 MB)."""

    def __init__(self, model_dir: Path | str) -> None:
        self.model_dir = str(model_dir)
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))

    def ceiling(self, audio: np.ndarray, reference: str | None) -> str:
        return self._pool.submit(_ceiling_in_child, self.model_dir, audio, reference).result()

    def close(self) -> None:
        self._pool.shutdown()
