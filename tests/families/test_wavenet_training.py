"""The WaveNet's training batches read a tune as the test and a sketch read it: from its start,
with nothing before it (a small untrained network, a synthetic stream: milliseconds)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from musicgen_app.ml.families import wavenet as wn


def _stream(lengths: list[int], vocab: int = 12) -> dict[str, np.ndarray]:
    """Tunes of the given lengths concatenated, each starting with ``<s>`` (id 0)."""
    rng = np.random.default_rng(0)
    targets = rng.integers(1, vocab, sum(lengths))
    starts = np.cumsum([0, *lengths[:-1]])
    inputs = np.concatenate([[0], targets[:-1]])
    inputs[starts] = 0
    total = len(targets)
    return {"inputs": inputs, "bar_pos": np.arange(total) % 16, "bar_steps": np.full(total, 16),
            "targets": targets, "tune_starts": starts}  # fmt: skip


def test_half_the_windows_start_at_a_tune_start_and_score_every_step() -> None:
    stream = _stream([150, 200, 90, 400, 300, 250] * 20)
    x, _, _, _, at_start = wn._windows(stream, 400, torch.Generator().manual_seed(0))
    assert 0.4 < float(at_start.float().mean()) < 0.6
    assert (x[at_start, 0] == 0).all()  # <s> first
    assert (x[~at_start, 0] != 0).float().mean() > 0.9  # the others mostly start inside a tune
    net = wn.WaveNet(wn.WaveNetConfig(vocab_size=12, channels=8, skip_channels=8, dilations=(1, 2)))
    batch = wn._windows(stream, 8, torch.Generator().manual_seed(1))
    _, count = wn._loss(net, batch)
    n_start = int(batch[4].sum())
    T = wn.SEQ_LEN
    assert count == n_start * T + (8 - n_start) * (T - T // 3)


def test_a_window_at_a_tune_start_is_scored_as_the_test_scores_the_tune() -> None:
    stream = _stream([wn.SEQ_LEN + 50, 100])
    net = wn.WaveNet(wn.WaveNetConfig(vocab_size=12, channels=8, skip_channels=8, dilations=(1, 2, 4)))
    keys = ("inputs", "bar_pos", "bar_steps", "targets")
    window = tuple(torch.from_numpy(stream[k][None, : wn.SEQ_LEN]) for k in keys)
    with torch.no_grad():
        total, count = wn._loss(net, (*window, torch.ones(1, dtype=torch.bool)))
        logits, _ = net(*window[:3])
        per_step = nn.functional.cross_entropy(logits[0], window[3][0], reduction="none")
    assert count == wn.SEQ_LEN
    assert float(total) == float(per_step.sum())
