"""One reading of the sketch, for every model family.

:func:`read_sketch` validates the track, puts the start of the continuation on the 16th grid
(default: where the track's last note ends), takes the sketch (the track's notes starting before
it), and keeps the song's bar grid and the map between grid steps and the song's ticks. The grid
models' prompt (:func:`musicgen_app.ml.generate.grid_prompt`) and the families' seed
(:func:`musicgen_app.ml.families.common.seed_context`) are both built from it; the key, the
transposition and the key lock are read from its notes by the same functions
(:func:`musicgen_app.ml.keys.estimate_key`, :func:`musicgen_app.ml.keys.transposition_to_reference`,
:func:`musicgen_app.ml.sampling.allowed_pitch_classes`), each family over the window it reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from musicgen_app.core.song import Note, Song
from musicgen_app.errors import GenerationError

STEPS_PER_QUARTER = 4  # the 16th grid


@dataclass(frozen=True)
class SketchReading:
    """The sketch on ``track`` before ``start_tick`` (on the grid), and the grid's tick map."""

    song: Song
    track: int
    start_tick: int  # the continuation's first grid step, in song ticks
    start_step: int  # the same, in grid steps from the song's start
    ticks_per_step: float
    notes: list[Note]  # the track's notes starting before start_tick, sorted
    channel: int

    def tick_of_step(self, step: float) -> int:
        """The song tick of grid step ``step`` (counted from the song's start)."""
        return round(step * self.ticks_per_step)

    def bar_position(self, first_tick: int) -> Callable[[int], tuple[int, int]]:
        """``f(k) -> (position in bar, steps per bar)`` of step ``k`` counted from ``first_tick``."""
        return bar_positions(self.song, first_tick, self.ticks_per_step)

    def bar_grid(self) -> tuple[int, int]:
        """``(steps per bar, offset)`` of the meter at the start: bar lines fall on grid steps
        ``offset + k * steps per bar`` (counted from the song's start)."""
        ts = self.song.time_signature_at(self.start_tick)
        bar_steps = max(1, STEPS_PER_QUARTER * 4 * ts.numerator // ts.denominator)
        return bar_steps, round(ts.tick / self.ticks_per_step) % bar_steps


def bar_positions(song: Song, first_tick: int, tps: float) -> Callable[[int], tuple[int, int]]:
    """``f(k) -> (position in bar, steps per bar)`` of grid step ``k`` (``tps`` ticks each) counted
    from ``first_tick``, following the song's meter changes."""
    sigs = sorted(song.time_signatures) or []

    def pos(k: int) -> tuple[int, int]:
        tick = first_tick + k * tps
        ts_tick, num, den = 0, 4, 4
        for ts in sigs:
            if ts.tick <= tick + 1e-6:
                ts_tick, num, den = ts.tick, ts.numerator, ts.denominator
            else:
                break
        bar_ticks = song.resolution * 4 * num / den
        steps_per_bar = max(1, round(bar_ticks / tps))
        return round((tick - ts_tick) / tps) % steps_per_bar, steps_per_bar

    return pos


def read_sketch(
    song: Song, track: int, start_tick: int | None, *, steps_per_quarter: int = STEPS_PER_QUARTER
) -> SketchReading:
    """Read the sketch on ``track`` before ``start_tick`` (default: after its last note), the start
    moved up onto the grid. Raises GenerationError for a track the song does not have."""
    if not 0 <= track < len(song.tracks):
        raise GenerationError(f"the song has no track {track + 1}")
    tr = song.tracks[track]
    tps = song.resolution / steps_per_quarter
    if start_tick is None:
        start_tick = tr.end_tick
    start_step = math.ceil(start_tick / tps - 1e-6)
    grid_start = round(start_step * tps)
    notes = sorted(n for n in tr.notes if n.start_tick < grid_start)
    return SketchReading(song, track, grid_start, start_step, tps, notes, tr.channel)
