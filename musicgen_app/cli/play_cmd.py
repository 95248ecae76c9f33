"""`musicgen play FILE [--device fluidsynth|PORT] [--soundfont F] [--midi-api alsa|jack] [--loop [A-B]]`.

Plays a MIDI file or a project through FluidSynth (the default) or a MIDI output port, printing
the position; Ctrl-C stops with a panic (nothing left sounding). When the output dies (its device
fails, the JACK server or port goes away) playback stops at once with one ``error:`` line and
exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from musicgen_app.cli import argtypes as at
from musicgen_app.core.song import Song, TimeSignature
from musicgen_app.playback.midi_ports import API_NAMES

if TYPE_CHECKING:
    from musicgen_app.playback.outputs import Output

logger = logging.getLogger(__name__)

BUFFER_SIZE_RANGE = (64, 8192)  # FluidSynth's audio.period-size
BUFFER_COUNT_RANGE = (2, 64)  # FluidSynth's audio.periods
MAX_SECONDS = 24 * 3600.0
SONG_LOOP = (0, 0)  # `--loop` without bars: the song's own loop region


def add_device_argument(
    parser: argparse.ArgumentParser, prefix: str = "", old: tuple[str, ...] = ("--output",)
) -> None:
    """``--device fluidsynth|PORT|virtual`` (the sound output), with ``old`` spellings kept working
    (hidden, with a one-line deprecation warning): files are ``-o/--output`` in every command."""
    parser.add_argument(
        "--device",
        default="fluidsynth",
        metavar="fluidsynth|PORT",
        type=at.non_empty("the output device"),
        help=prefix + "'fluidsynth' (the built-in synth, default), a MIDI output port name "
        "(see `musicgen devices`), or 'virtual' for a port named after the app that a DAW can record",
    )
    at.add_deprecated_aliases(
        parser,
        old,
        dest="device",
        new="--device",
        type=at.non_empty("the output device"),
        default=argparse.SUPPRESS,
        metavar="DEVICE",
    )


def add_play_while_generating_arguments(
    parser: argparse.ArgumentParser, play_help: str, old: tuple[str, ...] = ()
) -> None:
    """``--play`` and what it plays through (``--device``, ``--soundfont``, ``--midi-api``): the
    options of a command that can be heard while it generates (continue, fill)."""
    from musicgen_app.playback.midi_ports import API_NAMES

    parser.add_argument("--play", action="store_true", help=play_help)
    add_device_argument(parser, "with --play: ", old=old)
    parser.add_argument(
        "--soundfont",
        default=None,
        metavar="FILE",
        type=at.input_file(what="SoundFont"),
        help="with --play: SoundFont for FluidSynth",
    )
    parser.add_argument("--midi-api", default=None, choices=API_NAMES, help="with --play: MIDI API")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """--device, --soundfont, --midi-api, --audio-driver, --buffer-size/-count (output options)."""
    add_device_argument(parser)
    parser.add_argument(
        "--soundfont",
        metavar="FILE",
        type=at.input_file(what="SoundFont"),
        help="a .sf2/.sf3 SoundFont (default: TimGM6mb)",
    )
    parser.add_argument(
        "--midi-api",
        choices=API_NAMES,
        help="force the MIDI system (default: $MUSICGEN_MIDI_API, else automatic)",
    )
    parser.add_argument(
        "--audio-driver",
        metavar="NAME",
        type=at.non_empty("the audio driver"),
        help="FluidSynth audio driver (default: first that works)",
    )
    parser.add_argument(
        "--buffer-size",
        type=at.int_range(*BUFFER_SIZE_RANGE),
        default=256,
        metavar="FRAMES",
        help="FluidSynth audio period size, {} to {} frames (default 256)".format(*BUFFER_SIZE_RANGE),
    )
    parser.add_argument(
        "--buffer-count",
        type=at.int_range(*BUFFER_COUNT_RANGE),
        default=2,
        metavar="N",
        help="FluidSynth audio periods, {} to {} (default 2)".format(*BUFFER_COUNT_RANGE),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen play` (each checked by its parser, see ``cli.argtypes``)."""
    parser.add_argument(
        "file", metavar="FILE", type=at.input_file(), help="a MIDI file (.mid) or a project (.mgproj)"
    )
    add_output_arguments(parser)
    parser.add_argument(
        "--start",
        type=at.finite_float(0.0, MAX_SECONDS),
        default=0.0,
        metavar="SEC",
        help="start this many seconds in",
    )
    parser.add_argument(
        "--loop",
        nargs="?",
        const=SONG_LOOP,
        default=None,
        type=at.bar_range,
        metavar="BARS",
        help="loop bars A-B (both included, counted from 1); without BARS: the song's loop region "
        "(or the whole song)",
    )


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
        args.device,
        soundfont=args.soundfont,
        midi_api=args.midi_api,
        driver=args.audio_driver,
        buffer_size=args.buffer_size,
        buffer_count=args.buffer_count,
    )


def loop_ticks(song: Song, bars: tuple[int, int]) -> tuple[int, int]:
    """The ticks to loop: bars ``A-B`` (from 1, both included), or with :data:`SONG_LOOP` the song's
    loop region (the whole song when it has none). MusicgenError when that region is empty."""
    from musicgen_app.errors import MusicgenError

    if bars == SONG_LOOP:
        if song.loop:
            a, b = song.loop
            if b <= a:
                raise MusicgenError(
                    f"the song's loop region is empty or reversed (ticks {a} to {b}); "
                    "pass the bars to loop, e.g. --loop 1-4"
                )
            return a, b
        return 0, song.end_tick
    first, last = bars
    n_bars = max(1, _bar_of(song, song.end_tick - 1))
    if first > n_bars:
        plural = "s" if n_bars > 1 else ""
        raise MusicgenError(f"--loop {first}-{last}: the song has only {n_bars} bar{plural}")
    return _bar_start(song, first), _bar_start(song, min(last, n_bars) + 1)


def _meter_segments(song: Song) -> Iterator[tuple[int, int, int, int | None]]:
    """``(first bar number, start tick, bar length, end tick or None)`` of each meter, as
    ``Song.bar_starts`` counts bars (each meter change starts a new bar), without listing bars."""
    meters = sorted(song.time_signatures) or [TimeSignature(0, 4, 4)]
    if meters[0].tick > 0:
        meters.insert(0, TimeSignature(0, 4, 4))
    bar = 1
    for i, ts in enumerate(meters):
        length = max(1, song.resolution * 4 * ts.numerator // ts.denominator)
        end = meters[i + 1].tick if i + 1 < len(meters) else None
        yield bar, ts.tick, length, end
        if end is not None:
            bar += -(-(end - ts.tick) // length)  # bars begun in this meter


def _bar_of(song: Song, tick: int) -> int:
    """The number (from 1) of the bar holding ``tick``."""
    for bar, start, length, end in _meter_segments(song):
        if end is None or tick < end:
            return bar + max(0, tick - start) // length
    raise AssertionError("unreachable: the last meter has no end")


def _bar_start(song: Song, number: int) -> int:
    """The tick where bar ``number`` (from 1) starts."""
    for bar, start, length, end in _meter_segments(song):
        if end is None or number < bar + -(-(end - start) // length):
            return start + (number - bar) * length
    raise AssertionError("unreachable: the last meter has no end")


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def run(args: argparse.Namespace) -> int:
    """Play the file to the end (or until Ctrl-C)."""
    from musicgen_app.errors import DeviceError
    from musicgen_app.playback.scheduler import PlaybackError, Scheduler

    song = load_song(args.file)
    if song.note_count == 0:
        print(f"{args.file}: no notes to play")
        return 0
    loop = loop_ticks(song, args.loop) if args.loop is not None else None
    output = open_output_from_args(args)
    total = song.duration_seconds
    tty = sys.stdout.isatty()
    print(f"playing {args.file} ({_clock(total)}, {song.note_count} notes) on {output.name}; Ctrl-C stops")
    try:
        with Scheduler(output) as sched:
            if loop is not None:
                sched.set_loop(*loop)
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
            stopped_at = song.tick_to_seconds(sched.position_tick)
        if tty:
            print()
        if errors:  # the output died: playback stopped at once, and that is an error, not an end
            raise DeviceError(f"{errors[0]} at {_clock(stopped_at)} of {_clock(total)}")
        time.sleep(0.05)  # let the synth's release tail out before the driver closes
    finally:
        output.close()
    return 0
