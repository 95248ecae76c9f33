"""A count-based n-gram baseline over the same tokens: interpolated Kneser-Ney smoothing.

``P(w | h)`` at the highest order uses raw counts, lower orders use continuation counts (how many
different tokens precede ``h w``), each with its own absolute discount ``D = n1 / (n1 + 2 n2)``;
the recursion ends in a uniform distribution over the vocabulary, so no token has probability 0.
Every tune starts with ``order - 1`` copies of ``<s>``. The model only sees tokens (no bar
positions): it is the baseline the neural model has to beat.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

logger = logging.getLogger(__name__)


class KneserNeyNGram:
    """Interpolated Kneser-Ney n-gram over integer token ids ``0..vocab_size-1``."""

    def __init__(self, order: int, vocab_size: int, bos: int = 0) -> None:
        if order < 1:
            raise ValueError("order must be >= 1")
        self.order = order
        self.vocab_size = vocab_size
        self.bos = bos
        # counts[k][context of length k][token] (k = order-1: raw counts; below: continuation counts)
        self.counts: list[dict[tuple[int, ...], dict[int, int]]] = [{} for _ in range(order)]
        self.totals: list[dict[tuple[int, ...], int]] = [{} for _ in range(order)]
        self.discounts: list[float] = [0.75] * order

    def fit(self, sequences: Iterable[Sequence[int]]) -> KneserNeyNGram:
        """Count n-grams of every sequence (each one a tune of token ids, without ``<s>``)."""
        top: dict[tuple[int, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
        pad = [self.bos] * (self.order - 1)
        for seq in sequences:
            s = pad + [int(t) for t in seq]
            for i in range(self.order - 1, len(s)):
                top[tuple(s[i - self.order + 1 : i])][s[i]] += 1
        self.counts[self.order - 1] = {h: dict(ws) for h, ws in top.items()}
        # continuation counts: order k from the distinct (v, h, w) types of order k + 1
        for k in range(self.order - 2, -1, -1):
            cont: dict[tuple[int, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
            for h, ws in self.counts[k + 1].items():
                short = h[1:]
                for w in ws:
                    cont[short][w] += 1
            self.counts[k] = {h: dict(ws) for h, ws in cont.items()}
        for k in range(self.order):
            self.totals[k] = {h: sum(ws.values()) for h, ws in self.counts[k].items()}
            n1 = sum(1 for ws in self.counts[k].values() for c in ws.values() if c == 1)
            n2 = sum(1 for ws in self.counts[k].values() for c in ws.values() if c == 2)
            self.discounts[k] = n1 / (n1 + 2 * n2) if n1 + n2 else 0.75
        return self

    def _levels(self, history: Sequence[int]) -> Iterator[tuple[dict[int, int], int, float]]:
        """``(counts, total, discount)`` of each seen context of ``history``, shortest first."""
        h = [self.bos] * (self.order - 1) + [int(t) for t in history]
        for k in range(self.order):
            ctx = tuple(h[len(h) - k :]) if k else ()
            ws = self.counts[k].get(ctx)
            if ws:
                yield ws, self.totals[k][ctx], self.discounts[k]

    def distribution(self, history: Sequence[int]) -> np.ndarray:
        """``P(. | history)`` over the whole vocabulary (float64, sums to 1)."""
        p = np.full(self.vocab_size, 1.0 / self.vocab_size)
        for ws, total, d in self._levels(history):
            new = p * (d * len(ws) / total)
            for w, c in ws.items():
                new[w] += max(c - d, 0.0) / total
            p = new
        return p

    def prob(self, history: Sequence[int], token: int) -> float:
        """``P(token | history)``."""
        p = 1.0 / self.vocab_size
        for ws, total, d in self._levels(history):
            p = max(ws.get(token, 0) - d, 0.0) / total + d * len(ws) / total * p
        return p

    def sequence_nll(self, seq: Sequence[int]) -> np.ndarray:
        """Negative log-probability (nats) of each token of a tune, read from its start."""
        s = [self.bos] * (self.order - 1) + [int(t) for t in seq]
        out = np.empty(len(seq))
        for i in range(len(seq)):
            j = i + self.order - 1
            out[i] = -math.log(self.prob(s[j - self.order + 1 : j], s[j]))
        return out
