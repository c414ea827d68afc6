"""File > History in the real window: list, search, open, export, delete and restore, on
journals written by JournalWriter."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtWidgets import QApplication, QMessageBox

from captioner import journal
from captioner.app.root import CaptionerApp
from tests.test_app import run_window
from tests.test_history import write
from tests.ui_support import QT_MARKS, app_args, wait_until

pytestmark = QT_MARKS


def test_history_lists_searches_opens_exports_deletes_and_restores(
    qapp: QApplication, tmp_path: Path, config_dir: Path
) -> None:
    folder = tmp_path / "journal"
    write(folder, ["Good morning.", "The budget for the third quarter is ready."], day=0)
    # what a server sent is hostile: markup in a line must show as text, never as markup
    marked = "<b>Questions</b> & <i>the floor</i>."
    write(folder, ["Welcome back.", marked], day=1, source="Headset")
    write(folder, ["This one crashed.", "It never finished."], day=2, finish=False).close()

    async def body(app: CaptionerApp) -> None:
        app.window.history_action.trigger()
        dialog = app.history.dialog
        assert dialog is not None and dialog.isVisible()
        table = dialog.table
        await wait_until(lambda: table.topLevelItemCount() == 3, 5, "three sessions")
        assert dialog.status.text().startswith("3 sessions")
        newest = table.topLevelItem(0)
        assert newest is not None and newest.text(5).startswith("[Ended without finishing]")
        assert dialog.restore_button.isEnabled()  # the newest, selected, crashed
        oldest = table.topLevelItem(2)
        assert oldest is not None and oldest.text(2) == "USB Mic"
        assert oldest.text(5) == "Good morning. The budget for the third quarter is ready."

        # search across every session
        dialog.search.setText("quarter")
        await wait_until(lambda: "“quarter”" in dialog.status.text(), 5, "the search")
        assert dialog.status.text() == "“quarter”: 1 line in 1 session"
        assert table.headerItem().text(5) == "Matching line"
        label = table.itemWidget(table.topLevelItem(0), 5)
        assert "<b>quarter</b>" in label.text()  # type: ignore[union-attr]

        # markup in a matching line is shown as the characters it is
        dialog.search.setText("floor")
        await wait_until(lambda: "“floor”" in dialog.status.text(), 5, "the second search")
        label = table.itemWidget(table.topLevelItem(0), 5)
        shown = label.text()  # type: ignore[union-attr]
        assert "&lt;b&gt;Questions&lt;/b&gt; &amp; &lt;i&gt;the <b>floor</b>" in shown, shown
        dialog.search.setText("quarter")
        await wait_until(lambda: "“quarter”" in dialog.status.text(), 5, "the search again")

        # open it: read-only, with the word found highlighted
        dialog.open_button.click()
        await wait_until(lambda: bool(app.history.viewers), 5, "the viewer")
        viewer = app.history.viewers[0]
        assert "The budget for the third quarter is ready." in viewer.pane.transcript()
        assert viewer.pane.match_count() == 1 and viewer.pane.view.isReadOnly()
        viewer.close()

        # export it as subtitles
        session = dialog.selected()
        assert session is not None
        target = tmp_path / "old.srt"
        assert await app.history.export_to(session, target, "srt")
        assert "The budget for the third quarter is ready." in target.read_text()

        # delete it, after saying yes
        box = app.history.ask_delete(session)
        delete = next(b for b in box.buttons() if b.text() == "Delete")
        delete.click()
        await wait_until(lambda: not session.path.exists(), 5, "the journal deleted")
        await wait_until(lambda: "nothing found" in dialog.status.text(), 5, "no more hits")

        # the crashed one comes back into the window
        dialog.search.setText("")
        await wait_until(lambda: table.topLevelItemCount() == 2, 5, "two sessions")
        dialog.restore_button.click()
        await wait_until(lambda: "This one crashed." in app.window.pane.transcript(), 5, "restored")
        await wait_until(
            lambda: any(p.name.endswith(journal.RESTORED_SUFFIX) for p in folder.iterdir()),
            5,
            "marked restored",
        )
        await asyncio.sleep(0.3)
        assert app.errors == []
        assert not any(isinstance(w, QMessageBox) and w.isVisible() for w in qapp.topLevelWidgets())

    run_window(qapp, app_args(), body, device_lister=list, journal_folder=folder, timeout=60)
