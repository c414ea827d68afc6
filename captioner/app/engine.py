"""The offline engine as the window uses it: started on first need, kept until the app quits."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

__all__ = ["ENGINE_STOP_SECONDS", "EmbeddedServer", "OfflineEngine"]

log = logging.getLogger(__name__)

ENGINE_STOP_SECONDS = 5.0


class EmbeddedServer(Protocol):
    """What `captioner.server.child.start_embedded_server` yields, as far as the app cares."""

    @property
    def url(self) -> str: ...

    @property
    def token(self) -> str | None: ...


class OfflineEngine:
    """The embedded engine, started on first need and kept until the app quits.

    The server's context manager is entered and left in one dedicated task, so whatever
    it holds (a child process, a task group) is opened and closed by the same task.
    """

    def __init__(self, model_dir: str | None = None) -> None:
        self.model_dir = model_dir
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[EmbeddedServer] | None = None
        self._stop = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def ensure_started(self) -> EmbeddedServer:
        if self._task is None or self._task.done() or self._ready is None:
            loop = asyncio.get_running_loop()
            ready: asyncio.Future[EmbeddedServer] = loop.create_future()
            ready.add_done_callback(_consume_exception)
            self._ready = ready
            self._stop = asyncio.Event()
            self._task = loop.create_task(self._serve(ready, self._stop), name="offline engine")
        return await asyncio.shield(self._ready)

    async def _serve(self, ready: asyncio.Future[EmbeddedServer], stop: asyncio.Event) -> None:
        # Heavy (the server's modules): loaded when the engine is first needed.
        from captioner.server.child import start_embedded_server

        try:
            async with start_embedded_server(model_dir=self.model_dir) as server:
                ready.set_result(server)
                await stop.wait()
        except Exception as exc:
            if ready.done():
                log.error("the offline engine stopped: %s", exc)
            else:
                ready.set_exception(exc)
        finally:
            if not ready.done():
                ready.cancel()

    async def stop(self, limit: float = ENGINE_STOP_SECONDS) -> None:
        task = self._task
        if task is None or task.done():
            return
        self._stop.set()
        done, _ = await asyncio.wait({task}, timeout=limit)
        if not done:
            log.warning("the offline engine did not stop within %.0f s; cancelling it", limit)
            task.cancel()
            await asyncio.wait({task}, timeout=2.0)


def _consume_exception(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen: whoever awaits it reports it."""
    if not future.cancelled():
        future.exception()
