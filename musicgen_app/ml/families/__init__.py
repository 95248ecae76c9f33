"""The model families of papers 000, 001, 002 (frame LSTM, seq2seq, bar GAN) and 004, beside the
melody LSTM (003).

Each family module has ``engine_factory(card, path)``, which rebuilds the network from its card
and returns a function making a fresh :class:`~musicgen_app.ml.families.common.StreamEngine`,
and ``train_model(...)``. :func:`load_family_model` turns a card into a :class:`FamilyModel`,
which starts :class:`~musicgen_app.ml.families.common.FamilySession` s, the same
GenerationSession interface as every other model.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from musicgen_app.core.song import Song
from musicgen_app.errors import CheckpointError, GenerationError
from musicgen_app.ml.models import GenerativeModel
from musicgen_app.ml.sampling import SamplingConfig
from musicgen_app.ml.session import GenerationSession

logger = logging.getLogger(__name__)

# card "architecture" -> (module, model steps allowed per 16th step of music)
ARCHITECTURES: dict[str, tuple[str, int]] = {
    "char-lstm": ("musicgen_app.ml.families.char_lstm", 16),
    "chord-lstm": ("musicgen_app.ml.families.chord_lstm", 4),
    "pianoroll-lstm": ("musicgen_app.ml.families.pianoroll", 1),
    "pianoroll-seq2seq": ("musicgen_app.ml.families.pianoroll", 1),
    "pianoroll-gan": ("musicgen_app.ml.families.gan", 1),
    "wavenet": ("musicgen_app.ml.families.wavenet", 1),
    "note-transformer": ("musicgen_app.ml.families.note_transformer", 5),
}
# the shipped model of each family, in paper order
SHIPPED = [
    "char-lstm",
    "chord-lstm",
    "pianoroll-lstm",
    "pianoroll-seq2seq",
    "pianoroll-gan",
    "wavenet",
    "note-transformer",
]


def is_family_card(card: dict) -> bool:
    """Whether a model card belongs to one of these families."""
    arch = card.get("architecture")
    return isinstance(arch, str) and arch in ARCHITECTURES


class FamilyModel(GenerativeModel):
    """A loaded model of one family: its card and a factory of streaming engines."""

    def __init__(
        self, name: str, card: dict, path: Path, make_engine: Callable[[], Any], steps_per_grid_step: int
    ) -> None:
        super().__init__(name, card, path)
        self.family = str(card.get("family", card.get("architecture", "")))
        self.make_engine = make_engine
        self.steps_per_grid_step = steps_per_grid_step

    def start_session(
        self,
        song: Song,
        track: int = 0,
        *,
        start_tick: int | None = None,
        bars: int = 4,
        sampling: SamplingConfig | None = None,
    ) -> GenerationSession:
        """A :class:`FamilySession` continuing ``track`` of ``song`` for ``bars`` bars."""
        import torch

        from musicgen_app.ml.families.common import FamilySession, seed_context

        # batch-1 steps: one thread, and no oneDNN (its per-call set-up costs more than the step)
        torch.set_num_threads(1)
        torch.backends.mkldnn.enabled = False  # type: ignore[assignment]
        if bars < 1:
            raise GenerationError("ask for at least one bar")
        ctx = seed_context(song, track, start_tick=start_tick, bars=bars)
        max_steps = (ctx.end_step - ctx.start_step + 8) * self.steps_per_grid_step
        return FamilySession(self.make_engine(), ctx, sampling or SamplingConfig(), max_steps)  # type: ignore[arg-type]


def family_loader(module_name: str, per_step: int) -> Callable[[str, dict, Path], GenerativeModel]:
    """A registry loader for a family module (its ``load`` if it has one, else its engine factory)."""

    def load(name: str, card: dict, path: Path) -> GenerativeModel:
        module = importlib.import_module(module_name)
        try:
            if hasattr(module, "load"):
                return module.load(name, card, str(path))
            return FamilyModel(name, card, Path(path), module.engine_factory(card, str(path)), per_step)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"model {name}: its card is incomplete or inconsistent ({exc})") from exc

    return load


def load_family_model(card: dict, path: str | Path) -> GenerativeModel:
    """Rebuild a family model from its card (raises CheckpointError)."""
    arch = card.get("architecture")
    if not is_family_card(card):
        raise CheckpointError(f"model {Path(path).stem} has an unknown architecture {arch!r}")
    module_name, per_step = ARCHITECTURES[str(arch)]
    return family_loader(module_name, per_step)(str(card.get("name", Path(path).stem)), card, Path(path))


def load_by_name(name_or_path: str | Path) -> GenerativeModel:
    """Load a shipped family model by name (models/NAME.json) or card path."""
    from musicgen_app.ml.families.checkpoint import model_path, read_card

    path = model_path(name_or_path)
    return load_family_model(read_card(path), path)


def train_family(architecture: str, *, minutes: float, name: str | None = None, resume: bool = False) -> dict:
    """Train one family on this machine's CPU (`musicgen train ARCH`); returns the written card."""
    if architecture not in ARCHITECTURES:
        raise CheckpointError(
            f"unknown model family '{architecture}' (choose from {', '.join(ARCHITECTURES)})"
        )
    module = importlib.import_module(ARCHITECTURES[architecture][0])
    if architecture in ("pianoroll-lstm", "pianoroll-seq2seq"):
        kind = architecture.removeprefix("pianoroll-")
        return module.train_model(kind, minutes, name or architecture, resume=resume)
    return module.train_model(name or architecture, minutes, resume=resume)
