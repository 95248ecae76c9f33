"""The README's commands for your own music, as written (issue 10's "in a fresh clone"): build a
dataset from a folder (each skipped file listed with its reason), train on it by name with a time
budget into a relative ``--out-dir``, continue with ``--model runs/pop/pop-test``. And
`musicgen train melody-lstm --data DIR --from MODEL --minutes M --progress-json`: what the
window's Train on My Music reads (files read and skipped with their reasons, epochs, losses, the
result)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from midi_folder_support import SKIPPED, midi_folder, tune

from musicgen_app.cli.main import main
from musicgen_app.core import paths
from musicgen_app.core.midi_io import read_midi, write_midi


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUSICGEN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_the_readme_commands_as_written(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dataset build --midi DIR --name pop909`, `train melody-lstm --data pop909 --minutes M
    --out-dir runs/pop --name pop-test`, `continue seed.mid -o out.mid --model runs/pop/pop-test`."""
    monkeypatch.chdir(tmp_path)
    midi_folder(tmp_path / "music", n=12)
    assert main(["dataset", "build", "--midi", "music", "--name", "pop909", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "dataset 'pop909': 12 of 15 files used" in out
    for name in SKIPPED:
        assert f"skipped {name}: " in out
    args = ["train", "melody-lstm", "--data", "pop909", "--minutes", "0.02", "--out-dir", "runs/pop"]
    assert main([*args, "--name", "pop-test"]) == 0, capsys.readouterr().err
    assert "wrote runs/pop/pop-test.safetensors" in capsys.readouterr().out
    card = json.loads(Path("runs/pop/pop-test.json").read_text())
    assert card["training"]["stopped"].startswith(("time budget of 0.02 min", "early stop"))
    write_midi(tune([60, 62, 64, 65, 67, 65, 64, 62] * 2), tmp_path / "seed.mid")
    assert main(["continue", "seed.mid", "-o", "out.mid", "--model", "runs/pop/pop-test", "--seed", "1"]) == 0
    song = read_midi(tmp_path / "out.mid").song
    assert sum(len(t.notes) for t in song.tracks) > 16  # the seed's notes and the continuation's


def test_progress_json_reports_the_build_and_every_epoch(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (paths.models_dir() / "melody-lstm.safetensors").exists():
        pytest.skip("no shipped melody model")
    monkeypatch.chdir(tmp_path)
    midi_folder(tmp_path / "music", n=12)
    args = ["train", "melody-lstm", "--data", "music", "--from", "melody-lstm", "--minutes", "0.02"]
    args += ["--out-dir", "runs/ft", "--name", "ft", "--seq-len", "32", "--progress-json"]
    assert main(args) == 0, capsys.readouterr().err
    events = _events(capsys.readouterr().out)  # every stdout line is one JSON object
    kinds = [e["event"] for e in events]
    reading = [e for e in events if e["event"] == "reading"]
    assert reading and reading[-1]["done"] == reading[-1]["total"] == 15
    (dataset,) = [e for e in events if e["event"] == "dataset"]
    reasons = {s["file"]: s["reason"] for s in dataset["skipped"]}
    assert dataset["used"] == 12 and set(reasons) == set(SKIPPED)
    assert "not a MIDI file" in reasons["notes.mid"] and "empty" in reasons["empty.mid"]
    assert "drums only" in reasons["drums.mid"]
    assert kinds.index("dataset") < kinds.index("start") < kinds.index("step") < kinds.index("epoch")
    epochs = [e for e in events if e["event"] == "epoch"]
    assert epochs and all(e["val_nll"] > 0 and e["train_nll"] > 0 for e in epochs)
    assert kinds[-1] == "done" and events[-1]["stopped"].startswith(("time budget", "early stop"))
    assert events[-1]["path"] == "runs/ft/ft.safetensors"
    card = json.loads(Path("runs/ft/ft.json").read_text())
    assert card["base_model"]["name"] == "melody-lstm"
    assert len(card["training"]["history"]) == len(epochs)
    assert card["training"]["stopped"] == events[-1]["stopped"]


def test_an_unknown_relative_model_path_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_midi(tune([60, 62, 64, 65] * 4), tmp_path / "seed.mid")
    assert main(["continue", "seed.mid", "-o", "out.mid", "--model", "runs/pop/nothing"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'runs/pop/nothing'" in err


def test_progress_json_is_for_training_on_data(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --data a family runs its shipped recipe, which reports no JSON progress."""
    assert main(["train", "chord-lstm", "--progress-json"]) == 2
    assert "--progress-json" in capsys.readouterr().err
