"""A virtual microphone for end-to-end tests: a private PulseAudio daemon we can talk into.

Signal path::

    paplay / espeak-ng -> null sink "captioner_feed" -> its monitor
        -> remap source "captioner_mic" (the default source)
        -> ALSA "pulse"/"default" PCM (libasound2-plugins) -> PortAudio -> sounddevice

The daemon is ours alone: its own state folder, its own socket, no autospawn, so tests never
touch (or depend on) a desktop sound server. A null sink renders in big, late blocks when
idle; a silent 20 ms loopback into it keeps it rendering in small blocks, so a new input
stream gets its first callback within tens of milliseconds instead of after up to 2 s.
Suspending and resuming the sink once at startup cuts its first 2 s sleep short.

PortAudio reads the device list once, when sounddevice is imported. The process that captures
must therefore have ``env`` in its environment before that import: pass ``child_env()`` to a
subprocess (what our tests do), or call ``apply_to_environ()`` first thing.

Usable as a script too::

    python -m testkit.virtual_mic start|stop|status|env|say TEXT|play FILE...

(the script keeps its state in $CAPTIONER_VMIC_DIR, default ``<tmp>/captioner-vmic-<uid>``;
``eval "$(python -m testkit.virtual_mic env)"`` points a shell at it).
"""

from __future__ import annotations

import glob
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = [
    "VirtualMic",
    "VirtualMicError",
    "make_speech_wav",
    "make_tone_wav",
    "missing_tools",
    "require_tools",
]

SINK = "captioner_feed"
SOURCE = "captioner_mic"
SPEAKERS = "captioner_speakers"
"""With ``speakers=True``: a second null sink, the default output, standing in for the
computer's speakers. Its monitor is "what the computer plays" (the far side of a call)."""

# tool -> Debian package that provides it
_TOOLS = {
    "pulseaudio": "pulseaudio",
    "pactl": "pulseaudio-utils",
    "paplay": "pulseaudio-utils",
    "parec": "pulseaudio-utils",
    "espeak-ng": "espeak-ng",
    "sox": "sox",
}
_ALSA_PULSE_PLUGIN = "/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so"


class VirtualMicError(RuntimeError):
    """The virtual microphone could not be set up or used; the message says what to do."""


def missing_tools(tools: Sequence[str] = tuple(_TOOLS)) -> list[str]:
    """Debian packages still needed for ``tools`` (and PortAudio's way into PulseAudio)."""
    packages = {_TOOLS[t] for t in tools if shutil.which(t) is None}
    if sys.platform.startswith("linux") and not glob.glob(_ALSA_PULSE_PLUGIN):
        packages.add("libasound2-plugins")
    return sorted(packages)


def require_tools(tools: Sequence[str] = tuple(_TOOLS)) -> None:
    """Raise `VirtualMicError` naming the packages to install if any tool is missing."""
    packages = missing_tools(tools)
    if packages:
        raise VirtualMicError(
            "the virtual microphone needs these Debian packages: "
            f"sudo apt-get install {' '.join(packages)}"
        )


def make_speech_wav(
    path: str | os.PathLike[str], text: str, *, rate: int | None = None, voice: str = "en"
) -> Path:
    """Speak ``text`` into a 16-bit mono WAV with espeak-ng (22050 Hz unless ``rate`` is given)."""
    require_tools(["espeak-ng"] + (["sox"] if rate else []))
    out = Path(path)
    target = out.with_suffix(".espeak.wav") if rate else out
    _run(["espeak-ng", "-v", voice, "-w", str(target), text], "espeak-ng")
    if rate:
        _run(["sox", str(target), "-r", str(rate), str(out)], "sox")
        target.unlink()
    return out


def make_tone_wav(
    path: str | os.PathLike[str],
    *,
    seconds: float = 1.0,
    frequency: float = 440.0,
    rate: int = 16000,
    channels: int = 1,
    bits: int = 16,
    amplitude: float = 0.5,
) -> Path:
    """A sine tone WAV made by sox, for tests that need a known signal."""
    require_tools(["sox"])
    out = Path(path)
    _run(
        [
            *("sox", "-n", "-r", str(rate), "-c", str(channels), "-b", str(bits), str(out)),
            *("synth", f"{seconds:g}", "sine", f"{frequency:g}", "vol", f"{amplitude:g}"),
        ],
        "sox",
    )
    return out


def _run(argv: Sequence[str], what: str, *, env: Mapping[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            list(argv), env=env, capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError as exc:
        raise VirtualMicError(f"{what} is not installed ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise VirtualMicError(f"{what} did not finish within 60 s: {shlex.join(argv)}") from exc
    if done.returncode != 0:
        raise VirtualMicError(
            f"{what} failed (exit {done.returncode}): {shlex.join(argv)}\n{done.stderr.strip()}"
        )
    return done.stdout


class VirtualMic:
    """One private PulseAudio daemon whose default source plays back whatever we feed it.

    ``start`` reuses a daemon already running from the same ``state_dir`` (the script's
    ``start`` and ``stop`` run in different processes); ``stop`` ends only the daemon whose
    command line names this instance's configuration file.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str] | None = None,
        *,
        rate: int = 16000,
        channels: int = 1,
        speakers: bool = False,
    ) -> None:
        if state_dir is None:
            state_dir = os.environ.get("CAPTIONER_VMIC_DIR") or (
                Path(tempfile.gettempdir()) / f"captioner-vmic-{os.getuid()}"
            )
        self.state_dir = Path(state_dir).resolve()
        self.rate = rate
        self.channels = channels
        self.speakers = speakers
        self.runtime_dir = self.state_dir / "run"
        self.socket = self.runtime_dir / "pulse" / "native"
        self.pid_file = self.runtime_dir / "pulse" / "pid"
        self.daemon_script = self.state_dir / "daemon.pa"
        self.client_conf = self.state_dir / "client.conf"
        self.log_file = self.state_dir / "pulseaudio.log"
        if len(str(self.socket)) > 100:
            raise VirtualMicError(f"state_dir is too long for a unix socket path: {self.socket}")

    @property
    def env(self) -> dict[str, str]:
        """Variables that point PulseAudio clients (and so PortAudio) at this daemon only."""
        return {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_CLIENTCONFIG": str(self.client_conf),
            "PULSE_COOKIE": str(self.state_dir / "cookie"),
        }

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) plus `env`, for subprocesses."""
        merged = dict(os.environ if base is None else base)
        merged.update(self.env)
        return merged

    def apply_to_environ(self) -> None:
        """Point this process at the daemon; only effective before sounddevice is imported."""
        if "sounddevice" in sys.modules:
            raise VirtualMicError(
                "sounddevice is already imported, so PortAudio has already listed the devices "
                "without the virtual microphone; run the capturing code in a subprocess with "
                "child_env(), or call apply_to_environ() before importing sounddevice"
            )
        os.environ.update(self.env)

    def is_running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            done = subprocess.run(
                ["pactl", "info"],
                env=self.child_env(),
                capture_output=True,
                timeout=5,
                check=False,
            )
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    def start(self) -> None:
        """Start the daemon (or reuse ours if it is up); return once it renders in small blocks."""
        require_tools(["pulseaudio", "pactl", "parec", "paplay"])
        if self.is_running():
            return
        self._remove_runtime_files()
        for folder in (self.runtime_dir, self.state_dir / "home", self.state_dir / "state"):
            folder.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.chmod(0o700)
        self.daemon_script.write_text(self._daemon_script())
        self.client_conf.write_text("autospawn = no\n")
        argv = [
            "pulseaudio",
            "--daemonize=yes",
            "--use-pid-file=yes",
            "--system=no",
            "--exit-idle-time=-1",
            "--disallow-exit=yes",
            "--realtime=no",
            "--high-priority=no",
            "-n",
            f"--file={self.daemon_script}",
            f"--log-target=file:{self.log_file}",
            "--log-level=notice",
        ]
        try:
            done = subprocess.run(
                argv, env=self._daemon_env(), capture_output=True, text=True, timeout=30
            )
        except subprocess.TimeoutExpired as exc:
            raise VirtualMicError(
                f"pulseaudio did not daemonize within 30 s; {self._log_hint()}"
            ) from exc
        if done.returncode != 0:
            raise VirtualMicError(
                f"pulseaudio failed to start (exit {done.returncode}): {done.stderr.strip()}; "
                + self._log_hint()
            )
        deadline = time.monotonic() + 10
        while not self.is_running():
            if time.monotonic() > deadline:
                raise VirtualMicError(f"pulseaudio did not answer within 10 s; {self._log_hint()}")
            time.sleep(0.05)
        self._warm_up()

    def stop(self) -> None:
        """Stop our daemon (only ours) and remove its runtime files. Safe to call twice."""
        pid = self.daemon_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        self._remove_runtime_files()

    def daemon_pid(self) -> int | None:
        """The daemon's pid, if the pid file names a live process started with our script."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return None
        return pid if str(self.daemon_script) in cmdline else None

    def play(
        self, path: str | os.PathLike[str], *, wait: bool = True, sink: str = SINK
    ) -> subprocess.Popen[bytes]:
        """Play an audio file into the microphone (or, with ``sink=SPEAKERS``, out of the
        computer's speakers); with ``wait=False`` return at once."""
        if not Path(path).is_file():
            raise VirtualMicError(f"no such file to play: {path}")
        proc = subprocess.Popen(
            ["paplay", f"--device={sink}", str(path)],
            env=self.child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if wait:
            self.wait_played(proc)
        return proc

    def remove_speakers(self) -> None:
        """Unplug the speakers (the null sink and its loopback), as when a headset or a USB
        sound card is pulled out: their monitor vanishes mid-stream."""
        listing = _run(["pactl", "list", "short", "modules"], "list modules", env=self.child_env())
        found = [
            line.split("\t")[0]
            for line in listing.splitlines()
            if f"sink_name={SPEAKERS}" in line or f"sink={SPEAKERS}" in line
        ]
        if not found:
            raise VirtualMicError("there are no speakers to remove (start with speakers=True)")
        for index in sorted(found, key=int, reverse=True):
            _run(["pactl", "unload-module", index], "unload the speakers", env=self.child_env())

    def wait_played(self, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
        """Wait for a ``play(..., wait=False)`` to finish; raise if paplay failed."""
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.communicate()
            raise VirtualMicError(f"paplay did not finish within {timeout:g} s") from exc
        if proc.returncode != 0:
            message = stderr.decode(errors="replace").strip()
            raise VirtualMicError(f"paplay failed (exit {proc.returncode}): {message}")

    def stop_playing(self, proc: subprocess.Popen[bytes]) -> None:
        """End a ``play(..., wait=False)`` early and reap it."""
        if proc.poll() is None:
            proc.kill()
        proc.communicate()

    def say(self, text: str, *, wait: bool = True) -> subprocess.Popen[bytes]:
        """Speak ``text`` into the microphone with espeak-ng."""
        folder = self.state_dir / "say"
        folder.mkdir(parents=True, exist_ok=True)
        speech = make_speech_wav(Path(tempfile.mkstemp(suffix=".wav", dir=folder)[1]), text)
        proc = self.play(speech, wait=wait)
        if wait:
            speech.unlink()
        return proc

    def status(self) -> str:
        if not self.is_running():
            return f"not running (state in {self.state_dir})"
        env = self.child_env()
        info = _run(["pactl", "info"], "pactl", env=env)
        sources = _run(["pactl", "list", "short", "sources"], "pactl", env=env)
        wanted = ("Server String", "Default Sink", "Default Source")
        lines = [line for line in info.splitlines() if line.startswith(wanted)]
        return "\n".join([*lines, f"pid: {self.daemon_pid()}", sources.rstrip()])

    def __enter__(self) -> VirtualMic:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _daemon_script(self) -> str:
        spec = f"rate={self.rate} channels={self.channels}"
        speakers = (
            [
                f"load-module module-null-sink sink_name={SPEAKERS} rate=48000 channels=2"
                " sink_properties=device.description=CaptionerSpeakers",
                f"load-module module-loopback source={SOURCE}_silence sink={SPEAKERS}"
                " latency_msec=20 source_dont_move=true sink_dont_move=true",
                f"suspend-sink {SPEAKERS} 1",
                f"suspend-sink {SPEAKERS} 0",
            ]
            if self.speakers
            else []
        )
        default_sink = SPEAKERS if self.speakers else SINK
        return "\n".join(
            [
                f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
                f"load-module module-null-sink sink_name={SINK} {spec}"
                " sink_properties=device.description=CaptionerVirtualMicFeed",
                f"load-module module-remap-source master={SINK}.monitor source_name={SOURCE}"
                " source_properties=device.description=CaptionerVirtualMic",
                f"load-module module-null-source source_name={SOURCE}_silence {spec}",
                f"load-module module-loopback source={SOURCE}_silence sink={SINK}"
                " latency_msec=20 source_dont_move=true sink_dont_move=true",
                *speakers,
                f"set-default-sink {default_sink}",
                f"set-default-source {SOURCE}",
                # A new null sink first sleeps for up to 2 s; a suspend/resume cycle restarts
                # it at once under the loopback's 20 ms latency (else warm-up waits ~2 s).
                f"suspend-sink {SINK} 1",
                f"suspend-sink {SINK} 0",
                "",
            ]
        )

    def _daemon_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        env.update(
            HOME=str(self.state_dir / "home"),
            XDG_RUNTIME_DIR=str(self.runtime_dir),
            XDG_CONFIG_HOME=str(self.state_dir / "home" / ".config"),
            PULSE_RUNTIME_PATH=str(self.runtime_dir / "pulse"),
            PULSE_STATE_PATH=str(self.state_dir / "state"),
        )
        return env

    def _warm_up(self) -> None:
        """Read a few bytes from the sink's monitor so the 20 ms loopback is in force."""
        proc = subprocess.Popen(
            ["parec", f"--device={SINK}.monitor", "--raw", "--latency-msec=20"],
            env=self.child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        received = 0
        deadline = time.monotonic() + 5
        try:
            while received < 64:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise VirtualMicError(f"no audio from {SINK}.monitor within 5 s (warm-up)")
                ready, _, _ = select.select([proc.stdout], [], [], left)
                if ready:
                    data = os.read(proc.stdout.fileno(), 4096)
                    if not data:
                        raise VirtualMicError(f"parec ended during warm-up; {self._log_hint()}")
                    received += len(data)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()

    def _remove_runtime_files(self) -> None:
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        shutil.rmtree(self.state_dir / "say", ignore_errors=True)

    def _log_hint(self) -> str:
        try:
            tail = self.log_file.read_text(errors="replace").splitlines()[-5:]
        except OSError:
            tail = []
        return f"see {self.log_file}" + ("".join(f"\n  {line}" for line in tail) if tail else "")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: python -m testkit.virtual_mic start|stop|status|env|say TEXT|play FILE..."
    if not args:
        print(usage, file=sys.stderr)
        return 2
    mic = VirtualMic()
    command, rest = args[0], args[1:]
    try:
        if command == "start":
            mic.start()
            print(f"virtual microphone running (pid {mic.daemon_pid()})", file=sys.stderr)
            _print_env(mic)
        elif command == "stop":
            mic.stop()
            print("virtual microphone stopped", file=sys.stderr)
        elif command == "status":
            print(mic.status())
        elif command == "env":
            _print_env(mic)
        elif command in ("say", "play") and rest:
            if not mic.is_running():
                print("not running: python -m testkit.virtual_mic start", file=sys.stderr)
                return 1
            if command == "say":
                mic.say(" ".join(rest))
            else:
                for path in rest:
                    mic.play(path)
        else:
            print(usage, file=sys.stderr)
            return 2
    except VirtualMicError as exc:
        print(f"virtual microphone: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_env(mic: VirtualMic) -> None:
    for key, value in mic.env.items():
        print(f"export {key}={shlex.quote(value)}")


if __name__ == "__main__":
    sys.exit(main())
