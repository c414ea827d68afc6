"""File > Export: where to write the transcript, and in which format.

The formats are `core.exports`' (the command line's `--export` writes the same files). The
dialog is opened with `open()` and answers through `fileSelected`; the format comes from
the chosen filter, unless the name typed ends in another format's extension.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

__all__ = ["EXPORT_FILTERS", "export_target", "filter_for", "make_export_dialog"]

EXPORT_FILTERS: dict[str, tuple[str, str]] = {
    "txt": ("Plain text (*.txt)", ".txt"),
    "txt-timestamps": ("Plain text with timestamps (*.txt)", ".txt"),
    "srt": ("SubRip subtitles (*.srt)", ".srt"),
    "vtt": ("WebVTT subtitles (*.vtt)", ".vtt"),
    "json": ("JSON with words, times, confidence and speakers (*.json)", ".json"),
}
"""Format -> (name filter, extension), in the order the dialog lists them."""

_BY_EXTENSION = {".srt": "srt", ".vtt": "vtt", ".json": "json"}


def filter_for(fmt: str) -> str:
    return EXPORT_FILTERS.get(fmt, EXPORT_FILTERS["txt"])[0]


def export_target(path: str, name_filter: str) -> tuple[str, Path]:
    """(format, path) for what the person chose: an extension they typed wins over the
    filter (notes.srt is SubRip whatever the filter), and a name without one gets the
    filter's."""
    chosen = next((f for f, (flt, _e) in EXPORT_FILTERS.items() if flt == name_filter), "txt")
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in _BY_EXTENSION:
        return _BY_EXTENSION[suffix], target
    if suffix == ".txt":
        return (chosen if chosen.startswith("txt") else "txt"), target
    return chosen, target.with_name(target.name + EXPORT_FILTERS[chosen][1])


def make_export_dialog(parent: QWidget | None, folder: Path, fmt: str, stem: str) -> QFileDialog:
    """A save dialog in `folder`, the `fmt` filter chosen, named `stem` plus its extension."""
    dialog = QFileDialog(parent, "Export the transcript", str(folder))
    dialog.setObjectName("exportDialog")
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)
    dialog.setNameFilters([flt for flt, _e in EXPORT_FILTERS.values()])
    dialog.selectNameFilter(filter_for(fmt))
    extension = EXPORT_FILTERS.get(fmt, EXPORT_FILTERS["txt"])[1]
    dialog.selectFile(stem + extension)

    def on_filter_selected(name_filter: str) -> None:
        chosen = next((e for flt, e in EXPORT_FILTERS.values() if flt == name_filter), ".txt")
        dialog.setDefaultSuffix(chosen.lstrip("."))

    dialog.filterSelected.connect(on_filter_selected)
    dialog.setDefaultSuffix(extension.lstrip("."))
    return dialog
