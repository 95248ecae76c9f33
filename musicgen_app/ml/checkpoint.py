"""Self-describing checkpoints: ``NAME.safetensors`` (weights) + ``NAME.json`` (the card).

The card carries everything needed to rebuild the model: ``format_version``, ``family`` and
``architecture`` (class and arguments), the vocabulary, data and split, training curve and metrics.
Loading checks the format version, the card's configuration (before anything is built from it),
the weights' sha256 and tensor names, shapes and dtypes against the card's ``weights`` record, and
that every weight is finite (see :mod:`musicgen_app.ml.checkpoint_verify`). It never unpickles:
weights come through safetensors, the rest is JSON.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from musicgen_app.core.safe_io import check_regular_file, read_capped
from musicgen_app.errors import CheckpointError
from musicgen_app.ml.checkpoint_verify import check_digest, check_tensors, validate_card, weights_record

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_CARD_BYTES = 16 * 1024 * 1024


def card_path(path: str | Path) -> Path:
    """The card next to a checkpoint (``x.safetensors`` -> ``x.json``)."""
    return Path(path).with_suffix(".json")


def weights_path(path: str | Path) -> Path:
    """The weights next to a card (``x.json`` -> ``x.safetensors``)."""
    return Path(path).with_suffix(".safetensors")


def save_checkpoint(
    state_dict: dict[str, torch.Tensor], card: dict, path: str | Path, *, half: bool = True
) -> Path:
    """Write weights (float16 when ``half``) and the card next to each other; returns the weights path.

    The card gets the weights' ``format_version``, ``weights_dtype`` and ``weights`` record (sha256,
    size, tensor names, shapes and dtypes), which loading checks. Both are written to temporary
    names first; moving the card into place is the commit point (a resumed run continues from the
    card it finds, see :func:`finish_interrupted_save`), then the weights follow it."""
    wpath = weights_path(path)
    wpath.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for k, v in state_dict.items():
        v = v.detach().cpu().contiguous()
        tensors[k] = v.half() if half and v.is_floating_point() else v
    card = dict(card, format_version=FORMAT_VERSION, weights_dtype="float16" if half else "float32")
    tmp_w = wpath.with_name(wpath.name + ".tmp")
    tmp_c = card_path(wpath).with_name(card_path(wpath).name + ".tmp")
    save_file(tensors, str(tmp_w), metadata={"format_version": str(FORMAT_VERSION)})
    card["weights"] = weights_record(tmp_w, tensors)
    tmp_c.write_text(json.dumps(card, indent=1) + "\n")
    os.replace(tmp_c, card_path(wpath))  # committed: a kill from here on keeps this checkpoint
    os.replace(tmp_w, wpath)
    return wpath


def finish_interrupted_save(path: str | Path) -> None:
    """Make the checkpoint at ``path`` whole again after a process was killed inside
    :func:`save_checkpoint`, so that it is the one its card shows (a resumed run takes its epochs and
    history from the card and its weights from beside it: one checkpoint, whenever the kill landed).

    Killed after the card was moved into place but before the weights, the new weights (still
    ``.safetensors.tmp``, the sha256 the card records) are moved beside it; killed earlier, the old
    pair is whole. A checkpoint left by the app's older order (the weights moved first, the card
    still ``.json.tmp`` and matching them) is finished by moving that card into place. Every
    temporary file is then removed."""
    wpath = weights_path(path)
    cpath = card_path(wpath)
    tmp_w = wpath.with_name(wpath.name + ".tmp")
    tmp_c = cpath.with_name(cpath.name + ".tmp")
    if not (tmp_w.exists() or tmp_c.exists()):
        return
    card = _card_at(cpath)
    if card is not None and not _matches(wpath, card) and _matches(tmp_w, card):
        os.replace(tmp_w, wpath)
        logger.info("finished the interrupted save of %s (its weights)", wpath.name)
    elif (card is None or not _matches(wpath, card)) and _matches(wpath, _card_at(tmp_c)):
        os.replace(tmp_c, cpath)
        logger.info("finished the interrupted save of %s (its card)", wpath.name)
    for tmp in (tmp_w, tmp_c):
        tmp.unlink(missing_ok=True)


def _card_at(cpath: Path) -> dict | None:
    """The JSON object in ``cpath``, or None when it is missing, cut short or not an object."""
    try:
        card = json.loads(read_capped(cpath, MAX_CARD_BYTES, CheckpointError, "model card"))
    except (OSError, ValueError, CheckpointError):
        return None
    return card if isinstance(card, dict) else None


def _matches(wpath: Path, card: dict | None) -> bool:
    """Whether ``wpath`` holds the weights ``card`` records (by sha256)."""
    if card is None or not wpath.is_file() or not isinstance(card.get("weights"), dict):
        return False
    try:
        check_digest(wpath, card, wpath.stem)
    except (OSError, CheckpointError):
        return False
    return True


def read_card(path: str | Path) -> dict:
    """The card of a checkpoint, version-checked and its configuration validated (raises CheckpointError)."""
    cpath = card_path(path)
    try:
        card = json.loads(read_capped(cpath, MAX_CARD_BYTES, CheckpointError, "model card"))
    except FileNotFoundError as exc:
        raise CheckpointError(f"model card {cpath} is missing") from exc
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"model card {cpath} is unreadable ({exc})") from exc
    if not isinstance(card, dict):
        raise CheckpointError(f"model card {cpath} is not a JSON object")
    version = card.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"model {cpath.stem} has checkpoint format {version!r}; this app reads format {FORMAT_VERSION}"
        )
    validate_card(card, str(card.get("name") or cpath.stem))
    return card


def load_weights(path: str | Path, card: dict | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint as float32, verified against its card (read from beside the
    weights when not given): digest, tensor names, shapes and dtypes, no NaN or inf. Raises
    CheckpointError when they do not match or are corrupt."""
    wpath = weights_path(path)
    if not wpath.exists():
        raise CheckpointError(f"model weights {wpath} are missing")
    check_regular_file(wpath, CheckpointError, "model weights file")  # not a device or FIFO
    if card is None:
        card = read_card(wpath)
    name = str(card.get("name") or wpath.stem)
    check_digest(wpath, card, name)
    try:
        tensors = load_file(str(wpath))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"model weights {wpath.name} are corrupt ({exc})") from exc
    check_tensors(tensors, card, name)
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}


def load_into(module: torch.nn.Module, tensors: dict[str, torch.Tensor], name: str) -> None:
    """Copy ``tensors`` into ``module``; any missing, extra or misshapen tensor is a CheckpointError."""
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    if missing or extra:
        raise CheckpointError(
            f"model {name} does not match its architecture (missing {missing[:3]}, unexpected {extra[:3]})"
        )
    for k, v in own.items():
        if tuple(v.shape) != tuple(tensors[k].shape):
            raise CheckpointError(
                f"model {name}: tensor {k} has shape {tuple(tensors[k].shape)}, expected {tuple(v.shape)}"
            )
        if v.is_floating_point() != tensors[k].is_floating_point():
            raise CheckpointError(
                f"model {name}: tensor {k} is stored as {tensors[k].dtype}, expected {v.dtype}"
            )
    module.load_state_dict(tensors)
