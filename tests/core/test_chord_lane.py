"""The song's chord lane: edits with undo, project files, MIDI export and import (markers)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import mido
import pytest

from musicgen_app.core.chords import (
    Chord,
    ChordChange,
    ChordSpan,
    changes_from_spans,
    chords_for_bars,
    parse_chord,
    parse_progression,
    spans_from_changes,
)
from musicgen_app.core.edits import apply_edit, delete_chords, replace_chords, set_chord
from musicgen_app.core.midi_io import CHORD_MARKER_PREFIX, midi_bytes, read_midi
from musicgen_app.core.project import Project, load_project, project_from_json, save_project
from musicgen_app.core.song import Marker, Note, Song, Track
from musicgen_app.errors import EditError, ProjectError


def _song() -> Song:
    return Song(tracks=[Track("melody", notes=[Note(i * 480, 60 + i % 5, i * 480 + 400) for i in range(16)])])


def _chord(text: str) -> Chord | None:
    return parse_chord(text)


def test_edits_type_replace_delete_and_undo() -> None:
    song = _song()
    undo = [apply_edit(song, set_chord(song, 0, _chord("C")))]
    undo.append(apply_edit(song, set_chord(song, 1920, _chord("Am7"))))
    undo.append(apply_edit(song, set_chord(song, 1920, _chord("F/A"))))  # replaces the chord there
    assert [c.symbol for c in song.chords] == ["C", "F/A"]
    undo.append(apply_edit(song, delete_chords([song.chords[0]])))
    assert [c.symbol for c in song.chords] == ["F/A"]
    for inverse in reversed(undo):
        apply_edit(song, inverse)
    assert song.chords == []
    with pytest.raises(EditError, match="not on the chord lane"):
        apply_edit(song, delete_chords([ChordChange(5, None)]))
    with pytest.raises(EditError, match="before the beginning"):
        apply_edit(song, set_chord(song, -1, _chord("C")))


def test_replace_range_is_one_step() -> None:
    song = _song()
    apply_edit(song, set_chord(song, 0, _chord("C")))
    apply_edit(song, set_chord(song, 7680, _chord("G")))
    new = [ChordChange(0, _chord("Am")), ChordChange(1920, _chord("F")), ChordChange(9000, _chord("E"))]
    inverse = apply_edit(song, replace_chords(song, 0, 3840, new))
    assert [c.symbol for c in song.chords] == ["Am", "F", "G"]  # outside the range untouched
    apply_edit(song, inverse)
    assert [c.symbol for c in song.chords] == ["C", "G"]


def test_spans_and_changes() -> None:
    changes = [ChordChange(0, _chord("C")), ChordChange(960, None), ChordChange(1920, _chord("G"))]
    spans = spans_from_changes(changes, 2400)
    c, g = _chord("C"), _chord("G")
    assert spans == [ChordSpan(0, 960, c), ChordSpan(960, 1920, None), ChordSpan(1920, 2400, g)]
    assert changes_from_spans(spans) == changes
    gap = [ChordSpan(0, 100, _chord("C")), ChordSpan(200, 300, _chord("C"))]
    assert [c.symbol for c in changes_from_spans(gap)] == ["C", "N.C.", "C"]
    bars = chords_for_bars(parse_progression("C | G Am"), [0, 1920, 3840, 5760, 7680])
    assert [(s.start_tick, s.chord.symbol if s.chord else None) for s in bars] == [
        (0, "C"),
        (1920, "G"),
        (3840, "Am"),
        (5760, "C"),
    ]


def test_project_keeps_the_lane_and_old_projects_open(tmp_path: Path) -> None:
    song = _song()
    for tick, text in [(0, "C"), (960, "N.C."), (1920, "Bbmaj7/D")]:
        apply_edit(song, set_chord(song, tick, _chord(text)))
    path = tmp_path / "s.mgproj"
    save_project(Project(song), path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["song"]["chords"] == [[0, "C"], [960, "N.C."], [1920, "Bbmaj7/D"]]
    assert load_project(path).song == song
    del doc["song"]["chords"]
    doc["format_version"] = 2  # before the chord lane
    old = project_from_json(json.dumps(doc)).song
    assert old.chords == [] and old.tracks == song.tracks
    doc["format_version"] = 3
    doc["song"]["chords"] = [[0, "H7"]]
    with pytest.raises(ProjectError, match="chord 1"):
        project_from_json(json.dumps(doc))


def test_midi_export_writes_markers_and_reads_them_back_exactly(tmp_path: Path) -> None:
    song = _song()
    song.markers = [Marker(0, "Verse"), Marker(3840, "Chorus")]
    for tick, text in [(0, "C"), (960, "Am7"), (1920, "N.C."), (3840, "F/A")]:
        apply_edit(song, set_chord(song, tick, _chord(text)))
    data = midi_bytes(song)
    path = tmp_path / "c.mid"
    path.write_bytes(data)
    conductor = mido.MidiFile(path).tracks[0]
    texts = [m.text for m in conductor if m.type == "marker"]
    assert texts == ["Chord: C", "Verse", "Chord: Am7", "Chord: N.C.", "Chord: F/A", "Chorus"]
    back = read_midi(data).song
    assert back == song
    assert midi_bytes(back) == data


def test_markers_of_other_programs_stay_markers() -> None:
    mf = mido.MidiFile(ticks_per_beat=480)
    conductor = mido.MidiTrack()
    for text in ["Verse", "A", "C", CHORD_MARKER_PREFIX + "Amin7", CHORD_MARKER_PREFIX + "Am7"]:
        conductor.append(mido.MetaMessage("marker", text=text, time=480))
    mf.tracks.append(conductor)
    note = [mido.Message("note_on", note=60, time=0), mido.Message("note_off", note=60, time=480)]
    mf.tracks.append(mido.MidiTrack(note))
    buf = io.BytesIO()
    mf.save(file=buf)
    song = read_midi(buf.getvalue()).song
    assert [m.text for m in song.markers] == ["Verse", "A", "C", "Chord: Amin7"]
    assert song.chords == [ChordChange(2400, _chord("Am7"))]


def test_inspect_lists_the_chords(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from musicgen_app.cli.main import main

    song = _song()
    for tick, text in [(0, "C"), (1920, "Am7")]:
        apply_edit(song, set_chord(song, tick, _chord(text)))
    path = tmp_path / "c.mid"
    path.write_bytes(midi_bytes(song))
    assert main(["inspect", str(path)]) == 0
    assert "chords: C at 1.1, Am7 at 2.1" in capsys.readouterr().out
