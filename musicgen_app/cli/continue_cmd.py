"""`musicgen continue SEED.mid -o OUT.mid --model NAME [...]`: continue a seed with a model.

The output is the seed (its tempo, meter, programs and every track) followed by ``--bars`` bars
of continuation on the seed's melody track, starting after the seed's last note on the 16th grid.
With ``--variations V`` (V > 1) it writes ``OUT-1.mid`` ... ``OUT-V.mid`` (seeds S, S+1, ...).
With ``--chords "C G Am F"`` the continuation follows the progression, one chord per bar, repeating
(``|`` bar marks are allowed and ignored): the chords bias the model's pitch choices at sampling
time (``ml.sampling.CHORD_BIAS``), so every melody model follows them without retraining.
With ``--play`` each take is heard live while it is generated (FluidSynth or a MIDI port); when the
output dies meanwhile, generation stops, the file gets the notes that were heard, and one line says
how many were heard and how many not (exit status 2).
"""

from __future__ import annotations

import argparse
import logging
import random
from dataclasses import replace
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_BARS = 256
MAX_VARIATIONS = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen continue` (each checked by its parser, see ``cli.argtypes``)."""
    from musicgen_app.cli import argtypes as at
    from musicgen_app.cli.play_cmd import add_play_while_generating_arguments
    from musicgen_app.ml import DEFAULT_MODEL

    at.add_midi_in_out_arguments(
        parser, "seed_file", "SEED.mid", "seed file", "the MIDI file to continue",
        "the MIDI file to write (with --variations V: OUT-1.mid .. OUT-V.mid)",
    )  # fmt: skip
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, type=at.model_name, help="model name (see `musicgen models`)"
    )
    at.add_temperature_and_seed(parser)
    parser.add_argument(
        "--bars", type=at.positive_int(MAX_BARS), default=4, help=f"bars to add, 1 to {MAX_BARS} (default 4)"
    )
    parser.add_argument(
        "--key",
        default="auto",
        type=at.key_lock,
        help="key lock: auto (from the seed), a key such as 'D dorian' or 'F#m', off, or free (off, "
        "and no pull toward the seed's key either: the same as --free-pitch)",
    )
    parser.add_argument(
        "--variations",
        type=at.positive_int(MAX_VARIATIONS),
        default=1,
        help=f"write V takes (1 to {MAX_VARIATIONS}): OUT-1.mid .. OUT-V.mid",
    )
    parser.add_argument(
        "--track",
        type=at.positive_int(65535),
        default=None,
        help="track to continue (1-based; default: melody)",
    )
    parser.add_argument(
        "--top-k",
        type=at.non_negative_int(100_000),
        default=0,
        help="sample among the k likeliest tokens (0: all)",
    )
    parser.add_argument(
        "--top-p",
        type=at.finite_float(0.0, 1.0, lo_open=True),
        default=1.0,
        help="nucleus sampling mass, above 0 and at most 1 (1.0: off)",
    )
    parser.add_argument("--entropy-temperature", action="store_true", help="paper 003's entropy scaling")
    parser.add_argument(
        "--voices",
        choices=("sketch", "harmony"),  # ml.sampling.VOICES (not imported: the parser stays light)
        default="sketch",
        help="texture: sketch (a single line stays a line; the default) or harmony (the polyphonic "
        "models may add voices)",
    )
    parser.add_argument(
        "--free-rhythm",
        action="store_true",
        help="turn off the density guide (which keeps the take's notes per beat near the sketch's), "
        "the rhythm prior (which favours the sketch's note values) and the variety guard (which keeps "
        "a line from circling on a few pitches)",
    )
    parser.add_argument(
        "--free-pitch",
        action="store_true",
        help="turn off the tonal prior (which leans the take toward the sketch's own pitch classes "
        "without forbidding others; the key lock, --key, is the hard rule)",
    )
    parser.add_argument(
        "--chords",
        type=at.chord_progression,
        default=None,
        metavar='"C G Am F"',
        help="chords the continuation follows, one per bar, repeating (sampling-time conditioning)",
    )
    add_play_while_generating_arguments(
        parser, "hear each take while it is generated", old=("--output-device", "--play-output")
    )


def _melody_track(song, requested: int | None) -> int:
    from musicgen_app.errors import GenerationError

    if requested is not None:
        if not 1 <= requested <= len(song.tracks):
            raise GenerationError(f"the seed has no track {requested} (it has {len(song.tracks)})")
        if not song.tracks[requested - 1].notes:
            raise GenerationError(f"track {requested} of the seed has no notes to continue")
        return requested - 1
    candidates = [i for i, t in enumerate(song.tracks) if t.notes and not t.is_drum]
    if not candidates:
        raise GenerationError("the seed has no notes to continue")
    # the melody: the track whose notes are highest on average
    return max(
        candidates, key=lambda i: sum(n.pitch for n in song.tracks[i].notes) / len(song.tracks[i].notes)
    )


def continuation_chords(song, start_tick: int, bars: int, chords: list) -> tuple:
    """The chord spans (song ticks) of ``chords`` over the ``bars`` bars after ``start_tick``, one
    per bar of the song's bar grid, repeating; a continuation that starts inside a bar gets the
    first chord for the rest of that bar."""
    from musicgen_app.core.chords import chords_for_bars

    end = start_tick + bars * song.ticks_per_bar(start_tick)
    lines = [b for b in song.bar_starts(end) if start_tick < b < end]
    return tuple(chords_for_bars(chords, [start_tick, *lines, end]))


def output_paths(output: str | Path, variations: int) -> list[Path]:
    """``OUT.mid`` for one take, else ``OUT-1.mid`` .. ``OUT-V.mid``."""
    out = Path(output)
    if variations == 1:
        return [out]
    suffix = out.suffix or ".mid"
    return [out.with_name(f"{out.stem}-{i}{suffix}") for i in range(1, variations + 1)]


def _write_heard(song, track: int, notes: list, path: Path) -> None:
    """Write the seed with ``notes`` added to its track ``track``."""
    from musicgen_app.core.midi_io import write_midi

    tracks = list(song.tracks)
    tracks[track] = replace(tracks[track], notes=sorted([*tracks[track].notes, *notes]))
    write_midi(replace(song, tracks=tracks), path)


def _failure_line(result, take: int, takes: int, path: Path) -> str:
    """One line: why the output died, and how many of the take's notes were heard and not."""
    heard = len(result.notes)
    not_heard = max(0, result.generated - heard)
    of = f"take {take} of {takes}: " if takes > 1 else ""
    return (
        f"{result.failure.message}: {of}{heard} notes heard, {not_heard} generated notes not heard; "
        f"{path} holds the {heard} heard notes"
    )


def run(args: argparse.Namespace) -> int:
    """Read the seed, generate, write the file(s)."""
    from musicgen_app.cli.argtypes import SEED_MAX
    from musicgen_app.core.midi_io import read_midi
    from musicgen_app.errors import DeviceError, GenerationError
    from musicgen_app.ml.generate import SamplingConfig, generate_notes, start_session
    from musicgen_app.ml.registry import load_model

    song = read_midi(args.seed_file).song
    track = _melody_track(song, args.track)
    player = None
    if args.play:
        # The scheduler runs in a process of its own, so this process's Python work (the model
        # sampling) cannot delay its deadlines through the interpreter lock.
        from musicgen_app.playback.player_process import PlayerProcess

        player = PlayerProcess(args.device, soundfont=args.soundfont, midi_api=args.midi_api)
    try:
        model = load_model(args.model)
    except BaseException:
        if player is not None:
            player.close()
        raise
    key_lock = None if str(args.key).lower() in ("off", "none") else args.key
    base_seed = args.seed if args.seed is not None else random.randrange(2**31)
    take_seeds = [(base_seed + i) % (SEED_MAX + 1) for i in range(args.variations)]
    start_tick = song.tracks[track].end_tick
    chords = continuation_chords(song, start_tick, args.bars, args.chords) if args.chords else ()
    try:
        for i, path in enumerate(output_paths(args.output, args.variations)):
            sampling = SamplingConfig(
                temperature=args.temperature,
                top_k=args.top_k,
                top_p=args.top_p,
                entropy_temperature=args.entropy_temperature,
                key_lock=key_lock,
                seed=take_seeds[i],
                voices=args.voices,
                chords=chords,
            )
            if args.free_rhythm:
                sampling.density, sampling.rhythm, sampling.variety = 0.0, 0.0, False
            if args.free_pitch:
                sampling.tonal = 0.0
            if player is not None:
                from musicgen_app.playback.live import play_session

                player.wait_ready()
                session = start_session(
                    model, song, track, start_tick=start_tick, bars=args.bars, sampling=sampling
                )
                result = play_session(session, song, scheduler=player, start_tick=start_tick)
                if result.failure is not None:
                    _write_heard(song, track, result.notes, path)
                    raise DeviceError(_failure_line(result, i + 1, args.variations, path))
                if result.reason not in ("done",):
                    raise GenerationError(f"generation stopped: {result.reason} {result.message}".strip())
                notes = result.notes
            else:
                notes = generate_notes(
                    model, song, track, start_tick=start_tick, bars=args.bars, sampling=sampling
                )
            _write_heard(song, track, notes, path)
            print(
                f"wrote {path}: {len(notes)} notes in {args.bars} bars "
                f"(model {model.name}, seed {take_seeds[i]})"
            )
    finally:
        if player is not None:
            player.close()
    return 0
