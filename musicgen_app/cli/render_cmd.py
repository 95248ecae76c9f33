"""`musicgen render FILE -o OUT.wav [--soundfont F]`: a MIDI file or project to a WAV through FluidSynth."""

from __future__ import annotations

import argparse
import logging

from musicgen_app.playback.render import DEFAULT_TAIL_S

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen render`."""
    parser.add_argument("file", metavar="FILE", help="a MIDI file (.mid) or a project (.mgproj)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.wav", help="the WAV file to write")
    parser.add_argument("--soundfont", metavar="FILE", help="a .sf2/.sf3 SoundFont (default: TimGM6mb)")
    parser.add_argument("--sample-rate", type=int, default=44100, metavar="HZ", help="default 44100")
    parser.add_argument(
        "--tail", type=float, default=DEFAULT_TAIL_S, metavar="SEC", help="silence kept after the last note"
    )


def run(args: argparse.Namespace) -> int:
    """Render and report the length."""
    from musicgen_app.cli.play_cmd import load_song
    from musicgen_app.playback.render import render_wav

    song = load_song(args.file)
    seconds = render_wav(
        song, args.output, soundfont=args.soundfont, sample_rate=args.sample_rate, tail_s=args.tail
    )
    print(f"wrote {args.output} ({seconds:.2f} s, {args.sample_rate} Hz stereo)")
    return 0
