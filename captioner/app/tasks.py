"""The app's background tasks: each kept alive, each failure reported, all ended at quit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["ErrorReport", "ExcInfo", "TaskKeeper"]

T = TypeVar("T")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
ErrorReport = Callable[[str, BaseException, ExcInfo], None]
"""(what failed, the exception, its exc_info)"""


class TaskKeeper:
    """Slots are plain methods that start tasks here (no `asyncSlot`): the task is kept
    referenced until done, and an exception is reported, never lost."""

    def __init__(
        self,
        report: ErrorReport,
    ) -> None:
        self._report = report
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._on_done)
        return task

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._report(f"{task.get_name()} failed", exc, (type(exc), exc, exc.__traceback__))

    async def cancel_all(self, limit: float = 2.0) -> None:
        """Cancel what still runs and give it `limit` seconds to finish."""
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=limit)
