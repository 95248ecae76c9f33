"""`musicgen accompany SONG.mid --track N -o OUT.mid`: a new accompaniment track under a melody.

The melody track and every other track are written back unchanged; the accompaniment is a new
track after them (see :mod:`musicgen_app.ml.accompany` for the styles and models). Without
``--chords`` the model chooses the chords and they are printed; ``--chords "C G Am F"`` gives
one chord per bar from the first bar, the progression repeating to the end of the melody.
The song's other pitched tracks are heard too when the model chooses the chords (``--melody-only``:
the melody alone).
"""

from __future__ import annotations

import argparse
import logging
import random

logger = logging.getLogger(__name__)

CHORDS_SHOWN = 16  # chords printed, at most


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen accompany` (each checked by its parser, see ``cli.argtypes``)."""
    from musicgen_app.cli import argtypes as at
    from musicgen_app.cli.play_cmd import add_play_while_generating_arguments
    from musicgen_app.ml.accompany_styles import STYLES

    at.add_midi_in_out_arguments(parser, "song_file", "SONG.mid", "song file", "the MIDI file")
    parser.add_argument(
        "--track",
        type=at.positive_int(65535),
        default=None,
        help="the melody track (1-based; default: the track named melody, else the highest)",
    )
    parser.add_argument(
        "--style",
        choices=STYLES,
        default="piano",
        help="piano (learned POP909 texture), chords (block chords), bass (a bass line), "
        "satb (alto, tenor, bass under a soprano, learned from the chorales)",
    )
    parser.add_argument(
        "--model",
        default=None,
        type=at.model_name,
        help="an accompaniment model (default: accompany-pop909; accompany-chorales for satb)",
    )
    parser.add_argument(
        "--chords",
        default=None,
        type=at.chord_progression,
        metavar='"C G Am F"',
        help="chords to follow, one per bar from bar 1, repeating (default: the model chooses)",
    )
    parser.add_argument(
        "--melody-only",
        action="store_true",
        help="choose the chords from the melody alone (default: the song's other tracks are heard too)",
    )
    at.add_temperature_and_seed(parser)
    add_play_while_generating_arguments(parser, "hear the accompaniment while it is generated", old=())


def run(args: argparse.Namespace) -> int:
    """Read the song, check the track, accompany it, write the file."""
    from musicgen_app.cli.fill_cmd import pick_track
    from musicgen_app.core.midi_io import read_midi, write_midi

    song = read_midi(args.song_file).song
    track = pick_track(song, args.track, "accompany")
    from musicgen_app.errors import GenerationError

    if not song.tracks[track].notes:
        raise GenerationError(f"track {track + 1} has no notes: there is no melody to accompany")
    # the track is valid: now the heavy imports and the model
    from musicgen_app.core.events import NoteEvent
    from musicgen_app.ml.accompany import load_accompany_model, progression_spans, start_accompany_session
    from musicgen_app.ml.accompany_styles import accompaniment_track, default_model

    spans = None
    if args.chords:
        end = max(n.end_tick for n in song.tracks[track].notes)
        spans = progression_spans(song, args.chords, end)
    model = load_accompany_model(args.model or default_model(args.style))
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    session = start_accompany_session(
        model,
        song,
        track,
        style=args.style,
        temperature=args.temperature,
        seed=seed,
        chords=spans,
        other_parts=not args.melody_only,
    )
    new = accompaniment_track(song, args.style)
    out = song.copy()
    out.tracks.append(new)
    if args.play:
        from musicgen_app.playback.live import play_session
        from musicgen_app.playback.player_process import PlayerProcess

        player = PlayerProcess(args.device, soundfont=args.soundfont, midi_api=args.midi_api)
        try:
            player.wait_ready()
            result = play_session(session, out, scheduler=player, start_tick=0, include_song=True)
        finally:
            player.close()
        if result.reason != "done":
            raise GenerationError(f"the accompaniment stopped: {result.reason} {result.message}".strip())
        notes = result.notes
    else:
        notes = []
        for ev in session:
            if isinstance(ev, NoteEvent):
                notes.append(ev.note)
            elif ev.reason == "error":
                raise GenerationError(f"the accompaniment failed: {ev.message}")
    new.notes = sorted(notes)
    write_midi(out, args.output)
    shown = " ".join(s.chord.symbol if s.chord else "N.C." for s in session.chords[:CHORDS_SHOWN])
    more = " ..." if len(session.chords) > CHORDS_SHOWN else ""
    print(
        f"wrote {args.output}: track {len(out.tracks)} '{new.name}' ({args.style}, {len(notes)} notes) under "
        f"track {track + 1} (model {model.name}, seed {seed}); chords {'given' if spans else 'chosen'}"
        f"{_heard(session.plan.parts_read) if not spans else ''}: "
        f"{shown}{more}"
    )
    return 0


def _heard(parts: int) -> str:
    """What the chord choice heard besides the melody, for the summary line."""
    return f" hearing {parts} other track{'s' if parts != 1 else ''} too" if parts else " from the melody"
