"""Every malformed case of issue 2: imported with each repair listed, or refused with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicgen_app.cli.main import main
from musicgen_app.core.midi_io import MAX_EVENTS, read_midi
from musicgen_app.errors import MidiImportError

from .malformed import CASES, million_note_file, too_many_events_file
from .samples import EOT, notes_body, smf
from .test_midi_roundtrip import run_musicgen

IDS = [c[0] for c in CASES]


def _outcome(data: bytes) -> tuple[str, list[str]]:
    try:
        result = read_midi(data)
    except MidiImportError as exc:
        return "refuse", [str(exc)]
    return ("repair" if result.repairs or result.notices else "clean"), result.repairs + result.notices


@pytest.mark.parametrize(("name", "data", "outcome", "expected"), CASES, ids=IDS)
def test_read_midi_repairs_or_refuses(name: str, data: bytes, outcome: str, expected: str) -> None:
    got, lines = _outcome(data)
    assert got == outcome, (name, lines)
    if expected:
        assert any(expected in line for line in lines), (name, lines)


@pytest.mark.parametrize(("name", "data", "outcome", "expected"), CASES, ids=IDS)
def test_inspect_in_process(
    name: str, data: bytes, outcome: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "case.mid"
    path.write_bytes(data)
    rc = main(["inspect", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if outcome == "refuse":
        assert rc == 2
        assert err.count("\n") == 1 and err.startswith("error: ") and expected in err
    else:
        assert rc == 0, err
        assert expected in out
        assert ("repairs: none" in out) == (
            outcome == "clean" or not any(expected in r for r in _repairs(data))
        )


def _repairs(data: bytes) -> list[str]:
    return read_midi(data).repairs


SUBPROCESS_CASES = [
    "empty file",
    "text file",
    "zero tracks",
    "truncated chunk",
    "running status after sysex",
    "huge delta time",
    "SMPTE division",
    "format 3",
]


def test_inspect_command_as_a_user_runs_it(tmp_path: Path) -> None:
    """The real `musicgen` console script: exit 0 with repairs listed, or exit 2 with one line."""
    for name, data, outcome, expected in CASES:
        if name not in SUBPROCESS_CASES:
            continue
        path = tmp_path / f"{name.replace(' ', '_')}.mid"
        path.write_bytes(data)
        r = run_musicgen("inspect", str(path))
        assert "Traceback" not in r.stdout + r.stderr, name
        if outcome == "refuse":
            assert (r.returncode, r.stderr.count("\n")) == (2, 1), (name, r.stderr)
            assert r.stderr.startswith("error: ") and expected in r.stderr
        else:
            assert r.returncode == 0, (name, r.stderr)
            assert expected in r.stdout, (name, r.stdout)
    r = run_musicgen("inspect", str(tmp_path / "missing.mid"))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "does not exist" in r.stderr


def _notes(data: bytes) -> list[tuple[int, int, int, int]]:
    song = read_midi(data).song
    return sorted((n.start_tick, n.pitch, n.end_tick, n.velocity) for t in song.tracks for n in t.notes)


def test_what_the_repairs_keep() -> None:
    cases = {c[0]: c[1] for c in CASES}
    # a truncated file keeps the notes before the cut; the cut note is closed at the end
    assert _notes(cases["truncated chunk"]) == [
        (0, 60, 480, 100),
        (480, 62, 960, 100),
        (960, 64, 960 + 480, 100),
    ]
    # running status after sysex and after meta is read with the earlier status
    assert _notes(cases["running status after sysex"]) == [(0, 60, 96, 64)]
    assert _notes(cases["running status after meta"]) == [(0, 60, 96, 64)]
    assert _notes(cases["data bytes above 127"]) == [(0, 60, 96, 127)]
    assert _notes(cases["duplicate notes"]) == [(0, 60, 96, 64)]
    # overlapping notes of one key: each note-off closes the oldest sounding note
    assert _notes(cases["overlapping notes of one key"]) == [(0, 60, 96, 64), (48, 60, 144, 80)]
    assert _notes(cases["velocity-0 note-off"]) == [(0, 60, 96, 64)]
    # a corrupt huge delta drops what lies beyond four hours but keeps what came before
    assert _notes(cases["huge delta time"]) == [(0, 60, 480, 100)]
    assert _notes(cases["note-on without note-off"]) == [(0, 60, 480, 64), (480, 62, 480, 64)]
    assert _notes(cases["5-byte variable-length number"]) == [(0, 60, 480, 100)]
    song = read_midi(cases["SMPTE division"]).song  # 25 fps x 40 subframes: 1000 ticks per second
    assert song.resolution == 1000 and song.tick_to_seconds(480) == pytest.approx(0.48)
    assert read_midi(cases["tempo 0"]).song.tempos == []
    assert [t.us_per_quarter for t in read_midi(cases["tempo with a byte too many"]).song.tempos] == [500_000]
    assert read_midi(cases["format 2"]).song.note_count == 3
    assert _notes(cases["chunk length too short"]) == _notes(cases["chunk length too long"])
    assert len(_notes(cases["chunk length too long"])) == 3


def test_running_status_carries_over_zero_length_and_eot_only_tracks() -> None:
    assert read_midi(smf(EOT)).song.tracks == []
    assert read_midi(smf(notes_body((60, 100, 0)))).song.tracks[0].notes[0].duration_ticks == 0


@pytest.mark.slow
def test_a_million_notes_are_read() -> None:
    result = read_midi(million_note_file())
    assert result.repairs == []
    assert result.song.note_count == 1_000_000
    assert result.song.duration_seconds == pytest.approx(12_500.0)


@pytest.mark.slow
def test_over_the_event_cap_is_refused() -> None:
    with pytest.raises(MidiImportError, match=f"more than {MAX_EVENTS:,} events"):
        read_midi(too_many_events_file())
