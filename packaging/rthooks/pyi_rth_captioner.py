"""PyInstaller runtime hook: what the frozen Captioner needs before its own code runs.

1. The offline engine's model. The bundle carries Whisper base in `models/whisper-base`; the
   engine looks for its model in `--model-dir`, then `$CAPTIONER_MODEL_DIR`, then the user's
   data folder. Setting the variable here (unless the user set it) points the app, and the
   engine's child process that inherits the environment, at the bundled copy, so the offline
   engine works on first run with no download.

2. PyAV. faster-whisper imports `av` at import time, but uses it only to decode audio *files*
   (`decode_audio`); Captioner hands it PCM arrays and never calls that. PyAV and its FFmpeg
   libraries are about 100 MB, so the spec leaves them out, and a placeholder module stands
   in: importing it works, using it raises an ImportError that says why.
"""

import os
import sys
import types


def _point_at_bundled_model() -> None:
    base = getattr(sys, "_MEIPASS", None)
    if base is None or os.environ.get("CAPTIONER_MODEL_DIR"):
        return
    bundled = os.path.join(base, "models", "whisper-base")
    if os.path.isfile(os.path.join(bundled, "model.bin")):
        os.environ["CAPTIONER_MODEL_DIR"] = bundled


class _MissingPyAV(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            "PyAV is not part of the Captioner bundle (faster-whisper's file decoding is not "
            f"used); av.{name} is unavailable"
        )


def _stand_in_for_pyav() -> None:
    if "av" in sys.modules:
        return
    try:
        import av  # noqa: F401  (a build that did include PyAV keeps it)
    except ImportError:
        sys.modules["av"] = _MissingPyAV("av")


_point_at_bundled_model()
_stand_in_for_pyav()
