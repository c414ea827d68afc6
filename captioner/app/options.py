"""What the window was asked to do from the command line, frozen once parsed."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

__all__ = ["AppOptions", "add_app_arguments"]


@dataclass(frozen=True)
class AppOptions:
    device: str | None = None
    """A device to preselect, by name or index."""
    start: bool = False
    url: str | None = None
    """An endpoint for this run only; it wins over the settings."""
    file: str | None = None
    """A WAV file captioned as if it were the microphone."""
    api_key: str | None = None
    model_dir: str | None = None
    journal: bool = True
    verbose: int = 0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AppOptions:
        """From the top-level `captioner` parser (see `add_app_arguments`)."""
        return cls(
            device=args.device,
            start=bool(args.start),
            url=args.url or None,
            file=args.file or None,
            api_key=args.api_key or None,
            model_dir=args.model_dir,
            journal=not args.no_journal,
            verbose=int(getattr(args, "verbose", 0) or 0),
        )


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """The window's options, on the top-level `captioner` parser."""
    group = parser.add_argument_group("window (when no command is given)")
    group.add_argument(
        "--device", metavar="NAME|INDEX", help="preselect an input device by name or index"
    )
    group.add_argument("--start", action="store_true", help="start captioning at launch")
    group.add_argument(
        "--url", metavar="URL", help="a Deepgram-compatible endpoint for this run (ws:// or wss://)"
    )
    group.add_argument(
        "--file", metavar="WAV", help="caption a WAV file as if it were the microphone"
    )
    group.add_argument(
        "--api-key", metavar="KEY", help="Deepgram API key for this run (not stored)"
    )
    group.add_argument("--model-dir", metavar="DIR", help="the offline engine's model folder")
    group.add_argument(
        "--no-journal",
        action="store_true",
        help="keep no crash-safe journal of the captions (by default every finished line is "
        "written to one before it is shown)",
    )
