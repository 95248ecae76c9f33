"""Any folder of MIDI files as training data: `musicgen dataset build --midi DIR`, skips with their
reasons, the content-hash split, the per-file cache, and training melody-lstm on it (`--data`,
`--from`)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from musicgen_app.cli.main import main
from musicgen_app.core.midi_io import write_midi
from musicgen_app.core.song import DRUM_CHANNEL, Note, Song, Track
from musicgen_app.ml import data as data_mod
from musicgen_app.ml import midi_data

POP909 = Path(__file__).resolve().parents[3] / "shared" / "data" / "pop909"


def _tune(pitches: list[int], name: str = "lead") -> Song:
    notes = [Note(i * 240, p, i * 240 + 240, 90) for i, p in enumerate(pitches)]
    return Song(tracks=[Track(name=name, notes=notes)])


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUSICGEN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _folder(tmp_path: Path, n: int = 6) -> Path:
    root = tmp_path / "music"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(n):
        pitches = [int(p) for p in 60 + rng.choice([0, 2, 4, 5, 7, 9, 11, 12], size=32)]
        write_midi(_tune(pitches), (root if i % 2 else root / "sub") / f"tune{i}.mid")
    (root / "notes.mid").write_text("this is a text file, not MIDI\n")
    (root / "empty.mid").write_bytes(b"")
    drums = Song(
        tracks=[
            Track(
                name="kit",
                channel=DRUM_CHANNEL,
                is_drum=True,
                notes=[Note(i * 240, 36, i * 240 + 100, 100, DRUM_CHANNEL) for i in range(32)],
            )
        ]
    )
    write_midi(drums, root / "drums.mid")
    return root


def test_folder_build_lists_every_skip_and_still_builds(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _folder(tmp_path)
    code = main(["dataset", "build", "--midi", str(root), "--name", "mine", "--workers", "1", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    info = json.loads(out)
    assert info["kept"] == 6
    reasons = {s["file"]: s["reason"] for s in info["skipped"]}
    assert set(reasons) == {"notes.mid", "empty.mid", "drums.mid"}
    assert "text" in reasons["notes.mid"].lower() or "not a midi" in reasons["notes.mid"].lower()
    assert "empty" in reasons["empty.mid"].lower()
    assert "drums only" in reasons["drums.mid"]
    ds = midi_data.load_midi_dataset("mine")
    assert len(ds) == 6
    tune = ds.tune(0)
    assert (tune.steps >= 0).sum() == 32  # every note of the melody, one onset each
    assert set(np.unique(tune.bar_pos)) <= set(range(16))


def test_rebuild_is_instant_and_a_changed_file_is_read_again(tmp_path: Path, cache: Path) -> None:
    root = _folder(tmp_path)
    first = midi_data.build_midi_dataset(root, "mine", workers=1, progress=False)
    assert first.parsed == 9
    t0 = time.perf_counter()
    again = midi_data.build_midi_dataset(root, "mine", workers=1, progress=False)
    assert again.parsed == 0 and again.cached == 9
    assert time.perf_counter() - t0 < 5  # a collapse guard: nothing is read again
    write_midi(_tune([60, 62, 64, 65] * 8), root / "tune1.mid")
    changed = midi_data.build_midi_dataset(root, "mine", workers=1, progress=False)
    assert changed.parsed == 1


def test_split_is_by_content_so_adding_files_moves_nothing(tmp_path: Path, cache: Path) -> None:
    root = _folder(tmp_path, n=12)
    midi_data.build_midi_dataset(root, "a", workers=1, progress=False)
    before = {m["id"]: m["split"] for m in midi_data.load_midi_dataset("a").meta}
    write_midi(_tune([67, 65, 64, 62] * 8), root / "new.mid")
    midi_data.build_midi_dataset(root, "a", workers=1, progress=False)
    after = {m["id"]: m["split"] for m in midi_data.load_midi_dataset("a").meta}
    assert "new.mid" in after
    assert all(after[k] == v for k, v in before.items())
    ds = midi_data.load_midi_dataset("a")
    split = data_mod.split_indices(ds)
    assert all(len(v) for v in split.values())
    assert sorted(np.concatenate(list(split.values())).tolist()) == list(range(len(ds)))


@pytest.mark.skipif(not POP909.is_dir(), reason="POP909 is not beside the project")
def test_pop909_songs_use_the_melody_track_the_downbeats_and_the_annotations(
    tmp_path: Path, cache: Path
) -> None:
    root = tmp_path / "pop"
    root.mkdir()
    for song in ("001", "002", "003"):
        shutil.copytree(POP909 / song, root / song)
    report = midi_data.build_midi_dataset(root, "pop3", workers=2, progress=False)
    assert report.used == 3 and not report.skipped
    ds = midi_data.load_midi_dataset("pop3")
    for meta in ds.meta:
        assert meta["melody"] == "track named 'MELODY'"
        assert meta["meter"] == "4/4" and meta["steps_per_bar"] == 16
        assert meta["file_key"]  # from key_audio.txt
        assert any(lab != "N" for lab in meta["chord_labels"])  # from chord_midi.txt
    # the grid is anchored on the annotated downbeats: most melody onsets fall on 8th positions
    pos = np.concatenate([ds.tune(i).bar_pos[ds.tune(i).steps >= 0] for i in range(len(ds))])
    assert np.mean(pos % 2 == 0) > 0.7


def test_train_melody_lstm_on_a_folder_and_fine_tune_from_the_shipped_model(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _folder(tmp_path, n=12)
    common = ["--epochs", "1", "--batch-size", "4", "--seq-len", "32", "--no-evaluate"]
    code = main(
        [
            "train",
            "melody-lstm",
            "--data",
            str(root),
            "--hidden",
            "16",
            "--layers",
            "1",
            "--out-dir",
            str(tmp_path / "runs"),
            "--name",
            "tiny",
            *common,
        ]
    )
    assert code == 0, capsys.readouterr().err
    card = json.loads((tmp_path / "runs" / "tiny.json").read_text())
    assert card["data"]["stats"]["source"] == "midi-folder"
    assert card["split"]["counts"]["train"] >= 1
    code = main(
        [
            "train",
            "melody-lstm",
            "--data",
            "music",
            "--from",
            "melody-lstm",
            "--out-dir",
            str(tmp_path / "runs"),
            "--name",
            "ft",
            *common,
        ]
    )
    assert code == 0, capsys.readouterr().err
    ft = json.loads((tmp_path / "runs" / "ft.json").read_text())
    assert ft["base_model"]["name"] == "melody-lstm"
    assert ft["config"]["hidden_size"] == 256  # the base model's network
    out = tmp_path / "out.mid"
    seed = tmp_path / "seed.mid"
    write_midi(_tune([60, 62, 64, 65, 67, 65, 64, 62] * 2), seed)
    assert (
        main(["continue", str(seed), "-o", str(out), "--model", str(tmp_path / "runs" / "ft"), "--seed", "1"])
        == 0
    )
    assert out.stat().st_size > 0


def test_bad_data_options_are_one_line_errors(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "melody-lstm", "--data", "no-such-dataset", "--no-evaluate"]) == 2
    assert "no dataset named" in capsys.readouterr().err
    assert main(["dataset", "build", "--midi", str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["train", "chord-lstm", "--data", "x"]) == 2
    assert main(["train", "melody-lstm", "--from", "nope", "--data", "x"]) == 2
