"""A microphone that survives losing its device.

When the device disappears, its stream ends or errors, or the audio server dies, the
inner MicrophoneSource ends. This source then says so, keeps trying to open the same
device again (or the system default, if that is what the user chose), and carries on
when it returns. The session meanwhile holds the connection with KeepAlive. It also
notices a device that delivers only digital silence for a while, which usually means a
muted or disconnected input rather than a quiet room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from captioner.audio.devices import (
    DeviceError,
    InputDevice,
    best_capture_rate,
    choose_input_device,
    list_input_devices,
    rescan_input_devices,
)
from captioner.audio.sources import AudioBlock, MicrophoneSource, describe_device
from captioner.audio.system import with_system_audio

log = logging.getLogger(__name__)

RESCAN_SECONDS = 5.0
"""How long a device scan may take before the person is told the audio system is stuck."""

SourceEventKind = Literal["lost", "restored", "silent", "sound", "echo", "no-echo"]


@dataclass(frozen=True)
class SourceEvent:
    kind: SourceEventKind
    message: str


SourceListener = Callable[[SourceEvent], None]


class ResilientMicrophone:
    """An AudioSource over a MicrophoneSource that reopens its device after a loss.

    `device` None follows the system default; a name keeps to that device. The sample
    rate and channel count are fixed at the first open, so the chunker downstream sees
    one continuous stream; a returning device is opened with the same settings.
    """

    def __init__(
        self,
        device: InputDevice | None,
        *,
        rate: int = 16000,
        block_ms: int = 100,
        retry_interval: float = 1.0,
        silence_after: float = 5.0,
        listener: SourceListener | None = None,
    ) -> None:
        self.follow_default = device is None
        self._wanted_name = device.name if device is not None else None
        self._system_audio = device is not None and device.is_system_audio
        self.rate = rate
        self.block_ms = block_ms
        self.retry_interval = retry_interval
        self.silence_after = silence_after
        self.listener = listener
        self._inner = self._open_source(device)
        self._frames_before = 0  # frames of earlier inner sources, so frame_index runs on
        self._closed = asyncio.Event()
        self._lost = False
        self._scan: asyncio.Future[list[InputDevice]] | None = None
        self._scan_stuck_told = False
        self._silent_since: float | None = None
        self._silence_reported = False
        self.losses = 0
        self.dropped_before = 0

    def _open_source(self, device: InputDevice | None) -> MicrophoneSource:
        found = device if device is not None else choose_input_device(None, list_input_devices())
        self.device = found
        rate = best_capture_rate(found, self.rate)
        return MicrophoneSource(found, samplerate=rate, block_ms=self.block_ms, dtype="int16")

    # -- AudioSource ------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return self._inner.sample_rate

    @property
    def channels(self) -> int:
        return self._inner.channels

    @property
    def description(self) -> str:
        return describe_device(self.device)

    @property
    def dropped_blocks(self) -> int:
        return self.dropped_before + self._inner.dropped_blocks

    @property
    def lost(self) -> bool:
        return self._lost

    def set_listener(self, listener: SourceListener) -> None:
        self.listener = listener

    async def start(self) -> None:
        await self._inner.start()

    async def read(self) -> AudioBlock | None:
        while not self._closed.is_set():
            block = await self._inner.read()
            if block is not None:
                self._watch_silence(block)
                return AudioBlock(
                    block.data, block.frame_index + self._frames_before, block.captured_at
                )
            if self._closed.is_set():
                return None
            reason = self._inner.end_reason or "the device stopped"
            await self._recover(reason)
        return None

    def close(self) -> None:
        self._closed.set()
        self._inner.close()

    def restart(self, reason: str) -> None:
        """Drop the stream and wait for the device as after a loss: for a stream the sound
        server has moved to another device (its own went away), which records the wrong
        thing without ever failing."""
        if not self._lost and not self._closed.is_set():
            self._inner.end(reason)

    # -- recovery ------------------------------------------------------------------------

    async def _recover(self, reason: str) -> None:
        self._lost = True
        self.losses += 1
        what = "System audio" if self._system_audio else "Microphone"
        self._tell("lost", f"{what} lost: {reason}. Waiting for it to return.")
        lost_at = asyncio.get_running_loop().time()
        previous = self._inner
        previous.close()  # its PortAudio stream too, so that a rescan may re-initialise
        self.dropped_before += previous.dropped_blocks
        while not self._closed.is_set():
            try:
                await asyncio.wait_for(self._closed.wait(), self.retry_interval)
            except TimeoutError:
                pass
            else:
                return
            devices = await self._rescan()
            source = None if devices is None else self._try_reopen(devices)
            if source is None:
                continue
            try:
                await source.start()
            except DeviceError as exc:
                log.info("device not back yet: %s", exc)
                continue
            gap = asyncio.get_running_loop().time() - lost_at
            # the capture clock runs on through the loss, as a microphone's would
            self._frames_before += previous.frames_captured + round(gap * self.sample_rate)
            self._inner = source
            self._lost = False
            what = "System audio" if self._system_audio else "Microphone"
            self._tell("restored", f"{what} back: {self.device.name}.")
            return

    async def _rescan(self) -> list[InputDevice] | None:
        """PortAudio's device list read afresh, on a worker thread: re-initialising PortAudio
        after its audio server died has been seen to block for good, and on the event loop
        that froze the window and the connection with it. A scan still running is waited
        for, never doubled; None while it runs or when it failed."""
        if self._scan is None or self._scan.done():
            self._scan = asyncio.ensure_future(asyncio.to_thread(rescan_input_devices))
        closing: asyncio.Future[object] = asyncio.ensure_future(self._closed.wait())
        waited: set[asyncio.Future[object]] = {self._scan, closing}  # type: ignore[arg-type]
        try:
            done, _ = await asyncio.wait(
                waited, timeout=RESCAN_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            closing.cancel()
        if self._closed.is_set():
            return None
        if self._scan not in done:
            if not self._scan_stuck_told:
                self._scan_stuck_told = True
                log.warning(
                    "the audio system has not answered a device scan for %s s", RESCAN_SECONDS
                )
                self._tell(
                    "lost",
                    "The audio system is not answering. Captioning goes on as soon as it does; "
                    "restarting the computer's sound service may help.",
                )
            return None
        try:
            return self._scan.result()
        except Exception as exc:  # PortAudio's own errors, a device error
            log.info("device scan failed: %s", exc)
            return None

    def _try_reopen(self, devices: list[InputDevice]) -> MicrophoneSource | None:
        try:
            if self._system_audio:
                devices = with_system_audio(devices)
            if self.follow_default:
                found = choose_input_device(None, devices)
            else:
                matches = [d for d in devices if d.name == self._wanted_name]
                if not matches:
                    return None
                found = matches[0]
            if found.max_input_channels < self.channels:
                return None
            self.device = found
            return MicrophoneSource(
                found, samplerate=self.sample_rate, block_ms=self.block_ms, dtype="int16"
            )
        except (DeviceError, ValueError) as exc:
            log.info("device not back yet: %s", exc)
            return None

    def _watch_silence(self, block: AudioBlock) -> None:
        if np.any(block.data):
            self._silent_since = None
            if self._silence_reported:
                self._silence_reported = False
                self._tell("sound", "The microphone delivers sound again.")
            return
        if self._silent_since is None:
            self._silent_since = block.captured_at
        elif (
            not self._silence_reported
            and block.captured_at - self._silent_since >= self.silence_after
        ):
            self._silence_reported = True
            if self._system_audio:
                message = (
                    f"Nothing has played on {self.device.name} for {self.silence_after:g} s: "
                    "captions follow when sound plays."
                )
            else:
                message = (
                    f"The microphone has delivered only digital silence for "
                    f"{self.silence_after:g} s: is it muted or unplugged?"
                )
            self._tell("silent", message)

    def _tell(self, kind: SourceEventKind, message: str) -> None:
        log.warning("%s", message)
        if self.listener is not None:
            self.listener(SourceEvent(kind, message))
