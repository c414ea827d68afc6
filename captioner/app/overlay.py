"""The subtitle overlay: shown or hidden, click-through, its look (previewed live), its place."""

from __future__ import annotations

import dataclasses

from PySide6.QtGui import QGuiApplication

from captioner.app.notify import Notifier
from captioner.ui.overlay import CaptionOverlay, always_on_top_problem
from captioner.ui.overlay_dialog import OverlayDialog
from captioner.ui.preferences import OverlayLook, PreferencesStore
from captioner.ui.window import MainWindow

__all__ = ["OverlayController"]


class OverlayController:
    def __init__(
        self,
        window: MainWindow,
        overlay: CaptionOverlay,
        *,
        store: PreferencesStore,
        notifier: Notifier,
    ) -> None:
        self.window = window
        self.overlay = overlay
        self.store = store
        self.notifier = notifier
        self.dialog: OverlayDialog | None = None
        self.closing = False
        self._shown_before_dialog = False
        self._platform_said = False
        window.overlay_toggled.connect(self.show)
        window.click_through_toggled.connect(self.set_click_through)
        window.overlay_settings_requested.connect(self.open_settings)
        overlay.placed.connect(self._on_overlay_placed)
        for action in (window.overlay_settings_action, window.click_through_action):
            overlay.addAction(action)  # its right-click menu
        overlay.addAction(window.overlay_action)
        window.set_checked_quietly(window.click_through_action, store.current.overlay.click_through)

    def launch(self) -> None:
        """Where it was last placed; shown if it was shown when the app last quit."""
        self.overlay.place(self.store.overlay_geometry())
        if self.store.current.overlay_visible:
            self.window.overlay_action.setChecked(True)  # shows the overlay

    def show(self, on: bool) -> None:
        """Show or hide the overlay (the window's checkable action calls this)."""
        self.window.set_checked_quietly(self.window.overlay_action, on)
        if on:
            self.overlay.show()
            self.overlay.show_where()
            problem = always_on_top_problem(QGuiApplication.platformName())
            if problem and not self._platform_said:
                self._platform_said = True
                self.notifier.info(problem)
        else:
            self.overlay.hide()
        if self.store.current.overlay_visible != on and not self.closing:
            self.store.update(overlay_visible=on)

    def set_click_through(self, on: bool) -> None:
        self.window.set_checked_quietly(self.window.click_through_action, on)
        self._keep_look(dataclasses.replace(self.store.current.overlay, click_through=on))
        self.notifier.note(
            "Overlay click-through on: the mouse reaches the windows below "
            "(Ctrl+Shift+K turns it off)."
            if on
            else "Overlay click-through off: drag the overlay to move it, its edges to resize."
        )

    def open_settings(self) -> OverlayDialog:
        """The overlay's look, previewed live on the overlay; opened with `open()`."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            self.dialog.activateWindow()
            return self.dialog
        note = always_on_top_problem(QGuiApplication.platformName())
        dialog = OverlayDialog(self.store.current.overlay, note, self.window)
        dialog.look_changed.connect(self.overlay.set_look)
        dialog.saved.connect(self._on_dialog_saved)
        dialog.finished.connect(self._on_dialog_finished)
        self.dialog = dialog
        self._shown_before_dialog = self.overlay.isVisible()
        self.overlay.set_preview(True)
        self.overlay.show()
        dialog.open()
        return dialog

    def save_place(self) -> None:
        self.store.save_overlay_geometry(self.overlay.placement())

    def close(self) -> None:
        self.closing = True
        if self.dialog is not None:
            self.dialog.reject()
        self.overlay.close()
        self.overlay.deleteLater()

    def _keep_look(self, look: OverlayLook) -> None:
        self.overlay.set_look(look)
        self.store.update(overlay=self.overlay.look)

    def _on_overlay_placed(self) -> None:
        self.save_place()

    def _on_dialog_saved(self, look: OverlayLook) -> None:
        self._keep_look(look)
        self.window.set_checked_quietly(self.window.click_through_action, look.click_through)

    def _on_dialog_finished(self, _result: int) -> None:
        dialog, self.dialog = self.dialog, None
        self.overlay.set_preview(False)
        if not self._shown_before_dialog and not self.window.overlay_action.isChecked():
            self.overlay.hide()
        if dialog is not None:
            dialog.deleteLater()
