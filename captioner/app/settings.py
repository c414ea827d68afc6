"""The settings dialog and the view's own choices (theme, timestamps, text size)."""

from __future__ import annotations

from collections.abc import Callable

from captioner.app.notify import Notifier
from captioner.core import untrusted
from captioner.ui.keystore import KeySource, KeyStore
from captioner.ui.preferences import PreferencesStore, Theme
from captioner.ui.settings_dialog import KeyInfo, SettingsDialog, SettingsResult
from captioner.ui.theme import ThemeManager
from captioner.ui.window import MainWindow

__all__ = ["SettingsController"]


class SettingsController:
    def __init__(
        self,
        window: MainWindow,
        *,
        store: PreferencesStore,
        keys: KeyStore,
        themes: ThemeManager,
        notifier: Notifier,
    ) -> None:
        self.window = window
        self.store = store
        self.keys = keys
        self.themes = themes
        self.notifier = notifier
        self.dialog: SettingsDialog | None = None
        self.saved: Callable[[], None] = lambda: None
        """Called after new settings are in force (the captioning controller offers a restart)."""
        window.settings_requested.connect(self.open)
        window.theme_chosen.connect(self.set_theme)
        window.timestamps_toggled.connect(self._on_timestamps_toggled)
        window.pane.font_size_changed.connect(self._on_font_size_changed)
        # the look chosen last time, before anything is shown
        prefs = store.current
        themes.apply(prefs.theme)
        window.set_theme_choice(prefs.theme)
        window.set_checked_quietly(window.timestamps_action, prefs.timestamps)
        window.pane.set_timestamps(prefs.timestamps)

    def open(self) -> SettingsDialog:
        """Opened with `open()` (no nested event loop); a second request raises the first."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            self.dialog.activateWindow()
            return self.dialog
        keys = self.keys
        info = KeyInfo(
            keychain_available=keys.keychain_available,
            keychain_name=keys.keychain_name,
            source=keys.source,
            file_path=keys.file_path,
            problem=keys.problem,
        )
        dialog = SettingsDialog(self.store.current, keys.load(), info, self.window)
        dialog.saved.connect(self._on_saved)
        dialog.finished.connect(self._on_finished)
        self.dialog = dialog
        dialog.open()
        return dialog

    def set_theme(self, theme: Theme) -> None:
        self.themes.apply(theme)
        self.window.set_theme_choice(theme)
        self.store.update(theme=theme)

    def close(self) -> None:
        if self.dialog is not None:
            self.dialog.reject()
        self.themes.detach()

    def _on_saved(self, result: SettingsResult) -> None:
        self.store.replace(result.preferences)
        given_for_this_run = self.keys.source in (KeySource.ARGUMENT, KeySource.ENVIRONMENT)
        if result.api_key != self.keys.load() or not given_for_this_run:
            self.keys.save(result.api_key, remember_in_file=result.remember_in_file)
        untrusted.remember_secret(result.api_key)
        self.saved()

    def _on_finished(self, _result: int) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is not None:
            dialog.deleteLater()

    def _on_timestamps_toggled(self, on: bool) -> None:
        self.store.update(timestamps=on)

    def _on_font_size_changed(self, points: int) -> None:
        self.store.update(font_size=points)
