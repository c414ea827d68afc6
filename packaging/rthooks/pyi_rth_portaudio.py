"""PyInstaller runtime hook: make sounddevice load the PortAudio library shipped in the bundle.

sounddevice asks `ctypes.util.find_library("portaudio")` first. On Linux that consults the
system's linker cache only, so on a machine without libportaudio2 it finds nothing and
sounddevice raises "PortAudio library not found", although the bundle carries the library
(PyInstaller's sounddevice hook copies the build machine's libportaudio.so.2 to the top of the
bundle). On Windows and macOS the bundled copy lives in `_sounddevice_data/portaudio-binaries`,
but a PortAudio found elsewhere on the system (Homebrew, conda) would win over it.

This hook runs before any of the app's code and makes `find_library("portaudio")` answer with
the bundled file's absolute path, so the bundle always uses the PortAudio it was tested with.
Other names are passed through unchanged. `CAPTIONER_SYSTEM_PORTAUDIO=1` turns this off (use
the system's PortAudio, e.g. for JACK or a newer ALSA).
"""

import ctypes.util
import os
import sys


def _bundled_portaudio() -> str | None:
    base = getattr(sys, "_MEIPASS", None)
    if base is None:
        return None
    data = os.path.join(base, "_sounddevice_data", "portaudio-binaries")
    if sys.platform == "win32":
        is64 = sys.maxsize > 2**32
        candidates = [os.path.join(data, f"libportaudio{'64' if is64 else '32'}bit.dll")]
    elif sys.platform == "darwin":
        candidates = [os.path.join(data, "libportaudio.dylib")]
    else:
        candidates = [os.path.join(base, name) for name in ("libportaudio.so.2", "libportaudio.so")]
    return next((path for path in candidates if os.path.isfile(path)), None)


def _install() -> None:
    if os.environ.get("CAPTIONER_SYSTEM_PORTAUDIO") == "1":
        return
    bundled = _bundled_portaudio()
    if bundled is None:
        return
    original = ctypes.util.find_library

    def find_library(name: str) -> str | None:
        if name == "portaudio":
            return bundled
        return original(name)

    ctypes.util.find_library = find_library


_install()
