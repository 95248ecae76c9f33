"""`musicgen fill SONG.mid --track N --bars 5-6 -o OUT.mid`: regenerate a range of one track.

The notes of the track that start inside the range are replaced by a passage a melody model
writes from the music on both sides (see :mod:`musicgen_app.ml.fill`); everything else is
written back unchanged. ``--bars A-B`` counts bars from 1 (both included); ``--ticks A-B`` takes
any range in the file's ticks (A included, B excluded). With ``--play`` the fill is heard while it
is generated, over the song from one bar before the range to one bar after it.
"""

from __future__ import annotations

import argparse
import logging
import random
import re

logger = logging.getLogger(__name__)

MAX_CANDIDATES = 64
MELODY_NAMES = re.compile(r"melody|vocal|voice|lead", re.IGNORECASE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen fill` (each checked by its parser, see ``cli.argtypes``)."""
    from musicgen_app.cli import argtypes as at
    from musicgen_app.cli.play_cmd import add_play_while_generating_arguments
    from musicgen_app.ml.fill import DEFAULT_CANDIDATES, DEFAULT_FILL_MODEL, EDGE_POLICIES

    at.add_midi_in_out_arguments(parser, "song_file", "SONG.mid", "song file", "the MIDI file")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--bars", type=at.bar_range, metavar="A-B", help="bars A to B (from 1, both included)")
    where.add_argument(
        "--ticks",
        type=at.ordered_range(0, 2**31, "tick"),
        metavar="A-B",
        help="any range in the file's ticks (A included, B excluded)",
    )
    parser.add_argument(
        "--track", type=at.positive_int(65535), default=None, help="track to fill (1-based; default: melody)"
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_FILL_MODEL,
        type=at.model_name,
        help="a melody model (see `musicgen models`)",
    )
    at.add_temperature_and_seed(parser)
    parser.add_argument(
        "--key",
        default="auto",
        type=at.key_lock,
        help="key lock: auto (from both sides of the range), a key such as 'D dorian' or 'F#m', or off",
    )
    parser.add_argument(
        "--candidates",
        type=at.positive_int(MAX_CANDIDATES),
        default=DEFAULT_CANDIDATES,
        help=f"takes sampled, the one the music after the range fits best is kept (1 to {MAX_CANDIDATES}, "
        f"default {DEFAULT_CANDIDATES})",
    )
    parser.add_argument(
        "--edges",
        choices=EDGE_POLICIES,
        default="keep",
        help="a note sounding into the range from before it: keep it whole (tied in; default) or cut it",
    )
    add_play_while_generating_arguments(parser, "hear the fill while it is generated", old=())


def pick_track(song, track_arg: int | None, verb: str) -> int:
    """The 0-based track of ``--track N`` (1-based), checked; without it a track named as the
    melody (POP909's MELODY, a "Vocal"), else the highest line. Raises GenerationError."""
    from musicgen_app.cli.continue_cmd import _melody_track
    from musicgen_app.errors import GenerationError

    if not song.tracks:
        raise GenerationError("the song has no tracks")
    if track_arg is not None:
        if not 1 <= track_arg <= len(song.tracks):
            raise GenerationError(f"the song has no track {track_arg} (it has {len(song.tracks)})")
        track = track_arg - 1
    else:
        named = [i for i, t in enumerate(song.tracks) if t.notes and MELODY_NAMES.search(t.name or "")]
        track = named[0] if named else _melody_track(song, None)
    if song.tracks[track].is_drum:
        raise GenerationError(f"track {track + 1} is a drum track: {verb} a melodic track")
    return track


def resolve_range(song, track_arg: int | None, bars: tuple[int, int] | None, ticks: tuple[int, int] | None):
    """``(track index, start tick, end tick)`` of the options, checked against the song."""
    from musicgen_app.errors import GenerationError
    from musicgen_app.ml.fill import bars_to_range

    track = pick_track(song, track_arg, "fill")
    if bars is not None:
        start, end = bars_to_range(song, *bars)
    else:
        assert ticks is not None
        start, end = ticks
        if start == end:
            raise GenerationError(f"the tick range {start}-{end} is empty")
        song_end = song.length_ticks
        if start >= song_end:
            raise GenerationError(f"tick {start} is past the end of the song (it ends at tick {song_end})")
    return track, start, end


def _window(song, start: int, end: int):
    """The notes from ``start`` to one bar after ``end`` (what --play lets you hear)."""
    stop = end + song.ticks_per_bar(end)
    out = song.copy()
    for tr in out.tracks:
        tr.notes = [n for n in tr.notes if start <= n.start_tick < stop]
        tr.controls = []
    return out


def run(args: argparse.Namespace) -> int:
    """Read the song, check the range, fill it, write the file."""
    from musicgen_app.core.midi_io import read_midi, write_midi

    song = read_midi(args.song_file).song
    track, start, end = resolve_range(song, args.track, args.bars, args.ticks)
    # the range is valid: now the heavy imports and the model
    from musicgen_app.errors import GenerationError
    from musicgen_app.ml.fill import fill_notes, start_fill_session
    from musicgen_app.ml.generate import SamplingConfig
    from musicgen_app.ml.registry import load_model

    player = None
    if args.play:
        from musicgen_app.playback.player_process import PlayerProcess

        player = PlayerProcess(args.device, soundfont=args.soundfont, midi_api=args.midi_api)
    try:
        model = load_model(args.model)
        seed = args.seed if args.seed is not None else random.randrange(2**31)
        sampling = SamplingConfig(
            temperature=args.temperature,
            key_lock=None if str(args.key).lower() in ("off", "none") else args.key,
            seed=seed,
        )
        session = start_fill_session(
            model, song, track, start, end, sampling=sampling, candidates=args.candidates, edges=args.edges
        )
        if player is not None:
            from musicgen_app.playback.live import play_session

            player.wait_ready()
            # one bar of the song before the range: you hear the approach while the fill is chosen
            lead = start - min(start, song.ticks_per_bar(start))
            result = play_session(
                session,
                _window(session.plan.song, lead, end),
                scheduler=player,
                start_tick=lead,
                include_song=True,
            )
            if result.reason != "done":
                raise GenerationError(f"the fill stopped: {result.reason} {result.message}".strip())
            notes = result.notes
        else:
            notes = fill_notes(session)
    finally:
        if player is not None:
            player.close()
    out = session.plan.song
    out.tracks[track].notes = sorted([*out.tracks[track].notes, *notes])
    write_midi(out, args.output)
    print(
        f"wrote {args.output}: track {track + 1}, ticks {start}-{end}: {len(session.plan.removed)} notes "
        f"replaced by {len(notes)} (model {model.name}, seed {seed}, best of {args.candidates})"
    )
    return 0
