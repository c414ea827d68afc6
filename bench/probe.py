"""The instrumentation both benchmark clients share (standard library only, so it weighs the
same in both processes): timestamps around sends and caption updates, the process's own CPU
and peak memory, reported as one JSON line on stdout.

Both clients call it at the same points: `sent(ready, done)` with the time a chunk was ready
(its last sample due by the wall clock) and the time the send call returned (its bytes handed
to the socket); `caption(arrived, done)` with the time a Results message reached the code that
updates the captions and the time that update was done, plus, where the client can see it,
the time the message left the WebSocket library (`raw`).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

now = time.monotonic


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM).

    Not ru_maxrss: on Linux that survives fork and exec, so a child started by a bigger
    parent reports the parent's peak (the orchestrator's numpy and jiwer, here)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_split() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


class Probe:
    """Counts and times one client's run; `warmup` chunks are left out of the steady state."""

    def __init__(self, client: str, *, chunk_seconds: float = 0.1, warmup: int = 10) -> None:
        self.client = client
        self.chunk_seconds = chunk_seconds
        self.warmup = warmup
        self.imports_cpu = cpu_seconds()
        self.chunks = 0
        self.send_latencies: list[float] = []
        self.caption_latencies: list[float] = []
        self.raw_caption_latencies: list[float] = []
        self.steady: tuple[float, float] | None = None  # (cpu, wall) after the warm-up
        self.steady_split = (0.0, 0.0)  # (user, system) CPU after the warm-up
        self.last_split = (0.0, 0.0)
        self.last: tuple[float, float, int] = (0.0, 0.0, 0)  # (cpu, wall, chunks) last send
        self.first_sent_cpu: float | None = None  # CPU from process start to the first send
        self.events: list[str] = []
        self.finals: list[str] = []
        self.extra: dict[str, Any] = {}
        self.started = now()

    def sent(self, ready: float, done: float) -> None:
        self.chunks += 1
        if self.chunks > self.warmup:
            self.send_latencies.append(done - ready)
        user, system = cpu_split()
        cpu = user + system
        if self.first_sent_cpu is None:
            self.first_sent_cpu = cpu
        if self.chunks == self.warmup:
            self.steady = (cpu, done)
            self.steady_split = (user, system)
        self.last = (cpu, done, self.chunks)
        self.last_split = (user, system)

    def caption(self, arrived: float, done: float, raw: float | None = None) -> None:
        self.caption_latencies.append(done - arrived)
        if raw is not None:
            self.raw_caption_latencies.append(done - raw)

    def event(self, text: str) -> None:
        self.events.append(f"{now() - self.started:.2f}s {text}")

    def report(self, **extra: Any) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        steady_cpu = steady_audio = 0.0
        if self.steady is not None and self.last[2] > self.warmup:
            steady_cpu = self.last[0] - self.steady[0]
            steady_audio = (self.last[2] - self.warmup) * self.chunk_seconds
        out = {
            "client": self.client,
            "chunks": self.chunks,
            "audio_s": self.chunks * self.chunk_seconds,
            "imports_cpu_s": self.imports_cpu,
            "first_sent_cpu_s": self.first_sent_cpu,
            "steady_cpu_s": steady_cpu,
            "steady_audio_s": steady_audio,
            "steady_user_s": self.last_split[0] - self.steady_split[0],
            "steady_system_s": self.last_split[1] - self.steady_split[1],
            "total_cpu_s": usage.ru_utime + usage.ru_stime,
            "maxrss_mb": peak_rss_mb(),
            "ru_maxrss_mb": usage.ru_maxrss / 1024,
            "send_latencies": self.send_latencies,
            "caption_latencies": self.caption_latencies,
            "raw_caption_latencies": self.raw_caption_latencies,
            "finals": self.finals,
            "events": self.events,
            **self.extra,
            **extra,
        }
        sys.stdout.write("REPORT " + json.dumps(out) + "\n")
        sys.stdout.flush()
