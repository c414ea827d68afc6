"""The frozen bundle's entry point: the same `captioner` command as the console script.

PyInstaller freezes this file into the bundle's executable (`captioner`, `captioner.exe`, or
`Captioner.app/Contents/MacOS/captioner`). The offline engine's child process is this same
executable run as `captioner serve ...` (see captioner/server/child.py).
"""

import sys

from captioner.cli import main

if __name__ == "__main__":
    sys.exit(main())
