"""Access to the recorded Deepgram server messages in tests/fixtures/deepgram (see SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

DEEPGRAM_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deepgram"


def load_fixture(name: str) -> str:
    """The raw JSON text of one fixture; `name` may omit the `.json` suffix."""
    path = DEEPGRAM_FIXTURES / (name if name.endswith(".json") else f"{name}.json")
    return path.read_text(encoding="utf-8")
