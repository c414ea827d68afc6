"""Live recognition by agreement: words settle when two consecutive decodes agree on them.

Whisper is a model of whole 30-second windows, not of a stream. Decoding each utterance on its
own (as this engine first did) throws away what a batch decode has: the audio just before a
phrase and the text already said. Phrases cut at comma pauses were misheard at their edges, and
words that fell between one utterance's end and the next one's onset were never decoded at all.
This recogniser keeps one continuous audio buffer instead and re-decodes its open (unsettled)
part every `decode_every_s` of audio:

* **Context.** A decode sees about six seconds of already-settled audio before the open part
  (an endpoint's, nine), and its words are forced as the decoder's prefix, so the model hears
  the phrase as it was said and cannot transcribe that audio differently. Older settled text
  goes in as Whisper's previous-text prompt, as in a batch decode.
* **Agreement.** A word is settled (sent as an `is_final` Result, `speech_final` false) when
  the last two decodes agree on it and on every word before it: the LocalAgreement-2 policy of
  Macháček, Dabre and Bojar (2023). The newest word is never settled before an endpoint, since
  its audio may not be complete. Settled words become the next decode's prefix, so a settled
  word is never decoded twice or lost between decodes.
* **Endpoints.** When the VAD hears `endpointing` of silence, the open part is decoded once more
  (beam search) and all of it settles, with `speech_final` true. After a short pause the next
  phrase still gets the previous one's last words as audio context.
* **Windows.** Finals tile the connection clock: a mid-speech final ends between its last word
  and the next one, an endpoint's final where the endpoint was heard, and silence is covered by
  empty finals. A decoder's word times are clamped into their window.

Interims restate the open words twice a second (the service does about once a second; twice
shows words sooner and settles them sooner), leaving out a word that ends within 0.3 s of the
end of the audio the newest decode heard: the newest word is the one most often misheard, and
showing it only to replace it is flicker. Between phrases nothing is decoded, so silence costs
only the VAD.

All positions are sample indices on the connection's 16 kHz clock. The class is synchronous and
does no I/O: the server runs it on its decoder thread, tests drive it directly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from captioner.server.engine import (
    Decoder,
    EngineEvent,
    Hypothesis,
    RecognizerOptions,
    SpeechStart,
    Transcript,
    UtteranceEnded,
)
from captioner.server.speech_record import SpeechRecord
from captioner.server.vad import SAMPLE_RATE, FrameVad, Samples, SpeechGate
from captioner.server.wire import WordOut

ALIGNMENT_FRAME_S = 0.02  # Whisper's word times come on a 20 ms grid


@dataclass(frozen=True)
class Tuning:
    """The recogniser's constants (seconds unless noted), chosen by `bench/stream_quality.py`.

    `min_endpoint_s` is the shortest silence that ends a phrase, whatever `endpointing` asks
    for: Deepgram's default of 10 ms would make a VAD end a phrase at every gap between words.
    """

    decode_every_s: float = 0.5
    emit_every_s: float = 0.5  # interims (and the finals settled since) twice a second
    min_speech_s: float = 0.3  # speech before a phrase's first decode
    first_settle_s: float = 1.5  # a shorter phrase settles only at its endpoint, in one final
    min_new_speech_s: float = 0.1  # a decode needs this much new speech, else the last stands
    context_s: float = 6.0  # settled audio re-heard before the open words
    final_context_s: float = 9.0  # the same, for an endpoint's decode
    context_gap_s: float = 2.0  # a longer pause starts the next phrase without audio context
    hold_back_s: float = 0.15  # a word ending this close to the decoded audio's end stays open
    interim_tail_s: float = 0.3  # interims leave out words ending this close to the audio's end
    max_open_s: float = 10.0  # open speech longer than this settles all but its last second
    max_clip_s: float = 18.0  # the most audio one decode sees (Whisper's window is 30 s)
    prompt_words: int = 60  # settled words given as Whisper's previous-text prompt
    interim_prompt_words: int = 20  # the same, for the agreement decodes and repairs
    unheard_s: float = 0.6  # this much speech with no word on it means the decoder skipped it
    word_slack_s: float = 0.2  # how far a word's aligned times may be off, for that check
    unheard_margin_s: float = 0.6  # the newest audio is not checked (its words may be pending)
    min_endpoint_s: float = 0.3
    no_endpointing_silence_s: float = 0.8  # endpointing=false: finals at longer pauses
    preroll_s: float = 0.3  # audio kept before the detected onset (VADs react late)
    postroll_s: float = 0.3  # audio kept after the last speech frame at an endpoint
    silence_final_s: float = 3.0  # empty finals keep the window moving through silence
    vad_on: float = 0.5
    vad_off: float = 0.35
    vad_min_on_s: float = 0.06


def parse_tuning(overrides: Sequence[str]) -> Tuning:
    """`Tuning` with `NAME=VALUE` overrides (for benchmarks and `captioner serve --tune`);
    raises ValueError naming an unknown field or a value of the wrong type."""
    fields: dict[str, Any] = {}
    defaults = Tuning()
    for item in overrides:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in Tuning.__dataclass_fields__:
            raise ValueError(
                f"unknown tuning {item!r}; fields: {', '.join(Tuning.__dataclass_fields__)}"
            )
        kind = type(getattr(defaults, name))
        try:
            fields[name] = number = kind(value)
            if not math.isfinite(number):
                raise ValueError(value)
        except ValueError:
            raise ValueError(
                f"tuning {name} wants a{'n int' if kind is int else ' number'}, not {value!r}"
            ) from None
    return replace(defaults, **fields)


def _samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


_BARE = re.compile(r"[\w']+")

LANGUAGE_SURE = 0.7
"""With language=multi, a detection this probable, on a clip of at least
`LANGUAGE_SURE_AFTER_S`, is kept for the rest of the stream: later decodes skip detection
(which costs a 30-second encode) and cannot flip to another language on a short phrase."""
LANGUAGE_SURE_AFTER_S = 2.0


def comparable(word: WordOut) -> str:
    """What two decodes must share for a word to agree: letters and digits, lowercase."""
    return "".join(_BARE.findall(word.word.lower()))


def agreed_prefix(previous: Sequence[WordOut], current: Sequence[WordOut]) -> int:
    """How many leading words two hypotheses share (LocalAgreement's longest common prefix)."""
    count = 0
    for old, new in zip(previous, current, strict=False):
        if comparable(old) != comparable(new):
            break
        count += 1
    return count


def settle_count(
    previous: Sequence[WordOut],
    current: Sequence[WordOut],
    *,
    audio_end: float,
    hold_back: float,
) -> int:
    """Words of `current` that may settle now: agreed with `previous`, never the newest word,
    and ending at least `hold_back` before the end of the decoded audio."""
    count = min(agreed_prefix(previous, current), len(current) - 1)
    while count > 0 and current[count - 1].end > audio_end - hold_back:
        count -= 1
    return max(0, count)


def drop_stutters(words: Sequence[WordOut], shortest: float = 0.1) -> list[WordOut]:
    """Remove a word that repeats the one before it in less time than a word takes to say:
    Whisper's way of looping on a short clip ("one one")."""
    out: list[WordOut] = []
    for word in words:
        if out and comparable(out[-1]) == comparable(word) and word.end - word.start < shortest:
            continue
        out.append(word)
    return out


STACK_TAIL_S = 0.2
"""How far before a clip's end the aligner may stack words it had no audio for."""


def within_audio(words: Sequence[WordOut], duration: float) -> list[WordOut]:
    """The words before the first one Whisper wrote past the end of the audio it was given.

    Near the end of a clip, Whisper sometimes loops: it goes on to repeat the forced prefix, or
    its last sentence, two or three times ("to the goddess spring. Thou that art now the
    world's fresh ornament, and only herald to the goddess spring. Thou that art ..."). The
    aligner has no audio to put those words on, so it stacks them with no length on one
    instant: the clip's last frame, or, after its smoothing, a few frames before it (70 ms
    before the end of a 7.21 s clip, for 15 words of the sonnet). A word with no length in
    the clip's last two frames, or one of two or more stacked on one instant within
    `STACK_TAIL_S` of the end, and every word after it, was not heard. (A word really begun
    in the clip's last frames is lost for now only: the next decode hears it; at an endpoint
    the clip runs on past the last speech, so the phrase's own words end well before that.)"""
    last_frame = duration - 2 * ALIGNMENT_FRAME_S
    near_end = duration - STACK_TAIL_S

    def no_length(word: WordOut) -> bool:
        return word.end - word.start < ALIGNMENT_FRAME_S

    for index, word in enumerate(words):
        if not no_length(word):
            continue
        if word.start >= last_frame:
            return list(words[:index])
        following = words[index + 1] if index + 1 < len(words) else None
        stacked = (
            following is not None
            and no_length(following)
            and abs(following.start - word.start) < ALIGNMENT_FRAME_S / 2
        )
        if stacked and word.start >= near_end:
            return list(words[:index])
    return list(words)


def echoes(
    found: Sequence[WordOut],
    said: Sequence[WordOut],
    following: Sequence[WordOut] = (),
    recent: int = 12,
) -> bool:
    """Whether `found` (a repair: a short stretch decoded on its own, with the text so far as
    its prompt) only repeats words heard around it. On a stretch of cheering, breath or
    crosstalk, Whisper given a prompt reads words back instead of the audio: the prompt's last
    sentence, or the words the main decode already placed just after the stretch ("we are
    angry" three times where it was said once).

    One word counts only if it is the word just before or just after; two or more, if they
    appear in that order among the last `recent` words before or the first `recent` after.
    Words that only go on repeating the last few words said ("right" after "right", then
    "right right") are a loop, however many: settled, they would become the next decode's
    prefix, and Whisper continues a loop it is given."""
    heard = [comparable(w) for w in found]
    if not heard:
        return False
    before = [comparable(w) for w in said[-recent:]]
    after = [comparable(w) for w in following[:recent]]
    if len(heard) == 1:
        return heard == before[-1:] or heard == after[:1]
    size = len(heard)
    if any(
        words[i : i + size] == heard
        for words in (before, after)
        for i in range(len(words) - size + 1)
    ):
        return True
    joined = before + heard
    return any(
        all(joined[len(before) + i] == joined[len(before) + i - period] for i in range(size))
        for period in range(1, min(len(before), 4) + 1)
    )


def cut_between(last: WordOut, following: WordOut | None, limit: float) -> float:
    """Where a final's window ends: halfway into the gap after its last word, never past the
    next word's start or `limit` (the audio decoded so far)."""
    if following is None:
        return min(limit, last.end)
    gap = max(0.0, following.start - last.end)
    return min(limit, last.end + gap / 2)


class StreamingRecognizer:
    """One connection's recogniser: VAD, agreement policy and context, around any `Decoder`."""

    def __init__(
        self,
        decoder: Decoder,
        vad: FrameVad,
        options: RecognizerOptions,
        tuning: Tuning | None = None,
    ) -> None:
        self._decoder = decoder
        self._vad = vad
        self._options = options
        self._t = t = tuning or Tuning()
        self._frame = vad.frame_samples
        min_on = max(1, round(t.vad_min_on_s * SAMPLE_RATE / self._frame))
        self._gate = SpeechGate(t.vad_on, t.vad_off, min_on)
        if options.endpointing_ms is None:
            endpoint_s = t.no_endpointing_silence_s
        else:
            endpoint_s = max(options.endpointing_ms / 1000, t.min_endpoint_s)
        self._endpoint = _samples(endpoint_s)
        self._utterance_end = (
            None if options.utterance_end_ms is None else options.utterance_end_ms / 1000
        )

        # audio: _audio[0] is clock position _origin; _total samples fed so far
        self._audio = np.zeros(0, dtype=np.float32)
        self._origin = 0
        self._total = 0
        self._frames = 0
        self._speech = SpeechRecord(self._frame, t)  # what the VAD heard, frame by frame
        # the open phrase
        self._open = False
        self._onset = 0
        self._last_speech_end = 0
        self._speech_since_decode = 0
        self._last_decode = 0
        self._last_emit = 0
        self._pending: tuple[WordOut, ...] = ()  # the newest decode's open words
        self._agreed: tuple[WordOut, ...] = ()  # words the last two decodes agree on
        # what is settled
        self._cursor = 0  # start of the next result window
        self._settled: list[WordOut] = []  # recent settled words: prompt and context
        self._settled_end = 0  # end of the last settled word's audio
        self._language: str | None = None  # detected and sure (language=multi), then kept
        self._context_start = 0  # where the next decode's audio starts
        self._final_context_start = 0  # where an endpoint's decode starts
        self._last_word_end: float | None = None
        self._utterance_end_due = False
        self._closed = False

    # ------------------------------------------------------------------ public

    @property
    def speech_active(self) -> bool:
        return self._open

    @property
    def clock(self) -> float:
        """Seconds of audio fed so far."""
        return self._total / SAMPLE_RATE

    def feed(self, samples: Samples) -> list[EngineEvent]:
        if self._closed:
            raise RuntimeError("recognizer is closed")
        events: list[EngineEvent] = []
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not len(samples):
            return events
        self._audio = np.concatenate([self._audio, samples])
        self._total += len(samples)
        for probability in self._vad.push(samples):
            self._step(float(probability), events)
        if self._open:
            self._tick(events)
        else:
            self._idle(events, self._total)
        self._trim()
        return events

    def finalize(self) -> list[EngineEvent]:
        """Flush: the open phrase (or the pending silence) becomes a `from_finalize` final."""
        events: list[EngineEvent] = []
        if self._open:
            self._end_phrase(events, self._total, self._total, speech_final=True, flushed=True)
        elif self._total > self._cursor:
            events.append(self._result(self._total, (), final=True, from_finalize=True))
            self._cursor = self._total
        self._last_emit = self._total
        return events

    def close(self) -> None:
        self._closed = True
        self._audio = np.zeros(0, dtype=np.float32)
        self._settled = []
        self._speech = SpeechRecord(self._frame, self._t)

    # ------------------------------------------------------------------ VAD frames

    def _step(self, probability: float, events: list[EngineEvent]) -> None:
        index = self._frames
        self._frames += 1
        self._speech.append(probability)
        frame_end = (index + 1) * self._frame
        if self._gate.step(probability):
            self._speech_since_decode += self._frame
            if not self._open:
                onset = max(self._cursor, (index - self._gate.min_on_frames + 1) * self._frame)
                self._begin_phrase(onset)
                events.append(SpeechStart(onset / SAMPLE_RATE))
            self._last_speech_end = frame_end
        elif not self._open:
            self._silence_final(events, frame_end)
        elif frame_end - self._last_speech_end >= self._endpoint:
            audio_end = min(self._last_speech_end + _samples(self._t.postroll_s), self._total)
            self._end_phrase(
                events,
                frame_end,
                audio_end,
                speech_final=self._options.endpointing_ms is not None,
                flushed=False,
            )
        # frame by frame, so a server that falls behind and feeds seconds at once still
        # sends the UtteranceEnd of every pause
        self._maybe_utterance_end(events, frame_end)

    def _begin_phrase(self, onset: int) -> None:
        self._open = True
        self._onset = onset
        self._pending = self._agreed = ()
        self._last_decode = onset
        self._last_emit = max(self._last_emit, onset)
        fresh = max(onset - _samples(self._t.preroll_s), self._origin, self._cursor)
        near = self._settled and onset - self._settled_end <= _samples(self._t.context_gap_s)
        if not near or self._context_start < self._origin:
            self._context_start = self._final_context_start = fresh
        self._context_start = min(self._context_start, fresh)
        self._final_context_start = min(max(self._final_context_start, self._origin), fresh)

    # ------------------------------------------------------------------ decoding

    def _tick(self, events: list[EngineEvent]) -> None:
        """Decode the open audio every `decode_every_s`; emit every `emit_every_s`."""
        t = self._t
        now = self._total
        if now - self._onset < _samples(t.min_speech_s):
            return
        due_decode = now - self._last_decode >= _samples(t.decode_every_s)
        if due_decode and self._speech_since_decode >= _samples(t.min_new_speech_s):
            words = self._hear(self._context_start, now, final=False)
            settle = settle_count(
                self._pending, words, audio_end=now / SAMPLE_RATE, hold_back=t.hold_back_s
            )
            if now - self._onset < _samples(t.first_settle_s) or not self._gate.speaking:
                # a phrase that is ending settles whole at its endpoint, in one final
                settle = 0
            if now - self._settled_end >= _samples(t.max_open_s):
                # no agreement for too long: settle what lies a second back
                horizon = now / SAMPLE_RATE - 1.0
                settle = max(settle, sum(1 for w in words[:-1] if w.end <= horizon))
            self._agreed = tuple(words[:settle])
            self._pending = tuple(words)
            self._last_decode = now
            self._speech_since_decode = 0
        if self._options.interim_results:
            if now - self._last_emit < _samples(t.emit_every_s):
                return
        elif not self._agreed:
            return
        self._emit(events, now)

    def _emit(self, events: list[EngineEvent], now: int) -> None:
        """Send what settled since the last emission as a final, then the rest as an interim."""
        if self._agreed:
            settled = self._agreed
            following = self._pending[len(settled)] if len(self._pending) > len(settled) else None
            cut = _samples(cut_between(settled[-1], following, now / SAMPLE_RATE))
            start = self._cursor
            cut = max(cut, start)
            self._settle(settled, cut)
            events.append(self._result(cut, settled, final=True, start=start))
            self._pending = self._pending[len(settled) :]
            self._agreed = ()
        if self._options.interim_results:
            shown_to = self._last_decode / SAMPLE_RATE - self._t.interim_tail_s
            open_words = tuple(
                w
                for w in self._pending
                if w.start >= self._cursor / SAMPLE_RATE and w.end <= shown_to
            )
            events.append(self._result(now, open_words, final=False))
        self._last_emit = now

    def _end_phrase(
        self,
        events: list[EngineEvent],
        window_end: int,
        audio_end: int,
        *,
        speech_final: bool,
        flushed: bool,
    ) -> None:
        """Endpoint (or Finalize): decode the open audio once more and settle all of it."""
        words: tuple[WordOut, ...] = ()
        if audio_end > self._settled_end:
            words = self._hear(self._final_context_start, audio_end, final=True)
        start = self._cursor
        window_end = max(window_end, start)
        self._settle(words, window_end)
        events.append(
            self._result(
                window_end,
                words,
                final=True,
                speech_final=speech_final,
                from_finalize=flushed,
                start=start,
            )
        )
        self._open = False
        self._pending = self._agreed = ()
        self._last_emit = max(self._last_emit, window_end)

    def _settle(self, words: Sequence[WordOut], cut: int) -> None:
        """Make `words` permanent and move the window and the audio context past them."""
        self._cursor = max(self._cursor, cut)
        if not words:
            return
        self._settled.extend(words)
        del self._settled[: -(max(self._t.prompt_words, self._t.interim_prompt_words) + 32)]
        self._settled_end = max(self._settled_end, _samples(words[-1].end))
        self._last_word_end = words[-1].end
        self._utterance_end_due = self._utterance_end is not None
        self._context_start = self._start_before(self._t.context_s)
        self._final_context_start = min(
            self._context_start, self._start_before(self._t.final_context_s)
        )

    def _start_before(self, seconds: float) -> int:
        """Where a decode that re-hears about `seconds` of settled words starts: at a word."""
        horizon = self._settled_end - _samples(seconds)
        start = _samples(self._settled[-1].start)
        for word in reversed(self._settled):
            if _samples(word.start) < horizon:
                break
            start = _samples(word.start)
        return max(start, self._origin)

    def _hear(self, start: int, end: int, *, final: bool) -> tuple[WordOut, ...]:
        """Decode [start, end), then make sure no stretch of speech went unheard.

        Whisper sometimes leaves speech out: a sentence after a full stop in its prefix or
        when a new voice starts, the last words before a pause. Where the VAD heard
        `unheard_s` of speech that no word covers, that stretch alone is decoded again (no
        audio context, the text before it as the prompt) and its words put in their place.
        A stretch that yields nothing (a cough, a laugh, an "um" Whisper leaves out by
        design) is remembered, so it is not decoded again at every tick.
        """
        words = self._decode(start, end, final=final)
        check_to = end if final else end - _samples(self._t.unheard_margin_s)
        pad = _samples(0.1)
        for _ in range(4):
            run = self._speech.unheard(words, max(self._settled_end, start), check_to)
            if run is None:
                break
            low, high = run
            before = tuple(w for w in words if _samples(w.start) < low)
            after = tuple(w for w in words if _samples(w.start) >= low)
            goes_on = high + self._frame > check_to
            if goes_on:  # the speech goes on: decode all from there again
                high = end
            # from just before the stretch, but never into a word already heard
            known_end = max([self._settled_end] + [_samples(w.end) for w in before])
            found = self._decode(
                max(low - pad, start, known_end), min(high + pad, end), final=final, before=before
            )
            if echoes(found, [*self._settled, *before], after):
                found = ()  # Whisper read its prompt back, not the audio
            if not found:
                self._speech.found_empty(low, high)
            elif goes_on:
                after = ()  # the new decode replaces everything from the stretch on
            words = before + found + after
        return words

    def _decode(
        self, start: int, end: int, *, final: bool, before: Sequence[WordOut] | None = None
    ) -> tuple[WordOut, ...]:
        """Decode [start, end) and return the words after those already known, on the
        connection clock, ordered and inside [cursor, end].

        Normally the settled words inside the clip are forced as the decoder's prefix and the
        older ones are the prompt. With `before` (a repair), the clip has no prefix, and the
        prompt is the settled text followed by those words.
        """
        start = max(start, self._origin, end - _samples(self._t.max_clip_s))
        clip = self._audio[start - self._origin : end - self._origin]
        if len(clip) < _samples(0.1):
            return ()
        if before is None:
            context = [w for w in self._settled if _samples(w.start) >= start]
            earlier = self._settled[: len(self._settled) - len(context)]
        else:
            context, earlier = [], [*self._settled, *before]
        keep = self._t.prompt_words if final else self._t.interim_prompt_words
        prompt = " ".join(w.punctuated for w in earlier[-keep:]) if keep > 0 else ""
        prefix = " ".join(w.punctuated for w in context)
        asked = self._options.language or self._language
        hypothesis: Hypothesis = self._decoder.decode(
            clip, final=final, language=asked, prompt=prompt, prefix=prefix
        )
        if (
            asked is None
            and hypothesis.language is not None
            and hypothesis.language_probability >= LANGUAGE_SURE
            and len(clip) >= _samples(LANGUAGE_SURE_AFTER_S)
        ):
            self._language = hypothesis.language  # detection is unreliable on short clips
        offset = start / SAMPLE_RATE
        low = max(self._cursor, self._settled_end) / SAMPLE_RATE
        if before:
            low = max(low, before[-1].end)
        high = end / SAMPLE_RATE
        placed: list[WordOut] = []
        detected = (self._language or hypothesis.language) if not self._options.language else None
        for w in drop_stutters(within_audio(hypothesis.words, len(clip) / SAMPLE_RATE)):
            begin = min(max(w.start + offset, low), high)
            finish = min(max(w.end + offset, begin), high)
            if self._speech.heard(begin, finish):
                placed.append(replace(w, start=begin, end=finish, language=detected))
                low = begin
        return tuple(placed)

    # ------------------------------------------------------------------ silence

    def _maybe_utterance_end(self, events: list[EngineEvent], now: int) -> None:
        """UtteranceEnd once `utterance_end_ms` passed after the last final word with no new
        word: the service reads it off word timings, so speech that began after that gap
        (a phrase whose words are not decoded yet) does not hold it back, while speech that
        began within it does (its words will follow the last one closely)."""
        last, gap = self._last_word_end, self._utterance_end
        if not self._utterance_end_due or last is None or gap is None:
            return
        if now / SAMPLE_RATE - last < gap:
            return
        if self._open and (self._pending or self._onset / SAMPLE_RATE < last + gap):
            return
        events.append(UtteranceEnded(last))
        self._utterance_end_due = False

    def _silence_final(self, events: list[EngineEvent], now: int) -> None:
        """Between phrases, an empty final every `silence_final_s` keeps the window moving.

        Checked at each VAD frame, so the finals are the same however the audio was chunked
        (a busy server joins queued chunks into one feed)."""
        preroll = _samples(self._t.preroll_s)
        if now - self._cursor >= _samples(self._t.silence_final_s):
            end = now - preroll
            if end > self._cursor:
                events.append(self._result(end, (), final=True))
                self._cursor = end

    def _idle(self, events: list[EngineEvent], now: int) -> None:
        """Between phrases: empty interims (the empty finals come frame by frame)."""
        if self._options.interim_results and now - self._last_emit >= _samples(
            self._t.emit_every_s
        ):
            if now > self._cursor:
                events.append(self._result(now, (), final=False))
            self._last_emit = now

    # ------------------------------------------------------------------ helpers

    def _result(
        self,
        window_end: int,
        words: Sequence[WordOut],
        *,
        final: bool,
        speech_final: bool = False,
        from_finalize: bool = False,
        start: int | None = None,
    ) -> Transcript:
        begin = self._cursor if start is None else start
        return Transcript(
            start=begin / SAMPLE_RATE,
            end=window_end / SAMPLE_RATE,
            words=tuple(words),
            is_final=final,
            speech_final=speech_final,
            from_finalize=from_finalize,
        )

    def _trim(self) -> None:
        """Drop audio no decode can need: before the context of the open phrase, or, between
        phrases, before what a new phrase's pre-roll or audio context could reach back to."""
        reach = _samples(self._t.preroll_s) + (self._gate.min_on_frames + 2) * self._frame
        keep = self._total - reach
        if self._open or (
            self._settled
            and self._total - self._settled_end <= _samples(self._t.context_gap_s) + reach
        ):
            keep = min(keep, self._context_start, self._final_context_start)
        keep = max(keep, self._origin)
        if keep - self._origin >= SAMPLE_RATE:
            self._audio = self._audio[keep - self._origin :].copy()
            self._origin = keep
        self._speech.forget_before(self._origin)
