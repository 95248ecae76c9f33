"""The streaming generation engine: one prefill over the sketch, then one model step per token.

Pieces (every model family reuses them):

* :class:`ModelAdapter` (protocol): ``prefill(tokens) -> (state, logits)`` reads the prompt once;
  ``step(token, state) -> (state, logits)`` advances one token carrying the recurrent state (no
  window is ever re-read). ``classes`` describes the vocabulary for the sampler.
* :class:`NoteDecoder` (protocol): ``push(token) -> list[Note]`` returns the notes a token
  completes; ``flush() -> list[Note]`` closes the last one. :class:`GridNoteDecoder` decodes
  paper 003's grid (a note ends when the next non-hold token arrives, so each note is emitted the
  moment its length is known; no provisional lengths).
* :class:`TokenStepper`: adapter + :class:`~musicgen_app.ml.sampling.Sampler` + decoder as a
  :class:`~musicgen_app.ml.session.Stepper`; :class:`TokenStreamSession` is the one
  :class:`~musicgen_app.ml.session.StreamSession` driving it. The temperature is read at every step
  (``set_temperature`` takes effect on the next token) and ``cancel`` is checked before every step.
* :func:`grid_prompt`: a sketch (song, track, start tick) as grid tokens in the model's key, with
  the bar position of every step, the transposition and the key lock. Grid-based model families
  (:class:`~musicgen_app.ml.models.GridMelodyModel`) build their sessions with it.

Entry points: :func:`start_session` and :func:`generate_notes` (drains a session, retrying a take
that came out degenerate with the next seed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.song import Note, Song
from musicgen_app.errors import GenerationError
from musicgen_app.ml.keys import estimate_key, transposition_to_reference
from musicgen_app.ml.prompt import SketchReading, bar_positions, read_sketch
from musicgen_app.ml.sampling import (
    DensityGuide,
    Sampler,
    SamplingConfig,
    TokenClasses,
    allowed_pitch_classes,
    random_seed,
)
from musicgen_app.ml.session import GenerationSession, StreamSession
from musicgen_app.ml.tokenizers import BOS, HOLD, GridMelodyTokenizer, notes_to_steps

if TYPE_CHECKING:
    from musicgen_app.ml.models import GenerativeModel

logger = logging.getLogger(__name__)

__all__ = [
    "GridNoteDecoder",
    "GridPrompt",
    "ModelAdapter",
    "NoteDecoder",
    "SamplingConfig",
    "TokenStepper",
    "TokenStreamSession",
    "generate_notes",
    "grid_prompt",
    "start_session",
]

MAX_PROMPT_STEPS = 512  # the prefill reads at most the last 32 bars of 4/4


class ModelAdapter(Protocol):
    """What a model family provides to the streaming session."""

    classes: TokenClasses

    def prefill(self, tokens: Sequence[int]) -> tuple[Any, np.ndarray]:
        """Read the prompt; return the state after it and the logits (V,) of the next token."""
        ...

    def step(self, token: int, state: Any) -> tuple[Any, np.ndarray]:
        """Feed one token; return the new state and the logits (V,) of the token after it."""
        ...


class NoteDecoder(Protocol):
    """Turns sampled tokens into finished notes (song ticks, the user's key)."""

    def push(self, token: int) -> list[Note]:
        """The notes completed by ``token`` (often none)."""
        ...

    def flush(self) -> list[Note]:
        """The notes still open when generation stops, closed at the current position."""
        ...


class GridNoteDecoder:
    """Decodes grid tokens: pitch at an onset, rest, hold. A note ends at the next non-hold token.

    ``transpose`` is added to every pitch (it moves the model's key back to the user's);
    ``tick_of_step(i)`` gives the song tick of generated step ``i``.
    """

    def __init__(
        self,
        tokenizer: GridMelodyTokenizer,
        tick_of_step: Callable[[int], int],
        transpose: int = 0,
        velocity: int = 90,
        channel: int = 0,
    ) -> None:
        self.tok = tokenizer
        self.tick_of_step = tick_of_step
        self.transpose = transpose
        self.velocity = velocity
        self.channel = channel
        self.step_index = 0
        self._open: tuple[int, int] | None = None  # (start step, model pitch)

    def _close(self, end_step: int) -> list[Note]:
        if self._open is None:
            return []
        start, pitch = self._open
        self._open = None
        p = min(127, max(0, pitch + self.transpose))
        return [Note(self.tick_of_step(start), p, self.tick_of_step(end_step), self.velocity, self.channel)]

    def push(self, token: int) -> list[Note]:
        """Consume one generated token."""
        code = self.tok.decode_id(token)
        i = self.step_index
        self.step_index += 1
        if code == HOLD:
            return []
        done = self._close(i)
        if code >= 0:
            self._open = (i, int(code))
        return done

    def flush(self) -> list[Note]:
        """Close the sounding note at the end of the generated steps."""
        return self._close(self.step_index)


class TokenStepper:
    """A :class:`~musicgen_app.ml.session.Stepper` over a token model: each ``advance`` samples one
    token from the current logits, decodes it, and (unless it was the last) feeds it to the model."""

    def __init__(
        self,
        adapter: ModelAdapter,
        prompt: Sequence[int],
        sampler: Sampler,
        decoder: NoteDecoder,
        n_steps: int,
        tick_of_step: Callable[[int], int] | None = None,
        density: DensityGuide | None = None,
    ) -> None:
        self.tick_of_step = tick_of_step  # generated step -> song tick (for chord conditioning)
        self.density = density  # keeps the take's notes per step near the sketch's (time: generated steps)
        self._onset = sampler.classes.id_pitch >= 0  # a pitch token starts a note
        self.adapter = adapter
        self.prompt = list(prompt)
        self.sampler = sampler
        self.decoder = decoder
        self.n_steps = int(n_steps)
        self.sampled: list[int] = []
        self._state: Any = None
        self._logits: np.ndarray | None = None

    @property
    def tokens(self) -> int:
        """Tokens sampled so far."""
        return len(self.sampled)

    @property
    def finished(self) -> bool:
        """All ``n_steps`` tokens sampled."""
        return len(self.sampled) >= self.n_steps

    def prefill(self) -> None:
        """Read the prompt once."""
        self._state, self._logits = self.adapter.prefill(self.prompt)

    def advance(self, temperature: float) -> list[Note]:
        """Sample, decode, and step the model for the next token."""
        assert self._logits is not None, "prefill first"
        tick = None if self.tick_of_step is None else self.tick_of_step(len(self.sampled))
        logits = self._logits
        step = len(self.sampled)
        if self.density is not None:  # a pitch token (a note starts) against hold and rest
            logits = logits + np.where(self._onset, self.density.bias(step), 0.0)
        token = self.sampler.sample(logits, temperature, tick)
        if self.density is not None and self._onset[token]:
            self.density.onset(step)
        self.sampled.append(token)
        notes = self.decoder.push(token)
        if not self.finished:
            self._state, self._logits = self.adapter.step(token, self._state)
        return notes

    def flush(self) -> list[Note]:
        """Close the last note."""
        return self.decoder.flush()


class TokenStreamSession(StreamSession):
    """Prefill once, then sample/step token by token, yielding notes as they complete."""

    def __init__(
        self, stepper: TokenStepper, *, temperature: float = 1.0, track: int = 0, observed: Sequence[int] = ()
    ) -> None:
        super().__init__(stepper, temperature=temperature, track=track, max_steps=stepper.n_steps)
        self.token_stepper = stepper
        self.n_steps = stepper.n_steps
        self.seed = stepper.sampler.seed
        for t in observed:
            stepper.sampler.observe(int(t))

    @property
    def tokens(self) -> list[int]:
        """The tokens sampled so far."""
        return self.token_stepper.sampled

    @property
    def sampler(self) -> Sampler:
        """The session's sampler (its random state, its guards)."""
        return self.token_stepper.sampler

    @property
    def adapter(self) -> ModelAdapter:
        """The model adapter the session steps."""
        return self.token_stepper.adapter


# -- sketches on the grid -----------------------------------------------------------------------------
@dataclass
class GridPrompt:
    """A sketch as model tokens plus everything needed to map the continuation back."""

    tokens: list[int]  # <s> then the sketch's steps, in the model's key
    first_tick: int  # song tick of the prompt's first step (a bar line)
    start_tick: int  # song tick of the first generated step
    n_steps: int  # steps to generate
    ticks_per_step: float
    transpose: int  # semitones added to the sketch to reach the model's key
    allowed_pcs: frozenset[int] | None  # key lock in the model's key
    sketch_pitches: list[int]
    velocity: int
    channel: int
    reading: SketchReading

    def tick_of_step(self, i: int) -> int:
        """Song tick of generated step ``i``."""
        return round(self.start_tick + i * self.ticks_per_step)

    def bar_position(self, song: Song) -> Callable[[int], tuple[int, int]]:
        """``f(k) -> (position in bar, steps per bar)`` for prompt step ``k`` (0 = first_tick)."""
        return bar_positions(song, self.first_tick, self.ticks_per_step)


def grid_prompt(
    tokenizer: GridMelodyTokenizer,
    song: Song,
    track: int,
    start_tick: int | None,
    bars: int,
    key_lock: str | None,
    *,
    max_prompt_steps: int = MAX_PROMPT_STEPS,
    center_pitch: float | None = None,
    key_notes: Sequence[Note] | None = None,
) -> GridPrompt:
    """The grid tokens of the sketch on ``track`` before ``start_tick``, in the model's key.

    ``key_notes``: the notes whose key, range and velocity the take follows (default: the
    sketch; a fill passes the music on both sides of its range)."""
    reading = read_sketch(song, track, start_tick, steps_per_quarter=tokenizer.steps_per_quarter)
    if bars < 1:
        raise GenerationError("ask for at least one bar")
    tps = reading.ticks_per_step
    start_tick = reading.start_tick
    sketch = reading.notes
    # the prompt starts at a bar line (so its positions are right), at most max_prompt_steps back
    bar_lines = song.bar_starts(start_tick)
    first_note = sketch[0].start_tick if sketch else start_tick
    lower = start_tick - max_prompt_steps * tps
    candidates = [b for b in bar_lines if b <= first_note] or [0]
    first_tick = candidates[-1]
    if first_tick < lower:
        later = [b for b in bar_lines if b >= lower]
        first_tick = later[0] if later else int(lower)
    first_tick = round(round(first_tick / tps) * tps)
    basis = sketch if key_notes is None else list(key_notes)
    pitches = [n.pitch for n in basis]
    weights = [max(1, n.end_tick - n.start_tick) for n in basis]
    key = estimate_key(pitches, weights)
    shift = transposition_to_reference(key) if basis else 0
    # keep the sketch inside the model's range, moving whole octaves
    if basis:
        median = float(np.median(pitches)) + shift
        center = center_pitch if center_pitch is not None else (tokenizer.pitch_min + tokenizer.pitch_max) / 2
        lo, hi = min(pitches) + shift, max(pitches) + shift
        if lo < tokenizer.pitch_min or hi > tokenizer.pitch_max:
            shift += 12 * round((center - median) / 12)
    allowed = allowed_pitch_classes(key_lock, pitches, weights, sketch_key=key)
    allowed_model = frozenset((pc + shift) % 12 for pc in allowed) if allowed is not None else None
    steps = notes_to_steps(
        ((n.start_tick, n.end_tick, n.pitch + shift) for n in sketch if n.end_tick > first_tick),
        first_tick,
        start_tick,
        tps,
    )
    ids = tokenizer.encode_steps(steps).tolist() if len(steps) else []
    bar_ticks = song.ticks_per_bar(start_tick)
    n_steps = max(1, round(bars * bar_ticks / tps))
    velocity = int(np.median([n.velocity for n in basis])) if basis else 90
    return GridPrompt(
        tokens=[BOS, *ids],
        first_tick=first_tick,
        start_tick=start_tick,
        n_steps=n_steps,
        ticks_per_step=tps,
        transpose=shift,
        allowed_pcs=allowed_model,
        sketch_pitches=pitches,
        velocity=velocity,
        channel=reading.channel,
        reading=reading,
    )


# -- entry points ----------------------------------------------------------------------------------------
def start_session(
    model: GenerativeModel,
    song: Song,
    track: int = 0,
    *,
    start_tick: int | None = None,
    bars: int = 4,
    sampling: SamplingConfig | None = None,
) -> GenerationSession:
    """A session continuing ``track`` of ``song`` from ``start_tick`` (default: after its last note).

    Iterate it (on any thread) for NoteEvents in the song's ticks, then one SessionFinished.
    """
    return model.start_session(
        song, track, start_tick=start_tick, bars=bars, sampling=sampling or SamplingConfig()
    )


def is_degenerate(notes: Sequence[Note], n_steps: int) -> bool:
    """A take not worth keeping: (nearly) silent, or one pitch over and over."""
    if not notes:
        return True
    if len(notes) >= 4 and len({n.pitch for n in notes}) == 1:
        return True
    return n_steps >= 32 and len(notes) < 2


def generate_notes(
    model: GenerativeModel,
    song: Song,
    track: int = 0,
    *,
    start_tick: int | None = None,
    bars: int = 4,
    sampling: SamplingConfig | None = None,
) -> list[Note]:
    """Drain a session into a list of notes; a degenerate take is retried (up to ``max_retries``
    times) with the next seed. Raises GenerationError when the session fails."""
    cfg = sampling or SamplingConfig()
    seed = cfg.seed if cfg.seed is not None else random_seed(31)
    notes: list[Note] = []
    for attempt in range(cfg.max_retries + 1):
        attempt_cfg = SamplingConfig(**{**cfg.__dict__, "seed": seed + attempt})
        session = start_session(model, song, track, start_tick=start_tick, bars=bars, sampling=attempt_cfg)
        notes = []
        finished: SessionFinished | None = None
        for ev in session:
            if isinstance(ev, NoteEvent):
                notes.append(ev.note)
            else:
                finished = ev
        if finished is not None and finished.reason == "error":
            raise GenerationError(f"generation failed: {finished.message}")
        if not is_degenerate(notes, getattr(session, "n_steps", 0)):
            break
        logger.info("take %d with seed %d was degenerate; retrying", attempt, seed + attempt)
    return notes
