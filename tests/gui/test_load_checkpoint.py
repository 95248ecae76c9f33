"""Load checkpoint in the window verifies the file (card, digest, tensors, NaN/inf) before offering
it: a damaged copy of a shipped model is a message and never appears in the chooser; a sound copy
is offered and already loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from musicgen_app.core import paths
from musicgen_app.ml import checkpoint_verify as cv

pytestmark = pytest.mark.gui

MODEL = "melody-lstm"


def _copy(directory: Path) -> Path:
    if not (paths.models_dir() / f"{MODEL}.safetensors").exists():
        pytest.skip("no shipped melody model")
    for ext in (".json", ".safetensors"):
        shutil.copy(paths.models_dir() / f"{MODEL}{ext}", directory / f"{MODEL}{ext}")
    return directory / f"{MODEL}.safetensors"


def _nan_weights_with_a_matching_card(wpath: Path) -> None:
    """NaN in one weight, the card re-blessed for the damaged file: only the value check catches it."""
    tensors = load_file(str(wpath))
    t = tensors["head.bias"].clone()
    t[3] = float("nan")
    tensors["head.bias"] = t
    save_file(tensors, str(wpath), metadata={"format_version": "1"})
    cpath = wpath.with_suffix(".json")
    card = json.loads(cpath.read_text())
    card["weights"] = cv.weights_record(wpath, tensors)
    cpath.write_text(json.dumps(card))


def _offered(window) -> list[str]:
    combo = window.panel.model_combo
    return [str(combo.itemData(i)) for i in range(combo.count())]


@pytest.mark.parametrize("damage", ["nan", "flipped", "absurd-card"])
def test_load_checkpoint_refuses_a_broken_file(window, qtbot, tmp_path: Path, damage: str) -> None:
    qtbot.waitUntil(lambda: window.panel.model_combo.count() > 0, timeout=10_000)
    wpath = _copy(tmp_path)
    if damage == "nan":
        _nan_weights_with_a_matching_card(wpath)
        expected = "invalid numbers"
    elif damage == "flipped":
        data = bytearray(wpath.read_bytes())
        for i in range(len(data) - 400, len(data), 2):
            data[i] ^= 0x55
        wpath.write_bytes(bytes(data))
        expected = "changed or damaged"
    else:
        cpath = wpath.with_suffix(".json")
        card = json.loads(cpath.read_text())
        card["config"]["hidden_size"] = 200_000
        cpath.write_text(json.dumps(card))
        expected = "hidden_size 200000"
    before = _offered(window)
    window.add_checkpoint(wpath)  # what "Load checkpoint…" does with the chosen file
    qtbot.waitUntil(lambda: f"Cannot use {wpath.name}" in window.statusBar().currentMessage(), timeout=10_000)
    assert expected in window.statusBar().currentMessage()
    assert _offered(window) == before and str(wpath) not in _offered(window)


def test_load_checkpoint_offers_a_sound_copy_already_loaded(window, qtbot, tmp_path: Path) -> None:
    qtbot.waitUntil(lambda: window.panel.model_combo.count() > 0, timeout=10_000)
    wpath = _copy(tmp_path)
    window.add_checkpoint(wpath)
    qtbot.waitUntil(lambda: window.panel.model_name() == str(wpath), timeout=10_000)
    assert "(file)" in window.panel.model_combo.currentText()
    model = window.gen.models.get(str(wpath))  # verified and cached by the check itself
    assert isinstance(next(model.net.parameters()), torch.Tensor)
