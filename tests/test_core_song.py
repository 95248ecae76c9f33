"""Song model: tempo map, bars, resolution, and edits that undo exactly."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from musicgen_app.core import edits
from musicgen_app.core.song import (
    ControlEvent,
    Note,
    Song,
    TempoChange,
    TimeSignature,
    Track,
    lossless_resolution,
    rescale,
)
from musicgen_app.errors import EditError


def _song() -> Song:
    s = Song(resolution=480, tempos=[TempoChange(0, 500_000), TempoChange(1920, 1_000_000)])
    s.tracks.append(Track("lead", notes=[Note(0, 60, 480), Note(490, 64, 950, 90), Note(960, 67, 1920)]))
    return s


def test_tempo_map_piecewise() -> None:
    s = _song()
    assert s.tick_to_seconds(1920) == pytest.approx(2.0)
    assert s.tick_to_seconds(1920 + 480) == pytest.approx(3.0)
    assert s.seconds_to_tick(3.0) == pytest.approx(2400)


@given(st.floats(min_value=0, max_value=1e6))
def test_tempo_map_round_trip(tick: float) -> None:
    tm = _song().tempo_map()
    assert tm.seconds_to_tick(tm.tick_to_seconds(tick)) == pytest.approx(tick, rel=1e-9, abs=1e-6)


def test_bar_starts_follow_meter_changes() -> None:
    s = Song(time_signatures=[TimeSignature(0, 4, 4), TimeSignature(3840, 3, 4)])
    assert s.bar_starts(3840 + 1440 * 2) == [0, 1920, 3840, 5280, 6720]


def test_rescale_is_lossless_or_refuses() -> None:
    s = Song(resolution=96)
    s.tracks.append(Track(notes=[Note(1, 60, 7)]))
    with pytest.raises(ValueError):
        rescale(s, 480 // 7 * 7 + 1)  # 477 does not divide evenly
    r = lossless_resolution(s, 480)
    out = rescale(s, r)
    back = rescale(out, 96)
    assert back.tracks[0].notes == s.tracks[0].notes


@pytest.mark.parametrize(
    "make",
    [
        lambda s: edits.add_notes(0, [Note(100, 72, 200)]),
        lambda s: edits.delete_notes(0, s.tracks[0].notes[:2]),
        lambda s: edits.move_notes(0, s.tracks[0].notes[1:], 120, -3),
        lambda s: edits.resize_notes(0, s.tracks[0].notes, 60),
        lambda s: edits.resize_notes(0, s.tracks[0].notes, -10_000, from_start=True),
        lambda s: edits.transpose_notes(0, s.tracks[0].notes, 12),
        lambda s: edits.quantize_notes(0, s.tracks[0].notes, 240),
        lambda s: edits.add_controls(
            0, [ControlEvent(0, "control_change", 64, 127), ControlEvent(90, "pitchwheel", 0, -200)]
        ),
        lambda s: edits.CompoundEdit(
            (
                edits.add_notes(0, [Note(5, 50, 10)]),
                edits.add_controls(0, [ControlEvent(5, "control_change", 64, 0)]),
            )
        ),
    ],
)
def test_every_edit_undoes_exactly(make) -> None:  # type: ignore[no-untyped-def]
    s = _song()
    before = copy.deepcopy(s)
    inverse = edits.apply_edit(s, make(s))
    assert s != before
    redo = edits.apply_edit(s, inverse)
    assert s == before
    edits.apply_edit(s, redo)
    assert s != before


def test_failed_compound_edit_leaves_song_unchanged() -> None:
    s = _song()
    before = copy.deepcopy(s)
    bad = edits.CompoundEdit((edits.add_notes(0, [Note(5, 50, 10)]), edits.delete_notes(0, [Note(1, 1, 2)])))
    with pytest.raises(EditError):
        edits.apply_edit(s, bad)
    assert s == before
    for bad_control in (ControlEvent(-1, "control_change", 64, 0), ControlEvent(0, "sysex", 0, 0)):
        bad = edits.CompoundEdit(
            (edits.add_notes(0, [Note(5, 50, 10)]), edits.add_controls(0, [bad_control]))
        )
        with pytest.raises(EditError):
            edits.apply_edit(s, bad)
        assert s == before


def test_move_clamps_to_midi_range() -> None:
    e = edits.move_notes(0, [Note(0, 120, 10)], -50, 20)
    assert e.new[0].pitch == 127 and e.new[0].start_tick == 0
