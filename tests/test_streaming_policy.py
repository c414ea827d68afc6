"""The streaming recogniser's promises, for any speech, chunking and pace (Hypothesis).

The model is replaced at its boundary by a decoder that reads synthetic "speech": each word is a
tone of its own frequency, so the decoder knows exactly which words a clip holds and where. Like
Whisper, it garbles a word whose audio the clip cuts off, starts its transcript with a forced
prefix, and (when asked) skips the first words after a pause, as Whisper skips sentences. The
recogniser must still:

* tile the connection clock with finals, from 0 to the end of the audio;
* put every spoken word into exactly one final, whole: none lost, none repeated, none cut off,
  and every word inside its final's window;
* settle each word before its phrase ends only when two decodes agreed on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from captioner.server.engine import Hypothesis, RecognizerOptions, Transcript, UtteranceEnded
from captioner.server.streaming import (
    ALIGNMENT_FRAME_S,
    StreamingRecognizer,
    Tuning,
    agreed_prefix,
    cut_between,
    drop_stutters,
    echoes,
    settle_count,
    within_audio,
)
from captioner.server.vad import SAMPLE_RATE, EnergyVad
from captioner.server.wire import WordOut

FRAME = SAMPLE_RATE // 50  # 20 ms: the decoder's analysis frame and the words' time grid
BIN_HZ = SAMPLE_RATE / FRAME  # 50 Hz per FFT bin
TOLERANCE = 0.045  # seconds: a frame of the decoder's grid, plus rounding


@dataclass(frozen=True)
class Spoken:
    name: str
    start: float
    end: float


def word_name(freq: float) -> str:
    return f"w{round(freq)}"


def synthesize(plan: list[tuple[int, float, float]]) -> tuple[np.ndarray, list[Spoken]]:
    """(frequency Hz, seconds, pause after) per word -> audio and the words' true spans."""
    parts = [np.zeros(FRAME * 10, dtype=np.float32)]
    position = len(parts[0])
    truth = []
    for freq, seconds, pause in plan:
        n = round(seconds * SAMPLE_RATE)
        t = np.arange(n) / SAMPLE_RATE
        parts.append((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32))
        truth.append(Spoken(word_name(freq), position / SAMPLE_RATE, (position + n) / SAMPLE_RATE))
        position += n
        gap = round(pause * SAMPLE_RATE)
        parts.append(np.zeros(gap, dtype=np.float32))
        position += gap
    parts.append(np.zeros(SAMPLE_RATE, dtype=np.float32))
    return np.concatenate(parts), truth


class ToneDecoder:
    """Reads tone words off a clip on a 20 ms grid anchored at the clip's start.

    With `skip_after_pause`, a decode with a prefix leaves out the first phrase after it (the
    words up to the next pause) when that phrase is at least `skip_min` long, as Whisper leaves
    out a sentence. The default is the shortest phrase the recogniser is meant to notice:
    `unheard_s` of speech beyond the slack it allows around each word, plus a frame.
    """

    def __init__(
        self,
        skip_after_pause: bool = False,
        skip_min: float = Tuning().unheard_s + 2 * Tuning().word_slack_s + 0.02,
    ) -> None:
        self.skip_after_pause = skip_after_pause
        self.skip_min = skip_min
        self.calls = 0

    def runs(self, audio: np.ndarray) -> list[tuple[str, float, float, bool]]:
        """(name, start, end, cut off by the clip's end) per run of one loud frequency."""
        count = len(audio) // FRAME
        frames = audio[: count * FRAME].reshape(count, FRAME)
        loud = np.sqrt(np.mean(frames**2, axis=1)) > 0.01
        peaks = np.argmax(np.abs(np.fft.rfft(frames, axis=1)), axis=1) * BIN_HZ
        out: list[tuple[str, float, float, bool]] = []
        index = 0
        while index < count:
            if not loud[index]:
                index += 1
                continue
            first = index
            while index < count and loud[index] and peaks[index] == peaks[first]:
                index += 1
            name = word_name(float(peaks[first]))
            out.append((name, first * FRAME / SAMPLE_RATE, index * FRAME / SAMPLE_RATE, False))
        if out and loud[count - 1] and len(audio) - count * FRAME < FRAME // 2:
            name, start, end, _ = out[-1]
            out[-1] = (name, start, end, True)
        return out

    def decode(
        self,
        audio: np.ndarray,
        *,
        final: bool,
        language: str | None,
        prompt: str = "",
        prefix: str = "",
    ) -> Hypothesis:
        self.calls += 1
        runs = self.runs(np.asarray(audio, dtype=np.float32))
        runs = runs[len(prefix.split()) :]
        if self.skip_after_pause and prefix and runs:
            phrase = 1
            while phrase < len(runs) and runs[phrase][1] - runs[phrase - 1][2] < 0.1:
                phrase += 1
            if phrase < len(runs) and runs[phrase - 1][2] - runs[0][1] >= self.skip_min:
                runs = runs[phrase:]
        words = []
        for name, start, end, cut in runs:
            text = name + "~" if cut and not final else name  # a cut-off word is misheard
            words.append(WordOut(text, text, start, end, 0.9))
        heard = Hypothesis(tuple(words), language)
        return self.then(
            heard, final=final, prompt=prompt, prefix=prefix, seconds=len(audio) / SAMPLE_RATE
        )

    def then(
        self, heard: Hypothesis, *, final: bool, prompt: str, prefix: str, seconds: float
    ) -> Hypothesis:
        """What the decoder returns for what it `heard` in a clip of `seconds`: the
        variants below change it as Whisper would."""
        return heard


plans = st.lists(
    st.tuples(
        st.sampled_from(range(300, 2100, 100)),
        st.sampled_from([0.2, 0.26, 0.32, 0.4, 0.5, 0.64]),
        st.sampled_from([0.0, 0.0, 0.0, 0.06, 0.12, 0.2, 0.4, 0.8, 1.6]),
    ),
    min_size=1,
    max_size=18,
    unique_by=lambda word: word[0],
)

feeds = st.lists(st.integers(min_value=160, max_value=24_000), min_size=1, max_size=40)


def run(
    audio: np.ndarray, sizes: list[int], decoder: ToneDecoder, tuning: Tuning | None = None
) -> list[Transcript]:
    recognizer = StreamingRecognizer(
        decoder,
        EnergyVad(),
        RecognizerOptions(language="en", interim_results=True, endpointing_ms=300),
        tuning,
    )
    events = []
    position, turn = 0, 0
    while position < len(audio):
        size = sizes[turn % len(sizes)]
        events += recognizer.feed(audio[position : position + size])
        position += size
        turn += 1
    events += recognizer.finalize()
    return [e for e in events if isinstance(e, Transcript)]


def check(results: list[Transcript], truth: list[Spoken], seconds: float) -> None:
    finals = [r for r in results if r.is_final]
    cursor = 0.0
    for final in finals:
        assert final.start == pytest.approx(cursor, abs=1e-9), "finals must tile the clock"
        assert final.end >= final.start
        for word in final.words:
            assert final.start - 1e-9 <= word.start <= word.end <= final.end + 1e-9
        cursor = final.end
    assert cursor == pytest.approx(seconds, abs=1e-6), "the last final ends with the audio"
    settled = [w for f in finals for w in f.words]
    names = [w.word for w in settled]
    assert not [n for n in names if n.endswith("~")], f"a cut-off word was settled: {names}"
    assert names == [w.name for w in truth], "every word exactly once, in order"
    windows = [(f.start, f.end, {w.word for w in f.words}) for f in finals]
    for spoken in truth:
        holding = [(a, b) for a, b, words in windows if spoken.name in words]
        assert len(holding) == 1
        start, end = holding[0]
        assert start - TOLERANCE <= spoken.start and spoken.end <= end + TOLERANCE, (
            f"{spoken} is cut by its window [{start:.3f}, {end:.3f}]"
        )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, sizes=feeds)
def test_every_word_settles_once_whole_and_in_order(
    plan: list[tuple[int, float, float]], sizes: list[int]
) -> None:
    audio, truth = synthesize(plan)
    results = run(audio, sizes, ToneDecoder())
    check(results, truth, len(audio) / SAMPLE_RATE)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, sizes=feeds)
def test_words_a_decoder_skips_after_a_pause_are_heard_again(
    plan: list[tuple[int, float, float]], sizes: list[int]
) -> None:
    audio, truth = synthesize(plan)
    results = run(audio, sizes, ToneDecoder(skip_after_pause=True))
    check(results, truth, len(audio) / SAMPLE_RATE)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=feeds)
def test_long_speech_without_a_pause_settles_while_it_goes_on(sizes: list[int]) -> None:
    """25 s of words with no pause long enough to end a phrase (40 ms between words, as in
    fluent speech): finals come during the speech, none waits for its end."""
    freqs = list(range(300, 2100, 100))
    plan = [(freqs[i % len(freqs)], 0.32, 0.04) for i in range(70)]
    audio, truth = synthesize(plan)
    results = run(audio, sizes, ToneDecoder())
    finals = [r for r in results if r.is_final and r.words]
    speech_end = truth[-1].end
    assert len([f for f in finals if f.end < speech_end - 1.0]) >= 5
    names = [w.word for f in finals for w in f.words]
    assert names == [w.name for w in truth]


class ContextRecorder(ToneDecoder):
    """Notes, per decode, whether it was an endpoint's, how many words of previous text it was
    given as its prompt, and how many settled words as its forced prefix (the audio context
    it re-hears)."""

    def __init__(self) -> None:
        super().__init__()
        self.given: list[tuple[bool, int, int]] = []

    def then(
        self, heard: Hypothesis, *, final: bool, prompt: str, prefix: str, seconds: float
    ) -> Hypothesis:
        self.given.append((final, len(prompt.split()), len(prefix.split())))
        return heard


WORD_PITCH_S = 0.38  # the words below: 0.32 s of tone, 0.06 s apart


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=feeds)
def test_an_endpoint_decode_rehears_more_of_what_was_said(sizes: list[int]) -> None:
    """The endpoint's decode writes a phrase's last words for good, and it is where the
    finals lost most against a batch decode; given 9 s of the speech before its open words
    instead of the agreement decodes' 6 s, the recordings' finals came 1.8-2.1 points of WER
    closer to it (docs/engine.md). So: 16 s of fluent words, then a pause."""
    tuning = Tuning()
    assert tuning.final_context_s > tuning.context_s
    plan = [(300 + 50 * i, 0.32, 0.06) for i in range(42)]
    plan[-1] = (plan[-1][0], 0.32, 1.0)
    audio, truth = synthesize(plan)
    decoder = ContextRecorder()
    results = run(audio, sizes, decoder, tuning)
    agreement = [words * WORD_PITCH_S for final, _, words in decoder.given if not final]
    endpoint = [words * WORD_PITCH_S for final, _, words in decoder.given if final]
    assert endpoint, "the pause ends the phrase"
    assert max(agreement) <= tuning.context_s + WORD_PITCH_S
    assert endpoint[0] >= tuning.final_context_s - 2 * WORD_PITCH_S
    names = [w.word for r in results if r.is_final for w in r.words]
    assert names == [w.name for w in truth]


def test_agreement_is_the_longest_common_prefix() -> None:
    def words(text: str) -> list[WordOut]:
        return [
            WordOut(t.lower().strip(".,"), t, i, i + 0.5, 0.9) for i, t in enumerate(text.split())
        ]

    assert agreed_prefix(words("From fairest creatures"), words("from fairest, creature")) == 2
    assert agreed_prefix(words(""), words("a b")) == 0
    # never the newest word, and never a word ending within hold_back of the audio's end
    current = words("a b c d")
    assert settle_count(words("a b c d"), current, audio_end=10.0, hold_back=0.1) == 3
    assert settle_count(words("a b c d"), current, audio_end=2.55, hold_back=0.1) == 2
    assert settle_count(words("a x c d"), current, audio_end=10.0, hold_back=0.1) == 1


def test_a_final_ends_halfway_into_the_pause_after_its_last_word() -> None:
    last = WordOut("a", "a", 1.0, 1.4, 0.9)
    assert cut_between(last, WordOut("b", "b", 1.8, 2.0, 0.9), 5.0) == pytest.approx(1.6)
    assert cut_between(last, WordOut("b", "b", 1.3, 2.0, 0.9), 5.0) == pytest.approx(1.4)
    assert cut_between(last, None, 1.2) == pytest.approx(1.2)


def test_a_stutter_shorter_than_a_word_is_dropped() -> None:
    one = WordOut("one", "One", 0.0, 0.6, 0.9)
    again = WordOut("one", "one.", 0.64, 0.7, 0.9)
    said_twice = WordOut("one", "one.", 0.7, 1.1, 0.9)
    assert drop_stutters([one, again]) == [one]
    assert drop_stutters([one, said_twice]) == [one, said_twice]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pause=st.sampled_from([3.5, 4.0, 5.5, 7.0, 9.5]),
    sizes=st.lists(st.integers(min_value=160, max_value=400_000), min_size=1, max_size=6),
)
def test_empty_finals_through_silence_do_not_depend_on_chunking(
    pause: float, sizes: list[int]
) -> None:
    """A busy server joins queued chunks into one feed; the empty finals that carry the window
    through a long silence must come out the same as when audio arrives frame by frame."""
    audio, _ = synthesize([(500, 0.4, 0.0), (700, 0.4, pause), (900, 0.4, 0.0), (1100, 0.4, 0.0)])

    def empty_finals(results: list[Transcript]) -> list[tuple[float, float]]:
        return [(r.start, r.end) for r in results if r.is_final and not r.words]

    reference = empty_finals(run(audio, [320], ToneDecoder()))
    assert reference, "a pause of several seconds gives at least one empty final"
    assert empty_finals(run(audio, sizes, ToneDecoder())) == reference


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, sizes=feeds)
def test_interims_leave_out_the_word_still_being_spoken(
    plan: list[tuple[int, float, float]], sizes: list[int]
) -> None:
    """The newest word of a decode is the one most often misheard (its audio is cut off), and
    showing it only to replace it is flicker: interims end `interim_tail_s` before the audio."""
    tuning = Tuning()
    assert tuning.interim_tail_s > 0
    audio, _ = synthesize(plan)
    results = run(audio, sizes, ToneDecoder(), tuning)
    for interim in (r for r in results if not r.is_final):
        assert all(w.end <= interim.end - tuning.interim_tail_s + 1e-9 for w in interim.words)
        assert not any(w.word.endswith("~") for w in interim.words), "a cut-off word was shown"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, sizes=feeds)
def test_interims_between_decodes_still_leave_out_the_newest_word(
    plan: list[tuple[int, float, float]], sizes: list[int]
) -> None:
    """When interims go out more often than decodes, an interim between two decodes restates
    the older decode: the words it leaves out are those near the end of the audio that decode
    heard, not near the newest audio, or its cut-off last word would show."""
    tuning = Tuning(decode_every_s=0.8, emit_every_s=0.5)
    audio, _ = synthesize(plan)
    results = run(audio, sizes, ToneDecoder(), tuning)
    for interim in (r for r in results if not r.is_final):
        assert not any(w.word.endswith("~") for w in interim.words), "a cut-off word was shown"


def test_a_repair_that_repeats_the_words_around_it_is_an_echo() -> None:
    def words(text: str, at: float = 0.0) -> list[WordOut]:
        return [WordOut(t, t, at + i, at + i + 0.5, 0.9) for i, t in enumerate(text.split())]

    said = words("people are sick and tired and yes we're angry")
    assert echoes(words("we're angry"), said)
    assert echoes(words("angry"), said)
    assert echoes(words("we are angry"), said, following=words("we are angry rallying"))
    assert not echoes(words("sick"), said), "one word repeats only the word just before it"
    assert not echoes(words("we are angry"), said), "not those words in that order"
    assert not echoes(words("rallying supporters"), said, following=words("at the"))
    assert not echoes([], said)
    # a loop of the last words said, however long
    assert echoes(words("right right right right"), words("a closet liberal right"))
    assert echoes(words("we're angry we're angry we're"), said)
    assert not echoes(words("right and wrong"), words("a closet liberal right"))


class EchoingDecoder(ToneDecoder):
    """Hears a 2,500 Hz tone (a cheer: speech to the VAD, no words to the model) as nothing,
    except in a decode of that tone alone with the text so far as the prompt, where it reads
    the prompt's last two words back, as Whisper does on cheering or breath."""

    CHEER = word_name(2500)

    def then(
        self, heard: Hypothesis, *, final: bool, prompt: str, prefix: str, seconds: float
    ) -> Hypothesis:
        spoken = [w for w in heard.words if not w.word.startswith(self.CHEER)]
        if spoken or not heard.words or prefix or len(prompt.split()) < 2:
            return Hypothesis(tuple(spoken), heard.language)
        cheer = heard.words[0]
        half = (cheer.end - cheer.start) / 2
        echo = [
            WordOut(text, text, cheer.start + i * half, cheer.start + (i + 1) * half, 0.9)
            for i, text in enumerate(prompt.split()[-2:])
        ]
        return Hypothesis(tuple(echo), heard.language)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.integers(min_value=2, max_value=5),
    cheer=st.sampled_from([0.7, 1.0, 1.5]),
    sizes=feeds,
)
def test_a_decoder_reading_its_prompt_back_over_a_cheer_adds_no_words(
    before: int, cheer: float, sizes: list[int]
) -> None:
    """Speech no word covers is decoded again on its own; when that decode only reads back the
    words around it, it is dropped, and every spoken word still comes out exactly once."""
    freqs = list(range(300, 2100, 100))
    plan = [(freqs[i], 0.32, 0.04) for i in range(before)]
    plan[-1] = (plan[-1][0], 0.32, 0.3)
    plan += [(2500, cheer, 0.3)] + [(freqs[before + i], 0.32, 0.04) for i in range(3)]
    audio, spoken = synthesize(plan)
    truth = [w for w in spoken if w.name != EchoingDecoder.CHEER]
    results = run(audio, sizes, EchoingDecoder())
    names = [w.word for r in results if r.is_final for w in r.words]
    assert names == [w.name for w in truth]


def test_agreement_decodes_get_a_shorter_prompt_than_endpoint_decodes() -> None:
    """Whisper reads the previous-text prompt on every decode, so a long one makes the frequent
    agreement decodes dearer; they get the last `interim_prompt_words` words, while an
    endpoint's decode (which settles a whole phrase at once) gets `prompt_words`."""
    tuning = Tuning()
    # 90 words in phrases of six, each followed by a pause long enough to end it
    plan = [(300 + 100 * (i % 18), 0.3, 0.5 if i % 6 == 5 else 0.06) for i in range(90)]
    audio, truth = synthesize(plan)
    decoder = ContextRecorder()
    results = run(audio, [1600], decoder, tuning)
    settled = [w.word for r in results if r.is_final for w in r.words]
    assert settled == [s.name for s in truth]  # (names repeat, so not `check`)
    agreement = [n for final, n, _ in decoder.given if not final]
    endpoint = [n for final, n, _ in decoder.given if final]
    assert max(agreement) == tuning.interim_prompt_words < tuning.prompt_words
    assert max(endpoint) == tuning.prompt_words


class LoopingDecoder(ToneDecoder):
    """Like Whisper near the end of a clip: an endpoint's decode goes on past the audio,
    repeating its prefix and the words it heard twice over, every repeated word stacked with
    no length on one instant at the clip's end: its last 20 ms frame, or (`frames_early`) a
    few frames before it, where the aligner's smoothing can leave them (Sonnet 1 once had a
    15-word line twice in one final, stacked 70 ms before the end of a 7.21 s clip)."""

    def __init__(self, frames_early: int = 0) -> None:
        super().__init__()
        self.frames_early = frames_early

    def then(
        self, heard: Hypothesis, *, final: bool, prompt: str, prefix: str, seconds: float
    ) -> Hypothesis:
        if not final or not heard.words:
            return heard
        frame = ALIGNMENT_FRAME_S
        end = round(seconds / frame) * frame - frame * (1 + self.frames_early)
        names = prefix.split() + [w.word for w in heard.words]
        loop = [WordOut(n, n, end, end, 0.9) for n in names * 2]
        return Hypothesis((*heard.words, *loop), heard.language)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, sizes=feeds, frames_early=st.sampled_from([0, 3, 6]))
def test_words_a_decoder_writes_past_the_end_of_the_audio_are_not_heard(
    plan: list[tuple[int, float, float]], sizes: list[int], frames_early: int
) -> None:
    """The stream stops as the last word ends (a Finalize, or the client closing), so the
    last decode's clip ends on speech and its looped words lie where the VAD heard voice."""
    audio, truth = synthesize(plan)
    audio = audio[: round(truth[-1].end * SAMPLE_RATE)]
    results = run(audio, sizes, LoopingDecoder(frames_early))
    check(results, truth, len(audio) / SAMPLE_RATE)


def test_within_audio_keeps_a_short_word_and_one_cut_by_the_clip_end() -> None:
    said = [WordOut("a", "a", 0.50, 0.56, 0.9), WordOut("cat", "cat", 0.56, 0.98, 0.9)]
    cut = WordOut("sat", "sat", 0.98, 1.00, 0.9)  # begun before the last frames, cut by them
    loop = [WordOut("a", "a", 0.98, 0.98, 0.9), WordOut("cat", "cat", 0.98, 0.98, 0.9)]
    assert within_audio([*said, cut], 1.0) == [*said, cut]
    assert within_audio([*said, *loop], 1.0) == said
    assert within_audio([WordOut("a", "a", 0.40, 0.40, 0.9), *said], 1.0)[0].word == "a"


def test_within_audio_cuts_words_stacked_on_one_instant_near_the_clip_end() -> None:
    said = [WordOut("a", "a", 0.50, 0.56, 0.9), WordOut("cat", "cat", 0.56, 0.86, 0.9)]
    loop = [WordOut(w, w, 0.92, 0.92, 0.9) for w in ("a", "cat", "a", "cat")]
    assert within_audio([*said, *loop], 1.0) == said
    # one short word there is speech the aligner squeezed, not a loop: it stays
    squeezed = WordOut("sat", "sat", 0.92, 0.92, 0.9)
    assert within_audio([*said, squeezed], 1.0) == [*said, squeezed]
    # so do two words at one instant well before the end (the next decode hears them again)
    early = [WordOut(w, w, 0.60, 0.60, 0.9) for w in ("a", "cat")]
    assert within_audio(early, 1.0) == early


def test_utterance_ends_do_not_depend_on_chunking() -> None:
    """A server that falls behind hands the recogniser seconds of audio at once; the
    UtteranceEnd after each pause must still come, as it does for audio fed 100 ms at a
    time (the service reads it off word timings, not off how the audio arrived)."""
    # four phrases of three words, each followed by a pause longer than utterance_end_ms
    plan = [(300 + 100 * i, 0.3, 1.6 if i % 3 == 2 else 0.06) for i in range(12)]
    audio, _ = synthesize(plan)

    def utterance_ends(size: int) -> list[float]:
        recognizer = StreamingRecognizer(
            ToneDecoder(),
            EnergyVad(),
            RecognizerOptions(
                language="en", interim_results=True, endpointing_ms=300, utterance_end_ms=1000
            ),
        )
        events = []
        for position in range(0, len(audio), size):
            events += recognizer.feed(audio[position : position + size])
        events += recognizer.finalize()
        return [e.last_word_end for e in events if isinstance(e, UtteranceEnded)]

    steady = utterance_ends(1600)
    assert len(steady) >= 3
    assert utterance_ends(5 * SAMPLE_RATE) == steady
    assert utterance_ends(3 * SAMPLE_RATE) == steady
