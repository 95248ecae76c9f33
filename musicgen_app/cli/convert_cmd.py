"""`musicgen convert IN OUT`: MIDI <-> .mgproj (and MIDI -> MIDI, project -> project), by extension."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from musicgen_app.cli import argtypes as at
from musicgen_app.core.midi_io import MIDI_EXTENSIONS, is_midi_path, write_midi
from musicgen_app.core.project import PROJECT_EXTENSION, Project, is_project_path, load_any, save_project
from musicgen_app.errors import MusicgenError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen convert`."""
    parser.add_argument(
        "input", metavar="IN", type=at.input_file(), help="a MIDI file (.mid) or a project (.mgproj)"
    )
    parser.add_argument(
        "output",
        metavar="OUT",
        type=at.output_file((*MIDI_EXTENSIONS, PROJECT_EXTENSION), "output file"),
        help="where to write: .mid/.midi for MIDI, .mgproj for a project",
    )


def convert(src: str | Path, dst: str | Path) -> list[str]:
    """Convert ``src`` to ``dst`` by their extensions; returns the repairs made while reading."""
    dst = Path(dst)
    if not (is_midi_path(dst) or is_project_path(dst)):
        raise MusicgenError(f"cannot tell what to write from '{dst.name}': name it .mid or .mgproj")
    loaded = load_any(src)
    if is_midi_path(dst):
        write_midi(loaded.song, dst)
    else:
        save_project(Project(loaded.song, loaded.state), dst)
    return loaded.repairs


def run(args: argparse.Namespace) -> int:
    """Convert, then report the repairs on stderr and a one-line summary on stdout."""
    repairs = convert(args.input, args.output)
    for line in repairs:
        print(f"repair: {line}", file=sys.stderr)
    n = len(repairs)
    made = f" ({n} repair{'' if n == 1 else 's'} made while reading)" if n else ""
    print(f"wrote {args.output}{made}")
    return 0
