"""The straightforward n-gram the fast one must equal: dictionaries of counts, one Python loop over
tokens per order (the project's first implementation; ``benchmarks/bench_ngram.py`` times both)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

import numpy as np


class ReferenceKneserNeyNGram:
    """Interpolated Kneser-Ney n-gram (same definition as :class:`musicgen_app.ml.ngram.KneserNeyNGram`)."""

    def __init__(self, order: int, vocab_size: int, bos: int = 0) -> None:
        self.order = order
        self.vocab_size = vocab_size
        self.bos = bos
        # counts[k][context of length k][token] (k = order-1: raw counts; below: continuation counts)
        self.counts: list[dict[tuple[int, ...], dict[int, int]]] = [{} for _ in range(order)]
        self.totals: list[dict[tuple[int, ...], int]] = [{} for _ in range(order)]
        self.discounts: list[float] = [0.75] * order

    def fit(self, sequences: Iterable[Sequence[int]]) -> ReferenceKneserNeyNGram:
        """Count n-grams of every sequence (without ``<s>``)."""
        top: dict[tuple[int, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
        pad = [self.bos] * (self.order - 1)
        for seq in sequences:
            s = pad + [int(t) for t in seq]
            for i in range(self.order - 1, len(s)):
                top[tuple(s[i - self.order + 1 : i])][s[i]] += 1
        self.counts[self.order - 1] = {h: dict(ws) for h, ws in top.items()}
        for k in range(self.order - 2, -1, -1):  # continuation counts from the types one order up
            cont: dict[tuple[int, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
            for h, ws in self.counts[k + 1].items():
                for w in ws:
                    cont[h[1:]][w] += 1
            self.counts[k] = {h: dict(ws) for h, ws in cont.items()}
        for k in range(self.order):
            self.totals[k] = {h: sum(ws.values()) for h, ws in self.counts[k].items()}
            n1 = sum(1 for ws in self.counts[k].values() for c in ws.values() if c == 1)
            n2 = sum(1 for ws in self.counts[k].values() for c in ws.values() if c == 2)
            self.discounts[k] = max(n1, 1) / (max(n1, 1) + 2 * n2) if n1 + n2 else 0.75
        return self

    def _levels(self, history: Sequence[int]) -> Iterator[tuple[dict[int, int], int, float]]:
        h = [self.bos] * (self.order - 1) + [int(t) for t in history]
        for k in range(self.order):
            ctx = tuple(h[len(h) - k :]) if k else ()
            ws = self.counts[k].get(ctx)
            if ws:
                yield ws, self.totals[k][ctx], self.discounts[k]

    def prob(self, history: Sequence[int], token: int) -> float:
        """``P(token | history)``."""
        p = 1.0 / self.vocab_size
        for ws, total, d in self._levels(history):
            p = max(ws.get(token, 0) - d, 0.0) / total + d * len(ws) / total * p
        return p

    def sequence_nll(self, seq: Sequence[int]) -> np.ndarray:
        """Negative log-probability (nats) of each token, read from the start."""
        s = [self.bos] * (self.order - 1) + [int(t) for t in seq]
        out = np.empty(len(seq))
        for i in range(len(seq)):
            j = i + self.order - 1
            out[i] = -math.log(self.prob(s[j - self.order + 1 : j], s[j]))
        return out
