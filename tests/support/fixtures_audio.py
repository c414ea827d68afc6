"""pytest fixtures around the virtual microphone and generated test audio.

Use them from a test module with ``pytest_plugins = ["tests.support.fixtures_audio"]`` (or
list that plugin once in the top-level conftest). A missing tool fails the test with the
packages to install; nothing is skipped, so a green run means the audio path really ran.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.virtual_mic import VirtualMic, VirtualMicError, make_speech_wav, require_tools

__all__ = [
    "call_virtual_mic",
    "private_virtual_mic",
    "speech_wav",
    "virtual_mic",
    "virtual_mic_env",
]

SPEECH_TEXT = "Captions appear while you speak. The quick brown fox jumps over the lazy dog."


def _started_mic(*, speakers: bool = False) -> Iterator[VirtualMic]:
    try:
        require_tools()
    except VirtualMicError as exc:
        pytest.fail(str(exc), pytrace=False)
    # A short private folder: the daemon's unix socket path must stay under ~100 characters.
    state_dir = Path(tempfile.mkdtemp(prefix="captioner-vmic-"))
    mic = VirtualMic(state_dir, speakers=speakers)
    try:
        mic.start()
    except VirtualMicError as exc:
        shutil.rmtree(state_dir, ignore_errors=True)
        pytest.fail(f"virtual microphone did not start: {exc}", pytrace=False)
    try:
        yield mic
    finally:
        mic.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def virtual_mic() -> Iterator[VirtualMic]:
    """One virtual microphone for the whole run; run capturing code with its ``child_env()``."""
    yield from _started_mic()


@pytest.fixture
def private_virtual_mic() -> Iterator[VirtualMic]:
    """A virtual microphone of the test's own, for tests that stop or break the daemon."""
    yield from _started_mic()


@pytest.fixture
def call_virtual_mic() -> Iterator[VirtualMic]:
    """A microphone and speakers of the test's own: the microphone hears what is played
    into it, and the default output's monitor what is played out of the speakers."""
    yield from _started_mic(speakers=True)


@pytest.fixture
def virtual_mic_env(virtual_mic: VirtualMic) -> dict[str, str]:
    """This process's environment pointed at the shared virtual microphone, for subprocesses."""
    return virtual_mic.child_env()


@pytest.fixture
def speech_wav(tmp_path: Path) -> Path:
    """A few seconds of espeak-ng speech, 16-bit mono 22050 Hz, made fresh in ``tmp_path``."""
    try:
        return make_speech_wav(tmp_path / "speech.wav", SPEECH_TEXT)
    except VirtualMicError as exc:
        pytest.fail(str(exc), pytrace=False)
