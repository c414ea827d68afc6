"""The benchmark's picture of what a viewer sees: flicker counts words that change on screen,
not words the caption pane keeps showing across a final."""

from __future__ import annotations

from testkit.stream_metrics import (
    MID_PHRASE,
    PHRASE_END,
    Message,
    Timing,
    errors_by_final,
    score,
)


def results(words: str, start: float, duration: float, *, final: bool) -> Message:
    tokens = words.split()
    step = duration / max(1, len(tokens))
    return {
        "type": "Results",
        "is_final": final,
        "start": start,
        "duration": duration,
        "channel": {
            "alternatives": [
                {
                    "transcript": words,
                    "words": [
                        {"word": w, "start": start + i * step, "end": start + (i + 1) * step}
                        for i, w in enumerate(tokens)
                    ],
                }
            ]
        },
    }


def flicker_of(*messages: Message) -> tuple[int, str]:
    arrivals = [(float(i), m) for i, m in enumerate(messages)]
    scores = score(arrivals, Timing(0.0), reference="we have a movement going on folks")
    return scores.replaced, scores.text


def test_words_a_final_leaves_on_screen_are_not_flicker() -> None:
    replaced, text = flicker_of(
        results("we have a movement going", 0.0, 2.5, final=False),
        results("we have a", 0.0, 1.5, final=True),
        results("movement going on folks", 1.5, 2.0, final=False),
        results("movement going on folks", 1.5, 2.0, final=True),
    )
    assert (replaced, text) == (0, "we have a movement going on folks")


def test_a_shown_word_the_next_message_changes_is_flicker() -> None:
    replaced, _ = flicker_of(
        results("we have a moment going", 0.0, 2.5, final=False),
        results("we have a", 0.0, 1.5, final=True),
        results("movement going on folks", 1.5, 2.0, final=True),
    )
    assert replaced == 1  # "moment"
    replaced, _ = flicker_of(
        results("we half", 0.0, 1.0, final=False),
        results("we have a movement going on folks", 0.0, 3.0, final=True),
    )
    assert replaced == 1  # "half"


def test_interim_words_inside_a_final_window_are_superseded() -> None:
    # the final heard fewer words than the interim showed in its window: one was taken away
    replaced, _ = flicker_of(
        results("we have a a", 0.0, 2.0, final=False),
        results("we have a", 0.0, 2.0, final=True),
    )
    assert replaced == 1


def test_errors_are_charged_to_the_kind_of_final_that_carried_the_words() -> None:
    """The benchmark's split of the gap to the batch decode: words settled mid-phrase and
    words of an endpoint's final are counted apart, with the batch decode's errors on the same
    words of the text beside ours."""
    mid = results("the cat sat", 0.0, 1.5, final=True)
    end = results("on a big mat", 1.5, 1.5, final=True)
    end["speech_final"] = True
    interim = results("the dog", 3.0, 1.0, final=False)
    counts = errors_by_final(
        "the cat sat on the mat", "the cat sad on the mat", [mid, interim, end]
    )
    # ours: "a" for "the" and an inserted "big", both in the endpoint's final;
    # the batch decode: "sad", on a word our mid-phrase final carried
    assert counts == {MID_PHRASE: (3, 0, 1), PHRASE_END: (3, 2, 0)}
    # a final flushed by Finalize ends a phrase too; a word left out is charged where it was
    flushed = results("on the", 1.5, 1.0, final=True)
    flushed["from_finalize"] = True
    counts = errors_by_final("the cat sat on the mat", "the cat sat on the mat", [mid, flushed])
    assert counts == {MID_PHRASE: (3, 0, 0), PHRASE_END: (3, 1, 0)}
    # no final at all: every word of the text is an error, none is lost from the count
    counts = errors_by_final("the cat sat", "the cat sat", [interim])
    assert counts == {MID_PHRASE: (3, 3, 0), PHRASE_END: (0, 0, 0)}
