"""Every persisted setting in one typed table, stored with QSettings.

`Preferences` is a frozen value: the settings dialog edits a copy, the app keeps the
current one, and `PreferencesStore` reads and writes it. Reading is forgiving: a value
that cannot be understood (hand-edited file, older version) falls back to its default
instead of stopping the app. The API key is not here: see `keystore.py`.

`CAPTIONER_CONFIG_DIR` points the store (and the key file) at another folder, which is
how tests keep away from the real configuration.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PySide6.QtCore import QByteArray, QSettings

from captioner.core.config import DEEPGRAM_EU_URL, DEEPGRAM_URL, StreamSettings
from captioner.core.voices import clean_name

__all__ = [
    "CONFIG_DIR_ENV",
    "OFFLINE_PLACEHOLDER_URL",
    "AfterSilence",
    "Endpoint",
    "OverlayLook",
    "Preferences",
    "PreferencesStore",
    "Theme",
    "open_qsettings",
]

CONFIG_DIR_ENV = "CAPTIONER_CONFIG_DIR"
ORGANISATION = "Captioner"
APPLICATION = "Captioner"
OFFLINE_PLACEHOLDER_URL = "ws://127.0.0.1:1/v1/listen"
"""Stands for the offline engine's URL while it is not running (validation only)."""


class Endpoint(enum.StrEnum):
    DEEPGRAM = "deepgram"
    DEEPGRAM_EU = "deepgram-eu"
    CUSTOM = "custom"
    OFFLINE = "offline"

    @property
    def label(self) -> str:
        """How the endpoint is named to a person."""
        return _ENDPOINT_LABELS[self]


_ENDPOINT_LABELS = {
    Endpoint.DEEPGRAM: "Deepgram",
    Endpoint.DEEPGRAM_EU: "Deepgram EU",
    Endpoint.CUSTOM: "Custom URL",
    Endpoint.OFFLINE: "Offline engine",
}


class Theme(enum.StrEnum):
    """How the window looks; SYSTEM follows the desktop's light, dark or high-contrast choice."""

    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"
    HIGH_CONTRAST = "high-contrast"

    @property
    def label(self) -> str:
        return _THEME_LABELS[self]


_THEME_LABELS = {
    Theme.SYSTEM: "Follow the system",
    Theme.LIGHT: "Light",
    Theme.DARK: "Dark",
    Theme.HIGH_CONTRAST: "High contrast",
}


class AfterSilence(enum.StrEnum):
    """What the overlay does once nobody has spoken for a while."""

    KEEP = "keep"
    FADE = "fade"
    CLEAR = "clear"

    @property
    def label(self) -> str:
        return _AFTER_SILENCE_LABELS[self]


_AFTER_SILENCE_LABELS = {
    AfterSilence.KEEP: "Keep the last line",
    AfterSilence.FADE: "Fade out",
    AfterSilence.CLEAR: "Clear",
}

OVERLAY_MIN_LINES = 1
OVERLAY_MAX_LINES = 5
OVERLAY_MIN_FONT = 12
OVERLAY_MAX_FONT = 96
OVERLAY_MIN_SILENCE = 1
OVERLAY_MAX_SILENCE = 60


@dataclass(frozen=True, slots=True)
class OverlayLook:
    """The caption overlay's look and behaviour; every value is kept between runs."""

    lines: int = 2
    font_family: str = ""
    """Empty: the desktop's default sans-serif font."""
    font_size: int = 30
    bold: bool = True
    text_colour: str = "#ffffff"
    text_opacity: int = 100
    """Percent."""
    background_colour: str = "#000000"
    background_opacity: int = 65
    """Percent; at 20 or less the text gets an outline, so it reads over anything."""
    click_through: bool = False
    after_silence: AfterSilence = AfterSilence.FADE
    silence_seconds: int = 6

    @property
    def outlined(self) -> bool:
        return self.background_opacity <= 20

    def normalised(self) -> OverlayLook:
        """The same look with every number inside its range and colours that parse."""

        def clamp(value: int, low: int, high: int) -> int:
            return max(low, min(high, int(value)))

        return dataclasses.replace(
            self,
            lines=clamp(self.lines, OVERLAY_MIN_LINES, OVERLAY_MAX_LINES),
            font_size=clamp(self.font_size, OVERLAY_MIN_FONT, OVERLAY_MAX_FONT),
            text_colour=_colour_or(self.text_colour, "#ffffff"),
            text_opacity=clamp(self.text_opacity, 10, 100),
            background_colour=_colour_or(self.background_colour, "#000000"),
            background_opacity=clamp(self.background_opacity, 0, 100),
            silence_seconds=clamp(self.silence_seconds, OVERLAY_MIN_SILENCE, OVERLAY_MAX_SILENCE),
        )


_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def _colour_or(value: str, default: str) -> str:
    return value.lower() if isinstance(value, str) and _HEX_COLOUR.fullmatch(value) else default


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a person chose. `endpoint` None: Deepgram when a key is known, else offline."""

    endpoint: Endpoint | None = None
    custom_url: str = ""
    model: str = "nova-3"
    language: str = "en"
    smart_format: bool = True
    interim_results: bool = True
    endpointing_ms: int | None = 300
    """None: endpointing off."""
    utterance_end_ms: int | None = 1000
    """None: no UtteranceEnd messages."""
    diarize: bool = False
    keyterms: tuple[str, ...] = ()
    profanity_filter: bool = False
    chunk_ms: int = 100
    device_name: str | None = None
    device_hostapi: str | None = None
    call: bool = False
    """Both sides of a call: the input above, and a second one (`other_name`), captioned at
    once and labelled `call_you` and `call_others`."""
    other_name: str | None = None
    """The call's second input (name, host API); None: what this computer plays."""
    other_hostapi: str | None = None
    call_you: str = "You"
    call_others: str = "Others"
    font_size: int = 16
    key_in_file: bool = False
    """Keep the API key in a private file (only where no system keychain exists)."""
    timestamps: bool = False
    """Show the time at the start of each paragraph in the caption pane."""
    theme: Theme = Theme.SYSTEM
    overlay_visible: bool = False
    overlay: OverlayLook = OverlayLook()

    def effective_endpoint(self, *, have_key: bool) -> Endpoint:
        if self.endpoint is not None:
            return self.endpoint
        return Endpoint.DEEPGRAM if have_key else Endpoint.OFFLINE

    def endpoint_url(self, endpoint: Endpoint) -> str:
        """The URL for a remote endpoint; the offline engine's placeholder otherwise."""
        if endpoint is Endpoint.DEEPGRAM:
            return DEEPGRAM_URL
        if endpoint is Endpoint.DEEPGRAM_EU:
            return DEEPGRAM_EU_URL
        if endpoint is Endpoint.CUSTOM:
            return self.custom_url.strip()
        return OFFLINE_PLACEHOLDER_URL

    def stream_settings(self, *, url: str, api_key: str | None) -> StreamSettings:
        endpointing: int | Literal[False] = (
            False if self.endpointing_ms is None else self.endpointing_ms
        )
        return StreamSettings(
            url=url,
            api_key=api_key or None,
            model=self.model.strip(),
            language=self.language.strip(),
            smart_format=self.smart_format,
            interim_results=self.interim_results,
            endpointing=endpointing,
            utterance_end_ms=self.utterance_end_ms,
            diarize=self.diarize,
            keyterms=self.keyterms,
            profanity_filter=self.profanity_filter,
            chunk_ms=self.chunk_ms,
            channels=2 if self.call else 1,
            multichannel=self.call,
        )

    @property
    def call_names(self) -> tuple[str, str]:
        """The two sides' labels, cleaned (a name left empty falls back to the default)."""
        you = clean_name(self.call_you, "You")
        others = clean_name(self.call_others, "Others")
        return you, others

    @property
    def other_device(self) -> tuple[str, str] | None:
        if self.other_name is None:
            return None
        return (self.other_name, self.other_hostapi or "")

    @property
    def device(self) -> tuple[str, str] | None:
        if self.device_name is None:
            return None
        return (self.device_name, self.device_hostapi or "")


def config_dir_from_env() -> Path | None:
    value = os.environ.get(CONFIG_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def open_qsettings(config_dir: Path | None = None) -> QSettings:
    """INI settings in `config_dir` (or $CAPTIONER_CONFIG_DIR), else the per-user location."""
    folder = config_dir if config_dir is not None else config_dir_from_env()
    if folder is not None:
        return QSettings(str(folder / "captioner.ini"), QSettings.Format.IniFormat)
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION
    )


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
        return False
    raise ValueError(value)


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value.strip())
    raise ValueError(value)


def _as_optional_int(value: object) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "off")):
        return None
    return _as_int(value)


def _as_str(value: object) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(value)


def _as_optional_str(value: object) -> str | None:
    return None if value is None or value == "" else _as_str(value)


def _as_endpoint(value: object) -> Endpoint | None:
    if value is None or value == "":
        return None
    return Endpoint(_as_str(value))


def _as_terms(value: object) -> tuple[str, ...]:
    terms = json.loads(_as_str(value))
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise ValueError(value)
    return tuple(terms)


def _optional_int_text(value: object) -> str:
    return "off" if value is None else str(value)


# field name -> (QSettings key, parse stored value, format value for storing)
_TABLE: dict[str, tuple[str, Callable[[object], Any], Callable[[Any], object]]] = {
    "endpoint": ("stream/endpoint", _as_endpoint, lambda v: "" if v is None else str(v)),
    "custom_url": ("stream/custom_url", _as_str, str),
    "model": ("stream/model", _as_str, str),
    "language": ("stream/language", _as_str, str),
    "smart_format": ("stream/smart_format", _as_bool, bool),
    "interim_results": ("stream/interim_results", _as_bool, bool),
    "endpointing_ms": ("stream/endpointing_ms", _as_optional_int, _optional_int_text),
    "utterance_end_ms": ("stream/utterance_end_ms", _as_optional_int, _optional_int_text),
    "diarize": ("stream/diarize", _as_bool, bool),
    "keyterms": ("stream/keyterms", _as_terms, lambda v: json.dumps(list(v))),
    "profanity_filter": ("stream/profanity_filter", _as_bool, bool),
    "chunk_ms": ("stream/chunk_ms", _as_int, int),
    "device_name": ("audio/device_name", _as_optional_str, lambda v: v or ""),
    "device_hostapi": ("audio/device_hostapi", _as_optional_str, lambda v: v or ""),
    "call": ("call/on", _as_bool, bool),
    "other_name": ("call/other_name", _as_optional_str, lambda v: v or ""),
    "other_hostapi": ("call/other_hostapi", _as_optional_str, lambda v: v or ""),
    "call_you": ("call/you", _as_str, str),
    "call_others": ("call/others", _as_str, str),
    "font_size": ("view/font_size", _as_int, int),
    "key_in_file": ("secrets/key_in_file", _as_bool, bool),
    "timestamps": ("view/timestamps", _as_bool, bool),
    "theme": ("view/theme", lambda v: Theme(_as_str(v)), str),
    "overlay_visible": ("overlay/visible", _as_bool, bool),
}

_OVERLAY_TABLE: dict[str, tuple[str, Callable[[object], Any], Callable[[Any], object]]] = {
    "lines": ("overlay/lines", _as_int, int),
    "font_family": ("overlay/font_family", _as_str, str),
    "font_size": ("overlay/font_size", _as_int, int),
    "bold": ("overlay/bold", _as_bool, bool),
    "text_colour": ("overlay/text_colour", _as_str, str),
    "text_opacity": ("overlay/text_opacity", _as_int, int),
    "background_colour": ("overlay/background_colour", _as_str, str),
    "background_opacity": ("overlay/background_opacity", _as_int, int),
    "click_through": ("overlay/click_through", _as_bool, bool),
    "after_silence": ("overlay/after_silence", lambda v: AfterSilence(_as_str(v)), str),
    "silence_seconds": ("overlay/silence_seconds", _as_int, int),
}


class PreferencesStore:
    """Reads and writes `Preferences` (and the window geometry) through one QSettings."""

    def __init__(self, qsettings: QSettings) -> None:
        self.qsettings = qsettings
        self._current: Preferences | None = None

    @property
    def current(self) -> Preferences:
        """The preferences in force: loaded once, then kept as they are changed here."""
        if self._current is None:
            self._current = self.load()
        return self._current

    def update(self, **changes: Any) -> Preferences:
        """Change some preferences and save them all; returns the preferences now in force."""
        self._current = dataclasses.replace(self.current, **changes)
        self.save(self._current)
        return self._current

    def replace(self, prefs: Preferences) -> None:
        """Put `prefs` in force (the settings dialog's result) and save them."""
        self._current = prefs
        self.save(prefs)

    @property
    def config_dir(self) -> Path:
        """The folder of the settings file: the key file, if any, lives beside it."""
        return Path(self.qsettings.fileName()).parent

    def _read(
        self, table: dict[str, tuple[str, Callable[[object], Any], Callable[[Any], object]]]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, (key, parse, _fmt) in table.items():
            if not self.qsettings.contains(key):
                continue
            try:
                values[name] = parse(self.qsettings.value(key))
            except (ValueError, TypeError):
                continue
        return values

    def load(self) -> Preferences:
        defaults = Preferences()
        values = self._read(_TABLE)
        try:
            values["overlay"] = dataclasses.replace(
                OverlayLook(), **self._read(_OVERLAY_TABLE)
            ).normalised()
        except (TypeError, ValueError):
            values["overlay"] = OverlayLook()
        try:
            return dataclasses.replace(defaults, **values)
        except (TypeError, ValueError):
            return defaults

    def save(self, prefs: Preferences) -> None:
        for name, (key, _parse, fmt) in _TABLE.items():
            self.qsettings.setValue(key, fmt(getattr(prefs, name)))
        for name, (key, _parse, fmt) in _OVERLAY_TABLE.items():
            self.qsettings.setValue(key, fmt(getattr(prefs.overlay, name)))
        self.qsettings.sync()

    def export_folder(self) -> Path | None:
        """Where the last export went (the export dialog opens there)."""
        value = self.qsettings.value("export/folder")
        if isinstance(value, str) and value and Path(value).is_dir():
            return Path(value)
        return None

    def export_format(self) -> str:
        value = self.qsettings.value("export/format")
        return value if isinstance(value, str) and value else "srt"

    def save_export_choice(self, folder: Path, fmt: str) -> None:
        self.qsettings.setValue("export/folder", str(folder))
        self.qsettings.setValue("export/format", fmt)
        self.qsettings.sync()

    def overlay_geometry(self) -> tuple[int, int, int, int] | None:
        """(x, y, width, height) of the overlay when it was last placed, if ever."""
        value = self.qsettings.value("overlay/geometry")
        if not isinstance(value, str):
            return None
        try:
            x, y, width, height = (int(part) for part in value.split(","))
        except ValueError:
            return None
        if width <= 0 or height <= 0:
            return None
        return x, y, width, height

    def save_overlay_geometry(self, geometry: tuple[int, int, int, int]) -> None:
        self.qsettings.setValue("overlay/geometry", ",".join(str(int(v)) for v in geometry))
        self.qsettings.sync()

    def window_geometry(self) -> QByteArray | None:
        value = self.qsettings.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def save_window_geometry(self, geometry: QByteArray) -> None:
        self.qsettings.setValue("window/geometry", geometry)
        self.qsettings.sync()
