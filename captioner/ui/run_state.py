"""Where the Start/Stop cycle stands, shared by the window and the app (no Qt here)."""

from __future__ import annotations

import enum

__all__ = ["RunState"]


class RunState(enum.Enum):
    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
