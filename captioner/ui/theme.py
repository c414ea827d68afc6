"""Light, dark and high-contrast themes, following the desktop unless a person picks one.

Every theme is one of our own palettes on Qt's Fusion style, on every platform: the caption
colours (speakers, gap markers, interims) are chosen against known backgrounds, and a theme
looks the same wherever it runs. "Follow the system" reads the desktop's colour scheme and
contrast preference (Qt's style hints) and switches when they change.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from captioner.ui.preferences import Theme

__all__ = ["ThemeManager", "contrast_ratio", "palette_for", "resolve_theme"]

_ROLE = QPalette.ColorRole
_GROUP = QPalette.ColorGroup

# role -> (light, dark, high contrast)
_COLOURS: dict[QPalette.ColorRole, tuple[str, str, str]] = {
    _ROLE.Window: ("#f3f3f3", "#202124", "#000000"),
    _ROLE.WindowText: ("#1b1b1b", "#e8eaed", "#ffffff"),
    _ROLE.Base: ("#ffffff", "#16171a", "#000000"),
    _ROLE.AlternateBase: ("#eef0f2", "#26272b", "#101010"),
    _ROLE.Text: ("#1b1b1b", "#e8eaed", "#ffffff"),
    _ROLE.PlaceholderText: ("#5f6368", "#a0a4aa", "#e0e0e0"),
    _ROLE.Button: ("#e8e9eb", "#2d2e32", "#000000"),
    _ROLE.ButtonText: ("#1b1b1b", "#e8eaed", "#ffffff"),
    _ROLE.BrightText: ("#ffffff", "#ffffff", "#ffff00"),
    _ROLE.Highlight: ("#2a62d3", "#2f63d6", "#ffff00"),
    _ROLE.HighlightedText: ("#ffffff", "#ffffff", "#000000"),
    _ROLE.Link: ("#0b57d0", "#8ab4f8", "#00ffff"),
    _ROLE.LinkVisited: ("#6a3ab2", "#c58af9", "#ff80ff"),
    _ROLE.ToolTipBase: ("#ffffe1", "#2d2e32", "#000000"),
    _ROLE.ToolTipText: ("#1b1b1b", "#e8eaed", "#ffffff"),
    _ROLE.Light: ("#ffffff", "#3c3d42", "#ffffff"),
    _ROLE.Midlight: ("#f5f5f5", "#34353a", "#ffffff"),
    _ROLE.Mid: ("#b8bbc0", "#55575d", "#ffffff"),
    _ROLE.Dark: ("#8e9297", "#121315", "#ffffff"),
    _ROLE.Shadow: ("#5f6368", "#000000", "#ffffff"),
}
_DISABLED_TEXT = ("#8a8d91", "#777a80", "#b0b0b0")

# High contrast needs borders and a focus ring that Fusion draws too faintly on black.
_HIGH_CONTRAST_STYLE = """
QLineEdit, QComboBox, QSpinBox, QPushButton, QToolButton, QPlainTextEdit, QTextEdit,
QTableWidget, QCheckBox::indicator, QSlider::groove {
    border: 1px solid #ffffff;
}
QLineEdit:focus, QComboBox:focus, QSpinBox:focus, QPushButton:focus, QToolButton:focus,
QPlainTextEdit:focus, QTableWidget:focus, QCheckBox:focus, QSlider:focus {
    border: 2px solid #ffff00;
}
"""


def resolve_theme(
    theme: Theme,
    scheme: Qt.ColorScheme = Qt.ColorScheme.Unknown,
    contrast: Qt.ContrastPreference = Qt.ContrastPreference.NoPreference,
) -> Theme:
    """The theme to paint: a person's choice, or what the desktop asks for."""
    if theme is not Theme.SYSTEM:
        return theme
    if contrast == Qt.ContrastPreference.HighContrast:
        return Theme.HIGH_CONTRAST
    if scheme == Qt.ColorScheme.Dark:
        return Theme.DARK
    return Theme.LIGHT


def palette_for(theme: Theme) -> QPalette:
    """The palette of a resolved theme (SYSTEM counts as light)."""
    column = {Theme.DARK: 1, Theme.HIGH_CONTRAST: 2}.get(theme, 0)
    palette = QPalette()
    for role, colours in _COLOURS.items():
        palette.setColor(role, QColor(colours[column]))
    disabled = QColor(_DISABLED_TEXT[column])
    for role in (_ROLE.WindowText, _ROLE.Text, _ROLE.ButtonText, _ROLE.PlaceholderText):
        palette.setColor(_GROUP.Disabled, role, disabled)
    return palette


def _luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * channel(colour.redF())
        + 0.7152 * channel(colour.greenF())
        + 0.0722 * channel(colour.blueF())
    )


def contrast_ratio(first: QColor, second: QColor) -> float:
    """WCAG contrast ratio of two colours, 1 to 21 (7 is the AAA level for text)."""
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


class ThemeManager(QObject):
    """Applies a theme to the whole application and follows the desktop while on SYSTEM."""

    theme_applied = Signal(object)
    """The resolved `Theme` now shown (never SYSTEM)."""

    def __init__(self, app: QApplication, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._app = app
        self._choice = Theme.SYSTEM
        self._applied: Theme | None = None
        hints = QGuiApplication.styleHints()
        self._scheme = hints.colorScheme()
        self._contrast = hints.accessibility().contrastPreference()
        hints.colorSchemeChanged.connect(self._on_hints_color_scheme_changed)
        hints.accessibility().contrastPreferenceChanged.connect(
            self._on_hints_contrast_preference_changed
        )

    @property
    def choice(self) -> Theme:
        return self._choice

    @property
    def applied(self) -> Theme | None:
        return self._applied

    def apply(self, theme: Theme) -> Theme:
        """Show `theme` (SYSTEM: what the desktop asks for); returns the resolved theme."""
        self._choice = theme
        resolved = resolve_theme(theme, self._scheme, self._contrast)
        if resolved is not self._applied:
            if self._app.style().name().lower() != "fusion":
                self._app.setStyle("Fusion")
            self._app.setPalette(palette_for(resolved))
            self._app.setStyleSheet(_HIGH_CONTRAST_STYLE if resolved is Theme.HIGH_CONTRAST else "")
            self._applied = resolved
            self.theme_applied.emit(resolved)
        return resolved

    def detach(self) -> None:
        """Stop following the desktop (the app is closing)."""
        hints = QGuiApplication.styleHints()
        hints.colorSchemeChanged.disconnect(self._on_hints_color_scheme_changed)
        hints.accessibility().contrastPreferenceChanged.disconnect(
            self._on_hints_contrast_preference_changed
        )

    def _on_hints_color_scheme_changed(self, scheme: Qt.ColorScheme) -> None:
        self._scheme = scheme
        if self._choice is Theme.SYSTEM:
            self.apply(Theme.SYSTEM)

    def _on_hints_contrast_preference_changed(self, contrast: Qt.ContrastPreference) -> None:
        self._contrast = contrast
        if self._choice is Theme.SYSTEM:
            self.apply(Theme.SYSTEM)
