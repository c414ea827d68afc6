"""Packaging benchmarks: bundle and package sizes, and start-up time of the installed app.

    .venv/bin/python bench/package.py              # the built dist/ and the installed app
    .venv/bin/python bench/package.py --runs 10    # more start-ups
    .venv/bin/python bench/package.py --compare    # also the deb's size with zstd and gzip

Sizes come from `dist/captioner/` and `dist/captioner_VERSION_amd64.deb` (make them with
`packaging/build-linux`), broken down by component. Start-up is measured on the installed
package (`/usr/bin/captioner`, install it with `packaging/smoke-test`): each run starts the
window on a private Xvfb display with an empty home and times from the process's start to
its main window being mapped (what a person sees), polled every 10 ms with xdotool; then
the app is closed with SIGTERM. The first run after dropping the page cache (root only) is
reported apart, as a cold start. Target (issue): the window shown within 1 s. Prints a
markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
Row = tuple[str, str, str]

# (label, paths inside dist/captioner/_internal whose sizes add up to it)
COMPONENTS = [
    ("Whisper base model", ["models"]),
    ("CTranslate2 (Whisper inference)", ["ctranslate2", "ctranslate2.libs"]),
    ("Qt 6 / PySide6", ["PySide6", "shiboken6"]),
    ("ONNX Runtime (Silero VAD)", ["onnxruntime"]),
    ("NumPy + OpenBLAS", ["numpy", "numpy.libs"]),
    ("Python runtime", ["libpython3.11.so.1.0", "python3.11", "base_library.zip"]),
    ("tokenizers", ["tokenizers"]),
]


def version() -> str:
    for line in (ROOT / "captioner" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split('"')[1]
    raise SystemExit("no __version__ in captioner/__init__.py")


def size_of(path: Path) -> int:
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


def size_rows(compare: bool) -> list[Row]:
    rows: list[Row] = []
    bundle = DIST / "captioner"
    if not (bundle / "captioner").is_file():
        print("package: no dist/captioner/ (run packaging/build-linux)", file=sys.stderr)
        return rows
    internal = bundle / "_internal"
    total = size_of(bundle)
    rows.append(("bundle dist/captioner/", mb(total), f"{sum(1 for _ in bundle.rglob('*'))} files"))
    accounted = 0
    for label, names in COMPONENTS:
        part = sum(size_of(internal / name) for name in names)
        accounted += part
        rows.append((f"  {label}", mb(part), f"{100 * part / total:.0f} %"))
    qt_top = sum(size_of(p) for p in internal.glob("libQt6*"))
    rows.append(("  everything else", mb(total - accounted - qt_top), "libraries, Python packages"))
    rows.append(("bundle without the model", mb(total - size_of(internal / "models")), ""))

    deb = DIST / f"captioner_{version()}_amd64.deb"
    if deb.is_file():
        installed = subprocess.run(
            ["dpkg-deb", "--field", str(deb), "Installed-Size"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        compression = (
            subprocess.run(["ar", "t", str(deb)], capture_output=True, text=True, check=False)
            .stdout.split("\n")[2]
            .removeprefix("data.tar.")
        )
        rows.append((f"package {deb.name}", mb(deb.stat().st_size), f"data.tar.{compression}"))
        if installed:
            rows.append(("  installed size", mb(int(installed) * 1024), "Installed-Size"))
        if compare:
            rows += compression_rows(deb)
    return rows


def compression_rows(deb: Path) -> list[Row]:
    """The same package rebuilt with other compressors (time on this machine)."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "tree"
        subprocess.run(["dpkg-deb", "--raw-extract", str(deb), str(tree)], check=True)
        for method in ("zstd", "gzip", "xz"):
            out = Path(scratch) / f"{method}.deb"
            started = time.perf_counter()
            subprocess.run(
                ["dpkg-deb", "--root-owner-group", f"-Z{method}", "--build", str(tree), str(out)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            took = time.perf_counter() - started
            rows.append((f"  with {method}", mb(out.stat().st_size), f"built in {took:.0f} s"))
    return rows


@contextlib.contextmanager
def xvfb() -> Iterator[str]:
    """A private X display (one no one else uses: :300 and up); yields its DISPLAY value."""
    for number in range(300, 400):
        if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
            continue
        display = f":{number}"
        server = subprocess.Popen(
            ["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while server.poll() is None and time.monotonic() < deadline:
            probe = subprocess.run(
                ["xdotool", "getdisplaygeometry"],
                env={**os.environ, "DISPLAY": display},
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                break
            time.sleep(0.05)
        if server.poll() is not None:
            continue  # lost a race for that display number: the next one
        try:
            yield display
        finally:
            server.terminate()
            server.wait(10)
        return
    raise RuntimeError("no free X display number for Xvfb")


def visible_window(display: str, name: str = "^Captioner") -> bool:
    found = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", name],
        capture_output=True,
        text=True,
        env={**os.environ, "DISPLAY": display},
        check=False,
    )
    return bool(found.stdout.strip())


def drop_page_cache() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def start_once(command: list[str], display: str, home: Path, timeout: float = 20.0) -> float:
    """Seconds from spawning `command` to its window being mapped."""
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "DISPLAY": display,
        "XDG_RUNTIME_DIR": str(runtime),
        "CAPTIONER_CONFIG_DIR": str(home / "config"),
    }
    log = home / "stderr.txt"
    started = time.perf_counter()
    with log.open("wb") as err:
        app = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err, cwd="/")
    try:
        while not visible_window(display):
            if app.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{command[0]} exited ({app.returncode}), no window:\n{tail}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"{command[0]}: no window within {timeout:.0f} s")
            time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        app.send_signal(signal.SIGTERM)
        try:
            app.wait(25)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()


def startup_rows(runs: int) -> list[Row]:
    installed = Path("/usr/bin/captioner")
    if not installed.exists():
        print("package: the package is not installed (packaging/smoke-test)", file=sys.stderr)
        return []
    for tool, package in (("Xvfb", "xvfb"), ("xdotool", "xdotool")):
        if shutil.which(tool) is None:
            raise SystemExit(f"package: {tool} is missing (apt-get install {package})")
    rows: list[Row] = []
    started = time.perf_counter()
    subprocess.run([str(installed), "--version"], check=True, stdout=subprocess.DEVNULL)
    rows.append(("`captioner --version` (installed)", f"{time.perf_counter() - started:.2f} s", ""))
    with xvfb() as display, tempfile.TemporaryDirectory() as scratch:
        if drop_page_cache():
            cold = start_once([str(installed)], display, Path(scratch) / "cold")
            rows.append(("window shown, cold (page cache dropped)", f"{cold:.2f} s", "1 run"))
        times = [
            start_once([str(installed)], display, Path(scratch) / f"r{i}") for i in range(runs)
        ]
        target = "below 1 s: " + ("met" if statistics.median(times) < 1.0 else "NOT met")
        rows.append(
            (
                "window shown, installed app (median)",
                f"{statistics.median(times):.2f} s",
                f"min {min(times):.2f}, max {max(times):.2f}, {runs} runs; {target}",
            )
        )
        venv = ROOT / ".venv" / "bin" / "captioner"
        if venv.exists():
            try:
                dev = [
                    start_once([str(venv)], display, Path(scratch) / f"v{i}") for i in range(runs)
                ]
            except RuntimeError as exc:
                print(f"package: the .venv comparison failed: {exc}", file=sys.stderr)
                return rows
            rows.append(
                (
                    "window shown, .venv (for comparison)",
                    f"{statistics.median(dev):.2f} s",
                    f"min {min(dev):.2f}, max {max(dev):.2f}, {runs} runs",
                )
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="start-ups to time (default 5)")
    parser.add_argument(
        "--compare", action="store_true", help="rebuild the .deb with zstd, gzip and xz"
    )
    options = parser.parse_args()
    print("| measure | value | notes |")
    print("| --- | --- | --- |")
    for row in size_rows(options.compare):
        print("| " + " | ".join(row) + " |", flush=True)
    try:
        rows = startup_rows(options.runs)
    except RuntimeError as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
