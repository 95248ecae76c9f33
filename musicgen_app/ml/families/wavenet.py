"""Paper 004's WaveNet, over melody tokens instead of audio samples.

The network is the paper's: a causal convolution, then residual layers of dilated causal 1-D
convolutions (kernel 2, dilations 1, 2, 4 ... 64, two stacks) with gated units
``tanh(W_f * x) * sigmoid(W_g * x)``, a 1x1 convolution back to the residual stream (added to the
layer's input) and one to the skip stream; the skips are summed, then ReLU, 1x1, ReLU, 1x1 to the
logits. The paper modelled raw audio (one sample per step, mu-law classes); a MIDI app needs
symbolic output, so each step here is one 16th-note token of paper 003's encoding (pitch, ``r``,
``_``; :class:`~musicgen_app.ml.tokenizers.GridMelodyTokenizer`), with the bar position added to
the input as conditioning.

Streaming uses fast WaveNet generation (Paine et al., 2016): every layer keeps a queue of its past
inputs, ``dilation`` long, so a new token costs one kernel-2 step per layer (two matrix-vector
products) instead of a pass over the whole receptive field.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from musicgen_app.ml.families.common import cached_on
from musicgen_app.ml.models import GridMelodyModel
from musicgen_app.ml.tokenizers import GridMelodyTokenizer

logger = logging.getLogger(__name__)

ARCHITECTURE = "wavenet"
MAX_BAR_POS = 48
MAX_BAR_STEPS = 64
# the prefill reads at most the sketch's last 3 bars of 4/4: every prompt step costs a pass
# through all layers, and the first note should come within 10 ms on a busy 2-core machine (the
# receptive field is 256 steps, so what lies further back is not seen at the start)
PREFILL_STEPS = 48


@dataclass
class WaveNetConfig:
    """Architecture arguments (stored in the card)."""

    vocab_size: int
    channels: int = 64
    skip_channels: int = 128
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 1, 2, 4, 8, 16, 32, 64)
    pos_dim: int = 16

    @property
    def receptive_field(self) -> int:
        """Steps of past the output at one step can see (start conv + every dilated layer)."""
        return 2 + sum(self.dilations)


class WaveNet(nn.Module):
    """Token + bar-position embeddings -> causal conv -> gated residual layers -> skip head."""

    def __init__(self, cfg: WaveNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        C, S = cfg.channels, cfg.skip_channels
        self.embed = nn.Embedding(cfg.vocab_size, C)
        self.pos_embed = nn.Embedding(MAX_BAR_POS, cfg.pos_dim)
        self.bar_embed = nn.Embedding(MAX_BAR_STEPS, cfg.pos_dim)
        self.cond = nn.Linear(2 * cfg.pos_dim, C)
        self.start = nn.Conv1d(C, C, 2)  # causal: left-padded by 1
        self.dilated = nn.ModuleList([nn.Conv1d(C, 2 * C, 2, dilation=d) for d in cfg.dilations])
        self.res = nn.ModuleList([nn.Conv1d(C, C, 1) for _ in cfg.dilations])
        self.skip = nn.ModuleList([nn.Conv1d(C, S, 1) for _ in cfg.dilations])
        self.out1 = nn.Conv1d(S, S, 1)
        self.out2 = nn.Conv1d(S, cfg.vocab_size, 1)

    def embed_inputs(
        self, tokens: torch.Tensor, bar_pos: torch.Tensor, bar_steps: torch.Tensor
    ) -> torch.Tensor:
        """(B, C, T) input of the start convolution."""
        e = self.embed(tokens)  # (B, T, C)
        p = torch.cat(
            [
                self.pos_embed(bar_pos.clamp(0, MAX_BAR_POS - 1)),
                self.bar_embed(bar_steps.clamp(0, MAX_BAR_STEPS - 1)),
            ],
            dim=-1,
        )  # (B, T, 2P)
        return (e + self.cond(p)).transpose(1, 2)  # (B, C, T)

    def forward(
        self, tokens: torch.Tensor, bar_pos: torch.Tensor, bar_steps: torch.Tensor, keep_inputs: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (B, T, V); with ``keep_inputs`` also each layer's input (B, C, T) for the caches,
        and logits at the last step only (B, 1, V): what a prefill needs."""
        x0 = self.embed_inputs(tokens, bar_pos, bar_steps)  # (B, C, T)
        inputs = [x0] if keep_inputs else []
        x = self.start(nn.functional.pad(x0, (1, 0)))  # (B, C, T)
        skips: Any = 0  # becomes a tensor at the first layer
        for d, conv, res, skip in zip(self.cfg.dilations, self.dilated, self.res, self.skip, strict=True):
            if keep_inputs:
                inputs.append(x)
            f, g = conv(nn.functional.pad(x, (d, 0))).chunk(2, dim=1)  # (B, C, T) each
            z = torch.tanh(f) * torch.sigmoid(g)  # (B, C, T)
            skips = skips + skip(z[:, :, -1:] if keep_inputs else z)  # (B, S, T) or (B, S, 1)
            x = x + res(z)  # (B, C, T)
        h = self.out2(torch.relu(self.out1(torch.relu(skips))))  # (B, V, T)
        return h.transpose(1, 2), inputs  # (B, T, V)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class FastWaveNet:
    """Fast generation: per-layer ring buffers of past inputs; one step per layer for each token.

    Layer ``l`` (dilation ``d``) needs its input from ``d`` steps ago: the buffer holds the last
    ``d`` inputs, oldest at the pointer. The two convolution taps are one product over the
    concatenated (past, present) vectors, and the residual and skip 1x1 convolutions one product.
    Batch-1 steps run in numpy (float32): at this size the per-call cost of torch ops dominates.
    """

    def __init__(self, net: WaveNet) -> None:
        self.net = net
        tables = cached_on(net, lambda: FastWaveNet._tables(net))  # weights rearranged once per network
        self.tok_table, self.pos_table, self.bar_table, self.start, self.layers, self.out1, self.out2 = tables
        self.C = net.cfg.channels
        self.dilations = (1, *net.cfg.dilations)

    @staticmethod
    def _tables(net: WaveNet) -> tuple:
        P = net.cfg.pos_dim

        def n(t: Any) -> np.ndarray:  # a parameter or buffer of the network
            return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)

        with torch.no_grad():
            cw = net.cond.weight  # (C, 2P)
            tok_table = n(net.embed.weight)  # (V, C)
            pos_table = n(net.pos_embed.weight @ cw[:, :P].T + net.cond.bias)  # (48, C)
            bar_table = n(net.bar_embed.weight @ cw[:, P:].T)  # (64, C)
            sw = net.start.weight  # (C, C, 2): tap 0 reads t - 1, tap 1 reads t
            start = (n(torch.cat([sw[:, :, 0], sw[:, :, 1]], dim=1).T), n(net.start.bias))  # (2C, C)
            layers = []
            conv: Any
            res: Any
            skip: Any
            for conv, res, skip in zip(net.dilated, net.res, net.skip, strict=True):
                w = conv.weight  # (2C, C, 2): tap 0 reads t - d, tap 1 reads t
                w_taps = n(torch.cat([w[:, :, 0], w[:, :, 1]], dim=1).T)  # (2C in, 2C out)
                w_out = n(torch.cat([res.weight[:, :, 0], skip.weight[:, :, 0]]).T)  # (C, C + S)
                layers.append((w_taps, n(conv.bias), w_out, n(torch.cat([res.bias, skip.bias]))))
            out1 = (n(net.out1.weight[:, :, 0].T), n(net.out1.bias))  # (S, S)
            out2 = (n(net.out2.weight[:, :, 0].T), n(net.out2.bias))  # (S, V)
        return tok_table, pos_table, bar_table, start, layers, out1, out2

    def _head(self, skips: np.ndarray) -> np.ndarray:
        (w1, b1), (w2, b2) = self.out1, self.out2
        return np.maximum(np.maximum(skips, 0) @ w1 + b1, 0) @ w2 + b2  # (V,)

    def prefill(self, tokens: torch.Tensor, bar_pos: torch.Tensor, bar_steps: torch.Tensor) -> np.ndarray:
        """Run the whole seed once (1, T) with the same fused weights as :meth:`step` (one matrix
        product per layer over all steps); fill the buffers; return the logits (V,) after it."""
        C = self.C

        def taps(x: np.ndarray, d: int) -> np.ndarray:  # (T, C) -> (T, 2C): [x(t - d), x(t)]
            past = np.zeros_like(x)
            if d < len(x):
                past[d:] = x[:-d]
            return np.concatenate([past, x], axis=1)

        x0 = (
            self.tok_table[tokens[0].numpy()]
            + self.pos_table[bar_pos[0].numpy()]
            + self.bar_table[bar_steps[0].numpy()]
        )
        inputs = [x0]  # (T, C) each
        w, b = self.start
        x = taps(x0, 1) @ w + b  # (T, C)
        skips: Any = 0.0  # (S,) once the first layer has added to it
        for d, (w_taps, b_taps, w_out, b_out) in zip(self.dilations[1:], self.layers, strict=True):
            inputs.append(x)
            fg = taps(x, d) @ w_taps + b_taps  # (T, 2C)
            z = np.tanh(fg[:, :C]) * _sigmoid(fg[:, C:])  # (T, C)
            x = x + z @ w_out[:, :C] + b_out[:C]  # (T, C)
            skips = skips + z[-1] @ w_out[:, C:] + b_out[C:]  # (S,) at the last step only
        self.buffers: list[np.ndarray] = []
        for d, seq in zip(self.dilations, inputs, strict=True):
            buf = np.zeros((d, C), dtype=np.float32)
            k = min(d, seq.shape[0])
            buf[d - k :] = seq[-k:]
            self.buffers.append(buf)
        self.pointers = [0] * len(self.buffers)
        return self._head(skips)

    def step(self, token: int, bar_pos: int, bar_steps: int) -> np.ndarray:
        """Feed one token (with the bar position of the step it predicts); logits (V,) of the next."""
        C = self.C
        bufs, ptrs = self.buffers, self.pointers
        x0 = self.tok_table[token] + self.pos_table[bar_pos] + self.bar_table[bar_steps]  # (C,)
        cat = np.empty(2 * C, dtype=np.float32)
        p = ptrs[0]
        cat[:C] = bufs[0][p]
        cat[C:] = x0
        bufs[0][p] = x0
        ptrs[0] = (p + 1) % len(bufs[0])
        w, b = self.start
        x = cat @ w + b  # (C,)
        skips: Any = 0.0  # (S,) once the first layer has added to it
        for i, (w_taps, b_taps, w_out, b_out) in enumerate(self.layers, start=1):
            p = ptrs[i]
            cat[:C] = bufs[i][p]  # the layer's input d steps ago
            cat[C:] = x
            bufs[i][p] = x
            ptrs[i] = (p + 1) % len(bufs[i])
            fg = cat @ w_taps + b_taps  # (2C,)
            z = np.tanh(fg[:C]) * _sigmoid(fg[C:])  # (C,)
            rs = z @ w_out + b_out  # (C + S,)
            x = x + rs[:C]
            skips = skips + rs[C:]
        return self._head(skips)


# -- streaming ----------------------------------------------------------------------------------------------
class WaveNetAdapter:
    """The streaming engine's model adapter: ``prefill`` runs the prompt once and fills the
    queues; each ``step`` is one fast-generation step. The state is the index of the next step."""

    def __init__(self, net: WaveNet, bar_position, classes) -> None:
        self.fast = FastWaveNet(net)
        self.bar_position = bar_position
        self.classes = classes

    def _cond(self, k: int) -> tuple[int, int]:
        pos, steps = self.bar_position(k)
        return min(pos, MAX_BAR_POS - 1), min(steps, MAX_BAR_STEPS - 1)

    def prefill(self, tokens):
        """Read ``[<s>, x0, ...]`` (its last PREFILL_STEPS tokens); logits (V,) of the first
        generated step."""
        n = len(tokens)
        first = max(0, n - PREFILL_STEPS)
        conds = [self._cond(k) for k in range(first, n)]
        with torch.inference_mode():
            logits = self.fast.prefill(
                torch.tensor([list(tokens)[first:]], dtype=torch.long),
                torch.tensor([[c[0] for c in conds]], dtype=torch.long),
                torch.tensor([[c[1] for c in conds]], dtype=torch.long),
            )
        return n, logits

    def step(self, token: int, state: int):
        """One token in (one step per layer), logits of the next step out."""
        pos, steps = self._cond(state)
        with torch.inference_mode():
            logits = self.fast.step(int(token), pos, steps)
        return state + 1, logits


class WaveNetModel(GridMelodyModel):
    """A loaded WaveNet: the grid prompt, shared sampler and decoder of every grid-melody model."""

    family = "wavenet"

    def __init__(
        self, name: str, card: dict, tokenizer: GridMelodyTokenizer, net: WaveNet, path=None
    ) -> None:
        super().__init__(name, card, tokenizer, path)
        self.net = net.eval()

    def score_tunes(self, tunes: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(NLL per step, argmax, target) over whole tunes read from their start (for evaluation)."""
        return score_tunes(self.net, self.tokenizer, tunes)

    def adapter(self, bar_position) -> WaveNetAdapter:
        """A fresh adapter (its own activation queues); one thread, no oneDNN for batch-1 steps."""
        torch.set_num_threads(1)
        torch.backends.mkldnn.enabled = False  # type: ignore[assignment]
        return WaveNetAdapter(self.net, bar_position, self.classes)


# -- training and evaluation ---------------------------------------------------------------------------------
SEQ_LEN = 384
TRAIN_WINDOWS = (
    f"batches of 16 windows of {SEQ_LEN} steps: half start at a tune's start (every step scored), "
    "half anywhere (their last two thirds scored)"
)


def _windows(stream: dict[str, np.ndarray], n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """A batch of ``n`` windows (inputs, bar_pos, bar_steps, targets), each (n, SEQ_LEN), and a
    (n,) flag: True for a window that starts at a tune's ``<s>``.

    Half the windows start at a tune's first step, as the test reads a tune (and a sketch is read):
    with nothing (zero padding) before it; the other half start anywhere, for the long tunes' tails.
    """
    total = len(stream["targets"])
    tune_starts = stream["tune_starts"]
    tune_starts = tune_starts[tune_starts < total - SEQ_LEN]
    at_start = torch.rand(n, generator=gen).numpy() < 0.5
    anywhere = torch.randint(0, total - SEQ_LEN, (n,), generator=gen).numpy()
    picks = tune_starts[torch.randint(0, len(tune_starts), (n,), generator=gen).numpy()]
    starts = np.where(at_start, picks, anywhere)
    return (
        *(
            torch.from_numpy(np.stack([stream[k][s : s + SEQ_LEN] for s in starts])).long()
            for k in ("inputs", "bar_pos", "bar_steps", "targets")
        ),
        torch.from_numpy(at_start),
    )


def _tune_batches(tok: GridMelodyTokenizer, tunes: list) -> list[tuple[torch.Tensor, ...]]:
    """Each tune as a batch of one, read from its start (how the test reads it): the validation."""
    from musicgen_app.ml.grid_data import tune_arrays

    whole = torch.ones(1, dtype=torch.bool)
    return [
        (*(torch.from_numpy(a.astype(np.int64))[None] for a in tune_arrays(tok, t)), whole) for t in tunes
    ]


def _loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, int]:
    x, bp, bs, y, at_start = batch
    logits, _ = model(x, bp, bs)  # (B, T, V)
    nll = nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (B, T)
    # a window that starts inside a tune sees less than the receptive field at its first steps,
    # cut off where no test read is: score its last two thirds only; one that starts at a tune's
    # start is read as the test reads a tune, so every step of it counts
    keep = at_start[:, None] | (torch.arange(y.shape[1]) >= y.shape[1] // 3)[None, :]  # (B, T)
    return (nll * keep).sum(), int(keep.sum())


def melody_streams(tok: GridMelodyTokenizer, tunes: list) -> dict[str, np.ndarray]:
    """The tunes concatenated, each as ``<s>`` + ids, with bar positions of the predicted step."""
    from musicgen_app.ml.grid_data import tune_arrays

    parts = [tune_arrays(tok, t) for t in tunes]
    out = {
        k: np.concatenate([p[i] for p in parts]).astype(np.int64)
        for i, k in enumerate(("inputs", "bar_pos", "bar_steps", "targets"))
    }
    out["tune_starts"] = np.cumsum([0] + [len(p[0]) for p in parts[:-1]]).astype(np.int64)
    return out


def score_tunes(
    net: WaveNet, tok: GridMelodyTokenizer, tunes: list
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(NLL per step in nats, argmax id, target id), each (steps,), over whole tunes from their start."""
    from musicgen_app.ml.grid_data import tune_arrays

    nll, pred, tgt = [], [], []
    with torch.inference_mode():
        for t in tunes:
            x, bp, bs, y = (torch.from_numpy(a.astype(np.int64))[None] for a in tune_arrays(tok, t))
            logits, _ = net(x, bp, bs)  # (1, T, V)
            nll.append(nn.functional.cross_entropy(logits[0], y[0], reduction="none").numpy())
            pred.append(logits[0].argmax(-1).numpy())
            tgt.append(y[0].numpy())
    return np.concatenate(nll), np.concatenate(pred), np.concatenate(tgt)


def train_model(
    name: str = "wavenet", minutes: float = 10.0, corpus: str = "essen", resume: bool = False
) -> dict:
    """Train on the melody corpus (B's cached Essen dataset and split); write models/<name>.*."""
    from musicgen_app.ml import data as data_mod
    from musicgen_app.ml.families.checkpoint import save_checkpoint
    from musicgen_app.ml.training import TrainConfig, maybe_resume, train, training_record

    ds = data_mod.load_or_build(corpus, progress=False)
    split = data_mod.split_indices(ds)
    tunes = {k: list(ds.tunes(v)) for k, v in split.items()}
    tok = GridMelodyTokenizer.covering((int(p) for p in ds.steps if p >= 0), margin=0)
    streams = {k: melody_streams(tok, v) for k, v in tunes.items()}
    cfg = WaveNetConfig(vocab_size=tok.vocab_size)
    model = WaveNet(cfg)
    previous = maybe_resume(name, model, resume)
    valid = _tune_batches(tok, tunes["val"])  # the validation tunes, each read from its start
    lr = 1e-3 if resume else 2e-3  # a resumed run starts from trained weights (and a fresh optimizer)
    res = train(model, _loss, lambda gen: _windows(streams["train"], 16, gen), valid,
                TrainConfig(minutes=minutes, lr=lr, eval_every=100, patience=6))  # fmt: skip
    nll_steps, pred, tgt = score_tunes(model, tok, tunes["test"])
    nll, acc, n = float(nll_steps.mean()), float((pred == tgt).mean()), len(tgt)
    card = {
        "name": name,
        "family": "wavenet",
        "architecture": ARCHITECTURE,
        "seed_paper": "004",
        "title": "WaveNet over melody tokens (paper 004)",
        "description": (
            "Causal dilated 1-D convolutions (kernel 2, dilations 1..64, two stacks), gated tanh/sigmoid "
            "units, residual and skip connections, as in paper 004. The paper modelled raw audio; a MIDI "
            "app needs symbolic output, so each step is a 16th-note melody token (pitch, rest, hold). "
            "Streams with fast WaveNet generation (per-layer activation queues: one step per layer "
            "per token)."
        ),
        "data": {"dataset": f"{corpus.capitalize()} folk songs (music21 corpus)", "corpus": corpus,
                 "note": "the melody model's cached dataset and split",
                 "tunes": {k: len(v) for k, v in tunes.items()},
                 "transposition": "to C major / A minor", "grid": "16th notes"},
        "split": data_mod.split_record(ds, split),
        "config": {**asdict(cfg), "receptive_field": cfg.receptive_field},
        "vocab": tok.to_dict(),
        "training": {**training_record(res, previous), "windows": TRAIN_WINDOWS,
                     "validation": "NLL per step over the validation tunes, each read from its start"},
        "metrics": {"test_nll": round(nll, 4), "test_accuracy": round(acc, 4), "test_tokens": n,
                    "unit": "nats/step"},
    }  # fmt: skip
    save_checkpoint(name, model, card)
    logger.info("saved %s: test NLL %.3f accuracy %.3f", name, nll, acc)
    return card


def load_model_from_card(card: dict, path: str) -> tuple[WaveNet, GridMelodyTokenizer]:
    """Rebuild network and tokenizer from a card and load the weights at ``path``."""
    from musicgen_app.ml.families.checkpoint import load_weights

    conf = {k: v for k, v in card["config"].items() if k != "receptive_field"}
    conf["dilations"] = tuple(conf["dilations"])
    model = WaveNet(WaveNetConfig(**conf))
    load_weights(path, model)
    return model, GridMelodyTokenizer.from_dict(card["vocab"])


def load(name: str, card: dict, path: str) -> WaveNetModel:
    """The model a card describes, ready to stream (raises CheckpointError)."""
    net, tok = load_model_from_card(card, path)
    return WaveNetModel(name, card, tok, net, path)
