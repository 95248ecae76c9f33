"""The roll's pure pixel mapping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from musicgen_app.gui.piano_roll.geometry import RollGeometry, snap_ticks


@given(
    st.floats(1e-3, 3.0),
    st.floats(0, 1e6),
    st.floats(0, 1e6),
)
def test_tick_x_round_trip(px_per_tick: float, scroll: float, tick: float) -> None:
    g = RollGeometry(px_per_tick=px_per_tick, scroll_tick=scroll)
    assert g.x_to_tick(g.tick_to_x(tick)) == pytest.approx(tick, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("key_height", [1.0, 4.5, 10.0, 24.0])
def test_every_pitch_row_maps_back_to_its_pitch(key_height: float) -> None:
    g = RollGeometry(key_height=key_height, scroll_y=37.0)
    for pitch in range(128):
        top = g.pitch_to_y(pitch)
        assert g.y_to_pitch(top + key_height / 2) == pitch
    assert g.pitch_to_y(127) < g.pitch_to_y(0)  # high notes on top


def test_zoom_keeps_the_anchor_tick_under_the_mouse() -> None:
    g = RollGeometry(px_per_tick=0.1, scroll_tick=1000, width=800)
    before = g.x_to_tick(300)
    g.zoom_x(2.0, 300)
    assert g.px_per_tick == pytest.approx(0.2)
    assert g.x_to_tick(300) == pytest.approx(before)
    g = RollGeometry(key_height=10, scroll_y=400, height=500)
    pitch = g.y_to_pitch(250)
    g.zoom_y(1.5, 250)
    assert g.y_to_pitch(250) == pitch


def test_show_ticks_and_pitches_fill_the_view() -> None:
    g = RollGeometry(width=1000, height=600)
    g.show_ticks(1920, 1920 + 8 * 1920)
    assert g.tick_to_x(1920) == pytest.approx(0)
    assert g.tick_to_x(1920 + 8 * 1920) == pytest.approx(1000)
    g.show_pitches(48, 72)
    lo, hi = g.visible_pitches()
    assert lo <= 48 and hi >= 72


def test_snap_grid_steps() -> None:
    assert snap_ticks("1/4", 480) == 480
    assert snap_ticks("1/16", 480) == 120
    assert snap_ticks("1/32", 480) == 60
    assert snap_ticks("1/8T", 480) == 160
    assert snap_ticks("off", 480) == 1
    g = RollGeometry()
    assert g.snap(130, 120) == 120
    assert g.snap(190, 120) == 240
    assert g.snap(239, 120, mode="floor") == 120
    assert g.snap(-50, 120) == 0
