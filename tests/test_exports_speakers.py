"""Speaker colours in SRT and WebVTT (opt-in; the window's File > Export asks for them)."""

from __future__ import annotations

import io

import srt
import webvtt

from captioner.core.captions import Utterance, format_gap
from captioner.core.exports import SPEAKER_COLOURS, cues, render, to_srt, to_vtt


def line(text: str, start: float, speaker: int | None) -> Utterance:
    return Utterance(0, text, start, start + 1.5, (), speaker)


TALK = [
    line("Hello there & welcome.", 0.5, 0),
    line("Hi! <Glad> to be here.", 2.5, 1),
    Utterance(0, format_gap(4.0, 9.0), 4.0, 9.0, (), None, gap=True),
    line("Where were we?", 9.5, 0),
    line("Unlabelled words.", 12.0, None),
]


def test_cues_know_their_speaker() -> None:
    assert [c.speaker for c in cues(TALK)] == [0, 1, None, 0, None]


def test_plain_by_default() -> None:
    assert "<font" not in to_srt(TALK) and "STYLE" not in to_vtt(TALK)
    assert render("srt", TALK) == to_srt(TALK)


def test_srt_colours_each_speakers_lines() -> None:
    subs = list(srt.parse(to_srt(TALK, speaker_colours=True)))
    assert (
        subs[0].content
        == f'<font color="{SPEAKER_COLOURS[0]}">Speaker 1: Hello there & welcome.</font>'
    )
    assert subs[1].content.startswith(f'<font color="{SPEAKER_COLOURS[1]}">Speaker 2: Hi!')
    assert subs[2].content == "[connection lost 0:04-0:09]"
    assert subs[3].content.startswith(f'<font color="{SPEAKER_COLOURS[0]}">')
    assert subs[4].content == "Unlabelled words."


def test_vtt_styles_a_class_per_speaker_and_escapes_the_text() -> None:
    text = render("vtt", TALK, speaker_colours=True)
    parsed = webvtt.from_buffer(io.StringIO(text))
    assert parsed.styles[0].text.splitlines() == [
        f"::cue(.speaker1) {{ color: {SPEAKER_COLOURS[0]}; }}",
        f"::cue(.speaker2) {{ color: {SPEAKER_COLOURS[1]}; }}",
    ]
    assert parsed[1].raw_text == "<c.speaker2>Speaker 2: Hi! &lt;Glad&gt; to be here.</c>"
    assert [c.text for c in parsed][2:] == [
        "[connection lost 0:04-0:09]",
        "Speaker 1: Where were we?",
        "Unlabelled words.",
    ]
