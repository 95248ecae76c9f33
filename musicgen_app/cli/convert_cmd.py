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


def convert(src: str | Path, dst: str | Path) -> tuple[list[str], list[str]]:
    """Convert ``src`` to ``dst`` by their extensions.

    Returns the repairs made while reading and the notes of the export (what a MIDI file holds
    differently without loss, e.g. a long lyric in pieces). A song whose MIDI file musicgen could
    not read back is refused with MidiExportError before anything is written.
    """
    dst = Path(dst)
    if not (is_midi_path(dst) or is_project_path(dst)):
        raise MusicgenError(f"cannot tell what to write from '{dst.name}': name it .mid or .mgproj")
    loaded = load_any(src)
    notes: list[str] = []
    if is_midi_path(dst):
        notes = write_midi(loaded.song, dst)
    else:
        save_project(Project(loaded.song, loaded.state), dst)
    return loaded.repairs, notes


def run(args: argparse.Namespace) -> int:
    """Convert, then report the repairs and export notes on stderr and a one-line summary on stdout."""
    repairs, notes = convert(args.input, args.output)
    for line in repairs:
        print(f"repair: {line}", file=sys.stderr)
    for line in notes:
        print(f"note: {line}", file=sys.stderr)
    n = len(repairs)
    made = f" ({n} repair{'' if n == 1 else 's'} made while reading)" if n else ""
    print(f"wrote {args.output}{made}")
    return 0
