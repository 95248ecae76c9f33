# ruff: noqa: E501  (tables of songs read best one case per line)
"""What we write, we can read: export refuses (or splits, losing nothing) whatever import would
refuse or cut: file size, event count, text length, song length, meter, tempo, track count.

The caps live once in ``midi_io``; tests that would need gigabytes lower a cap for the reader and
the writer together (monkeypatch), which also shows that both use the same constant.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from musicgen_app.cli.main import main
from musicgen_app.core import midi_io
from musicgen_app.core.midi_io import MAX_MESSAGE_BYTES, midi_bytes, read_midi, tick_cap, write_midi
from musicgen_app.core.project import Project, save_project
from musicgen_app.core.song import (
    KeySignature,
    MetaEvent,
    Note,
    Song,
    TempoChange,
    TimeSignature,
    Track,
)
from musicgen_app.errors import MidiExportError, MidiImportError


def _melody(n: int, step: int = 240) -> list[Note]:
    return [Note(i * step, 60 + i % 12, i * step + step // 2, 90) for i in range(n)]


def test_a_two_megabyte_lyric_is_split_and_no_note_is_lost(tmp_path: Path) -> None:
    lyric = ("la-la " * 400_000).encode("utf-8")  # 2.4 MB, one event
    song = Song(tracks=[Track("Voice", notes=_melody(180), meta=[MetaEvent(0, "lyrics", lyric)])])
    notes = write_midi(song, tmp_path / "a.mid")
    assert notes and "written in pieces" in notes[0] and notes[0].startswith("1 text or lyric event ")
    back = read_midi(tmp_path / "a.mid")
    assert back.repairs == [] and back.notices == []
    track = back.song.tracks[0]
    assert track.notes == song.tracks[0].notes  # all 180 notes (import used to cut the track at 60)
    assert len(track.meta) == 3 and all(m.kind == "lyrics" and m.tick == 0 for m in track.meta)
    assert all(len(m.data) <= MAX_MESSAGE_BYTES for m in track.meta)
    assert b"".join(m.data for m in track.meta) == lyric


def test_a_split_utf8_text_is_cut_between_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(midi_io, "MAX_MESSAGE_BYTES", 10)
    text = "ééééééééé".encode()  # 18 bytes of 2-byte characters
    song = Song(meta=[MetaEvent(5, "text", text)])
    back = read_midi(midi_bytes(song)).song
    assert [m.text for m in back.meta] == ["ééééé", "éééé"]


@pytest.mark.parametrize(
    ("song", "message"),
    [
        (Song(meta=[MetaEvent(0, "copyright", b"c" * (MAX_MESSAGE_BYTES + 1))]), "copyright notice in the conductor"),
        (Song(tracks=[Track("t", meta=[MetaEvent(480 * 8, "sysex", b"\x01" * MAX_MESSAGE_BYTES)])]), "system-exclusive message in track 1 ('t') at bar 3"),
        (Song(title="x" * (MAX_MESSAGE_BYTES + 1)), "title is 1,000,001 bytes"),
        (Song(tracks=[Track("n" * (MAX_MESSAGE_BYTES + 1))]), "the name of track 1"),
    ],
)  # fmt: skip
def test_a_text_too_long_to_split_is_refused(song: Song, message: str) -> None:
    with pytest.raises(MidiExportError, match=re.escape(message)) as info:
        midi_bytes(song)
    assert f"up to {MAX_MESSAGE_BYTES:,} bytes" in str(info.value)


def test_a_song_longer_than_four_hours_is_refused_and_one_just_within_is_written() -> None:
    song = Song(tempos=[TempoChange(0, 500_000)])  # 120 BPM: 4 h = 28,800 quarters
    cap = tick_cap(song)
    assert cap == 28_800 * 480
    song.tracks = [Track("t", notes=[Note(0, 60, 10), Note(cap - 10, 62, cap)])]
    assert read_midi(midi_bytes(song)).song == song
    song.tracks[0].notes.append(Note(cap, 64, cap + 1))
    with pytest.raises(
        MidiExportError, match=r"bar 7,201, 4\.0 hours; musicgen reads MIDI files of up to 4 hours"
    ):
        midi_bytes(song)
    # a slower tempo stretches the same ticks past the cap
    slow = Song(tempos=[TempoChange(0, 1_000_000)], tracks=[Track("t", notes=[Note(0, 60, cap // 2 + 1)])])
    with pytest.raises(MidiExportError, match="4 hours"):
        midi_bytes(slow)


@pytest.mark.parametrize(
    ("meter", "ok"),
    [((3, 2**20), False), ((0, 4), False), ((256, 4), False), ((3, 6), False), ((3, 256), False), ((255, 128), True), ((1, 1), True)],
)  # fmt: skip
def test_meters_the_reader_drops_are_refused(meter: tuple[int, int], ok: bool) -> None:
    song = Song(time_signatures=[TimeSignature(0, 4, 4), TimeSignature(1920, *meter)])
    if ok:
        back = read_midi(midi_bytes(song))
        assert back.repairs == [] and back.song.time_signatures == song.time_signatures
    else:
        with pytest.raises(MidiExportError, match=rf"the meter {meter[0]}/{meter[1]} at bar 2 cannot"):
            midi_bytes(song)


@pytest.mark.parametrize("tempo", [0, 0x1000000])
def test_tempos_the_reader_drops_are_refused(tempo: int) -> None:
    with pytest.raises(MidiExportError, match="tempo at bar 1"):
        midi_bytes(Song(tempos=[TempoChange(0, tempo)]))
    song = Song(tempos=[TempoChange(0, 1), TempoChange(10, 0xFFFFFF)])
    assert read_midi(midi_bytes(song)).song.tempos == song.tempos


@pytest.mark.parametrize(
    "song",
    [
        Song(tempos=[TempoChange(0, 500_000), TempoChange(0, 600_000)]),
        Song(time_signatures=[TimeSignature(0, 4, 4), TimeSignature(0, 3, 4)]),
        Song(key_signatures=[KeySignature(960, "C"), KeySignature(960, "Am")]),
    ],
)
def test_two_different_values_at_one_moment_are_refused(song: Song) -> None:
    # import would keep only one of them (and call it a repair)
    with pytest.raises(MidiExportError, match=r"two different .* at the same moment"):
        midi_bytes(song)


def test_the_event_cap_is_shared_by_reader_and_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(midi_io, "MAX_EVENTS", 1_000)
    # conductor: end; track: name, program, 2 per note, end -> 1 + 3 + 2n events
    fits = Song(tempos=[], time_signatures=[], tracks=[Track("t", notes=_melody(498))])
    assert read_midi(midi_bytes(fits)).song == fits  # 1,000 events: read back whole
    over = Song(tempos=[], time_signatures=[], tracks=[Track("t", notes=_melody(499))])  # 1,002
    with pytest.raises(
        MidiExportError, match="499 notes; a MIDI file musicgen reads holds up to 1,000 events"
    ):
        midi_bytes(over)
    monkeypatch.setattr(midi_io, "MAX_EVENTS", 10_000)
    data = midi_bytes(over)  # what export would have written: the reader refuses it
    monkeypatch.setattr(midi_io, "MAX_EVENTS", 1_000)
    with pytest.raises(MidiImportError, match="more than 1,000 events"):
        read_midi(data)


def test_the_file_size_cap_is_shared_by_reader_and_writer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(midi_io, "MAX_FILE_BYTES", 2**20)
    sysex = [MetaEvent(i, "sysex", bytes(500_000)) for i in range(3)]  # 1.5 MB in all
    song = Song(tracks=[Track("t", notes=_melody(4), meta=sysex)])
    with pytest.raises(
        MidiExportError, match=r"MIDI file of 1\.4 MiB; musicgen reads MIDI files of up to 1 MiB"
    ):
        write_midi(song, tmp_path / "big.mid")
    assert not (tmp_path / "big.mid").exists()
    song.tracks[0].meta = sysex[:2]
    write_midi(song, tmp_path / "ok.mid")
    assert read_midi(tmp_path / "ok.mid").song == song


def test_too_many_tracks_are_refused() -> None:
    song = Song(tracks=[Track() for _ in range(65_535)])
    with pytest.raises(MidiExportError, match="65,535 tracks; a MIDI file holds at most 65,534"):
        midi_bytes(song)


def _project(tmp_path: Path, song: Song) -> Path:
    path = tmp_path / "p.mgproj"
    save_project(Project(song), path)
    return path


def test_convert_refuses_with_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    song = Song(tracks=[Track("t", notes=[Note(0, 60, 480)])], time_signatures=[TimeSignature(0, 3, 2**20)])
    out = tmp_path / "out.mid"
    assert main(["convert", str(_project(tmp_path, song)), str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # the project loader refuses it first (issue 14's load validation); export would too
    assert len(err) == 1 and ("1048576" in err[0] or "meter 3/1048576 at bar 1 cannot be written" in err[0])
    assert not out.exists()


def test_convert_says_when_a_lyric_was_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lyric = b"o" * (2 * MAX_MESSAGE_BYTES)
    song = Song(tracks=[Track("Voice", notes=_melody(180), meta=[MetaEvent(0, "lyrics", lyric)])])
    out = tmp_path / "out.mid"
    assert main(["convert", str(_project(tmp_path, song)), str(out)]) == 0
    captured = capsys.readouterr()
    assert "note: 1 text or lyric event longer than 1,000,000 bytes was written in pieces" in captured.err
    assert read_midi(out).song.tracks[0].notes == song.tracks[0].notes
