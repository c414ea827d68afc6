"""Guards against the PySide6 6.12.0 / Python 3.11 abort ("Fatal Python error: none_dealloc").

That build frees Py_None once too often: after some thousands of Qt calls that return
None the interpreter aborts. The pin in pyproject.toml keeps it out; these tests make
sure the pin holds and that the installed Qt survives the call pattern that killed it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

CALLS = 20_000

_SCRIPT = f"""
import sys
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
label = QLabel()
for i in range({CALLS}):
    label.setText(str(i))      # returns None
    label.setVisible(False)    # returns None
print("survived", label.text())
"""


def _pyside_requirements() -> list[Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = [Requirement(r) for r in data["project"]["dependencies"]]
    return [r for r in reqs if r.name.lower() == "pyside6-essentials"]


def test_pin_excludes_6_12_0_on_python_3_11() -> None:
    env = {"python_version": "3.11", "python_full_version": "3.11.7"}
    active = [r for r in _pyside_requirements() if r.marker is None or r.marker.evaluate(env)]
    assert active, "no PySide6-Essentials requirement applies on Python 3.11"
    for req in active:
        assert Version("6.12.0") not in req.specifier, req
        assert Version("6.11.3") in req.specifier, req


def test_pin_allows_6_12_on_python_3_12() -> None:
    env = {"python_version": "3.12", "python_full_version": "3.12.1"}
    active = [r for r in _pyside_requirements() if r.marker is None or r.marker.evaluate(env)]
    assert active and all(Version("6.12.0") in r.specifier for r in active)


def test_installed_qt_survives_many_none_returning_calls() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"survived {CALLS - 1}" in proc.stdout
