# ruff: noqa: E501  (hypothesis strategies read best one per line)
"""Any song MIDI can hold exports and imports back identically (hypothesis-generated songs)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mido.midifiles.meta import _key_signature_encode

from musicgen_app.core.midi_io import midi_bytes, read_midi
from musicgen_app.core.project import song_from_dict, song_to_dict
from musicgen_app.core.song import (
    ControlEvent,
    KeySignature,
    Marker,
    Note,
    Song,
    TempoChange,
    TimeSignature,
    Track,
)

TICKS = st.integers(0, 20_000)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
KEYS = sorted(_key_signature_encode)


def _unique_ticks(items: list) -> list:
    by_tick = {}
    for item in items:
        by_tick.setdefault(item.tick, item)
    return sorted(by_tick.values(), key=lambda e: e.tick)


def _playable(notes: list[Note]) -> list[Note]:
    """Notes as MIDI can say them: per key no two starts at once, and no note inside another of the
    same key (a note-off always closes the oldest sounding note of its key)."""
    out: list[Note] = []
    last: dict[int, Note] = {}
    for n in sorted(notes):
        prev = last.get(n.pitch)
        if prev is not None and prev.start_tick == n.start_tick:
            continue
        if prev is not None and n.end_tick < prev.end_tick:
            n = Note(n.start_tick, n.pitch, prev.end_tick, n.velocity, n.channel)
        last[n.pitch] = n
        out.append(n)
    return sorted(out)


@st.composite
def tracks(draw: st.DrawFn) -> Track:
    channel = draw(st.integers(0, 15))
    raw = draw(
        st.lists(
            st.tuples(TICKS, st.integers(0, 2_000), st.integers(0, 127), st.integers(1, 127)), max_size=40
        )
    )
    notes = _playable([Note(s, p, s + d, v, channel) for s, d, p, v in raw])
    control = st.one_of(
        st.builds(lambda t, n, v: ControlEvent(t, "control_change", n, v, channel), TICKS, st.integers(0, 127), st.integers(0, 127)),
        st.builds(lambda t, v: ControlEvent(t, "pitchwheel", 0, v, channel), TICKS, st.integers(-8192, 8191)),
        st.builds(lambda t, v: ControlEvent(t, "aftertouch", 0, v, channel), TICKS, st.integers(0, 127)),
        st.builds(lambda t, n, v: ControlEvent(t, "polytouch", n, v, channel), TICKS, st.integers(0, 127), st.integers(0, 127)),
        st.builds(lambda t, n: ControlEvent(t, "program_change", n, 0, channel), TICKS, st.integers(0, 127)),
    )  # fmt: skip
    controls = sorted(draw(st.lists(control, max_size=12)), key=lambda c: c.tick)
    return Track(draw(TEXT), draw(st.integers(0, 127)), channel, channel == 9, notes, controls)


@st.composite
def songs(draw: st.DrawFn) -> Song:
    tempos = _unique_ticks(
        draw(st.lists(st.builds(TempoChange, TICKS, st.integers(1, 2_000_000)), max_size=5))
    )
    meters = _unique_ticks(
        draw(st.lists(st.builds(TimeSignature, TICKS, st.integers(1, 32), st.sampled_from([1, 2, 4, 8, 16, 32])), max_size=4))
    )  # fmt: skip
    keys = _unique_ticks(draw(st.lists(st.builds(KeySignature, TICKS, st.sampled_from(KEYS)), max_size=3)))
    markers = sorted(draw(st.lists(st.builds(Marker, TICKS, TEXT), max_size=3)), key=lambda m: m.tick)
    return Song(
        resolution=draw(st.sampled_from([24, 96, 480, 960, 1234, 32767])),
        tracks=draw(st.lists(tracks(), max_size=4)),
        tempos=tempos,
        time_signatures=meters,
        key_signatures=keys,
        markers=markers,
        title=draw(TEXT),
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(songs())
def test_export_import_is_identical(song: Song) -> None:
    result = read_midi(midi_bytes(song))
    assert result.repairs == [] and result.notices == []
    assert result.song == song
    assert song_from_dict(song_to_dict(song)) == song
