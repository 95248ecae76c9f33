"""MIDI files keep their shape: over a folder of real files (default: POP909 in ../shared), how
many keep their length (mido's seconds, end-of-track included) and every track's end tick through
import -> export, and how many meter/key merges import reports.

Run: ``.venv/bin/python benchmarks/bench_midi_shape.py [FOLDER] [--limit N]``. Prints counts.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mido

from musicgen_app.core.midi_io import MIDI_EXTENSIONS, midi_bytes, read_midi
from musicgen_app.errors import MusicgenError


def main() -> None:
    """Print the counts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", nargs="?", default="/work/shared/data/pop909")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    files = sorted(p for p in Path(args.folder).rglob("*") if p.suffix.lower() in MIDI_EXTENSIONS)
    if args.limit:
        files = files[: args.limit]
    same_length = same_last_end = refused = merged = 0
    start = time.perf_counter()
    for path in files:
        try:
            original = mido.MidiFile(path)
            result = read_midi(path)
            written = mido.MidiFile(file=io.BytesIO(midi_bytes(result.song)))
        except (MusicgenError, OSError, ValueError, EOFError) as exc:
            refused += 1
            print(f"{path.name}: {exc}", file=sys.stderr)
            continue
        same_length += abs(original.length - written.length) < 1e-6
        same_last_end += max(sum(m.time for m in t) for t in original.tracks) == max(
            sum(m.time for m in t) for t in written.tracks
        )
        merged += any("disagree" in line for line in result.repairs)
    n = len(files)
    print(f"files: {n} ({time.perf_counter() - start:.1f} s)")
    print(f"same length in seconds after import -> export: {same_length} of {n - refused}")
    print(f"same last end-of-track tick after import -> export: {same_last_end} of {n - refused}")
    print(f"meter/key maps merged with a repair: {merged}; refused or unreadable: {refused}")


if __name__ == "__main__":
    main()
