"""Project-wide test setup: the audio fixtures, and a clean environment for children."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.fixtures_audio"]

# Tests never talk to the real Deepgram: a key in the developer's environment must not
# leak into a child process or change which engine a test gets.
os.environ.pop("DEEPGRAM_API_KEY", None)
# Qt widgets in any test module draw off screen (there may be no display at all).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest tests run first, those that decode with the real engine ahead of those that
    mostly wait. The suite runs on two workers, and a test of 50 s handed out last kept one
    worker busy while the other sat idle."""
    items.sort(
        key=lambda item: (
            item.get_closest_marker("slow") is None,
            item.get_closest_marker("e2e") is None,
        )
    )


@pytest.fixture(autouse=True, scope="session")
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Child `captioner listen` runs keep their journals here, never in the user's data folder."""
    previous = os.environ.get("CAPTIONER_DATA_DIR")
    os.environ["CAPTIONER_DATA_DIR"] = str(tmp_path_factory.mktemp("captioner-data"))
    yield
    if previous is None:
        os.environ.pop("CAPTIONER_DATA_DIR", None)
    else:
        os.environ["CAPTIONER_DATA_DIR"] = previous


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The window's settings in a folder of the test's own, and no key from the environment."""
    folder = tmp_path / "config"
    monkeypatch.setenv("CAPTIONER_CONFIG_DIR", str(folder))
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    return folder
