"""Settings: the typed QSettings table, the API key's storage, and the dialog's validation."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from captioner.ui.keystore import ACCOUNT, SERVICE, KeySource, KeyStore, keychain_usable
from captioner.ui.preferences import Endpoint, Preferences, PreferencesStore, open_qsettings
from captioner.ui.settings_dialog import KeyInfo, SettingsDialog, SettingsResult, parse_terms
from tests.ui_support import QT_MARKS

pytestmark = QT_MARKS

KEY = "0123456789abcdef0123456789abcdef01234567"


class MemoryKeyring(KeyringBackend):
    """A keychain at the boundary: what a desktop's Secret Service would hold."""

    priority = 1

    def __init__(self, *, refuse: bool = False) -> None:
        super().__init__()
        self.refuse = refuse
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.refuse:
            raise keyring.errors.KeyringLocked("the keychain is locked")
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("no such password")


# -- preferences ------------------------------------------------------------------------


def test_preferences_round_trip_through_qsettings(tmp_path: Path) -> None:
    prefs = Preferences(
        endpoint=Endpoint.CUSTOM,
        custom_url="ws://10.0.0.2:8080/v1/listen",
        model="nova-2",
        language="de",
        smart_format=False,
        interim_results=False,
        endpointing_ms=None,
        utterance_end_ms=None,
        diarize=True,
        keyterms=("Captioner", "Deepgram, Inc."),
        profanity_filter=True,
        chunk_ms=50,
        device_name="USB Microphone",
        device_hostapi="ALSA",
        call=True,
        other_name="Monitor of Speakers",
        other_hostapi="PulseAudio",
        call_you="Ana",
        call_others="Support line",
        font_size=24,
        key_in_file=True,
    )
    PreferencesStore(open_qsettings(tmp_path)).save(prefs)
    assert (tmp_path / "captioner.ini").is_file()
    assert PreferencesStore(open_qsettings(tmp_path)).load() == prefs


def test_unreadable_values_fall_back_to_their_defaults(tmp_path: Path) -> None:
    (tmp_path / "captioner.ini").write_text(
        "[stream]\nchunk_ms=lots\nendpoint=moon\nmodel=nova-2\nkeyterms=[1, 2]\n"
        "smart_format=perhaps\n"
    )
    prefs = PreferencesStore(open_qsettings(tmp_path)).load()
    assert prefs == Preferences(model="nova-2")


def test_the_endpoint_defaults_to_deepgram_only_with_a_key() -> None:
    assert Preferences().effective_endpoint(have_key=True) is Endpoint.DEEPGRAM
    assert Preferences().effective_endpoint(have_key=False) is Endpoint.OFFLINE
    chosen = Preferences(endpoint=Endpoint.DEEPGRAM_EU)
    assert chosen.effective_endpoint(have_key=False) is Endpoint.DEEPGRAM_EU


def test_preferences_become_stream_settings() -> None:
    prefs = Preferences(endpointing_ms=None, utterance_end_ms=None, keyterms=("Kubernetes",))
    settings = prefs.stream_settings(url="wss://api.deepgram.com/v1/listen", api_key=KEY)
    assert settings.endpointing is False and settings.utterance_end_ms is None
    query = dict(settings.query_params())
    assert query["endpointing"] == "false" and query["keyterm"] == "Kubernetes"


# -- the key ----------------------------------------------------------------------------


def test_without_a_keychain_nothing_is_written_unless_asked(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, backend=fail.Keyring())
    assert not store.keychain_available
    assert store.save(KEY) is KeySource.SESSION
    assert store.load() == KEY
    assert list(tmp_path.iterdir()) == []
    assert KeyStore(tmp_path, backend=fail.Keyring()).load() is None  # next run: gone


def test_the_key_file_is_private_and_read_back(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, backend=fail.Keyring())
    assert store.save(KEY, remember_in_file=True) is KeySource.FILE
    mode = stat.S_IMODE(store.file_path.stat().st_mode)
    assert mode == 0o600
    again = KeyStore(tmp_path, backend=fail.Keyring())
    assert again.load() == KEY and again.source is KeySource.FILE
    again.save(KEY, remember_in_file=False)
    assert not store.file_path.exists() and again.load() == KEY


def test_a_keychain_holds_the_key_and_no_file_is_left(tmp_path: Path) -> None:
    (tmp_path / "api-key").write_text("old-key\n")
    backend = MemoryKeyring()
    store = KeyStore(tmp_path, backend=backend)
    assert store.keychain_available
    assert store.save(KEY, remember_in_file=True) is KeySource.KEYCHAIN
    assert backend.items == {(SERVICE, ACCOUNT): KEY}
    assert not (tmp_path / "api-key").exists()
    assert KeyStore(tmp_path, backend=backend).load() == KEY
    store.save(None)
    assert backend.items == {}


def test_a_refusing_keychain_keeps_the_key_for_this_run(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, backend=MemoryKeyring(refuse=True))
    assert store.save(KEY) is KeySource.SESSION
    assert store.load() == KEY and "KeyringLocked" in store.problem
    assert list(tmp_path.iterdir()) == []


def test_a_key_given_for_the_run_wins(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    backend.set_password(SERVICE, ACCOUNT, "stored")
    store = KeyStore(tmp_path, backend=backend, given="given", given_source=KeySource.ENVIRONMENT)
    assert store.load() == "given" and store.source is KeySource.ENVIRONMENT


def test_keyrings_that_store_nothing_are_not_keychains() -> None:
    from keyring.backends import chainer, null

    assert not keychain_usable(fail.Keyring())
    assert not keychain_usable(null.Keyring())
    assert keychain_usable(MemoryKeyring())
    empty_chain = chainer.ChainerBackend()
    assert keychain_usable(empty_chain) == any(keychain_usable(b) for b in empty_chain.backends)


def test_the_key_never_reaches_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = KeyStore(tmp_path, backend=MemoryKeyring(refuse=True))
    store.save(KEY, remember_in_file=True)
    store.load()
    assert caplog.records, "the refusal should have been logged"
    assert all(KEY not in r.getMessage() for r in caplog.records)


# -- the dialog -------------------------------------------------------------------------


def no_keychain(tmp_path: Path) -> KeyInfo:
    return KeyInfo(False, "fail Keyring", KeySource.NONE, tmp_path / "api-key")


def make_dialog(
    qtbot: QtBot, tmp_path: Path, prefs: Preferences | None = None, key: str | None = None
) -> SettingsDialog:
    dialog = SettingsDialog(prefs or Preferences(), key, no_keychain(tmp_path))
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def save_enabled(dialog: SettingsDialog) -> bool:
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Save).isEnabled()


def type_into(qtbot: QtBot, edit: object, text: str) -> None:
    from PySide6.QtWidgets import QLineEdit

    assert isinstance(edit, QLineEdit)
    edit.clear()
    qtbot.keyClicks(edit, text)


def test_fields_are_checked_as_typed_with_the_reason_beside_them(
    qtbot: QtBot, tmp_path: Path
) -> None:
    dialog = make_dialog(qtbot, tmp_path)
    assert dialog.endpoint is Endpoint.OFFLINE  # no key: the offline engine
    assert dialog.errors() == {} and save_enabled(dialog)

    type_into(qtbot, dialog.chunk_edit, "abc")
    assert dialog.error_labels["chunk_ms"].text() == "“abc” is not a whole number of milliseconds"
    assert not save_enabled(dialog)
    type_into(qtbot, dialog.chunk_edit, "10")
    assert dialog.error_labels["chunk_ms"].text() == "must be from 20 to 250 ms"
    type_into(qtbot, dialog.chunk_edit, "80")
    assert dialog.error_labels["chunk_ms"].text() == "" and save_enabled(dialog)

    type_into(qtbot, dialog.utterance_end_edit, "500")
    assert "at least 1000" in dialog.error_labels["utterance_end_ms"].text()
    type_into(qtbot, dialog.utterance_end_edit, "1200")
    dialog.interim_check.setChecked(False)
    assert dialog.error_labels["utterance_end_ms"].text() == "needs interim_results to be on"
    type_into(qtbot, dialog.utterance_end_edit, "off")
    assert dialog.errors() == {}

    type_into(qtbot, dialog.language_edit, "english please")
    assert "language code" in dialog.error_labels["language"].text()
    type_into(qtbot, dialog.language_edit, "en-GB")
    type_into(qtbot, dialog.endpointing_edit, "-5")
    assert "whole number" in dialog.error_labels["endpointing"].text()
    type_into(qtbot, dialog.endpointing_edit, "off")
    assert dialog.errors() == {}


def test_deepgram_needs_a_key_and_a_custom_url_must_be_websocket(
    qtbot: QtBot, tmp_path: Path
) -> None:
    dialog = make_dialog(qtbot, tmp_path)
    dialog.endpoint_combo.setCurrentIndex(list(Endpoint).index(Endpoint.DEEPGRAM))
    assert dialog.url_edit.text() == "wss://api.deepgram.com/v1/listen"
    assert dialog.url_edit.isReadOnly()
    assert "API key is required" in dialog.error_labels["api_key"].text()
    type_into(qtbot, dialog.key_edit, "has a space")
    assert "spaces" in dialog.error_labels["api_key"].text()
    type_into(qtbot, dialog.key_edit, KEY)
    assert dialog.errors() == {}

    dialog.endpoint_combo.setCurrentIndex(list(Endpoint).index(Endpoint.CUSTOM))
    assert not dialog.url_edit.isReadOnly()
    type_into(qtbot, dialog.url_edit, "http://10.0.0.2:8080/v1/listen")
    assert "use ws:// instead of http://" in dialog.error_labels["url"].text()
    type_into(qtbot, dialog.url_edit, "ws://10.0.0.2:8080/v1/listen")
    assert dialog.errors() == {}


def test_key_terms_only_with_nova_3(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = make_dialog(qtbot, tmp_path)
    dialog.endpoint_combo.setCurrentIndex(list(Endpoint).index(Endpoint.DEEPGRAM))
    type_into(qtbot, dialog.keyterms_edit, "Captioner, Deepgram")
    type_into(qtbot, dialog.model_edit, "nova-2")
    assert dialog.error_labels["keyterms"].text() == "key terms work only with nova-3 models"
    assert parse_terms("a, b\n c,,") == ("a", "b", "c")


def test_the_dialog_says_there_is_no_keychain(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = make_dialog(qtbot, tmp_path)
    assert "No system keychain is available" in dialog.key_note.text()
    assert dialog.remember_key.isVisible()
    with_keychain = SettingsDialog(
        Preferences(), KEY, KeyInfo(True, "SecretService Keyring", KeySource.KEYCHAIN, tmp_path)
    )
    qtbot.addWidget(with_keychain)
    with_keychain.show()
    assert "system keychain (SecretService Keyring)" in with_keychain.key_note.text()
    assert not with_keychain.remember_key.isVisible()
    assert with_keychain.endpoint is Endpoint.DEEPGRAM


def test_save_reports_what_was_typed(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = make_dialog(qtbot, tmp_path, Preferences(font_size=30))
    dialog.endpoint_combo.setCurrentIndex(list(Endpoint).index(Endpoint.DEEPGRAM_EU))
    type_into(qtbot, dialog.key_edit, KEY)
    dialog.remember_key.setChecked(True)
    type_into(qtbot, dialog.model_edit, "nova-3-medical")
    dialog.diarize_check.setChecked(True)
    type_into(qtbot, dialog.endpointing_edit, "500 ms")
    results: list[SettingsResult] = []
    dialog.saved.connect(results.append)
    save = dialog.buttons.button(QDialogButtonBox.StandardButton.Save)
    save.click()
    assert len(results) == 1
    saved = results[0]
    assert saved.api_key == KEY and saved.remember_in_file
    prefs = saved.preferences
    assert prefs.endpoint is Endpoint.DEEPGRAM_EU and prefs.model == "nova-3-medical"
    assert prefs.diarize and prefs.endpointing_ms == 500 and prefs.font_size == 30
    assert not dialog.isVisible()


# -- languages and models by name ------------------------------------------------------------


def test_the_offline_engine_offers_whispers_languages_by_name_and_one_model(
    qtbot: QtBot, tmp_path: Path
) -> None:
    from captioner.server.query import WHISPER_LANGUAGES, parse_query

    dialog = make_dialog(qtbot, tmp_path)
    assert dialog.endpoint is Endpoint.OFFLINE
    # the model: one, named, not editable
    assert dialog.model_edit.text() == "Whisper base (on this computer)"
    assert not dialog.model_combo.isEnabled()
    # the languages: "Detect automatically" first, then every language the server decodes
    choices = dialog.language_choices()
    assert choices[0].code == "multi" and choices[0].label == "Detect automatically"
    offered = {choice.code for choice in choices}
    assert offered - {"multi"} == set(WHISPER_LANGUAGES)  # the list cannot drift from the server
    for code in offered:  # and the server takes every one of them
        parse_query(f"encoding=linear16&sample_rate=16000&language={code}")
    labels = [choice.label for choice in choices]
    assert "German — Deutsch" in labels and "Japanese — 日本語" in labels
    assert "Arabic — العربية" in labels and "Hebrew — עברית" in labels
    assert dialog.language_edit.text() == "English"  # the saved "en", shown by name

    # search by any part of the English or the native name
    completer = dialog.language_combo.completer()
    completer.setCompletionPrefix("deut")
    assert completer.currentCompletion() == "German — Deutsch"
    completer.setCompletionPrefix("日本")
    assert completer.currentCompletion() == "Japanese — 日本語"

    # choosing a name stores its code; a code typed by hand still works
    dialog.language_combo.setCurrentIndex(dialog.language_combo.findData("de"))
    assert dialog.language_edit.text() == "German — Deutsch"
    assert dialog.language_code() == "de"
    dialog.language_combo.setCurrentIndex(0)
    assert dialog.language_code() == "multi"
    type_into(qtbot, dialog.language_edit, "pt-BR")
    assert dialog.language_code() == "pt-BR" and dialog.errors() == {}
    results: list[SettingsResult] = []
    dialog.saved.connect(results.append)
    dialog.language_combo.setCurrentIndex(dialog.language_combo.findData("he"))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert results[0].preferences.language == "he"
    assert results[0].preferences.model == Preferences().model  # the offline label is not saved


def test_deepgram_offers_each_models_languages_and_its_models_by_name(
    qtbot: QtBot, tmp_path: Path
) -> None:
    dialog = make_dialog(qtbot, tmp_path, Preferences(language="de"))
    dialog.endpoint_combo.setCurrentIndex(list(Endpoint).index(Endpoint.DEEPGRAM))
    assert dialog.model_combo.isEnabled() and dialog.model_edit.text() == "nova-3"
    models = [dialog.model_combo.itemText(i) for i in range(dialog.model_combo.count())]
    assert models[:3] == ["nova-3", "nova-3-medical", "nova-2"]
    assert "most accurate" in dialog.model_note.text()
    nova3 = {choice.code for choice in dialog.language_choices()}
    assert {"multi", "en", "en-GB", "de", "he", "ja", "zh-HK"} <= nova3
    assert "yo" not in nova3  # a Whisper language Deepgram does not list
    assert dialog.language_edit.text() == "German — Deutsch"
    # a model with English only: the list follows the model
    type_into(qtbot, dialog.model_edit, "nova-2-phonecall")
    assert [choice.code for choice in dialog.language_choices()] == ["en"]
    assert "phone" in dialog.model_note.text()
    # a model not listed: its name is sent as typed, and any language may be typed
    type_into(qtbot, dialog.model_edit, "nova-4-preview")
    assert "not listed" in dialog.model_note.text()
    type_into(qtbot, dialog.language_edit, "de-AT")
    assert dialog.language_code() == "de-AT"
    assert "language" not in dialog.errors()  # only the missing key is a problem here


def test_the_call_labels_are_renamed_in_the_dialog(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = make_dialog(qtbot, tmp_path)
    assert (dialog.you_edit.text(), dialog.others_edit.text()) == ("You", "Others")
    type_into(qtbot, dialog.you_edit, "  Ana  ")
    type_into(qtbot, dialog.others_edit, "")
    result = dialog.result_values()
    assert result is not None
    # spaces trimmed; a name left empty falls back to the default
    assert result.preferences.call_names == ("Ana", "Others")
