# ruff: noqa: E501  (hypothesis strategies read best one per line)
"""Any song MIDI can hold exports and imports back identically (hypothesis-generated songs); any
song at all exports and imports back identically or is refused with a message."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mido.midifiles.meta import _key_signature_encode

from musicgen_app.core import midi_io
from musicgen_app.core.chords import QUALITIES, Chord, ChordChange
from musicgen_app.core.midi_io import (
    SPLITTABLE_META,
    _conductor_last,
    _own_last,
    _split_bytes,
    midi_bytes,
    read_midi,
)
from musicgen_app.core.project import song_from_dict, song_to_dict
from musicgen_app.core.song import (
    ControlEvent,
    KeySignature,
    Marker,
    MetaEvent,
    Note,
    Song,
    TempoChange,
    TimeSignature,
    Track,
)
from musicgen_app.errors import MidiExportError

from .malformed import CASES

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
    chord = st.one_of(
        st.none(),
        st.builds(
            Chord,
            st.integers(0, 11),
            st.sampled_from(sorted(QUALITIES)),
            st.one_of(st.none(), st.integers(0, 11)),
        ),
    )
    chords = _unique_ticks(draw(st.lists(st.builds(ChordChange, TICKS, chord), max_size=4)))
    return Song(
        resolution=draw(st.sampled_from([24, 96, 480, 960, 1234, 32767])),
        tracks=draw(st.lists(tracks(), max_size=4)),
        tempos=tempos,
        time_signatures=meters,
        key_signatures=keys,
        markers=markers,
        title=draw(TEXT),
        chords=chords,
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


# -- every song the app exports, it re-imports identically, or export refuses it with a message ---
# The caps are lowered (for reader and writer alike) so that generated songs reach each of them.
SMALL_CAPS = {
    "MAX_MESSAGE_BYTES": 40,
    "MAX_EVENTS": 60,
    "MAX_FILE_BYTES": 600,
    "MAX_SONG_SECONDS": 30,
}
META_KIND = st.sampled_from(["text", "lyrics", "copyright", "cue_marker", "instrument_name", "sysex"])


def _meta_event(tick: int, kind: str, data: bytes) -> MetaEvent:
    return MetaEvent(tick, kind, bytes(b & 0x7F for b in data) if kind == "sysex" else data)


@st.composite
def any_songs(draw: st.DrawFn) -> Song:
    """Songs as the app may hold them: within MIDI's ranges, but of any size, length, text length
    and meter, with kept meta events and track ends."""
    song = draw(songs())
    # mostly values MIDI holds, sometimes one the reader would drop
    beats = st.sampled_from([*range(1, 13), 255, 0, 256])
    beat = st.sampled_from([1, 2, 4, 4, 8, 8, 16, 128, 3, 256, 2**20])
    song.time_signatures = _unique_ticks(
        draw(st.lists(st.builds(TimeSignature, TICKS, beats, beat), max_size=3))
    )
    tempo = st.one_of(*[st.integers(100_000, 2_000_000)] * 6, st.sampled_from([0, 1, 0xFFFFFF, 0x1000000]))
    song.tempos = _unique_ticks(draw(st.lists(st.builds(TempoChange, TICKS, tempo), max_size=3)))
    data = st.one_of(*[st.binary(max_size=30)] * 5, st.binary(min_size=41, max_size=100))  # some too long
    meta = st.builds(_meta_event, TICKS, META_KIND, data)
    song.meta = sorted(draw(st.lists(meta, max_size=3)), key=lambda m: m.tick)
    for track in song.tracks:
        track.meta = sorted(draw(st.lists(meta, max_size=3)), key=lambda m: m.tick)
        if track.meta and not track.notes:  # a track of meta events only moves to a free channel
            track.notes = [Note(0, 60, 1, 64, track.channel)]
        if draw(st.booleans()):
            track.end_of_track = _own_last(track) + draw(st.integers(1, 5_000))
    if draw(st.booleans()):
        song.end_of_track = _conductor_last(song) + draw(st.integers(1, 5_000))
    return song


def _as_written(events: list[MetaEvent]) -> list[MetaEvent]:
    """The kept events as import gives them back: a too-long text or lyric in pieces, in order."""
    out = []
    for m in sorted(events, key=lambda e: e.tick):
        if m.kind in SPLITTABLE_META and len(m.data) > midi_io.MAX_MESSAGE_BYTES:
            pieces = _split_bytes(m.data, midi_io.MAX_MESSAGE_BYTES)
            assert b"".join(pieces) == m.data and all(0 < len(p) <= midi_io.MAX_MESSAGE_BYTES for p in pieces)
            out += [MetaEvent(m.tick, m.kind, p) for p in pieces]
        else:
            out.append(m)
    return out


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(any_songs())
def test_every_song_exports_and_reads_back_identically_or_is_refused(song: Song) -> None:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in SMALL_CAPS.items():
            mp.setattr(midi_io, name, value)
        try:
            data = midi_bytes(song)
        except MidiExportError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        result = read_midi(data)  # never a MidiImportError: what we write, we can read
        expected = song.copy()
        expected.meta = _as_written(song.meta)
        for track in expected.tracks:
            track.meta = _as_written(track.meta)
        assert result.repairs == [] and result.notices == []
        assert result.song == expected
        assert song_from_dict(song_to_dict(song)) == song


@pytest.mark.parametrize(
    ("name", "data"),
    [(c[0], c[1]) for c in CASES if c[2] != "refuse"],
    ids=[c[0] for c in CASES if c[2] != "refuse"],
)
def test_every_malformed_file_that_imports_reexports_identically(name: str, data: bytes) -> None:
    song = read_midi(data).song
    again = read_midi(midi_bytes(song))
    assert again.repairs == [] and again.notices == [] and again.song == song, name
    assert read_midi(midi_bytes(again.song)).song == song
