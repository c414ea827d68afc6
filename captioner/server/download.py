"""Download files of known size and SHA-256 over HTTP: resumable, cancellable, with progress.

This is what installs the offline model, for `captioner models fetch` and for the window's
"Download the offline model" alike. Each file goes to `<name>.part` in a download folder that
outlives a failed or cancelled attempt, so the next attempt asks the server only for the
bytes still missing (an HTTP `Range` request). A dropped connection is retried, from where
it stopped, a few times with growing pauses, for as long as each attempt brings new bytes.

Nothing the server says is trusted: the body may never run past the size we expect, a
`206` must cover exactly the range asked for, and the finished file must match its SHA-256
before it is renamed from `.part` to its name. A file that fails the check is deleted (its
bytes are useless) and the error says so. A full disk is named as such, with the space
needed, rather than as an I/O error. The HTTP client is httpx2 (already in the app through
huggingface_hub): proxies from the environment, the system's trust store, strict timeouts.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx2

__all__ = [
    "ChecksumError",
    "DiskFullError",
    "DownloadCancelled",
    "DownloadError",
    "Downloader",
    "NetworkError",
    "Progress",
    "RateMeter",
    "RemoteFile",
]

USER_AGENT = "captioner-model-download/1"


class Progress(Protocol):
    """Receives progress: a stage label, bytes done, and the total if known."""

    def __call__(self, stage: str, done: int, total: int | None) -> None: ...


class DownloadError(Exception):
    """A download failed; the text says why and what to do."""


class DownloadCancelled(DownloadError):
    """The person cancelled; what arrived so far is kept for the next attempt."""


class NetworkError(DownloadError):
    """The server could not be reached or kept failing; what arrived so far is kept."""


class ChecksumError(DownloadError):
    """A finished file did not match its SHA-256; it was deleted."""


class DiskFullError(DownloadError):
    """Not enough free space where the files go."""


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: where it lives, and what it must be."""

    name: str
    url: str
    size: int
    sha256: str


class RateMeter:
    """Bytes per second over the last few seconds, for "4.2 MB/s" and "about 30 s left"."""

    def __init__(self, window: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._marks: deque[tuple[float, int]] = deque()

    def add(self, done: int) -> None:
        now = self._clock()
        if self._marks and done < self._marks[-1][1]:  # a new stage counts from zero
            self._marks.clear()
        self._marks.append((now, done))
        while len(self._marks) > 2 and now - self._marks[1][0] >= self._window:
            self._marks.popleft()

    def rate(self) -> float | None:
        """Bytes per second, or None until there is half a second of history."""
        if len(self._marks) < 2:
            return None
        (t0, d0), (t1, d1) = self._marks[0], self._marks[-1]
        if t1 - t0 < 0.5:
            return None
        return (d1 - d0) / (t1 - t0)

    def eta(self, done: int, total: int | None) -> float | None:
        rate = self.rate()
        if not total or not rate or rate <= 0:
            return None
        return max(0.0, (total - done) / rate)


def _ignore(stage: str, done: int, total: int | None) -> None:
    return None


class Downloader:
    """Fetches `RemoteFile`s into `folder`, resuming from `<name>.part` files left there.

    `cancel` (a `threading.Event`) is checked between reads: the download usually runs on a
    worker thread while the window or the terminal waits. After a failed attempt the next one
    waits `pauses[k]` (k failures in a row, each without a single new byte); after as many
    failures as there are pauses, it gives up.
    """

    def __init__(
        self,
        folder: Path,
        progress: Progress | None = None,
        *,
        cancel: threading.Event | None = None,
        stage: str = "Downloading",
        timeout: float = 20.0,
        pauses: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 15.0),
        client: httpx2.Client | None = None,
    ) -> None:
        self.folder = folder
        self._progress = progress or _ignore
        self._cancel = cancel or threading.Event()
        self._stage = stage
        self._pauses = tuple(pauses) or (0.0,)
        self._retries = len(self._pauses)
        self._client = client or httpx2.Client(
            timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=True,
            max_redirects=5,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )
        self._owns_client = client is None
        self._done_before = 0
        self._total = 0

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the whole set --------------------------------------------------------------------------

    def fetch(self, files: Sequence[RemoteFile], *, extra_space: int = 0) -> list[Path]:
        """Every file, verified, in `folder`; returns their paths in order.

        `extra_space` is room needed beside the downloads afterwards (the assembled model),
        counted in the free-space check made before the first byte.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        self._total = sum(f.size for f in files)
        have = {f.name: self._have(f) for f in files}
        self._check_space(sum(f.size - have[f.name] for f in files) + extra_space)
        paths = []
        self._done_before = 0
        for remote in files:
            paths.append(self._fetch_one(remote))
            self._done_before += remote.size
        return paths

    def _have(self, remote: RemoteFile) -> int:
        final = self.folder / remote.name
        if final.is_file() and final.stat().st_size == remote.size:
            return remote.size
        part = self._part(remote)
        return min(part.stat().st_size, remote.size) if part.is_file() else 0

    def _check_space(self, needed: int) -> None:
        free = shutil.disk_usage(self.folder).free
        if free < needed:
            raise DiskFullError(
                f"not enough free disk space in {self.folder}: the download needs "
                f"{_mb(needed)} MB more and only {_mb(free)} MB are free"
            )

    def _part(self, remote: RemoteFile) -> Path:
        return self.folder / f"{remote.name}.part"

    # -- one file -------------------------------------------------------------------------------

    def _fetch_one(self, remote: RemoteFile) -> Path:
        final = self.folder / remote.name
        if final.is_file() and final.stat().st_size == remote.size:
            if _sha256(final) == remote.sha256:
                self._report(remote.size)
                return final
            final.unlink()
        part = self._part(remote)
        if part.is_file() and part.stat().st_size > remote.size:
            part.unlink()
        failures = 0
        best = part.stat().st_size if part.is_file() else 0
        while True:
            self._check_cancel()
            before = part.stat().st_size if part.is_file() else 0
            if before == remote.size:
                break
            try:
                self._transfer(remote, part, before)
                break
            except (httpx2.TransportError, _Interrupted) as exc:
                after = part.stat().st_size if part.is_file() else 0
                # only new ground resets the count: a server that keeps sending the same
                # first bytes, or keeps making us start over, runs out of attempts
                failures = 0 if after > best else failures + 1
                best = max(best, after)
                if failures >= self._retries:
                    raise NetworkError(
                        f"downloading {remote.name} failed {failures} times in a row "
                        f"({_describe(exc)}); {_mb(after)} of {_mb(remote.size)} MB are kept "
                        "and the next attempt continues from there"
                    ) from exc
                self._sleep(self._pauses[failures - 1] if failures else 0.0)
        digest = _sha256(part, self._check_cancel)
        if digest != remote.sha256:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"{remote.name} arrived complete but its SHA-256 is {digest}, not the expected "
                f"{remote.sha256}; it was deleted and nothing was installed. Try again; if this "
                "persists, the server is sending the wrong file"
            )
        os.replace(part, final)
        return final

    def _transfer(self, remote: RemoteFile, part: Path, offset: int) -> None:
        """One HTTP request, appending to `part` from `offset`."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with self._client.stream("GET", remote.url, headers=headers) as response:
                status = response.status_code
                if status == 200:
                    offset = 0  # no range support, or the range ignored: a full body
                elif status == 206:
                    expected = f"bytes {offset}-{remote.size - 1}/{remote.size}"
                    got = response.headers.get("content-range", "")
                    if got.replace(" ", "") != expected.replace(" ", ""):
                        part.unlink(missing_ok=True)
                        raise _Interrupted(f"the server sent the range {got!r}, not {expected!r}")
                elif status == 416 and offset:
                    part.unlink(missing_ok=True)  # the part does not fit the file: start over
                    raise _Interrupted("the server refused to continue the earlier download")
                elif status in (408, 425, 429) or status >= 500:
                    raise _Interrupted(f"the server answered HTTP {status}")
                else:
                    raise NetworkError(
                        f"the server answered HTTP {status} for {remote.name} "
                        f"({_host(remote.url)}); nothing more was downloaded"
                    )
                self._write_body(response, remote, part, offset)
        except httpx2.TooManyRedirects as exc:
            raise NetworkError(f"too many redirects fetching {remote.name}") from exc
        except (httpx2.InvalidURL, httpx2.UnsupportedProtocol) as exc:
            raise NetworkError(
                f"{_shown(remote.url)} is not an address that can be downloaded"
            ) from exc

    def _write_body(
        self, response: httpx2.Response, remote: RemoteFile, part: Path, offset: int
    ) -> None:
        done = offset
        try:
            with part.open("r+b" if offset else "wb") as out:
                if offset:
                    out.seek(offset)
                    out.truncate()
                self._report(done)
                for chunk in response.iter_bytes():
                    self._check_cancel()
                    room = remote.size - done
                    out.write(chunk[:room])  # never past the size we expect
                    done += min(room, len(chunk))
                    self._report(done)
                    if done == remote.size:
                        break  # anything more is not the file; the checksum decides the rest
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(
                    f"the disk holding {self.folder} is full: {_mb(remote.size - done)} MB "
                    f"of {remote.name} still to come. Free some space and try again; the "
                    f"{_mb(done)} MB already here are kept"
                ) from exc
            raise DownloadError(f"could not write {part}: {exc.strerror or exc}") from exc
        if done < remote.size:
            raise _Interrupted(f"the connection ended after {done} of {remote.size} bytes")

    # -- small things -------------------------------------------------------------------------

    def _report(self, done_in_file: int) -> None:
        self._progress(self._stage, self._done_before + done_in_file, self._total)

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise DownloadCancelled(
                "the download was cancelled; what arrived is kept, and the next attempt "
                "continues from there"
            )

    def _sleep(self, seconds: float) -> None:
        if self._cancel.wait(seconds):
            self._check_cancel()


class _Interrupted(Exception):
    """A transfer that stopped short for a reason worth a retry."""


def _sha256(path: Path, check: Callable[[], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            if check is not None:
                check()
            digest.update(chunk)
    return digest.hexdigest()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def _host(url: str) -> str:
    """The host only: a mirror's address may carry a user and password."""
    try:
        return httpx2.URL(url).host or "?"
    except Exception:
        return "?"


def _shown(url: str) -> str:
    """An address as it may be shown: no user, password or query."""
    try:
        parsed = httpx2.URL(url)
    except Exception:
        return "the address given"
    return f"{parsed.scheme}://{parsed.host}{parsed.path}" if parsed.host else "the address given"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    name = "connection problem" if isinstance(exc, httpx2.TransportError) else "stopped short"
    return f"{name}: {text[0][:200]}" if text and text[0] else name
