"""`musicgen inspect` and `musicgen convert` on real files (in-process, the dispatcher of the command)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicgen_app.cli.main import main
from musicgen_app.core.midi_io import read_midi
from musicgen_app.core.project import Project, load_project, save_project

from .samples import must_show_file


@pytest.fixture
def mid(tmp_path: Path) -> Path:
    path = tmp_path / "a.mid"
    must_show_file().save(path)
    return path


def test_inspect_text(mid: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(mid)]) == 0
    out = capsys.readouterr().out
    assert "MIDI format 1, 480 ticks per quarter note" in out
    assert "tempo: 120 BPM at 1.1, 150 BPM at 3.1" in out
    assert "meter: 4/4 at 1.1, 3/4 at 3.1" in out
    assert "Piano: channel 1, program 0 (Acoustic Grand Piano), 135 notes, pitches 0-127" in out
    assert "Bass: channel 2, program 33 (Electric Bass (finger)), 16 notes" in out
    assert "Drums: channel 10, drums, 64 notes" in out
    assert "2 sustain-pedal events" in out and "repairs: none" in out


def test_inspect_json(mid: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--json", str(mid)]) == 0
    info = json.loads(capsys.readouterr().out)
    song = read_midi(mid).song
    assert info["note_count"] == song.note_count == 215
    assert info["duration_seconds"] == pytest.approx(song.duration_seconds, abs=1e-3)
    assert [t["bpm"] for t in info["tempos"]] == [120.0, 150.0]
    assert [m["meter"] for m in info["time_signatures"]] == ["4/4", "3/4"]
    assert [(t["name"], t["channel"], t["is_drum"], t["notes"]) for t in info["tracks"]] == [
        ("Piano", 1, False, 135),
        ("Bass", 2, False, 16),
        ("Drums", 10, True, 64),
    ]
    assert info["repairs"] == [] and info["kind"] == "midi"


def test_inspect_project_shows_state(mid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proj = tmp_path / "a.mgproj"
    save_project(Project(read_midi(mid).song, {"model": "m", "takes": [{"seed": 1}, {"seed": 2}]}), proj)
    assert main(["inspect", str(proj)]) == 0
    out = capsys.readouterr().out
    assert "musicgen project" in out and "app state: model, takes; 2 takes" in out


def test_convert_keeps_state_between_projects(
    mid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.mgproj", tmp_path / "b.mgproj"
    save_project(Project(read_midi(mid).song, {"temperature": 0.7}), a)
    assert main(["convert", str(a), str(b)]) == 0
    assert load_project(b).state == {"temperature": 0.7}
    assert load_project(b).song == load_project(a).song


def test_convert_reports_repairs_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_bytes(
        b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x08\x00\x90\x3c\x40\x60\x3c\x00"
    )
    assert main(["convert", str(bad), str(tmp_path / "out.mid")]) == 0
    captured = capsys.readouterr()
    assert "repair: track 1 is cut short" in captured.err and "(1 repair made while reading)" in captured.out
    assert read_midi(tmp_path / "out.mid").repairs == []
    assert main(["convert", str(bad), str(tmp_path / "out.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "name the output file .mid" in err and err.count("\n") == 1
    (tmp_path / "empty.mid").write_bytes(b"")
    assert main(["convert", str(tmp_path / "empty.mid"), str(tmp_path / "x.mid")]) == 2
    assert capsys.readouterr().err == "error: the file is empty\n"
    assert not (tmp_path / "x.mid").exists()


def test_bar_numbers_agree_with_the_song_model() -> None:
    """inspect counts bars arithmetically; Song.bar_starts lists them: the two must agree."""
    import bisect
    import random

    from musicgen_app.cli.inspect_cmd import _bar_beat
    from musicgen_app.core.song import Song, TimeSignature

    rng = random.Random(3)
    for _ in range(200):
        ticks = sorted({rng.randrange(20_000) for _ in range(rng.randrange(5))})
        song = Song(
            resolution=rng.choice([1, 24, 96, 480]),
            time_signatures=[
                TimeSignature(t, rng.randrange(1, 13), rng.choice([1, 2, 4, 8, 128])) for t in ticks
            ],
        )
        starts = song.bar_starts(30_000)
        for tick in (rng.randrange(30_000) for _ in range(20)):
            assert _bar_beat(song, tick)[0] == bisect.bisect_right(starts, tick)


def test_inspect_counts_trailing_silence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file whose track ends 5 s after its last note (written by mido, as a DAW would) is 6 s long."""
    import mido

    mf = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    tr.append(mido.Message("note_on", note=60, velocity=90, time=0))
    tr.append(mido.Message("note_off", note=60, velocity=0, time=960))
    tr.append(mido.MetaMessage("end_of_track", time=4800))
    mf.tracks.append(tr)
    path = tmp_path / "tail.mid"
    mf.save(path)
    assert main(["inspect", "--json", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["last_note_end_tick"] == 960
    assert info["end_tick"] == 960 + 4800
    assert info["duration_seconds"] == pytest.approx(6.0)
    assert info["bars"] == 3
