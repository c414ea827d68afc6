"""The crash-safe journal, `captioner restore`, and `listen --export`.

The CLI runs as a child process against the scripted emulator, with its data folder
(`CAPTIONER_DATA_DIR`) in the test's tmp_path.
"""

from __future__ import annotations

import asyncio
import html
import json
import signal
import sys
from pathlib import Path

import pytest
import srt
import webvtt

from captioner import journal
from captioner.core.captions import Utterance, format_gap
from captioner.core.messages import Word
from captioner.journal import JournalWriter
from testkit.deepgram_emulator import Accept, DeepgramEmulator, Script, counting_words
from tests.test_cli import KEY, Run, captioner, child_env, noise_wav, words_of

# -- the journal file ---------------------------------------------------------------


def sample_utterances() -> list[Utterance]:
    w = (
        Word("hello", 0.5, 0.9, 0.97, "Hello,", 0),
        Word("world", 1.0, 1.4, 0.8812345, "World!", 1),
    )
    return [
        Utterance(0, "Hello, World!", 0.5, 1.4, w, 0),
        Utterance(0, format_gap(2.0, 95.5), 2.0, 95.5, (), None, gap=True),
        Utterance(1, "trailing guess", 96.0, 97.25, (), None, unconfirmed=True),
    ]


def test_append_then_load_round_trip(tmp_path: Path) -> None:
    writer = JournalWriter.create(engine="Deepgram", source="WAV file x.wav", folder=tmp_path)
    for u in sample_utterances():
        writer.append(u)
    writer.close()  # as if the process died here
    [info] = journal.find_unfinished(tmp_path)
    assert info.path == writer.path and info.count == 3
    assert (info.engine, info.source) == ("Deepgram", "WAV file x.wav")
    assert info.started is not None and not info.finished
    assert journal.load(writer.path) == sample_utterances()


def test_every_line_is_on_disk_when_append_returns(tmp_path: Path) -> None:
    writer = JournalWriter.create(engine="e", source="s", folder=tmp_path)
    for n, u in enumerate(sample_utterances(), 1):
        writer.append(u)
        assert journal.load(writer.path) == sample_utterances()[:n]
    writer.close()


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    writer = JournalWriter.create(engine="e", source="s", folder=tmp_path)
    for u in sample_utterances():
        writer.append(u)
    writer.close()
    whole = writer.path.read_bytes()
    last_line = whole.rstrip(b"\n").rsplit(b"\n", 1)[1]
    writer.path.write_bytes(whole + last_line[: len(last_line) // 2])
    contents = journal.read(writer.path)
    assert contents.utterances == sample_utterances()
    assert contents.info.damaged_lines == 1
    # cut inside the last complete line too: the two before it survive
    writer.path.write_bytes(whole[: len(whole) - len(last_line) // 2])
    assert journal.load(writer.path) == sample_utterances()[:2]


def test_a_clean_finish_leaves_nothing_unfinished(tmp_path: Path) -> None:
    writer = JournalWriter.create(engine="e", source="s", folder=tmp_path)
    writer.append(sample_utterances()[0])
    finished = writer.finish()
    assert journal.find_unfinished(tmp_path) == []
    assert finished.exists() and not finished.name.endswith(".live.jsonl")
    contents = journal.read(finished)
    assert contents.info.finished and contents.utterances == sample_utterances()[:1]
    last = json.loads(finished.read_text().splitlines()[-1])
    assert last["type"] == "end" and last["utterances"] == 1


def test_a_session_with_nothing_committed_leaves_no_file(tmp_path: Path) -> None:
    JournalWriter.create(engine="e", source="s", folder=tmp_path).finish()
    JournalWriter.create(engine="e", source="s", folder=tmp_path).abandon()
    assert list(tmp_path.iterdir()) == []


def test_a_running_sessions_journal_is_not_offered(tmp_path: Path) -> None:
    writer = JournalWriter.create(engine="e", source="s", folder=tmp_path)
    writer.append(sample_utterances()[0])
    assert journal.find_unfinished(tmp_path) == []
    assert journal.in_use(writer.path)
    writer.close()
    assert [i.path for i in journal.find_unfinished(tmp_path)] == [writer.path]


def test_restored_and_foreign_files_are_not_offered(tmp_path: Path) -> None:
    writer = JournalWriter.create(engine="e", source="s", folder=tmp_path)
    writer.append(sample_utterances()[0])
    writer.close()
    (tmp_path / "notes.live.jsonl").write_text('{"something": "else"}\n')
    restored = journal.mark_restored(writer.path)
    assert journal.find_unfinished(tmp_path) == []
    assert journal.load(restored) == sample_utterances()[:1]


def test_the_data_folder_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPTIONER_DATA_DIR", str(tmp_path / "d"))
    assert journal.journal_dir() == tmp_path / "d" / "journal"
    monkeypatch.delenv("CAPTIONER_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert journal.journal_dir() == tmp_path / "xdg" / "captioner" / "journal"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if sys.platform.startswith("linux"):
        assert journal.journal_dir() == tmp_path / "home/.local/share/captioner/journal"


# -- listen, kill -9, restore ---------------------------------------------------------

QUICK = {"final_every": 1.0, "speech_final_every": 1}
"""Emulator pacing: one two-word utterance per second of audio."""


def env_for(tmp_path: Path) -> dict[str, str]:
    return child_env(CAPTIONER_DATA_DIR=str(tmp_path / "data"))


async def listen(
    tmp_path: Path, emu: DeepgramEmulator, *args: str, interrupt_after: float | None = None
) -> Run:
    """`captioner listen ARGS` against the emulator, its data folder in tmp_path."""
    return await captioner(
        "listen",
        *args,
        "--url",
        emu.url,
        "--api-key",
        KEY,
        env=env_for(tmp_path),
        interrupt_after=interrupt_after,
    )


def unfinished(tmp_path: Path) -> list[journal.JournalInfo]:
    return journal.find_unfinished(tmp_path / "data" / "journal")


async def listen_then_kill(tmp_path: Path, emu: DeepgramEmulator, lines: int) -> list[str]:
    """Start `listen` on a long file, SIGKILL it once `lines` captions were printed, and
    return everything it had printed on stdout."""
    wav = noise_wav(tmp_path / "long.wav", 60.0)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "captioner.cli",
        "listen",
        "--file",
        str(wav),
        "--url",
        emu.url,
        "--api-key",
        KEY,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env_for(tmp_path),
    )
    assert proc.stdout is not None
    printed: list[str] = []
    try:
        while len(printed) < lines:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "listen ended before printing enough"
            printed.append(line.decode().rstrip("\n"))
    finally:
        proc.send_signal(signal.SIGKILL)
    rest = await asyncio.wait_for(proc.stdout.read(), 10)
    assert await proc.wait() == -signal.SIGKILL
    return printed + rest.decode().splitlines()


async def test_kill_9_mid_session_then_restore_prints_every_line(tmp_path: Path) -> None:
    async with DeepgramEmulator(Script(**QUICK)) as emu:
        printed = await listen_then_kill(tmp_path, emu, lines=3)
    assert len(printed) >= 3 and words_of(printed) == counting_words(len(words_of(printed)))
    [info] = unfinished(tmp_path)
    assert info.count >= len(printed)

    listed = await captioner("restore", "--list", env=env_for(tmp_path))
    assert listed.code == 0 and info.id in listed.out and "Deepgram" not in listed.out

    restored = await captioner("restore", env=env_for(tmp_path))
    assert restored.code == 0, restored.err
    # nothing shown as final is lost; at most the line being printed at the kill is extra
    assert restored.lines[: len(printed)] == printed
    assert len(restored.lines) <= len(printed) + 1
    assert unfinished(tmp_path) == []
    again = await captioner("restore", env=env_for(tmp_path))
    assert again.code == 0 and again.out == "" and "nothing to restore" in again.err


async def test_listen_says_once_that_an_earlier_session_did_not_finish(tmp_path: Path) -> None:
    async with DeepgramEmulator(Script(**QUICK)) as emu:
        printed = await listen_then_kill(tmp_path, emu, lines=2)
        [info] = unfinished(tmp_path)
        wav = noise_wav(tmp_path / "short.wav", 2.0)
        run = await listen(tmp_path, emu, "--file", str(wav), "--fast")
    assert run.code == 0, run.err
    notices = [line for line in run.err.splitlines() if "without finishing" in line]
    assert notices == [
        f"captioner: An earlier session ended without finishing: {info.count} "
        "utterances kept. `captioner restore` shows them."
    ]
    assert info.count >= len(printed)
    assert "without finishing" not in run.out
    # the second session finished: only the killed one is left to restore
    assert [i.path for i in unfinished(tmp_path)] == [info.path]


async def test_restore_exports_and_discards(tmp_path: Path) -> None:
    async with DeepgramEmulator(Script(**QUICK)) as emu:
        printed = await listen_then_kill(tmp_path, emu, lines=2)
    [info] = unfinished(tmp_path)
    out = tmp_path / "restored.srt"
    run = await captioner(
        "restore", info.id, "--export", f"srt:{out}", "--discard", env=env_for(tmp_path)
    )
    assert run.code == 0, run.err
    assert run.out == ""
    cues = list(srt.parse(out.read_text()))
    assert words_of([c.content.replace("\n", " ") for c in cues])[: len(words_of(printed))] == (
        words_of(printed)
    )
    assert not info.path.exists() and unfinished(tmp_path) == []


async def test_restore_export_needs_one_session(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "journal"
    for _ in range(2):
        writer = JournalWriter.create(engine="e", source="s", folder=folder)
        writer.append(sample_utterances()[0])
        writer.close()
    run = await captioner("restore", "--export", f"txt:{tmp_path / 'x.txt'}", env=env_for(tmp_path))
    assert run.code == 2 and "name one" in run.err
    assert len(unfinished(tmp_path)) == 2
    both = await captioner("restore", "--json", env=env_for(tmp_path))
    assert both.code == 0, both.err
    assert [json.loads(line)["text"] for line in both.lines] == ["Hello, World!"] * 2


async def test_a_clean_exit_leaves_no_unfinished_journal(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 6.0)
    async with DeepgramEmulator(Script()) as emu:
        run = await listen(tmp_path, emu, "--file", str(wav), "--fast")
    assert run.code == 0, run.err
    assert len(run.lines) == 2
    assert unfinished(tmp_path) == []
    [finished] = (tmp_path / "data" / "journal").glob("*.jsonl")
    assert [u.text for u in journal.load(finished)] == run.lines
    assert journal.read(finished).info.finished


async def test_no_journal_writes_nothing(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 2.0)
    async with DeepgramEmulator(Script()) as emu:
        run = await listen(tmp_path, emu, "--file", str(wav), "--fast", "--no-journal")
    assert run.code == 0, run.err
    assert run.lines
    assert not (tmp_path / "data").exists()


async def test_an_unwritable_data_folder_is_said_and_captions_go_on(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the folder should be")
    wav = noise_wav(tmp_path / "n.wav", 2.0)
    async with DeepgramEmulator(Script()) as emu:
        run = await listen(tmp_path, emu, "--file", str(wav), "--fast")
    assert run.code == 0, run.err
    assert words_of(run.lines) == counting_words(4)
    assert "captions will not survive a crash" in run.err


# -- listen --export ----------------------------------------------------------------


def srt_words(path: Path) -> list[str]:
    return words_of([c.content.replace("\n", " ") for c in srt.parse(path.read_text())])


def vtt_words(path: Path) -> list[str]:
    captions = webvtt.from_string(path.read_text(), strict=True)
    return words_of([html.unescape(" ".join(c.lines)) for c in captions])


def export_args(tmp_path: Path) -> list[str]:
    args = []
    for fmt, name in [
        ("srt", "t.srt"),
        ("vtt", "t.vtt"),
        ("txt", "t.txt"),
        ("txt-timestamps", "ts.txt"),
        ("json", "t.json"),
    ]:
        args += ["--export", f"{fmt}:{tmp_path / name}"]
    return args


def check_exports(tmp_path: Path, run: Run) -> None:
    words = words_of(run.lines)
    assert words
    assert srt_words(tmp_path / "t.srt") == words
    assert vtt_words(tmp_path / "t.vtt") == words
    assert (tmp_path / "t.txt").read_text().splitlines() == run.lines
    stamped = (tmp_path / "ts.txt").read_text().splitlines()
    assert [line.split("] ", 1)[1] for line in stamped] == run.lines
    assert all(line.startswith("[0:00:") for line in stamped)
    doc = json.loads((tmp_path / "t.json").read_text())
    assert [u["text"] for u in doc["utterances"]] == run.lines
    spoken = [w["punctuated_word"] or w["word"] for u in doc["utterances"] for w in u["words"]]
    assert words_of(spoken) == words
    assert all(0 <= w["confidence"] <= 1 for u in doc["utterances"] for w in u["words"])
    assert doc["engine"] == "Custom URL" and doc["source"].endswith(".wav")
    assert not list(tmp_path.glob(".*.tmp"))


async def test_listen_exports_every_format(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 6.0)
    async with DeepgramEmulator(Script()) as emu:
        run = await listen(tmp_path, emu, "--file", str(wav), "--fast", *export_args(tmp_path))
    assert run.code == 0, run.err
    assert words_of(run.lines) == counting_words(12)
    check_exports(tmp_path, run)
    assert "wrote srt to" in run.err


async def test_ctrl_c_exports_what_was_committed(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 30.0)
    async with DeepgramEmulator(Script(**QUICK)) as emu:
        run = await listen(
            tmp_path, emu, "--file", str(wav), *export_args(tmp_path), interrupt_after=3.0
        )
    assert run.code == 0, run.err
    check_exports(tmp_path, run)


async def test_an_error_end_exports_what_was_committed(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 6.0)
    script = Script(handshakes=[Accept(decode_fail_after=3.0)], **QUICK)
    async with DeepgramEmulator(script) as emu:
        run = await listen(tmp_path, emu, "--file", str(wav), *export_args(tmp_path))
    assert run.code == 4, run.err
    assert "DATA-0000" in run.err
    check_exports(tmp_path, run)
    # an error end is still a clean end: the journal is finished
    assert unfinished(tmp_path) == []


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("docx:{tmp}/t.docx", "unknown format 'docx'"),
        ("srt", "FORMAT:PATH"),
        ("srt:{tmp}/no/such/folder/t.srt", "does not exist"),
        ("srt:{tmp}", "is a folder"),
    ],
)
async def test_bad_exports_are_usage_errors_before_connecting(
    tmp_path: Path, spec: str, needle: str
) -> None:
    wav = noise_wav(tmp_path / "n.wav", 1.0)
    async with DeepgramEmulator(Script()) as emu:
        run = await listen(tmp_path, emu, "--file", str(wav), "--export", spec.format(tmp=tmp_path))
    assert run.code == 2, run.err
    assert needle in run.err
    assert emu.connections == []


async def test_the_same_export_path_twice_is_a_usage_error(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 1.0)
    target = tmp_path / "t.txt"
    run = await captioner(
        "listen",
        "--file",
        str(wav),
        "--url",
        "ws://127.0.0.1:9/v1/listen",
        "--export",
        f"txt:{target}",
        "--export",
        f"txt-timestamps:{target}",
        env=env_for(tmp_path),
    )
    assert run.code == 2 and "already named" in run.err


async def test_help_documents_the_export_formats() -> None:
    run = await captioner("listen", "--help")
    assert run.code == 0
    for fmt in ("txt", "txt-timestamps", "srt", "vtt", "json", "--no-journal"):
        assert fmt in run.out
