"""What a viewer of a live transcript experiences, computed from the server's messages.

Given the Results messages of one `/v1/listen` connection, each with its arrival time, and when
each piece of audio was sent, this reconstructs what a caption pane shows at every moment (the
finals so far, then the current interim, less the words a final has since superseded, as the
app's caption model shows them) and measures:

* the word error rate of the finals against the known text, beside the batch ceiling's;
* words lost: words of the text that the batch decode got right and the finals left out;
* first shown: when a word first appears in its place on screen, minus when its audio was sent
  (the end of the word, rounded up to the chunk that carried it);
* final: when the final holding the word arrived, minus the same moment;
* flicker: words that were on screen and were then replaced or taken away, per final word.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jiwer
import numpy as np

from captioner.core.captions import TIME_EPSILON
from testkit.speech_corpus import normalise

Message = dict[str, Any]


@dataclass(frozen=True)
class Timing:
    """When audio reached the wire: connection-clock seconds -> send time."""

    started: float  # when the first chunk was sent
    pace: float = 1.0  # multiple of real time
    chunk_seconds: float = 0.1

    def sent_at(self, audio_time: float) -> float:
        chunks = math.ceil(audio_time / self.chunk_seconds - 1e-9)
        return self.started + chunks * self.chunk_seconds / self.pace


@dataclass
class Scores:
    wer: float
    batch_wer: float | None
    words_lost: int
    final_words: int
    first_shown: list[float] = field(default_factory=list)
    final_latency: list[float] = field(default_factory=list)
    replaced: int = 0
    text: str = ""

    @property
    def flicker(self) -> float:
        return self.replaced / max(1, self.final_words)

    def pct(self, values: Sequence[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else float("nan")


def _words(message: Message) -> list[Message]:
    words: list[Message] = message["channel"]["alternatives"][0]["words"]
    return words


def word_error(reference: str, hypothesis: str) -> float:
    ref = normalise(reference)
    hyp = normalise(hypothesis)
    if not ref:
        return float(len(hyp.split()))
    return float(jiwer.wer(ref, hyp)) if hyp else 1.0


def _correct(reference: str, hypothesis: str) -> tuple[set[int], set[int]]:
    """Indices of reference words the hypothesis got right, and those it deleted."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not hyp:
        return set(), set(range(len(ref.split())))
    out = jiwer.process_words(ref, hyp)
    right: set[int] = set()
    deleted: set[int] = set()
    for chunk in out.alignments[0]:
        span = range(chunk.ref_start_idx, chunk.ref_end_idx)
        if chunk.type == "equal":
            right.update(span)
        elif chunk.type == "delete":
            deleted.update(span)
    return right, deleted


def words_lost(reference: str, batch: str, ours: str) -> int:
    batch_right, _ = _correct(reference, batch)
    _, ours_deleted = _correct(reference, ours)
    return len(batch_right & ours_deleted)


PHRASE_END = "endpoint finals"
MID_PHRASE = "finals settled mid-phrase"


def errors_by_final(
    reference: str, batch: str, results: Sequence[Message]
) -> dict[str, tuple[int, int, int]]:
    """Which finals hold the errors: per kind of final (`PHRASE_END`: `speech_final` or
    `from_finalize`; `MID_PHRASE`: the rest), the words of `reference` those finals cover,
    the finals' errors on them, and the batch decode's errors on the same words.

    Each word of the reference is given the kind of the final word it aligns with (a deleted
    word, the kind of the final word where it would have been); an inserted word counts
    against the kind of its own final, and a word the batch decode inserted against the kind
    of the reference word it stands before. With no final word at all, every word of the text
    is an error of `MID_PHRASE`."""
    kinds: list[str] = []
    tokens: list[str] = []
    for message in results:
        if message.get("type") != "Results" or not message.get("is_final"):
            continue
        end = bool(message.get("speech_final") or message.get("from_finalize"))
        for word in _words(message):
            for token in normalise(str(word.get("punctuated_word", word["word"]))).split():
                tokens.append(token)
                kinds.append(PHRASE_END if end else MID_PHRASE)
    ref = normalise(reference).split()
    counts = {kind: [0, 0, 0] for kind in (MID_PHRASE, PHRASE_END)}
    if not ref:
        return {kind: (0, 0, 0) for kind in counts}
    covered = [MID_PHRASE] * len(ref)
    ours_errors = [0 if tokens else 1] * len(ref)
    inserted: list[str] = []
    ours = jiwer.process_words(" ".join(ref), " ".join(tokens)).alignments[0] if tokens else []
    for chunk in ours:
        for offset, index in enumerate(range(chunk.ref_start_idx, chunk.ref_end_idx)):
            at = chunk.hyp_start_idx + (offset if chunk.type != "delete" else 0)
            covered[index] = kinds[min(at, len(kinds) - 1)]
            ours_errors[index] = int(chunk.type != "equal")
        if chunk.type == "insert":
            inserted += kinds[chunk.hyp_start_idx : chunk.hyp_end_idx]
    for index, kind in enumerate(covered):
        counts[kind][0] += 1
        counts[kind][1] += ours_errors[index]
    for kind in inserted:
        counts[kind][1] += 1
    said = normalise(batch)
    chunks = jiwer.process_words(" ".join(ref), said).alignments[0] if said else []
    if not said:
        for kind in covered:
            counts[kind][2] += 1
    for chunk in chunks:
        if chunk.type == "insert":
            kind = covered[min(chunk.ref_start_idx, len(ref) - 1)]
            counts[kind][2] += chunk.hyp_end_idx - chunk.hyp_start_idx
        elif chunk.type != "equal":
            for index in range(chunk.ref_start_idx, chunk.ref_end_idx):
                counts[covered[index]][2] += 1
    return {kind: (words, ours, theirs) for kind, (words, ours, theirs) in counts.items()}


def final_text(results: Sequence[Message]) -> str:
    parts = []
    for message in results:
        if message.get("type") == "Results" and message.get("is_final"):
            transcript = message["channel"]["alternatives"][0]["transcript"]
            if transcript:
                parts.append(transcript)
    return " ".join(parts)


def score(
    arrivals: Sequence[tuple[float, Message]],
    timing: Timing,
    reference: str,
    batch_text: str | None = None,
) -> Scores:
    results = [(t, m) for t, m in arrivals if m.get("type") == "Results"]
    text = final_text([m for _, m in results])
    scores = Scores(
        wer=word_error(reference, text),
        batch_wer=None if batch_text is None else word_error(reference, batch_text),
        words_lost=0 if batch_text is None else words_lost(reference, batch_text, text),
        final_words=0,
        text=text,
    )
    finals: list[tuple[str, float, float]] = []  # word, end, arrival of its final
    shown: list[str] = []
    history: list[tuple[float, list[str]]] = []
    committed: list[str] = []
    interim: list[tuple[str, float]] = []  # the newest interim's words and their starts
    for arrival, message in results:
        words = [normalise(w["word"]) for w in _words(message)]
        if message["is_final"]:
            committed += words
            finals += [(normalise(w["word"]), float(w["end"]), arrival) for w in _words(message)]
            # as the app's caption model does: the final supersedes the interim's words inside
            # its window; those after it stay shown until the next interim
            end = float(message["start"]) + float(message["duration"])
            interim = [(w, start) for w, start in interim if start >= end - TIME_EPSILON]
            display = committed + [w for w, _ in interim]
        else:
            interim = [(normalise(w["word"]), float(w["start"])) for w in _words(message)]
            display = committed + words
        scores.replaced += sum(
            1 for i, word in enumerate(shown) if i >= len(display) or display[i] != word
        )
        shown = display
        history.append((arrival, display))
    scores.final_words = len(finals)
    for index, (word, end, final_arrival) in enumerate(finals):
        sent = timing.sent_at(end)
        first = next(
            (t for t, display in history if index < len(display) and display[index] == word),
            final_arrival,
        )
        scores.first_shown.append(first - sent)
        scores.final_latency.append(final_arrival - sent)
    return scores
