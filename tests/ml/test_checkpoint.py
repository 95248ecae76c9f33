"""Checkpoints are safetensors + JSON cards; loading refuses anything else with CheckpointError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from musicgen_app.errors import CheckpointError
from musicgen_app.ml.checkpoint import FORMAT_VERSION, save_checkpoint
from musicgen_app.ml.families.melody_lstm import MelodyLSTM, MelodyLSTMConfig
from musicgen_app.ml.registry import list_models, load_model
from musicgen_app.ml.tokenizers import GridMelodyTokenizer


def _write_small(directory: Path, name: str = "tiny") -> Path:
    tok = GridMelodyTokenizer(48, 84)
    cfg = MelodyLSTMConfig(vocab_size=tok.vocab_size, embed_dim=8, hidden_size=16, num_layers=2, pos_dim=4)
    torch.manual_seed(0)
    net = MelodyLSTM(cfg)
    card = {
        "name": name,
        "family": "melody-lstm",
        "seed_paper": "003",
        "architecture": {"class": "MelodyLSTM", "args": cfg.to_dict(), "parameters": 1},
        "tokenizer": tok.to_dict(),
        "data": {"corpus": "essen", "dataset": "test"},
        "metrics": {"test_nll": 1.0},
    }
    return save_checkpoint(net.state_dict(), card, directory / f"{name}.safetensors")


def test_round_trip(tmp_path: Path) -> None:
    path = _write_small(tmp_path)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["format_version"] == FORMAT_VERSION
    assert path.read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle
    model = load_model(path)
    assert model.name == "tiny" and model.tokenizer.vocab_size == 40
    infos = list_models(tmp_path)
    assert [(m.name, m.seed_paper, m.metrics) for m in infos] == [("tiny", "003", {"test_nll": 1.0})]


def test_format_version_mismatch(tmp_path: Path) -> None:
    path = _write_small(tmp_path)
    cpath = path.with_suffix(".json")
    card = json.loads(cpath.read_text())
    card["format_version"] = FORMAT_VERSION + 1
    cpath.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="format"):
        load_model(path)
    assert list_models(tmp_path) == []


def test_corrupt_weights(tmp_path: Path) -> None:
    path = _write_small(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged"):
        load_model(path)


def test_pickle_is_refused(tmp_path: Path) -> None:
    path = _write_small(tmp_path)
    torch.save({"anything": torch.zeros(2)}, path)  # a pickle where the weights should be
    with pytest.raises(CheckpointError):
        load_model(path)


def test_architecture_mismatch(tmp_path: Path) -> None:
    path = _write_small(tmp_path)
    cpath = path.with_suffix(".json")
    card = json.loads(cpath.read_text())
    card["architecture"]["args"]["hidden_size"] = 32
    cpath.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="shape"):
        load_model(path)


def test_missing_and_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICGEN_MODELS_DIR", str(tmp_path))
    with pytest.raises(CheckpointError, match="unknown model"):
        load_model("no-such-model")
    path = _write_small(tmp_path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_model("tiny")
