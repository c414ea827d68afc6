"""The settings dialog: every field checked as it is typed, the reason shown beside it.

The rules are `StreamSettings.errors()` (core/config.py), so the dialog and the session
can never disagree about what is valid; the dialog only adds the parsing of what was
typed ("300", "off"). It is opened with `open()` (never `exec()`, which would nest an
event loop under qasync) and reports through the `saved` signal.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLayout,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from captioner.core import languages
from captioner.core.voices import MAX_NAME_CHARS, clean_name
from captioner.ui.keystore import KeySource
from captioner.ui.preferences import Endpoint, Preferences

__all__ = ["FIELDS", "KeyInfo", "SettingsDialog", "SettingsResult", "parse_terms"]

FIELDS = (
    "endpoint",
    "url",
    "api_key",
    "model",
    "language",
    "smart_format",
    "interim_results",
    "endpointing",
    "utterance_end_ms",
    "diarize",
    "keyterms",
    "profanity_filter",
    "chunk_ms",
)
"""Field names; they match `SettingError.setting` so reasons land beside their field."""

_OFF_WORDS = frozenset({"off", "no", "false", "none"})
_TERM_SPLIT = re.compile(r"[,\n]")


@dataclass(frozen=True)
class KeyInfo:
    """What the dialog says about where the key is kept."""

    keychain_available: bool
    keychain_name: str
    source: KeySource
    file_path: Path
    problem: str = ""


@dataclass(frozen=True)
class SettingsResult:
    preferences: Preferences
    api_key: str | None
    remember_in_file: bool


def parse_terms(text: str) -> tuple[str, ...]:
    """Key terms separated by commas or line breaks; blanks dropped, order kept."""
    return tuple(t.strip() for t in _TERM_SPLIT.split(text) if t.strip())


def _parse_ms(text: str, *, allow_off: bool) -> int | None:
    """Whole milliseconds, or None for "off"; raises ValueError with a reason."""
    value = text.strip().lower().removesuffix("ms").strip()
    if allow_off and value in _OFF_WORDS:
        return None
    if not value:
        raise ValueError("enter a number of milliseconds" + (", or “off”" if allow_off else ""))
    if not value.isdigit():
        raise ValueError(
            f"“{text.strip()}” is not a whole number of milliseconds"
            + (" (or “off”)" if allow_off else "")
        )
    return int(value)


class SettingsDialog(QDialog):
    saved = Signal(object)
    """A `SettingsResult`, when the person presses Save."""

    def __init__(
        self,
        preferences: Preferences,
        api_key: str | None,
        key_info: KeyInfo,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Captioner settings")
        self._base = preferences
        self._key_info = key_info
        self._errors: dict[str, str] = {}
        self.error_labels: dict[str, QLabel] = {}

        # connection
        self.endpoint_combo = QComboBox()
        self.endpoint_combo.setObjectName("endpointCombo")
        for endpoint in Endpoint:
            self.endpoint_combo.addItem(endpoint.label, endpoint.value)
        have_key = bool(api_key)
        current = preferences.effective_endpoint(have_key=have_key)
        self.endpoint_combo.setCurrentIndex(list(Endpoint).index(current))
        self.url_edit = QLineEdit(preferences.custom_url)
        self.url_edit.setObjectName("urlEdit")
        self.url_edit.setPlaceholderText("wss://host.example/v1/listen")
        self.key_edit = QLineEdit(api_key or "")
        self.key_edit.setObjectName("keyEdit")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("Deepgram API key")
        self.show_key = QCheckBox("Show")
        self.show_key.setObjectName("showKeyCheck")
        self.show_key.toggled.connect(self._on_show_key_toggled)
        self.key_note = QLabel()
        self.key_note.setObjectName("keyNote")
        self.key_note.setWordWrap(True)
        self.remember_key = QCheckBox(
            f"Remember the key in a file only you can read ({key_info.file_path})"
        )
        self.remember_key.setObjectName("rememberKeyCheck")
        self.remember_key.setChecked(preferences.key_in_file or key_info.source is KeySource.FILE)
        self.remember_key.setVisible(not key_info.keychain_available)

        # recognition: lists by name, and still room to type a name or code not listed
        self.model_combo, self.model_edit = _editable_combo("modelCombo", "modelEdit")
        for model in languages.DEEPGRAM_MODELS:
            self.model_combo.addItem(model.name, model.name)
            index = self.model_combo.count() - 1
            self.model_combo.setItemData(index, model.description, Qt.ItemDataRole.ToolTipRole)
        self.model_edit.setText(preferences.model)
        self.model_note = QLabel()
        self.model_note.setObjectName("modelNote")
        self.model_note.setWordWrap(True)
        self.language_combo, self.language_edit = _editable_combo("languageCombo", "languageEdit")
        self.language_edit.setPlaceholderText("type to search: German, Deutsch, de …")
        self._language_list_key: tuple[str, ...] = ()
        self.smart_format_check = QCheckBox("Smart format (punctuation, numbers, dates)")
        self.smart_format_check.setObjectName("smartFormatCheck")
        self.smart_format_check.setChecked(preferences.smart_format)
        self.interim_check = QCheckBox("Show words while they are recognised (interim results)")
        self.interim_check.setObjectName("interimCheck")
        self.interim_check.setChecked(preferences.interim_results)
        self.endpointing_edit = QLineEdit(_ms_text(preferences.endpointing_ms))
        self.endpointing_edit.setObjectName("endpointingEdit")
        self.endpointing_edit.setToolTip(
            "Silence in ms that ends a sentence, or “off”. Shorter is quicker, longer splits less."
        )
        self.utterance_end_edit = QLineEdit(_ms_text(preferences.utterance_end_ms))
        self.utterance_end_edit.setObjectName("utteranceEndEdit")
        self.utterance_end_edit.setToolTip(
            "Gap in ms after the last word that ends a paragraph even in noise (1000 or more), "
            "or “off”."
        )
        self.diarize_check = QCheckBox("Label speakers (diarization)")
        self.diarize_check.setObjectName("diarizeCheck")
        self.diarize_check.setChecked(preferences.diarize)
        self.keyterms_edit = QLineEdit(", ".join(preferences.keyterms))
        self.keyterms_edit.setObjectName("keytermsEdit")
        self.keyterms_edit.setPlaceholderText("names and jargon, separated by commas")
        self.profanity_check = QCheckBox("Filter profanity")
        self.profanity_check.setObjectName("profanityCheck")
        self.profanity_check.setChecked(preferences.profanity_filter)
        self.chunk_edit = QLineEdit(str(preferences.chunk_ms))
        self.chunk_edit.setObjectName("chunkEdit")
        self.chunk_edit.setToolTip("Audio per message, 20 to 250 ms")
        self.you_edit = QLineEdit(preferences.call_you)
        self.you_edit.setObjectName("callYouEdit")
        self.you_edit.setMaxLength(MAX_NAME_CHARS)
        self.you_edit.setToolTip("How your side of a call is labelled (the Call box)")
        self.others_edit = QLineEdit(preferences.call_others)
        self.others_edit.setObjectName("callOthersEdit")
        self.others_edit.setMaxLength(MAX_NAME_CHARS)
        self.others_edit.setToolTip(
            "How the other side of a call is labelled; with speaker labels on, each person "
            "there gets a number (Others 1, Others 2)"
        )

        connection = QGroupBox("Connection")
        grid = QGridLayout(connection)
        self._row(grid, 0, "Endpoint", self.endpoint_combo, "endpoint")
        self._row(grid, 1, "URL", self.url_edit, "url")
        key_row = QWidget()
        key_layout = QGridLayout(key_row)
        key_layout.setContentsMargins(0, 0, 0, 0)
        key_layout.addWidget(self.key_edit, 0, 0)
        key_layout.addWidget(self.show_key, 0, 1)
        self._row(grid, 2, "API key", key_row, "api_key")
        grid.addWidget(self.key_note, 3, 1, 1, 2)
        grid.addWidget(self.remember_key, 4, 1, 1, 2)

        recognition = QGroupBox("Recognition")
        grid2 = QGridLayout(recognition)
        rows: list[tuple[str, QWidget, str]] = [
            ("Model", self.model_combo, "model"),
            ("", self.model_note, "model_note"),
            ("Language", self.language_combo, "language"),
            ("", self.smart_format_check, "smart_format"),
            ("", self.interim_check, "interim_results"),
            ("Endpointing (ms)", self.endpointing_edit, "endpointing"),
            ("Utterance end (ms)", self.utterance_end_edit, "utterance_end_ms"),
            ("", self.diarize_check, "diarize"),
            ("Key terms", self.keyterms_edit, "keyterms"),
            ("", self.profanity_check, "profanity_filter"),
            ("Chunk duration (ms)", self.chunk_edit, "chunk_ms"),
        ]
        for number, (label, widget, name) in enumerate(rows):
            self._row(grid2, number, label, widget, name)

        call = QGroupBox("Both sides of a call")
        grid3 = QGridLayout(call)
        self._row(grid3, 0, "Your side", self.you_edit, "call_you")
        self._row(grid3, 1, "The other side", self.others_edit, "call_others")

        self.general_error = QLabel()
        self.general_error.setObjectName("generalError")
        self.general_error.setWordWrap(True)
        self.general_error.setStyleSheet("color: #d0342c;")
        self.general_error.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._on_save_clicked)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)  # grow with reasons
        layout.addWidget(connection)
        layout.addWidget(recognition)
        layout.addWidget(call)
        layout.addWidget(self.general_error)
        layout.addWidget(self.buttons)

        for edit in (
            self.url_edit,
            self.key_edit,
            self.model_edit,
            self.language_edit,
            self.endpointing_edit,
            self.utterance_end_edit,
            self.keyterms_edit,
            self.chunk_edit,
            self.you_edit,
            self.others_edit,
        ):
            edit.textChanged.connect(self._on_field_changed)
        for check in (
            self.smart_format_check,
            self.interim_check,
            self.diarize_check,
            self.profanity_check,
            self.remember_key,
        ):
            check.toggled.connect(self._on_field_changed)
        self.endpoint_combo.currentIndexChanged.connect(self._on_field_changed)
        self._fill_languages(preferences.language)
        self.validate()

    def _row(self, grid: QGridLayout, row: int, label: str, widget: QWidget, name: str) -> None:
        if label:
            text = QLabel(label)
            text.setBuddy(widget)
            grid.addWidget(text, row, 0)
        grid.addWidget(widget, row, 1)
        error = QLabel()
        error.setObjectName(f"{name}Error")
        error.setWordWrap(True)
        error.setMinimumWidth(300)
        error.setStyleSheet("color: #d0342c;")
        error.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        grid.addWidget(error, row, 2)
        self.error_labels[name] = error

    # -- reading the form ---------------------------------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(str(self.endpoint_combo.currentData()))

    def errors(self) -> dict[str, str]:
        """Field name -> reason, for every field that cannot be saved as it is."""
        return dict(self._errors)

    def validate(self) -> dict[str, str]:
        """Check the whole form; show each reason beside its field; enable Save or not."""
        errors: dict[str, str] = {}
        prefs = self._read_form(errors)
        endpoint = self.endpoint
        key = self.key_edit.text().strip() or None
        settings = prefs.stream_settings(url=prefs.endpoint_url(endpoint), api_key=key)
        for problem in settings.errors():
            name = problem.setting if problem.setting in self.error_labels else "general"
            if name == "url" and endpoint is not Endpoint.CUSTOM:
                name = "general"
            errors.setdefault(name, problem.reason)
        self._errors = errors
        for name, label in self.error_labels.items():
            reason = errors.get(name, "")
            label.setText(reason)
        general = errors.get("general", "")
        self.general_error.setText(general)
        self.general_error.setVisible(bool(general))
        self._update_endpoint_fields(endpoint)
        self._update_recognition_fields(endpoint)
        self._update_key_note(endpoint, key)
        save = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        save.setEnabled(not errors)
        return errors

    def _read_form(self, errors: dict[str, str]) -> Preferences:
        values: dict[str, object] = {
            "endpoint": self.endpoint,
            "custom_url": self.url_edit.text().strip()
            if self.endpoint is Endpoint.CUSTOM
            else self._base.custom_url,
            "model": self._base.model
            if self.endpoint is Endpoint.OFFLINE
            else self.model_edit.text().strip(),
            "language": self.language_code(),
            "smart_format": self.smart_format_check.isChecked(),
            "interim_results": self.interim_check.isChecked(),
            "diarize": self.diarize_check.isChecked(),
            "keyterms": parse_terms(self.keyterms_edit.text()),
            "profanity_filter": self.profanity_check.isChecked(),
            "key_in_file": self.remember_key.isChecked() and not self._key_info.keychain_available,
            "call_you": clean_name(self.you_edit.text(), "You"),
            "call_others": clean_name(self.others_edit.text(), "Others"),
        }
        for name, edit, field, allow_off in (
            ("endpointing", self.endpointing_edit, "endpointing_ms", True),
            ("utterance_end_ms", self.utterance_end_edit, "utterance_end_ms", True),
            ("chunk_ms", self.chunk_edit, "chunk_ms", False),
        ):
            try:
                values[field] = _parse_ms(edit.text(), allow_off=allow_off)
            except ValueError as exc:
                errors[name] = str(exc)
        return dataclasses.replace(self._base, **values)  # type: ignore[arg-type]

    def _update_endpoint_fields(self, endpoint: Endpoint) -> None:
        custom = endpoint is Endpoint.CUSTOM
        self.url_edit.setReadOnly(not custom)
        self.url_edit.setEnabled(endpoint is not Endpoint.OFFLINE)
        if not custom:
            self.url_edit.blockSignals(True)
            self.url_edit.setText(
                "started on this computer when needed"
                if endpoint is Endpoint.OFFLINE
                else self._base.endpoint_url(endpoint)
            )
            self.url_edit.blockSignals(False)
        elif self.url_edit.text() in (
            self._base.endpoint_url(Endpoint.DEEPGRAM),
            self._base.endpoint_url(Endpoint.DEEPGRAM_EU),
            "started on this computer when needed",
        ):
            self.url_edit.blockSignals(True)
            self.url_edit.setText(self._base.custom_url)
            self.url_edit.blockSignals(False)

    # -- model and language ---------------------------------------------------------------

    def language_code(self) -> str:
        """The code for what the language field shows: a listed name's code, or what was
        typed (a code the list does not have, such as "de-AT")."""
        text = self.language_edit.text().strip()
        index = self.language_combo.findText(text, Qt.MatchFlag.MatchFixedString)
        if index >= 0:
            return str(self.language_combo.itemData(index))
        return text

    def language_choices(self) -> list[languages.LanguageChoice]:
        """What the language list offers for the endpoint and model now in the form."""
        endpoint = self.endpoint
        if endpoint is Endpoint.OFFLINE:
            return languages.offline_languages()
        if endpoint is not Endpoint.CUSTOM:
            listed = languages.deepgram_languages(self.model_edit.text())
            if listed is not None:
                return listed
        return [
            languages.LanguageChoice(languages.DETECT, languages.describe(languages.DETECT)),
            *languages.offline_languages()[1:],
        ]

    def _fill_languages(self, keep: str) -> None:
        choices = self.language_choices()
        key = tuple(choice.code for choice in choices)
        if key == self._language_list_key:
            return
        self._language_list_key = key
        combo = self.language_combo
        combo.blockSignals(True)
        self.language_edit.blockSignals(True)
        combo.clear()
        for choice in choices:
            combo.addItem(choice.label, choice.code)
        index = combo.findData(keep)
        if index >= 0:
            combo.setCurrentIndex(index)
        else:
            combo.setCurrentIndex(-1)
            combo.setEditText(keep)
        self.language_edit.blockSignals(False)
        combo.blockSignals(False)

    def _update_recognition_fields(self, endpoint: Endpoint) -> None:
        offline = endpoint is Endpoint.OFFLINE
        self.model_combo.setEnabled(not offline)
        self.model_edit.blockSignals(True)
        if offline:
            self.model_edit.setText(languages.OFFLINE_MODEL_LABEL)
        elif self.model_edit.text() == languages.OFFLINE_MODEL_LABEL:
            self.model_edit.setText(self._base.model)
        self.model_edit.blockSignals(False)
        if offline:
            note = "The offline engine has one model, on this computer."
        else:
            known = {m.name: m.description for m in languages.DEEPGRAM_MODELS}
            note = known.get(
                self.model_edit.text().strip(),
                "A model not listed here: its name is sent as typed.",
            )
        self.model_note.setText(note)
        self._fill_languages(self.language_code())

    def _update_key_note(self, endpoint: Endpoint, key: str | None) -> None:
        info = self._key_info
        parts: list[str] = []
        if info.source in (KeySource.ARGUMENT, KeySource.ENVIRONMENT):
            parts.append(
                f"This run uses the key from {info.source.value}; "
                "a key saved here is used from now on."
            )
        if info.keychain_available:
            parts.append(f"The key is kept in the system keychain ({info.keychain_name}).")
        else:
            parts.append(
                "No system keychain is available on this computer, so the key is kept for "
                "this run only and nothing is written to disk, unless you tick the box below."
            )
        if info.problem:
            parts.append(info.problem)
        if endpoint is Endpoint.OFFLINE:
            parts.append("The offline engine needs no key.")
        self.key_note.setText(" ".join(parts))

    # -- results ------------------------------------------------------------------------------

    def result_values(self) -> SettingsResult | None:
        """What Save would store, or None while a field has a problem."""
        errors: dict[str, str] = {}
        prefs = self._read_form(errors)
        if errors or self.validate():
            return None
        key = self.key_edit.text().strip() or None
        return SettingsResult(
            preferences=prefs,
            api_key=key,
            remember_in_file=prefs.key_in_file,
        )

    def _on_field_changed(self, *_args: object) -> None:
        self.validate()

    def _on_show_key_toggled(self, on: bool) -> None:
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password)

    def _on_save_clicked(self) -> None:
        result = self.result_values()
        if result is None:
            return
        self.saved.emit(result)
        self.accept()


def _editable_combo(name: str, edit_name: str) -> tuple[QComboBox, QLineEdit]:
    """A list one can also type into; typing searches the list by any part of a name."""
    combo = QComboBox()
    combo.setObjectName(name)
    combo.setEditable(True)
    edit = QLineEdit()
    edit.setObjectName(edit_name)
    combo.setLineEdit(edit)
    combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
    combo.setMaxVisibleItems(15)
    completer = QCompleter(combo.model(), combo)
    completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    completer.setFilterMode(Qt.MatchFlag.MatchContains)
    completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
    combo.setCompleter(completer)
    return combo, edit


def _ms_text(value: int | None) -> str:
    return "off" if value is None else str(value)
