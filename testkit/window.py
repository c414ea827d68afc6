"""The window's test and benchmark helpers: a qasync loop over a QApplication, and caption
updates shaped like live speech. No pytest here: the benchmarks use it too."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from PySide6.QtWidgets import QApplication

from captioner.core.captions import Committed, LiveChanged, Utterance

__all__ = [
    "committed",
    "live",
    "run_qasync",
    "transcript_events",
    "utterance",
    "wait_until",
]

T = TypeVar("T")


def run_qasync(qapp: QApplication, make: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
    """Run `make()` to completion on a fresh qasync loop over the test's QApplication."""
    import qasync

    gc.collect()  # earlier tests' widgets too (see the note below)
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await make()

    try:
        result: T = loop.run_until_complete(bounded())
        return result
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        del loop
        # Collect this loop's Qt objects here, on the GUI thread. Left to chance, the garbage
        # collector may run in the next test's executor thread, and a QObject destroyed
        # there warns ("Timers cannot be stopped from another thread") or crashes.
        gc.collect()


async def wait_until(predicate: Callable[[], object], within: float, what: str) -> None:
    """Poll `predicate` on the running loop until it is true; fail with `what` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


def utterance(
    text: str,
    start: float = 0.0,
    *,
    speaker: int | None = None,
    gap: bool = False,
    unconfirmed: bool = False,
) -> Utterance:
    return Utterance(
        channel=0,
        text=text,
        start=start,
        end=start + 1.0,
        words=(),
        speaker=speaker,
        unconfirmed=unconfirmed,
        gap=gap,
    )


def committed(text: str, start: float = 0.0, **kw: object) -> Committed:
    return Committed(utterance(text, start, **kw))  # type: ignore[arg-type]


def live(final: str, interim: str = "", channel: int = 0) -> LiveChanged:
    return LiveChanged(channel, final, interim)


def transcript_events(count: int, words_per_line: int = 12) -> Sequence[object]:
    """`count` caption updates shaped like live speech: interims growing, then a commit."""
    vocabulary = [
        *("the", "meeting", "starts", "with", "a", "short", "review", "of", "last", "week"),
        *("and", "then", "we", "talk", "about", "the", "budget", "for", "the", "next"),
        *("quarter", "before", "questions", "from", "the", "audience"),
    ]
    events: list[object] = []
    line = 0
    while len(events) < count:
        words = [vocabulary[(line * 7 + i) % len(vocabulary)] for i in range(words_per_line)]
        for k in range(1, 6):
            events.append([live("", " ".join(words[: k * words_per_line // 5]))])
        events.append([committed(f"{line}: " + " ".join(words), line * 4.0), live("", "")])
        line += 1
    return events[:count]
