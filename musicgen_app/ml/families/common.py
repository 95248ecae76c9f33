"""What the four extra model families (papers 000, 001, 002, 004) share.

* :class:`SeedContext`: the sketch as the models see it: notes on a 16th grid counted from the
  song's start, the bar grid, the estimated key, and the map back to the song's ticks.
* :class:`StreamEngine`: one model's incremental generator: ``prefill`` once over the seed, then
  ``advance`` one model step at a time, returning the notes that became complete at that step.
* :class:`FamilySession`: the :class:`~musicgen_app.ml.session.GenerationSession` that drives an
  engine and turns its notes into :class:`~musicgen_app.core.events.NoteEvent` s in the song's own
  ticks. Every family streams through it, so cancel/temperature/finish behave the same.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch

from musicgen_app.core.song import Note, Song
from musicgen_app.errors import GenerationError
from musicgen_app.ml.families.cache import CacheConfig, PieceMemory, unit
from musicgen_app.ml.keys import Key, estimate_key, transposition_to_reference
from musicgen_app.ml.prompt import read_sketch
from musicgen_app.ml.sampling import (
    DensityGuide,
    SamplingConfig,
    TonalPrior,
    VarietyGuard,
    allowed_pitch_classes,
)
from musicgen_app.ml.session import StreamSession

logger = logging.getLogger(__name__)

T = TypeVar("T")

STEPS_PER_QUARTER = 4
CONTEXT_STEPS = 128  # the seed the models read: the last 8 bars of 4/4


@dataclass(frozen=True, slots=True)
class StepNote:
    """A note on the 16th grid: ``start`` and ``length`` in steps from the song's start;
    ``velocity`` 0 means the sketch's (the families that learn no dynamics)."""

    start: int
    length: int
    pitch: int
    velocity: int = 0


@dataclass(slots=True)
class SeedContext:
    """The sketch, read for a model: grid notes before ``start_step`` and how to map back."""

    resolution: int
    start_step: int  # the continuation begins here (steps from the song's start)
    end_step: int  # and stops here
    notes: list[StepNote]  # the seed, sorted, all starting before start_step
    bar_steps: int
    bar_offset: int  # bar lines at bar_offset + k * bar_steps
    key: Key
    velocity: int = 90
    channel: int = 0
    track: int = 0
    extra: dict = field(default_factory=dict)
    velocities: dict[tuple[int, int], int] = field(default_factory=dict)  # (start, pitch) -> velocity

    @property
    def step_ticks(self) -> float:
        """Song ticks per 16th step."""
        return self.resolution / STEPS_PER_QUARTER

    def to_tick(self, step: int) -> int:
        """The song tick of grid step ``step``."""
        return round(step * self.step_ticks)

    def transposition(self) -> int:
        """Semitones that take the seed's key to C major / A minor (the key-normalised families)."""
        return transposition_to_reference(self.key)

    def bar_position(self, step: int) -> int:
        """Step index inside its bar."""
        return (step - self.bar_offset) % self.bar_steps

    def max_voices(self) -> int:
        """The most seed notes sounding at once (1: the sketch is a single line)."""
        edges = sorted([(n.start, 1) for n in self.notes] + [(n.start + n.length, -1) for n in self.notes])
        best = now = 0
        for _, d in edges:  # at equal steps an end (-1) sorts before a start
            now += d
            best = max(best, now)
        return max(1, best)

    def voice_cap(self, voices: str) -> int:
        """How many notes may sound at once: the sketch's texture (``voices='sketch'``), or up to four
        voices when the musician asks for harmony."""
        return self.max_voices() if voices == "sketch" else max(4, self.max_voices())

    def register(self, margin: int | None, lo: int = 21, hi: int = 108) -> tuple[int, int]:
        """The pitch range a continuation may use: the seed's range +- ``margin`` (None: [lo, hi])."""
        if margin is None:
            return lo, hi
        pitches = [n.pitch for n in self.notes]
        return max(lo, min(pitches) - margin), min(hi, max(pitches) + margin)

    def density_guide(self, sampling: SamplingConfig) -> DensityGuide | None:
        """The density guide of a take continuing this seed (None when ``sampling`` turns it off)."""
        return DensityGuide.for_sketch((n.start for n in self.notes), self.start_step, sampling)

    def variety_guard(self, sampling: SamplingConfig, cap: int) -> VarietyGuard | None:
        """The variety guard of a take that is a single line (``cap`` 1), fed the seed's line; None
        when ``sampling`` turns it off or the take has voices."""
        if not sampling.variety or cap != 1:
            return None
        guard = VarietyGuard()
        for n in melody_line(self.notes):
            guard.strike(n.pitch)
        guard.start()
        return guard

    def tonal_prior(self, sampling: SamplingConfig, shift: int = 0) -> TonalPrior | None:
        """The tonal prior of a take continuing this seed, in a family's pitch space ``shift``
        semitones above the song's (None when ``sampling`` turns it off)."""
        return TonalPrior.for_sketch(
            (n.pitch for n in self.notes), [n.length for n in self.notes], sampling, shift
        )

    def allowed_pcs(self, key_lock: str | None, shift: int = 0) -> frozenset[int] | None:
        """The pitch classes the key lock allows (the shared sampler's rule), moved by ``shift``."""
        pcs = allowed_pitch_classes(key_lock, [n.pitch for n in self.notes], [n.length for n in self.notes])
        return None if pcs is None else frozenset((pc + shift) % 12 for pc in pcs)


def seed_context(
    song: Song,
    track: int = 0,
    *,
    start_tick: int | None = None,
    bars: int = 4,
    context_steps: int = CONTEXT_STEPS,
) -> SeedContext:
    """Read the sketch on ``track`` for a model: quantise to 16ths, keep the last ``context_steps``.

    Raises GenerationError when the track does not exist or has no notes before ``start_tick``.
    """
    reading = read_sketch(song, track, start_tick)
    step_ticks = reading.ticks_per_step
    start_step = reading.start_step
    raw = reading.notes
    if not raw:
        raise GenerationError("the track has no notes to continue: sketch a few notes first")
    notes: list[StepNote] = []
    sketch_velocities: dict[tuple[int, int], int] = {}
    for n in raw:
        s = round(n.start_tick / step_ticks)
        e = min(round(n.end_tick / step_ticks), start_step)
        if s >= start_step:
            continue
        if s >= start_step - context_steps:
            notes.append(StepNote(s, max(1, e - s), n.pitch))
            sketch_velocities[s, n.pitch] = n.velocity
    if not notes:
        notes = [StepNote(start_step - 1, 1, raw[-1].pitch)]
    notes.sort(key=lambda n: (n.start, n.pitch))
    bar_steps, bar_offset = reading.bar_grid()
    key = estimate_key([n.pitch for n in notes], [n.length for n in notes])
    velocities = sorted(n.velocity for n in raw[-16:])
    return SeedContext(
        resolution=song.resolution,
        start_step=start_step,
        end_step=start_step + max(1, bars) * bar_steps,
        notes=notes,
        bar_steps=bar_steps,
        bar_offset=bar_offset,
        key=key,
        velocity=velocities[len(velocities) // 2],
        channel=reading.channel,
        track=track,
        velocities=sketch_velocities,
    )


def melody_line(notes: list[StepNote]) -> list[StepNote]:
    """The top voice of ``notes``: the highest note at each onset, cut where the next one starts."""
    by_start: dict[int, StepNote] = {}
    for n in notes:
        if n.start not in by_start or n.pitch > by_start[n.start].pitch:
            by_start[n.start] = n
    starts = sorted(by_start)
    out = []
    for i, s in enumerate(starts):
        n = by_start[s]
        length = n.length if i + 1 == len(starts) else min(n.length, starts[i + 1] - s)
        out.append(StepNote(s, max(1, length), n.pitch))
    return out


# -- engines and the session ---------------------------------------------------------------------------
class StreamEngine(ABC):
    """One model's incremental generator over a :class:`SeedContext`.

    ``prefill`` reads the seed once; each ``advance`` costs one model step (one token, character,
    or piano-roll frame) and returns the notes completed by it, in steps from the song's start.
    ``position`` is the step the generated music has reached (no later note can start before it).
    """

    tokens: int = 0
    density: DensityGuide | None = None  # the sketch's notes per step, kept (set by prefill)

    @abstractmethod
    def prefill(self, ctx: SeedContext, sampling: SamplingConfig) -> None:
        """Read the seed (one batched forward pass where the network allows it)."""

    @abstractmethod
    def advance(self, temperature: float) -> list[StepNote]:
        """Sample one step; return the notes that became complete."""

    @property
    @abstractmethod
    def position(self) -> int:
        """The grid step generation has reached."""

    def flush(self) -> list[StepNote]:
        """Notes still sounding when generation stops (cut at the end by the session)."""
        return []


class EngineStepper:
    """A :class:`~musicgen_app.ml.session.Stepper` over a :class:`StreamEngine`: its grid notes
    mapped to the song's ticks, cut at the end of the continuation."""

    def __init__(self, engine: StreamEngine, ctx: SeedContext, sampling: SamplingConfig) -> None:
        self.engine = engine
        self.ctx = ctx
        self.sampling = sampling
        self.n_steps = ctx.end_step - ctx.start_step  # 16th steps asked for (the degenerate-take test)

    @property
    def tokens(self) -> int:
        """The engine's tokens (characters, frames) so far."""
        return self.engine.tokens

    @property
    def finished(self) -> bool:
        """The generated music has reached the end of the continuation."""
        return self.engine.position >= self.ctx.end_step

    def _notes(self, done: list[StepNote]) -> list[Note]:
        ctx = self.ctx
        out = []
        for n in done:
            if n.start < ctx.start_step or n.start >= ctx.end_step or not 0 <= n.pitch <= 127:
                continue
            end = min(n.start + max(1, n.length), ctx.end_step)
            velocity = n.velocity or ctx.velocity
            out.append(Note(ctx.to_tick(n.start), n.pitch, ctx.to_tick(end), velocity, ctx.channel))
        return out

    @property
    def density(self) -> DensityGuide | None:
        """The engine's density guide (set in its prefill; None when off)."""
        return self.engine.density

    def prefill(self) -> None:
        """Read the seed."""
        with torch.inference_mode():
            self.engine.prefill(self.ctx, self.sampling)

    def advance(self, temperature: float) -> list[Note]:
        """One engine step."""
        with torch.inference_mode():
            return self._notes(self.engine.advance(temperature))

    def flush(self) -> list[Note]:
        """The notes still sounding, closed at the end."""
        with torch.inference_mode():
            return self._notes(self.engine.flush())


class FamilySession(StreamSession):
    """Drives a :class:`StreamEngine` and yields NoteEvents in the song's ticks, then SessionFinished."""

    def __init__(
        self, engine: StreamEngine, ctx: SeedContext, sampling: SamplingConfig, max_steps: int
    ) -> None:
        super().__init__(
            EngineStepper(engine, ctx, sampling), temperature=sampling.temperature, track=ctx.track,
            max_steps=max_steps,
        )  # fmt: skip
        self.engine = engine
        self.ctx = ctx
        self.sampling = sampling
        self.n_steps = ctx.end_step - ctx.start_step  # 16th steps asked for (the degenerate-take test)


def fit_register(pitch: int, lo: int = 21, hi: int = 108) -> int:
    """``pitch`` moved by octaves into [lo, hi]."""
    while pitch < lo:
        pitch += 12
    while pitch > hi:
        pitch -= 12
    return pitch


def masked(logits: np.ndarray, allowed: torch.Tensor) -> np.ndarray:
    """Logits (V,) with the disallowed entries at -1e30 (for the shared sampler)."""
    return np.where(allowed.numpy(), logits.astype(np.float64), -1e30)


# -- the token LSTM of papers 000 and 001 --------------------------------------------------------------
@dataclass
class TokenLSTMConfig:
    """Architecture arguments (stored in the card). ``dense_size`` 0: no dense layer before the head.
    ``feature_dim`` > 0: every token is also described by a fixed 0/1 feature row (a chord's pitches
    and pitch classes), whose learned embeddings are added to the token's own, at the input and at
    the output, so rare chords share what their notes have in common with frequent ones."""

    vocab_size: int
    embed_dim: int
    hidden_size: int
    num_layers: int
    dropout: float
    dense_size: int = 0
    feature_dim: int = 0


class TokenLSTM(torch.nn.Module):
    """Embedding -> stacked LSTM -> (Dense ReLU) -> logits over the vocabulary."""

    features: torch.Tensor  # a buffer (V, F) when cfg.feature_dim

    def __init__(self, cfg: TokenLSTMConfig, features: np.ndarray | None = None) -> None:
        super().__init__()
        nn = torch.nn
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.lstm = nn.LSTM(
            cfg.embed_dim, cfg.hidden_size, cfg.num_layers, batch_first=True, dropout=cfg.dropout
        )
        self.drop = nn.Dropout(cfg.dropout)
        if cfg.dense_size:
            self.dense = nn.Linear(cfg.hidden_size, cfg.dense_size)
        out_dim = cfg.dense_size or cfg.hidden_size
        self.head = nn.Linear(out_dim, cfg.vocab_size)
        if cfg.feature_dim:
            f = (
                torch.zeros(cfg.vocab_size, cfg.feature_dim)
                if features is None
                else torch.as_tensor(features)
            )
            self.register_buffer("features", f.float())  # (V, F), saved with the weights
            self.feat_in = nn.Parameter(0.02 * torch.randn(cfg.feature_dim, cfg.embed_dim))  # (F, E)
            self.feat_out = nn.Parameter(0.02 * torch.randn(cfg.feature_dim, out_dim))  # (F, D)

    def input_table(self) -> torch.Tensor:
        """(V, E) input embedding of every token."""
        w = self.embed.weight
        return w + self.features @ self.feat_in if self.cfg.feature_dim else w

    def output_weight(self) -> torch.Tensor:
        """(V, D) output weights of every token."""
        w = self.head.weight
        return w + self.features @ self.feat_out if self.cfg.feature_dim else w

    def forward(
        self,
        tokens: torch.Tensor,
        state: tuple | None = None,
        last_only: bool = False,
        tables: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple]:
        """Logits (B, T, V) of the token after each of ``tokens`` (B, T) (with ``last_only``: after
        the last one, (B, 1, V), what a prefill needs), and the LSTM state. ``tables``: precomputed
        ``(input_table(), output_weight())``."""
        y, state = self.top_states(tokens, state, tables)  # (B, T, H)
        if last_only:
            y = y[:, -1:]  # (B, 1, H)
        return self.head_logits(y, tables), state  # (B, T, V)

    def top_states(
        self,
        tokens: torch.Tensor,
        state: tuple | None = None,
        tables: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple]:
        """The top LSTM layer's output (B, T, H) after each of ``tokens`` (B, T), and the state."""
        inp = tables[0] if tables else self.input_table()
        return self.lstm(torch.nn.functional.embedding(tokens, inp), state)

    def head_logits(
        self, y: torch.Tensor, tables: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Logits (B, T, V) from top-layer outputs ``y`` (B, T, H)."""
        out = tables[1] if tables else self.output_weight()
        if self.cfg.dense_size:
            y = torch.relu(self.dense(self.drop(y)))  # (B, T, D)
        return torch.nn.functional.linear(self.drop(y), out, self.head.bias)  # (B, T, V)


class TokenLSTMEnsemble(torch.nn.Module):
    """Several :class:`TokenLSTM` s over one vocabulary, read side by side, whose next-token
    distributions are mixed: ``p(w) = Σ_k weights[k] p_k(w)`` (the weights chosen on validation
    data). It has a TokenLSTM's reading interface: its top state is the members' top states side by
    side (what the continuous cache keys on) and its "logits" are the mixture's log-probabilities,
    so scoring, the cache and the streaming stepper treat it as one network."""

    weights: torch.Tensor  # a buffer (K,): the mixture weights, summing to 1

    def __init__(self, members: list[TokenLSTM], weights: list[float] | None = None) -> None:
        super().__init__()
        if not members or len({m.cfg.vocab_size for m in members}) != 1:
            raise ValueError("an ensemble needs members over one vocabulary")
        self.members = torch.nn.ModuleList(members)  # the weights' names: members.0.embed.weight...
        self.nets: list[TokenLSTM] = list(members)  # the same, typed
        w = torch.full((len(members),), 1.0 / len(members)) if weights is None else torch.tensor(weights)
        self.register_buffer("weights", (w / w.sum()).float())
        self.cfg = members[0].cfg
        self.sizes = [m.cfg.hidden_size for m in members]

    def set_weights(self, weights: list[float]) -> None:
        """New mixture weights (normalised to sum 1)."""
        w = torch.tensor(weights, dtype=torch.float32)
        self.weights.copy_(w / w.sum())

    def forward(
        self, tokens: torch.Tensor, state: tuple | None = None, last_only: bool = False, tables: None = None
    ) -> tuple[torch.Tensor, tuple]:
        """Log-probabilities (B, T, V) of the token after each of ``tokens`` (B, T) (``last_only``:
        after the last one), and the members' states."""
        y, state = self.top_states(tokens, state)  # (B, T, K*H)
        if last_only:
            y = y[:, -1:]
        return self.head_logits(y), state

    def top_states(self, tokens: torch.Tensor, state: tuple | None = None, tables: None = None) -> tuple:
        """The members' top-layer outputs side by side (B, T, K*H), and their states."""
        outs = [m.top_states(tokens, None if state is None else s) for m, s in
                zip(self.nets, state or [None] * len(self.nets), strict=True)]  # fmt: skip
        return torch.cat([y for y, _ in outs], dim=-1), tuple(s for _, s in outs)

    def head_logits(self, y: torch.Tensor, tables: None = None) -> torch.Tensor:
        """The mixture's log-probabilities (B, T, V) from the side-by-side states ``y`` (B, T, K*H)."""
        parts = torch.split(y, self.sizes, dim=-1)
        logp = torch.stack(
            [torch.log_softmax(m.head_logits(h), dim=-1) for m, h in zip(self.nets, parts, strict=True)]
        )  # (K, B, T, V)
        return torch.logsumexp(logp + torch.log(self.weights)[:, None, None, None], dim=0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def cached_on(owner: torch.nn.Module, make: Callable[[], T]) -> T:
    """``make()``'s result, built once per network and kept on it (precomputed tables)."""
    cache = owner.__dict__.setdefault("_family_cache", {})
    key = getattr(make, "__qualname__", repr(make))
    if key not in cache:
        cache[key] = make()
    return cache[key]


@contextlib.contextmanager
def onednn() -> Iterator[None]:
    """oneDNN on for a block (a prefill over a sequence), as it was afterwards (single steps)."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = True  # type: ignore[assignment]  # torch types it as a descriptor
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


class LSTMStepper:
    """Batch-1 steps of a trained ``nn.LSTM`` in numpy (float32), without torch's per-op cost.

    The first layer's input projection is left to the caller (a table lookup for token inputs,
    a sum of a few rows for sparse piano-roll frames); the other layers and the recurrences are
    plain matrix-vector products. The state is ``(h, c)``, each a list of (H,) vectors per layer.
    """

    def __init__(self, lstm: torch.nn.LSTM) -> None:
        L = lstm.num_layers

        def n(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)

        with torch.no_grad():
            self.w_ih = [n(getattr(lstm, f"weight_ih_l{i}").T) for i in range(L)]  # (in, 4H)
            self.w_hh = [n(getattr(lstm, f"weight_hh_l{i}").T) for i in range(L)]  # (H, 4H)
            self.bias = [n(getattr(lstm, f"bias_ih_l{i}") + getattr(lstm, f"bias_hh_l{i}")) for i in range(L)]
        self.H = lstm.hidden_size

    @staticmethod
    def state_from(state: tuple[torch.Tensor, torch.Tensor]) -> tuple[list, list]:
        """Convert nn.LSTM's ``(h, c)`` (L, 1, H) into per-layer numpy vectors."""
        h, c = state
        h, c = h.detach(), c.detach()
        return [h[i, 0].numpy() for i in range(h.shape[0])], [c[i, 0].numpy() for i in range(c.shape[0])]

    def step(self, proj0: np.ndarray, state: tuple[list, list]) -> tuple[np.ndarray, tuple[list, list]]:
        """One step from the first layer's input projection ``proj0`` (4H,) without its bias (or a
        batch: (B, 4H), the state's vectors (B, H))."""
        hs, cs = state
        H = self.H
        new_h, new_c = [], []
        x = proj0  # replaced by each layer's output
        for i, (h, c) in enumerate(zip(hs, cs, strict=True)):
            pre = proj0 if i == 0 else x @ self.w_ih[i]  # (4H,)
            g = pre + self.bias[i] + h @ self.w_hh[i]  # (4H,): input, forget, cell, output gates
            gate_in, forget, cell = _sigmoid(g[..., :H]), _sigmoid(g[..., H : 2 * H]), g[..., 2 * H : 3 * H]
            c = forget * c + gate_in * np.tanh(cell)  # (H,)
            h = _sigmoid(g[..., 3 * H :]) * np.tanh(c)  # (H,)
            new_h.append(h)
            new_c.append(c)
            x = h
        return x, (new_h, new_c)  # x: (H,) top layer's output


class TokenStepper:
    """Fast batch-1 use of a :class:`TokenLSTM`: embeddings and output weights computed once, the
    first layer's input projection of every token precomputed (a table lookup per step)."""

    def __init__(self, net: TokenLSTM) -> None:
        self.net = net
        self.lstm = LSTMStepper(net.lstm)
        with torch.no_grad():
            self.tables = (net.input_table().contiguous(), net.output_weight().contiguous())  # (V, E), (V, D)
            self.table = self.tables[0].detach().numpy() @ self.lstm.w_ih[0]  # (V, 4H)
            self.out_w = np.ascontiguousarray(self.tables[1].detach().numpy().T)  # (D, V)
            self.out_b = net.head.bias.detach().numpy().copy()
            if net.cfg.dense_size:
                self.dense_w = np.ascontiguousarray(net.dense.weight.detach().numpy().T)  # (H, D)
                self.dense_b = net.dense.bias.detach().numpy().copy()

    @classmethod
    def of(cls, net: TokenLSTM) -> TokenStepper:
        """The stepper of ``net`` (built once, kept on the network)."""
        return cached_on(net, lambda: cls(net))

    def prefill(self, tokens: list[int]) -> tuple[np.ndarray, tuple[list, list]]:
        """Read a prompt in one pass: logits (V,) of the token after it, and the stepper state."""
        with onednn():  # oneDNN's LSTM is quicker over a sequence
            logits, state = self.net(
                torch.tensor([tokens], dtype=torch.long), last_only=True, tables=self.tables
            )
        return logits[0, -1].detach().numpy(), LSTMStepper.state_from(state)

    def prefill_states(self, tokens: list[int]) -> tuple[np.ndarray, np.ndarray, tuple[list, list]]:
        """Like :meth:`prefill`, with the top layer's state (T, H) after each prompt token."""
        with onednn():
            y, state = self.net.top_states(torch.tensor([tokens], dtype=torch.long), tables=self.tables)
            logits = self.net.head_logits(y[:, -1:], self.tables)
        return logits[0, -1].detach().numpy(), y[0].detach().numpy(), LSTMStepper.state_from(state)

    def step(self, token: int, state: tuple[list, list]) -> tuple[np.ndarray, tuple[list, list]]:
        """Logits (V,) of the token after ``token``, and the new state."""
        logits, _, state = self.step_states(token, state)
        return logits, state

    def step_states(
        self, token: int, state: tuple[list, list]
    ) -> tuple[np.ndarray, np.ndarray, tuple[list, list]]:
        """Logits (V,) of the token after ``token``, the top layer's state (H,), and the new state."""
        h, state = self.lstm.step(self.table[token], state)  # (H,)
        return self.head(h), h, state

    def head(self, h: np.ndarray) -> np.ndarray:
        """Logits (V,) (or (B, V)) from the top layer's state ``h`` (H,) (or (B, H))."""
        y = np.maximum(h @ self.dense_w + self.dense_b, 0.0) if self.net.cfg.dense_size else h  # (D,)
        return y @ self.out_w + self.out_b


class EnsembleStepper:
    """:class:`TokenStepper` s of a :class:`TokenLSTMEnsemble` 's members, stepped together: the same
    interface, the state one per member, the top state side by side and the "logits" the mixture's
    log-probabilities (as the ensemble computes them)."""

    def __init__(self, net: TokenLSTMEnsemble) -> None:
        self.net = net
        self.members = [TokenStepper.of(m) for m in net.nets]
        self.log_w = np.log(net.weights.detach().numpy().astype(np.float64))  # (K,)
        self.sizes = np.cumsum(net.sizes)[:-1]

    @classmethod
    def of(cls, net: TokenLSTMEnsemble) -> EnsembleStepper:
        """The stepper of ``net`` (built once, kept on the network)."""
        return cached_on(net, lambda: cls(net))

    def _mix(self, logits: list[np.ndarray]) -> np.ndarray:
        from musicgen_app.ml.families.cache import log_softmax

        logp = np.stack([log_softmax(z) for z in logits]) + self.log_w.reshape(-1, *([1] * logits[0].ndim))
        m = logp.max(axis=0)
        return m + np.log(np.exp(logp - m).sum(axis=0))

    def prefill(self, tokens: list[int]) -> tuple[np.ndarray, list]:
        """Read a prompt in one pass: log-probabilities (V,) of the token after it, and the state."""
        outs = [s.prefill(tokens) for s in self.members]
        return self._mix([z for z, _ in outs]), [st for _, st in outs]

    def prefill_states(self, tokens: list[int]) -> tuple[np.ndarray, np.ndarray, list]:
        """Like :meth:`prefill`, with the side-by-side top states (T, K*H) after each prompt token."""
        outs = [s.prefill_states(tokens) for s in self.members]
        return (self._mix([z for z, _, _ in outs]), np.concatenate([y for _, y, _ in outs], axis=-1),
                [st for _, _, st in outs])  # fmt: skip

    def step(self, token: int, state: list) -> tuple[np.ndarray, list]:
        """Log-probabilities (V,) of the token after ``token``, and the new state."""
        logp, _, state = self.step_states(token, state)
        return logp, state

    def step_states(self, token: int, state: list) -> tuple[np.ndarray, np.ndarray, list]:
        """Log-probabilities (V,), the side-by-side top state (K*H,), and the new state."""
        outs = [s.step_states(token, st) for s, st in zip(self.members, state, strict=True)]
        h = np.concatenate([h for _, h, _ in outs])  # (K*H,)
        return self._mix([z for z, _, _ in outs]), h, [st for _, _, st in outs]

    def head(self, h: np.ndarray) -> np.ndarray:
        """Log-probabilities (V,) (or (B, V)) from the side-by-side top state ``h`` (K*H,) (or (B, K*H))."""
        parts = np.split(h, self.sizes, axis=-1)
        return self._mix([s.head(x) for s, x in zip(self.members, parts, strict=True)])


def stepper_of(net: TokenLSTM | TokenLSTMEnsemble) -> TokenStepper | EnsembleStepper:
    """The fast batch-1 stepper of a token LSTM or of an ensemble of them."""
    return EnsembleStepper.of(net) if isinstance(net, TokenLSTMEnsemble) else TokenStepper.of(net)


class CachedTokenStepper:
    """A :class:`TokenStepper` whose next-token distribution is mixed with the take's continuous
    cache (:mod:`musicgen_app.ml.families.cache`); with no cache, the model's own. The state is
    ``(LSTM state, PieceMemory or None)``; what it returns are log-probabilities (or, with no
    cache, the raw logits), which the engines mask and sample as before."""

    def __init__(self, net: TokenLSTM | TokenLSTMEnsemble, cache: CacheConfig | None) -> None:
        self.stepper = stepper_of(net)
        self.cache = cache

    def prefill(self, tokens: list[int]) -> tuple[np.ndarray, tuple]:
        """Read a prompt: the distribution of the token after it; the prompt fills the cache."""
        if self.cache is None:
            logits, state = self.stepper.prefill(tokens)
            return logits, (state, None)
        logits, states, state = self.stepper.prefill_states(tokens)
        memory = PieceMemory(self.cache, states.shape[1])
        memory.extend(unit(states[:-1]), tokens[1:])
        return memory.log_probs(logits, states[-1]), (state, memory)

    def step(self, token: int, state: tuple) -> tuple[np.ndarray, tuple]:
        """The distribution of the token after ``token`` (which joins the cache), and the new state."""
        lstm_state, memory = state
        if memory is None:
            logits, lstm_state = self.stepper.step(token, lstm_state)
            return logits, (lstm_state, None)
        memory.add(token)
        logits, h, lstm_state = self.stepper.step_states(token, lstm_state)
        return memory.log_probs(logits, h), (lstm_state, memory)


def sequence_nll(
    net: TokenLSTM | TokenLSTMEnsemble, sequences: list[list[int]], cache: CacheConfig | None = None
) -> tuple[float, float, int]:
    """(mean NLL in nats per token, accuracy, tokens) of whole sequences, each read from its start
    (the first token is given), with the continuous ``cache`` when one is given."""
    from musicgen_app.ml.families.cache import piece_log_probs

    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for seq in sequences:
            x = torch.tensor([seq], dtype=torch.long)
            y, _ = net.top_states(x[:, :-1])
            logits = net.head_logits(y)[0].numpy()
            tgt = np.asarray(seq[1:], dtype=np.int64)
            logp = piece_log_probs(logits, y[0].numpy(), tgt, cache)  # (T, V)
            total -= float(logp[np.arange(len(tgt)), tgt].sum())
            correct += int((logp.argmax(-1) == tgt).sum())
            count += len(tgt)
    return total / max(1, count), correct / max(1, count), count


def tune_cache(net: TokenLSTM | TokenLSTMEnsemble, sequences: list[list[int]]) -> tuple[CacheConfig, dict]:
    """The continuous cache's settings chosen on ``sequences`` (the validation split, each read
    from its start), and the search's record (:func:`musicgen_app.ml.families.cache.tune`)."""
    from musicgen_app.ml.families.cache import Piece, tune

    pieces = []
    with torch.no_grad():
        for seq in sequences:
            x = torch.tensor([seq], dtype=torch.long)
            y, _ = net.top_states(x[:, :-1])
            pieces.append(Piece.of(net.head_logits(y)[0].numpy(), y[0].numpy(), np.asarray(seq[1:])))
    return tune(pieces)
