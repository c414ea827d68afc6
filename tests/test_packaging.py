"""Fast checks of the packaging files (seconds): what can be verified without building.

The bundle and the .deb themselves are built, installed and run by `packaging/smoke-test`
(minutes, and it installs a system package, so it is not part of this suite). Checks that
need a tool (makensis, desktop-file-validate, shellcheck) fail with the package to
install when it is missing; ./run-tests installs them.
"""

from __future__ import annotations

import ast
import configparser
import os
import plistlib
import shutil
import struct
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
RESOURCES = ROOT / "resources"
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (apt-get install {package})", pytrace=False)
    return path


def _run_python(code: str, env: dict[str, str] | None = None) -> str:
    """Run `code` in a fresh interpreter (runtime hooks patch process-wide state)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# -- the PyInstaller spec --------------------------------------------------------------


def _spec_source() -> str:
    return (PACKAGING / "captioner.spec").read_text()


def test_spec_is_valid_python_and_one_folder() -> None:
    tree = ast.parse(_spec_source())
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    # one-folder: EXE(exclude_binaries=True) gathered by COLLECT; BUNDLE makes the .app
    assert {"Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE"} <= calls
    assert "exclude_binaries=True" in _spec_source()


def test_spec_names_runtime_hooks_that_exist() -> None:
    source = _spec_source()
    for hook in ("pyi_rth_portaudio.py", "pyi_rth_captioner.py"):
        assert hook in source
        assert (PACKAGING / "rthooks" / hook).is_file()
    assert "runtime_hooks=" in source


def test_spec_leaves_out_what_the_app_does_not_use() -> None:
    tree = ast.parse(_spec_source())
    excludes: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "EXCLUDES" for t in node.targets
        ):
            excludes = [ast.literal_eval(e) for e in node.value.elts]  # type: ignore[attr-defined]
    assert {"av", "tkinter", "PySide6.QtNetwork", "PySide6.QtQml"} <= set(excludes)
    source = _spec_source()
    assert '"translations" in parts' in source  # Qt translations dropped
    assert "QT_PLUGINS_KEPT" in source
    assert "whisper_model()" in source  # the model is bundled


def test_entry_point_runs_the_cli() -> None:
    entry = (PACKAGING / "entry.py").read_text()
    assert "from captioner.cli import main" in entry


# -- runtime hooks, run as they run in a bundle -----------------------------------------


def test_portaudio_hook_points_sounddevice_at_the_bundled_library(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("the Linux layout is checked here")
    (tmp_path / "libportaudio.so.2").write_bytes(b"\x7fELF")
    hook = PACKAGING / "rthooks" / "pyi_rth_portaudio.py"
    code = f"""
        import ctypes.util, runpy, sys
        sys.frozen = True
        sys._MEIPASS = {str(tmp_path)!r}
        runpy.run_path({str(hook)!r})
        print(ctypes.util.find_library("portaudio"))
        print(ctypes.util.find_library("c") is not None)
    """
    lines = _run_python(code).split()
    assert lines == [str(tmp_path / "libportaudio.so.2"), "True"]
    # the switch back to the system's PortAudio
    off = _run_python(code, {"CAPTIONER_SYSTEM_PORTAUDIO": "1"}).split()
    assert off[0] != str(tmp_path / "libportaudio.so.2")


def test_portaudio_hook_does_nothing_outside_a_bundle() -> None:
    hook = PACKAGING / "rthooks" / "pyi_rth_portaudio.py"
    out = _run_python(
        f"""
        import ctypes.util, runpy
        before = ctypes.util.find_library
        runpy.run_path({str(hook)!r})
        print(ctypes.util.find_library is before)
        """
    )
    assert out.strip() == "True"


def test_captioner_hook_points_the_engine_at_the_bundled_model(tmp_path: Path) -> None:
    model = tmp_path / "models" / "whisper-base"
    model.mkdir(parents=True)
    (model / "model.bin").write_bytes(b"x")
    hook = PACKAGING / "rthooks" / "pyi_rth_captioner.py"
    code = f"""
        import os, runpy, sys
        sys._MEIPASS = {str(tmp_path)!r}
        runpy.run_path({str(hook)!r})
        print(os.environ.get("CAPTIONER_MODEL_DIR"))
    """
    env = {k: v for k, v in os.environ.items() if k != "CAPTIONER_MODEL_DIR"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == str(model)
    # the user's own choice wins
    assert _run_python(code, {"CAPTIONER_MODEL_DIR": "/elsewhere"}).strip() == "/elsewhere"


def test_captioner_hook_stands_in_for_a_missing_pyav() -> None:
    """Without PyAV (left out of the bundle), faster-whisper still imports and transcribes
    arrays; only its file decoding, which Captioner does not use, says why it cannot work."""
    hook = PACKAGING / "rthooks" / "pyi_rth_captioner.py"
    out = _run_python(
        f"""
        import importlib.abc, runpy, sys

        class NoAV(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "av" or name.startswith("av."):
                    raise ImportError("no PyAV in this bundle")
                return None

        sys.meta_path.insert(0, NoAV())
        runpy.run_path({str(hook)!r})
        import faster_whisper
        from faster_whisper.audio import decode_audio
        try:
            decode_audio("speech.wav")
        except ImportError as exc:
            print("ImportError:", exc)
        """
    )
    assert "PyAV is not part of the Captioner bundle" in out


def test_captioner_never_asks_faster_whisper_to_decode_files() -> None:
    """What makes leaving PyAV out safe: no call of faster-whisper's file decoding."""
    for path in (ROOT / "captioner").rglob("*.py"):
        text = path.read_text()
        assert "decode_audio" not in text, path
        assert "import av" not in text, path


# -- the engine's child process in a frozen bundle --------------------------------------


def test_child_runs_the_bundle_executable_when_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    from captioner.server import child

    assert child._server_command(None) == [sys.executable, "-m", "captioner.server"]
    assert child._server_command("/py") == ["/py", "-m", "captioner.server"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert child._server_command(None) == [sys.executable]
    assert child._server_command("/py") == ["/py", "-m", "captioner.server"]


# -- Linux ------------------------------------------------------------------------------


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(PACKAGING / "linux" / "captioner.desktop")
    return parser["Desktop Entry"]


def test_desktop_entry_launches_the_installed_command() -> None:
    entry = _desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == "captioner"
    assert entry["Icon"] == "captioner"
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";")


def test_desktop_entry_validates() -> None:
    tool = _need("desktop-file-validate", "desktop-file-utils")
    result = subprocess.run(
        [tool, str(PACKAGING / "linux" / "captioner.desktop")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_lintian_overrides_and_copyright_are_well_formed() -> None:
    for line in (PACKAGING / "linux" / "lintian-overrides").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert line.startswith("captioner: "), line
    copyright_text = (PACKAGING / "linux" / "copyright").read_text()
    assert copyright_text.startswith(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    )
    assert "\nLicense: MIT\n" in copyright_text


def test_scripts_are_executable_bash() -> None:
    scripts = [
        PACKAGING / "build-linux",
        PACKAGING / "smoke-test",
        PACKAGING / "macos" / "make-dmg",
        RESOURCES / "render-icons",
    ]
    for script in scripts:
        assert os.access(script, os.X_OK), f"{script} is not executable"
        subprocess.run(["bash", "-n", str(script)], check=True)
    subprocess.run([_need("shellcheck", "shellcheck"), *map(str, scripts)], check=True)


# -- icons ------------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_icons_exist_at_the_usual_sizes() -> None:
    svg = ET.parse(RESOURCES / "captioner.svg").getroot()
    assert svg.get("viewBox") == "0 0 512 512"
    for size in ICON_SIZES:
        assert _png_size(RESOURCES / "icons" / f"captioner-{size}.png") == (size, size)
    ico = (RESOURCES / "captioner.ico").read_bytes()
    assert ico[:4] == b"\x00\x00\x01\x00" and struct.unpack("<H", ico[4:6])[0] >= 5
    assert (RESOURCES / "captioner.icns").read_bytes()[:4] == b"icns"


# -- Windows ----------------------------------------------------------------------------


def test_nsis_script_compiles(tmp_path: Path) -> None:
    makensis = _need("makensis", "nsis")
    dist = tmp_path / "dist" / "captioner"
    (dist / "_internal").mkdir(parents=True)
    (dist / "captioner.exe").write_bytes(b"MZ stand-in for the bundle's executable")
    (dist / "_internal" / "base_library.zip").write_bytes(b"stand-in")
    out = tmp_path / "Captioner-setup.exe"
    result = subprocess.run(
        [
            makensis,
            "-V2",
            "-WX",  # warnings are errors
            "-DVERSION=1.2.3",
            f"-DDIST={dist}",
            f"-DOUTFILE={out}",
            str(PACKAGING / "windows" / "captioner.nsi"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.read_bytes()[:2] == b"MZ"
    assert out.stat().st_size < 2_000_000


def test_nsis_script_has_start_menu_entry_and_uninstaller() -> None:
    script = (PACKAGING / "windows" / "captioner.nsi").read_text()
    assert "$SMPROGRAMS" in script and "CreateShortcut" in script
    assert 'WriteUninstaller "$INSTDIR\\uninstall.exe"' in script
    assert 'Section "Uninstall"' in script
    assert "UninstallString" in script


# -- macOS ------------------------------------------------------------------------------


def test_info_plist_asks_for_the_microphone() -> None:
    with (PACKAGING / "macos" / "Info.plist").open("rb") as handle:
        info: dict[str, Any] = plistlib.load(handle)
    assert len(info["NSMicrophoneUsageDescription"]) > 20
    assert info["CFBundleIdentifier"].count(".") >= 2
    assert info["NSHighResolutionCapable"] is True


def test_entitlements_grant_audio_input() -> None:
    with (PACKAGING / "macos" / "entitlements.plist").open("rb") as handle:
        entitlements: dict[str, Any] = plistlib.load(handle)
    assert entitlements["com.apple.security.device.audio-input"] is True
    assert "entitlements.plist" in _spec_source()


# -- the release workflow ---------------------------------------------------------------


def test_release_workflow_builds_all_three_on_a_tag() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    assert triggers["push"]["tags"] == ["v*"]
    jobs = workflow["jobs"]
    assert {"linux", "windows", "macos"} <= set(jobs)
    assert "ubuntu" in jobs["linux"]["runs-on"]
    assert "windows" in jobs["windows"]["runs-on"]
    assert "macos" in jobs["macos"]["runs-on"]
    steps = {job: " ".join(str(s.get("run", "")) for s in jobs[job]["steps"]) for job in jobs}
    assert "packaging/smoke-test" in steps["linux"]
    assert "makensis" in steps["windows"]
    assert "packaging/macos/make-dmg" in steps["macos"]
    assert set(jobs["release"]["needs"]) == {"linux", "windows", "macos"}


def test_the_test_workflow_runs_the_readme_command_on_each_python_and_os() -> None:
    """The test workflow runs on paper here: check that it calls what exists."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "test.yml").read_text())
    jobs = workflow["jobs"]
    assert jobs["linux"]["strategy"]["matrix"]["python"] == ["3.11", "3.12", "3.13"]
    assert jobs["portable"]["strategy"]["matrix"]["python"] == ["3.11", "3.12", "3.13"]
    systems = jobs["portable"]["strategy"]["matrix"]["os"]
    assert any("windows" in s for s in systems) and any("macos" in s for s in systems)
    linux_run = " ".join(str(s.get("run", "")) for s in jobs["linux"]["steps"])
    assert "./run-tests" in linux_run and "PYTHON=" in linux_run
    readme = (ROOT / "README.md").read_text()
    assert "./run-tests" in readme.split("```")[1]  # the README's test command
    portable = workflow["env"]["PORTABLE_TESTS"].split()
    assert portable and all((ROOT / path).is_file() for path in portable), portable
    portable_run = " ".join(str(s.get("run", "")) for s in jobs["portable"]["steps"])
    assert "requirements/test.lock" in portable_run and "--require-hashes" in portable_run
    assert "mypy --strict captioner" in portable_run and "$PORTABLE_TESTS" in portable_run
    # the portable tests need no tool of the Linux audio stack
    for path in portable:
        text = (ROOT / path).read_text()
        for tool in ("require_tool", "virtual_mic", "espeak", "paplay", "pulseaudio"):
            assert tool not in text, (path, tool)


# -- the lock files --------------------------------------------------------------------------


def _pinned(lock: Path) -> dict[str, list[tuple[str, str]]]:
    """name -> [(version, marker)] for every `name==version ; marker` line of a lock file."""
    pins: dict[str, list[tuple[str, str]]] = {}
    for line in lock.read_text().splitlines():
        if not line or line[0] in " #-":
            continue
        requirement, _, marker = line.rstrip(" \\").partition(";")
        name, _, version = requirement.strip().partition("==")
        pins.setdefault(canonicalize_name(name), []).append((version, marker.strip()))
    return pins


@pytest.mark.parametrize("mode", ["app", "bench", "test"])
def test_each_lock_pins_every_dependency_it_is_for_with_hashes(mode: str) -> None:
    """`scripts/bootstrap <mode>` installs requirements/<mode>.lock: a dependency added to
    pyproject.toml without `scripts/relock` (or a pin that no longer satisfies it) fails here."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    if mode != "app":
        wanted += project["optional-dependencies"][mode]
    lock = ROOT / "requirements" / f"{mode}.lock"
    pins = _pinned(lock)
    for text in wanted:
        requirement = Requirement(text)
        for python in ("3.11", "3.12", "3.13"):
            env = {"python_version": python, "python_full_version": f"{python}.0"}
            if requirement.marker is not None and not requirement.marker.evaluate(env):
                continue
            versions = [
                version
                for version, marker in pins.get(canonicalize_name(requirement.name), [])
                if not marker or Marker(marker).evaluate(env)
            ]
            assert versions, f"{lock.name}: {requirement.name} (Python {python}) is not pinned"
            assert all(requirement.specifier.contains(v, prereleases=True) for v in versions), (
                f"{lock.name}: {requirement.name}=={versions} does not satisfy {requirement}"
            )
    assert "--hash=sha256:" in lock.read_text()
