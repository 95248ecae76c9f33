"""Paper 002's piano-roll models: an LSTM over frames and its encoder-decoder (seq2seq) variant.

A frame is one 16th note of the 88 piano keys (MIDI 21..108); each key is *silent*, *onset* (a
note starts) or *sustained*: the three-class encoding the paper proposes to fix its regression
model, which could not tell where one note ended and the next began. The network reads the
previous frame (88 onset bits + 88 sustain bits, plus where the frame falls in the bar) and gives
three logits per key; keys are sampled independently given the past, with "sustained" allowed
only on a key that sounds. Training follows the paper's augmentation: random transposition and
note noise (a few notes moved by a Gaussian number of semitones, sigma 1; applied to the network's
input only, so it learns to read through slips). Voices are also dropped at random (the soprano
always stays), so a single-line sketch is something the model has seen.

* ``pianoroll-lstm``: 2 x LSTM(256) over frames.
* ``pianoroll-seq2seq``: an encoder LSTM reads the context frames, a decoder LSTM (started from
  the encoder's state) writes the continuation frame by frame; trained on (64 frames context,
  64 frames continuation) pairs, and streamed in chunks of 64 frames, re-encoding before each.

NLL is reported per frame (summed over the 88 keys, nats) and per key-frame (bits), with the
two-class (on/off) figure obtained by merging onset and sustain, the form the published JSB
Chorales results take.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from musicgen_app.ml.families.chorales import Chorale
from musicgen_app.ml.families.common import (
    LSTMStepper,
    SeedContext,
    StepNote,
    StreamEngine,
    cached_on,
    onednn,
)
from musicgen_app.ml.sampling import ChordGuide, SamplingConfig, random_seed, require_finite, reweigh_onsets

logger = logging.getLogger(__name__)

LOW, KEYS = 21, 88
SILENT, ONSET, SUSTAIN = 0, 1, 2
MAX_BAR_POS = 48
MAX_BAR_STEPS = 64
ARCH_LSTM = "pianoroll-lstm"
PREFILL_FRAMES = 128  # the sketch's last 8 bars of 4/4, read in one batched pass at the start
ARCH_SEQ2SEQ = "pianoroll-seq2seq"


# -- rolls ---------------------------------------------------------------------------------------------
def roll_of(notes: list[tuple[int, int, int]], length: int, start: int = 0) -> np.ndarray:
    """(length, 88) int8 states of ``(start_step, length, pitch)`` notes from step ``start`` on."""
    roll = np.zeros((length, KEYS), dtype=np.int8)
    for s, d, p in sorted(notes, key=lambda n: n[0]):
        k = p - LOW
        if not 0 <= k < KEYS:
            continue
        a, b = s - start, s - start + max(1, d)
        if b <= 0 or a >= length:
            continue
        a0, b0 = max(a, 0), min(b, length)
        roll[a0:b0, k] = np.maximum(roll[a0:b0, k], SUSTAIN)
        if a >= 0:
            roll[a, k] = ONSET
    return roll


def frame_inputs(roll: np.ndarray) -> np.ndarray:
    """(T, 176) float32: onset bits then sustain bits of each frame."""
    return np.concatenate([roll == ONSET, roll == SUSTAIN], axis=1).astype(np.float32)


def chorale_notes(ch: Chorale) -> list[tuple[int, int, int, int]]:
    """``(start, length, pitch, voice)`` rows."""
    return [tuple(n) for n in ch.notes]  # type: ignore[misc]


# -- networks ------------------------------------------------------------------------------------------
@dataclass
class PianoRollConfig:
    """Architecture arguments (stored in the card)."""

    kind: str = "lstm"  # "lstm" or "seq2seq"
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.2
    pos_dim: int = 8
    nade_size: int = 0  # 0: keys drawn independently (the old models); > 0: the note-axis NADE's hidden size


class _FrameInput(nn.Module):
    """Previous frame (176 bits) + bar position and bar length embeddings of the predicted frame."""

    def __init__(self, pos_dim: int) -> None:
        super().__init__()
        self.pos = nn.Embedding(MAX_BAR_POS, pos_dim)
        self.bar = nn.Embedding(MAX_BAR_STEPS, pos_dim)
        self.dim = 2 * KEYS + 2 * pos_dim

    def forward(self, frames: torch.Tensor, bar_pos: torch.Tensor, bar_steps: torch.Tensor) -> torch.Tensor:
        p = self.pos(bar_pos.clamp(0, MAX_BAR_POS - 1))  # (B, T, P)
        b = self.bar(bar_steps.clamp(0, MAX_BAR_STEPS - 1))  # (B, T, P)
        return torch.cat([frames, p, b], dim=-1)  # (B, T, 176 + 2P)


class PianoRollNet(nn.Module):
    """Frame LSTM (``kind='lstm'``) or encoder-decoder (``kind='seq2seq'``), 3 logits per key."""

    def __init__(self, cfg: PianoRollConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.inp = _FrameInput(cfg.pos_dim)
        H, L = cfg.hidden_size, cfg.num_layers
        self.decoder = nn.LSTM(self.inp.dim, H, L, batch_first=True, dropout=cfg.dropout)
        if cfg.kind == "seq2seq":
            self.encoder = nn.LSTM(self.inp.dim, H, L, batch_first=True, dropout=cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(H, KEYS * 3)
        # each key's own transition table (previous state -> logits), added to the LSTM's output:
        # the per-key bigram the frame LSTM would otherwise have to learn through its hidden layer
        self.transition = nn.Parameter(torch.zeros(KEYS, 3, 3))
        if cfg.nade_size:
            # the note axis (RNN-NADE): keys are decided from the top down, each conditioned on the time
            # state (through nade_c) and on the states already chosen above it (through nade_w)
            N = cfg.nade_size
            self.nade_c = nn.Linear(H, N)
            self.nade_w = nn.Parameter(torch.randn(KEYS, 2, N) * 0.05)  # onset/sustain of a key -> hidden
            self.nade_v = nn.Parameter(torch.zeros(KEYS, N, 3))  # hidden -> the key's 3 logits

    def encode(self, frames: torch.Tensor, bar_pos: torch.Tensor, bar_steps: torch.Tensor) -> tuple:
        """The encoder's final state after reading context frames (seq2seq only)."""
        _, state = self.encoder(self.inp(frames, bar_pos, bar_steps))
        return state

    def run(
        self, frames: torch.Tensor, bar_pos: torch.Tensor, bar_steps: torch.Tensor, state: tuple | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """(key-wise logits (B, T, 88, 3) of frame t from frame t-1 (B, T, 176), the time state y
        (B, T, H), the decoder state). Without the NADE the key-wise logits are the whole model."""
        y, state = self.decoder(self.inp(frames, bar_pos, bar_steps), state)  # (B, T, H)
        logits = self.head(self.drop(y)).view(*y.shape[:2], KEYS, 3)  # (B, T, 88, 3)
        prev = (frames[..., :KEYS] + 2 * frames[..., KEYS : 2 * KEYS]).long()  # (B, T, 88) previous states
        return logits + self.transition[torch.arange(KEYS), prev], y, state  # (B, T, 88, 3)

    def nade_term(self, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """What the note axis adds to each key's logits (B, T, 88, 3), teacher-forced on ``target``
        (B, T, 88): key k sees the time state and the target states of the keys above it."""
        onehot = torch.stack([target == ONSET, target == SUSTAIN], -1).float()  # (B, T, 88, 2)
        contrib = torch.einsum("btkc,kcn->btkn", onehot, self.nade_w)  # (B, T, 88, N)
        inclusive = contrib.cumsum(2)
        above = inclusive[:, :, -1:] - inclusive  # keys strictly above k
        h = torch.sigmoid(self.nade_c(self.drop(y)).unsqueeze(2) + above)  # (B, T, 88, N)
        return torch.einsum("btkn,knc->btkc", h, self.nade_v)

    def forward(
        self,
        frames: torch.Tensor,
        bar_pos: torch.Tensor,
        bar_steps: torch.Tensor,
        state: tuple | None = None,
        target: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple]:
        """Logits (B, T, 88, 3) of frame t from frame t-1 (B, T, 176), and the decoder state; with
        the NADE the logits are each key's conditionals given ``target``'s keys above it."""
        logits, y, state = self.run(frames, bar_pos, bar_steps, state)
        if self.cfg.nade_size and target is not None:
            logits = logits + self.nade_term(y, target)
        return logits, state


def frame_nll(
    logits: torch.Tensor, target: torch.Tensor, live: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed 3-class NLL, summed 2-class on/off NLL) over all key-frames, nats.

    ``logits`` (B, T, 88, 3), ``target`` (B, T, 88) int64; ``live`` (B, T) bool: the frames scored
    (default all).
    """
    logp = torch.log_softmax(logits.float(), dim=-1)  # (B, T, 88, 3)
    nll3 = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (B, T, 88)
    on = torch.logsumexp(logp[..., 1:], dim=-1)  # (B, T, 88) log P(key sounds)
    off = logp[..., 0]
    nll2 = -torch.where(target > 0, on, off)
    if live is not None:
        nll3, nll2 = nll3 * live[..., None], nll2 * live[..., None]
    return nll3.sum(), nll2.sum()


# -- training data ----------------------------------------------------------------------------------------
@dataclass
class RollBatch:
    """Inputs (previous frames), bar positions, targets; ``context`` frames are not scored."""

    frames: torch.Tensor  # (B, T, 176)
    bar_pos: torch.Tensor  # (B, T)
    bar_steps: torch.Tensor  # (B, T)
    target: torch.Tensor  # (B, T, 88)
    context: int = 0
    live: torch.Tensor | None = None  # (B, T) bool: frames before the piece's end (the others are not scored)


def _bar_arrays(ch: Chorale, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(start, start + length)
    return (idx - ch.bar_offset) % ch.bar_steps, np.full(length, ch.bar_steps)


def sample_window(
    ch: Chorale, length: int, rng: np.random.Generator, augment: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(input frames (T,176), bar_pos (T,), bar_steps (T,), target roll (T,88), live (T,)) of a
    random window; ``live`` marks the frames before the piece's end (a short tune's window runs on
    into silence, which would teach that a tune stops after a few bars: those frames are not scored).

    Frame t's input is frame t-1 (zeros before the piece starts).
    """
    total = ch.length_steps
    start = int(rng.integers(-8, max(-7, total - length + 1)))
    rows = chorale_notes(ch)
    shift = 0
    if augment:
        shift = int(rng.integers(-6, 6))
        r = rng.random()  # half the windows keep all four voices, a fifth the soprano alone
        keep = (
            {0, 1, 2, 3}
            if r < 0.5
            else {0}
            if r < 0.7
            else {0} | {v for v in (1, 2, 3) if rng.random() < 0.5}
        )
        rows = [r for r in rows if r[3] in keep]
    clean = [(s, d, p + shift) for s, d, p, _ in rows]
    noisy = clean
    if augment:
        noisy = [(s, d, p + round(rng.normal())) if rng.random() < 0.05 else (s, d, p) for s, d, p in clean]
    target = roll_of(clean, length, start)
    prev = roll_of(noisy, length + 1, start - 1)[:-1]
    bp, bs = _bar_arrays(ch, start, length)
    return frame_inputs(prev), bp, bs, target, np.arange(start, start + length) < total


def tune_piece(tune: Any) -> Chorale | None:
    """A single-line tune of :mod:`musicgen_app.ml.data` (Essen, POP909 melodies) as a one-voice
    :class:`Chorale` record (None when its meter changes)."""
    from musicgen_app.ml.tokenizers import steps_to_notes

    spb = int(tune.bar_steps[0]) if len(tune.bar_steps) else 0
    if not spb or len(set(tune.bar_steps.tolist())) != 1:
        return None
    num, den = (spb // 4, 4) if spb % 4 == 0 else (max(1, spb // 2), 8)
    notes = [[s, e - s, p, 0] for s, e, p in steps_to_notes(tune.steps.tolist(), 0, 1)]
    if len(notes) < 8:
        return None
    return Chorale(str(tune.meta.get("id", "")), num, den, (-int(tune.bar_pos[0])) % spb, 0, "major", notes)


# what the piano rolls train on: the chorales (four parts, voices dropped at random), Essen folk tunes
# and POP909 melodies, so a folk or pop line is something they have read
MIX = {"chorales": 0.4, "folk": 0.3, "pop": 0.3}


def training_pieces(pop_dataset: str = "pop909") -> dict[str, dict[str, list[Chorale]]]:
    """``{split: {corpus: pieces}}``: the chorales' and the tune corpora's own splits (the judge's
    held-out sketches come from their test splits). A tune corpus that is not built is left out."""
    from musicgen_app.errors import DatasetError
    from musicgen_app.ml import data as data_mod
    from musicgen_app.ml.families.chorales import chorale_splits
    from musicgen_app.ml.midi_data import load_midi_dataset

    out: dict[str, dict[str, list[Chorale]]] = {k: {"chorales": v} for k, v in chorale_splits().items()}
    loaders = {"folk": lambda: data_mod.load_or_build("essen", progress=False),
               "pop": lambda: load_midi_dataset(pop_dataset)}  # fmt: skip
    for corpus, load in loaders.items():
        try:
            ds = load()
        except DatasetError as exc:
            logger.warning("training the piano roll without %s: %s", corpus, exc)
            continue
        for split, idx in data_mod.split_indices(ds).items():
            pieces = [p for p in (tune_piece(t) for t in ds.tunes(idx)) if p is not None]
            out.setdefault("valid" if split == "val" else split, {})[corpus] = pieces
    return out


def make_batch(
    pieces: list[Chorale] | dict[str, list[Chorale]],
    n: int,
    length: int,
    rng: np.random.Generator,
    augment: bool,
    context: int = 0,
) -> RollBatch:
    """A batch of ``n`` random windows of ``length`` frames, from one list of pieces or from a
    ``{corpus: pieces}`` mixture (each window's corpus drawn by its :data:`MIX` weight)."""
    groups = pieces if isinstance(pieces, dict) else {"chorales": pieces}
    names = [k for k, v in groups.items() if v]
    w = np.array([MIX.get(k, 1.0) for k in names])
    parts = []
    for _ in range(n):
        group = groups[names[int(rng.choice(len(names), p=w / w.sum()))]]
        parts.append(sample_window(group[int(rng.integers(len(group)))], length, rng, augment))
    return RollBatch(
        torch.from_numpy(np.stack([p[0] for p in parts])),
        torch.from_numpy(np.stack([p[1] for p in parts])).long(),
        torch.from_numpy(np.stack([p[2] for p in parts])).long(),
        torch.from_numpy(np.stack([p[3] for p in parts])).long(),
        context,
        torch.from_numpy(np.stack([p[4] for p in parts])),
    )


def batch_logits(model: PianoRollNet, b: RollBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits of the scored frames, their targets); seq2seq encodes the context frames first."""
    c = b.context
    if model.cfg.kind == "seq2seq":
        if c == 0:
            raise ValueError("a seq2seq batch needs context frames")
        state = model.encode(b.frames[:, :c], b.bar_pos[:, :c], b.bar_steps[:, :c])
        logits, _ = model(b.frames[:, c:], b.bar_pos[:, c:], b.bar_steps[:, c:], state, b.target[:, c:])
        return logits, b.target[:, c:]
    logits, _ = model(b.frames, b.bar_pos, b.bar_steps, target=b.target)
    return logits[:, c:], b.target[:, c:]


def loss_fn(model: nn.Module, b: RollBatch) -> tuple[torch.Tensor, int]:
    """Summed 3-class NLL and the number of scored frames (the loss is per frame)."""
    logits, target = batch_logits(model, b)  # type: ignore[arg-type]
    live = None if b.live is None else b.live[:, b.context :]
    nll3, _ = frame_nll(logits, target, live)
    return nll3, target.shape[0] * target.shape[1] if live is None else int(live.sum())


# -- streaming ---------------------------------------------------------------------------------------------
# A frame is decided key by key from the top down (the NADE's order): each key's three classes are
# drawn with the shared sampler's temperature and top-p rules, given the keys already chosen. The
# candidate keys are the sketch's register; the texture cap (see SeedContext.voice_cap) stops the
# frame once enough keys sound, so a single-line sketch is continued as a line, its top voice first.
def _draw(logits: np.ndarray, ok: np.ndarray, temperature: float, top_p: float, u: np.ndarray) -> np.ndarray:
    """One of three classes per row of ``logits`` (K, 3), restricted to ``ok`` (K, 3) bool, by the
    uniforms ``u`` (K,): temperature, then top-p, then the inverse of the cumulative distribution."""
    x = np.where(ok, logits / max(1e-3, temperature), -np.inf)
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-p, axis=1)
        sp = np.take_along_axis(p, order, 1)
        sp = np.where(np.cumsum(sp, 1) - sp < top_p, sp, 0.0)
        p = np.zeros_like(p)
        np.put_along_axis(p, order, sp, 1)
    c = np.cumsum(p, axis=1)
    return np.minimum(2, (c <= (u * c[:, -1])[:, None]).sum(1))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


class FrameStepper:
    """Fast batch-1 decoder steps (numpy): a frame's input projection is the sum of the rows of its
    few sounding keys plus table lookups for the bar position (no 192-wide product per frame)."""

    def __init__(self, model: PianoRollNet) -> None:
        self.lstm = LSTMStepper(model.decoder)
        w0 = self.lstm.w_ih[0]  # (176 + 2P, 4H)
        P = model.cfg.pos_dim
        with torch.no_grad():
            self.rows = w0[: 2 * KEYS]  # (176, 4H)
            self.pos_table = model.inp.pos.weight.detach().numpy() @ w0[2 * KEYS : 2 * KEYS + P]  # (48, 4H)
            self.bar_table = model.inp.bar.weight.detach().numpy() @ w0[2 * KEYS + P :]  # (64, 4H)
            self.head_w = np.ascontiguousarray(model.head.weight.detach().numpy().T)  # (H, 264)
            self.head_b = model.head.bias.detach().numpy().copy()
            self.transition = model.transition.detach().numpy().copy()  # (88, 3, 3)
        self.keys = np.arange(KEYS)

    @classmethod
    def of(cls, model: PianoRollNet) -> FrameStepper:
        """The stepper of ``model`` (built once, kept on the network)."""
        return cached_on(model, lambda: cls(model))

    def step(
        self, frame: np.ndarray, bar_pos: int, bar_steps: int, state: tuple
    ) -> tuple[torch.Tensor, np.ndarray, tuple]:
        """Key-wise logits (88, 3) of the frame after ``frame`` (88 states), the time state (H,) and
        the new decoder state."""
        active = np.concatenate([np.flatnonzero(frame == ONSET), np.flatnonzero(frame == SUSTAIN) + KEYS])
        proj = (
            self.pos_table[min(bar_pos, MAX_BAR_POS - 1)] + self.bar_table[min(bar_steps, MAX_BAR_STEPS - 1)]
        )
        if len(active):
            proj = proj + self.rows[active].sum(0)  # (4H,)
        y, state = self.lstm.step(proj, state)  # (H,)
        logits = (y @ self.head_w + self.head_b).reshape(KEYS, 3)  # (88, 3)
        return torch.from_numpy(logits + self.transition[self.keys, frame.astype(np.int64)]), y, state


class NoteAxis:
    """The NADE's weights as numpy arrays, for the key-by-key draw (absent: keys independent)."""

    def __init__(self, model: PianoRollNet) -> None:
        with torch.no_grad():
            self.c_w = model.nade_c.weight.detach().numpy().T.copy()  # (H, N)
            self.c_b = model.nade_c.bias.detach().numpy().copy()
            self.w = model.nade_w.detach().numpy().copy()  # (88, 2, N)
            self.v = model.nade_v.detach().numpy().copy()  # (88, N, 3)

    @classmethod
    def of(cls, model: PianoRollNet) -> NoteAxis | None:
        """The note axis of ``model`` (None for a model without one)."""
        return cached_on(model, lambda: cls(model)) if model.cfg.nade_size else None


def draw_frame(
    logits: np.ndarray,
    y: np.ndarray,
    axis: NoteAxis | None,
    keys: np.ndarray,
    ok: np.ndarray,
    cap: int,
    temperature: float,
    top_p: float,
    uniforms: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One frame's states (88,), drawn key by key down ``keys`` (the candidates, highest first).

    ``logits`` (88, 3) key-wise logits, ``y`` (H,) the time state, ``ok`` (88, 3) the classes each
    key may take, ``cap`` the most keys that may sound, ``uniforms`` one per candidate. A silent key
    leaves the note axis's state as it was, so the keys down to the next sounding one are drawn in
    one batch: the same draws as one key at a time, in a few array operations per sounding key.
    Also returns each candidate's onset logit as it was drawn (the rest guard's choice when the
    frame stays empty)."""
    frame = np.zeros(KEYS, np.int8)
    onset = np.full(KEYS, -np.inf)
    a = None if axis is None else y @ axis.c_w + axis.c_b  # (N,)
    if cap == 1 and len(keys):
        return _draw_line(logits, a, axis, keys, ok, temperature, top_p, float(uniforms[0]))
    i = sounding = 0
    while i < len(keys) and sounding < cap:
        ks = keys[i:]
        lk = logits[ks]
        if a is not None and axis is not None:
            lk = lk + np.einsum("n,knc->kc", sigmoid(a), axis.v[ks])
        onset[ks] = np.where(ok[ks, ONSET], lk[:, ONSET], -np.inf)
        drawn = _draw(lk, ok[ks], temperature, top_p, uniforms[i:])
        on = np.flatnonzero(drawn)
        if not len(on):
            break
        j = int(on[0])
        k, s = int(ks[j]), int(drawn[j])
        frame[k] = s
        sounding += 1
        if a is not None and axis is not None:
            a = a + axis.w[k, s - 1]
        i += j + 1
    return frame, onset


def _draw_line(
    logits: np.ndarray,
    a: np.ndarray | None,
    axis: NoteAxis | None,
    keys: np.ndarray,
    ok: np.ndarray,
    temperature: float,
    top_p: float,
    u: float,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`draw_frame` for a single line: the frame is one of "key k starts / goes on" (the keys
    above it silent) or "silent", so the model's probability of each is known in one pass and the
    temperature applies to the whole frame, as it does to a token (tempering each key's three
    classes instead would make a cooler take a sparser one: a small onset probability shrinks
    under it on every key)."""
    lk = logits[keys]
    if a is not None and axis is not None:
        lk = lk + np.einsum("n,knc->kc", sigmoid(a), axis.v[keys])
    x = np.where(ok[keys], lk, -np.inf)
    logp = x - np.logaddexp.reduce(x, axis=1, keepdims=True)  # (K, 3)
    above = np.concatenate([[0.0], np.cumsum(logp[:-1, SILENT])])  # log P(every key above is silent)
    outcomes = np.concatenate([(above[:, None] + logp[:, 1:]).ravel(), [above[-1] + logp[-1, SILENT]]])
    z = outcomes / max(1e-3, temperature)
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p)
        keep = order[(np.cumsum(p[order]) - p[order]) < top_p]
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    pick = min(len(p) - 1, int(np.searchsorted(np.cumsum(p), u, side="right")))
    frame = np.zeros(KEYS, np.int8)
    if pick < len(p) - 1:
        frame[keys[pick // 2]] = 1 + pick % 2
    onset = np.full(KEYS, -np.inf)
    onset[keys] = x[:, ONSET]
    return frame, onset


def _move_onsets(logits: np.ndarray, move: Callable[[np.ndarray], np.ndarray]) -> None:
    """Move a frame's per-key onset probabilities (the softmax of ``logits`` (K, 3), changed in
    place) to ``move(onset)``: the onset logit of each key gains the log of the ratio."""
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    onset = p[:, ONSET] / p.sum(axis=1)
    moved = move(onset)
    logits[:, ONSET] += np.log(np.maximum(moved, 1e-12)) - np.log(np.maximum(onset, 1e-12))


class PianoRollEngine(StreamEngine):
    """Samples one 88-key frame per step; a note is streamed in the frame where its key stops."""

    CHUNK = 64  # seq2seq: decoder frames per encoder read

    def __init__(self, model: PianoRollNet) -> None:
        self.model = model
        self.stepper = FrameStepper.of(model)
        self.axis = NoteAxis.of(model)
        self.tokens = 0

    def _pos(self, steps: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        ctx = self.ctx
        bp = torch.from_numpy((steps - ctx.bar_offset) % ctx.bar_steps).long()[None]
        bs = torch.full_like(bp, ctx.bar_steps)
        return bp, bs

    def _read(self, roll: np.ndarray, first_step: int) -> None:
        """Feed ``roll`` (frames from ``first_step``) and keep the logits of the frame after it."""
        prev = np.concatenate([np.zeros((1, KEYS), np.int8), roll])  # input of frame t is frame t-1
        x = torch.from_numpy(frame_inputs(prev))[None]  # (1, T+1, 176)
        steps = np.arange(first_step, first_step + len(prev))
        bp, bs = self._pos(steps)
        with onednn():  # oneDNN's LSTM is quicker over a sequence
            if self.model.cfg.kind == "seq2seq":
                state = self.model.encode(x[:, :-1], bp[:, :-1], bs[:, :-1])
                logits, y, state = self.model.run(x[:, -1:], bp[:, -1:], bs[:, -1:], state)
            else:
                logits, y, state = self.model.run(x, bp, bs)
        self.state = LSTMStepper.state_from(state)
        self.logits = logits[0, -1]  # (88, 3)
        self.y = y[0, -1].numpy()  # (H,)
        self.since_encode = 0

    def prefill(self, ctx: SeedContext, sampling: SamplingConfig) -> None:
        self.ctx = ctx
        self.sampling = sampling
        self.gen = torch.Generator()
        seed = sampling.seed if sampling.seed is not None else random_seed()
        self.gen.manual_seed(int(seed))
        first = max(ctx.notes[0].start, ctx.start_step - PREFILL_FRAMES)
        rows = [(n.start, n.length, n.pitch) for n in ctx.notes]
        self.history = roll_of(rows, ctx.start_step - first, first)  # (T, 88)
        self.hist_start = first
        self._read(self.history, first)
        self.prev = np.zeros(KEYS, dtype=np.int8)  # the seed's notes end at the start
        self.onset_at = np.full(KEYS, -1)
        self.silent = 0  # silent frames in a row
        self.pos = ctx.start_step
        self.onset_ok = np.ones(KEYS, bool)
        allowed = ctx.allowed_pcs(sampling.key_lock)
        if allowed is not None:
            self.onset_ok = np.array([(LOW + k) % 12 in allowed for k in range(KEYS)])
        lo, hi = ctx.register(sampling.register_margin, LOW, LOW + KEYS - 1)
        self.keys = np.arange(hi - LOW, lo - LOW - 1, -1)  # the candidates, highest first
        self.cap = ctx.voice_cap(sampling.voices)
        self.repeats = np.zeros(KEYS, int)  # onsets in a row that struck each key
        self.chords = ChordGuide(sampling.chords)  # the shared sampler's chord bias, on onset logits
        self.key_pitches = LOW + np.arange(KEYS)
        self.density = ctx.density_guide(sampling)  # every key's onset log-odds, moved alike
        self.variety = ctx.variety_guard(sampling, self.cap)  # a line's keys struck over and over
        self.tonal = ctx.tonal_prior(sampling)  # the sketch's pitch classes, a soft pull on each onset

    @property
    def position(self) -> int:
        return self.pos

    def advance(self, temperature: float) -> list[StepNote]:
        ok = np.ones((KEYS, 3), bool)
        ok[:, SUSTAIN] = self.prev > 0
        # the shared sampler's repeat guard: a key struck max_repeats onsets in a row may not start again
        ok[:, ONSET] = self.onset_ok & (self.repeats < self.sampling.max_repeats)
        logits = self.logits.numpy().astype(np.float64)
        require_finite(logits)
        if self.chords:  # each key's onset probability reweighed, the frame's total kept
            tick = self.ctx.to_tick(self.pos)
            _move_onsets(logits, lambda onset: self.chords.reweigh(self.key_pitches, onset, tick))
        if (tonal := self.tonal) is not None:  # toward the sketch's pitch classes, the total kept
            _move_onsets(logits, lambda onset: tonal.reweigh(onset, self.key_pitches))
        if self.variety is not None and (pen := self.variety.penalty(self.key_pitches)) is not None:
            # the keys a circling line struck lose their share to the others, the frame's total kept
            # (the guard moves which pitch starts; the density guide decides whether one does)
            _move_onsets(logits, lambda onset: reweigh_onsets(onset, -pen))
        if self.density is not None:
            logits[:, ONSET] += self.density.bias(self.pos)
        uniforms = torch.rand(len(self.keys), generator=self.gen, dtype=torch.float64).numpy()
        frame, onset = draw_frame(
            logits, self.y, self.axis, self.keys, ok, self.cap, temperature, self.sampling.top_p, uniforms
        )
        self.tokens += 1
        # the shared sampler's rest guard, per frame: after max_rest_steps silent frames a note starts
        self.silent = self.silent + 1 if not frame.any() else 0
        if self.silent >= self.sampling.max_rest_steps and np.isfinite(onset).any():
            frame[int(np.argmax(onset))] = ONSET
            self.silent = 0
        struck = frame == ONSET
        if struck.any():
            self.repeats = np.where(struck, self.repeats + 1, 0)
            if self.density is not None:
                self.density.onset(self.pos, int(struck.sum()))
            if self.variety is not None:
                for k in np.flatnonzero(struck):
                    self.variety.strike(LOW + int(k))
        t = self.pos
        done = []
        for k in np.flatnonzero((self.prev > 0) & (frame != SUSTAIN)):
            done.append(StepNote(int(self.onset_at[k]), t - int(self.onset_at[k]), LOW + int(k)))
        self.onset_at[struck] = t
        self.prev = frame
        self.pos += 1
        self.history = np.concatenate([self.history, frame[None]])
        if self.model.cfg.kind == "seq2seq" and self.since_encode + 1 >= self.CHUNK:
            # a new chunk: the encoder re-reads the last CHUNK frames, the decoder starts afresh
            self._read(self.history[-self.CHUNK :], self.pos - self.CHUNK)
            return done
        ctx = self.ctx
        bar_pos = (self.pos - ctx.bar_offset) % ctx.bar_steps
        self.logits, self.y, self.state = self.stepper.step(frame, bar_pos, ctx.bar_steps, self.state)
        self.since_encode += 1
        return done

    def flush(self) -> list[StepNote]:
        return [
            StepNote(int(self.onset_at[k]), self.pos - int(self.onset_at[k]), LOW + int(k))
            for k in np.flatnonzero(self.prev > 0)
        ]


# -- training and evaluation --------------------------------------------------------------------------------
TRAIN_LEN = 128
S2S_CONTEXT = 64
S2S_TARGET = 64


def evaluate(model: PianoRollNet, chorales: list[Chorale]) -> dict:
    """Frame-level NLL on whole chorales (no augmentation), each read from its start.

    The seq2seq model is scored on continuation frames: each chorale is cut into 64-frame
    chunks, each predicted from the (up to) 64 frames before it.
    """
    n3 = n2 = 0.0
    frames = 0
    correct = 0
    with torch.no_grad():
        for ch in chorales:
            T = ch.length_steps
            target = roll_of([(s, d, p) for s, d, p, _ in ch.notes], T)
            prev = np.concatenate([np.zeros((1, KEYS), np.int8), target[:-1]])
            bp, bs = _bar_arrays(ch, 0, T)
            b = RollBatch(
                torch.from_numpy(frame_inputs(prev))[None],
                torch.from_numpy(bp)[None].long(),
                torch.from_numpy(bs)[None].long(),
                torch.from_numpy(target)[None].long(),
            )
            if model.cfg.kind == "seq2seq":
                for c0 in range(S2S_CONTEXT, T, S2S_TARGET):
                    a = c0 - S2S_CONTEXT
                    e = min(T, c0 + S2S_TARGET)
                    sub = RollBatch(
                        b.frames[:, a:e],
                        b.bar_pos[:, a:e],
                        b.bar_steps[:, a:e],
                        b.target[:, a:e],
                        S2S_CONTEXT,
                    )
                    lg, tg = batch_logits(model, sub)
                    x3, x2 = frame_nll(lg, tg)
                    n3, n2, frames = n3 + float(x3), n2 + float(x2), frames + tg.shape[1]
                    correct += int((lg.argmax(-1) == tg).all(-1).sum())
            else:
                lg, tg = batch_logits(model, b)
                x3, x2 = frame_nll(lg, tg)
                n3, n2, frames = n3 + float(x3), n2 + float(x2), frames + tg.shape[1]
                correct += int((lg.argmax(-1) == tg).all(-1).sum())
    return {
        "test_nll": round(n3 / frames, 4),
        "test_nll_binary": round(n2 / frames, 4),
        "test_bits_per_key_frame": round(n3 / frames / KEYS / math.log(2), 5),
        "test_accuracy": round(correct / frames, 4),
        "test_frames": frames,
        "unit": "nats/frame",
        "unit_note": "a frame is 88 keys x 3 classes, summed; test_nll_binary merges onset and sustain",
        "accuracy_means": "frames whose 88 most likely states are all right",
    }


def init_transitions(model: PianoRollNet, chorales: list[Chorale]) -> None:
    """Start every key's transition table at the log frequencies of state pairs in ``chorales``
    (pooled over keys, add-one smoothed), so training begins from the per-key bigram."""
    counts = np.ones((3, 3))
    for ch in chorales:
        roll = roll_of([(s, d, p) for s, d, p, _ in ch.notes], ch.length_steps)
        prev = np.concatenate([np.zeros((1, KEYS), np.int8), roll[:-1]])
        np.add.at(counts, (prev.ravel(), roll.ravel()), 1)
    logp = np.log(counts / counts.sum(axis=1, keepdims=True))
    with torch.no_grad():
        model.transition.copy_(torch.from_numpy(logp).float().expand(KEYS, 3, 3))


NADE_SIZE = 32


def _warm_start(name: str, model: PianoRollNet) -> dict | None:
    """Load models/<name> into ``model`` when that checkpoint lacks the note axis (the layers it has,
    by name); returns its training record, or None when it already has the note axis."""
    from musicgen_app.ml.checkpoint import load_weights
    from musicgen_app.ml.families.checkpoint import model_path, read_card

    card = read_card(name)
    if card.get("config", {}).get("nade_size"):
        return None
    tensors = load_weights(model_path(name))
    own = model.state_dict()
    model.load_state_dict({k: v.float() for k, v in tensors.items() if k in own}, strict=False)
    model.train()
    logger.info("warm start from %s (%d tensors), the note axis starts fresh", name, len(tensors))
    return dict(card.get("training", {}))


def train_model(
    kind: str = "lstm", minutes: float = 10.0, name: str | None = None, resume: bool = False
) -> dict:
    """Train the frame LSTM or the seq2seq model (with its note-axis NADE) on the chorales, Essen
    tunes and POP909 melodies; write models/<name>.*.

    ``resume`` starts from models/<name>; a checkpoint without the note axis lends the layers it has
    (the time LSTM, the key-wise head) and the NADE starts fresh on top of them."""
    from musicgen_app.ml.families.checkpoint import save_checkpoint
    from musicgen_app.ml.training import TrainConfig, maybe_resume, train, training_record

    name = name or (ARCH_LSTM if kind == "lstm" else ARCH_SEQ2SEQ)
    splits = training_pieces()
    cfg = PianoRollConfig(kind=kind, nade_size=NADE_SIZE)
    model = PianoRollNet(cfg)
    init_transitions(model, splits["train"]["chorales"])
    previous = _warm_start(name, model) if resume else None
    if previous is None:
        previous = maybe_resume(name, model, resume)
    ctx = S2S_CONTEXT if kind == "seq2seq" else 0
    length = S2S_CONTEXT + S2S_TARGET if kind == "seq2seq" else TRAIN_LEN
    vrng = np.random.default_rng(7)
    valid = [make_batch(splits["valid"], 16, length, vrng, False, ctx) for _ in range(6)]
    rng = np.random.default_rng(0)
    res = train(
        model,
        loss_fn,
        lambda g: make_batch(splits["train"], 16, length, rng, True, ctx),
        valid,
        TrainConfig(minutes=minutes, lr=2e-3, eval_every=100, patience=6),
    )
    metrics = evaluate(model, splits["test"]["chorales"])
    arch = ARCH_LSTM if kind == "lstm" else ARCH_SEQ2SEQ
    card = {
        "name": name,
        "family": "pianoroll",
        "architecture": arch,
        "seed_paper": "002",
        "title": "Piano-roll frame LSTM (paper 002)" if kind == "lstm" else "Piano-roll seq2seq (paper 002)",
        "description": (
            "88-key frames on a 16th grid, each key silent/onset/sustained (the three-class fix proposed in "
            "paper 002); " + ("2 x LSTM(256) over frames" if kind == "lstm" else
            "encoder LSTM over the context, decoder LSTM writing the continuation (64-frame chunks)")
            + "; a frame's keys are decided jointly, top down, each given the keys above it (an RNN-NADE "
            f"note axis, {NADE_SIZE} hidden units, after Boulanger-Lewandowski et al. 2012); transposition "
            "and note-noise augmentation as in the paper. Polyphonic; a single-line sketch is continued as "
            "a line unless harmony is asked for."
        ),
        "data": {
            "dataset": "Bach chorales (music21 corpus), Essen folk tunes, POP909 melodies",
            "mix": MIX,
            "pieces": {k: {c: len(v) for c, v in g.items()} for k, g in splits.items()},
            "split": "chorales by the sha1 of the name (80/10/10); the tune corpora by their own splits",
            "grid": "16th notes, 88 keys (MIDI 21-108)",
            "augmentation": "transposition -6..+5, note noise (5% of input notes moved by round(N(0,1)) "
            "semitones), voices dropped in half the windows (soprano kept; a fifth soprano alone)",
        },
        "config": asdict(cfg),
        "training": training_record(res, previous),
        "metrics": metrics,
    }  # fmt: skip
    save_checkpoint(name, model, card)
    logger.info("saved %s: %s", name, metrics)
    return card


def load_model_from_card(card: dict, path: str) -> PianoRollNet:
    """Rebuild the network from its card and load the weights at ``path``."""
    from musicgen_app.ml.families.checkpoint import load_weights

    model = PianoRollNet(PianoRollConfig(**card["config"]))
    load_weights(path, model)
    return model


def engine_factory(card: dict, path: str):
    """A function making fresh streaming engines over the model a card describes."""
    model = load_model_from_card(card, path)
    return lambda: PianoRollEngine(model)
