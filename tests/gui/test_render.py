"""Culling and the zoomed-out rasteriser against brute force; painting many thousands of notes
(PySide6 6.12.0 crashed after a few thousand drawRect calls: this must paint and stay alive)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtGui import QColor

from musicgen_app.core.song import Note, Song, Track
from musicgen_app.gui.document import Document
from musicgen_app.gui.piano_roll import render
from musicgen_app.gui.piano_roll.geometry import RollGeometry
from musicgen_app.gui.piano_roll.widget import COLORS, PianoRollView

notes_st = st.lists(
    st.builds(
        lambda s, d, p: Note(s, p, s + d, 80),
        st.integers(0, 20_000),
        st.integers(1, 3000),
        st.integers(0, 127),
    ),
    max_size=200,
)


@given(notes_st, st.integers(0, 20_000), st.integers(1, 10_000), st.integers(0, 127), st.integers(0, 127))
@settings(max_examples=150, deadline=None)
def test_visible_is_exactly_the_overlapping_notes(notes, t0, span, pa, pb) -> None:
    arr = render.NoteArrays(sorted(notes))
    lo, hi = min(pa, pb), max(pa, pb)
    got = sorted(arr.notes[i] for i in arr.visible(t0, t0 + span, lo, hi))
    want = sorted(n for n in notes if n.end_tick > t0 and n.start_tick <= t0 + span and lo <= n.pitch <= hi)
    assert got == want


def test_raster_covers_exactly_the_note_pixels(qapp) -> None:
    g = RollGeometry(px_per_tick=0.01, key_height=3, scroll_tick=0, scroll_y=0, width=200, height=384)
    notes = [Note(0, 127, 1000, 80), Note(5000, 120, 5050, 80), Note(19_000, 0, 25_000, 80)]
    arr = render.NoteArrays(notes)
    img, target = render.raster_notes(arr, np.arange(3), g, render.premultiplied(QColor(255, 0, 0)))
    assert (img.width(), img.height()) == (200, 128)  # one row per pitch from 127 down to 0
    assert target.top() == pytest.approx(g.pitch_to_y(127))
    assert target.height() == pytest.approx(128 * 3)
    red = QColor(255, 0, 0).rgba()
    assert img.pixel(0, 0) == red and img.pixel(9, 0) == red and img.pixel(10, 0) != red
    assert img.pixel(50, 7) == red  # a note narrower than a pixel still shows
    assert img.pixel(190, 127) == red and img.pixel(199, 127) == red  # clipped at the right edge
    assert img.pixel(100, 60) != red


def _big_song(n: int) -> Song:
    rng = random.Random(7)
    notes, t = [], 0
    for _ in range(n):
        d = rng.choice([120, 240, 480])
        notes.append(Note(t, rng.randint(50, 85), t + d, rng.randint(40, 120)))
        t += d
    return Song(
        tracks=[
            Track(name="many", notes=notes),
            Track(name="other", notes=[n.moved(0, -12) for n in notes[:3000]]),
        ]
    )


@pytest.mark.parametrize("view", ["zoomed_in", "zoomed_out"])
def test_paints_twenty_thousand_notes(qtbot, view: str) -> None:
    song = _big_song(20_000)
    doc = Document(song)
    roll = PianoRollView(doc)
    qtbot.addWidget(roll)
    roll.resize(1200, 700)
    roll.show()
    qtbot.waitExposed(roll)
    if view == "zoomed_in":
        roll.show_bars(40, 8)
    else:
        roll.fit_song()
    doc.set_selection(song.tracks[0].notes[::50])
    for k in range(30):  # many repaints, each with a cache miss
        roll.geometry_model.scroll_y += 1 if k % 2 else -1
        image = roll.canvas.grab().toImage()
    visible = roll.canvas.last_paint_visible
    if view == "zoomed_out":
        assert visible == 20_000
    else:
        assert 0 < visible < 1000
    g = roll.geometry_model
    note = next(
        n
        for n in song.tracks[0].notes
        if g.tick_to_x(n.start_tick) > 10
        and n not in doc.selection
        and g.tick_to_x(n.end_tick) < g.width - 10
    )
    x = int((g.tick_to_x(note.start_tick) + g.tick_to_x(note.end_tick)) / 2)
    y = int(g.pitch_to_y(note.pitch) + g.key_height / 2)
    # notes are paler the softer they are (zoomed out, a pixel may show a neighbour's shade)
    shades = {render.band_shade(COLORS["note"], v).name() for v in range(1, 128)}
    assert image.pixelColor(x, y).name() in {*shades, COLORS["selected"].name()}
    # A row far from every note is background.
    empty_y = int(g.pitch_to_y(120) + g.key_height / 2)
    if 0 <= empty_y < g.height:
        assert image.pixelColor(x, empty_y).name() not in {*shades, COLORS["selected"].name()}


def test_bar_grid_grows_with_the_song_not_with_the_edits(qtbot) -> None:
    """Issue 9: every edit doubled the cached bar lines (15 edits: 2 million bars, 22 GB)."""
    from musicgen_app.core.edits import add_notes
    from musicgen_app.core.song import TimeSignature

    doc = Document(Song(tracks=[Track(name="t", notes=[Note(0, 60, 480, 90)])]))
    view = PianoRollView(doc)
    qtbot.addWidget(view)
    view.resize(1200, 600)
    view.fit_song()
    canvas = view.canvas
    first = canvas.bar_grid()
    bars = len(first.ticks)
    ticks = first.ticks
    for k in range(12):  # twelve edits, an undo and a redo: the bars stay as they were
        doc.apply(add_notes(0, [Note(480 * (k + 1), 62, 480 * (k + 2), 90)]), "Draw note")
        canvas.repaint()
        assert len(canvas.bar_grid().ticks) == bars
    doc.undo_stack.undo()
    doc.undo_stack.redo()
    assert canvas.bar_grid().ticks is ticks  # nothing rebuilt for edits that leave the meter alone
    visible_bars = view.geometry_model.visible_ticks()[1] / doc.song.ticks_per_bar()
    assert bars <= max(render.BarGrid.MIN_BARS, visible_bars) + 1
    # a new meter rebuilds them (3/4: a third more bars over the same span)
    doc.set_song_attr("time_signatures", [TimeSignature(0, 3, 4)], "Change meter")
    grid = canvas.bar_grid()
    assert int(grid.bar_len[0]) == 3 * 480 and len(grid.ticks) >= bars
    # scrolling far right covers the view, and a song as long as the view never needs more
    far = 480 * 4 * 500
    view.geometry_model.scroll_tick = far
    assert canvas.bar_grid().ticks[-1] >= view.geometry_model.visible_ticks()[1] - 3 * 480
