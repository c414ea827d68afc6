"""Where Captioner keeps per-user data (the model, journals), by platform convention."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def platform_data_dir() -> Path:
    """The per-user data folder: %LOCALAPPDATA%, Application Support, or $XDG_DATA_HOME."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "captioner"
