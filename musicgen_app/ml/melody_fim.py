"""A fill-in-the-middle melody LSTM: the melody LSTM taught to read the music *after* a gap first.

Each training window is rearranged as suffix, prefix, middle with two marker tokens (``<suf>``,
``<pre>``) appended to the grid vocabulary::

    inputs   <suf> s0 .. s(S-1) <pre> p0 .. p(P-1) m0 .. m(M-1)
    targets  s0 s1 .. (none)    p0 p1 .. m0       m1 .. s0

so the middle is generated left to right right after the prefix (the state carries the suffix),
and its last step is trained to lead into the suffix's first. A unidirectional LSTM does not know
where the gap ends, so every input also carries the number of steps from the step it predicts to
the suffix (``gap``, embedded, clamped; one extra bucket marks the suffix block), added to the
token embedding. Bar positions are those of the predicted step, as in the melody LSTM.

Fine-tuned from the shipped melody-lstm (:func:`init_from_melody_lstm`) by
``scripts/train_melody_fim.py``; loaded by the registry under the family ``melody-fim``. As a
:class:`~musicgen_app.ml.models.GridMelodyModel` it continues sketches too (no suffix: the "far"
gap bucket); :mod:`musicgen_app.ml.fill` builds its fill prompt with :func:`fim_layout`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from musicgen_app.errors import CheckpointError
from musicgen_app.ml.checkpoint import load_into, load_weights
from musicgen_app.ml.families.melody_lstm import (
    MAX_BAR_POS,
    MAX_BAR_STEPS,
    InferenceTables,
    MelodyLSTM,
    MelodyLSTMAdapter,
    MelodyLSTMConfig,
)
from musicgen_app.ml.models import GridMelodyModel
from musicgen_app.ml.sampling import TokenClasses
from musicgen_app.ml.tokenizers import BOS, GridMelodyTokenizer

logger = logging.getLogger(__name__)

MARKERS = ("<suf>", "<pre>")
GAP_BUCKETS = 130  # 0..127: steps to the suffix (127: that far or farther), 128: in the suffix, 129: unused
GAP_FAR = 127
GAP_SUFFIX = 128


@dataclass
class MelodyFIMConfig(MelodyLSTMConfig):
    """The melody LSTM's arguments plus the gap embedding (``vocab_size`` counts the markers)."""

    gap_buckets: int = GAP_BUCKETS

    def base(self) -> MelodyLSTMConfig:
        """The melody LSTM part of the config."""
        d = asdict(self)
        d.pop("gap_buckets")
        return MelodyLSTMConfig(**d)


class MelodyFIM(MelodyLSTM):
    """The melody LSTM with a gap embedding added to the token embedding."""

    def __init__(self, cfg: MelodyFIMConfig) -> None:
        super().__init__(cfg.base())
        self.fim_cfg = cfg
        self.gap_embed = nn.Embedding(cfg.gap_buckets, cfg.embed_dim)

    def forward_fim(
        self,
        tokens: torch.Tensor,
        bar_pos: torch.Tensor,
        bar_steps: torch.Tensor,
        gap: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Logits (B, T, V) and the final (h, c) for tokens, bar positions and gaps (each (B, T))."""
        x = self.embed(tokens) + self.gap_embed(gap)  # (B, T, E)
        if self.cfg.bar_conditioning:
            p = self.pos_embed(bar_pos.clamp(0, MAX_BAR_POS - 1))  # (B, T, P)
            b = self.bar_embed(bar_steps.clamp(0, MAX_BAR_STEPS - 1))  # (B, T, P)
            x = torch.cat([x, p, b], dim=-1)  # (B, T, E + 2P)
        y, state = self.lstm(x, state)  # (B, T, H)
        return self.head(self.drop(y)), state


def marker_ids(tok: GridMelodyTokenizer) -> tuple[int, int]:
    """The ids of ``<suf>`` and ``<pre>`` after the grid vocabulary."""
    return tok.vocab_size, tok.vocab_size + 1


def init_from_melody_lstm(base: MelodyLSTM, tok: GridMelodyTokenizer) -> MelodyFIM:
    """A FIM network whose shared weights are ``base``'s (markers new, gap embedding zero)."""
    bc = base.cfg
    cfg = MelodyFIMConfig(**{**asdict(bc), "vocab_size": tok.vocab_size + len(MARKERS)})
    net = MelodyFIM(cfg)
    with torch.no_grad():
        own = net.state_dict()
        for name, tensor in base.state_dict().items():
            if own[name].shape == tensor.shape:
                own[name].copy_(tensor)
            else:  # embed.weight (V, E), head.weight (V, H), head.bias (V,): the first V rows
                own[name][: tensor.shape[0]].copy_(tensor)
        own["head.bias"][tok.vocab_size :] = -10.0  # markers are read, never written
        own["gap_embed.weight"].zero_()
        net.load_state_dict(own)
    return net


# -- the layout shared by training and inference ------------------------------------------------------
def fim_layout(
    prefix: Sequence[int], suffix: Sequence[int], n_middle: int, tok: GridMelodyTokenizer
) -> tuple[list[int], list[int], list[int]]:
    """``(tokens, step, gap)`` of a fill prompt: the input ids, the timeline step each input
    predicts (prefix step 0 = 0; the middle follows the prefix, the suffix the middle) and its gap
    bucket. Generated middle step ``j`` (as input) then predicts step ``P + j + 1`` with gap
    ``n_middle - j - 1`` (see :func:`gap_bucket`)."""
    suf, pre = marker_ids(tok)
    p, s = len(prefix), len(suffix)
    first_suffix = p + n_middle
    tokens = [suf, *suffix, pre, *prefix]
    steps = [first_suffix + k for k in range(s + 1)] + list(range(p + 1))
    gaps = [GAP_SUFFIX] * (s + 1) + [gap_bucket(first_suffix - t) for t in range(p + 1)]
    return tokens, steps, gaps


def gap_bucket(distance: int) -> int:
    """The bucket of ``distance`` steps to the suffix."""
    return int(min(max(distance, 0), GAP_FAR))


# -- inference ----------------------------------------------------------------------------------------
class FIMTables(InferenceTables):
    """The melody LSTM's numpy tables plus the gap embedding's first-layer projection (G, 4H)."""

    def __init__(self, net: MelodyFIM) -> None:
        super().__init__(net)
        # the gap rows through the same projection as tokens: a network whose embedding holds the
        # gap vectors and one zero row (its row is the bias alone, subtracted)
        probe = MelodyLSTM(net.cfg)
        probe.load_state_dict(net.state_dict(), strict=False)
        g = net.gap_embed.weight.detach()
        with torch.no_grad():
            probe.embed = nn.Embedding.from_pretrained(torch.cat([g, torch.zeros(1, g.shape[1])]))
        rows = InferenceTables(probe).tok_table  # (G + 1, 4H)
        self.gap_table = np.ascontiguousarray(rows[:-1] - rows[-1], dtype=np.float32)  # (G, 4H)


class MelodyFIMAdapter(MelodyLSTMAdapter):
    """Batch-1 numpy inference (the ``ModelAdapter`` protocol) with the gap added to every input.

    ``cond(k) -> (bar position, steps per bar, gap bucket)`` for input ``k`` (prompt inputs first,
    then each generated token)."""

    def __init__(self, tables: FIMTables, cond: Callable[[int], tuple[int, int, int]], classes) -> None:
        super().__init__(tables, cond, classes)
        self.gap_table = tables.gap_table

    def _input_gates(self, token: int, k: int) -> np.ndarray:
        return super()._input_gates(token, k) + self.gap_table[self.bar_position(k)[2]]

    def _prompt_gates(self, tokens, conds) -> np.ndarray:
        return super()._prompt_gates(tokens, conds) + self.gap_table[[c[2] for c in conds]]


class MelodyFIMModel(GridMelodyModel):
    """A loaded fill-in-the-middle melody LSTM."""

    family = "melody-fim"

    def __init__(
        self, name: str, card: dict, tokenizer: GridMelodyTokenizer, net: MelodyFIM, path=None
    ) -> None:
        super().__init__(name, card, tokenizer, path)
        self.net = net.eval()
        self._tables: FIMTables | None = None
        suf, pre = marker_ids(tokenizer)
        id_pitch = np.concatenate([tokenizer.id_pitches(), [-1, -1]])
        self.classes = TokenClasses(
            vocab_size=tokenizer.vocab_size + len(MARKERS),
            rest_id=self.classes.rest_id,
            hold_id=self.classes.hold_id,
            id_pitch=id_pitch,
            never=(BOS, suf, pre),
        )

    def adapter(self, bar_position):
        """A continuation adapter: the prompt's ``<s>`` read as ``<pre>``, no suffix (far gap)."""
        pre = marker_ids(self.tokenizer)[1]
        inner = self.fill_adapter(lambda k: (*bar_position(k), GAP_FAR))

        class _Continue:
            classes = self.classes

            def prefill(self, tokens):
                tokens = list(tokens)
                if tokens and tokens[0] == BOS:
                    tokens[0] = pre
                return inner.prefill(tokens)

            def step(self, token, state):
                return inner.step(token, state)

        return _Continue()

    def fill_adapter(self, cond: Callable[[int], tuple[int, int, int]]) -> MelodyFIMAdapter:
        """An adapter over a :func:`fim_layout` prompt (numpy tables built on first use)."""
        if self._tables is None:
            self._tables = FIMTables(self.net)
        return MelodyFIMAdapter(self._tables, cond, self.classes)


def load_melody_fim(name: str, card: dict, path: Path) -> MelodyFIMModel:
    """Rebuild the network from the card and load its weights (raises CheckpointError)."""
    arch = card.get("architecture", {})
    if arch.get("class") != "MelodyFIM":
        raise CheckpointError(f"model {name} is not a MelodyFIM ({arch.get('class')!r})")
    tok = GridMelodyTokenizer.from_dict(card.get("tokenizer", {}))
    try:
        cfg = MelodyFIMConfig(**arch["args"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"model {name} has invalid architecture arguments ({exc})") from exc
    if cfg.vocab_size != tok.vocab_size + len(MARKERS):
        raise CheckpointError(f"model {name}: vocabulary size {cfg.vocab_size} does not fit its tokenizer")
    net = MelodyFIM(cfg)
    load_into(net, load_weights(path, card), name)
    return MelodyFIMModel(name, card, tok, net, path)
