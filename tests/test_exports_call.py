"""Both sides of a call in every export: lines labelled by channel ("You", "Others"), the far
side split by speaker when diarized ("Others 1", "Others 2"), names chosen by the person."""

from __future__ import annotations

import io
import json

import srt
import webvtt

from captioner.core.captions import Utterance
from captioner.core.exports import SPEAKER_COLOURS, cues, render
from captioner.core.messages import Word
from captioner.core.voices import Voices

CALL = Voices(("You", "Others"))


def line(channel: int, text: str, start: float, speaker: int | None = None) -> Utterance:
    words = tuple(
        Word(w, start + 0.3 * i, start + 0.3 * i + 0.25, 0.9, w, speaker)
        for i, w in enumerate(text.split())
    )
    return Utterance(channel, text, start, start + 0.3 * len(words), words, speaker)


TALK = [
    line(0, "Can you hear me?", 0.5),
    line(1, "Yes, loud and clear.", 2.0),
    line(0, "Great, let's start.", 4.0),
]
INFO = {"started": "2026-12-06T10:00:00+00:00", "engine": "offline", "source": "call"}


def test_txt_labels_each_line_with_its_side() -> None:
    assert render("txt", TALK, voices=CALL).splitlines() == [
        "You: Can you hear me?",
        "Others: Yes, loud and clear.",
        "You: Great, let's start.",
    ]


def test_srt_and_vtt_cues_carry_the_side_and_its_colour() -> None:
    subs = list(srt.parse(render("srt", TALK, voices=CALL, speaker_colours=True)))
    assert [s.content for s in subs] == [
        f'<font color="{SPEAKER_COLOURS[0]}">You: Can you hear me?</font>',
        f'<font color="{SPEAKER_COLOURS[1]}">Others: Yes, loud and clear.</font>',
        f'<font color="{SPEAKER_COLOURS[0]}">You: Great, let\'s start.</font>',
    ]
    parsed = webvtt.from_buffer(io.StringIO(render("vtt", TALK, voices=CALL)))
    assert [c.text for c in parsed] == [
        "You: Can you hear me?",
        "Others: Yes, loud and clear.",
        "You: Great, let's start.",
    ]


def test_json_keeps_the_channel_index_and_the_names() -> None:
    document = json.loads(render("json", TALK, info=INFO, voices=CALL))
    assert document["channel_names"] == ["You", "Others"]
    assert [(u["channel"], u["speaker_label"]) for u in document["utterances"]] == [
        (0, "You"),
        (1, "Others"),
        (0, "You"),
    ]


def test_the_names_recorded_with_a_transcript_label_its_exports() -> None:
    """History and restore export from the journal: the names come from its details."""
    info = {**INFO, "channel_names": ["Ana", "Support line"]}
    assert render("txt", TALK, info=info).splitlines()[:2] == [
        "Ana: Can you hear me?",
        "Support line: Yes, loud and clear.",
    ]


def test_diarization_splits_the_far_side_only() -> None:
    talk = [
        line(0, "Hello both.", 0.0, speaker=0),
        line(1, "Hi, I'm Bo.", 1.5, speaker=0),
        line(1, "And I'm Cy.", 3.0, speaker=1),
    ]
    assert render("txt", talk, voices=CALL).splitlines() == [
        "You: Hello both.",
        "Others 1: Hi, I'm Bo.",
        "Others 2: And I'm Cy.",
    ]
    colours = [c.speaker for c in cues(talk, voices=CALL)]
    assert colours[0] == 0 and len(set(colours)) == 3


def test_a_word_run_switching_channel_opens_a_new_labelled_cue() -> None:
    """Lines of both sides overlapping in time still read as two labelled cues."""
    talk = [line(0, "I think", 0.0), line(1, "Sorry, go on", 0.2)]
    assert [c.lines[0].split(":")[0] for c in cues(talk, voices=CALL)] == ["You", "Others"]


def test_hostile_names_are_cleaned() -> None:
    voices = Voices.of(["\x1b[31mRed\x1b[0m\nTeam", "", "x" * 500, 7])
    assert voices.channel_names[0] == "[31mRed[0mTeam"
    assert voices.channel_names[1] == "Input 2"
    assert len(voices.channel_names[2]) == 40
    assert voices.channel_names[3] == "Input 4"
    assert Voices.from_info({"channel_names": "You"}) == Voices()  # not a list: ignored


def test_one_input_is_labelled_by_speaker_as_before() -> None:
    talk = [line(0, "Hello.", 0.0, speaker=1), line(0, "Unlabelled.", 1.0)]
    assert render("txt", talk).splitlines() == ["Speaker 2: Hello.", "Unlabelled."]
