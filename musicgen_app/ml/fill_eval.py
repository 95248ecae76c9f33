"""How well a fill joins its surroundings, on held-out POP909 songs.

A *case* is a held-out song (the test split of :func:`musicgen_app.ml.midi_data.file_split`), its
MELODY track and a range of ``RANGE_BARS`` bars near its middle with melody on both sides
(:func:`held_out_cases`). :func:`join_stats` measures one fill (or the song's own notes, the
reference) against the neighbours (``NEIGHBOUR_BARS`` bars on each side):

* ``edge_in`` / ``edge_out``: the interval in semitones across each edge (the last note before the
  range to the first in it; the last in it to the first after it);
* ``density``: notes per bar in the range over notes per bar of the neighbours;
* ``in_key``: the share of the range's notes in the neighbours' key (Krumhansl-Schmuckler);
* ``outside``: the share of the range's notes outside the neighbours' pitch range.

:func:`summarize` turns a list of those into the figures ``benchmarks/bench_fill.py`` reports.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen_app.core.song import Note, Song
from musicgen_app.ml.fill import bars_to_range, split_at_range
from musicgen_app.ml.keys import estimate_key

logger = logging.getLogger(__name__)

RANGE_BARS = 2
NEIGHBOUR_BARS = 4
MIN_NEIGHBOUR_NOTES = 8  # on each side
POP909_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pop909"


@dataclass
class Case:
    """One held-out song and the range to fill."""

    name: str
    song: Song
    track: int
    start_tick: int
    end_tick: int


def melody_track(song: Song) -> int | None:
    """The track named MELODY (POP909), else None."""
    return next(
        (i for i, t in enumerate(song.tracks) if t.name.strip().upper() == "MELODY" and t.notes), None
    )


def pick_range(song: Song, track: int) -> tuple[int, int] | None:
    """``RANGE_BARS`` bars from the middle of ``track`` on (later bars tried next) with at least
    ``MIN_NEIGHBOUR_NOTES`` melody notes on each side and some inside; None when there are none."""
    notes = sorted(song.tracks[track].notes)
    n_bars = len(song.bar_starts(song.tracks[track].end_tick))
    for first in range(max(NEIGHBOUR_BARS + 1, n_bars // 2), n_bars - RANGE_BARS - NEIGHBOUR_BARS):
        start, end = bars_to_range(song, first, first + RANGE_BARS - 1)
        bar = song.ticks_per_bar(start)
        before, inside, after = split_at_range(notes, start, end)
        left = [n for n in before if n.start_tick >= start - NEIGHBOUR_BARS * bar]
        right = [n for n in after if n.start_tick < end + NEIGHBOUR_BARS * bar]
        if len(left) >= MIN_NEIGHBOUR_NOTES and len(right) >= MIN_NEIGHBOUR_NOTES and len(inside) >= 2:
            return start, end
    return None


def held_out_cases(n: int, folder: str | Path = POP909_DIR) -> list[Case]:
    """Up to ``n`` cases from the held-out (test split) POP909 songs in ``folder``, in folder order."""
    from musicgen_app.core.midi_io import read_midi
    from musicgen_app.errors import MusicgenError
    from musicgen_app.ml import midi_data

    out: list[Case] = []
    for sub in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        mids = midi_data.midi_files(sub)
        if not mids or midi_data.file_split(mids[0]) != "test":
            continue
        try:
            song = read_midi(mids[0]).song
        except MusicgenError as exc:
            logger.info("skipping %s: %s", mids[0], exc)
            continue
        track = melody_track(song)
        rng = pick_range(song, track) if track is not None else None
        if track is None or rng is None:
            continue
        out.append(Case(sub.name, song, track, *rng))
        if len(out) == n:
            break
    return out


def _line_last(notes: Sequence[Note]) -> Note | None:
    return max(notes, key=lambda n: (n.start_tick, n.pitch), default=None)


def _line_first(notes: Sequence[Note]) -> Note | None:
    return min(notes, key=lambda n: (n.start_tick, -n.pitch), default=None)


def join_stats(case: Case, notes: Sequence[Note]) -> dict[str, float]:
    """The join figures of ``notes`` (what fills the range) in ``case`` (NaN where undefined)."""
    start, end = case.start_tick, case.end_tick
    before, _, after = split_at_range(sorted(case.song.tracks[case.track].notes), start, end)
    bar = case.song.ticks_per_bar(start)
    left = [n for n in before if n.start_tick >= start - NEIGHBOUR_BARS * bar]
    right = [n for n in after if n.start_tick < end + NEIGHBOUR_BARS * bar]
    near = left + right
    inside = sorted(n for n in notes if start <= n.start_tick < end)
    a, b = _line_last(left), _line_first(inside)
    c, d = _line_last(inside), _line_first(right)
    range_bars = (end - start) / bar
    key = estimate_key([n.pitch for n in near], [max(1, n.end_tick - n.start_tick) for n in near])
    scale = key.scale_pcs()
    lo, hi = min(n.pitch for n in near), max(n.pitch for n in near)
    nan = math.nan
    return {
        "edge_in": abs(b.pitch - a.pitch) if a and b else nan,
        "edge_out": abs(d.pitch - c.pitch) if c and d else nan,
        "density": (len(inside) / range_bars) / (len(near) / (2 * NEIGHBOUR_BARS)),
        "in_key": sum(n.pitch % 12 in scale for n in inside) / len(inside) if inside else nan,
        "outside": sum(not lo <= n.pitch <= hi for n in inside) / len(inside) if inside else nan,
    }


def summarize(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Means over cases: edge intervals (and the share of them within a fifth), |log2 density
    ratio|, in-key share, outside-register share."""
    edges = np.array([r[k] for r in rows for k in ("edge_in", "edge_out")], dtype=float)
    edges = edges[~np.isnan(edges)]
    dens = np.array([r["density"] for r in rows], dtype=float)
    dens = dens[dens > 0]

    def mean(key: str) -> float:
        v = np.array([r[key] for r in rows], dtype=float)
        v = v[~np.isnan(v)]
        return float(v.mean()) if len(v) else math.nan

    return {
        "cases": len(rows),
        "edge_interval": float(edges.mean()) if len(edges) else math.nan,
        "edge_within_fifth": float((edges <= 7).mean()) if len(edges) else math.nan,
        "density_ratio": float(np.exp2(np.log2(dens).mean())) if len(dens) else math.nan,
        "density_log2_error": float(np.abs(np.log2(dens)).mean()) if len(dens) else math.nan,
        "in_key": mean("in_key"),
        "outside_register": mean("outside"),
        "silent": sum(1 for r in rows if math.isnan(r["in_key"])),
    }
