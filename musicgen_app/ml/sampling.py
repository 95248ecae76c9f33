"""One sampler for every model family: logits in, a token id out.

Per step, in this order:

1. **masks**: tokens the model family never emits (``<s>``), the key/scale lock (pitch tokens
   outside the allowed pitch classes get ``-inf``), the register (pitches more than
   ``register_margin`` semitones outside the sketch's range), and the guards against degenerate output
   (after ``max_rest_steps`` of silence a note must start; a pitch already repeated
   ``max_repeats`` times in a row is forbidden; a note held longer than ``max_hold_steps`` ends).
2. **symbol bias** (paper 003): ``symbol_bias`` nats are subtracted from the rest logit, more the
   longer the melody has been silent, which keeps rests from running away.
3. **temperature**: ``T`` (live-changeable); with ``entropy_temperature`` the paper's entropy-based
   scaling: ``T_eff = T * (1.4 - 0.8 * H / H_max)`` where ``H`` is the Shannon entropy of the
   model's distribution, so a confident model (low ``H``: the usual cause of loops) is sampled
   hotter and an unsure one cooler; then ``p'_i = exp(log p_i / T_eff) / sum_j exp(log p_j / T_eff)``.
4. **top-k** and **top-p** (nucleus) truncation, then one draw from a seeded
   ``numpy.random.Generator`` (the same seed gives the same take).

The sampler is model-agnostic: it sees token *classes* through :class:`TokenClasses` (which id is
a rest, a hold, which pitch each id stands for), built by each model family from its tokenizer.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from musicgen_app.errors import GenerationError
from musicgen_app.ml.keys import Key, estimate_key, parse_key

logger = logging.getLogger(__name__)


def random_seed(bits: int = 63) -> int:
    """A fresh random seed (stored with a take so it can be reproduced)."""
    return secrets.randbits(bits)


_NEG = -1e30
VOICES = ("sketch", "harmony")  # the texture control: as sketched, or add harmony
_DIATONIC = [Key(root, "major").diatonic_pcs() for root in range(12)]


@dataclass
class SamplingConfig:
    """How tokens are drawn. ``key_lock``: ``"auto"`` (estimated from the sketch), a key name
    (``"D dorian"``, ``"F#m"``) or ``None``/``"off"``. ``seed=None`` draws a fresh seed."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    entropy_temperature: bool = False
    symbol_bias: float = 0.5
    key_lock: str | None = "auto"
    seed: int | None = None
    max_retries: int = 3
    max_rest_steps: int = 16
    max_repeats: int = 4
    max_hold_steps: int = 32
    register_margin: int | None = 12  # pitches further than this outside the sketch's range are masked
    forbid: tuple[int, ...] = field(default_factory=tuple)
    voices: str = "sketch"  # "sketch": keep the sketch's texture (a line stays a line); "harmony": add voices

    def __post_init__(self) -> None:
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise GenerationError(f"temperature must be a positive number, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise GenerationError(f"top-p must be in (0, 1], not {self.top_p}")
        if self.top_k < 0:
            raise GenerationError(f"top-k must be >= 0, not {self.top_k}")
        if self.voices not in VOICES:
            raise GenerationError(f"voices must be one of {', '.join(VOICES)}, not {self.voices!r}")


@dataclass(frozen=True)
class TokenClasses:
    """What the sampler needs to know about a vocabulary."""

    vocab_size: int
    rest_id: int | None
    hold_id: int | None
    id_pitch: np.ndarray  # (V,) MIDI pitch of each id, -1 for non-pitch tokens
    never: tuple[int, ...] = ()  # ids never sampled (e.g. <s>)


def allowed_pitch_classes(
    key_lock: str | None,
    sketch_pitches: Iterable[int],
    sketch_weights: Iterable[float] | None = None,
    sketch_key: Key | None = None,
) -> frozenset[int] | None:
    """The pitch classes a key lock allows, in the sketch's own key (None: no lock).

    ``auto``: the diatonic collection (7 notes of some major scale) that covers most of the
    sketch's note time, ties broken by the Krumhansl-Schmuckler key, plus any other pitch class the
    sketch itself uses (a raised leading tone, a chromatic passing note). A named key allows its
    scale (minor also allows the raised 6th and 7th).
    """
    if key_lock is None or str(key_lock).lower() in ("off", "none", ""):
        return None
    pitches = list(sketch_pitches)
    weights = list(sketch_weights) if sketch_weights is not None else [1.0] * len(pitches)
    if str(key_lock).lower() != "auto":
        return parse_key(str(key_lock)).scale_pcs()
    if not pitches:
        return None
    hist = np.zeros(12)
    for p, w in zip(pitches, weights, strict=True):
        hist[p % 12] += w
    ks = sketch_key or estimate_key(pitches, weights)
    key_pcs = ks.diatonic_pcs()
    best_cover, best = -1.0, frozenset[int]()
    for coll in _DIATONIC:
        cover = float(hist[list(coll)].sum())
        # on a tie, prefer the collection sharing most notes with the estimated key's scale
        bonus = 1e-6 * len(coll & key_pcs)
        if cover + bonus > best_cover:
            best_cover, best = cover + bonus, coll
    used = frozenset(int(pc) for pc in np.flatnonzero(hist > 0))
    return best | used


def require_finite(values: np.ndarray) -> None:
    """Raise GenerationError when a model's output (logits or probabilities) holds NaN or inf.

    Every family's sampling step goes through this before a note can come out of it, so damaged
    weights stop a take with a message instead of filling it with one repeated pitch."""
    # one sum (NaN and inf carry through it), the exact test only if it is not finite
    if not math.isfinite(values.sum(dtype=np.float64)) and not np.isfinite(values).all():
        raise GenerationError(
            "the model produced invalid numbers instead of note probabilities (its weights are "
            "probably damaged); it was stopped before writing that note"
        )


class Sampler:
    """Draws tokens for one session (its own random generator and running counters)."""

    def __init__(
        self,
        classes: TokenClasses,
        config: SamplingConfig,
        *,
        allowed_pcs: frozenset[int] | None = None,
        pitch_range: tuple[int, int] | None = None,
        seed: int | None = None,
    ) -> None:
        self.classes = classes
        self.config = config
        self.seed = int(seed if seed is not None else random_seed())
        self.rng = np.random.default_rng(self.seed)
        V = classes.vocab_size
        base = np.zeros(V)
        for t in (*classes.never, *config.forbid):
            base[t] = _NEG
        if allowed_pcs is not None:
            is_pitch = classes.id_pitch >= 0
            pcs = np.where(is_pitch, classes.id_pitch % 12, -1)
            outside = is_pitch & ~np.isin(pcs, list(allowed_pcs))
            base[outside] = _NEG
        if pitch_range is not None and config.register_margin is not None:
            lo, hi = pitch_range[0] - config.register_margin, pitch_range[1] + config.register_margin
            far = (classes.id_pitch >= 0) & ((classes.id_pitch < lo) | (classes.id_pitch > hi))
            base[far] = _NEG
        self.base_mask = base
        self.rest_steps = 0  # steps since the current rest began (0 when a note sounds)
        self.hold_steps = 0  # steps the current note has been held
        self.last_pitch = -1
        self.repeats = 0  # onsets of last_pitch in a row
        self.in_rest = False

    def observe(self, token: int) -> None:
        """Update the running counters with a token that is now part of the melody (sketch or sampled)."""
        c = self.classes
        if token == c.hold_id:
            if self.in_rest:
                self.rest_steps += 1
            else:
                self.hold_steps += 1
        elif token == c.rest_id:
            self.in_rest, self.rest_steps, self.hold_steps = True, 1, 0
        else:
            p = int(c.id_pitch[token])
            if p >= 0:
                self.repeats = self.repeats + 1 if p == self.last_pitch else 1
                self.last_pitch = p
                self.in_rest, self.rest_steps, self.hold_steps = False, 0, 1

    def sample(self, logits: np.ndarray, temperature: float) -> int:
        """One token id from raw logits (V,), then :meth:`observe` it."""
        require_finite(logits)
        cfg = self.config
        c = self.classes
        z = logits.astype(np.float64) + self.base_mask
        if c.rest_id is not None:
            if self.in_rest:
                z[c.rest_id] = _NEG  # a rest after a rest is a hold
                if self.rest_steps >= cfg.max_rest_steps and c.hold_id is not None:
                    z[c.hold_id] = _NEG  # silence long enough: a note must start
            if cfg.symbol_bias:
                z[c.rest_id] -= cfg.symbol_bias * (1.0 + self.rest_steps / 4.0)
        if not self.in_rest and self.hold_steps >= cfg.max_hold_steps and c.hold_id is not None:
            z[c.hold_id] = _NEG
        if self.repeats >= cfg.max_repeats and self.last_pitch >= 0:
            z[c.id_pitch == self.last_pitch] = _NEG
        if not np.any(z > _NEG / 2):
            z = logits.astype(np.float64) + self.base_mask  # the guards left nothing: drop them
        # temperature (optionally scaled by the entropy of the model's own distribution)
        t = max(1e-3, float(temperature))
        if cfg.entropy_temperature:
            p0 = np.exp(z - z.max())
            p0 /= p0.sum()
            nz = p0[p0 > 0]
            h = float(-(nz * np.log(nz)).sum())
            h_max = math.log(max(2, int(np.count_nonzero(z > _NEG / 2))))
            t *= 1.4 - 0.8 * min(1.0, h / h_max)
        z = z / t
        z -= z.max()
        p = np.exp(z)
        if cfg.top_k and cfg.top_k < len(p):
            kth = np.partition(p, -cfg.top_k)[-cfg.top_k]
            p[p < kth] = 0.0
        p /= p.sum()
        if cfg.top_p < 1.0:
            order = np.argsort(-p)
            cum = np.cumsum(p[order])
            cut = int(np.searchsorted(cum, cfg.top_p)) + 1
            keep = np.zeros_like(p)
            keep[order[:cut]] = p[order[:cut]]
            p = keep / keep.sum()
        cum = np.cumsum(p)
        token = int(np.searchsorted(cum, self.rng.random() * cum[-1], side="right"))
        token = min(token, len(p) - 1)
        self.observe(token)
        return token
