"""Accompany in the window: a new accompaniment track under the active (melody) track.

Accompany runs through the window's generation controller like Continue and Fill (same worker
thread, takes list, streaming into the roll and the speakers, Esc, Again), with a request whose
``accompany`` names the style; the model is the style's accompaniment model (see
:mod:`musicgen_app.ml.accompany_styles`). The take is heard over the whole song from its start.
Accepting a take adds a new track after the others (named and voiced for the style) holding the
take's notes: one undo step; the melody and every other track are untouched.

The chord lane and Accompany work together: the lane's chords (where it has any) are the chords
the accompaniment follows; an empty lane is filled, in the same undo step as the accepted take,
with the chords the accompaniment plays (estimated per beat from its notes).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from musicgen_app.core.chords import changes_from_spans, estimate_chords, spans_from_changes
from musicgen_app.core.edits import CompoundEdit, Edit, InsertTrack, add_notes, replace_chords
from musicgen_app.core.song import Note, Song
from musicgen_app.ml.accompany_styles import STYLES, accompaniment_track, default_model

logger = logging.getLogger(__name__)

DEFAULT_STYLE = "piano"


def start_accompany(win: Any, again: bool = False) -> None:
    """Accompany the active track in the window's style (with ``again``: one more take of the
    last accompaniment)."""
    from musicgen_app.gui.generation import ContinueRequest

    prev = win.gen.request
    again = again and is_accompany(prev) and bool(win.gen.takes)
    if again:
        song, track, style = prev.song, prev.track, str(prev.accompany)
    else:
        song, track = win.doc.snapshot(), win.doc.active_track
        style = getattr(win, "accompany_style", DEFAULT_STYLE)
        tr = song.tracks[track]
        if tr.is_drum:
            win.show_error("Accompany", f"Track {track + 1} is a drum track: select the melody to accompany.")
            return
        if not tr.notes:
            win.show_error("Accompany", f"Track {track + 1} has no notes: select the melody to accompany.")
            return
    win.stop_all()
    seed = win.panel.seed_value()
    if again and seed is not None:
        seed = max([seed - 1, *(t.seed for t in win.gen.takes)]) + 1
    req = ContinueRequest(
        model=default_model(style),
        song=song,
        track=track,
        start_tick=0,
        bars=1,
        temperature=win.panel.temperature_value(),
        variations=1 if again else win.panel.variations.value(),
        seed=seed,
        key_lock=None,
        accompany=style,
        chords=tuple(spans_from_changes(song.chords, song.length_ticks)),  # the lane's, if any
    )
    preview = song.copy()  # the new track's program sounds on its channel while the take streams
    preview.tracks.append(accompaniment_track(song, style))
    win.playback.play_stream(preview, 0, song.length_ticks)
    win.gen.start(req, keep_takes=again, live=win.playback.scheduler)
    win.canvas.show_take([], reveal_from=0.0)
    win.takes.refresh_list()
    logger.info("accompany: style %s, track %d", style, track + 1)


def set_style(win: Any, style: str) -> None:
    """The style the next Accompany uses."""
    if style in STYLES:
        win.accompany_style = style


def take_edit(song: Song, req: Any, notes: list[Note]) -> CompoundEdit:
    """The edit that accepts an accompaniment take: a new track after the others with the
    take's notes (one undo step)."""
    from musicgen_app.gui.chord_actions import windows

    track = accompaniment_track(song, str(req.accompany))
    notes = [replace(n, channel=track.channel) for n in notes]
    index = len(song.tracks)
    edits: list[Edit] = [InsertTrack(index, track), add_notes(index, notes)]
    if not song.chords:  # the lane shows the chords the accompaniment plays
        end = max(n.end_tick for n in notes)
        spans = estimate_chords(
            [(n.start_tick, n.end_tick, n.pitch) for n in notes], windows(song, 0, end, "beat")
        )
        spans = [sp for sp in spans if sp.chord is not None]
        if spans:
            edits.append(replace_chords(song, 0, end, changes_from_spans(spans)))
    return CompoundEdit(tuple(edits))


def is_accompany(req: Any) -> bool:
    """Whether ``req`` (the controller's last request) was an accompaniment."""
    return req is not None and getattr(req, "accompany", None) is not None
