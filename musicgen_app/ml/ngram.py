"""A count-based n-gram baseline over the same tokens: interpolated Kneser-Ney smoothing.

``P(w | h)`` at the highest order uses raw counts, lower orders use continuation counts (how many
different tokens precede ``h w``), each order with its own absolute discount
``D = n1 / (n1 + 2 n2)`` (``n1``, ``n2``: how many counts of that order are 1 and 2); a context
never seen in training is skipped, and the recursion ends in a uniform distribution over the
vocabulary, so no token has probability 0. Every sequence starts with ``order - 1`` copies of
``<s>``. The model only sees tokens (no bar positions): it is the baseline a neural model has to beat.

**Counting.** The counts of all orders come from one pass over the training tokens, held as one
flat numpy array: the context of length ``m`` of every position gets an exact integer id, built
from the id of its context of length ``m - 1`` and the token ``m`` steps back (``id * V + token``,
made dense again by ``np.unique``), so counting order ``m + 1`` costs one sort of the positions and no
Python loop over tokens. The continuation count of ``(h, w)`` is the number of distinct
``(v h, w)`` types one order up. Since the lower orders' counts do not depend on the model's order,
:func:`choose_order` grows the model one order at a time and scores the validation tokens at each
order in the same pass: the order is chosen on validation data, never on test data.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)

MAX_ORDER = 40  # the order search stops here at the latest
PATIENCE = 2  # ... or after this many orders in a row without a better validation NLL


def _discount(counts: np.ndarray) -> float:
    """The absolute discount ``n1 / (n1 + 2 n2)`` of one order's counts, with ``n1`` at least 1 (an
    order whose counts are all 2 or more would otherwise keep no mass for unseen tokens); 0.75
    without 1s and 2s."""
    n1 = int(np.count_nonzero(counts == 1))
    n2 = int(np.count_nonzero(counts == 2))
    return max(n1, 1) / (max(n1, 1) + 2 * n2) if n1 + n2 else 0.75


def _lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Index of each of ``keys`` in ``sorted_keys``, -1 where it is missing (negative keys: missing)."""
    if len(sorted_keys) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    idx = np.searchsorted(sorted_keys, keys)
    idx = np.minimum(idx, len(sorted_keys) - 1)
    return np.where((sorted_keys[idx] == keys) & (keys >= 0), idx, -1)


class _Tokens:
    """Many sequences as one flat array, with each token's position inside its own sequence; with
    ``dedupe``, a sequence given several times is kept once, its tokens weighing that many times
    (the piano roll's silent keys: 26,576 training sequences, 7,626 different)."""

    def __init__(
        self, sequences: Iterable[Sequence[int] | np.ndarray], bos: int, dedupe: bool = False
    ) -> None:
        arrays = [np.asarray(s, dtype=np.int64).ravel() for s in sequences]
        times = [1] * len(arrays)
        if dedupe:
            index: dict[bytes, int] = {}
            kept: list[np.ndarray] = []
            times = []
            for a in arrays:
                i = index.setdefault(a.tobytes(), len(kept))
                if i == len(kept):
                    kept.append(a)
                    times.append(0)
                times[i] += 1
            arrays = kept
        self.lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        self.tokens = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        starts = np.cumsum(self.lengths) - self.lengths
        self.pos = np.arange(len(self.tokens), dtype=np.int64) - np.repeat(starts, self.lengths)
        self.weights = np.repeat(np.array(times, dtype=np.int64), self.lengths)  # occurrences of each token
        self.bos = bos

    def back(self, m: int, at: np.ndarray | None = None) -> np.ndarray:
        """The token ``m`` steps before each position (or the positions ``at``; ``<s>`` before a
        sequence's start)."""
        if at is None:
            at = np.arange(len(self.tokens), dtype=np.int64)
        return np.where(self.pos[at] >= m, self.tokens[np.maximum(at - m, 0)], self.bos)

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        """``values`` (one per token) cut back into the sequences."""
        return np.split(values, np.cumsum(self.lengths)[:-1]) if len(self.lengths) else []


@dataclass
class _Level:
    """The counts of one context length ``m`` (order ``m + 1``).

    Context ids are indices into ``ctx_keys`` (``parent id * V + oldest token``, sorted); a
    (context, token) type is an index into ``pair_keys`` (``context id * V + token``, sorted)."""

    ctx_keys: np.ndarray
    pair_keys: np.ndarray
    raw: np.ndarray  # occurrences of each (context, token) type
    types: np.ndarray  # per context: how many different tokens follow it
    raw_total: np.ndarray  # per context: occurrences
    cont: np.ndarray | None = None  # per type: different tokens seen just before it (needs the next level)
    cont_total: np.ndarray | None = None
    d_raw: float = 0.75
    d_cont: float = 0.75
    pair_ctx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def set_continuations(self, cont: np.ndarray) -> None:
        self.cont = cont
        self.cont_total = np.bincount(self.pair_ctx, weights=cont, minlength=len(self.ctx_keys))
        self.d_cont = _discount(cont)

    def counts(self, raw: bool) -> tuple[np.ndarray, np.ndarray, float]:
        """``(count per type, total per context, discount)``: raw or continuation counts."""
        if raw:
            return self.raw, self.raw_total, self.d_raw
        assert self.cont is not None and self.cont_total is not None
        return self.cont, self.cont_total, self.d_cont


def _stable_argsort(k: np.ndarray, groups: int) -> np.ndarray:
    """Stable argsort of ``k``, which is sorted but for its last digit inside ``groups`` runs:
    numpy's radix sort over 16-bit digits while the runs are long, else its timsort, which is fast
    on short runs."""
    top = int(k.max()) if len(k) else 0
    if top < 1 << 16:
        return np.argsort(k.astype(np.uint16), kind="stable")
    if top < 1 << 32 and groups * 32 < len(k):
        low = np.argsort((k & 0xFFFF).astype(np.uint16), kind="stable")
        return low[np.argsort((k[low] >> 16).astype(np.uint16), kind="stable")]
    return np.argsort(k, kind="stable")


def _group(perm: np.ndarray, keys: np.ndarray, groups: int, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """Group the positions by ``keys``, given ``perm``, an order of the positions in which ``keys``
    is sorted but for its last digit inside ``groups`` runs, so the stable sort is fast.

    Returns ``(sorted distinct keys, each position's dense id, the positions sorted by key,
    occurrences of each key (the positions' ``weights`` summed), one position of each key)``."""
    k = keys[perm]
    by_key = _stable_argsort(k, groups)
    order, ks = perm[by_key], k[by_key]
    start = np.ones(len(ks), dtype=bool)
    start[1:] = ks[1:] != ks[:-1]
    ids = np.empty(len(ks), dtype=np.int64)
    ids[order] = np.cumsum(start) - 1
    starts = np.flatnonzero(start)
    counts = np.add.reduceat(weights[order], starts) if len(starts) else np.zeros(0, dtype=np.int64)
    return ks[starts], ids, order, counts, order[starts]


def _count_levels(train: _Tokens, vocab_size: int) -> Generator[_Level, None, None]:
    """The levels ``m = 0, 1, ...`` of the training tokens; level ``m - 1`` gets its continuation
    counts when level ``m`` is yielded (so a caller may stop after any level).

    The positions are kept sorted by their context (``perm``), so the keys of the next context
    length and of the (context, token) pairs are sorted but for their last digit."""
    v = vocab_size
    n = len(train.tokens)
    ctx = np.zeros(n, dtype=np.int64)
    ctx_keys = np.zeros(1, dtype=np.int64)
    perm = np.arange(n, dtype=np.int64)
    prev: tuple[_Level, np.ndarray] | None = None
    for m in range(n + 1):
        if m:
            ctx_keys, ctx, perm, _, _ = _group(perm, ctx * v + train.back(m), len(ctx_keys), train.weights)
        pair_keys, inv, _, raw, first = _group(perm, ctx * v + train.tokens, len(ctx_keys), train.weights)
        pair_ctx = pair_keys // v
        level = _Level(
            ctx_keys=ctx_keys,
            pair_keys=pair_keys,
            raw=raw,
            types=np.bincount(pair_ctx, minlength=len(ctx_keys)),
            raw_total=np.bincount(ctx, weights=train.weights, minlength=len(ctx_keys)).astype(np.int64),
            d_raw=_discount(raw),
            pair_ctx=pair_ctx,
        )
        if prev is not None:
            # each (v h, w) type continues exactly one (h, w) type of the level below
            low, low_inv = prev
            low.set_continuations(np.bincount(low_inv[first], minlength=len(low.pair_keys)))
        yield level
        prev = (level, inv)


class _Scorer:
    """The positions of some tokens to score, walked up the levels with the counts; only the
    positions whose context is still seen in training are looked up."""

    def __init__(self, tokens: _Tokens, vocab_size: int) -> None:
        self.t = tokens
        self.v = vocab_size
        self.live = np.arange(len(tokens.tokens), dtype=np.int64)  # positions with a seen context
        self.ctx = np.zeros(len(self.live), dtype=np.int64)  # their context ids
        self.pair = np.full(len(self.live), -1, dtype=np.int64)  # their (context, token) types, or -1
        self.p = np.full(len(self.live), 1.0 / vocab_size)  # interpolated through the levels so far

    def step(self, level: _Level, m: int) -> None:
        """Find each position's context of length ``m`` and (context, token) type in ``level``."""
        if m:
            found = _lookup(level.ctx_keys, self.ctx * self.v + self.t.back(m, self.live))
            keep = found >= 0
            self.live, self.ctx = self.live[keep], found[keep]
        self.pair = _lookup(level.pair_keys, self.ctx * self.v + self.t.tokens[self.live])

    def interpolate(self, level: _Level, raw: bool) -> np.ndarray:
        """``P`` of each token through ``level`` (raw or continuation counts) on top of ``self.p``."""
        counts, totals, d = level.counts(raw)
        total = totals[self.ctx]
        seen = total > 0  # (only false without training tokens)
        c = np.where(self.pair >= 0, counts[np.maximum(self.pair, 0)], 0)
        total = np.where(seen, total, 1.0)
        below = self.p[self.live]
        mixed = np.maximum(c - d, 0.0) / total + d * level.types[self.ctx] / total * below
        out = self.p.copy()
        out[self.live] = np.where(seen, mixed, below)
        return out


class KneserNeyNGram:
    """Interpolated Kneser-Ney n-gram over integer token ids ``0..vocab_size-1``."""

    def __init__(self, order: int, vocab_size: int, bos: int = 0) -> None:
        if order < 1:
            raise ValueError("order must be >= 1")
        self.order = order
        self.vocab_size = vocab_size
        self.bos = bos
        self.levels: list[_Level] = []

    def fit(self, sequences: Iterable[Sequence[int] | np.ndarray]) -> KneserNeyNGram:
        """Count n-grams of every sequence (each one a tune of token ids, without ``<s>``)."""
        train = _Tokens(sequences, self.bos, dedupe=True)
        self.levels = []
        levels = _count_levels(train, self.vocab_size)
        for level in levels:  # the top order needs raw counts only: no level above it is counted
            self.levels.append(level)
            if len(self.levels) == self.order:
                break
        levels.close()
        return self

    @property
    def discounts(self) -> list[float]:
        """Each order's discount (continuation counts below the top order, raw counts at it)."""
        top = len(self.levels) - 1
        return [lv.d_raw if m == top else lv.d_cont for m, lv in enumerate(self.levels)]

    def counts(self, k: int) -> dict[tuple[int, ...], dict[int, int]]:
        """The counts of contexts of length ``k`` as ``{context: {token: count}}`` (raw counts at
        the top order, continuation counts below): for inspection and tests."""
        v = self.vocab_size

        def context(m: int, i: int) -> tuple[int, ...]:
            if m == 0:
                return ()
            key = int(self.levels[m].ctx_keys[i])
            return (key % v, *context(m - 1, key // v))

        level = self.levels[k]
        counts, _, _ = level.counts(k == len(self.levels) - 1)
        out: dict[tuple[int, ...], dict[int, int]] = {}
        for key, c in zip(level.pair_keys.tolist(), counts.tolist(), strict=True):
            out.setdefault(context(k, key // v), {})[key % v] = int(c)
        return out

    def nll(self, sequences: Iterable[Sequence[int] | np.ndarray]) -> list[np.ndarray]:
        """Negative log-probability (nats) of every token of each sequence, read from its start."""
        tokens = _Tokens(sequences, self.bos)
        scorer = _Scorer(tokens, self.vocab_size)
        top = len(self.levels) - 1
        for m, level in enumerate(self.levels):
            scorer.step(level, m)
            scorer.p = scorer.interpolate(level, raw=m == top)
        return tokens.split(-np.log(scorer.p))

    def sequence_nll(self, seq: Sequence[int] | np.ndarray) -> np.ndarray:
        """Negative log-probability (nats) of each token of a tune, read from its start."""
        return self.nll([seq])[0]

    def distribution(self, history: Sequence[int]) -> np.ndarray:
        """``P(. | history)`` over the whole vocabulary (float64, sums to 1)."""
        v = self.vocab_size
        h = [int(t) for t in history]
        p = np.full(v, 1.0 / v)
        ctx = 0
        top = len(self.levels) - 1
        for m, level in enumerate(self.levels):
            if m:
                back = h[-m] if m <= len(h) else self.bos
                found = _lookup(level.ctx_keys, np.array([ctx * v + back]))[0]
                if found < 0:
                    break  # a longer context than any seen: the higher orders are skipped
                ctx = int(found)
            counts, totals, d = level.counts(m == top)
            pair = _lookup(level.pair_keys, ctx * v + np.arange(v))
            c = np.where(pair >= 0, counts[np.maximum(pair, 0)], 0)
            total = float(totals[ctx])
            if total == 0:  # no training tokens at all
                break
            p = np.maximum(c - d, 0.0) / total + d * int(level.types[ctx]) / total * p
        return p

    def prob(self, history: Sequence[int], token: int) -> float:
        """``P(token | history)``."""
        return float(self.distribution(history)[token])


@dataclass
class OrderSearch:
    """The result of :func:`choose_order`."""

    order: int  # the order with the lowest validation NLL
    val_nll: dict[int, float]  # mean validation NLL (nats per token) of every order tried
    scored: list[list[np.ndarray]]  # per scored corpus, per sequence: each token's NLL at ``order``
    max_order: int  # the search's cap (reached only if the NLL was still falling)
    seconds: float

    @property
    def stopped_by_itself(self) -> bool:
        """True when the validation NLL stopped improving before the cap."""
        return max(self.val_nll) < self.max_order

    def mean_nll(self, i: int = 0) -> float:
        """Mean NLL per token of the ``i``-th scored corpus at the chosen order."""
        flat = np.concatenate(self.scored[i]) if self.scored[i] else np.zeros(0)
        return float(flat.mean()) if len(flat) else float("nan")

    def describe(self) -> str:
        """``5-gram (order chosen on validation data among 1..7)``."""
        return f"{self.order}-gram (order chosen on validation data among 1..{max(self.val_nll)})"


def choose_order(
    train: Iterable[Sequence[int] | np.ndarray],
    val: Iterable[Sequence[int] | np.ndarray],
    vocab_size: int,
    *,
    bos: int = 0,
    score: Sequence[Iterable[Sequence[int] | np.ndarray]] = (),
    max_order: int = MAX_ORDER,
    patience: int = PATIENCE,
) -> OrderSearch:
    """Fit orders ``1, 2, ...`` on ``train`` in one pass; stop after ``patience`` orders in a row
    without a lower mean NLL on ``val`` (or at ``max_order``); the corpora of ``score`` (the test
    data) are scored at the order chosen on ``val``, never used to choose it."""
    started = time.perf_counter()
    train_t = _Tokens(train, bos, dedupe=True)
    val_s = _Scorer(_Tokens(val, bos), vocab_size)
    if len(train_t.tokens) == 0 or len(val_s.t.tokens) == 0:
        raise ValueError("the n-gram order search needs training and validation tokens")
    others = [_Scorer(_Tokens(s, bos), vocab_size) for s in score]
    val_nll: dict[int, float] = {}
    best, best_nll, best_scored = 0, math.inf, [np.zeros(0) for _ in others]
    levels = _count_levels(train_t, vocab_size)
    prev: _Level | None = None
    for m, level in enumerate(levels):
        order = m + 1
        for s in (val_s, *others):
            if prev is not None:  # the level below now has its continuation counts
                s.p = s.interpolate(prev, raw=False)
            s.step(level, m)
        nll = float(-np.log(val_s.interpolate(level, raw=True)).mean())
        val_nll[order] = round(nll, 5)
        logger.debug("n-gram order %d: validation NLL %.4f", order, nll)
        if nll < best_nll - 1e-9:
            best, best_nll = order, nll
            best_scored = [-np.log(s.interpolate(level, raw=True)) for s in others]
        if order - best >= patience or order >= max_order:
            break
        prev = level
    levels.close()
    return OrderSearch(
        order=best,
        val_nll=val_nll,
        scored=[s.t.split(x) for s, x in zip(others, best_scored, strict=True)],
        max_order=max_order,
        seconds=round(time.perf_counter() - started, 2),
    )


GOAL_BELOW = 0.15  # a model with a likelihood should be at least this far below its best n-gram


def baseline_metrics(search: OrderSearch, what: str) -> dict:
    """The card figures of an n-gram baseline: its test NLL (the first scored corpus) at the order
    chosen on validation data, that order and the validation NLL of every order tried; ``what``
    names the tokens (``on the same characters``)."""
    return {
        "baseline": f"interpolated Kneser-Ney {search.describe()} {what}",
        "baseline_nll": round(search.mean_nll(0), 4),
        "baseline_order": search.order,
        "baseline_val_nll_by_order": {str(k): round(v, 4) for k, v in search.val_nll.items()},
        "baseline_seconds": round(search.seconds, 1),
    }


def against_baseline(metrics: dict) -> dict:
    """``nll_below_baseline`` (``1 - test / n-gram``) and whether it reaches :data:`GOAL_BELOW`."""
    if metrics.get("test_nll") is None or not metrics.get("baseline_nll"):
        return {}
    below = 1 - metrics["test_nll"] / metrics["baseline_nll"]
    return {"nll_below_baseline": round(below, 4), "meets_baseline_goal": bool(below >= GOAL_BELOW)}


def baseline_summary(metrics: dict) -> str:
    """One line: ``0.652 vs 0.860 nats/step (33-gram): 24% below, goal 15% met`` ('' without figures)."""
    nll, base = metrics.get("test_nll"), metrics.get("baseline_nll")
    if nll is None or base is None:
        return ""
    below = 1 - nll / base
    order = metrics.get("baseline_order")
    gram = f" ({order}-gram)" if order else ""
    verdict = "met" if below >= GOAL_BELOW else "NOT met"
    return (
        f"{nll:.3f} vs {base:.3f} {metrics.get('unit') or 'nats/step'}{gram}: {below:.0%} below, "
        f"goal {GOAL_BELOW:.0%} {verdict}"
    )
