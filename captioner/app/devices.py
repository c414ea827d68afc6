"""The device list: scanned off the GUI thread, re-read while idle, the choice remembered.

PortAudio reads its device list once per initialisation, so a rescan re-initialises it;
that is only safe while no stream is open, so nothing is rescanned while captioning.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from captioner.app.notify import Notifier
from captioner.app.tasks import TaskKeeper
from captioner.audio import devices as audio_devices
from captioner.audio.devices import DeviceError, InputDevice
from captioner.audio.system import with_system_audio
from captioner.ui.preferences import PreferencesStore
from captioner.ui.window import MainWindow

__all__ = ["DEVICE_POLL_SECONDS", "DevicesController", "rescan_input_devices"]

DEVICE_POLL_SECONDS = 5.0


def rescan_input_devices() -> list[InputDevice]:
    """The input devices as they are now, not as PortAudio saw them at start-up, with the
    system audio sources the platform offers (monitors, loopbacks) after them."""
    sd = audio_devices.load_sounddevice()
    try:
        audio_devices.rescan_input_devices()
    except sd.PortAudioError as exc:
        raise DeviceError(f"Could not look for audio devices again: {exc}") from exc
    return with_system_audio(audio_devices.list_input_devices())


class DevicesController:
    def __init__(
        self,
        window: MainWindow,
        *,
        store: PreferencesStore,
        notifier: Notifier,
        tasks: TaskKeeper,
        file: Path | None,
        lister: Callable[[], list[InputDevice]] | None = None,
    ) -> None:
        self.window = window
        self.store = store
        self.notifier = notifier
        self.tasks = tasks
        self.file = file
        self.lister = lister or rescan_input_devices
        self.closing = False
        self.busy: Callable[[], bool] = lambda: False
        """Whether a session runs (set by the captioning controller): no rescan then."""
        self.changed: Callable[[bool], None] = lambda _chosen: None
        """Called after the list or the choice changed; True when the person chose."""
        self._rescan: asyncio.Future[list[InputDevice]] | None = None
        window.picker.device_selected.connect(self._on_picker_device_selected)
        window.picker.rescan_requested.connect(self.refresh)

    async def launch(self, spec: str | None) -> None:
        """The first scan; `spec` (`--device`) preselects one. Then watch for changes."""
        wanted = self.store.current.device
        if wanted is not None:
            self.window.picker.set_wanted(wanted)
        await self._refresh()
        if spec:
            self._select_spec(spec)
        self.tasks.spawn(self._watch(), "device watch")

    def refresh(self) -> asyncio.Task[None]:
        """Read the device list again (in a worker thread) unless something is streaming."""
        return self.tasks.spawn(self._refresh(), "device scan")

    async def wait_for_rescan(self) -> None:
        rescan = self._rescan
        if rescan is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(rescan)

    async def close(self) -> None:
        self.closing = True
        if self._rescan is not None:
            await asyncio.wait({self._rescan}, timeout=2.0)

    async def _refresh(self) -> None:
        if self.file is not None or self.closing:
            return
        if self._rescan is not None:
            await asyncio.shield(self._rescan)
            return
        if self.busy():
            return
        rescan = asyncio.get_running_loop().run_in_executor(None, self.lister)
        self._rescan = rescan
        problem = ""
        try:
            devices = await rescan
        except DeviceError as exc:
            devices, problem = [], str(exc)
        finally:
            self._rescan = None
        self.window.picker.set_devices(devices)
        if problem:
            self.notifier.error(problem)
        self.changed(False)

    async def _watch(self) -> None:
        """Plugging a device in or out updates the list (PortAudio is re-read while idle)."""
        while not self.closing:
            await asyncio.sleep(DEVICE_POLL_SECONDS)
            if not self.busy():
                await self._refresh()

    def _select_spec(self, spec: str) -> None:
        try:
            device = self.window.picker.select_spec(spec)
        except DeviceError as exc:
            self.notifier.error(f"--device {spec}: {exc}")
            return
        self._remember(device)
        self.changed(False)

    def _on_picker_device_selected(self, device: InputDevice) -> None:
        self._remember(device)
        self.changed(True)

    def _remember(self, device: InputDevice) -> None:
        self.store.update(device_name=device.name, device_hostapi=device.hostapi)
