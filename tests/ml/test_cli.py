"""`musicgen continue / models / evaluate / train / dataset` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicgen_app.cli.main import main
from musicgen_app.core.midi_io import read_midi, write_midi
from musicgen_app.core.song import Note, Song, TempoChange, TimeSignature, Track
from musicgen_app.ml.keys import Key


def seed_file(path: Path) -> Path:
    """A 3/4 waltz seed in G major at 100 BPM on a flute (program 73), 2 bars + a pickup."""
    notes, t = [], 240
    for pitch, q in [(62, 0.5), (67, 1), (71, 1), (74, 1), (72, 1), (71, 1), (69, 1), (67, 2)]:
        notes.append(Note(int(t), pitch, int(t + q * 480), 80))
        t += q * 480
    song = Song(
        tracks=[Track(name="flute", program=73, channel=0, notes=notes)],
        tempos=[TempoChange(0, 600_000)],
        time_signatures=[TimeSignature(0, 3, 4)],
    )
    write_midi(song, path)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args])
    out, err = capsys.readouterr()
    return code, out, err


def test_continue_writes_seed_plus_continuation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = seed_file(tmp_path / "seed.mid")
    out = tmp_path / "out.mid"
    code, stdout, err = run_cli(capsys, "continue", str(seed), "-o", str(out), "--bars", "4", "--seed", "5")
    assert code == 0, err
    assert "wrote" in stdout
    before = read_midi(seed).song
    after = read_midi(out).song
    assert after.tempos[0].us_per_quarter == 600_000
    assert (after.time_signatures[0].numerator, after.time_signatures[0].denominator) == (3, 4)
    track = next(t for t in after.tracks if t.notes)
    assert track.program == 73
    seed_notes = before.tracks[0].notes
    assert track.notes[: len(seed_notes)] == seed_notes
    cont = track.notes[len(seed_notes) :]
    assert len(cont) >= 4
    end = max(n.end_tick for n in seed_notes)
    assert cont[0].start_tick >= end and all(n.start_tick % 120 == 0 for n in cont)
    assert max(n.end_tick for n in cont) <= end + 4 * 3 * 480 + 1
    g_major = Key(7, "major").scale_pcs()
    assert sum(n.pitch % 12 in g_major for n in cont) / len(cont) >= 0.85


def test_same_seed_same_file_and_variations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = seed_file(tmp_path / "seed.mid")
    a, b, c = tmp_path / "a.mid", tmp_path / "b.mid", tmp_path / "c.mid"
    for path, s in ((a, "1"), (b, "1"), (c, "2")):
        assert run_cli(capsys, "continue", str(seed), "-o", str(path), "--seed", s)[0] == 0
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    args = ["-o", str(tmp_path / "v.mid"), "--variations", "3", "--seed", "1", "--temperature", "0.8"]
    code, _, _ = run_cli(capsys, "continue", str(seed), *args)
    assert code == 0
    files = [tmp_path / f"v-{i}.mid" for i in (1, 2, 3)]
    assert all(f.exists() for f in files) and not (tmp_path / "v.mid").exists()
    assert len({f.read_bytes() for f in files}) == 3


def test_key_free_is_off_without_the_pull_toward_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--key free` draws the same take as `--key off --free-pitch` (no lock, no tonal prior), and
    not the take of `--key off` alone (the tonal prior still leans toward the seed's key)."""
    seed = seed_file(tmp_path / "seed.mid")
    runs = {
        "free": ["--key", "free"],
        "free-pitch": ["--key", "off", "--free-pitch"],
        "off": ["--key", "off"],
    }
    for name, args in runs.items():
        common = ["-o", str(tmp_path / f"{name}.mid"), "--seed", "3", "--temperature", "1.5", "--bars", "8"]
        assert run_cli(capsys, "continue", str(seed), *common, *args)[0] == 0
    free, free_pitch, off = (read_midi(tmp_path / f"{n}.mid").song for n in runs)
    assert free.tracks[0].notes == free_pitch.tracks[0].notes
    assert free.tracks[0].notes != off.tracks[0].notes


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("garbage", [], "error:"),
        ("missing", [], "does not exist"),
        ("empty", [], "no notes"),
        ("good", ["--model", "no-such-model"], "unknown model"),
        ("good", ["--key", "H moll"], "key"),
        ("good", ["--bars", "0"], "bars"),
        ("good", ["--temperature", "-1"], "temperature"),
        ("good", ["--play", "--device", "no such MIDI port"], "error:"),
    ],
)
def test_continue_errors_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, args: list[str], message: str
) -> None:
    seed = tmp_path / "seed.mid"
    if setup == "garbage":
        seed.write_bytes(b"this is not a MIDI file at all")
    elif setup == "empty":
        write_midi(Song(tracks=[Track()]), seed)
    elif setup == "good":
        seed_file(seed)
    code, _, err = run_cli(capsys, "continue", str(seed), "-o", str(tmp_path / "o.mid"), *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err
    assert not (tmp_path / "o.mid").exists()


def test_models_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_cli(capsys, "models", "--json")
    assert code == 0
    models = json.loads(stdout)
    melody = next(m for m in models if m["name"] == "melody-lstm")
    assert melody["seed_paper"] == "003"
    assert "melody-lstm" in melody["architecture"] and "essen" in melody["dataset"].lower()
    for key in ("test_nll", "baseline_nll", "test_accuracy"):
        assert isinstance(melody["metrics"][key], float)
    assert melody["metrics"]["test_nll"] <= 0.9 * melody["metrics"]["baseline_nll"]
    code, stdout, _ = run_cli(capsys, "models")
    assert code == 0 and "melody-lstm" in stdout


def test_evaluate_and_dataset_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_cli(capsys, "evaluate", "no-such-model")
    assert code == 2 and err.startswith("error: unknown model") and err.count("\n") == 1
    monkeypatch.setenv("MUSICGEN_CACHE_DIR", str(tmp_path))
    code, _, err = run_cli(capsys, "dataset", "info", "--corpus", "ryan")
    assert code == 2 and err.count("\n") == 1 and "musicgen dataset build" in err
