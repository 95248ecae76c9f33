"""`musicgen gui [FILE...]`: open the main window (plain `musicgen` and `musicgen FILE` land here)."""

from __future__ import annotations

import argparse
import logging
import sys

from musicgen_app.errors import MusicgenError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `musicgen gui`."""
    from musicgen_app.cli import argtypes as at

    parser.add_argument(
        "files", nargs="*", type=at.input_file(), help="MIDI (.mid) or project (.mgproj) files to open"
    )
    parser.add_argument(
        "--device",
        metavar="fluidsynth|none|PORT",
        type=at.non_empty("the output device"),
        help='sound output for this run: "fluidsynth", "none" or a MIDI port (default: the saved choice)',
    )
    at.add_deprecated_aliases(
        parser,
        ("--output",),
        dest="device",
        new="--device",
        type=at.non_empty("the output device"),
        default=argparse.SUPPRESS,
        metavar="DEVICE",
    )


def run(args: argparse.Namespace) -> int:
    """Open the window; returns when it closes."""
    import os

    if args.device:
        os.environ["MUSICGEN_OUTPUT"] = args.device
    if (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        raise MusicgenError(
            "no screen to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set); "
            "run it on a desktop, or use the commands (`musicgen --help`)"
        )
    from musicgen_app.gui.app import run_app

    return run_app([str(f) for f in args.files])
