"""Name-based helpers over :mod:`musicgen_app.ml.checkpoint` (the app's one checkpoint format).

The extra families store their weights and cards exactly like the melody model
(``models/NAME.safetensors`` + ``models/NAME.json``); these helpers only resolve a model name to
those paths and rebuild a network from a card.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from musicgen_app.core import paths
from musicgen_app.ml import checkpoint as ckpt

logger = logging.getLogger(__name__)


def model_path(name_or_path: str | Path) -> Path:
    """The weights path for a model name (in models/) or a path to its card or weights."""
    p = Path(name_or_path)
    if p.suffix in (".json", ".safetensors") or p.parent != Path("."):
        return ckpt.weights_path(p)
    return paths.models_dir() / f"{name_or_path}.safetensors"


def save_checkpoint(name_or_path: str | Path, model: torch.nn.Module, card: dict) -> Path:
    """Write ``model``'s weights (float16) and ``card`` as models/NAME.*; returns the weights path."""
    return ckpt.save_checkpoint(model.state_dict(), card, model_path(name_or_path))


def read_card(name_or_path: str | Path) -> dict:
    """The card of a model (raises CheckpointError)."""
    return ckpt.read_card(model_path(name_or_path))


def load_weights(name_or_path: str | Path, model: torch.nn.Module) -> None:
    """Load the weights into ``model`` and put it in eval mode (raises CheckpointError)."""
    path = model_path(name_or_path)
    ckpt.load_into(model, ckpt.load_weights(path), path.stem)
    model.eval()
