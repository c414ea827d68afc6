"""Start, Stop, Mute and Restart: the controller that owns the run state and the session.

One Start: wait for a device scan in flight, check there is an input, resolve the endpoint
(starting the offline engine if it is the one), validate the settings, make the audio
source, then run a `Session` whose observer is the window's `SessionBridge`. Its end is
reported once, in the banner, with one thing to do about it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from captioner.app.devices import DevicesController
from captioner.app.endpoint import EndpointChooser
from captioner.app.model import ModelDownloadController
from captioner.app.notify import Action, Notifier
from captioner.app.tasks import TaskKeeper
from captioner.audio.call import CallSource
from captioner.audio.devices import DeviceError, InputDevice
from captioner.audio.factory import build_call_source, build_source
from captioner.audio.resilient import SourceEvent
from captioner.audio.sources import AudioFileError, AudioSource
from captioner.audio.wavfile import WavFileSource
from captioner.core import closecodes
from captioner.core.config import SettingsError
from captioner.core.voices import Voices
from captioner.server.child import EmbeddedServerError
from captioner.server.cli import EXIT_MODEL_MISSING
from captioner.session import Session, SessionEnd, SessionOptions, State, Status
from captioner.transcript import Transcript
from captioner.ui.bridge import SessionBridge
from captioner.ui.device_picker import NO_DEVICE_MESSAGE
from captioner.ui.levels import LevelHint, LevelHints
from captioner.ui.preferences import PreferencesStore
from captioner.ui.run_state import RunState
from captioner.ui.window import MainWindow

__all__ = ["DRAIN_SECONDS", "GIVE_UP_SECONDS", "CaptioningController"]

log = logging.getLogger(__name__)

DRAIN_SECONDS = 3.0
"""How long Stop (and quitting) waits for the last finals after CloseStream."""
GIVE_UP_SECONDS = 300.0
"""How long the window keeps reconnecting without a transcript before it stops and says so."""
STATS_INTERVAL = 0.1


class CaptioningController:
    def __init__(
        self,
        window: MainWindow,
        bridge: SessionBridge,
        *,
        store: PreferencesStore,
        endpoints: EndpointChooser,
        devices: DevicesController,
        transcript: Transcript,
        notifier: Notifier,
        tasks: TaskKeeper,
        file: Path | None,
        open_settings: Callable[[], object],
        model: ModelDownloadController,
        keepalive_interval: float = 4.0,
        give_up_after: float = GIVE_UP_SECONDS,
    ) -> None:
        self.window = window
        self.bridge = bridge
        self.store = store
        self.endpoints = endpoints
        self.devices = devices
        self.transcript = transcript
        self.notifier = notifier
        self.tasks = tasks
        self.file = file
        self.open_settings = open_settings
        self.model = model
        self.keepalive_interval = keepalive_interval
        self.give_up_after = give_up_after
        self.session: Session | None = None
        self.source: AudioSource | None = None
        self.last_end: SessionEnd | None = None
        self.closing = False
        self._start_task: asyncio.Task[None] | None = None
        self._session_task: asyncio.Task[None] | None = None
        self._restart_asked = False
        self._system_audio = False
        self.voices_changed: Callable[[Voices], None] = lambda _voices: None
        """Told how lines are labelled as each session starts (a call: by side)."""
        bridge.status_updated.connect(self._on_bridge_status_updated)
        bridge.source_updated.connect(self._on_bridge_source_updated)

    # -- what the person asks ---------------------------------------------------------------

    @property
    def run_state(self) -> RunState:
        return self.window.run_state

    @property
    def busy(self) -> bool:
        """A session runs, or is starting or stopping."""
        return self.session is not None or self.window.run_state is not RunState.IDLE

    def start(self) -> None:
        if self.closing or self.window.run_state is not RunState.IDLE:
            return
        self.window.set_run_state(RunState.STARTING)
        self._start_task = self.tasks.spawn(self._start(), "start")

    def stop(self) -> None:
        self._restart_asked = False
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
            return
        if self.session is not None:
            self.window.set_run_state(RunState.STOPPING)
            self.session.request_stop()

    def restart(self) -> None:
        """Stop, and start again once the last finals are in (new settings, another device)."""
        if self.session is None:
            return
        self._restart_asked = True
        self.window.set_run_state(RunState.STOPPING)
        self.session.request_stop()

    def set_muted(self, on: bool) -> None:
        if self.session is None:
            return
        self.session.mute(on)
        self.show_source(listening=True)

    def show_engine(self) -> None:
        self.window.status.set_engine(*self.endpoints.title())

    def show_source(self, *, listening: bool) -> None:
        if self.file is not None:
            name: str | None = self.file.name
        else:
            device = self.window.picker.current_device()
            name = device.name if device is not None else None
            if name is not None and self.store.current.call:
                other = self.window.call_row.current()
                name += " + " + (other.name if isinstance(other, InputDevice) else "system audio")
        muted = self.session is not None and self.session.muted
        self.window.status.set_source(name, listening=listening, muted=muted)

    # -- one start ----------------------------------------------------------------------------

    async def _start(self) -> None:
        window = self.window
        self.notifier.dismiss()
        window.status.clear_close()
        window.status.set_request_id(None)
        window.status.set_language(None)
        try:
            await self.devices.wait_for_rescan()
            self._check_input()  # before the engine: no point loading a model with no microphone
            if self._model_missing():
                return
            target = await self.endpoints.resolve(self._say_engine_loading)
        except asyncio.CancelledError:
            self._idle()
            raise
        except DeviceError as exc:
            self._fail(str(exc), ("Look again", self.devices.refresh))
            return
        except EmbeddedServerError as exc:
            if exc.returncode == EXIT_MODEL_MISSING:  # the server found the model unusable
                self._idle()
                self.model.offer(self.model.problem() or "the server could not load it")
            else:
                self._fail(
                    f"Could not start the offline engine: {exc}",
                    ("Open settings", self.open_settings),
                )
            return
        except Exception as exc:
            offline = self.endpoints.target().offline
            what = "Could not start the offline engine" if offline else "Could not start"
            self._fail(f"{what}: {exc}", ("Open settings", self.open_settings))
            return
        window.status.set_engine(target.engine, target.detail)
        settings = self.store.current.stream_settings(url=target.url or "", api_key=target.api_key)
        problems = settings.errors()
        if problems:
            self._fail(
                "These settings need attention before captioning can start: "
                + "; ".join(f"{p.setting.replace('_', ' ')}: {p.reason}" for p in problems)
                + ".",
                ("Open settings", self.open_settings),
            )
            return
        try:
            source = self._make_source(settings.sample_rate, settings.chunk_ms)
        except (DeviceError, AudioFileError, ValueError) as exc:
            self._fail(str(exc), ("Look again", self.devices.refresh))
            return
        if not isinstance(source, CallSource) and settings.multichannel:
            settings = dataclasses.replace(settings, channels=1, multichannel=False)  # a file
        voices = Voices(source.names) if isinstance(source, CallSource) else Voices()
        self.transcript.set_channel_names(voices.channel_names or None)
        self.voices_changed(voices)
        session = Session(
            settings,
            source,
            self.bridge,
            SessionOptions(
                drain_timeout=DRAIN_SECONDS,
                keepalive_interval=self.keepalive_interval,
                give_up_after=self.give_up_after,
            ),
        )
        self.session, self.source = session, source
        self.transcript.begin_session(
            engine=target.engine, source=source.description, now=time.monotonic()
        )
        window.pane.set_language(settings.language)
        window.set_run_state(RunState.RUNNING)
        self.show_source(listening=True)
        self._session_task = self.tasks.spawn(self._run_session(session, source), "session")

    def _model_missing(self) -> bool:
        """For the offline engine, before starting it: with no model, say so and offer the
        download (captioning starts by itself once it is installed)."""
        if not self.endpoints.target().offline or self.endpoints.engine.running:
            return False
        problem = self.model.problem()
        if problem is None:
            return False
        self._idle()
        self.model.offer(problem)
        return True

    def _say_engine_loading(self) -> None:
        self._on_bridge_status_updated(
            Status(State.CONNECTING, "starting the offline engine (loading the speech model)")
        )

    def _check_input(self) -> None:
        if self.file is None and self.window.picker.current_device() is None:
            raise DeviceError(NO_DEVICE_MESSAGE)

    def _make_source(self, rate: int, chunk_ms: int) -> AudioSource:
        """The file, or the microphone: one that waits for its device to come back.

        A device the person picked is kept to; with no pick the system default is followed.
        """
        self._system_audio = False
        if self.file is not None:
            return build_source(file=self.file, chunk_ms=chunk_ms)
        picker = self.window.picker
        device = picker.current_device()
        if device is None:
            raise DeviceError(NO_DEVICE_MESSAGE)
        self._system_audio = device.is_system_audio
        follow_default = picker.wanted is None and device.is_default
        first = None if follow_default else device
        prefs = self.store.current
        if prefs.call:
            other = self.window.call_row.current()
            return build_call_source(
                devices=[first, other], names=prefs.call_names, chunk_ms=chunk_ms, rate=rate
            )
        return build_source(device=first, rate=rate, chunk_ms=chunk_ms)

    async def _run_session(self, session: Session, source: AudioSource) -> None:
        stats = self.tasks.spawn(self._poll_stats(session, source), "stats")
        end: SessionEnd | None = None
        failure = ""
        try:
            end = await session.run()
        except (DeviceError, AudioFileError, SettingsError) as exc:
            failure = str(exc)
        finally:
            stats.cancel()
            source.close()
            self.session = self.source = None
            self.last_end = end
            self._idle()
        if failure:
            self.notifier.error(failure)
        elif end is not None:
            self._report_end(end)
        if self.closing:
            return
        if self._restart_asked:
            self._restart_asked = False
            self.start()

    def _idle(self) -> None:
        self.window.set_run_state(RunState.IDLE)
        self.window.picker.set_level(None)
        self.window.call_row.set_level(None)
        self.window.status.set_lag(None)
        self.show_source(listening=False)

    def _fail(self, message: str, action: Action | None) -> None:
        self._idle()
        self.window.status.show_status(Status(State.ERROR, message))
        self.notifier.error(message, action)

    def _report_end(self, end: SessionEnd) -> None:
        if end.ok or end.meaning is None:
            return
        meaning = end.meaning
        action: Action = ("Start again", self.start)
        if meaning.kind in ("auth", "refused", "data"):
            action = ("Open settings", self.open_settings)
        self.notifier.error(closecodes.describe(meaning, end.detail, end.note), action)

    async def _poll_stats(self, session: Session, source: AudioSource) -> None:
        """Level, lag and dropped blocks, ten times a second while a session runs."""
        hints = LevelHints()
        # A file's level is the file's business; system audio is silent whenever nothing plays.
        judge = not isinstance(source, WavFileSource) and not self._system_audio
        picker = self.window.picker
        status = self.window.status
        while True:
            await asyncio.sleep(STATS_INTERVAL)
            live = session.status.state is State.LIVE
            other = self.window.call_row
            if session.muted or not live:
                picker.set_level(None)
                other.set_level(None)
                hints.reset()
            else:
                levels = session.stats.channel_levels_dbfs
                level = levels[0]
                hint = hints.update(level, time.monotonic()) if judge else LevelHint.NONE
                picker.set_level(level, hint)
                other.set_level(levels[1] if len(levels) > 1 else None)
            received = session.stats.results_received > 0
            status.set_lag(session.stats.lag_seconds if live and received else None)
            status.set_dropped(source.dropped_blocks)

    # -- what the session says ---------------------------------------------------------------

    def _on_bridge_status_updated(self, status: Status) -> None:
        self.window.status.show_status(status)

    def _on_bridge_source_updated(self, event: SourceEvent) -> None:
        """The microphone was lost or came back (silence has its own hint under the list)."""
        if event.kind == "lost":
            self.notifier.error(event.message)
        elif event.kind in ("restored", "echo"):
            self.notifier.info(event.message)  # echo: "a headset would help", said once
        self.show_source(listening=self.session is not None)

    # -- quitting -----------------------------------------------------------------------------

    async def close(self) -> None:
        """CloseStream and drain (bounded), then let the audio go."""
        self.closing = True
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
            await asyncio.wait({self._start_task}, timeout=2.0)
        session, task, source = self.session, self._session_task, self.source
        if session is not None:
            session.request_stop()  # CloseStream once the queued audio is out
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=DRAIN_SECONDS + 2.0)
            if not done:
                log.warning("the session did not finish in time; cancelling it")
                task.cancel()
                await asyncio.wait({task}, timeout=2.0)
        if source is not None:
            source.close()
