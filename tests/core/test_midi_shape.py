"""MIDI files keep their shape: trailing silence (the end-of-track time) survives import, export,
`musicgen convert` and project files."""

from __future__ import annotations

import io
from pathlib import Path

import mido
import pytest

from musicgen_app.cli.main import main
from musicgen_app.core.midi_io import midi_bytes, read_midi, song_to_mido
from musicgen_app.core.project import load_project, song_from_dict, song_to_dict
from musicgen_app.core.song import Note, Song, Track, rescale


def _silent_tail_file(path: Path, *, notes: bool = True) -> Path:
    """120 BPM, 480 ticks per quarter: a half-second note, then silence up to 5 s (4,800 ticks)."""
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000)])
    conductor.append(mido.MetaMessage("end_of_track", time=4_800))
    mf.tracks.append(conductor)
    if notes:
        track = mido.MidiTrack([mido.MetaMessage("track_name", name="Piano")])
        track.append(mido.Message("note_on", note=60, velocity=90))
        track.append(mido.Message("note_off", note=60, time=480))
        track.append(mido.MetaMessage("end_of_track", time=4_320))
        mf.tracks.append(track)
    mf.save(path)
    return path


@pytest.mark.parametrize("notes", [True, False])
def test_five_seconds_of_trailing_silence_stay_five_seconds(tmp_path: Path, notes: bool) -> None:
    src = _silent_tail_file(tmp_path / "in.mid", notes=notes)
    assert mido.MidiFile(src).length == pytest.approx(5.0)
    song = read_midi(src).song
    assert song.length_ticks == 4_800 and song.tick_to_seconds(song.length_ticks) == pytest.approx(5.0)
    # through convert, MIDI to MIDI
    assert main(["convert", str(src), str(tmp_path / "a.mid")]) == 0
    assert mido.MidiFile(tmp_path / "a.mid").length == pytest.approx(5.0)
    # through a project and back to MIDI
    assert main(["convert", str(src), str(tmp_path / "p.mgproj")]) == 0
    assert load_project(tmp_path / "p.mgproj").song == song
    assert main(["convert", str(tmp_path / "p.mgproj"), str(tmp_path / "b.mid")]) == 0
    again = mido.MidiFile(tmp_path / "b.mid")
    assert again.length == pytest.approx(5.0)
    assert (tmp_path / "b.mid").read_bytes() == (tmp_path / "a.mid").read_bytes()
    assert read_midi(tmp_path / "b.mid").song == song
    # mido's own file of the song ends where ours does
    assert song_to_mido(song).length == pytest.approx(5.0)


def test_each_track_keeps_its_own_end() -> None:
    song = Song(
        tracks=[
            Track("a", notes=[Note(0, 60, 479)], end_of_track=480),  # one tick after its last note
            Track("b", notes=[Note(0, 64, 960)]),  # ends at its last note
            Track("c", channel=1, notes=[Note(0, 67, 100, 100, 1)], end_of_track=1_920),
        ],
        end_of_track=3_840,
    )
    back = read_midi(midi_bytes(song))
    assert back.repairs == [] and back.song == song
    ends = []
    for track in mido.MidiFile(file=io.BytesIO(midi_bytes(song))).tracks:
        tick = sum(msg.time for msg in track)
        ends.append(tick)
    assert ends == [3_840, 480, 960, 1_920]
    assert song_from_dict(song_to_dict(song)) == song
    assert "end_of_track" not in song_to_dict(song)["tracks"][1]  # only where there is one
    assert rescale(song, 960).tracks[0].end_of_track == 960


def test_an_end_before_the_last_event_is_written_at_the_last_event() -> None:
    # e.g. notes were added after the imported file's end: the file ends with the last note
    song = Song(tracks=[Track("a", notes=[Note(0, 60, 2_000)], end_of_track=480)])
    back = read_midi(midi_bytes(song)).song
    assert back.tracks[0].notes == song.tracks[0].notes and back.tracks[0].end_of_track is None


def test_a_silence_past_four_hours_is_cut_there_as_a_repair(tmp_path: Path) -> None:
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    track = mido.MidiTrack(
        [mido.Message("note_on", note=60, velocity=90), mido.Message("note_off", note=60, time=480)]
    )
    track.append(mido.MetaMessage("end_of_track", time=0x0FFFFFFF))
    mf.tracks.append(track)
    mf.save(tmp_path / "long.mid")
    result = read_midi(tmp_path / "long.mid")
    assert result.repairs == [
        "the silence at the end of 1 track ran past 4 hours and was cut there (bar 7,201)"
    ]
    song = result.song
    assert song.tick_to_seconds(song.length_ticks) == pytest.approx(4 * 3600)
    assert read_midi(midi_bytes(song)).song == song


def _meter_track(*meters: tuple[int, int, int], notes: bool = False) -> mido.MidiTrack:
    track = mido.MidiTrack()
    last = 0
    for tick, num, den in meters:
        track.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=tick - last))
        last = tick
    if notes:
        track.append(mido.Message("note_on", note=60, velocity=90, time=0))
        track.append(mido.Message("note_off", note=60, time=480))
    return track


def test_tracks_that_disagree_about_the_meter_are_reported(tmp_path: Path) -> None:
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    mf.tracks.append(_meter_track((0, 4, 4), (3 * 1920, 3, 4)))  # 3/4 from bar 4
    mf.tracks.append(_meter_track((0, 4, 4), (2 * 1920, 2, 4), notes=True))  # 2/4 from bar 3
    mf.save(tmp_path / "a.mid")
    result = read_midi(tmp_path / "a.mid")
    assert result.repairs == [
        "tracks 1 and 2 disagree about the meter from bar 3; their time signatures were merged into one "
        "meter for the whole song"
    ]
    assert [(t.tick, t.numerator) for t in result.song.time_signatures] == [(0, 4), (3840, 2), (5760, 3)]
    # the merged map is one map now: it exports and reads back without a word
    again = read_midi(midi_bytes(result.song))
    assert again.repairs == [] and again.song == result.song


def test_the_same_meter_in_every_track_is_no_news(tmp_path: Path) -> None:
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    mf.tracks.append(_meter_track((0, 3, 4)))
    mf.tracks.append(_meter_track((0, 3, 4), notes=True))
    mf.tracks.append(_meter_track((0, 3, 4), notes=True))
    mf.save(tmp_path / "a.mid")
    assert read_midi(tmp_path / "a.mid").repairs == []
