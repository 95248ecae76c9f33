"""The shipped models: listing cards in ``paths.models_dir()`` and loading checkpoints by name.

:func:`load_model` picks the model's :class:`~musicgen_app.ml.family.Family` from the one registry
(:data:`musicgen_app.ml.family.FAMILIES`) by the card's family. Loading is
JSON + safetensors only (see :mod:`musicgen_app.ml.checkpoint`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from musicgen_app.core import paths
from musicgen_app.errors import CheckpointError
from musicgen_app.ml.checkpoint import read_card
from musicgen_app.ml.family import FAMILIES, Family, LoaderFamily, family_key, register

if TYPE_CHECKING:
    from musicgen_app.ml.models import GenerativeModel

logger = logging.getLogger(__name__)

Loader = Callable[[str, dict, Path], "object"]


def register_family(family: str, loader: Loader) -> None:
    """Make :func:`load_model` able to load checkpoints whose card says ``"family": family``
    (a family known by its loader only; see :mod:`musicgen_app.ml.family` for the full interface)."""
    builtin_families()
    register(LoaderFamily(family, loader))


def builtin_families() -> dict[str, Family]:
    """The registry with every built-in family registered (imported lazily: no torch at import)."""
    if "melody-lstm" not in FAMILIES:
        from musicgen_app.ml.families import builtin

        builtin.register_all()
    return FAMILIES


def get_family(key: str) -> Family:
    """The family registered under ``key`` (raises CheckpointError)."""
    families = builtin_families()
    if key not in families:
        raise CheckpointError(f"unknown model family '{key}' (known: {', '.join(sorted(families))})")
    return families[key]


def trainable_families() -> list[str]:
    """The keys of the families that train through :meth:`Family.train`, in registry order."""
    return [k for k, f in builtin_families().items() if not isinstance(f, LoaderFamily)]


def is_family_card(card: dict) -> bool:
    """Whether a card belongs to one of the ``ml/families`` modules (not melody-lstm, not audio)."""
    from musicgen_app.ml.families.builtin import ModuleFamily

    return isinstance(builtin_families().get(family_key(card)), ModuleFamily)


def load_checkpoint(card: dict, path: Path) -> GenerativeModel:
    """The model a card (any schema) and its weights describe (raises CheckpointError)."""
    key = family_key(card)
    family = builtin_families().get(key)
    if family is None:
        raise CheckpointError(f"model {path.stem} is of an unknown family '{key}'")
    try:
        return family.load(str(card.get("name", path.stem)), card, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"model {path.stem}: its card is incomplete or inconsistent ({exc})") from exc


@dataclass
class ModelInfo:
    """What `musicgen models` shows about one checkpoint."""

    name: str
    seed_paper: str
    architecture: str
    dataset: str
    metrics: dict
    card: dict = field(repr=False)
    path: Path

    def to_json(self) -> dict:
        """The public summary (the `musicgen models --json` objects)."""
        return {
            "name": self.name,
            "seed_paper": self.seed_paper,
            "architecture": self.architecture,
            "dataset": self.dataset,
            "metrics": self.metrics,
            "path": str(self.path),
        }


def _info(path: Path, card: dict) -> ModelInfo:
    arch = card.get("architecture", {})
    if isinstance(arch, dict):
        args = arch.get("args", {})
        summary = arch.get("summary") or (
            f"{arch.get('class', '?')}("
            + ", ".join(f"{k}={v}" for k, v in args.items() if k != "vocab_size")
            + f"), {arch.get('parameters', '?')} parameters"
        )
    else:
        summary = str(arch)
    data = card.get("data", {})
    if not isinstance(data, dict):
        data = {"dataset": str(data)}
    return ModelInfo(
        name=card.get("name", path.stem),
        seed_paper=str(card.get("seed_paper", "")),
        architecture=summary,
        dataset=data.get("dataset", data.get("corpus", "")),
        metrics=card.get("metrics", {}),
        card=card,
        path=path.with_suffix(".safetensors"),
    )


def list_models(
    directory: str | Path | None = None,
    *,
    verify: bool = False,
    problems: list[tuple[str, CheckpointError]] | None = None,
    task: str | None = "generate",
    user: bool = False,
) -> list[ModelInfo]:
    """Every readable model card (with its weights) in the models directory, sorted by name.

    ``user``: the musician's own models too (``paths.user_models_dir()``, what "Train on My
    Music…" writes), after the shipped ones; one named like a shipped model is left out.

    ``task``: only models of that task (a card's ``task``, ``generate`` when it has none): the
    music generators by default; ``restyle`` for the audio restylers; None for every model.

    Unreadable or mismatched cards are skipped with a warning in the log, and appended to
    ``problems`` as ``(file name, error)`` when it is given. With ``verify`` each checkpoint is also
    loaded (digest, tensors, NaN/inf: what :func:`load_model` checks) and skipped when refused.
    """
    root = Path(directory) if directory is not None else paths.models_dir()
    out: list[ModelInfo] = []
    for cpath in sorted(root.glob("*.json")):
        if not cpath.with_suffix(".safetensors").exists():
            continue
        try:
            card = read_card(cpath)
            if task is not None and card.get("task", "generate") != task:
                continue
            if verify:
                load_model(cpath.with_suffix(".safetensors"))
        except CheckpointError as exc:
            if problems is not None:
                problems.append((cpath.stem, exc))
            else:
                logger.warning("skipping %s: %s", cpath.name, exc)
            continue
        out.append(_info(cpath, card))
    if user and directory is None:
        shipped = {m.name for m in out}
        mine = list_models(paths.user_models_dir(), verify=verify, problems=problems, task=task)
        for info in mine:
            if info.name in shipped:
                logger.warning("skipping your model %s: a shipped model has that name", info.path)
            else:
                out.append(info)
    return out


def resolve(name_or_path: str | Path) -> Path:
    """The weights path of a model name (in the models directory, else among the musician's own
    models) or a checkpoint path, with or without its suffix (``runs/pop/pop-test``)."""
    p = Path(name_or_path)
    if p.suffix in (".safetensors", ".json") or p.exists():
        path = p.with_suffix(".safetensors")
    elif p.is_absolute() or len(p.parts) > 1:
        path = Path(f"{p}.safetensors")  # a path (relative to the working folder) without its suffix
    else:
        path = paths.models_dir() / f"{name_or_path}.safetensors"
        mine = paths.user_models_dir() / f"{name_or_path}.safetensors"
        if not path.with_suffix(".json").exists() and mine.with_suffix(".json").exists():
            path = mine  # one of the musician's own models
    if not path.exists() and not path.with_suffix(".json").exists():
        known = ", ".join(m.name for m in list_models(user=True)) or "none"
        raise CheckpointError(f"unknown model '{name_or_path}' (available: {known})")
    return path


def card_fills(card: dict) -> bool:
    """Whether the model of ``card`` can fill a range from both sides (its family's ``fills``)."""
    family = builtin_families().get(family_key(card))
    return bool(family is not None and family.fills)


def load_model(name_or_path: str | Path):
    """Load a model by name or path (raises CheckpointError)."""
    path = resolve(name_or_path)
    return load_checkpoint(read_card(path), path)
