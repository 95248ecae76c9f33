"""Paper 001's note/chord token LSTM, with the durations the paper threw away.

Encoding. A chorale is cut into vertical slices at every note start and end (music21's
``chordify``, done here on the 16th grid); each slice becomes two tokens: the set of sounding
pitches (a *chord token*: a single note, a chord, or ``r`` for silence) and its length in 16ths
(``d1`` .. ``d32``). The chord's identity is its music21 normal order (the pitch-class set, as the
paper writes it: ``0.4.7``); the token also keeps the voicing (the MIDI pitches, low to high),
because a MIDI app must put each voice in its register. Pieces are transposed to C major / A minor
(Krumhansl-Schmuckler), and chord tokens seen fewer than ``min_count`` times in training are
dropped, as in the paper: their slice is merged into the previous one. Besides the four-voice
chorales, the model also reads each chorale's soprano alone, so a single-line sketch is in its
vocabulary and it continues melodies as melodies and chorales as chorales.

Network (as in the paper): embedding -> 2 x LSTM(256), dropout 0.2 -> Dense(256) ReLU -> softmax.

Decoding. A pitch held from one slice to the next is one note (a tie), so a note is complete, and
streamed, at the first slice that no longer holds it. On a single line (the texture control keeps
one note a slice) a slice is cut only where a note starts or ends, so a held note is one slice
(two only past ``d32``) and the same note in the next slice is the same pitch struck again, as in
the sopranos the model read: it is decoded as a new note, not a tie (as a tie, every repeated note
of a pop or folk line was lost: 3.4 notes a bar against the real 5.3).
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from musicgen_app.errors import CheckpointError
from musicgen_app.ml.families.cache import CacheConfig
from musicgen_app.ml.families.chorales import Chorale
from musicgen_app.ml.families.common import (
    CachedTokenStepper,
    SeedContext,
    StepNote,
    StreamEngine,
    TokenLSTM,
    TokenLSTMConfig,
    TokenLSTMEnsemble,
    masked,
    sequence_nll,
)
from musicgen_app.ml.keys import estimate_key, transposition_to_reference
from musicgen_app.ml.sampling import RhythmPrior, Sampler, SamplingConfig, TokenClasses

logger = logging.getLogger(__name__)

BOS, REST = "<s>", "r"
MAX_DUR = 32
DUR_TOKENS = [f"d{i}" for i in range(1, MAX_DUR + 1)]
ARCHITECTURE = "chord-lstm"
PREFILL_SLICES = 8  # the sketch's last slices read at the start (two tokens each), for a quick first note
# with the continuous cache, more of the sketch is read, so the cache holds more than its last bar
# to draw on (with 8 slices a take fed back into a near-empty cache repeats itself more; ~2 ms more)
PREFILL_SLICES_CACHED = 32


# -- slices -------------------------------------------------------------------------------------------
def slices_of(
    notes: list[StepNote], start: int | None = None, end: int | None = None
) -> list[tuple[tuple[int, ...], int]]:
    """``(sounding pitches ascending, length)`` for every slice between note boundaries (empty = rest).

    ``start``/``end`` bound the region (defaults: first onset .. last release).
    """
    if not notes:
        return []
    a = min(n.start for n in notes) if start is None else start
    b = max(n.start + n.length for n in notes) if end is None else end
    cuts = sorted(
        {a, b}
        | {n.start for n in notes if a < n.start < b}
        | {n.start + n.length for n in notes if a < n.start + n.length < b}
    )
    out = []
    for s, e in itertools.pairwise(cuts):
        pitches = tuple(sorted({n.pitch for n in notes if n.start <= s < n.start + n.length}))
        out.append((pitches, e - s))
    return out


def chord_name(pitches: tuple[int, ...]) -> str:
    """The token text of a slice: ``r``, or its MIDI pitches joined with dots (``48.55.64.72``)."""
    return REST if not pitches else ".".join(str(p) for p in pitches)


def normal_order(pitches: tuple[int, ...]) -> tuple[int, ...]:
    """music21's normal order of the slice's pitch-class set (the paper's chord identity)."""
    if not pitches:
        return ()
    from music21 import chord

    return tuple(chord.Chord(list(pitches)).normalOrder)


def chorale_step_notes(ch: Chorale, voices: tuple[int, ...] | None = None) -> tuple[list[StepNote], int]:
    """The chorale's notes (optionally some voices only) moved to C major / A minor, and the shift."""
    key = estimate_key([n[2] for n in ch.notes], [n[1] for n in ch.notes])
    shift = transposition_to_reference(key)
    notes = [StepNote(s, d, p + shift) for s, d, p, v in ch.notes if voices is None or v in voices]
    return notes, shift


def piece_slices(ch: Chorale) -> list[list[tuple[tuple[int, ...], int]]]:
    """The training sequences of one chorale: all four voices, and the soprano alone."""
    full, _ = chorale_step_notes(ch)
    sop, _ = chorale_step_notes(ch, voices=(0,))
    return [slices_of(full), slices_of(sop)]


# -- vocabulary ----------------------------------------------------------------------------------------
@dataclass
class ChordVocab:
    """Token table: ``<s>``, ``r``, ``d1..d32``, then the kept chord tokens (most frequent first)."""

    chords: list[str]
    min_count: int = 3

    kind = "chord-duration"

    def __post_init__(self) -> None:
        self.tokens = [BOS, REST, *DUR_TOKENS, *self.chords]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.n_dur = len(DUR_TOKENS)
        self.first_chord = 2 + self.n_dur
        self.pitches: list[tuple[int, ...]] = [()] * len(self.tokens)
        for i, t in enumerate(self.tokens[self.first_chord :], start=self.first_chord):
            self.pitches[i] = tuple(int(x) for x in t.split("."))
        self.pc_matrix = np.zeros((len(self.tokens), 12), dtype=bool)  # (V, 12) pitch classes of each token
        for i, p in enumerate(self.pitches):
            self.pc_matrix[i, [q % 12 for q in p]] = True
        self.key_matrix = np.zeros(
            (len(self.tokens), 128), dtype=np.float32
        )  # (V, 128) MIDI pitches of each token
        for i, p in enumerate(self.pitches):
            self.key_matrix[i, list(p)] = 1.0
        self.classes = self.token_classes()
        singles = sorted(p[0] for p in self.pitches if len(p) == 1)
        self.single_range = (singles[0], singles[-1]) if singles else (60, 72)

    @property
    def size(self) -> int:
        """Number of tokens."""
        return len(self.tokens)

    def to_dict(self) -> dict:
        """The vocabulary as data (stored in the card)."""
        return {"kind": self.kind, "min_count": self.min_count, "tokens": self.tokens}

    @classmethod
    def from_dict(cls, d: dict) -> ChordVocab:
        """Rebuild from a card."""
        toks = list(d["tokens"])
        return cls(chords=toks[2 + len(DUR_TOKENS) :], min_count=int(d.get("min_count", 3)))

    @classmethod
    def build(cls, sequences: list[list[tuple[tuple[int, ...], int]]], min_count: int) -> ChordVocab:
        """Keep chord tokens seen at least ``min_count`` times."""
        counts = Counter(chord_name(p) for seq in sequences for p, _ in seq if p)
        kept = [t for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count]
        return cls(chords=kept, min_count=min_count)

    def dur_id(self, length: int) -> int:
        """The id of a duration token (lengths above 32 are clipped; callers split them)."""
        return 2 + min(MAX_DUR, max(1, length)) - 1

    def is_dur(self, i: int) -> bool:
        """Whether id ``i`` is a duration token."""
        return 2 <= i < self.first_chord

    def dur_of(self, i: int) -> int:
        """Length in 16ths of duration token ``i``."""
        return i - 1

    def chord_id(self, pitches: tuple[int, ...]) -> int | None:
        """The id of a slice's chord token, or None when it was dropped as rare."""
        return self.index.get(chord_name(pitches))

    def seed_chord_id(self, pitches: tuple[int, ...]) -> int:
        """The nearest kept token for a sketch's slice: itself, else its top note (folded into the
        range the model knows), else a rest."""
        i = self.chord_id(pitches)
        if i is not None:
            return i
        top = pitches[-1]
        lo, hi = self.single_range
        while top < lo:
            top += 12
        while top > hi:
            top -= 12
        return self.index.get(str(top), self.index[REST])

    def encode(self, slices: list[tuple[tuple[int, ...], int]], bos: bool = True) -> list[int]:
        """Token ids: ``<s>``, then chord, duration, chord, duration... Rare chords merge into the
        previous slice; slices longer than 32 sixteenths repeat their chord."""
        kept: list[list] = []
        for p, d in slices:
            i = self.chord_id(p) if p else self.index[REST]
            if i is None:
                if kept:
                    kept[-1][1] += d
                continue
            kept.append([i, d])
        ids = [self.index[BOS]] if bos else []
        for i, d in kept:
            while d > 0:
                ids += [i, self.dur_id(min(d, MAX_DUR))]
                d -= MAX_DUR
        return ids

    def masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(after a chord: durations allowed, after a duration: chords/rests allowed), bool (V,)."""
        dur = torch.zeros(self.size, dtype=torch.bool)
        dur[2 : self.first_chord] = True
        chord = torch.zeros(self.size, dtype=torch.bool)
        chord[self.first_chord :] = True
        chord[self.index[REST]] = True
        return dur, chord

    def in_key_mask(self, scale: frozenset[int]) -> torch.Tensor:
        """Chord tokens whose pitch classes all belong to ``scale`` (plus rests)."""
        outside = np.ones(12, dtype=bool)
        outside[list(scale)] = False
        ok = np.asarray(~(self.pc_matrix & outside).any(axis=1))  # (V,)
        ok[: self.first_chord] = False
        ok[self.index[REST]] = True
        return torch.from_numpy(ok)

    def features(self) -> np.ndarray:
        """(V, 140) 0/1: each chord token's MIDI pitches (128) and pitch classes (12); zero rows for
        durations, rests and ``<s>``."""
        f = np.zeros((self.size, 140), dtype=np.float32)
        for i, p in enumerate(self.pitches):
            f[i, list(p)] = 1.0
        f[:, 128:] = self.pc_matrix
        return f

    def token_classes(self) -> TokenClasses:
        """What the shared sampler needs: the rest id, and each chord's top note as its pitch."""
        top = np.array([p[-1] if p else -1 for p in self.pitches], dtype=np.int64)
        return TokenClasses(self.size, rest_id=self.index[REST], hold_id=None, id_pitch=top, never=(0,))


# -- network -------------------------------------------------------------------------------------------
def chord_lstm_config(vocab_size: int) -> TokenLSTMConfig:
    """Paper 001's network: embedding, 2 x LSTM(256) with dropout 0.2, Dense(256) ReLU, softmax; plus
    (our addition) each chord token's pitches and pitch classes as features at input and output."""
    return TokenLSTMConfig(
        vocab_size, embed_dim=128, hidden_size=256, num_layers=2, dropout=0.2, dense_size=256, feature_dim=140
    )


# -- streaming -----------------------------------------------------------------------------------------
class ChordStreamEngine(StreamEngine):
    """Chord, duration, chord, duration...: a note is streamed at the first slice that drops it."""

    def __init__(
        self, model: TokenLSTM | TokenLSTMEnsemble, vocab: ChordVocab, cache: CacheConfig | None = None
    ) -> None:
        self.model = model
        self.vocab = vocab
        self.cache = cache  # the continuous cache over the take's own past (None: off)
        self.dur_mask, self.chord_mask = vocab.masks()
        self.tokens = 0

    def prefill(self, ctx: SeedContext, sampling: SamplingConfig) -> None:
        self.ctx = ctx
        self.shift = ctx.transposition()
        moved = [StepNote(n.start, n.length, n.pitch + self.shift) for n in ctx.notes]
        read = PREFILL_SLICES if self.cache is None else PREFILL_SLICES_CACHED
        sketch_slices = slices_of(moved, end=ctx.start_step)
        slices = sketch_slices[-read:]
        ids = [self.vocab.index[BOS]]
        for p, d in slices:
            i = self.vocab.seed_chord_id(p) if p else self.vocab.index[REST]
            while d > 0:
                ids += [i, self.vocab.dur_id(min(d, MAX_DUR))]
                d -= MAX_DUR
        self.stepper = CachedTokenStepper(self.model, self.cache)
        self.logits, self.state = self.stepper.prefill(ids)
        self.pos = ctx.start_step
        self.pending: tuple[int, ...] | None = None
        self.sounding: dict[int, int] = {}  # model-space pitch -> start step
        self.sampler = Sampler(self.vocab.classes, sampling, seed=sampling.seed, pitch_shift=self.shift)
        for t in ids[1:]:
            self.sampler.observe(t)
        allowed = ctx.allowed_pcs(sampling.key_lock, self.shift)
        self.key_mask = None if allowed is None else self.vocab.in_key_mask(allowed)
        # the texture: no token with more notes than the sketch has voices (unless harmony is asked),
        # and, on a sketch in parts, no thinner than one voice fewer than it has (it read every
        # soprano alone too, and without this it let a four-part opening go on as a single line)
        cap = ctx.voice_cap(sampling.voices)
        floor = max(2, ctx.max_voices() - 1) if sampling.voices == "sketch" and cap > 1 else 1
        self.chord_mask = self.chord_mask & torch.tensor(
            [not p or floor <= len(p) <= cap for p in self.vocab.pitches]
        )
        self.line = cap == 1  # a slice repeating the last one strikes its note again
        self.last_dur = 0
        # the density guide: a slice that starts a note against a rest, and each duration (the time
        # to the next slice) through per-step hazards
        self.density = ctx.density_guide(sampling)
        self.dur_ids = np.arange(2, self.vocab.first_chord)  # d1..d32 in order
        self.token_keys = self.vocab.key_matrix  # (V, 128) each token's MIDI pitches
        self.has_notes = np.asarray(self.vocab.key_matrix.any(axis=1))  # every slice but a rest
        # the rhythm prior: the sketch's own slice lengths (its note values on a line) tilt each
        # duration choice, so a take in 6/8 keeps its dotted values where the chorales have quarters
        self.rhythm = RhythmPrior.for_sketch((d for _, d in sketch_slices), sampling, MAX_DUR)
        # the tonal prior: the sketch's pitch classes (in the model's key) tilt each slice's notes
        tonal = ctx.tonal_prior(sampling, self.shift)
        self.tonal_bias = None if tonal is None else tonal.token_bias(self.vocab.key_matrix)

    @property
    def position(self) -> int:
        return self.pos

    def advance(self, temperature: float) -> list[StepNote]:
        expecting_dur = self.pending is not None
        mask = self.dur_mask if expecting_dur else self.chord_mask
        if self.key_mask is not None and not expecting_dur:
            mask = mask & self.key_mask
        tick = None if expecting_dur else self.ctx.to_tick(self.pos)
        z = masked(self.logits, mask)
        if self.rhythm is not None and expecting_dur:
            self.rhythm.apply(z, self.dur_ids)
        if self.tonal_bias is not None and not expecting_dur:
            z += self.tonal_bias
        if self.density is not None:
            if expecting_dur:
                self.density.tilt_intervals(z, self.dur_ids, self.pos + 1)
            else:
                z += np.where(self._starts_note(), self.density.bias(self.pos), 0.0)
        tok = self.sampler.sample(z, temperature, tick)
        self.tokens += 1
        self.logits, self.state = self.stepper.step(tok, self.state)
        if not expecting_dur:
            self.pending = self.vocab.pitches[tok]
            if self.density is not None:  # the notes this slice starts (as the duration will find them)
                strike = self.line and self.last_dur < MAX_DUR  # a line strikes its slice again
                self.density.onset(self.pos, sum(1 for p in self.pending if strike or p not in self.sounding))
            return []
        d = self.vocab.dur_of(tok)
        chord = self.pending or ()
        self.pending = None
        again = set(chord) if self.line and self.last_dur < MAX_DUR else set()
        done = [StepNote(s, self.pos - s, p - self.shift) for p, s in self.sounding.items()
                if p not in chord or p in again]  # fmt: skip
        self.sounding = {p: self.pos if p in again else self.sounding.get(p, self.pos) for p in chord}
        self.last_dur = d
        self.pos += d
        return done

    def _starts_note(self) -> np.ndarray:
        """(V,) bool: the tokens whose slice would start a note now (a line strikes every slice
        again; in parts, a slice of notes that are all held on starts none)."""
        if self.line:
            return self.has_notes
        held = np.ones(128, dtype=np.float32)
        held[list(self.sounding)] = 0.0
        return np.asarray((self.token_keys @ held) > 0)

    def flush(self) -> list[StepNote]:
        return [StepNote(s, self.pos - s, p - self.shift) for p, s in self.sounding.items()]


def token_batches(sequences: list[list[int]], seq_len: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """A random batch (B, seq_len + 1) of windows from the concatenated sequences."""
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
    starts = torch.randint(0, len(flat) - seq_len - 1, (batch,), generator=gen).numpy()
    return torch.from_numpy(np.stack([flat[s : s + seq_len + 1] for s in starts]))


# -- training and evaluation ------------------------------------------------------------------------------
SEQ_LEN = 128


def _loss(model: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, int]:
    logits, _ = model(batch[:, :-1])  # (B, T, V)
    target = batch[:, 1:]  # (B, T)
    s = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum")
    return s, target.numel()


def encoded_split(vocab: ChordVocab, chorales: list[Chorale], soprano: bool = True) -> list[list[int]]:
    """Token sequences of ``chorales`` (four voices, and the soprano alone when ``soprano``)."""
    out = []
    for ch in chorales:
        seqs = piece_slices(ch)
        out += [vocab.encode(s) for s in (seqs if soprano else seqs[:1])]
    return out


def chorale_token_splits(vocab: ChordVocab) -> dict[str, list[list[int]]]:
    """chord-lstm's chorales as token ids: train (four voices and sopranos alone), val and test
    (four voices)."""
    from musicgen_app.ml.families.chorales import chorale_splits

    splits = chorale_splits()
    return {
        "train": encoded_split(vocab, splits["train"]),
        "val": encoded_split(vocab, splits["valid"], soprano=False),
        "test": encoded_split(vocab, splits["test"], soprano=False),
    }


def train_model(
    name: str = "chord-lstm",
    minutes: float = 10.0,
    min_count: int = 3,
    resume: bool = False,
    dropout: float = 0.2,
    weight_decay: float | None = None,
    lr: float | None = None,
    seed: int = 0,
    patience: int = 5,
) -> dict:
    """Build the data, train, evaluate on the test chorales and write models/<name>.*; returns the card.
    ``weight_decay`` None: 1e-3 when resuming, else 0; ``lr`` None: 1e-3 when resuming, else 2e-3."""
    from musicgen_app.ml.families.checkpoint import save_checkpoint
    from musicgen_app.ml.families.chorales import chorale_splits
    from musicgen_app.ml.training import TrainConfig, maybe_resume, train, training_record

    splits = chorale_splits()
    train_slices = [s for ch in splits["train"] for s in piece_slices(ch)]
    vocab = ChordVocab.build(train_slices, min_count)
    data = {k: encoded_split(vocab, v) for k, v in splits.items()}
    cfg = chord_lstm_config(vocab.size)
    cfg.dropout = dropout
    model = TokenLSTM(cfg, vocab.features())
    if resume:
        from musicgen_app.ml.families.checkpoint import read_card

        if read_card(name).get("ensemble"):
            raise CheckpointError(f"{name} is an ensemble of chord LSTMs; resume one of its members")
    previous = maybe_resume(name, model, resume)
    gen = torch.Generator().manual_seed(1)
    valid = [token_batches(data["valid"], SEQ_LEN, 32, gen) for _ in range(6)]
    res = train(
        model,
        _loss,
        lambda g: token_batches(data["train"], SEQ_LEN, 32, g),
        valid,
        TrainConfig(
            minutes=minutes,
            lr=(1e-3 if resume else 2e-3) if lr is None else lr,
            eval_every=100,
            patience=patience,
            weight_decay=(1e-3 if resume else 0.0) if weight_decay is None else weight_decay,
            seed=seed,
        ),
    )
    test_full = encoded_split(vocab, splits["test"], soprano=False)
    nll, acc, n = sequence_nll(model, test_full)
    card = {
        "name": name,
        "family": "chord-lstm",
        "architecture": ARCHITECTURE,
        "seed_paper": "001",
        "title": "Note/chord token LSTM (paper 001) with durations",
        "description": (
            "Chords (normal-order pitch-class sets, kept with their voicing) and durations as tokens; "
            "2 x LSTM(256), dropout 0.2, Dense(256) ReLU, softmax, as in paper 001, plus the duration "
            "tokens the paper dropped, and (our addition) each chord's pitches and pitch classes as "
            "features beside its token embedding, at the input and the output. Polyphonic."
        ),
        "data": {
            "dataset": "Bach chorales (music21 corpus)",
            "pieces": {k: len(v) for k, v in splits.items()},
            "split": "by chorale, sha1 of the name (80/10/10)",
            "transposition": "each chorale to C major / A minor (Krumhansl-Schmuckler)",
            "grid": "16th notes",
            "also_reads": "each chorale's soprano alone (so a single-line sketch is in the vocabulary)",
            "rare_tokens": f"chord tokens seen fewer than {min_count} times in training are merged into "
            "the previous slice",
        },
        "config": asdict(cfg),
        "vocab": vocab.to_dict(),
        "training": training_record(res, previous),
        "metrics": {"test_nll": round(nll, 4), "test_accuracy": round(acc, 4), "test_tokens": n,
                    "unit": "nats/token", "test_set": "four-voice test chorales"},
    }  # fmt: skip
    save_checkpoint(name, model, card)
    logger.info("saved %s: test NLL %.3f, accuracy %.3f", name, nll, acc)
    return card


def load_model_from_card(card: dict, path: str) -> tuple[TokenLSTM | TokenLSTMEnsemble, ChordVocab]:
    """Rebuild network (one LSTM, or the ensemble the card's ``ensemble`` describes) and vocabulary
    from a card and load the weights at ``path``."""
    from musicgen_app.ml.families.checkpoint import load_weights

    vocab = ChordVocab.from_dict(card["vocab"])
    k = int(card["ensemble"]["members"]) if card.get("ensemble") else 1
    nets = [TokenLSTM(TokenLSTMConfig(**card["config"])) for _ in range(k)]  # a config each
    model: TokenLSTM | TokenLSTMEnsemble = TokenLSTMEnsemble(nets) if card.get("ensemble") else nets[0]
    load_weights(path, model)
    return model, vocab


def engine_factory(card: dict, path: str):
    """A function making fresh streaming engines over the model a card describes."""
    model, vocab = load_model_from_card(card, path)
    cache = CacheConfig.from_card(card)
    return lambda: ChordStreamEngine(model, vocab, cache)


# -- the ensemble ------------------------------------------------------------------------------------------
MIXTURE_GRID = np.round(np.arange(0.0, 1.0001, 0.05), 2)  # a member's weight, in steps of 0.05


def choose_mixture(net: TokenLSTMEnsemble, valid: list[list[int]]) -> tuple[list[float], dict]:
    """The mixture weights with the lowest NLL on ``valid`` (the validation split, without the
    cache): a grid over the simplex in steps of 0.05; and the record of the search."""
    with torch.no_grad():
        logps = []  # per member, the log-probability (N,) of every validation target
        for m in net.nets:
            got = []
            for seq in valid:
                x = torch.tensor([seq], dtype=torch.long)
                y, _ = m.top_states(x[:, :-1])
                table = torch.log_softmax(m.head_logits(y)[0], dim=-1)  # (T, V)
                got.append(table[torch.arange(len(seq) - 1), torch.tensor(seq[1:])].numpy())
            logps.append(np.concatenate(got))
    lp = np.stack(logps).astype(np.float64)  # (K, N)
    k = len(lp)
    best: tuple[float, tuple[float, ...]] | None = None
    for w in itertools.product(MIXTURE_GRID, repeat=k - 1):
        last = 1.0 - sum(w)
        if last < -1e-9:
            continue
        ws = np.array([*w, max(0.0, last)])
        with np.errstate(divide="ignore"):
            v = -float(np.logaddexp.reduce(lp + np.log(ws)[:, None], axis=0).mean())
        if best is None or v < best[0]:
            best = (v, tuple(float(x) for x in ws))
    assert best is not None
    alone = [round(-float(x.mean()), 4) for x in lp]
    return list(best[1]), {
        "val_nll_members": alone,
        "val_nll_mixture": round(best[0], 4),
        "val_tokens": int(lp.shape[1]),
        "chosen_on": "the validation split, without the cache (grid over the simplex, step 0.05)",
    }


def build_ensemble(name: str, members: list[str]) -> dict:
    """Mix the chord-lstm checkpoints ``members`` (same vocabulary) into one checkpoint
    models/<name>.*: the mixture weights chosen on the validation split; the card is the first
    member's with the record of each member's training and the mixture. The continuous cache and
    the test figures are chosen and measured afterwards (``musicgen evaluate NAME --tune-cache``,
    ``--update-card``); returns the card."""
    from musicgen_app.ml.families.checkpoint import model_path, read_card, save_checkpoint

    cards = [read_card(m) for m in members]
    if any(c["vocab"]["tokens"] != cards[0]["vocab"]["tokens"] for c in cards):
        raise CheckpointError("the ensemble's members must share one chord vocabulary")
    nets = []
    for m, c in zip(members, cards, strict=True):
        net, vocab = load_model_from_card({**c, "ensemble": None}, str(model_path(m)))
        assert isinstance(net, TokenLSTM)
        nets.append(net)
    ens = TokenLSTMEnsemble(nets)
    weights, record = choose_mixture(ens, chorale_token_splits(vocab)["val"])
    ens.set_weights(weights)
    card = {k: v for k, v in cards[0].items() if k not in ("weights", "cache", "metrics")}
    card["name"] = name
    card["title"] = f"Note/chord token LSTM (paper 001) with durations, an ensemble of {len(nets)}"
    card["description"] = (
        cards[0]["description"]
        + f" An ensemble of {len(nets)} such LSTMs, trained apart (other seeds), whose next-token "
        "probabilities are mixed with weights chosen on the validation chorales."
    )
    card["ensemble"] = {
        "members": len(nets),
        "weights": [round(w, 4) for w in weights],
        **record,
        "member_names": [Path(m).stem for m in members],
    }
    runs = [c.get("training", {}) for c in cards]
    card["training"] = {
        "steps": sum(int(r.get("steps", 0)) for r in runs),
        "seconds": round(sum(float(r.get("seconds", 0.0)) for r in runs), 1),
        "threads": 1,
        "members": runs,
    }
    save_checkpoint(name, ens, card)
    logger.info("saved %s: an ensemble of %d, weights %s, %s", name, len(nets), weights, record)
    return card
