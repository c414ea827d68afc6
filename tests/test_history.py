"""The history of sessions: an index over real journals (written by JournalWriter), listed,
searched, kept up to date, rebuilt when damaged, and deleted from."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from captioner import journal
from captioner.core.captions import Utterance
from captioner.history import HIT_END, HIT_START, History, HistoryError
from captioner.journal import JournalWriter

DAY = datetime(2026, 11, 2, 9, 30).astimezone()


def line(text: str, start: float) -> Utterance:
    return Utterance(0, text, start, start + 2.5, (), None)


def write(
    folder: Path, lines: list[str], *, day: int, finish: bool = True, source: str = "USB Mic"
) -> JournalWriter:
    writer = JournalWriter.create(
        engine="Offline engine", source=source, folder=folder, started=DAY + timedelta(days=day)
    )
    for i, text in enumerate(lines):
        writer.append(line(text, 3.0 * i))
    if finish:
        writer.finish()
    return writer


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "journal"
    write(folder, ["Good morning.", "The budget for the third quarter is ready."], day=0)
    write(folder, ["Welcome back to the café.", "Budgets again."], day=1, source="Headset")
    japanese = "今日はとてもいい天気ですね。"
    crashed = write(folder, ["This one crashed.", japanese], day=2, finish=False)
    crashed.close()  # left unfinished, as after a crash
    return folder


def test_sessions_are_listed_newest_first_with_what_a_person_recognises(folder: Path) -> None:
    with History(folder) as history:
        assert history.refresh() == 3
        sessions = history.sessions()
    assert [s.state for s in sessions] == ["unfinished", "finished", "finished"]
    newest, middle, oldest = sessions
    assert oldest.started is not None and oldest.started.date() == DAY.date()
    assert oldest.first_words == "Good morning. The budget for the third quarter is ready."
    assert oldest.lines == 2 and oldest.duration == pytest.approx(5.5)
    assert middle.source == "Headset" and middle.engine == "Offline engine"
    assert oldest.describe() == "2026-11-02 09:30 · 6 s · USB Mic · Offline engine"
    assert newest.path.name.endswith(journal.LIVE_SUFFIX)


def test_search_finds_words_in_any_session_case_accents_and_prefixes(folder: Path) -> None:
    with History(folder) as history:
        history.refresh()
        hits = history.search("quarter")
        assert [h.session.source for h in hits] == ["USB Mic"]
        assert hits[0].snippet == f"The budget for the third {HIT_START}quarter{HIT_END} is ready."
        assert hits[0].start == pytest.approx(3.0)
        # the last word may be the start of a word ("budget" finds "Budgets"), newest first;
        # case and accents do not matter
        assert [h.session.source for h in history.search("budget")] == ["Headset", "USB Mic"]
        assert [h.session.source for h in history.search("BUDG")] == ["Headset", "USB Mic"]
        assert [h.session.source for h in history.search("cafe")] == ["Headset"]
        assert history.search("budget third") and not history.search("budget fourth")
        # Japanese has no spaces: a substring of a line is found
        hits = history.search("天気")
        assert len(hits) == 1 and hits[0].session.state == "unfinished"
        assert f"{HIT_START}天気{HIT_END}" in hits[0].snippet
        # what a person types is never FTS syntax
        for hostile in ('"', "budget OR", "NEAR(", "*", "a:b", "'; DROP TABLE sessions; --"):
            history.search(hostile)
        assert len(history.sessions()) == 3


def test_the_index_follows_the_folder_and_reads_only_what_changed(folder: Path) -> None:
    with History(folder) as history:
        assert history.refresh() == 3
        assert history.refresh() == 0  # nothing changed: no journal read
        write(folder, ["A fourth session about the quarter."], day=3)
        assert history.refresh() == 1
        assert len(history.search("quarter")) == 2
        gone = history.sessions()[-1]
        gone.path.unlink()
        assert history.refresh() == 0
        assert len(history.sessions()) == 3
        assert len(history.search("quarter")) == 1  # its lines went with it


def test_a_session_being_recorded_is_shown_as_such_and_cannot_be_deleted(folder: Path) -> None:
    writer = write(folder, ["Still talking."], day=4, finish=False)
    try:
        with History(folder) as history:
            history.refresh()
            recording = history.sessions()[0]
            assert recording.state == "recording"
            with pytest.raises(HistoryError, match="still being recorded"):
                history.delete(recording)
            assert recording.path.exists()
    finally:
        writer.finish()
    with History(folder) as history:
        history.refresh()
        assert history.sessions()[0].state == "finished"


def test_delete_removes_the_journal_and_its_lines(folder: Path) -> None:
    with History(folder) as history:
        history.refresh()
        target = history.search("café")[0].session
        history.delete(target)
        assert not target.path.exists()
        assert history.search("café") == [] and len(history.sessions()) == 2
        assert history.refresh() == 0


def test_a_damaged_index_is_rebuilt_from_the_journals(folder: Path) -> None:
    with History(folder) as history:
        history.refresh()
        index = history.index
    index.write_bytes(b"this is not a database" * 100)
    with History(folder) as history:
        assert history.refresh() == 3
        assert len(history.search("quarter")) == 1


def test_utterances_are_read_back_from_the_journal(folder: Path) -> None:
    with History(folder) as history:
        history.refresh()
        oldest = history.sessions()[-1]
        assert [u.text for u in history.utterances(oldest)] == [
            "Good morning.",
            "The budget for the third quarter is ready.",
        ]
        assert history.session(oldest.id) == oldest


def test_the_command_line_lists_searches_exports_and_deletes(folder: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, journal.DATA_DIR_ENV: str(folder.parent)}

    def captioner(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "captioner", "history", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    listed = captioner()
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].endswith("(ended without finishing)")
    assert lines[-1].strip() == "Good morning. The budget for the third quarter is ready."
    found = captioner("--search", "third", "quarter")
    assert found.returncode == 0
    session_id, clock, text = found.stdout.strip().split("  ", 2)
    assert clock == "0:00:03" and text == "The budget for the [third] [quarter] is ready."
    target = folder.parent / "out.srt"
    exported = captioner(session_id, "--export", f"srt:{target}")
    assert exported.returncode == 0, exported.stderr
    assert "The budget for the third" in target.read_text()
    deleted = captioner(session_id, "--delete")
    assert deleted.returncode == 0 and "deleted" in deleted.stderr
    assert captioner("--search", "quarter").stdout == ""
    assert captioner("no-such-session").returncode == 2


def test_an_index_locked_by_another_writer_is_a_clear_error_not_a_crash(folder: Path) -> None:
    import sqlite3

    with History(folder) as history:
        index = history.index
    writer = sqlite3.connect(index)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of writing
    try:
        write(folder, ["One more."], day=5)
        with History(folder, timeout=0.2) as history, pytest.raises(HistoryError, match="busy"):
            history.refresh()
    finally:
        writer.rollback()
        writer.close()
    with History(folder) as history:
        assert history.refresh() == 4  # nothing was half-written meanwhile
