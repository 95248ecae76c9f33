"""The one training loop (ml/training.py) of every family: a killed run resumes from its last
checkpoint, and `musicgen train FAMILY --from MODEL` fine-tunes a model of any family (here the
char LSTM) from that model's config, vocabulary and weights, naming it as its base."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from musicgen_app.cli.main import main
from musicgen_app.core.midi_io import write_midi
from musicgen_app.core.song import Note, Song, Track
from musicgen_app.errors import CheckpointError
from musicgen_app.ml import FINE_TUNABLE

ROOT = Path(__file__).resolve().parents[2]


def _folder(root: Path, n: int = 16) -> Path:
    rng = np.random.default_rng(5)
    root.mkdir(parents=True)
    for i in range(n):
        pitches = [int(60 + rng.choice([0, 2, 4, 5, 7, 9, 11, 12])) for _ in range(64)]
        notes = [Note(k * 240, p, k * 240 + 240, 90) for k, p in enumerate(pitches)]
        write_midi(Song(tracks=[Track(name="melody", notes=notes)]), root / f"t{i:02d}.mid")
    return root


@pytest.fixture
def tinyset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from musicgen_app.ml.midi_data import build_midi_dataset

    monkeypatch.setenv("MUSICGEN_CACHE_DIR", str(tmp_path / "cache"))
    build_midi_dataset(_folder(tmp_path / "music"), "tinyset", workers=1, progress=False)
    return "tinyset"


def test_every_family_that_trains_fine_tunes() -> None:
    from musicgen_app.ml.registry import trainable_families

    assert list(FINE_TUNABLE) == trainable_families()


def test_from_fine_tunes_a_char_lstm_from_its_base(
    tinyset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from musicgen_app.ml.family import TrainRun, load_train_data
    from musicgen_app.ml.registry import get_family

    runs = tmp_path / "runs"
    base_run = TrainRun(name="base", out_dir=runs, max_steps=2, tiny=True)
    base = get_family("char-lstm").train(load_train_data(tinyset, pieces=False), base_run)
    # a learning rate of ~0: the fine-tuned weights are the base's (a fresh network would not be)
    args = ["train", "char-lstm", "--data", tinyset, "--from", str(base_run.weights), "--lr", "1e-9"]
    args += ["--epochs", "1", "--minutes", "2", "--out-dir", str(runs), "--name", "ft", "--progress-json"]
    assert main(args) == 0, capsys.readouterr().err
    # what Train on My Music reads, for any family
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "step" in kinds and kinds.count("epoch") == 1
    assert events[0]["train_tunes"] > 0 and events[0]["batches_per_epoch"] == 100
    assert events[0]["unit"] == "nats/char"  # the curve's axis in the window
    assert events[-1]["path"] == str(runs / "ft.safetensors") and events[-1]["stopped"] == "1 epoch"
    card = json.loads((runs / "ft.json").read_text())
    assert card["family"] == "char-lstm" and card["base_model"]["name"] == "base"
    assert card["config"] == base["config"] and card["vocab"] == base["vocab"]
    assert card["training"]["stopped"] == "1 epoch" and card["training"]["history"][0]["step"] == 100
    a, b = load_file(str(base_run.weights)), load_file(str(runs / "ft.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=2e-3) for k in a)
    # a model of another family: one line, nothing written
    capsys.readouterr()
    bad = ["train", "wavenet", "--data", tinyset, "--from", str(base_run.weights), "--out-dir", str(runs)]
    assert main([*bad, "--name", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wavenet fine-tunes only from a wavenet model" in err
    assert not (runs / "nope.json").exists()


def _killed_run(tmp_path: Path, tinyset: str) -> tuple[list[str], dict[str, str], Path]:
    """The arguments (less ``--epochs``), environment and card path of the run these tests kill."""
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    common = ["train", "melody-lstm", "--data", tinyset, "--hidden", "16", "--layers", "1", "--batch-size",
              "8", "--seq-len", "32", "--patience", "100000", "--minutes", "10", "--no-evaluate",
              "--out-dir", str(runs), "--name", "killed"]  # fmt: skip
    return common, env, runs / "killed.json"


def _resumes_from_its_card(common: list[str], env: dict[str, str], card_path: Path) -> None:
    """A run was killed: its card (as it shows after the kill) says ``k`` epochs; resuming for one
    epoch numbers it ``k + 1``, keeps the card's history and adds up the steps."""
    killed = json.loads(card_path.read_text())["training"]
    assert killed["stopped"] == "running" and len(killed["history"]) >= 2
    k = len(killed["history"])
    again = subprocess.run(
        [sys.executable, "-m", "musicgen_app", *common, "--epochs", "1", "--resume"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    done = json.loads(card_path.read_text())["training"]
    assert done["runs"] == 2 and done["stopped"] == "1 epoch"
    assert [r["epoch"] for r in done["history"]] == list(range(1, k + 2))  # numbered on
    assert done["history"][:k] == killed["history"]
    assert done["steps"] == killed["steps"] + done["history"][-1]["step"] - killed["history"][-1]["step"]
    # it started from the checkpoint, not afresh: its best is the killed run's best or better
    assert done["best_valid_nll"] <= killed["best_valid_nll"] * 1.02
    assert sorted(p.name for p in card_path.parent.iterdir() if ".tmp" in p.name) == []


def test_a_killed_run_resumes_from_its_last_checkpoint(tinyset: str, tmp_path: Path) -> None:
    common, env, card_path = _killed_run(tmp_path, tinyset)
    args = [*common, "--epochs", "100000"]
    proc = subprocess.Popen([sys.executable, "-m", "musicgen_app", *args], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if card_path.is_file():
                try:
                    if len(json.loads(card_path.read_text())["training"]["history"]) >= 2:
                        break
                except (ValueError, KeyError):
                    pass
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    _resumes_from_its_card(common, env, card_path)


# the training command, killed (SIGKILL, by itself) just after the first rename of its third
# checkpoint: one of the two files of the checkpoint moved into place, the other still temporary
_KILL_INSIDE_THIRD_SAVE = """
import os, signal, sys
from musicgen_app.cli.main import main
real, moved = os.replace, []
def replace(src, dst):
    real(src, dst)
    if os.path.basename(str(dst)) in ("killed.json", "killed.safetensors"):
        moved.append(dst)
        if len(moved) == 5:
            os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_killed_between_the_renames_of_its_checkpoint_resumes_from_its_card(
    tinyset: str, tmp_path: Path
) -> None:
    """The instant that made the test above fail now and then under load: a kill between the two
    renames of a checkpoint. The card then showing ``k`` epochs, the resumed run numbers its epoch
    ``k + 1`` (the card is the checkpoint's commit point; the weights follow it)."""
    common, env, card_path = _killed_run(tmp_path, tinyset)
    proc = subprocess.run([sys.executable, "-c", _KILL_INSIDE_THIRD_SAVE, *common, "--epochs", "100000"],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert sorted(p.name for p in card_path.parent.iterdir() if p.name.endswith(".tmp"))  # mid-save
    _resumes_from_its_card(common, env, card_path)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_save_killed_at_any_instant_leaves_the_checkpoint_its_card_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever instant of save_checkpoint a kill lands on (before, while or after writing either
    temporary file, between or after moving them into place), the checkpoint a resume finishes is
    the one its card showed at the kill: that card's epochs with the weights it records, the old
    pair or the new one, and no temporary file left."""
    from musicgen_app.ml.checkpoint import finish_interrupted_save, load_weights, read_card, save_checkpoint

    def card(epochs: int) -> dict:
        history = [{"epoch": e, "step": 100 * e} for e in range(1, epochs + 1)]
        return {"name": "m", "architecture": "x", "config": {}, "training": {"history": history}}

    live = tmp_path / "live"
    save_checkpoint({"w": torch.zeros(3)}, card(2), live / "m.safetensors")
    states = [_files(live)]
    real = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        states.append(_files(live))  # the instant before this rename
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    save_checkpoint({"w": torch.ones(3)}, card(3), live / "m.safetensors")
    monkeypatch.undo()
    states.append(_files(live))
    assert len(states) == 4  # before, two renames, after
    temporaries = sorted(set(states[1]) - set(states[0]))
    assert len(temporaries) == 2
    for t in temporaries:  # killed before writing one of them, or while writing it
        states.append({k: v for k, v in states[1].items() if k != t})
        states.append({k: (v[: len(v) // 2] if k == t else v) for k, v in states[1].items()})
    shown_epochs = []
    for i, state in enumerate(states):
        folder = tmp_path / f"kill{i}"
        folder.mkdir()
        for name, data in state.items():
            (folder / name).write_bytes(data)
        shown = json.loads((folder / "m.json").read_text())["training"]
        shown_epochs.append(len(shown["history"]))
        finish_interrupted_save(folder / "m.safetensors")
        assert read_card(folder / "m.safetensors")["training"] == shown, f"state {i}: {sorted(state)}"
        expected = torch.ones(3) if len(shown["history"]) == 3 else torch.zeros(3)
        assert torch.equal(load_weights(folder / "m.safetensors")["w"], expected), f"state {i}"
        assert sorted(p.name for p in folder.iterdir()) == ["m.json", "m.safetensors"]
    assert shown_epochs[:4] == [2, 2, 3, 3]  # once a card shows the new epoch, the kill keeps it


def test_a_run_killed_between_writing_weights_and_card_resumes(tmp_path: Path) -> None:
    """Killed inside save_checkpoint of the app's older order, after the weights were moved into
    place: the new card is still ``.json.tmp``; resuming first puts it beside its weights, so they
    load (such a checkpoint may still be on a disk)."""
    from musicgen_app.ml.checkpoint import finish_interrupted_save, load_weights, save_checkpoint

    path = tmp_path / "m.safetensors"
    save_checkpoint({"w": torch.zeros(3)}, {"name": "m", "architecture": "x", "config": {}}, path)
    newer = tmp_path / "new" / "m.safetensors"
    save_checkpoint({"w": torch.ones(3)}, {"name": "m", "architecture": "x", "config": {}}, newer)
    newer.replace(path)  # the weights moved, then the kill: the card is still the temporary one
    (newer.with_suffix(".json")).replace(tmp_path / "m.json.tmp")
    with pytest.raises(CheckpointError):
        load_weights(path)
    finish_interrupted_save(path)
    assert torch.equal(load_weights(path)["w"], torch.ones(3))
    assert not (tmp_path / "m.json.tmp").exists()


def test_a_validation_jump_goes_back_to_the_best_weights_with_half_the_rate() -> None:
    """``TrainConfig.jump`` (paper 002's Adam jumps): the epoch after a jump starts from the best
    weights, at half the learning rate; without ``jump`` the loop just goes on."""
    from musicgen_app.ml.training import TrainConfig, train

    def run(jump: float) -> tuple[list[torch.Tensor], list[float]]:
        torch.manual_seed(0)
        net = torch.nn.Linear(1, 1)
        seen: list[torch.Tensor] = []
        rates: list[float] = []
        scripted = iter([1.0, 0.5, 5.0, 0.4, 0.3])

        def validate(model: torch.nn.Module) -> tuple[float, float, dict[str, float]]:
            seen.append(model.weight.detach().clone())
            return next(scripted), 1.0, {}

        def loss(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, int]:
            return (model(x) - 3.0).pow(2).sum(), 1

        def batch(_g: torch.Generator) -> torch.Tensor:
            return torch.ones(1, 1)

        cfg = TrainConfig(minutes=5, lr=0.05, eval_every=2, patience=99, max_epochs=4, schedule="constant",
                          jump=jump)  # fmt: skip
        opt_step = torch.optim.AdamW.step

        def spy(self: torch.optim.Optimizer, *a: object, **k: object) -> object:
            rates.append(self.param_groups[0]["lr"])
            return opt_step(self, *a, **k)

        torch.optim.AdamW.step = spy  # type: ignore[method-assign]
        try:
            train(net, loss, batch, validate, cfg)
        finally:
            torch.optim.AdamW.step = opt_step  # type: ignore[method-assign]
        return seen, rates

    seen, rates = run(jump=2.0)
    assert rates[:6] == [0.05] * 6 and rates[6:] == [0.025] * 2  # halved after the third epoch's jump
    seen_plain, rates_plain = run(jump=0.0)
    assert rates_plain == [0.05] * 8
    assert all(torch.equal(a, b) for a, b in zip(seen[:3], seen_plain[:3], strict=True))  # same till the jump
    assert not torch.equal(seen[3], seen_plain[3])  # best weights vs the jump
