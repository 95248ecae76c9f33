"""Paper 003's melody LSTM, improved: token embeddings, two LSTM layers of 256, dropout, and
(optionally) the position in the bar as conditioning.

Input at step ``t`` is the previous symbol plus where step ``t`` falls in its bar (position and bar
length in 16th steps); the output is the distribution of symbol ``t``. The first input of a tune is
``<s>``. ``prefill``/``step`` run the network one token at a time carrying ``(h, c)``, which is
what the streaming engine uses (no re-reading of a window).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from musicgen_app.errors import CheckpointError
from musicgen_app.ml.checkpoint import load_into, load_weights
from musicgen_app.ml.models import GridMelodyModel
from musicgen_app.ml.tokenizers import GridMelodyTokenizer

logger = logging.getLogger(__name__)

MAX_BAR_POS = 48  # positions >= this share the last embedding (12/8 has 24 steps per bar)
MAX_BAR_STEPS = 64


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
class MelodyLSTMAdapter:
    """Streaming inference for :class:`MelodyLSTM` at batch 1 (the ``ModelAdapter`` protocol).

    ``prefill`` runs the whole prompt through ``nn.LSTM`` once. ``step`` is a hand-written LSTM cell
    over precomputed tables: the first layer's input projection of every token, bar position and
    bar length is looked up instead of multiplied, so one step costs the recurrent products and
    the output layer only, with no oneDNN and no autograd. The state is ``(h, c, k)``: per-layer
    hidden and cell vectors and the index of the next predicted step.
    """

    def __init__(self, model: MelodyLSTM, bar_position, classes) -> None:
        self.model = model.eval()
        self.bar_position = bar_position
        self.classes = classes
        cfg = model.cfg
        H = cfg.hidden_size
        with torch.inference_mode():
            lstm = model.lstm
            w0 = lstm.weight_ih_l0  # (4H, in_dim)
            bias0 = lstm.bias_ih_l0 + lstm.bias_hh_l0
            E = cfg.embed_dim
            self.tok_table = (model.embed.weight @ w0[:, :E].T + bias0).contiguous()  # (V, 4H)
            if cfg.bar_conditioning:
                P = cfg.pos_dim
                self.pos_table = (model.pos_embed.weight @ w0[:, E : E + P].T).contiguous()  # (48, 4H)
                self.bar_table = (model.bar_embed.weight @ w0[:, E + P :].T).contiguous()  # (64, 4H)
            self.w_hh = [getattr(lstm, f"weight_hh_l{i}").T.contiguous() for i in range(cfg.num_layers)]
            self.w_ih = [None] + [
                getattr(lstm, f"weight_ih_l{i}").T.contiguous() for i in range(1, cfg.num_layers)
            ]
            self.bias = [None] + [
                getattr(lstm, f"bias_ih_l{i}") + getattr(lstm, f"bias_hh_l{i}")
                for i in range(1, cfg.num_layers)
            ]
            self.w_out = model.head.weight.T.contiguous()  # (H, V)
            self.b_out = model.head.bias.clone()
        self.H = H

    def _conditioning(self, k: int) -> tuple[int, int]:
        pos, steps = self.bar_position(k)
        return min(pos, MAX_BAR_POS - 1), min(steps, MAX_BAR_STEPS - 1)

    def prefill(self, tokens):
        """Read the prompt ``[<s>, x0, ...]`` once; logits of the first generated step."""
        n = len(tokens)
        conds = [self._conditioning(k) for k in range(n)]
        with torch.inference_mode():
            x = torch.tensor([tokens], dtype=torch.long)  # (1, n)
            p = torch.tensor([[c[0] for c in conds]], dtype=torch.long)  # (1, n)
            b = torch.tensor([[c[1] for c in conds]], dtype=torch.long)  # (1, n)
            y, (h, c) = self.model.lstm(self.model.inputs(x, p, b))  # y (1, n, H); h, c (L, 1, H)
            logits = y[0, -1] @ self.w_out + self.b_out  # (V,)
            state = (
                [h[i, 0].clone() for i in range(h.shape[0])],
                [c[i, 0].clone() for i in range(c.shape[0])],
                n,
            )
        return state, logits.numpy()

    def step(self, token: int, state):
        """One token in, logits of the next step out (batch 1, no autograd)."""
        hs, cs, k = state
        with torch.inference_mode():
            g = self.tok_table[token]  # (4H,)
            if self.model.cfg.bar_conditioning:
                pos, steps = self._conditioning(k)
                g = g + self.pos_table[pos] + self.bar_table[steps]
            new_h, new_c = [], []
            x = None
            for i, (h, c) in enumerate(zip(hs, cs, strict=True)):
                inp = g if i == 0 else self.bias[i] + x @ self.w_ih[i]  # (4H,)
                gates = inp + h @ self.w_hh[i]  # (4H,)
                ig, fg, gg, og = gates.view(4, self.H)
                c = torch.sigmoid(fg) * c + torch.sigmoid(ig) * torch.tanh(gg)  # (H,)
                h = torch.sigmoid(og) * torch.tanh(c)  # (H,)
                new_h.append(h)
                new_c.append(c)
                x = h
            logits = x @ self.w_out + self.b_out  # (V,)
        return (new_h, new_c, k + 1), logits.numpy()


class MelodyLSTMModel(GridMelodyModel):
    """A loaded melody LSTM ready to continue sketches."""

    family = "melody-lstm"

    def __init__(
        self, name: str, card: dict, tokenizer: GridMelodyTokenizer, net: MelodyLSTM, path=None
    ) -> None:
        super().__init__(name, card, tokenizer, path)
        self.net = net.eval()

    def adapter(self, bar_position):
        """A fresh streaming adapter (one torch thread, oneDNN off for single steps)."""
        torch.set_num_threads(1)
        torch.backends.mkldnn.enabled = False
        return MelodyLSTMAdapter(self.net, bar_position, self.classes)


def load_melody_lstm(name: str, card: dict, path: Path) -> MelodyLSTMModel:
    """Rebuild the network from the card and load its weights (raises CheckpointError)."""
    arch = card.get("architecture", {})
    if arch.get("class") != "MelodyLSTM":
        raise CheckpointError(f"model {name} is not a MelodyLSTM ({arch.get('class')!r})")
    tok = GridMelodyTokenizer.from_dict(card.get("tokenizer", {}))
    try:
        cfg = MelodyLSTMConfig(**arch["args"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"model {name} has invalid architecture arguments ({exc})") from exc
    if cfg.vocab_size != tok.vocab_size:
        raise CheckpointError(f"model {name}: vocabulary size {tok.vocab_size} != network's {cfg.vocab_size}")
    net = MelodyLSTM(cfg)
    load_into(net, load_weights(path), name)
    return MelodyLSTMModel(name, card, tok, net, path)
