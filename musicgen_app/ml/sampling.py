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

**Chords** (``SamplingConfig.chords``: the chord lane, or ``continue --chords``) condition every
melody model at sampling time, without retraining: each pitch whose pitch class belongs to the
chord sounding at the token's time (``sample(..., tick=)``; the family says which song tick the
token stands for) gets :data:`CHORD_BIAS` nats more than the other pitches, and the pitch tokens
together keep the probability the model gave them (so the model still decides *when* a note
starts, and the chord weighs *which*). A chord tone becomes four times as likely relative to a
non-chord tone than the model had it; the model still chooses passing notes, and the key lock
still masks what is out of key. N.C. (and no chord) changes nothing. The piano-roll families,
which draw every key of a frame, reweigh their onset probabilities the same way
(:meth:`ChordGuide.reweigh`: chord tones times e^bias, the frame's summed onset probability kept;
for the GAN, whose keys sound above a threshold, the frame's largest).

**Density** (``SamplingConfig.density``, on by default; 0 turns it off): a continuation keeps the
sketch's rhythmic density, as a musician continuing a sketch would unless asked otherwise.
:class:`DensityGuide` measures the sketch's notes per 16th step over its last
:data:`DENSITY_TARGET_STEPS` steps (the target) and the take's running density (an exponentially
weighted count over about two bars, started at the target, so the first steps are untouched); at
every "start a note now or not" decision it adds ``b = clip(density * ln(target / running),
+-DENSITY_LIMIT)`` nats to the log-odds of starting one. The decision differs per family, the
bias does not: grid tokens (a pitch token against hold and rest), piano-roll onset logits (every
key), the GAN's onset probabilities (times e^b), and families that choose an interval (a duration,
the next onset's position) through :meth:`DensityGuide.tilt_intervals`, which turns the interval
distribution into per-step hazards, moves each hazard's log-odds by ``b`` and puts them back
together (the same control as a grid model's, one step at a time). The pitches are not touched.

**Key** (``SamplingConfig.tonal``, on by default; 0, or the key lock ``"free"``, turns it off):
with the key lock off a take still leans into the sketch's key. :class:`TonalPrior` takes
:data:`TONAL_GAIN` nats from each pitch outside the classes the auto key lock would allow, as a
base bias on the pitch tokens (``Sampler(tonal=)``), the mean over a chord token's notes, or the
onset probabilities of a frame reweighed with its total kept (:func:`reweigh_onsets`). A line
that circles on a few pitches loses nats on them through :class:`VarietyGuard`; chord-lstm's
durations lean to the sketch's note values through :class:`RhythmPrior`.

The sampler is model-agnostic: it sees token *classes* through :class:`TokenClasses` (which id is
a rest, a hold, which pitch each id stands for), built by each model family from its tokenizer.
"""

from __future__ import annotations

import bisect
import logging
import math
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from musicgen_app.core.chords import ChordSpan
from musicgen_app.errors import GenerationError
from musicgen_app.ml.keys import Key, estimate_key, parse_key

logger = logging.getLogger(__name__)


def random_seed(bits: int = 63) -> int:
    """A fresh random seed (stored with a take so it can be reproduced)."""
    return secrets.randbits(bits)


_NEG = -1e30
#: Nats a tone of the chord sounding at the token's time gains against the other pitches: ln 4, a
#: chord tone four times as likely, against a non-chord tone, as the model had it (a fixed design
#: constant, chosen before any measurement, not tuned on the benchmark).
CHORD_BIAS = math.log(4.0)
#: Nats of onset log-odds per unit of log density error (the take's running notes per step against
#: the sketch's), and the most the guide ever adds or takes. Chosen on sketches from the training
#: splits (``benchmarks/bench_density.py``), not on the judge's held-out ones.
DENSITY_GAIN = 3.0
DENSITY_LIMIT = 1.5
DENSITY_TARGET_STEPS = 64  # the sketch's last 4 bars of 4/4 set the target density
DENSITY_MEMORY_STEPS = 32.0  # the running density forgets with this time constant (2 bars of 4/4)
#: The rhythm prior: a duration choice's logits gain ``RHYTHM_GAIN * ln(p_sketch(d) / p_sketch(mode))``
#: (at most RHYTHM_LIMIT nats taken), p_sketch the sketch's own note values (16th steps) smoothed by
#: RHYTHM_SMOOTHING counts each. Chosen on training sketches (``benchmarks/bench_density.py --rhythms``,
#: chord-lstm, 100 sketches of each of 4 kinds): at temperature 0.9, 384/400 passed at 0.5 against 378
#: off, 381 at 0.25 and 380 at 1; at 0.8 and 1.0 too, 0.5 passed the most (389 and 379 of 400).
RHYTHM_GAIN = 0.5
RHYTHM_LIMIT = 2.0
RHYTHM_SMOOTHING = 0.5
#: The variety guard: over the last VARIETY_WINDOW notes of a line, each pitch loses
#: ``VARIETY_GAIN * shortfall * (its strikes there) / VARIETY_WINDOW`` nats (at most
#: VARIETY_LIMIT), where the shortfall is how many fewer distinct pitches those notes hold than the
#: sketch's windows of the same length do on average; nothing while the take is as varied as the sketch.
#: The gain was chosen on training sketches (every shipped model, 100 sketches of each kind at
#: temperatures 0.8, 0.9 and 1.0): 8141 of 8400 takes passed the judge at 8 against 8127 at 2, and
#: the weakest cell rose from 89% (pianoroll-gan folk at 1.0) to 91%.
VARIETY_WINDOW = 8
VARIETY_GAIN = 8.0
VARIETY_LIMIT = 3.0
#: The tonal prior: a pitch outside the sketch's key (the auto key lock's pitch classes: the
#: diatonic collection that covers the sketch, plus any class the sketch itself plays) loses
#: TONAL_GAIN nats: a soft pull into the key, short of the key lock (a chromatic note stays
#: possible), that leaves every note of the key alike. Chosen on training sketches (every shipped
#: model, 100 sketches of each kind at temperatures 0.8, 0.9 and 1.0), never on the judge's
#: held-out ones: 8233 of 8400 takes passed the judge at 2 nats, 8197 at 1.
TONAL_GAIN = 2.0
FREE_KEY = "free"  # the key lock's setting for no lock and no tonal prior
VOICES = ("sketch", "harmony")  # the texture control: as sketched, or add harmony
_DIATONIC = [Key(root, "major").diatonic_pcs() for root in range(12)]


@dataclass
class SamplingConfig:
    """How tokens are drawn. ``key_lock``: ``"auto"`` (estimated from the sketch), a key name
    (``"D dorian"``, ``"F#m"``), ``None``/``"off"``, or ``"free"`` (off, and the tonal prior off
    too: nothing pulls the take toward the sketch's key). ``seed=None`` draws a fresh seed."""

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
    chords: tuple[ChordSpan, ...] = ()  # chords (song ticks) the take follows; () = none
    density: float = DENSITY_GAIN  # the density guide's gain (0: off; see DensityGuide)
    rhythm: float = RHYTHM_GAIN  # the rhythm prior's gain (0: off; see RhythmPrior)
    variety: bool = True  # the variety guard on a line (see VarietyGuard)
    tonal: float = TONAL_GAIN  # the tonal prior's gain (0: off; see TonalPrior)

    def __post_init__(self) -> None:
        if isinstance(self.key_lock, str) and self.key_lock.strip().lower() == FREE_KEY:
            self.key_lock, self.tonal = None, 0.0
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise GenerationError(f"temperature must be a positive number, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise GenerationError(f"top-p must be in (0, 1], not {self.top_p}")
        if self.top_k < 0:
            raise GenerationError(f"top-k must be >= 0, not {self.top_k}")
        if not (self.density >= 0 and math.isfinite(self.density)):
            raise GenerationError(f"the density guide's gain must be >= 0, not {self.density}")
        if not (self.rhythm >= 0 and math.isfinite(self.rhythm)):
            raise GenerationError(f"the rhythm prior's gain must be >= 0, not {self.rhythm}")
        if not (self.tonal >= 0 and math.isfinite(self.tonal)):
            raise GenerationError(f"the tonal prior's gain must be >= 0, not {self.tonal}")
        if self.voices not in VOICES:
            raise GenerationError(f"voices must be one of {', '.join(VOICES)}, not {self.voices!r}")


class ChordGuide:
    """The chords a take follows, as per-token logit biases (see the module docstring).

    ``spans`` are in song ticks and song pitch; ``shift`` is the semitones the family adds to the
    song's pitches to reach its own (a key-normalised model), so that the bias lands on the pitch
    ids that sound as the chord's tones once moved back.
    """

    def __init__(self, spans: Sequence[ChordSpan], shift: int = 0, strength: float = CHORD_BIAS) -> None:
        self.spans = sorted((s for s in spans if s.chord is not None), key=lambda s: s.start_tick)
        self.starts = [s.start_tick for s in self.spans]
        self.shift = shift
        self.strength = strength
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def __bool__(self) -> bool:
        return bool(self.spans)

    def pitch_classes_at(self, tick: int) -> frozenset[int] | None:
        """The chord's pitch classes at song ``tick`` in the model's pitch space (None: no chord)."""
        i = bisect.bisect_right(self.starts, tick) - 1
        if i < 0 or tick >= self.spans[i].end_tick:
            return None
        chord = self.spans[i].chord
        assert chord is not None
        return frozenset((pc + self.shift) % 12 for pc in chord.pitch_classes())

    def tones(self, id_pitch: np.ndarray, tick: int) -> np.ndarray | None:
        """(V,) bool: which ids (pitch per id, -1: not a pitch) are chord tones at ``tick``; None
        when no chord sounds there."""
        i = bisect.bisect_right(self.starts, tick) - 1
        if i < 0 or tick >= self.spans[i].end_tick:
            return None
        key = (i, id(id_pitch))
        out = self._cache.get(key)
        if out is None:
            pcs = self.pitch_classes_at(tick) or frozenset()
            out = (id_pitch >= 0) & np.isin(id_pitch % 12, list(pcs))
            self._cache[key] = out
        return out

    def apply(self, z: np.ndarray, id_pitch: np.ndarray, tick: int) -> None:
        """Move the logits ``z`` (V,) in place: chord tones ``strength`` nats up against the other
        pitches, the pitch tokens' total probability unchanged."""
        tone = self.tones(id_pitch, tick)
        if tone is None or not tone.any():
            return
        is_pitch = (id_pitch >= 0) & (z > _NEG / 2)
        if not (is_pitch & tone).any():
            return
        zp = z[is_pitch]
        before = _logsumexp(zp)
        moved = zp + np.where(tone[is_pitch], self.strength, 0.0)
        z[is_pitch] = moved - (_logsumexp(moved) - before)

    def reweigh(self, pitches: np.ndarray, onset: np.ndarray, tick: int, keep: str = "sum") -> np.ndarray:
        """Onset probabilities ``onset`` (K,) of keys ``pitches`` (K,) with the chord tones at
        ``tick`` weighed e^strength times more, scaled so that their sum (``keep="sum"``: sampled
        keys) or their largest (``"max"``: keys chosen by a threshold) is unchanged (at most 1)."""
        tone = self.tones(pitches, tick)
        if tone is None or not tone.any():
            return onset
        return reweigh_onsets(onset, np.where(tone, self.strength, 0.0), keep)


class DensityGuide:
    """Keeps a take's notes per step near the sketch's (see the module docstring).

    Time is in 16th steps; the family reports the notes it starts (:meth:`onset`) and asks for the
    bias at each decision (:meth:`bias`, :meth:`tilt_intervals`). Build it with
    :meth:`for_sketch`, which returns None when the guide is off."""

    def __init__(self, target: float, start_step: int, gain: float = DENSITY_GAIN,
                 limit: float | None = None, memory: float = DENSITY_MEMORY_STEPS) -> None:  # fmt: skip
        self.target = max(float(target), 1.0 / DENSITY_TARGET_STEPS)  # notes per step
        self.gain = float(gain)
        self.limit = float(DENSITY_LIMIT if limit is None else limit)
        self.decay = math.exp(-1.0 / memory)
        self.step = int(start_step)  # the running figures cover the steps before this one
        self.weight = 1.0 / (1.0 - self.decay)  # weighted steps seen (saturated: the sketch's)
        self.count = self.target * self.weight  # weighted notes: the running density starts at the target
        self.notes = 0  # notes the take started

    @classmethod
    def for_sketch(
        cls, starts: Iterable[int], start_step: int, config: SamplingConfig
    ) -> DensityGuide | None:
        """The guide for a sketch whose notes start at ``starts`` (16th steps, one entry per note;
        the continuation starts at ``start_step``), or None when ``config.density`` is 0."""
        if not config.density:
            return None
        starts = [s for s in starts if s < start_step]
        first = min(starts, default=start_step - 1)
        span = max(1, min(DENSITY_TARGET_STEPS, start_step - first))
        recent = sum(1 for s in starts if s >= start_step - span)
        return cls(recent / span, start_step, config.density)

    def _advance(self, step: int) -> None:
        n = step - self.step
        if n > 0:
            f = self.decay**n
            self.count *= f
            self.weight = self.weight * f + (1.0 - f) / (1.0 - self.decay)
            self.step = step

    @property
    def running(self) -> float:
        """The take's running notes per step (weighted toward the latest steps)."""
        return self.count / self.weight

    def onset(self, step: int, notes: int = 1) -> None:
        """``notes`` notes start at ``step``."""
        if notes > 0:
            self._advance(step)
            self.count += notes
            self.notes += notes

    def bias(self, step: int) -> float:
        """Nats added to the log-odds of starting a note at ``step`` (positive: the take has been
        sparser than the sketch)."""
        self._advance(step)
        error = math.log(self.target / max(self.running, 1e-3 * self.target))
        return max(-self.limit, min(self.limit, self.gain * error))

    def interval_tilt(self, step: int) -> float:
        """For a family that sees no interval distribution (it writes the interval digit by
        digit): ``lam`` of the exponential tilt ``p(d) e^(-lam d)`` (d in steps) that moves a
        geometric interval of the target's mean as :meth:`bias` moves each step's log-odds."""
        return (math.exp(self.bias(step)) - 1.0) * self.target

    def tilt_intervals(self, z: np.ndarray, ids: Sequence[int] | np.ndarray, step: int) -> None:
        """Move the logits ``z`` in place for a choice of interval: ``ids`` are the tokens of an
        interval of 1, 2, 3... steps from ``step`` (the last one may stand for "later"). Their
        distribution becomes per-step hazards (the chance the next note comes at this step, given
        it has not yet), each hazard's log-odds moves by :meth:`bias`, and the hazards are put
        back together; the ids keep their total probability, the other tokens are untouched."""
        b = self.bias(step)
        idx = np.asarray(ids, dtype=np.int64)
        zi = z[idx]
        live = zi > _NEG / 2
        if abs(b) < 1e-9 or live.sum() < 2:
            return
        zl = zi[live]
        total = _logsumexp(zl)
        p = np.exp(zl - total)
        survive = np.clip(1.0 - np.concatenate([[0.0], np.cumsum(p)[:-1]]), 1e-300, None)
        h = np.clip(p / survive, 0.0, 1.0)
        h[-1] = 1.0  # the last interval takes whatever is left
        inner = (h > 0) & (h < 1)
        odds = np.log(h[inner]) - np.log1p(-h[inner]) + b
        h[inner] = 1.0 / (1.0 + np.exp(-odds))
        keep = np.concatenate([[1.0], np.cumprod(1.0 - h)[:-1]])
        moved = np.log(np.maximum(h * keep, 1e-300)) + total
        zi[live] = moved
        z[idx] = zi


class RhythmPrior:
    """The sketch's own note values as a prior on a family's duration choice: a take in 6/8 keeps
    its dotted quarters and eighths, where a model of 4/4 chorales would write quarter notes.

    The bias of a length of ``d`` steps is ``gain * ln(p(d) / p(mode))``, ``p`` the sketch's
    durations (counts plus :data:`RHYTHM_SMOOTHING` each, over 1 .. ``max_steps``), at most
    :data:`RHYTHM_LIMIT` nats below the sketch's commonest value: the model's duration distribution
    times the sketch's to a small power (a product of experts), bounded like the density guide. Build it with
    :meth:`for_sketch`, which returns None when the prior is off or the sketch has no durations."""

    def __init__(self, lengths: Iterable[int], gain: float = RHYTHM_GAIN, max_steps: int = 32,
                 limit: float = RHYTHM_LIMIT) -> None:  # fmt: skip
        counts = np.bincount(np.clip(np.asarray(list(lengths), dtype=np.int64), 1, max_steps),
                             minlength=max_steps + 1)[1:].astype(np.float64)  # fmt: skip
        p = (counts + RHYTHM_SMOOTHING) / (counts.sum() + RHYTHM_SMOOTHING * max_steps)  # (max_steps,)
        self.biases = np.maximum(gain * np.log(p / p.max()), -limit)  # (max_steps,) lengths 1 .. max_steps

    @classmethod
    def for_sketch(
        cls, lengths: Iterable[int], config: SamplingConfig, max_steps: int = 32
    ) -> RhythmPrior | None:
        """The prior of a sketch whose notes (or slices) last ``lengths`` steps, or None."""
        lengths = [d for d in lengths if d > 0]
        if not config.rhythm or not lengths:
            return None
        return cls(lengths, config.rhythm, max_steps)

    def apply(self, z: np.ndarray, ids: Sequence[int] | np.ndarray) -> None:
        """Add the bias to the logits ``z`` in place; ``ids`` the tokens of lengths 1, 2, 3... steps."""
        idx = np.asarray(ids, dtype=np.int64)
        z[idx] += self.biases[: len(idx)]


class TonalPrior:
    """The sketch's key as a prior on a family's pitch choice: with the key lock off, a model of
    C-major chorales continuing a tune in E-flat still leans to the tune's scale, where at
    temperature 1 it would now and then step outside it (an outside note keeps e^-2, about a
    seventh, of its probability at the default gain).

    A pitch whose class is outside the sketch's key (:func:`allowed_pitch_classes` ``"auto"``, the
    key lock's own reading: the diatonic collection covering the sketch plus the classes it plays)
    loses ``gain`` nats; every class of the key is left alike, so a tune that used three notes of
    its scale may still use the other four. Build it with :meth:`for_sketch`, which returns None
    when the prior is off or the sketch is silent."""

    def __init__(self, key_pcs: Iterable[int], gain: float = TONAL_GAIN) -> None:
        inside = np.zeros(12, dtype=bool)
        inside[[int(pc) % 12 for pc in key_pcs]] = True
        self.biases = np.where(inside, 0.0, -float(gain))  # (12,) per pitch class

    @classmethod
    def for_sketch(
        cls, pitches: Iterable[int], lengths: Iterable[float], config: SamplingConfig, shift: int = 0
    ) -> TonalPrior | None:
        """The prior of a sketch whose notes have ``pitches`` and last ``lengths`` (any unit), in
        a family's pitch space ``shift`` semitones above the song's; None when off or silent."""
        if not config.tonal:
            return None
        pitches, lengths = list(pitches), [max(float(d), 1e-6) for d in lengths]
        key = allowed_pitch_classes("auto", pitches, lengths)
        if key is None:
            return None
        return cls(((pc + shift) % 12 for pc in key), config.tonal)

    def pitch_bias(self, pitches: np.ndarray) -> np.ndarray:
        """Nats for each of ``pitches`` (MIDI numbers; a negative one, not a pitch, gets 0)."""
        p = np.asarray(pitches)
        return np.where(p >= 0, self.biases[np.clip(p, 0, None) % 12], 0.0)

    def token_bias(self, key_matrix: np.ndarray) -> np.ndarray:
        """(V,) nats for tokens that sound the pitches of ``key_matrix`` (V, 128): the mean over
        each token's pitches (0 for a token without one, a rest or a duration)."""
        per_key = self.pitch_bias(np.arange(key_matrix.shape[1]))
        count = key_matrix.sum(1)
        return np.where(count > 0, (key_matrix @ per_key) / np.maximum(count, 1), 0.0)

    def reweigh(self, onset: np.ndarray, pitches: np.ndarray) -> np.ndarray:
        """Onset probabilities ``onset`` (..., K) of keys ``pitches`` (K,) moved by the prior
        (:func:`reweigh_onsets`: each frame's expected onsets kept)."""
        return reweigh_onsets(onset, self.pitch_bias(pitches))


def reweigh_onsets(onset: np.ndarray, nats: np.ndarray, keep: str = "sum") -> np.ndarray:
    """Per-key onset probabilities ``onset`` (..., K) times ``e^nats`` (K,), each frame scaled back
    to its sum (``keep="sum"``, keys drawn: which keys start moves, how many notes start does not)
    or to its largest (``"max"``: keys chosen by a threshold); none above 1."""
    weighted = onset * np.exp(nats)
    if keep == "sum":
        ref, now = onset.sum(-1, keepdims=True), weighted.sum(-1, keepdims=True)
    else:
        ref, now = onset.max(-1, keepdims=True), weighted.max(-1, keepdims=True)
    scale = np.where(now > 0, ref / np.where(now > 0, now, 1.0), 1.0)
    return np.minimum(weighted * scale, 1.0 - 1e-6)


class VarietyGuard:
    """Keeps a line from circling on two or three pitches (a repetition-aware penalty; the
    sampler's ``max_repeats`` only stops one pitch struck over and over in a row).

    Fed every note of the line (sketch first, :meth:`strike`); once the take starts
    (:meth:`start`), the sketch's variety is the target: the mean number of distinct pitches in its
    windows of :data:`VARIETY_WINDOW` notes. :meth:`penalty` gives each pitch the nats it loses."""

    def __init__(self) -> None:
        self.recent: list[int] = []
        self.sketch: list[int] | None = []  # the sketch's pitches until the take starts
        self.target = 0.0

    def strike(self, pitch: int) -> None:
        """A note of ``pitch`` starts (sketch or take)."""
        self.recent = [*self.recent[-(VARIETY_WINDOW - 1) :], int(pitch)]
        if self.sketch is not None:
            self.sketch = [*self.sketch[-4 * VARIETY_WINDOW + 1 :], int(pitch)]

    def start(self) -> None:
        """The sketch has been read: fix the target variety."""
        if self.sketch is None:
            return
        sk, w = self.sketch, VARIETY_WINDOW
        windows = [sk[i : i + w] for i in range(max(1, len(sk) - w + 1))]
        self.target = float(np.mean([len(set(x)) for x in windows])) if len(sk) >= w else 0.0
        self.sketch = None

    def penalty(self, pitches: np.ndarray) -> np.ndarray | None:
        """(K,) nats each of ``pitches`` loses now, or None when the line is varied enough."""
        self.start()
        if len(self.recent) < VARIETY_WINDOW:
            return None
        short = self.target - len(set(self.recent))
        if short <= 0:
            return None
        counts = np.zeros(128)
        np.add.at(counts, np.clip(self.recent, 0, 127), 1.0)
        pen = np.minimum(VARIETY_GAIN * short * counts / VARIETY_WINDOW, VARIETY_LIMIT)
        return np.where(pitches >= 0, pen[np.clip(pitches, 0, 127)], 0.0)


def _logsumexp(z: np.ndarray) -> float:
    m = float(z.max())
    return m + math.log(float(np.exp(z - m).sum()))


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
        pitch_shift: int = 0,
        tonal: TonalPrior | None = None,
    ) -> None:
        self.classes = classes
        self.chords = ChordGuide(config.chords, pitch_shift)
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
        if tonal is not None:  # the sketch's pitch classes (in the model's key), a soft pull
            base = base + tonal.pitch_bias(classes.id_pitch)
        self.base_mask = base
        self.rest_steps = 0  # steps since the current rest began (0 when a note sounds)
        self.hold_steps = 0  # steps the current note has been held
        self.last_pitch = -1
        self.repeats = 0  # onsets of last_pitch in a row
        self.in_rest = False
        self.variety = VarietyGuard() if config.variety else None

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
                if self.variety is not None:
                    self.variety.strike(p)
                self.repeats = self.repeats + 1 if p == self.last_pitch else 1
                self.last_pitch = p
                self.in_rest, self.rest_steps, self.hold_steps = False, 0, 1

    def sample(self, logits: np.ndarray, temperature: float, tick: int | None = None) -> int:
        """One token id from raw logits (V,), then :meth:`observe` it. ``tick``: the song tick the
        token stands for, where the take follows chords (see :class:`ChordGuide`)."""
        require_finite(logits)
        cfg = self.config
        c = self.classes
        z = logits.astype(np.float64) + self.base_mask
        if tick is not None and self.chords:
            self.chords.apply(z, c.id_pitch, tick)
        if self.variety is not None and (pen := self.variety.penalty(c.id_pitch)) is not None:
            z -= pen
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
