"""`musicgen play FILE [--output fluidsynth|PORT] [--soundfont F] [--midi-api alsa|jack]`.

Plays a MIDI file or a project through FluidSynth (the default) or a MIDI output port, printing
the position; Ctrl-C stops with a panic (nothing left sounding).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from musicgen_app.core.song import Song
from musicgen_app.playback.midi_ports import API_NAMES
from musicgen_app.playback.outputs import Output

logger = logging.getLogger(__name__)


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """--output, --soundfont, --midi-api, --audio-driver, --buffer-size/-count (output options)."""
    parser.add_argument(
        "--output",
        default="fluidsynth",
        metavar="fluidsynth|PORT",
        help="'fluidsynth' (the built-in synth, default), a MIDI output port name (see `musicgen devices`), "
        "or 'virtual' for a port named after the app that a DAW can record",
    )
    parser.add_argument("--soundfont", metavar="FILE", help="a .sf2/.sf3 SoundFont (default: TimGM6mb)")
    parser.add_argument(
        "--midi-api",
        choices=API_NAMES,
        help="force the MIDI system (default: $MUSICGEN_MIDI_API, else automatic)",
    )
    parser.add_argument(
        "--audio-driver", metavar="NAME", help="FluidSynth audio driver (default: first that works)"
    )
    parser.add_argument(
        "--buffer-size",
        type=int,
        default=256,
        metavar="FRAMES",
        help="FluidSynth audio period size (default 256)",
    )
    parser.add_argument(
        "--buffer-count", type=int, default=2, metavar="N", help="FluidSynth audio periods (default 2)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen play`."""
    parser.add_argument("file", metavar="FILE", help="a MIDI file (.mid) or a project (.mgproj)")
    add_output_arguments(parser)
    parser.add_argument("--start", type=float, default=0.0, metavar="SEC", help="start this many seconds in")
    parser.add_argument("--loop", action="store_true", help="loop the song's loop region (or the whole song)")


def load_song(path: str) -> Song:
    """The song in a MIDI file or a project; repairs are logged (see `musicgen inspect`)."""
    from musicgen_app.core.project import load_any

    result = load_any(path)
    for line in result.repairs:
        logger.info("repair: %s", line)
    return result.song


def open_output_from_args(args: argparse.Namespace) -> Output:
    """Open the output the arguments name (DeviceError with what is missing when it cannot)."""
    from musicgen_app.playback.outputs import open_output

    return open_output(
        args.output,
        soundfont=args.soundfont,
        midi_api=args.midi_api,
        driver=args.audio_driver,
        buffer_size=args.buffer_size,
        buffer_count=args.buffer_count,
    )


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def run(args: argparse.Namespace) -> int:
    """Play the file to the end (or until Ctrl-C)."""
    from musicgen_app.playback.scheduler import PlaybackError, Scheduler

    song = load_song(args.file)
    if song.note_count == 0:
        print(f"{args.file}: no notes to play")
        return 0
    output = open_output_from_args(args)
    total = song.duration_seconds
    tty = sys.stdout.isatty()
    print(f"playing {args.file} ({_clock(total)}, {song.note_count} notes) on {output.name}; Ctrl-C stops")
    try:
        with Scheduler(output) as sched:
            if args.loop:
                a, b = song.loop if song.loop else (0, song.end_tick)
                sched.set_loop(a, b)
            sched.play(song, start_tick=round(song.seconds_to_tick(max(0.0, args.start))))
            try:
                while not sched.wait(0.1 if tty else 0.5):
                    if tty:
                        pos = song.tick_to_seconds(sched.position_tick)
                        print(f"\r{_clock(pos)} / {_clock(total)}", end="", flush=True)
            except KeyboardInterrupt:
                sched.stop()
                print("\nstopped")
            errors = []
            while not sched.status.empty():
                item = sched.status.get_nowait()
                if isinstance(item, PlaybackError):
                    errors.append(item.message)
        if tty:
            print()
        for e in errors:
            print(f"warning: {e}", file=sys.stderr)
        time.sleep(0.05)  # let the synth's release tail out before the driver closes
    finally:
        output.close()
    return 0
