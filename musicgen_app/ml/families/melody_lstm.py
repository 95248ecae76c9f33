"""Paper 003's melody LSTM, improved: token embeddings, two LSTM layers of 256, dropout, and
(optionally) the position in the bar as conditioning.

Input at step ``t`` is the previous symbol plus where step ``t`` falls in its bar (position and bar
length in 16th steps); the output is the distribution of symbol ``t``. The first input of a tune is
``<s>``. ``prefill``/``step`` run the network one token at a time carrying ``(h, c)``, which is
what the streaming engine uses (no re-reading of a window).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from musicgen_app.errors import CheckpointError
from musicgen_app.ml.checkpoint import load_into, load_weights
from musicgen_app.ml.models import GridMelodyModel
from musicgen_app.ml.tokenizers import GridMelodyTokenizer

logger = logging.getLogger(__name__)

MAX_BAR_POS = 48  # positions >= this share the last embedding (12/8 has 24 steps per bar)
MAX_BAR_STEPS = 64
PREFILL_CACHE_SIZE = 8


@dataclass
class MelodyLSTMConfig:
    """Architecture arguments (stored in the card; loading rebuilds the network from them)."""

    vocab_size: int
    embed_dim: int = 96
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.3
    bar_conditioning: bool = True
    pos_dim: int = 16

    def to_dict(self) -> dict:
        """The config as JSON-able data."""
        return asdict(self)


class MelodyLSTM(nn.Module):
    """Embedding (+ bar position) -> LSTM layers -> dropout -> linear over the vocabulary."""

    def __init__(self, cfg: MelodyLSTMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        in_dim = cfg.embed_dim
        if cfg.bar_conditioning:
            self.pos_embed = nn.Embedding(MAX_BAR_POS, cfg.pos_dim)
            self.bar_embed = nn.Embedding(MAX_BAR_STEPS, cfg.pos_dim)
            in_dim += 2 * cfg.pos_dim
        self.lstm = nn.LSTM(
            in_dim,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size)

    def inputs(self, tokens: torch.Tensor, bar_pos: torch.Tensor, bar_steps: torch.Tensor) -> torch.Tensor:
        """The LSTM input for tokens (B, T) and the bar position of the predicted steps (B, T)."""
        x = self.embed(tokens)  # (B, T, E)
        if self.cfg.bar_conditioning:
            p = self.pos_embed(bar_pos.clamp(0, MAX_BAR_POS - 1))  # (B, T, P)
            b = self.bar_embed(bar_steps.clamp(0, MAX_BAR_STEPS - 1))  # (B, T, P)
            x = torch.cat([x, p, b], dim=-1)  # (B, T, E + 2P)
        return x

    def forward(
        self,
        tokens: torch.Tensor,
        bar_pos: torch.Tensor,
        bar_steps: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Logits (B, T, V) and the final (h, c), each (layers, B, H)."""
        x = self.inputs(tokens, bar_pos, bar_steps)
        y, state = self.lstm(x, state)  # (B, T, H)
        return self.head(self.drop(y)), state  # (B, T, V)


# -- inference ------------------------------------------------------------------------------------------
class InferenceTables:
    """The network's weights rearranged for batch-1 inference in numpy (float32), built once per model.

    The first layer's input projection of every token, bar position and bar length (biases
    included) is precomputed, so reading a token is three row lookups instead of a product. Gates
    are reordered to (input, forget, output, cell) so the three sigmoid gates are one slice.
    """

    def __init__(self, model: MelodyLSTM) -> None:
        from threadpoolctl import threadpool_limits

        # batch-1 products are far too small for several BLAS threads (they only add contention)
        threadpool_limits(limits=1, user_api="blas")
        cfg = model.cfg
        H = cfg.hidden_size
        # PyTorch's gate order is (i, f, g, o); ours is (i, f, o, g)
        order = np.concatenate([np.arange(0, 2 * H), np.arange(3 * H, 4 * H), np.arange(2 * H, 3 * H)])
        with torch.inference_mode():
            lstm = model.lstm

            # sigmoid(x) = (1 + tanh(x / 2)) / 2: the sigmoid gates' rows are halved here, so one
            # tanh over all four gates does the work (see _cell)
            half = np.concatenate([np.full(3 * H, 0.5), np.ones(H)]).astype(np.float32)

            def w(name: str) -> np.ndarray:
                t = getattr(lstm, name).detach().float().numpy()[order]
                return t * (half[:, None] if t.ndim == 2 else half)

            E = cfg.embed_dim
            w0 = w("weight_ih_l0")  # (4H, in_dim)
            b0 = w("bias_ih_l0") + w("bias_hh_l0")  # (4H,)
            emb = model.embed.weight.detach().float().numpy()  # (V, E)
            self.tok_table = np.ascontiguousarray(emb @ w0[:, :E].T + b0, dtype=np.float32)  # (V, 4H)
            self.bar_conditioning = cfg.bar_conditioning
            if cfg.bar_conditioning:
                P = cfg.pos_dim
                pos = model.pos_embed.weight.detach().float().numpy()  # (48, P)
                bar = model.bar_embed.weight.detach().float().numpy()  # (64, P)
                self.pos_table = np.ascontiguousarray(pos @ w0[:, E : E + P].T, dtype=np.float32)  # (48, 4H)
                self.bar_table = np.ascontiguousarray(bar @ w0[:, E + P :].T, dtype=np.float32)  # (64, 4H)
            self.w_hh = [
                np.ascontiguousarray(w(f"weight_hh_l{i}").T) for i in range(cfg.num_layers)
            ]  # (H, 4H)
            self.w_ih = [np.zeros((0, 0), np.float32)] + [
                np.ascontiguousarray(w(f"weight_ih_l{i}").T) for i in range(1, cfg.num_layers)
            ]  # (H, 4H)
            self.bias = [np.zeros(0, np.float32)] + [
                (w(f"bias_ih_l{i}") + w(f"bias_hh_l{i}")).astype(np.float32) for i in range(1, cfg.num_layers)
            ]  # (4H,)
            self.w_out = np.ascontiguousarray(model.head.weight.detach().float().numpy().T)  # (H, V)
            self.b_out = model.head.bias.detach().float().numpy().copy()  # (V,)
        self.H = H
        self.layers = cfg.num_layers
        # prompt -> (state, logits) of recent prefills: a new take of the same sketch, or a sketch
        # that grew at its end (a take was accepted), starts from here instead of from scratch
        self.prefill_cache: OrderedDict[tuple, tuple] = OrderedDict()
        self.cache_lock = threading.Lock()


def _cell(gates: np.ndarray, c: np.ndarray, H: int) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM cell update from pre-activations (4H,) in (i, f, o, g) order, the first three
    already halved: sigmoid(x) = (1 + tanh(x / 2)) / 2."""
    t = np.tanh(gates)  # (4H,)
    t[: 3 * H] += 1.0  # 2 * sigmoid of the i, f, o gates
    c = 0.5 * (t[H : 2 * H] * c + t[:H] * t[3 * H :])  # (H,)
    h = 0.5 * t[2 * H : 3 * H] * np.tanh(c)  # (H,)
    return h, c


class MelodyLSTMAdapter:
    """Streaming inference for :class:`MelodyLSTM` at batch 1 (the ``ModelAdapter`` protocol).

    Plain numpy over :class:`InferenceTables`: no autograd, no oneDNN, no torch dispatch per op
    (at batch 1 torch's per-operation overhead is larger than the arithmetic). ``prefill`` reads
    the prompt layer by layer (the second layer's input projection is one matrix product);
    ``step`` advances one token. The state is ``(h, c, k)``: per-layer hidden and cell vectors and
    the index of the next predicted step, whose bar position conditions the next input.
    """

    def __init__(self, tables: InferenceTables, bar_position, classes) -> None:
        self.t = tables
        self.bar_position = bar_position
        self.classes = classes

    def _input_gates(self, token: int, k: int) -> np.ndarray:
        t = self.t
        g = t.tok_table[token]
        if t.bar_conditioning:
            pos, steps = self.bar_position(k)[:2]
            g = g + t.pos_table[min(pos, MAX_BAR_POS - 1)] + t.bar_table[min(steps, MAX_BAR_STEPS - 1)]
        return g

    def prefill(self, tokens):
        """Read the prompt ``[<s>, x0, ...]`` once; logits (V,) of the first generated step.

        The longest cached prefix of the same prompt (same tokens and bar positions) is reused.
        """
        t = self.t
        n = len(tokens)
        conds = [self.bar_position(k) for k in range(n)] if t.bar_conditioning else [(0, 0)] * n
        key = tuple(zip(tokens, conds, strict=True))
        with t.cache_lock:
            hit = t.prefill_cache.get(key)
            if hit is None:
                best = None
                for cached_key, value in t.prefill_cache.items():
                    m = len(cached_key)
                    if m < n and key[:m] == cached_key and (best is None or m > best[0]):
                        best = (m, value)
            else:
                t.prefill_cache.move_to_end(key)
        if hit is not None:
            return hit
        if best is not None:
            done, (state, logits) = best
            for i in range(done, n):
                state, logits = self.step(int(tokens[i]), state)
        else:
            state, logits = self._prefill(tokens, conds)
        with t.cache_lock:
            t.prefill_cache[key] = (state, logits)
            while len(t.prefill_cache) > PREFILL_CACHE_SIZE:
                t.prefill_cache.popitem(last=False)
        return state, logits

    def _prompt_gates(self, tokens, conds) -> np.ndarray:
        """The first layer's input projection (n, 4H) of every prompt token and its condition."""
        t = self.t
        xp = t.tok_table[np.asarray(tokens)]  # (n, 4H)
        if t.bar_conditioning:
            pos = np.minimum([c[0] for c in conds], MAX_BAR_POS - 1)
            bars = np.minimum([c[1] for c in conds], MAX_BAR_STEPS - 1)
            xp = xp + t.pos_table[pos] + t.bar_table[bars]  # (n, 4H)
        return xp

    def _prefill(self, tokens, conds):
        t = self.t
        H = t.H
        n = len(tokens)
        xp = self._prompt_gates(tokens, conds)  # (n, 4H)
        hs, cs = [], []
        outs = np.empty((0, H), np.float32)
        for layer in range(t.layers):
            if layer > 0:
                xp = outs @ t.w_ih[layer] + t.bias[layer]  # (n, 4H)
            h = np.zeros(H, np.float32)
            c = np.zeros(H, np.float32)
            outs = np.empty((n, H), np.float32)
            w_hh = t.w_hh[layer]
            for i in range(n):
                h, c = _cell(xp[i] + h @ w_hh, c, H)
                outs[i] = h
            hs.append(h)
            cs.append(c)
        logits = hs[-1] @ t.w_out + t.b_out  # (V,)
        return (hs, cs, n), logits

    def step(self, token: int, state):
        """One token in, logits (V,) of the next step out."""
        t = self.t
        H = t.H
        hs, cs, k = state
        x = self._input_gates(token, k)  # (4H,) first layer's input projection
        new_h, new_c = [], []
        for layer in range(t.layers):
            if layer > 0:
                x = x @ t.w_ih[layer] + t.bias[layer]  # (4H,)
            h, c = _cell(x + hs[layer] @ t.w_hh[layer], cs[layer], H)
            new_h.append(h)
            new_c.append(c)
            x = h
        return (new_h, new_c, k + 1), x @ t.w_out + t.b_out  # logits (V,)


class MelodyLSTMModel(GridMelodyModel):
    """A loaded melody LSTM ready to continue sketches."""

    family = "melody-lstm"

    def __init__(
        self, name: str, card: dict, tokenizer: GridMelodyTokenizer, net: MelodyLSTM, path=None
    ) -> None:
        super().__init__(name, card, tokenizer, path)
        self.net = net.eval()
        self._tables: InferenceTables | None = None

    def score_tunes(self, tunes):
        """``(nll, argmax, target)`` per step of encoded tunes, each read whole from its start."""
        from musicgen_app.ml.grid_data import per_step_outputs

        return per_step_outputs(self.net, self.tokenizer, list(tunes))

    def clear_prefill_cache(self) -> None:
        """Forget cached prefills (benchmarks measure cold starts with it)."""
        if self._tables is not None:
            with self._tables.cache_lock:
                self._tables.prefill_cache.clear()

    def adapter(self, bar_position):
        """A fresh streaming adapter over the model's inference tables (built on first use)."""
        if self._tables is None:
            self._tables = InferenceTables(self.net)
        return MelodyLSTMAdapter(self._tables, bar_position, self.classes)


def load_melody_lstm(name: str, card: dict, path: Path) -> MelodyLSTMModel:
    """Rebuild the network from the card and load its weights (raises CheckpointError).

    The card is the schema-2 family card (``architecture: "melody-lstm"``, ``config``, ``vocab``)
    or the shipped model's older layout (``architecture: {class: MelodyLSTM, args}``, ``tokenizer``)."""
    arch = card.get("architecture", {})
    if isinstance(arch, dict):
        if arch.get("class") != "MelodyLSTM":
            raise CheckpointError(f"model {name} is not a MelodyLSTM ({arch.get('class')!r})")
        args, vocab = arch.get("args"), card.get("tokenizer", {})
    elif arch == "melody-lstm":
        args, vocab = card.get("config"), card.get("vocab", {})
    else:
        raise CheckpointError(f"model {name} is not a melody LSTM ({arch!r:.40})")
    tok = GridMelodyTokenizer.from_dict(vocab)
    try:
        if not isinstance(args, dict):
            raise TypeError("no network arguments")
        cfg = MelodyLSTMConfig(**{k: v for k, v in args.items() if k != "parameters"})
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"model {name} has invalid architecture arguments ({exc})") from exc
    if cfg.vocab_size != tok.vocab_size:
        raise CheckpointError(f"model {name}: vocabulary size {tok.vocab_size} != network's {cfg.vocab_size}")
    net = MelodyLSTM(cfg)
    load_into(net, load_weights(path, card), name)
    return MelodyLSTMModel(name, card, tok, net, path)
