"""Help > Keyboard shortcuts: every action and its keys, read from the menus themselves.

The table is built from the window's menus when it opens, so it cannot fall out of date:
an action added to a menu appears here with its shortcut (and a test fails if it has none).
"""

from __future__ import annotations

from collections.abc import Iterator

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMenu,
    QMenuBar,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

__all__ = ["ShortcutsDialog", "menu_actions", "shortcut_text"]


def shortcut_text(action: QAction) -> str:
    """The action's keys as the platform writes them, alternatives joined by "or"."""
    return " or ".join(
        s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts() if s
    )


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip(".…")


def menu_actions(bar: QMenuBar) -> Iterator[tuple[str, QAction]]:
    """(menu title, action) for every action in the menus, submenus included, in order."""

    def walk(menu: QMenu, title: str) -> Iterator[tuple[str, QAction]]:
        for action in menu.actions():
            if action.isSeparator():
                continue
            sub = action.menu()
            if isinstance(sub, QMenu):
                yield from walk(sub, title)
            else:
                yield title, action

    for top in bar.actions():
        menu = top.menu()
        if isinstance(menu, QMenu):
            yield from walk(menu, _plain(menu.title()))


class ShortcutsDialog(QDialog):
    """A table of menu, action and keys; non-modal, so it can stay open beside the captions."""

    def __init__(self, bar: QMenuBar, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(560, 560)
        rows = [
            (menu, _plain(action.text()), shortcut_text(action))
            for menu, action in menu_actions(bar)
            if shortcut_text(action)
        ]
        self.table = QTableWidget(len(rows), 3, self)
        self.table.setObjectName("shortcutsTable")
        self.table.setAccessibleName("Keyboard shortcuts")
        self.table.setHorizontalHeaderLabels(["Menu", "Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setTabKeyNavigation(False)
        for number, values in enumerate(rows):
            for column, value in enumerate(values):
                self.table.setItem(number, column, QTableWidgetItem(value))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        note = QLabel(
            "Menus open with Alt and the underlined letter. The overlay's shortcuts work "
            "from any Captioner window."
        )
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def rows(self) -> list[tuple[str, str, str]]:
        """What the table lists: (menu, action, keys)."""

        def cell(number: int, column: int) -> str:
            item = self.table.item(number, column)
            return item.text() if item is not None else ""

        return [(cell(n, 0), cell(n, 1), cell(n, 2)) for n in range(self.table.rowCount())]
