"""MIDI I/O speed: import and export of a 100,000-note file against pretty_midi's own load of the
same file, measured in the same run; then the 1,000,000-note file and the malformed cases.

    .venv/bin/python benchmarks/bench_midi_io.py [--repeat 3] [--no-million]

Prints each time (best of ``--repeat``), the ratios, and the machine it ran on.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mido
import pretty_midi

from musicgen_app.core.midi_io import MAX_EVENTS, read_midi, write_midi
from musicgen_app.core.song import Note, Song, TempoChange, TimeSignature, Track
from musicgen_app.errors import MidiImportError


def hundred_thousand_note_song() -> Song:
    """4 tracks x 25,000 notes (chords and lines, all velocities), tempo and meter changes."""
    song = Song(
        resolution=480,
        tempos=[TempoChange(0, 500_000), TempoChange(480 * 4 * 100, 400_000)],
        time_signatures=[TimeSignature(0, 4, 4), TimeSignature(480 * 4 * 50, 3, 4)],
    )
    for t in range(4):
        channel = 9 if t == 3 else t
        notes = []
        for i in range(25_000):
            start = i * 120 + (t * 7) % 120
            notes.append(
                Note(start, 24 + (i * 5 + t * 11) % 80, start + 60 + (i % 4) * 90, 1 + (i + t) % 127, channel)
            )
        song.tracks.append(
            Track(f"track {t + 1}", program=t * 8, channel=channel, is_drum=channel == 9, notes=sorted(notes))
        )
    return song  # fmt: skip


def million_note_bytes() -> bytes:
    """1,000,000 notes in 8-note chords (the same file the tests read)."""
    chord = b"".join(bytes([0x00, 0x90, 48 + i, 100]) for i in range(8))
    chord += bytes([0x60, 0x80, 48, 0]) + b"".join(bytes([0x00, 0x80, 49 + i, 0]) for i in range(7))
    body = b"\x00\xff\x51\x03\x07\xa1\x20" + chord * 125_000 + b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(body)) + body


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """The fastest of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def machine() -> str:
    """CPU model, cores this process may use, Python, library versions, load."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    from importlib.metadata import version

    return (
        f"{model}; {cores} cores usable (of {os.cpu_count()}); load average {load:.2f}; "
        f"Python {platform.python_version()} on {platform.system()}; mido {version('mido')}, "
        f"pretty_midi {version('pretty_midi')}; single-threaded code"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-million", action="store_true", help="skip the 1,000,000-note file")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    song = hundred_thousand_note_song()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "100k.mid"
        write_midi(song, path)
        size = path.stat().st_size
        assert read_midi(path).song == song
        t_import = best_of(args.repeat, lambda: read_midi(path))
        t_export = best_of(args.repeat, lambda: write_midi(song, Path(tmp) / "out.mid"))
        t_pm = best_of(args.repeat, lambda: pretty_midi.PrettyMIDI(str(path)))
        t_mido = best_of(args.repeat, lambda: mido.MidiFile(path))
    notes = song.note_count
    print(f"file: {notes:,} notes, {size / 1e6:.2f} MB, 4 tracks, best of {args.repeat}")
    print(f"  musicgen read_midi:        {t_import:7.3f} s  ({notes / t_import / 1e3:,.0f}k notes/s)")
    print(f"  musicgen write_midi:       {t_export:7.3f} s  ({notes / t_export / 1e3:,.0f}k notes/s)")
    print(f"  pretty_midi.PrettyMIDI:    {t_pm:7.3f} s  (baseline: its own load of the same file)")
    print(f"  mido.MidiFile (parse only):{t_mido:7.3f} s")
    print(f"  ratio pretty_midi load / our import: {t_pm / t_import:5.2f}x")
    print(f"  ratio pretty_midi load / our export: {t_pm / t_export:5.2f}x")
    if not args.no_million:
        data = million_note_bytes()
        start = time.perf_counter()
        result = read_midi(data)
        t_million = time.perf_counter() - start
        print(f"1,000,000-note file ({len(data) / 1e6:.1f} MB): read in {t_million:.2f} s, "
              f"{result.song.note_count:,} notes, {len(result.repairs)} repairs")  # fmt: skip
        over = b"\x00\xc0\x05" + b"\x00\x05" * (MAX_EVENTS + 200_000) + b"\x00\xff\x2f\x00"
        over = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(over)) + over
        start = time.perf_counter()
        try:
            read_midi(over)
            outcome = "read (unexpected)"
        except MidiImportError as exc:
            outcome = f"refused: {exc}"
        print(
            f"event-cap file ({len(over) / 1e6:.1f} MB): {outcome} after {time.perf_counter() - start:.2f} s"
        )
    tests = Path(__file__).resolve().parents[1] / "tests"
    sys.path.insert(0, str(tests))
    from core.malformed import CASES  # the malformed cases of the test suite

    worst = (0.0, "")
    for name, data, _, _ in CASES:
        start = time.perf_counter()
        with contextlib.suppress(MidiImportError):
            read_midi(data)
        worst = max(worst, (time.perf_counter() - start, name))
    print(f"malformed cases: {len(CASES)}, slowest {worst[0] * 1e3:.1f} ms ({worst[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
