"""Loaded models as the app sees them: :class:`GenerativeModel` and the grid-melody base.

A model family subclasses :class:`GenerativeModel` and implements :meth:`start_session`. Families
on paper 003's grid (pitch / rest / hold per 16th step) subclass :class:`GridMelodyModel` and only
implement :meth:`GridMelodyModel.adapter`: the prompt, the key handling, the sampler and the
decoder are shared. Families register a loader in :mod:`musicgen_app.ml.registry`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

from musicgen_app.core.song import Song
from musicgen_app.ml.generate import (
    GridNoteDecoder,
    ModelAdapter,
    SamplingConfig,
    TokenStepper,
    TokenStreamSession,
    grid_prompt,
)
from musicgen_app.ml.sampling import DensityGuide, Sampler, TokenClasses, TonalPrior
from musicgen_app.ml.session import GenerationSession
from musicgen_app.ml.tokenizers import BOS, HOLD_ID, REST_ID, GridMelodyTokenizer

logger = logging.getLogger(__name__)


class GenerativeModel(ABC):
    """A loaded checkpoint that can continue a sketch."""

    family = "abstract"

    def __init__(self, name: str, card: dict, path: Path | None = None) -> None:
        self.name = name
        self.card = card
        self.path = path

    @abstractmethod
    def start_session(
        self,
        song: Song,
        track: int = 0,
        *,
        start_tick: int | None = None,
        bars: int = 4,
        sampling: SamplingConfig | None = None,
    ) -> GenerationSession:
        """A streaming session continuing ``track`` of ``song`` (see ml.generate.start_session)."""


class GridMelodyModel(GenerativeModel):
    """Base for models on the 16th-note grid with :class:`GridMelodyTokenizer`."""

    family = "grid-melody"

    def __init__(
        self, name: str, card: dict, tokenizer: GridMelodyTokenizer, path: Path | None = None
    ) -> None:
        super().__init__(name, card, path)
        self.tokenizer = tokenizer
        self.classes = TokenClasses(
            vocab_size=tokenizer.vocab_size,
            rest_id=REST_ID,
            hold_id=HOLD_ID,
            id_pitch=tokenizer.id_pitches(),
            never=(BOS,),
        )

    def _sounding_pitches(self, tokens: Sequence[int]) -> list[int]:
        """The pitch sounding at each step of grid ``tokens`` that has one (a held note counts
        every step it is held): the sketch's note time per pitch, for the tonal prior."""
        out: list[int] = []
        current = -1
        for t in tokens:
            p = int(self.classes.id_pitch[t])
            if p >= 0:
                current = p
            elif t != self.classes.hold_id:
                current = -1  # a rest (or another symbol) ends the note
            if current >= 0:
                out.append(current)
        return out

    @abstractmethod
    def adapter(self, bar_position: Callable[[int], tuple[int, int]]) -> ModelAdapter:
        """A fresh adapter; ``bar_position(k)`` gives (position, steps per bar) of prompt step ``k``
        (k = 0 is the prompt's first step; the first generated step follows the prompt)."""

    def start_session(
        self,
        song: Song,
        track: int = 0,
        *,
        start_tick: int | None = None,
        bars: int = 4,
        sampling: SamplingConfig | None = None,
    ) -> GenerationSession:
        """Prefill over the sketch in the model's key; continuation moved back to the user's key."""
        cfg = sampling or SamplingConfig()
        prompt = grid_prompt(self.tokenizer, song, track, start_tick, bars, cfg.key_lock)
        model_pitches = [p + prompt.transpose for p in prompt.sketch_pitches]
        pitch_range = (min(model_pitches), max(model_pitches)) if model_pitches else None
        seen = prompt.tokens[1:]  # the sketch's steps; generated step 0 follows them
        sounding = self._sounding_pitches(seen)  # one entry per step a pitch sounds (note time)
        sampler = Sampler(
            self.classes,
            cfg,
            allowed_pcs=prompt.allowed_pcs,
            pitch_range=pitch_range,
            seed=cfg.seed,
            pitch_shift=prompt.transpose,
            tonal=TonalPrior.for_sketch(sounding, [1] * len(sounding), cfg),
        )
        decoder = GridNoteDecoder(
            self.tokenizer,
            prompt.tick_of_step,
            transpose=-prompt.transpose,
            velocity=prompt.velocity,
            channel=prompt.channel,
        )
        starts = [k - len(seen) for k, t in enumerate(seen) if self.classes.id_pitch[t] >= 0]
        stepper = TokenStepper(
            self.adapter(prompt.bar_position(song)),
            prompt.tokens,
            sampler,
            decoder,
            prompt.n_steps,
            tick_of_step=prompt.tick_of_step,
            density=DensityGuide.for_sketch(starts, 0, cfg),
        )
        session = TokenStreamSession(
            stepper, temperature=cfg.temperature, track=track, observed=prompt.tokens[1:]
        )
        session.prompt_info = prompt  # type: ignore[attr-defined]
        return session
