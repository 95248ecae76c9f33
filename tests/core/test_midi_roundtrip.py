"""Import -> export -> import is exact, and an independent reader (pretty_midi) agrees."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from musicgen_app.core.midi_io import (
    MIDO_MAX_TRACK_BYTES,
    _events_from_mido,
    _events_tolerant,
    _Report,
    _split_chunks,
    midi_bytes,
    read_midi,
    song_to_mido,
    write_midi,
)
from musicgen_app.core.project import load_project
from musicgen_app.core.song import ControlEvent, Note, Song, TempoChange, TimeSignature, Track
from musicgen_app.errors import MidiExportError

from .pm_view import pm_view
from .samples import TEMPO_120, must_show_file, notes_body, smf


def musicgen_exe() -> str:
    """The installed `musicgen` console script of this environment."""
    exe = Path(sys.executable).with_name("musicgen")
    return str(exe) if exe.exists() else shutil.which("musicgen") or "musicgen"


def run_musicgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([musicgen_exe(), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def must_show(tmp_path: Path) -> Path:
    path = tmp_path / "a.mid"
    must_show_file().save(path)
    return path


def test_must_show_file_is_read_completely(must_show: Path) -> None:
    result = read_midi(must_show)
    song = result.song
    assert result.repairs == []
    assert song.title == "Must show"
    assert song.resolution == 480
    assert [(t.tick, t.us_per_quarter) for t in song.tempos] == [(0, 500_000), (3840, 400_000)]
    assert [(t.tick, t.numerator, t.denominator) for t in song.time_signatures] == [(0, 4, 4), (3840, 3, 4)]
    assert [(k.tick, k.key) for k in song.key_signatures] == [(0, "Eb")]
    assert [(m.tick, m.text) for m in song.markers] == [(3840, "B section")]
    piano, bass, drums = song.tracks
    assert (piano.name, piano.program, piano.channel, piano.is_drum) == ("Piano", 0, 0, False)
    assert (bass.name, bass.program, bass.channel) == ("Bass", 33, 1)
    assert (drums.name, drums.channel, drums.is_drum) == ("Drums", 9, True)
    assert {n.velocity for n in piano.notes} >= set(range(1, 128))
    assert {0, 127} <= {n.pitch for n in piano.notes}
    # the overlapping chords, closed by velocity-0 note-ons
    base = 128 * 60
    chord = sorted(
        (n.pitch, n.start_tick - base, n.end_tick - base) for n in piano.notes if n.start_tick >= base
    )
    assert (
        chord[:0] == [] and (60, 0, 960) in chord and (65, 480, 1440) in chord and (127, 1440, 1920) in chord
    )
    pedal = [(c.tick - base, c.value) for c in piano.controls if c.number == 64]
    assert pedal == [(0, 127), (1400, 0)]
    assert ControlEvent(3 * 480, "program_change", 34, 0, 1) in bass.controls
    assert [c.value for c in bass.controls if c.kind == "pitchwheel"] == [-8192, 8191, 0]
    assert len(drums.notes) == 64 and len(piano.notes) == 127 + 8 and len(bass.notes) == 16


def test_import_export_import_is_identical(must_show: Path, tmp_path: Path) -> None:
    first = read_midi(must_show).song
    out = tmp_path / "b.mid"
    write_midi(first, out)
    second = read_midi(out)
    assert second.repairs == []
    assert second.song == first
    # and a third generation writes the very same bytes
    assert midi_bytes(second.song) == out.read_bytes()


def test_song_to_mido_matches_midi_bytes(must_show: Path) -> None:
    song = read_midi(must_show).song
    buf = io.BytesIO()
    song_to_mido(song).save(file=buf)
    assert buf.getvalue() == midi_bytes(song)


def test_convert_mid_to_mid_with_the_musicgen_command(must_show: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.mid"
    r = run_musicgen("convert", str(must_show), str(out))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert pm_view(out) == pm_view(must_show)


def test_convert_mid_to_project_to_mid_with_the_musicgen_command(must_show: Path, tmp_path: Path) -> None:
    proj, out = tmp_path / "a.mgproj", tmp_path / "b.mid"
    assert run_musicgen("convert", str(must_show), str(proj)).returncode == 0
    assert load_project(proj).song == read_midi(must_show).song
    r = run_musicgen("convert", str(proj), str(out))
    assert r.returncode == 0, r.stderr
    assert pm_view(out) == pm_view(must_show)


def test_the_pm_view_comparison_can_fail(must_show: Path, tmp_path: Path) -> None:
    """The pretty_midi comparison notices a single changed velocity."""
    song = read_midi(must_show).song
    n = song.tracks[0].notes[5]
    song.tracks[0].notes[5] = Note(n.start_tick, n.pitch, n.end_tick, n.velocity % 127 + 1, n.channel)
    out = tmp_path / "c.mid"
    write_midi(song, out)
    assert pm_view(out) != pm_view(must_show)


@pytest.mark.parametrize("resolution", [24, 96, 220, 960, 15360])
def test_resolution_is_kept(resolution: int) -> None:
    song = Song(resolution=resolution, tempos=[TempoChange(0, 600_000), TempoChange(7, 300_001)])
    song.time_signatures = [TimeSignature(0, 7, 8), TimeSignature(resolution * 7 // 2, 5, 16)]
    song.tracks.append(Track("x", 5, 3, notes=[Note(0, 60, 1), Note(1, 61, resolution * 3 + 1, 127, 3)]))
    back = read_midi(midi_bytes(song))
    assert back.repairs == []
    for t in song.tracks:
        t.notes = [Note(n.start_tick, n.pitch, n.end_tick, n.velocity, 3) for n in t.notes]
    assert back.song == song


def test_zero_length_notes_and_equal_tick_order_survive() -> None:
    song = Song(tempos=[], time_signatures=[])
    notes = [Note(0, 60, 0), Note(0, 62, 480), Note(480, 60, 480), Note(480, 62, 960), Note(480, 64, 960)]
    notes += [Note(960, 65, 960), Note(960, 65, 960), Note(960, 64, 1000)]  # two identical zero-length notes
    song.tracks.append(Track("t", notes=sorted(notes)))
    again = read_midi(midi_bytes(song))
    assert again.repairs == [] and again.song == song


def test_unicode_names_round_trip() -> None:
    song = Song(title="Lied für Élise – 春", tempos=[], time_signatures=[])
    song.tracks.append(Track("Klavier ü 日本", notes=[Note(0, 60, 10)]))
    back = read_midi(midi_bytes(song)).song
    assert back.title == song.title and back.tracks[0].name == "Klavier ü 日本"


def test_format0_is_split_by_channel_and_exports_as_type1() -> None:
    body = b"\x00\xff\x03\x04Solo" + TEMPO_120 + notes_body((60, 100, 480), eot=False)
    body += notes_body((36, 90, 240), channel=9, eot=False) + notes_body((40, 80, 120), channel=2)
    result = read_midi(smf(body, fmt=0))
    song = result.song
    assert result.repairs == []
    assert song.title == "Solo"
    assert [(t.channel, t.is_drum, [n.pitch for n in t.notes]) for t in song.tracks] == [
        (0, False, [60]),
        (2, False, [40]),
        (9, True, [36]),
    ]
    again = read_midi(midi_bytes(song))
    assert again.midi_format == 1 and [t.notes for t in again.song.tracks] == [t.notes for t in song.tracks]


def test_format2_patterns_play_one_after_another() -> None:
    first = notes_body((60, 100, 480), (62, 100, 480))
    second = b"\x00\xff\x51\x03\x0f\x42\x40" + notes_body((64, 100, 480))
    result = read_midi(smf(first, second, fmt=2))
    starts = sorted(n.start_tick for t in result.song.tracks for n in t.notes)
    assert starts == [0, 480, 960]
    assert [(t.tick, t.us_per_quarter) for t in result.song.tempos] == [(960, 1_000_000)]
    assert any("format 2" in n for n in result.notices)


def _well_formed_chunks() -> list[bytes]:
    buf = io.BytesIO()
    must_show_file().save(file=buf)
    files = [buf.getvalue(), smf(TEMPO_120 + notes_body((60, 1, 1), (127, 127, 0x0FFFFFFF)))]
    rich = mido.MidiTrack(
        [
            mido.MetaMessage("track_name", name="x", time=0),
            mido.Message("polytouch", note=3, value=4, channel=5, time=3),
            mido.Message("aftertouch", value=9, channel=5, time=0),
            mido.MetaMessage("smpte_offset", time=1),
            mido.MetaMessage("sequencer_specific", data=(1, 2, 3), time=1),
            mido.MetaMessage("lyrics", text="la", time=1),
        ]
    )
    mf = mido.MidiFile(tracks=[rich])
    buf = io.BytesIO()
    mf.save(file=buf)
    files.append(buf.getvalue())
    chunks = []
    for data in files:
        chunks += _split_chunks(data, _Report(), _Report()).tracks
    return chunks


def test_tolerant_reader_reads_well_formed_tracks_exactly_like_mido() -> None:
    for body in _well_formed_chunks():
        fix = _Report()
        expected = _events_from_mido(body)
        assert expected is not None
        got = _events_tolerant(body, fix, 10**6)
        assert fix.sentences() == []
        assert [_comparable(e) for e in got] == [_comparable(e) for e in expected]


def _comparable(event: tuple) -> tuple:
    if event[1] == 0xFF:  # a meta message: compare its content, not its (unused) time field
        return (*event[:2], {k: v for k, v in event[2].dict().items() if k != "time"})
    return event


def test_large_tracks_take_the_fast_reader_and_agree() -> None:
    notes = [(i % 128, i % 127 + 1, 3) for i in range(MIDO_MAX_TRACK_BYTES // 6)]
    data = smf(notes_body(*notes))
    assert len(data) > MIDO_MAX_TRACK_BYTES
    song = read_midi(data).song
    assert [(n.pitch, n.velocity, n.duration_ticks) for n in song.tracks[0].notes] == notes
    assert read_midi(midi_bytes(song)).song == song


@pytest.mark.parametrize(
    ("song", "message"),
    [
        (Song(resolution=40_000), "ticks per quarter note"),
        (Song(tracks=[Track("t", notes=[Note(0, 60, 0x10000000)])]), "longer than a MIDI file can hold"),
        (Song(tracks=[Track("t", notes=[Note(0, 60, 10, 0)])]), "note MIDI cannot hold"),
        (Song(tracks=[Track("t", notes=[Note(0, 128, 10)])]), "note MIDI cannot hold"),
        (Song(tracks=[Track("t", channel=16)]), "channels 1 to 16"),
        (Song(tracks=[Track("t", program=128)]), "programs are 0 to 127"),
        (Song(tracks=[Track("t", controls=[ControlEvent(0, "control_change", 64, 200)])]), "cannot hold"),
        (Song(tracks=[Track("t", controls=[ControlEvent(0, "sysex", 0, 0)])]), "cannot hold"),
        (Song(time_signatures=[TimeSignature(0, 3, 5)]), "meter"),
        (Song(tempos=[TempoChange(-1, 500_000)]), "before its start"),
    ],
)
def test_export_refuses_what_midi_cannot_hold(song: Song, message: str) -> None:
    with pytest.raises(MidiExportError, match=message):
        midi_bytes(song)


def test_write_midi_replaces_a_file_whole_and_reports_failures(must_show: Path, tmp_path: Path) -> None:
    song = read_midi(must_show).song
    write_midi(song, must_show)  # over its own source
    assert read_midi(must_show).song == song
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mid"]  # no temporary file left
    with pytest.raises(MidiExportError, match="cannot write"):
        write_midi(song, tmp_path / "missing" / "b.mid")
