"""Both sides of a call in the window: the "Call" box, the other side's input, the labels.

With "Call" on, Start captions the input in the toolbar ("You") and a second one ("Others":
what this computer plays, unless another input is picked in the row under the toolbar) at
once, on one connection. The choice and the names are remembered; changing either while
captioning starts again on the new inputs, as picking another device does.
"""

from __future__ import annotations

from collections.abc import Callable

from captioner.audio.devices import InputDevice
from captioner.core.voices import Voices
from captioner.ui.device_picker import SYSTEM_AUDIO, device_key
from captioner.ui.preferences import PreferencesStore
from captioner.ui.window import MainWindow

__all__ = ["CallController"]


class CallController:
    def __init__(self, window: MainWindow, *, store: PreferencesStore) -> None:
        self.window = window
        self.store = store
        self.changed: Callable[[], None] = lambda: None
        """The call was turned on or off, or its other side changed (restart if running)."""
        prefs = store.current
        window.picker.set_call(prefs.call)
        window.call_row.set_wanted(prefs.other_device)
        window.call_row.set_names(*prefs.call_names)
        window.call_row.setVisible(prefs.call)
        window.picker.call_toggled.connect(self._on_call_toggled)
        window.call_row.other_selected.connect(self._on_other_selected)

    @property
    def on(self) -> bool:
        return self.store.current.call

    def devices_changed(self) -> None:
        """The device list was read again: the other side is chosen from the same list."""
        self.window.call_row.set_devices(self.window.picker.devices)

    def names_changed(self) -> None:
        self.window.call_row.set_names(*self.store.current.call_names)

    def voices(self) -> Voices:
        return Voices(self.store.current.call_names) if self.on else Voices()

    def _on_call_toggled(self, on: bool) -> None:
        self.store.update(call=on)
        self.window.call_row.setVisible(on)
        self.changed()

    def _on_other_selected(self, other: InputDevice | str) -> None:
        if other == SYSTEM_AUDIO or not isinstance(other, InputDevice):
            self.store.update(other_name=None, other_hostapi=None)
        else:
            name, hostapi = device_key(other)
            self.store.update(other_name=name, other_hostapi=hostapi)
        self.changed()
