"""`musicgen audio transcribe IN.wav -o OUT.mid [--quantize 1/16] [--bpm N]`: a recording to a MIDI sketch.

The notes are heard by Basic Pitch (:mod:`musicgen_app.ml.audio.transcribe`); the sketch is one
piano track at ``--bpm`` in 4/4, its notes placed where they were heard, or snapped to a grid with
``--quantize``. A file that cannot be read (missing, a device, damaged, not WAV) is one line and
exit 2, and nothing is written; so is a recording in which no note is heard.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from musicgen_app.cli import argtypes as at

logger = logging.getLogger(__name__)

MAX_BPM = 400.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen audio transcribe`."""
    parser.add_argument(
        "file", metavar="IN.wav", type=at.input_file(what="audio file"), help="the recording (a WAV file)"
    )
    at.add_output_argument(parser, "MIDI")
    parser.add_argument(
        "--quantize",
        metavar="GRID",
        type=at.snap_grid,
        default=None,
        help="snap note starts and ends to a grid: 1/4, 1/8, 1/16, 1/32, 1/8T... (default: as played)",
    )
    parser.add_argument(
        "--bpm",
        type=at.finite_float(20.0, MAX_BPM),
        default=120.0,
        metavar="N",
        help=f"the sketch's tempo, 20 to {MAX_BPM:g} quarter notes a minute (default 120)",
    )
    parser.add_argument(
        "--program",
        type=at.int_range(0, 127),
        default=0,
        metavar="N",
        help="the General MIDI instrument of the track, 0 to 127 (default 0, piano)",
    )
    parser.add_argument(
        "--onset-threshold",
        type=at.finite_float(0.0, 1.0, lo_open=True, hi_open=True),
        default=0.5,
        metavar="X",
        help="how sure the model must be that a note starts, above 0 and below 1 (default 0.5)",
    )
    parser.add_argument(
        "--frame-threshold",
        type=at.finite_float(0.0, 1.0, lo_open=True, hi_open=True),
        default=0.3,
        metavar="X",
        help="how sure it must be that a note still sounds, above 0 and below 1 (default 0.3)",
    )
    parser.add_argument(
        "--min-note-ms",
        type=at.finite_float(10.0, 2000.0),
        default=127.7,
        metavar="MS",
        help="drop notes shorter than this, 10 to 2000 ms (default 127.7)",
    )


def run(args: argparse.Namespace) -> int:
    """Transcribe, write the MIDI file and say what it holds."""
    from musicgen_app.core.midi_io import write_midi
    from musicgen_app.core.song import DEFAULT_RESOLUTION
    from musicgen_app.errors import AudioError
    from musicgen_app.gui.piano_roll.geometry import snap_ticks
    from musicgen_app.ml.audio.audio_file import read_audio
    from musicgen_app.ml.audio.transcribe import load_model, sketch_song, transcribe_audio

    audio = read_audio(args.file)
    load_model()
    events = transcribe_audio(
        audio,
        onset_threshold=args.onset_threshold,
        frame_threshold=args.frame_threshold,
        min_note_ms=args.min_note_ms,
    )
    if not events:
        raise AudioError(
            f"no notes were heard in {args.file} (is it silent, or very quiet?); nothing written"
        )
    name = Path(args.file).stem
    grid = snap_ticks(args.quantize, DEFAULT_RESOLUTION) if args.quantize else None
    song = sketch_song(events, bpm=args.bpm, grid_ticks=grid, name=name, program=args.program)
    write_midi(song, args.output)
    how = f", snapped to {args.quantize}" if args.quantize else ""
    print(
        f"wrote {args.output}: {song.note_count} notes from {audio.duration_s:.2f} s of audio "
        f"at {args.bpm:g} BPM{how}"
    )
    return 0
