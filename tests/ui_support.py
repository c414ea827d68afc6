"""Helpers for the window's tests: the offscreen platform, Qt log checks, options, devices.

The loop and the caption data they share with the benchmarks are `testkit.window`'s, and
are re-exported here.

Importing this module selects Qt's offscreen platform (unless a platform is already
chosen) before pytest-qt creates the QApplication, so widget tests run without a display.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import pytest

from captioner.app import AppOptions, add_app_arguments
from captioner.audio.devices import InputDevice
from testkit.window import (
    committed,
    live,
    run_qasync,
    transcript_events,
    utterance,
    wait_until,
)

__all__ = [
    "OFFSCREEN_NOISE",
    "QT_MARKS",
    "app_args",
    "committed",
    "device",
    "live",
    "run_qasync",
    "transcript_events",
    "utterance",
    "wait_until",
]

# Qt's offscreen platform says this about window-manager requests it cannot honour; it is
# not a problem of ours, and every other Qt warning fails the test (see QT_MARKS).
OFFSCREEN_NOISE = (
    r"This plugin does not support "
    r"((propagateSizeHints|raise|requestActivate)\(\)|grabbing the keyboard)"
)

QT_MARKS = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore(OFFSCREEN_NOISE),
]


def app_args(*argv: str) -> AppOptions:
    """The window's options as the command line would make them from `argv`."""
    parser = argparse.ArgumentParser(prog="captioner")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    add_app_arguments(parser)
    return AppOptions.from_args(parser.parse_args(list(argv)))


def device(
    index: int, name: str, *, hostapi: str = "ALSA", default: bool = False, channels: int = 2
) -> InputDevice:
    return InputDevice(
        index=index,
        name=name,
        hostapi=hostapi,
        max_input_channels=channels,
        default_samplerate=48000.0,
        is_default=default,
    )
