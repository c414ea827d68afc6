"""Freed decoder memory goes back to the operating system (glibc's malloc_trim)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from captioner.server import heap
from captioner.server.heap import HeapReleaser

# Fragment the heap the way varying decode buffers do: many blocks below glibc's mmap
# threshold, every eighth kept alive, so the free space lies between live blocks where the
# allocator's own trimming (only at the top of a heap) cannot return it.
_FRAGMENT = textwrap.dedent(
    """
    import sys
    from captioner.server import heap

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    blocks = [bytearray(b"x" * 60_000) for _ in range(5_000)]
    kept = blocks[::8]
    del blocks
    before = rss_mb()
    if sys.argv[1] == "release":
        assert heap.release()
    print(before - rss_mb())
    """
)


def _freed_mb(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _FRAGMENT, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


def test_release_returns_the_free_space_between_live_blocks() -> None:
    if not sys.platform.startswith("linux"):
        assert not heap.release()  # no malloc_trim: says so, and does nothing
        return
    assert _freed_mb("keep") < 20  # the allocator alone keeps it
    assert _freed_mb("release") > 150  # about 260 MB is free inside the heap


def test_the_decoder_thread_releases_at_most_once_per_interval() -> None:
    now = [100.0]
    releaser = HeapReleaser(interval=5.0, clock=lambda: now[0])
    assert not releaser.after_work()
    now[0] = 104.9
    assert not releaser.after_work()
    now[0] = 105.0
    assert releaser.after_work()
    now[0] = 106.0
    assert not releaser.after_work()
    now[0] = 110.5
    assert releaser.after_work()
