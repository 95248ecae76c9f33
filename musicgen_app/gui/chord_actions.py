"""The chord lane's window actions: type a chord at the playhead, estimate chords from the notes.

"Estimate Chords" labels each bar (or beat) of the loop region, else of the whole song, with the
chord that best explains the notes of every pitched track (``core.chords.estimate_chords``) and
replaces the lane there: one undo step. The lane's chords condition Continue (see
``gui.generation``: the chords over the continuation go to the sampler).
"""

from __future__ import annotations

import logging
from itertools import pairwise
from typing import Any

from musicgen_app.core.chords import changes_from_spans, estimate_chords
from musicgen_app.core.edits import replace_chords
from musicgen_app.core.gm import is_drum_track
from musicgen_app.core.song import Song
from musicgen_app.errors import EditError

logger = logging.getLogger(__name__)


def windows(song: Song, start: int, end: int, per: str) -> list[tuple[int, int]]:
    """The (start, end) windows to label between ``start`` and ``end``: each bar, or each beat."""
    lines = [b for b in song.bar_starts(end) if b < end]
    if not lines or lines[0] > start:
        lines.insert(0, start)
    bars = [(max(a, start), b) for a, b in pairwise([*lines, end]) if b > start]
    if per == "bar":
        return bars
    out = []
    for a, b in bars:
        ts = song.time_signature_at(a)
        beat = max(1, song.resolution * 4 // ts.denominator)
        out += [(t, min(t + beat, b)) for t in range(a, b, beat)]
    return out


def estimate_lane(win: Any, per: str = "bar") -> None:
    """Fill the chord lane over the loop region (else the song) from the notes, as one undo step."""
    song: Song = win.doc.song
    if song.loop and song.loop[1] > song.loop[0]:
        start, end = int(song.loop[0]), int(song.loop[1])
    else:
        start, end = 0, song.end_tick
    notes = [
        (n.start_tick, n.end_tick, n.pitch)
        for t in song.tracks
        if not is_drum_track(t) and not t.mute
        for n in t.notes
        if n.end_tick > start and n.start_tick < end
    ]
    if not notes:
        win.show_message("Estimate Chords: there are no notes to read chords from")
        return
    spans = [s for s in estimate_chords(notes, windows(song, start, end, per)) if s.chord is not None]
    try:
        win.doc.apply(replace_chords(song, start, end, changes_from_spans(spans)), "Estimate Chords")
    except EditError as exc:
        win.show_message(f"Estimate Chords: {exc}")
        return
    win.show_message(f"Estimated {len(spans)} chords (per {per})")


def type_chord_at_playhead(win: Any) -> None:
    """Open the chord lane's entry at the beat under the playhead."""
    lane = win.roll.chord_lane
    beat = win.doc.song.resolution
    lane.open_entry(int(win.canvas.playhead_tick) // beat * beat)
