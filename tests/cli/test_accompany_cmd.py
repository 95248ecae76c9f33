"""`musicgen accompany` on real files with the shipped models: a new track under the melody, every
original track byte-identical in the written file, chords given or chosen, bad input one line."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from musicgen_app.cli.main import main
from musicgen_app.core.midi_io import read_midi, write_midi
from musicgen_app.core.song import ControlEvent, Note, Song, TimeSignature, Track

POP909 = Path(__file__).resolve().parents[3] / "shared" / "data" / "pop909"
BAR = 4 * 480


def _chunks(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos + 4 : pos + 8])
        out.append(data[pos : pos + 8 + size])
        pos += 8 + size
    return out


def band() -> Song:
    line = [64, 67, 72, 71, 69, 67, 65, 64, 62, 65, 69, 67, 64, 62, 60, 60]
    melody = [Note(i * 480, line[i % 16], i * 480 + 440, 90) for i in range(32)]
    drums = [Note(i * 480, 36 if i % 2 == 0 else 38, i * 480 + 100, 100, 9) for i in range(32)]
    pad = [Note(0, 48, 8 * BAR, 60, 2)]
    return Song(
        tracks=[
            Track(name="Drums", channel=9, is_drum=True, notes=drums),
            Track(name="Lead", notes=melody),
            Track(
                name="Pad",
                program=89,
                channel=2,
                notes=pad,
                controls=[ControlEvent(0, "control_change", 7, 90, 2)],
            ),
        ],
        time_signatures=[TimeSignature(0, 4, 4)],
    )


def test_accompany_adds_a_track_and_leaves_every_other_byte_as_it_was(tmp_path: Path, capsys) -> None:
    src, out = tmp_path / "song.mid", tmp_path / "out.mid"
    write_midi(band(), src)
    code = main(["accompany", str(src), "--track", "2", "-o", str(out), "--seed", "4"])
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "track 4 'Piano accompaniment'" in text and "under track 2" in text and "chords chosen" in text
    a, b = _chunks(src.read_bytes()), _chunks(out.read_bytes())
    assert len(b) == len(a) + 1
    assert a[0][:10] == b[0][:10] and a[0][12:] == b[0][12:]  # the header: only the track count grew
    assert b[1:-1] == a[1:]  # the conductor and every original track: byte-identical
    song = read_midi(out).song
    new = song.tracks[-1]
    assert new.name == "Piano accompaniment" and new.program == 0 and new.notes
    assert new.channel not in (0, 2, 9)


def test_accompany_follows_the_chords_typed_and_the_default_track_is_the_melody(
    tmp_path: Path, capsys
) -> None:
    src, out = tmp_path / "song.mid", tmp_path / "out.mid"
    write_midi(band(), src)
    code = main(
        ["accompany", str(src), "-o", str(out), "--style", "chords", "--chords", "Am | F C G", "--seed", "1"]
    )
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "under track 2" in text and "chords given: Am F C G Am" in text
    new = read_midi(out).song.tracks[-1]
    assert new.name == "Chords"
    bar2 = sorted({n.pitch % 12 for n in new.notes if BAR <= n.start_tick < 2 * BAR})
    assert bar2 == [0, 5, 9]  # F major in bar 2


def test_accompany_hears_the_other_tracks_unless_told_melody_only(tmp_path: Path, capsys) -> None:
    src = tmp_path / "song.mid"
    write_midi(band(), src)  # drums, the lead, a pad
    outs = {}
    for flag in ([], ["--melody-only"]):
        out = tmp_path / f"out{len(flag)}.mid"
        code = main(
            ["accompany", str(src), "--track", "2", "-o", str(out), "--style", "chords", "--seed", "1", *flag]
        )
        text, err = capsys.readouterr()
        assert code == 0, err
        outs[bool(flag)] = text
    assert "chords chosen hearing 1 other track too:" in outs[False]  # the pad; never the drums
    assert "chords chosen from the melody:" in outs[True]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--track", "7"], "the song has no track 7 (it has 3)"),
        (["--track", "1"], "track 1 is a drum track"),
        (["--style", "jazz"], "invalid choice: 'jazz'"),
        (["--chords", "C Hm F"], "'Hm' is not a chord"),
        (["--chords", "  "], "the chord progression is empty"),
        (["--temperature", "0"], "--temperature"),
        (["--model", "melody-lstm"], "model melody-lstm cannot accompany"),
    ],
)
def test_bad_input_gives_one_line(tmp_path: Path, capsys, args: list[str], expected: str) -> None:
    src, out = tmp_path / "song.mid", tmp_path / "out.mid"
    write_midi(band(), src)
    code = main(["accompany", str(src), "-o", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], err
    assert not out.exists()


@pytest.mark.skipif(not (POP909 / "003" / "003.mid").exists(), reason="POP909 is not in ../shared/data")
def test_accompany_of_a_held_out_pop909_song_keeps_its_three_tracks(tmp_path: Path, capsys) -> None:
    src, out = tmp_path / "003.mid", tmp_path / "out.mid"
    write_midi(read_midi((POP909 / "003" / "003.mid").read_bytes()).song, src)  # our own export
    code = main(["accompany", str(src), "-o", str(out), "--style", "bass", "--seed", "2"])
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "under track 1" in text  # the track named MELODY
    a, b = _chunks(src.read_bytes()), _chunks(out.read_bytes())
    assert b[1:-1] == a[1:]
    new = read_midi(out).song.tracks[-1]
    assert new.name == "Bass" and new.program == 32 and all(28 <= n.pitch <= 52 for n in new.notes)


@pytest.mark.jack
@pytest.mark.slow
def test_accompany_play_streams_the_accompaniment_with_the_song_to_a_jack_port(
    jack_receiver, tmp_path: Path, capsys
) -> None:
    """`--play`: the song and the accompaniment are heard on a real JACK port while it is
    generated; the new track in the file is exactly what was heard on its channel, the melody is
    heard as written, and nothing is left sounding."""
    from musicgen_app.core.song import TempoChange

    line = [64, 67, 72, 71, 69, 67, 65, 64]
    lead = [Note(i * 480, line[i], i * 480 + 440, 90) for i in range(8)]
    song = Song(tracks=[Track(name="Lead", notes=lead)])
    song.tempos = [TempoChange(0, 250_000)]  # 240 BPM: the two bars in two seconds
    src, out = tmp_path / "song.mid", tmp_path / "out.mid"
    write_midi(song, src)
    code = main(["accompany", str(src), "-o", str(out), "--style", "chords", "--seed", "3", "--play",
                 "--device", jack_receiver.port, "--midi-api", "jack"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    written = read_midi(out).song
    assert written.tracks[0].notes == song.tracks[0].notes
    new = written.tracks[1]
    assert new.notes and new.channel != 0
    events = jack_receiver.note_events()
    heard = sorted(pitch for _, kind, ch, pitch in events if kind == "on" and ch == new.channel)
    assert heard == sorted(n.pitch for n in new.notes)
    assert [p for _, kind, ch, p in events if kind == "on" and ch == 0] == line
    ons = [e for e in events if e[1] == "on"]
    offs = [e for e in events if e[1] == "off"]
    assert len(offs) >= len(ons)
