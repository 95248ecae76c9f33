"""The shipped models: listing cards in ``paths.models_dir()`` and loading checkpoints by name.

Each model family registers a loader ``(name, card, path) -> GenerativeModel`` under its card's
``family`` with :func:`register_family`; :func:`load_model` picks it from the card. Loading is
JSON + safetensors only (see :mod:`musicgen_app.ml.checkpoint`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from musicgen_app.core import paths
from musicgen_app.errors import CheckpointError
from musicgen_app.ml.checkpoint import read_card

logger = logging.getLogger(__name__)

Loader = Callable[[str, dict, Path], "object"]
_FAMILIES: dict[str, Loader] = {}


def register_family(family: str, loader: Loader) -> None:
    """Make :func:`load_model` able to load checkpoints whose card says ``"family": family``."""
    _FAMILIES[family] = loader


def _builtin_families() -> None:
    if "melody-lstm" not in _FAMILIES:
        from musicgen_app.ml.melody_lstm import load_melody_lstm

        register_family("melody-lstm", load_melody_lstm)
    if "melody-fim" not in _FAMILIES:
        from musicgen_app.ml.melody_fim import load_melody_fim

        register_family("melody-fim", load_melody_fim)
    if "accompany" not in _FAMILIES:
        from musicgen_app.ml.accompany import load_accompany, load_chord_model

        register_family("accompany", load_accompany)
        register_family("accompany-chords", load_chord_model)
    if "audio-restyle" not in _FAMILIES:
        from musicgen_app.ml.audio.restyle import load_restyler

        register_family("audio-restyle", load_restyler)
    if "audio-wavenet" not in _FAMILIES:
        from musicgen_app.ml.audio.raw_wavenet import load_audio_wavenet

        register_family("audio-wavenet", load_audio_wavenet)


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


def load_model(name_or_path: str | Path):
    """Load a model by name or path (raises CheckpointError)."""
    _builtin_families()
    path = resolve(name_or_path)
    card = read_card(path)
    family = card.get("family")
    loader = _FAMILIES.get(str(family))
    if loader is None:
        from musicgen_app.ml import families

        if families.is_family_card(card):
            return families.load_family_model(card, path)
        raise CheckpointError(f"model {path.stem} is of an unknown family '{family}'")
    return loader(card.get("name", path.stem), card, path)
