"""Painting the roll fast: cull to the visible rect, batch rectangles, rasterise when zoomed out.

Notes of a track are kept as numpy arrays sorted by start (:class:`NoteArrays`), so the visible
ones are found with two binary searches. Up to :data:`RECT_LIMIT` visible notes are drawn with one
``drawRects`` call per colour; more than that (a zoomed-out view of a long song) are rasterised
with numpy into one image: each note adds +1/-1 at its four corners of a difference array and two
cumulative sums give the covered pixels, so the cost does not depend on the number of
``QPainter`` calls.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen

from musicgen_app.core.song import Note, Song, TimeSignature
from musicgen_app.gui.piano_roll.geometry import PITCHES, RollGeometry

logger = logging.getLogger(__name__)

RECT_LIMIT = 1500
BLACK_KEYS = {1, 3, 6, 8, 10}


class NoteArrays:
    """A track's notes as sorted numpy arrays (start, end, pitch, velocity)."""

    def __init__(self, notes: Sequence[Note]) -> None:
        n = len(notes)
        self.notes = list(notes)
        self.start = np.fromiter((x.start_tick for x in notes), dtype=np.int64, count=n)
        self.end = np.fromiter((x.end_tick for x in notes), dtype=np.int64, count=n)
        self.pitch = np.fromiter((x.pitch for x in notes), dtype=np.int64, count=n)
        self.velocity = np.fromiter((x.velocity for x in notes), dtype=np.int64, count=n)
        order = np.argsort(self.start, kind="stable")
        if n and not np.all(order == np.arange(n)):
            self.start, self.end = self.start[order], self.end[order]
            self.pitch, self.velocity = self.pitch[order], self.velocity[order]
            self.notes = [self.notes[i] for i in order]
        self.max_len = int((self.end - self.start).max()) if n else 0

    def __len__(self) -> int:
        return len(self.notes)

    def visible(self, t0: float, t1: float, p_lo: int = 0, p_hi: int = 127) -> np.ndarray:
        """Indices of notes overlapping ticks ``t0..t1`` and pitches ``p_lo..p_hi``."""
        if not self.notes:
            return np.zeros(0, dtype=np.int64)
        i0 = int(np.searchsorted(self.start, t0 - self.max_len, side="left"))
        i1 = int(np.searchsorted(self.start, t1, side="right"))
        idx = np.arange(i0, i1)
        keep = (self.end[i0:i1] > t0) & (self.pitch[i0:i1] >= p_lo) & (self.pitch[i0:i1] <= p_hi)
        return idx[keep]


class ArrayCache:
    """NoteArrays per track, rebuilt only when the document version changes."""

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self._arrays: list[NoteArrays] = []

    def get(self, song: Song, version: int) -> list[NoteArrays]:
        """Arrays for every track of ``song`` at ``version``."""
        key = (id(song), version)
        if key != self._key:
            self._arrays = [NoteArrays(t.notes) for t in song.tracks]
            self._key = key
        return self._arrays


def paint_rows(p: QPainter, g: RollGeometry, light: QColor, dark: QColor, line: QColor) -> None:
    """Row backgrounds: white-key rows light, black-key rows dark, a line between B and C."""
    lo, hi = g.visible_pitches()
    p.fillRect(QRectF(0, 0, g.width, g.height), light)
    dark_rects = []
    c_lines = []
    for pitch in range(lo, hi + 1):
        y = g.pitch_to_y(pitch)
        if pitch % 12 in BLACK_KEYS:
            dark_rects.append(QRectF(0, y, g.width, g.key_height))
        elif pitch % 12 == 0 and g.key_height >= 3:
            c_lines.append(QRectF(0, y + g.key_height - 1, g.width, 1))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(dark)
    if dark_rects:
        p.drawRects(dark_rects)
    p.setBrush(line)
    if c_lines:
        p.drawRects(c_lines)


class BarGrid:
    """Bar lines of a song as arrays (tick, bar length, beat length, beats per bar), cached.

    The bars depend only on the meter (the time signatures and the resolution), so the cache is
    keyed on that, not on the document version: an edit that leaves the meter alone rebuilds
    nothing, and a rebuild covers what is asked for (the view's right edge, at least 64 bars),
    so the cache grows with the song and the view, never with the number of edits.
    """

    MIN_BARS = 64

    def __init__(self) -> None:
        self._meter: tuple[int, tuple[TimeSignature, ...]] | None = None
        self._end = 0
        self.ticks = np.zeros(0, dtype=np.int64)
        self.bar_len = np.zeros(0, dtype=np.int64)
        self.beat_len = np.zeros(0, dtype=np.int64)
        self.beats = np.zeros(0, dtype=np.int64)

    def get(self, song: Song, end_tick: float) -> BarGrid:
        """Bars of ``song`` up to at least ``end_tick``."""
        need = int(end_tick) + 1
        meter = (song.resolution, tuple(song.time_signatures))
        if meter == self._meter and self._end >= need:
            return self
        # Scrolling past the cached bars doubles them (a few rebuilds for any scroll); another
        # meter starts again from what is needed now.
        grown = 2 * self._end if meter == self._meter else 0
        end = max(need, grown, song.ticks_per_bar() * self.MIN_BARS)
        starts = song.bar_starts(end)
        sigs = sorted(song.time_signatures)
        lens, beats, beat_lens = [], [], []
        j = 0
        for b in starts:
            while j + 1 < len(sigs) and sigs[j + 1].tick <= b:
                j += 1
            ts = sigs[j] if sigs and sigs[j].tick <= b else None
            num, den = (ts.numerator, ts.denominator) if ts else (4, 4)
            lens.append(song.resolution * 4 * num // den)
            beat_lens.append(song.resolution * 4 // den)
            beats.append(num)
        self.ticks = np.asarray(starts, dtype=np.int64)
        self.bar_len = np.asarray(lens, dtype=np.int64)
        self.beat_len = np.asarray(beat_lens, dtype=np.int64)
        self.beats = np.asarray(beats, dtype=np.int64)
        self._meter = meter
        self._end = end
        return self

    def index_at(self, tick: float) -> int:
        """Index of the bar containing ``tick`` (0-based bar number)."""
        return max(0, int(np.searchsorted(self.ticks, tick, side="right")) - 1)


def grid_lines(
    bars_grid: BarGrid, g: RollGeometry, step_ticks: int
) -> tuple[list[float], list[float], list[float]]:
    """x positions of bar lines, beat lines and snap-grid lines visible in ``g``."""
    t0, t1 = g.visible_ticks()
    i0 = bars_grid.index_at(t0)
    i1 = int(np.searchsorted(bars_grid.ticks, t1, side="right"))
    ticks = bars_grid.ticks[i0:i1]
    min_gap = 5.0
    bar_gap = 8.0
    bars: list[float] = []
    beats: list[float] = []
    subs: list[float] = []
    if len(ticks) == 0:
        return bars, beats, subs
    bar_px = float(bars_grid.bar_len[i0]) * g.px_per_tick
    every = 1 if bar_px >= bar_gap else int(np.ceil(bar_gap / max(bar_px, 1e-9)))
    keep = (np.arange(i0, i1) % every) == 0
    bars = ((ticks[keep] - g.scroll_tick) * g.px_per_tick).tolist()
    if bars_grid.beat_len[i0] * g.px_per_tick < min_gap:
        return bars, beats, subs
    for k in range(i0, i1):
        b, beat, n, bar_len = (
            int(bars_grid.ticks[k]),
            int(bars_grid.beat_len[k]),
            int(bars_grid.beats[k]),
            int(bars_grid.bar_len[k]),
        )
        beats += [g.tick_to_x(b + j * beat) for j in range(1, n)]
        if 1 < step_ticks < beat and step_ticks * g.px_per_tick >= min_gap:
            subs += [g.tick_to_x(b + t) for t in range(step_ticks, bar_len, step_ticks) if t % beat]
    return bars, beats, subs


def paint_grid(
    p: QPainter, bars_grid: BarGrid, g: RollGeometry, step_ticks: int, colors: dict[str, QColor]
) -> None:
    """Bar, beat and grid lines as one-pixel columns (fillRect is the raster engine's fast path)."""
    bars, beats, subs = grid_lines(bars_grid, g, step_ticks)
    h = g.height
    for xs, key in ((subs, "sub"), (beats, "beat"), (bars, "bar")):
        colour = colors[key]
        for x in xs:
            p.fillRect(QRect(int(x), 0, 1, h), colour)


def note_rects(arr: NoteArrays, idx: np.ndarray, g: RollGeometry) -> list[QRectF]:
    """Rectangles for the notes ``idx`` of ``arr`` (at least 1 px wide)."""
    x0 = (arr.start[idx] - g.scroll_tick) * g.px_per_tick
    w = np.maximum((arr.end[idx] - arr.start[idx]) * g.px_per_tick, 1.0)
    y = (PITCHES - 1 - arr.pitch[idx]) * g.key_height - g.scroll_y
    h = max(1.0, g.key_height - (1 if g.key_height >= 4 else 0))
    return [QRectF(a, b, c, h) for a, b, c in zip(x0.tolist(), y.tolist(), w.tolist(), strict=True)]


def raster_notes(
    arr: NoteArrays, idx: np.ndarray, g: RollGeometry, argb: int
) -> tuple[QImage, QRectF] | None:
    """The notes ``idx`` rasterised at one image row per pitch and one column per pixel.

    Returns the image and the target rectangle to stretch it over (rows become ``key_height``
    tall), or None when nothing shows. Each note adds +1 at its first column and -1 after its
    last in its pitch's row; a cumulative sum along the rows gives the covered pixels.
    """
    if len(idx) == 0:
        return None
    W = g.width
    x0 = np.floor((arr.start[idx] - g.scroll_tick) * g.px_per_tick).astype(np.int64)
    x1 = np.maximum(np.ceil((arr.end[idx] - g.scroll_tick) * g.px_per_tick).astype(np.int64), x0 + 1)
    np.clip(x0, 0, W, out=x0)
    np.clip(x1, 0, W, out=x1)
    pitches = arr.pitch[idx]
    hi, lo = int(pitches.max()), int(pitches.min())
    rows = hi - lo + 1
    row = hi - pitches
    size = rows * (W + 1)
    diff = (
        np.bincount(row * (W + 1) + x0, minlength=size)[:size]
        - np.bincount(row * (W + 1) + x1, minlength=size)[:size]
    )
    cover = np.cumsum(diff.reshape(rows, W + 1), axis=1)[:, :W]
    pixels = np.where(cover > 0, np.uint32(argb), np.uint32(0)).astype(np.uint32)
    img = QImage(pixels.data, W, rows, W * 4, QImage.Format.Format_ARGB32_Premultiplied).copy()
    target = QRectF(0, g.pitch_to_y(hi), W, rows * g.key_height)
    return img, target


def premultiplied(c: QColor) -> int:
    """``c`` as a premultiplied ARGB32 integer."""
    a = c.alpha()
    r, gr, b = (c.red() * a) // 255, (c.green() * a) // 255, (c.blue() * a) // 255
    return (a << 24) | (r << 16) | (gr << 8) | b


VELOCITY_SHADES = 8


def velocity_shade(colour: QColor, velocity: int) -> QColor:
    """``colour`` paled toward white for soft notes: full at velocity 127, 60 % white near 0."""
    t = 0.6 * (1.0 - min(127, max(0, velocity)) / 127)
    return QColor(
        round(colour.red() + (255 - colour.red()) * t),
        round(colour.green() + (255 - colour.green()) * t),
        round(colour.blue() + (255 - colour.blue()) * t),
        colour.alpha(),
    )


def band_shade(colour: QColor, velocity: int) -> QColor:
    """The shade a note of ``velocity`` is painted in: one of :data:`VELOCITY_SHADES` bands."""
    band = min(127, max(0, velocity)) * VELOCITY_SHADES // 128
    return velocity_shade(colour, round((band + 0.5) * 128 / VELOCITY_SHADES))


def _shade_groups(arr: NoteArrays, idx: np.ndarray, fill: QColor) -> list[tuple[np.ndarray, QColor]]:
    """``idx`` split into velocity bands, each with its shade of ``fill``."""
    bands = arr.velocity[idx] * VELOCITY_SHADES // 128
    out = []
    for b in np.unique(bands).tolist():
        out.append((idx[bands == b], band_shade(fill, b * 128 // VELOCITY_SHADES)))
    return out


def paint_notes(
    p: QPainter,
    arr: NoteArrays,
    g: RollGeometry,
    fill: QColor,
    border: QColor | None,
    *,
    selected: Iterable[Note] = (),
    selected_fill: QColor | None = None,
    shade: bool = False,
) -> int:
    """Paint the visible notes of ``arr``; returns how many were visible.

    With ``shade`` the unselected notes are paler the softer they are (:func:`velocity_shade`).
    """
    t0, t1 = g.visible_ticks()
    lo, hi = g.visible_pitches()
    idx = arr.visible(t0, t1, lo, hi)
    if len(idx) == 0:
        return 0
    sel = set(selected)
    sel_mask = (
        np.fromiter((arr.notes[i] in sel for i in idx.tolist()), dtype=bool, count=len(idx)) if sel else None
    )
    plain = idx if sel_mask is None else idx[~sel_mask]
    groups = _shade_groups(arr, plain, fill) if shade else [(plain, fill)]
    if sel_mask is not None and selected_fill is not None:
        groups.append((idx[sel_mask], selected_fill))
    if len(idx) > RECT_LIMIT:
        for group, colour in groups:
            out = raster_notes(arr, group, g, premultiplied(colour))
            if out is not None:
                p.drawImage(out[1], out[0])
        return len(idx)
    p.setPen(QPen(border, 1) if border is not None and g.key_height >= 4 else Qt.PenStyle.NoPen)
    for group, colour in groups:
        if len(group):
            p.setBrush(colour)
            p.drawRects(note_rects(arr, group, g))
    return len(idx)
