"""Past sessions, from the journal: listed, searched, opened, exported and deleted.

The journals are the record (`captioner/journal.py`); this module keeps an index of them in
SQLite beside the journal folder (`history.sqlite3`): one row per session (date, duration,
device, engine, lines, state, first words) and a full-text index (SQLite's FTS5) of every
line. The index is a cache. Each refresh compares the journal folder's files (name, size,
modification time) with what was indexed and reads only journals that are new or changed; a
damaged or foreign index is rebuilt from the journals. So listing a year of daily one-hour
sessions reads no journal, and a search is one FTS5 query (bench/history.py measures both).

Japanese, Chinese and Thai are written without spaces, which FTS5's word tokenizer cannot
split; a search containing such characters is a substring scan of the indexed text instead.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from captioner import journal
from captioner.core.captions import Utterance
from captioner.core.exports import unspaced

__all__ = [
    "History",
    "HistoryError",
    "SearchHit",
    "SessionSummary",
    "duration_text",
    "index_path",
    "opened",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FIRST_WORDS = 14
_LINE_SPAN = 10_000_000
"""A session's lines are FTS rows num * _LINE_SPAN + line: one range per session to delete."""
HIT_START, HIT_END = "\x02", "\x03"
"""Around the matched words in `SearchHit.snippet`: the window bolds them, the terminal
brackets them."""


class HistoryError(Exception):
    """The history cannot be read or changed; the text says why."""


@dataclass(frozen=True)
class SessionSummary:
    id: str
    path: Path
    started: datetime | None
    duration: float
    """Seconds from the first line's start to the last line's end."""
    engine: str
    source: str
    lines: int
    state: str
    """"finished", "unfinished" (it crashed: it can be restored), "restored" or "recording"."""
    first_words: str

    def describe(self) -> str:
        when = self.started.strftime("%Y-%m-%d %H:%M") if self.started else "unknown start"
        return f"{when} · {duration_text(self.duration)} · {self.source} · {self.engine}"


@dataclass(frozen=True)
class SearchHit:
    session: SessionSummary
    start: float
    """The matching line's start, seconds into the session."""
    snippet: str


def duration_text(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{round(seconds)} s"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def index_path(folder: Path | None = None) -> Path:
    """Beside the journal folder: `history.sqlite3` in the data folder."""
    folder = folder if folder is not None else journal.journal_dir()
    return folder.parent / "history.sqlite3"


class History:
    """The index over one journal folder. Not thread-safe: one per thread."""

    def __init__(
        self, folder: Path | None = None, index: Path | None = None, *, timeout: float = 30.0
    ) -> None:
        """`timeout`: how long to wait for another process or thread writing the index."""
        self.folder = folder if folder is not None else journal.journal_dir()
        self.index = index if index is not None else index_path(self.folder)
        self._timeout = timeout
        self._db = self._open()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the index --------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        self.index.parent.mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            db = sqlite3.connect(self.index, timeout=self._timeout)
            try:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    self._create(db)
                db.execute("SELECT count(*) FROM sessions").fetchone()
                return db
            except sqlite3.DatabaseError as exc:
                db.close()
                if attempt == 2:
                    raise HistoryError(f"cannot use the history index {self.index}: {exc}") from exc
                log.warning("the history index %s is damaged (%s); rebuilding it", self.index, exc)
                with contextlib.suppress(OSError):
                    self.index.unlink()
        raise AssertionError("unreachable")

    @staticmethod
    def _create(db: sqlite3.Connection) -> None:
        db.executescript(
            """
            DROP TABLE IF EXISTS sessions;
            DROP TABLE IF EXISTS line_text;
            CREATE TABLE sessions (
                num INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT UNIQUE NOT NULL,
                id TEXT NOT NULL,
                size INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL,
                started TEXT,
                duration REAL NOT NULL,
                engine TEXT NOT NULL,
                source TEXT NOT NULL,
                lines INTEGER NOT NULL,
                state TEXT NOT NULL,
                first_words TEXT NOT NULL
            );
            CREATE INDEX sessions_started ON sessions (started);
            CREATE VIRTUAL TABLE line_text USING fts5(
                text, start UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
            );
            """
        )
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.commit()

    def refresh(self) -> int:
        """Bring the index up to date with the journal folder; returns journals (re)read.

        Raises HistoryError when the index stays locked by another writer past the timeout."""
        try:
            return self._refresh()
        except sqlite3.Error as exc:
            raise HistoryError(f"the history index is busy or unreadable ({exc})") from exc

    def _refresh(self) -> int:
        try:
            entries = {
                path.name: path
                for path in self.folder.glob("*.jsonl")
                if not path.name.startswith(".")
            }
        except OSError:
            entries = {}
        known = {
            name: (num, size, mtime, state)
            for num, name, size, mtime, state in self._db.execute(
                "SELECT num, name, size, mtime_ns, state FROM sessions"
            )
        }
        read = 0
        with self._db:
            for name in known.keys() - entries.keys():
                self._forget(known[name][0])
            for name, path in entries.items():
                try:
                    stat = path.stat()
                except OSError:
                    continue
                old = known.get(name)
                recording = name.endswith(journal.LIVE_SUFFIX) and journal.in_use(path)
                unchanged = old is not None and (old[1], old[2], old[3] == "recording") == (
                    stat.st_size,
                    stat.st_mtime_ns,
                    recording,
                )
                if unchanged:
                    continue
                if old is not None:
                    self._forget(old[0])
                if self._add(path, stat.st_size, stat.st_mtime_ns, recording):
                    read += 1
        return read

    def _forget(self, num: int) -> None:
        self._db.execute(
            "DELETE FROM line_text WHERE rowid BETWEEN ? AND ?",
            (num * _LINE_SPAN, (num + 1) * _LINE_SPAN - 1),
        )
        self._db.execute("DELETE FROM sessions WHERE num = ?", (num,))

    def _add(self, path: Path, size: int, mtime_ns: int, recording: bool) -> bool:
        try:
            contents = journal.read(path)
        except journal.JournalError as exc:
            log.info("not in the history: %s", exc)
            return False
        info, utterances = contents.info, contents.utterances
        spoken = [u for u in utterances if u.text.strip() and not u.gap]
        if recording:
            state = "recording"
        elif path.name.endswith(journal.RESTORED_SUFFIX):
            state = "restored"
        elif info.live or not info.finished:
            state = "unfinished"
        else:
            state = "finished"
        duration = (
            max(u.end for u in utterances) - min(u.start for u in utterances) if utterances else 0.0
        )
        words = " ".join(" ".join(u.text.split()) for u in spoken[:3]).split(" ")
        first = " ".join(words[:FIRST_WORDS]) + (" …" if len(words) > FIRST_WORDS else "")
        cursor = self._db.execute(
            "INSERT INTO sessions (name, id, size, mtime_ns, started, duration, engine, source,"
            " lines, state, first_words) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                path.name,
                info.id,
                size,
                mtime_ns,
                info.started.isoformat() if info.started else None,
                duration,
                info.engine,
                info.source,
                len(spoken),
                state,
                first.strip(),
            ),
        )
        num = cursor.lastrowid
        assert num is not None
        self._db.executemany(
            "INSERT INTO line_text (rowid, text, start) VALUES (?, ?, ?)",
            (
                (num * _LINE_SPAN + i, u.text, u.start)
                for i, u in enumerate(spoken[: _LINE_SPAN - 1])
            ),
        )
        return True

    # -- reading --------------------------------------------------------------------------

    def sessions(self) -> list[SessionSummary]:
        """Every session, newest first (refresh first to see changes on disk)."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM sessions ORDER BY started DESC, num DESC")
        return [self._summary(row) for row in rows]

    def session(self, key: str) -> SessionSummary | None:
        """A session by its id (as `captioner history` prints it) or its file name."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM sessions WHERE id = ? OR name = ? ORDER BY num DESC",
            (key, key),
        ).fetchone()
        return self._summary(row) if row is not None else None

    def search(self, query: str, limit: int = 500) -> list[SearchHit]:
        """Lines that contain every word of `query` (any case, accents ignored, the last word
        may be the start of a word), newest session first; at most `limit`."""
        words = query.split()
        if not words:
            return []
        if any(unspaced(char) for char in query):
            rows = self._db.execute(
                f"SELECT {_COLUMNS_S}, line_text.start, line_text.text FROM line_text "
                "JOIN sessions s ON s.num = line_text.rowid / ? "
                "WHERE line_text.text LIKE ? ESCAPE '\\' "
                "ORDER BY s.started DESC, line_text.rowid LIMIT ?",
                (_LINE_SPAN, "%" + _like(query.strip()) + "%", limit),
            )
            return [
                SearchHit(self._summary(row[:-2]), float(row[-2]), _mark(row[-1], query.strip()))
                for row in rows
            ]
        terms = " ".join('"' + w.replace('"', '""') + '"' for w in words) + "*"
        try:
            rows = self._db.execute(
                f"SELECT {_COLUMNS_S}, line_text.start, "
                f"snippet(line_text, 0, '{HIT_START}', '{HIT_END}', '…', 16) FROM line_text "
                "JOIN sessions s ON s.num = line_text.rowid / ? "
                "WHERE line_text MATCH ? ORDER BY s.started DESC, line_text.rowid LIMIT ?",
                (_LINE_SPAN, terms, limit),
            )
            return [
                SearchHit(self._summary(row[:-2]), float(row[-2]), str(row[-1])) for row in rows
            ]
        except sqlite3.OperationalError as exc:
            raise HistoryError(f"cannot search for {query!r}: {exc}") from exc

    def utterances(self, session: SessionSummary) -> list[Utterance]:
        """The session's lines, read from its journal."""
        return self.contents(session).utterances

    def contents(self, session: SessionSummary) -> journal.JournalContents:
        """The session's journal: its lines, and how they are labelled."""
        try:
            return journal.read(session.path)
        except journal.JournalError as exc:
            raise HistoryError(str(exc)) from exc

    # -- changing -------------------------------------------------------------------------

    def delete(self, session: SessionSummary) -> None:
        """Delete the journal and forget it; a session still being recorded is refused."""
        if session.state == "recording" or journal.in_use(session.path):
            raise HistoryError("this session is still being recorded; stop it first")
        try:
            session.path.unlink(missing_ok=True)
        except OSError as exc:
            raise HistoryError(f"cannot delete {session.path}: {exc.strerror or exc}") from exc
        with self._db:
            row = self._db.execute(
                "SELECT num FROM sessions WHERE name = ?", (session.path.name,)
            ).fetchone()
            if row is not None:
                self._forget(int(row[0]))

    def _summary(self, row: tuple[object, ...]) -> SessionSummary:
        name, id_, started, duration, engine, source, lines, state, first = row
        when = None
        if isinstance(started, str):
            with contextlib.suppress(ValueError):
                when = datetime.fromisoformat(started)
        return SessionSummary(
            id=str(id_),
            path=self.folder / str(name),
            started=when,
            duration=float(duration),  # type: ignore[arg-type]
            engine=str(engine),
            source=str(source),
            lines=int(lines),  # type: ignore[call-overload]
            state=str(state),
            first_words=str(first),
        )


_FIELDS = ("name", "id", "started", "duration", "engine", "source", "lines", "state")
_COLUMNS = ", ".join((*_FIELDS, "first_words"))
_COLUMNS_S = ", ".join(f"s.{c}" for c in (*_FIELDS, "first_words"))


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _mark(text: str, query: str) -> str:
    at = text.find(query)
    if at < 0:
        return text
    return text[:at] + HIT_START + query + HIT_END + text[at + len(query) :]


@contextlib.contextmanager
def opened(folder: Path | None = None) -> Iterator[History]:
    """A refreshed history, closed afterwards."""
    history = History(folder)
    try:
        history.refresh()
        yield history
    finally:
        history.close()
