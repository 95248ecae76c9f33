"""`musicgen render FILE -o OUT.wav [--soundfont F]`: a MIDI file or project to a WAV through FluidSynth.

The WAV is normalised: its loudest sample peaks at -1 dBFS (``--peak-db``), unless ``--no-normalize``.
"""

from __future__ import annotations

import argparse
import logging

from musicgen_app.cli import argtypes as at
from musicgen_app.playback.render import DEFAULT_PEAK_DBFS, DEFAULT_TAIL_S, MAX_TAIL_S, SAMPLE_RATE_RANGE

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen render`."""
    parser.add_argument(
        "file", metavar="FILE", type=at.input_file(), help="a MIDI file (.mid) or a project (.mgproj)"
    )
    at.add_output_argument(parser, "WAV")
    parser.add_argument(
        "--soundfont",
        metavar="FILE",
        type=at.input_file(what="SoundFont"),
        help="a .sf2/.sf3 SoundFont (default: TimGM6mb)",
    )
    parser.add_argument(
        "--sample-rate",
        type=at.int_range(*SAMPLE_RATE_RANGE),
        default=44100,
        metavar="HZ",
        help="{} to {} (default 44100)".format(*SAMPLE_RATE_RANGE),
    )
    parser.add_argument(
        "--tail",
        type=at.finite_float(0.0, MAX_TAIL_S),
        default=DEFAULT_TAIL_S,
        metavar="SEC",
        help=f"seconds kept after the last note for the release and reverb, 0 to {MAX_TAIL_S:g} "
        f"(default {DEFAULT_TAIL_S:g})",
    )
    parser.add_argument(
        "--peak-db",
        type=at.finite_float(-60.0, 0.0),
        default=DEFAULT_PEAK_DBFS,
        metavar="DB",
        help=f"normalise the WAV so that its loudest sample peaks at DB dBFS, -60 to 0 "
        f"(default {DEFAULT_PEAK_DBFS:g} dBFS)",
    )
    parser.add_argument(
        "--no-normalize",
        action="store_true",
        help="keep FluidSynth's own level (quiet: about -20 dBFS peak with the default SoundFont)",
    )


def run(args: argparse.Namespace) -> int:
    """Render and report the length."""
    from musicgen_app.cli.play_cmd import load_song
    from musicgen_app.playback.render import render_wav

    song = load_song(args.file)
    peak = None if args.no_normalize else args.peak_db
    result = render_wav(
        song,
        args.output,
        soundfont=args.soundfont,
        sample_rate=args.sample_rate,
        tail_s=args.tail,
        peak_db=peak,
    )
    print(f"wrote {args.output} ({result:.2f} s, {args.sample_rate} Hz stereo)")
    return 0
