"""The model families of papers 000, 001, 002 (frame LSTM, seq2seq, bar GAN), 003 (the melody
LSTM, ``melody_lstm.py``), 004 and the note Transformer, one module each.

Each family module has ``engine_factory(card, path)``, which rebuilds the network from its card
and returns a function making a fresh :class:`~musicgen_app.ml.families.common.StreamEngine`,
and ``train_model(...)`` (the shipped model's recipe). Each is a
:class:`~musicgen_app.ml.family.Family` in :mod:`musicgen_app.ml.families.builtin`, loaded through
the one registry as a :class:`FamilyModel`, which starts
:class:`~musicgen_app.ml.families.common.FamilySession` s, the same streaming session as every
other model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from musicgen_app.core.song import Song
from musicgen_app.errors import GenerationError
from musicgen_app.ml.models import GenerativeModel
from musicgen_app.ml.sampling import SamplingConfig
from musicgen_app.ml.session import GenerationSession

logger = logging.getLogger(__name__)

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
