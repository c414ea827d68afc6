"""How the Whisper decoder's word pieces become Deepgram words (captioner/server/whisper.py):
punctuation joins its neighbours, and the rest of a word a settled prefix cut short is not a
word of its own."""

from __future__ import annotations

from captioner.server.whisper import _merge_punctuation
from captioner.server.wire import WordOut


def pieces(*texts: str) -> list[tuple[str, float, float, float]]:
    return [(text, float(i), i + 0.5, 0.9) for i, text in enumerate(texts)]


def shown(words: list[WordOut]) -> list[str]:
    return [w.punctuated for w in words]


def test_punctuation_joins_the_word_it_belongs_to() -> None:
    words = _merge_punctuation(pieces(" Hello", ",", " (she", " said", ")", " self", "-made", "."))
    assert shown(words) == ["Hello,", "(she", "said)", "self-made."]
    assert [w.word for w in words] == ["hello", "she", "said", "self-made"]


def test_after_a_settled_prefix_its_closing_punctuation_is_dropped() -> None:
    words = _merge_punctuation(pieces(".", " And", " then"), continuing=True)
    assert shown(words) == ["And", "then"]


def test_the_rest_of_a_settled_word_is_not_a_word_of_its_own() -> None:
    # settled "prudent"; the next decode, forced to continue it, says "ly in his power"
    words = _merge_punctuation(pieces("ly", " in", " his", " power"), continuing=True)
    assert shown(words) == ["in", "his", "power"]
    assert words[0].start == 1.0
    # settled "world"; the next decode says "'s due"
    assert shown(_merge_punctuation(pieces("'s", " due"), continuing=True)) == ["due"]


def test_a_new_word_after_a_settled_prefix_is_kept() -> None:
    assert shown(_merge_punctuation(pieces(" ly", " in"), continuing=True)) == ["ly", "in"]
    # a hyphenated compound carried on after a settled "self": its second half is a word
    assert shown(_merge_punctuation(pieces("-substantial", " fuel"), continuing=True)) == [
        "-substantial",
        "fuel",
    ]
    # a word of its own, even one that opens with an apostrophe
    assert shown(_merge_punctuation(pieces(" 'Tis", " true"), continuing=True)) == [
        "'Tis",
        "true",
    ]


def test_without_a_prefix_nothing_is_dropped() -> None:
    assert shown(_merge_punctuation(pieces("ly", " in"))) == ["ly", "in"]


def test_languages_without_spaces_keep_every_piece_and_their_punctuation_joins() -> None:
    # Chinese and Japanese pieces never start with a space: each one is a word
    words = _merge_punctuation(
        pieces("今天", "天气", "很好", "。", "「", "是", "」"), continuing=True, spaced=False
    )
    assert shown(words) == ["今天", "天气", "很好。", "「是」"]
    assert [w.word for w in words] == ["今天", "天气", "很好", "是"]
