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
from dataclasses import asdict, dataclass

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
from musicgen_app.ml.sampling import SamplingConfig, random_seed, require_finite

logger = logging.getLogger(__name__)

LOW, KEYS = 21, 88
SILENT, ONSET, SUSTAIN = 0, 1, 2
MAX_BAR_POS = 48
MAX_BAR_STEPS = 64
ARCH_LSTM = "pianoroll-lstm"
PREFILL_FRAMES = 16  # the sketch's last bar of 4/4 is read at the start, for a quick first note
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

    def encode(self, frames: torch.Tensor, bar_pos: torch.Tensor, bar_steps: torch.Tensor) -> tuple:
        """The encoder's final state after reading context frames (seq2seq only)."""
        _, state = self.encoder(self.inp(frames, bar_pos, bar_steps))
        return state

    def forward(
        self, frames: torch.Tensor, bar_pos: torch.Tensor, bar_steps: torch.Tensor, state: tuple | None = None
    ) -> tuple[torch.Tensor, tuple]:
        """Logits (B, T, 88, 3) of frame t from frame t-1 (B, T, 176), and the decoder state."""
        y, state = self.decoder(self.inp(frames, bar_pos, bar_steps), state)  # (B, T, H)
        logits = self.head(self.drop(y)).view(*y.shape[:2], KEYS, 3)  # (B, T, 88, 3)
        prev = (frames[..., :KEYS] + 2 * frames[..., KEYS : 2 * KEYS]).long()  # (B, T, 88) previous states
        return logits + self.transition[torch.arange(KEYS), prev], state  # (B, T, 88, 3)


def frame_nll(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed 3-class NLL, summed 2-class on/off NLL) over all key-frames, nats.

    ``logits`` (B, T, 88, 3), ``target`` (B, T, 88) int64.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)  # (B, T, 88, 3)
    nll3 = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (B, T, 88)
    on = torch.logsumexp(logp[..., 1:], dim=-1)  # (B, T, 88) log P(key sounds)
    off = logp[..., 0]
    nll2 = -torch.where(target > 0, on, off)
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


def _bar_arrays(ch: Chorale, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(start, start + length)
    return (idx - ch.bar_offset) % ch.bar_steps, np.full(length, ch.bar_steps)


def sample_window(
    ch: Chorale, length: int, rng: np.random.Generator, augment: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(input frames (T,176), bar_pos (T,), bar_steps (T,), target roll (T,88)) of a random window.

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
    return frame_inputs(prev), bp, bs, target


def make_batch(
    chorales: list[Chorale], n: int, length: int, rng: np.random.Generator, augment: bool, context: int = 0
) -> RollBatch:
    """A batch of ``n`` random windows of ``length`` frames."""
    parts = [
        sample_window(chorales[int(rng.integers(len(chorales)))], length, rng, augment) for _ in range(n)
    ]
    return RollBatch(
        torch.from_numpy(np.stack([p[0] for p in parts])),
        torch.from_numpy(np.stack([p[1] for p in parts])).long(),
        torch.from_numpy(np.stack([p[2] for p in parts])).long(),
        torch.from_numpy(np.stack([p[3] for p in parts])).long(),
        context,
    )


def batch_logits(model: PianoRollNet, b: RollBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits of the scored frames, their targets); seq2seq encodes the context frames first."""
    c = b.context
    if model.cfg.kind == "seq2seq":
        if c == 0:
            raise ValueError("a seq2seq batch needs context frames")
        state = model.encode(b.frames[:, :c], b.bar_pos[:, :c], b.bar_steps[:, :c])
        logits, _ = model(b.frames[:, c:], b.bar_pos[:, c:], b.bar_steps[:, c:], state)
        return logits, b.target[:, c:]
    logits, _ = model(b.frames, b.bar_pos, b.bar_steps)
    return logits[:, c:], b.target[:, c:]


def loss_fn(model: nn.Module, b: RollBatch) -> tuple[torch.Tensor, int]:
    """Summed 3-class NLL and the number of scored frames (the loss is per frame)."""
    logits, target = batch_logits(model, b)  # type: ignore[arg-type]
    nll3, _ = frame_nll(logits, target)
    return nll3, target.shape[0] * target.shape[1]


# -- streaming ---------------------------------------------------------------------------------------------
# A frame is 88 draws (one per key), not one token, so it has its own vectorised draw with the
# shared sampler's temperature, top-k and top-p rules.
def sample_from_logits(
    logits: torch.Tensor,
    temperature: float,
    generator: torch.Generator,
    *,
    top_k: int = 0,
    top_p: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample indices from ``logits`` (..., V) with temperature, top-k, nucleus and a validity mask.

    ``mask`` (bool, broadcastable to logits) marks the allowed entries; when it forbids
    everything in a row the row is sampled unmasked. Returns (...,) int64.
    """
    require_finite(logits.detach().numpy())
    x = logits.float() / max(1e-3, temperature)  # (..., V)
    if mask is not None:
        masked = x.masked_fill(~mask, float("-inf"))
        ok = torch.isfinite(masked).any(dim=-1, keepdim=True)
        x = torch.where(ok, masked, x)
    if top_k and top_k < x.shape[-1]:
        kth = torch.topk(x, top_k, dim=-1).values[..., -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    probs = torch.softmax(x, dim=-1)
    if top_p < 1.0:
        sp, si = torch.sort(probs, dim=-1, descending=True)
        keep = (sp.cumsum(-1) - sp) < top_p
        sp = sp * keep
        probs = torch.zeros_like(probs).scatter(-1, si, sp)
    flat = probs.reshape(-1, probs.shape[-1])
    idx = torch.multinomial(flat, 1, generator=generator)  # (N, 1)
    return idx.reshape(probs.shape[:-1])


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
    ) -> tuple[torch.Tensor, tuple]:
        """Logits (88, 3) of the frame after ``frame`` (88 states), and the new decoder state."""
        active = np.concatenate([np.flatnonzero(frame == ONSET), np.flatnonzero(frame == SUSTAIN) + KEYS])
        proj = (
            self.pos_table[min(bar_pos, MAX_BAR_POS - 1)] + self.bar_table[min(bar_steps, MAX_BAR_STEPS - 1)]
        )
        if len(active):
            proj = proj + self.rows[active].sum(0)  # (4H,)
        y, state = self.lstm.step(proj, state)  # (H,)
        logits = (y @ self.head_w + self.head_b).reshape(KEYS, 3)  # (88, 3)
        return torch.from_numpy(logits + self.transition[self.keys, frame.astype(np.int64)]), state


class PianoRollEngine(StreamEngine):
    """Samples one 88-key frame per step; a note is streamed in the frame where its key stops."""

    CHUNK = 64  # seq2seq: decoder frames per encoder read

    def __init__(self, model: PianoRollNet) -> None:
        self.model = model
        self.stepper = FrameStepper.of(model)
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
                logits, state = self.model(x[:, -1:], bp[:, -1:], bs[:, -1:], state)
            else:
                logits, state = self.model(x, bp, bs)
        self.state = LSTMStepper.state_from(state)
        self.logits = logits[0, -1]  # (88, 3)
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
        self.onset_mask = None
        allowed = ctx.allowed_pcs(sampling.key_lock)
        if allowed is not None:
            self.onset_mask = torch.tensor([(LOW + k) % 12 in allowed for k in range(KEYS)])

    @property
    def position(self) -> int:
        return self.pos

    def advance(self, temperature: float) -> list[StepNote]:
        sounding = torch.from_numpy(self.prev > 0)  # (88,)
        mask = torch.ones(KEYS, 3, dtype=torch.bool)
        mask[:, SUSTAIN] = sounding
        if self.onset_mask is not None:
            mask[:, ONSET] = self.onset_mask
        frame = (
            sample_from_logits(
                self.logits, temperature, self.gen, top_k=0, top_p=self.sampling.top_p, mask=mask
            )
            .numpy()
            .astype(np.int8)
        )  # (88,)
        self.tokens += 1
        # the shared sampler's rest guard, per frame: after max_rest_steps silent frames a note starts
        self.silent = self.silent + 1 if not frame.any() else 0
        if self.silent >= self.sampling.max_rest_steps:
            onset = self.logits[:, ONSET].masked_fill(~mask[:, ONSET], float("-inf"))
            frame[int(onset.argmax())] = ONSET
            self.silent = 0
        t = self.pos
        done = []
        for k in np.flatnonzero((self.prev > 0) & (frame != SUSTAIN)):
            done.append(StepNote(int(self.onset_at[k]), t - int(self.onset_at[k]), LOW + int(k)))
        self.onset_at[frame == ONSET] = t
        self.prev = frame
        self.pos += 1
        self.history = np.concatenate([self.history, frame[None]])
        if self.model.cfg.kind == "seq2seq" and self.since_encode + 1 >= self.CHUNK:
            # a new chunk: the encoder re-reads the last CHUNK frames, the decoder starts afresh
            self._read(self.history[-self.CHUNK :], self.pos - self.CHUNK)
            return done
        ctx = self.ctx
        bar_pos = (self.pos - ctx.bar_offset) % ctx.bar_steps
        self.logits, self.state = self.stepper.step(frame, bar_pos, ctx.bar_steps, self.state)
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


def train_model(
    kind: str = "lstm", minutes: float = 10.0, name: str | None = None, resume: bool = False
) -> dict:
    """Train the frame LSTM or the seq2seq model on the chorales; write models/<name>.*."""
    from musicgen_app.ml.families.checkpoint import save_checkpoint
    from musicgen_app.ml.families.chorales import chorale_splits
    from musicgen_app.ml.families.training import TrainConfig, maybe_resume, train, training_record

    name = name or (ARCH_LSTM if kind == "lstm" else ARCH_SEQ2SEQ)
    splits = chorale_splits()
    cfg = PianoRollConfig(kind=kind)
    model = PianoRollNet(cfg)
    init_transitions(model, splits["train"])
    previous = maybe_resume(name, model, resume)
    ctx = S2S_CONTEXT if kind == "seq2seq" else 0
    length = S2S_CONTEXT + S2S_TARGET if kind == "seq2seq" else TRAIN_LEN
    vrng = np.random.default_rng(7)
    valid = [make_batch(splits["valid"], 16, length, vrng, False, ctx) for _ in range(4)]
    rng = np.random.default_rng(0)
    res = train(
        model,
        loss_fn,
        lambda g: make_batch(splits["train"], 16, length, rng, True, ctx),
        valid,
        TrainConfig(minutes=minutes, lr=2e-3, eval_every=100, patience=6),
    )
    metrics = evaluate(model, splits["test"])
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
            + "; transposition and note-noise augmentation as in the paper. Polyphonic."
        ),
        "data": {
            "dataset": "Bach chorales (music21 corpus)",
            "pieces": {k: len(v) for k, v in splits.items()},
            "split": "by chorale, sha1 of the name (80/10/10)",
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
