"""The window: what `captioner` with no command opens.

- `launch`: the process (QApplication, qasync loop, signals, exit code).
- `root`: `CaptionerApp`, the composition root that builds and wires the rest.
- Feature controllers, one job each: `captioning` (Start, Stop, Mute, Restart),
  `devices`, `export`, `restore`, `overlay`, `settings`, and `captions` (the path of a
  finished line from the session to disk, pane, overlay and screen readers).
- Services they share: `endpoint` (where to stream), `engine` (the offline engine),
  `notify` (how they tell the person something), `tasks` (background tasks).

Only `options` and `launch` are light: `captioner listen` imports no Qt, so the command line
imports `root` and the controllers (and with them PySide6) only when the window opens.
"""

from __future__ import annotations

from captioner.app.launch import EXIT_NO_DISPLAY, display_problem, run_app
from captioner.app.options import AppOptions, add_app_arguments

__all__ = ["EXIT_NO_DISPLAY", "AppOptions", "add_app_arguments", "display_problem", "run_app"]
