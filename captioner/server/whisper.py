"""The Whisper engine: faster-whisper's CTranslate2 model, int8 on the CPU.

We call the CTranslate2 model directly instead of `WhisperModel.transcribe()` because that
always encodes a 30-second window: for a 3-second utterance that is ten times the encoder work,
and interims re-decode the open utterance every second. Encoding a shorter window is much
cheaper, but Whisper was trained on 30-second windows and hallucinates (repeats itself) when the
speech fills the window, so the window is padded to at least 10 s and 1.5x the clip. On
recordings of people (`bench/stream_quality.py --simulate`), full 30-second windows for every
decode were no more accurate and cost twice the CPU (0.9-1.2 s per audio second).

Finals (endpoints, Finalize): beam 5. Agreement decodes, every half second of open speech:
greedy (beam 1) with a window of at least 6 s, which keeps the re-decoding of the open phrase
within the CPU budget of a 2-core machine. Every decode reads word timings and confidences from
CTranslate2's cross-attention alignment (the mechanism behind faster-whisper's
`word_timestamps=True`); confidence is the mean probability of the word's tokens. The caller
passes the settled text: the words inside the clip as a forced prefix, older ones as Whisper's
previous-text prompt (see `streaming.py`).
"""

from __future__ import annotations

import os
import string
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from captioner.server.engine import Hypothesis, Recognizer, RecognizerOptions
from captioner.server.streaming import StreamingRecognizer, Tuning
from captioner.server.vad import SAMPLE_RATE, Samples, make_vad
from captioner.server.wire import ModelInfo, WordOut

FRAMES_PER_SECOND = 100  # mel frames
TOKENS_PER_SECOND = 50  # encoder positions
MIN_WINDOW_FRAMES = 1000
MIN_INTERIM_WINDOW_FRAMES = 600  # interims trade a little accuracy for a cheaper encoder
MAX_WINDOW_FRAMES = 3000
WINDOW_STEP_FRAMES = 200  # 2 s; the minimums and the maximum are multiples of it
MAX_PROMPT_TOKENS = 223  # Whisper's limit for previous text (half its 448-token context)
_STRIP = string.punctuation + "“”‘’«»¿¡…—–" + "。，、！？：；「」『』（）《》【】"
_APPEND_PUNCT = set("\"'.。,，!！?？:：”)]}、;；…」』）》】")
_PREPEND_PUNCT = set("\"'“¿([{-¡「『（《【")
# Whisper's tokenizer splits these languages' text into words without spaces
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "yue"})


def _window_frames(content: int, minimum: int = MIN_WINDOW_FRAMES) -> int:
    """The encoder's window for `content` frames of audio: 1.5 times the clip plus 2 s, at
    least `minimum`, at most 30 s, rounded to the nearest whole WINDOW_STEP_FRAMES, and never
    less than 1 s more than the clip (unless the clip fills 30 s).

    The rounding is for memory. CTranslate2 keeps working memory for every input shape it has
    seen; with a window that followed the clip frame by frame, the server grew by about 190 MB
    over 150 decodes of clips between 1 and 12 s and kept growing. With a dozen window sizes it
    stays where it started.
    """
    target = max(minimum, int(content * 1.5) + 2 * FRAMES_PER_SECOND)
    frames = round(target / WINDOW_STEP_FRAMES) * WINDOW_STEP_FRAMES
    if frames < content + FRAMES_PER_SECOND:
        frames += WINDOW_STEP_FRAMES
    frames = min(MAX_WINDOW_FRAMES, max(minimum, frames))
    return frames + frames % 2  # the encoder halves it (an odd minimum can come from a bench)


def raw_word(text: str) -> str:
    """Deepgram's `word`: lowercase, without surrounding punctuation."""
    return text.strip().strip(_STRIP).lower()


class WhisperDecoder:
    """Decodes clips of up to 30 s with a shared CTranslate2 Whisper model.

    Only one thread may call `decode` at a time (the server's decoder thread); the model itself
    uses `cpu_threads` threads inside each call.
    """

    def __init__(
        self,
        model: Any,
        *,
        beam_final: int = 5,
        beam_interim: int = 1,
        no_speech_threshold: float = 0.6,
        logprob_threshold: float = -1.0,
    ) -> None:
        from faster_whisper.tokenizer import Tokenizer

        self._whisper = model  # faster_whisper.WhisperModel: owns model, tokenizer, features
        self._ct2 = model.model
        self._tokenizer_class = Tokenizer
        self._tokenizers: dict[str, Any] = {}
        self._suppress: dict[str, list[int]] = {}
        self.beam_final = beam_final
        self.beam_interim = beam_interim
        self.min_window_final = MIN_WINDOW_FRAMES
        self.min_window_interim = MIN_INTERIM_WINDOW_FRAMES
        self._no_speech = no_speech_threshold
        self._logprob = logprob_threshold

    def _tokenizer(self, language: str) -> Any:
        tokenizer = self._tokenizers.get(language)
        if tokenizer is None:
            tokenizer = self._tokenizer_class(
                self._whisper.hf_tokenizer,
                self._ct2.is_multilingual,
                task="transcribe",
                language=language,
            )
            suppress = {*tokenizer.non_speech_tokens}
            suppress.update(
                [
                    tokenizer.transcribe,
                    tokenizer.translate,
                    tokenizer.sot,
                    tokenizer.sot_prev,
                    tokenizer.sot_lm,
                ]
            )
            if tokenizer.no_speech is not None:
                suppress.add(tokenizer.no_speech)
            self._tokenizers[language] = tokenizer
            self._suppress[language] = sorted(suppress)
        return tokenizer

    def decode(
        self,
        audio: Samples,
        *,
        final: bool,
        language: str | None,
        prompt: str = "",
        prefix: str = "",
    ) -> Hypothesis:
        import ctranslate2

        audio = np.asarray(audio, dtype=np.float32)
        features = self._whisper.feature_extractor(audio, padding=0)
        content = min(int(features.shape[-1]), MAX_WINDOW_FRAMES)
        if content < 10:
            return Hypothesis((), language)
        window = _window_frames(
            content, self.min_window_final if final else self.min_window_interim
        )
        padded = np.zeros((features.shape[0], window), dtype=np.float32)
        padded[:, :content] = features[:, :content]
        encoded = self._ct2.encode(ctranslate2.StorageView.from_array(padded[None]), to_cpu=False)
        certainty = 1.0
        if language is None:
            language, certainty = self._detect_language(features[:, :content])
        tokenizer = self._tokenizer(language)
        start: list[int] = []
        if prompt.strip():
            earlier = tokenizer.encode(" " + prompt.strip())[-MAX_PROMPT_TOKENS:]
            start = [tokenizer.sot_prev, *earlier]
        start += [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        forced = tokenizer.encode(" " + prefix.strip()) if prefix.strip() else []
        seconds = len(audio) / SAMPLE_RATE
        # a loop guard: ordinary speech stays far below 12 tokens a second
        max_new = int(12 + 12 * seconds)
        result = self._ct2.generate(
            encoded,
            [start + forced],
            beam_size=self.beam_final if final else self.beam_interim,
            patience=1.0,
            max_length=len(start) + len(forced) + max_new,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=not forced,
            suppress_tokens=self._suppress[language],
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        new = tokens[len(forced) :]
        if not new:
            return Hypothesis((), language, certainty)
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if result.no_speech_prob > self._no_speech and avg_logprob < self._logprob:
            return Hypothesis((), language, certainty)
        if _compression_ratio(tokenizer.decode(new)) > 2.4:
            new = _drop_repetition(tokenizer, new)
        words = self._words(tokenizer, forced, new, encoded, content)
        return Hypothesis(tuple(words), language, certainty)

    def _detect_language(self, features: Any) -> tuple[str, float]:
        """(language, probability), read from a whole 30-second window as Whisper was trained:
        on the short windows the decodes use, a German "Guten Morgen" came out as Chinese or
        Latin; padded to 30 s it is German."""
        import ctranslate2

        if not self._ct2.is_multilingual:
            return "en", 1.0
        padded = np.zeros((features.shape[0], MAX_WINDOW_FRAMES), dtype=np.float32)
        padded[:, : features.shape[-1]] = features
        encoded = self._ct2.encode(ctranslate2.StorageView.from_array(padded[None]), to_cpu=False)
        ranked = self._ct2.detect_language(encoded)[0]
        if not ranked:
            return "en", 0.0
        token, probability = ranked[0]
        return str(token)[2:-2], float(probability)

    def _words(
        self, tokenizer: Any, forced: list[int], new: list[int], encoded: Any, content: int
    ) -> list[WordOut]:
        """Words of `new` with times from cross-attention alignment of the whole transcript
        (the forced prefix too, so the new words' times are read in context)."""
        alignment = self._ct2.align(
            encoded, tokenizer.sot_sequence, [forced + new], [content], median_filter_width=7
        )[0]
        pairs = np.asarray(alignment.alignments, dtype=np.int64).reshape(-1, 2)
        probs = list(alignment.text_token_probs)[len(forced) :]
        if not len(pairs):
            return []
        # time of each token = first alignment step that reaches it (the last entry is EOT)
        first_step = np.concatenate([[True], np.diff(pairs[:, 0]) != 0])
        token_times = pairs[first_step, 1] / TOKENS_PER_SECOND
        token_times = token_times[len(forced) :]
        pieces, piece_tokens = tokenizer.split_to_word_tokens([*new, tokenizer.eot])
        raw: list[tuple[str, float, float, float]] = []
        position = 0
        for piece, ids in zip(pieces[:-1], piece_tokens[:-1], strict=False):
            begin_index, position = position, position + len(ids)
            if position >= len(token_times):
                break
            start = float(token_times[begin_index])
            end = float(token_times[position])
            confidence = float(np.mean(probs[begin_index:position])) if probs else 0.0
            raw.append((piece, start, end, confidence))
        spaced = tokenizer.language_code not in UNSPACED_LANGUAGES
        return _merge_punctuation(raw, continuing=bool(forced), spaced=spaced)


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / max(1, len(zlib.compress(data)))


def _drop_repetition(tokenizer: Any, tokens: list[int]) -> list[int]:
    """Cut a hallucinated loop: keep the text up to where it starts repeating itself."""
    for size in range(4, len(tokens) // 2 + 1):
        for start in range(len(tokens) - 2 * size + 1):
            if tokens[start : start + size] == tokens[start + size : start + 2 * size]:
                return tokens[: start + size]
    return tokens


def _merge_punctuation(
    raw: Sequence[tuple[str, float, float, float]],
    *,
    continuing: bool = False,
    spaced: bool = True,
) -> list[WordOut]:
    """Whisper emits punctuation as separate pieces; attach them to their neighbours.

    Opening marks (`(`, `¿`, an opening quote) go to the next word, everything else to the
    previous one, so `punctuated_word` reads like the transcript; a piece that continues a
    word with a hyphen ("self" "-substantial") joins it.

    When the pieces continue a forced prefix (`continuing`), what comes before the first word
    belonged to the prefix's last word, which is already settled: closing punctuation, and in
    a language that puts spaces between words (`spaced`), the rest of a word the prefix cut
    short. Settled "prudent" and a noisy "ly in his power" are "in his power", not a word
    "ly"; settled "world" and "'s due", "due". Both are dropped.
    """
    merged: list[tuple[str, float, float, float]] = []
    carry = ""
    first = True
    for piece, start, end, confidence in raw:
        text = piece.strip()
        if not text:
            continue
        joined = first and continuing and spaced and not piece[:1].isspace()
        first = False
        if joined and (text[0].isalnum() or (text[0] in "'’" and text[1:2].isalpha())):
            continue
        if all(ch in _STRIP for ch in text):
            opening = text[0] in _PREPEND_PUNCT and text[0] not in _APPEND_PUNCT
            if merged and not opening:
                last = merged[-1]
                merged[-1] = (last[0] + text, last[1], last[2], last[3])
            elif opening or not continuing:
                carry += text
            continue
        if merged and text.startswith("-") and not piece[:1].isspace():
            last = merged[-1]
            merged[-1] = (last[0] + text, last[1], end, min(last[3], confidence))
            continue
        merged.append((carry + text, start, end, confidence))
        carry = ""
    words = []
    for text, start, end, confidence in merged:
        bare = raw_word(text)
        if bare:
            words.append(WordOut(bare, text, start, end, confidence))
    return words


def one_blas_thread() -> None:
    """Hold numpy's BLAS to one thread for the rest of this process.

    Each decode makes one matrix product in faster-whisper's feature extractor (the mel
    filterbank). OpenBLAS runs it on every core, and its idle threads then spin, waiting for
    more work, for the rest of the decode: on 2 cores a 4-second clip cost 172 ms of CPU for
    86 ms of wall time, and 88 ms with one BLAS thread, in the same wall time. The spinning
    thread also took the core a second CTranslate2 thread would use. threadpoolctl finds the
    BLAS numpy loaded (OpenBLAS, MKL, BLIS or FlexiBLAS; a BLAS it does not know, such as
    Apple's Accelerate, is left as it is) and sets its limit at run time, which an environment
    variable could do only before numpy is first imported.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class WhisperEngine:
    """faster-whisper's Whisper base in CTranslate2 int8, loaded once per server."""

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        cpu_threads: int = 0,
        vad: str = "auto",
        beam_final: int = 5,
        beam_interim: int = 1,
        tuning: Tuning | None = None,
    ) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.version import __version__ as fw_version

        threads = cpu_threads or max(1, min(4, os.cpu_count() or 1))
        one_blas_thread()
        self._model = WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
            num_workers=1,
            local_files_only=True,
        )
        self._vad_kind = vad
        make_vad(vad)  # fail now, not at the first connection, if the VAD cannot load
        self.tuning = tuning
        self.decoder = WhisperDecoder(self._model, beam_final=beam_final, beam_interim=beam_interim)
        self.model_info = ModelInfo(
            name=f"whisper-{Path(model_dir).name.removeprefix('whisper-') or 'base'}",
            version=f"faster-whisper-{fw_version}",
            arch="whisper",
        )

    def warm_up(self) -> None:
        """One throwaway decode so the first real utterance does not pay for lazy setup."""
        rng = np.random.default_rng(0)
        noise = (rng.standard_normal(SAMPLE_RATE) * 0.01).astype(np.float32)
        self.decoder.decode(noise, final=True, language="en")

    def recognizer(self, options: RecognizerOptions) -> Recognizer:
        return StreamingRecognizer(self.decoder, make_vad(self._vad_kind), options, self.tuning)

    def close(self) -> None:
        self._model = None
