"""The crash-safe transcript journal, and the files transcripts are exported to.

Every committed line is appended to a journal as one JSON line and fsync'ed before it
is shown, so a crash, `kill -9` or a power cut loses nothing that was on screen. The
first line is a header (start time, engine, source); a clean end appends a closing line.

A journal's name tells its state, so the next launch finds what was lost without
reading every old transcript:

- `<id>.live.jsonl`: being written, or left behind by a session that never finished
  (the writer holds an advisory lock, so a running session's journal is not offered);
- `<id>.jsonl`: finished cleanly (closing line written, then renamed);
- `<id>.restored.jsonl`: an unfinished journal that `captioner restore` handed back.

The folder is `$CAPTIONER_DATA_DIR/journal`, else the per-user data folder
(`$XDG_DATA_HOME/captioner/journal`, default `~/.local/share/captioner/journal`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from captioner import __version__
from captioner.core.captions import Utterance
from captioner.core.exports import FORMATS, render, utterance_from_record, utterance_record
from captioner.core.voices import Voices
from captioner.paths import platform_data_dir

__all__ = [
    "DATA_DIR_ENV",
    "ExportTarget",
    "JournalContents",
    "JournalError",
    "JournalInfo",
    "JournalWriter",
    "check_target",
    "data_dir",
    "discard",
    "find_unfinished",
    "in_use",
    "journal_dir",
    "load",
    "mark_restored",
    "parse_export_spec",
    "read",
    "resolve",
    "write_atomic",
    "write_export",
]

DATA_DIR_ENV = "CAPTIONER_DATA_DIR"
JOURNAL_FORMAT = "captioner-journal"
JOURNAL_VERSION = 1
LIVE_SUFFIX = ".live.jsonl"
FINISHED_SUFFIX = ".jsonl"
RESTORED_SUFFIX = ".restored.jsonl"

log = logging.getLogger(__name__)


class JournalError(Exception):
    """A file that is not a journal, or a journal that cannot be created."""


def data_dir() -> Path:
    """The per-user data folder; `$CAPTIONER_DATA_DIR` overrides it (tests, portable use)."""
    explicit = os.environ.get(DATA_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return platform_data_dir()


def journal_dir() -> Path:
    return data_dir() / "journal"


def _now() -> datetime:
    return datetime.now().astimezone()


def _fsync_dir(folder: Path) -> None:
    """Make a create or rename in `folder` survive a power cut (a no-op where unsupported)."""
    if sys.platform == "win32":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":

    def _lock(fd: int, *, exclusive: bool) -> bool:
        """No advisory locks here: a running session's journal cannot be told apart."""
        return True

    def _unlock(fd: int) -> None:
        pass

else:
    import fcntl

    def _lock(fd: int, *, exclusive: bool) -> bool:
        """Try to lock without waiting; False when another process holds the file."""
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


# -- writing ------------------------------------------------------------------------


class JournalWriter:
    """Appends committed utterances to a new journal, each one on disk before it returns.

    Each line goes out in one `write` on an O_APPEND descriptor and is followed by
    `fsync`. A write that failed part-way leaves a fragment; the next line then starts
    with a newline so the fragment stays a line of its own that readers skip.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.count = 0
        self._fd: int | None = fd
        self._torn = False

    @classmethod
    def create(
        cls,
        *,
        engine: str,
        source: str,
        settings: Mapping[str, Any] | None = None,
        folder: Path | None = None,
        started: datetime | None = None,
    ) -> JournalWriter:
        """Start a journal in `folder` (default: `journal_dir()`); raises JournalError.

        `started` is now unless given (a journal written afterwards, as the history bench's)."""
        folder = folder if folder is not None else journal_dir()
        started = started or _now()
        try:
            if not folder.is_dir():
                folder.mkdir(parents=True)
                _fsync_dir(folder.parent)
            path, fd = _create_exclusive(folder, started.strftime("%Y%m%d-%H%M%S"))
        except OSError as exc:
            raise JournalError(
                f"cannot create a journal in {folder}: {exc.strerror or exc}"
            ) from exc
        writer = cls(path, fd)
        header = {
            "type": "header",
            "format": JOURNAL_FORMAT,
            "version": JOURNAL_VERSION,
            "started": started.isoformat(timespec="seconds"),
            "engine": engine,
            "source": source,
            "settings": dict(settings or {}),
            "captioner": __version__,
            "pid": os.getpid(),
        }
        try:
            writer._write(header)
            _fsync_dir(folder)
        except OSError as exc:
            writer.close()
            with contextlib.suppress(OSError):
                path.unlink()
            raise JournalError(f"cannot write the journal {path}: {exc.strerror or exc}") from exc
        return writer

    def append(self, utterance: Utterance) -> None:
        """Write one utterance durably; raises OSError (the caller decides what to say)."""
        self._write({"type": "utterance", **utterance_record(utterance)})
        self.count += 1

    def finish(self, outcome: str = "finished") -> Path:
        """Close cleanly: the closing line, then the finished name. Returns the new path.

        A journal that never received a line is removed instead: it holds nothing to keep.
        """
        if self._fd is None:
            return self.path
        if self.count == 0:
            self.close()
            with contextlib.suppress(OSError):
                self.path.unlink()
            return self.path
        self._write(
            {
                "type": "end",
                "ended": _now().isoformat(timespec="seconds"),
                "utterances": self.count,
                "outcome": outcome,
            }
        )
        finished = self.path.with_name(_stem(self.path) + FINISHED_SUFFIX)
        os.replace(self.path, finished)
        _fsync_dir(finished.parent)
        self.path = finished
        self.close()
        return finished

    def abandon(self) -> None:
        """Leave the journal unfinished (the session crashed), unless it holds nothing."""
        self.close()
        if self.count == 0:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def close(self) -> None:
        """Release the file without finishing it: it stays an unfinished journal."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _write(self, record: Mapping[str, Any]) -> None:
        if self._fd is None:
            raise OSError("the journal is closed")
        try:
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except ValueError as exc:  # a time that is not a finite number: never write bad JSON
            raise OSError(errno.EINVAL, f"a line JSON cannot hold ({exc})") from exc
        line += "\n"
        data = ("\n" + line if self._torn else line).encode()
        self._torn = True
        written = 0
        while written < len(data):
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)
        self._torn = False


def _create_exclusive(folder: Path, stamp: str) -> tuple[Path, int]:
    """A new live journal, locked; never reuses a name, even within one second and process."""
    for n in range(1000):
        suffix = f"-{n}" if n else ""
        path = folder / f"{stamp}-{os.getpid()}{suffix}{LIVE_SUFFIX}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except FileExistsError:
            continue
        _lock(fd, exclusive=True)
        return path, fd
    raise FileExistsError(f"no free journal name in {folder}")


def _stem(path: Path) -> str:
    for suffix in (LIVE_SUFFIX, RESTORED_SUFFIX, FINISHED_SUFFIX):
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


# -- reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalInfo:
    """What `captioner restore --list` shows about one journal."""

    path: Path
    id: str
    started: datetime | None
    engine: str
    source: str
    count: int
    """How many lines (utterances) it holds."""
    finished: bool
    damaged_lines: int = 0
    """Lines that could not be read: a torn last line after a power cut, usually."""
    invalid_lines: int = 0
    """Whole lines whose values make no sense (a time that is not a finite number)."""

    @property
    def live(self) -> bool:
        return self.path.name.endswith(LIVE_SUFFIX)

    def describe(self) -> str:
        when = self.started.strftime("%Y-%m-%d %H:%M") if self.started else "unknown start"
        plural = "" if self.count == 1 else "s"
        return f"{when} · {self.count} utterance{plural} · {self.engine} · {self.source}"


@dataclass(frozen=True)
class JournalContents:
    info: JournalInfo
    header: Mapping[str, Any]
    utterances: list[Utterance] = field(default_factory=list)

    @property
    def voices(self) -> Voices:
        """How its lines are labelled: by side for a call (its recorded channel names)."""
        settings = self.header.get("settings")
        return Voices.from_info(settings if isinstance(settings, Mapping) else None)


def read(path: Path) -> JournalContents:
    """Everything a journal holds; unreadable lines (a torn tail) are skipped and counted.

    Raises JournalError when the file cannot be read or is not a journal.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise JournalError(f"cannot read {path}: {exc.strerror or exc}") from exc
    header: Mapping[str, Any] | None = None
    utterances: list[Utterance] = []
    finished = False
    damaged = invalid = 0
    for number, raw in enumerate(data.split(b"\n")):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            damaged += 1
            continue
        if not isinstance(record, dict):
            damaged += 1
            continue
        kind = record.get("type")
        if kind == "header":
            if record.get("format") != JOURNAL_FORMAT:
                raise JournalError(f"{path} is not a captioner journal")
            header = header or record
        elif number == 0:
            raise JournalError(f"{path} is not a captioner journal")
        elif kind == "utterance":
            try:
                utterances.append(utterance_from_record(record))
            except ValueError:
                invalid += 1
        elif kind == "end":
            finished = True
    header = header or {}
    info = JournalInfo(
        path=path,
        id=_stem(path),
        started=_datetime(header.get("started")),
        engine=str(header.get("engine") or "unknown engine"),
        source=str(header.get("source") or "unknown source"),
        count=len(utterances),
        finished=finished,
        damaged_lines=damaged,
        invalid_lines=invalid,
    )
    return JournalContents(info, header, utterances)


def load(path: Path) -> list[Utterance]:
    """The utterances of a journal, in the order they were committed."""
    return read(path).utterances


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@contextlib.contextmanager
def _unless_in_use(path: Path) -> Iterator[bool]:
    """True (and holding a shared lock) when no running session is writing `path`."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield False
        return
    try:
        free = _lock(fd, exclusive=False)
        try:
            yield free
        finally:
            if free:
                _unlock(fd)
    finally:
        os.close(fd)


def in_use(path: Path) -> bool:
    """Whether a running session is still writing this journal."""
    with _unless_in_use(path) as free:
        return path.exists() and not free


def find_unfinished(folder: Path | None = None) -> list[JournalInfo]:
    """Journals of sessions that ended without finishing, oldest first.

    A journal a running session still holds is not among them, nor a file that is not
    a journal (it is logged and left alone).
    """
    folder = folder if folder is not None else journal_dir()
    try:
        candidates = sorted(folder.glob("*" + LIVE_SUFFIX))
    except OSError:
        return []
    found = []
    for path in candidates:
        with _unless_in_use(path) as free:
            if not free:
                continue
            try:
                info = read(path).info
            except JournalError as exc:
                log.warning("%s", exc)
                continue
        if not info.finished:
            found.append(info)
    return sorted(found, key=lambda i: (i.started is None, i.started or datetime.min, i.id))


def resolve(name: str, folder: Path | None = None) -> Path | None:
    """A journal named by path or by id (as `restore --list` prints it); None if absent."""
    given = Path(name).expanduser()
    if given.is_file():
        return given
    folder = folder if folder is not None else journal_dir()
    for suffix in (LIVE_SUFFIX, FINISHED_SUFFIX, RESTORED_SUFFIX):
        candidate = folder / (name + suffix)
        if candidate.is_file():
            return candidate
    return None


def mark_restored(path: Path) -> Path:
    """Rename an unfinished journal so it is not offered again; others stay as they are."""
    if not path.name.endswith(LIVE_SUFFIX):
        return path
    restored = path.with_name(_stem(path) + RESTORED_SUFFIX)
    os.replace(path, restored)
    _fsync_dir(path.parent)
    return restored


def discard(path: Path) -> None:
    path.unlink()
    _fsync_dir(path.parent)


# -- export files -------------------------------------------------------------------


@dataclass(frozen=True)
class ExportTarget:
    """One `--export FORMAT:PATH`."""

    format: str
    path: Path

    def __str__(self) -> str:
        return f"{self.format}:{self.path}"


def parse_export_spec(spec: str) -> ExportTarget:
    """`srt:notes.srt` -> ExportTarget; ValueError with the accepted formats otherwise."""
    fmt, sep, path = spec.partition(":")
    fmt = fmt.strip().lower()
    if not sep or not path:
        raise ValueError(f"{spec!r}: expected FORMAT:PATH, e.g. srt:notes.srt")
    if fmt not in FORMATS:
        raise ValueError(f"{spec!r}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return ExportTarget(fmt, Path(path).expanduser())


def check_target(target: ExportTarget) -> str | None:
    """Why `target` cannot be written, or None; probes with a real file, as permission
    bits say nothing true to root or across network file systems."""
    path = target.path
    if path.is_dir():
        return f"{path} is a folder"
    folder = path.parent
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        return f"cannot write in {folder}: {exc.strerror or exc}"
    os.close(fd)
    os.unlink(probe)
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is read-only"
    return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: readers see the old file or the new, never half.

    The temporary file is created beside the target (a rename cannot cross file systems)
    and fsync'ed before the rename.
    """
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def write_export(
    target: ExportTarget, utterances: Sequence[Utterance], info: Mapping[str, Any]
) -> None:
    """Render and write one export; raises OSError."""
    write_atomic(target.path, render(target.format, utterances, info=info))
