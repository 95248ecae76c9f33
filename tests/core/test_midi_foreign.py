"""Files written by other programs (music21, mido, pretty_midi) import as those programs meant them
and round-trip: our export reads back identically in pretty_midi, and in our own importer."""

from __future__ import annotations

from pathlib import Path

import mido
import pretty_midi
import pytest

from musicgen_app.core.midi_io import midi_bytes, read_midi, write_midi
from musicgen_app.core.song import Song

from .pm_view import pm_notes, pm_view

MUSIC21_PIECES = ["bach/bwv66.6", "bach/bwv7.7", "corelli/opus3no1/1grave", "schoenberg/opus19/movement2"]


def _our_notes(song: Song) -> list[tuple[int, float, float, int, bool]]:
    tm = song.tempo_map()
    seconds = tm.tick_to_seconds
    return sorted(
        (n.pitch, round(seconds(n.start_tick), 6), round(seconds(n.end_tick), 6), n.velocity, t.is_drum)
        for t in song.tracks
        for n in t.notes
        if n.end_tick > n.start_tick  # pretty_midi drops zero-length notes
    )


def _assert_round_trip(path: Path, tmp_path: Path) -> Song:
    """Import, compare with pretty_midi's reading, export, compare again; returns the song."""
    result = read_midi(path)
    assert result.repairs == [], result.repairs
    song = result.song
    assert song.note_count > 0
    assert _our_notes(song) == pm_notes(path)
    out = tmp_path / f"{path.stem}.out.mid"
    write_midi(song, out)
    assert pm_view(out) == pm_view(path)
    assert read_midi(out).song == song
    return song


@pytest.fixture(scope="module")
def music21_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from music21 import corpus

    folder = tmp_path_factory.mktemp("music21")
    files = {}
    for name in MUSIC21_PIECES:
        path = folder / (name.replace("/", "_") + ".mid")
        corpus.parse(name).write("midi", fp=str(path))
        files[name] = path
    return files


@pytest.mark.slow
@pytest.mark.parametrize("piece", MUSIC21_PIECES)
def test_music21_corpus_exports(piece: str, music21_files: dict[str, Path], tmp_path: Path) -> None:
    from music21 import corpus

    song = _assert_round_trip(music21_files[piece], tmp_path)
    score = corpus.parse(piece).stripTies()  # a tied pair of notes sounds (and is written) as one
    pitches_m21 = sorted(p.midi for n in score.flatten().notes for p in n.pitches)
    assert sorted(n.pitch for t in song.tracks for n in t.notes) == pitches_m21


def test_pretty_midi_written_file(tmp_path: Path) -> None:
    pm = pretty_midi.PrettyMIDI(resolution=384, initial_tempo=100)
    piano = pretty_midi.Instrument(program=4, name="E-Piano")
    for i in range(40):
        start = i * 0.25
        piano.notes.append(
            pretty_midi.Note(velocity=20 + 2 * i, pitch=48 + i % 24, start=start, end=start + 0.6)
        )
    piano.notes.append(pretty_midi.Note(velocity=127, pitch=127, start=1.0, end=2.0))
    piano.notes.append(pretty_midi.Note(velocity=1, pitch=0, start=1.0, end=2.0))
    piano.control_changes += [pretty_midi.ControlChange(64, 127, 0.5), pretty_midi.ControlChange(64, 0, 3.0)]
    piano.pitch_bends += [pretty_midi.PitchBend(-4096, 1.0), pretty_midi.PitchBend(0, 1.5)]
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="Kit")
    for i in range(16):
        drums.notes.append(pretty_midi.Note(velocity=90, pitch=36 + i % 3, start=i * 0.5, end=i * 0.5 + 0.1))
    pm.instruments += [piano, drums]
    pm.time_signature_changes += [pretty_midi.TimeSignature(4, 4, 0.0), pretty_midi.TimeSignature(6, 8, 4.8)]
    pm.key_signature_changes += [pretty_midi.KeySignature(3, 0.0)]
    path = tmp_path / "pm.mid"
    pm.write(str(path))
    song = _assert_round_trip(path, tmp_path)
    assert [(t.name, t.program, t.is_drum) for t in song.tracks] == [("E-Piano", 4, False), ("Kit", 0, True)]
    assert [t.channel for t in song.tracks] == [0, 9]
    assert [(ts.numerator, ts.denominator) for ts in song.time_signatures] == [(4, 4), (6, 8)]
    assert [k.key for k in song.key_signatures] == ["Eb"]  # pretty_midi key number 3


def test_mido_written_type0_with_running_status(tmp_path: Path) -> None:
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=750_000, time=0)])
    for i in range(50):
        channel = (0, 3, 9)[i % 3]
        if i == 10:
            track.append(mido.Message("program_change", channel=3, program=i, time=0))
        track.append(mido.Message("note_on", channel=channel, note=40 + i, velocity=60, time=5))
        track.append(mido.Message("note_on", channel=channel, note=40 + i, velocity=0, time=90))
        track.append(mido.Message("control_change", channel=channel, control=1, value=i, time=0))
    path = tmp_path / "type0.mid"
    mido.MidiFile(type=0, tracks=[track], ticks_per_beat=192).save(path)
    data = path.read_bytes()
    assert data.count(b"\x90") < 20  # mido used running status
    song = _assert_round_trip(path, tmp_path)
    assert [t.channel for t in song.tracks] == [0, 3, 9]
    assert read_midi(midi_bytes(song)).song == song
