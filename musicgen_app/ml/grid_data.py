"""The grid melody tunes as model arrays: inputs (``<s>`` then the steps), bar positions, targets,
for training windows, padded batches of whole tunes, and per-step scoring (NLL, argmax).

Shared by the melody LSTM (its training and its metrics) and the WaveNet over grid tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from musicgen_app.ml import data as data_mod
from musicgen_app.ml.tokenizers import BOS, GridMelodyTokenizer

IGNORE = -100


@dataclass
class TuneTensors:
    """Model inputs and targets for a list of tunes, padded to (N, Tmax)."""

    tokens: torch.Tensor  # (N, T) input ids: <s>, x0 .. x_{T-2}
    bar_pos: torch.Tensor  # (N, T) bar position of the predicted step
    bar_steps: torch.Tensor  # (N, T)
    targets: torch.Tensor  # (N, T) x0 .. x_{T-1}, IGNORE where padded


def tune_arrays(
    tok: GridMelodyTokenizer, tune: data_mod.EncodedTune
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(inputs, bar_pos, bar_steps, targets)`` of one tune, each (T,)."""
    ids = tok.encode_steps(tune.steps)
    inputs = np.concatenate([[BOS], ids[:-1]])
    return inputs, tune.bar_pos.astype(np.int64), tune.bar_steps.astype(np.int64), ids


def pad_tunes(tok: GridMelodyTokenizer, tunes: list[data_mod.EncodedTune]) -> TuneTensors:
    """A padded batch of whole tunes."""
    t_max = max(len(t.steps) for t in tunes)
    n = len(tunes)
    tokens = np.zeros((n, t_max), dtype=np.int64)
    pos = np.zeros((n, t_max), dtype=np.int64)
    bsteps = np.zeros((n, t_max), dtype=np.int64)
    targets = np.full((n, t_max), IGNORE, dtype=np.int64)
    for i, t in enumerate(tunes):
        a, p, b, y = tune_arrays(tok, t)
        tokens[i, : len(a)], pos[i, : len(a)], bsteps[i, : len(a)], targets[i, : len(a)] = a, p, b, y
    return TuneTensors(*(torch.from_numpy(x) for x in (tokens, pos, bsteps, targets)))


def stream_arrays(tok: GridMelodyTokenizer, tunes: list[data_mod.EncodedTune]) -> list[np.ndarray]:
    """The training tunes concatenated: ``[inputs, bar_pos, bar_steps, targets]``."""
    parts = [tune_arrays(tok, t) for t in tunes]
    return [np.concatenate([p[k] for p in parts]) for k in range(4)]


@torch.inference_mode()
def per_step_outputs(
    model: torch.nn.Module,
    tok: GridMelodyTokenizer,
    tunes: list[data_mod.EncodedTune],
    batch: int = 32,
    device: torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every target step of ``tunes`` (read whole, from the start): ``(nll, argmax, target)``.
    ``model(tokens, bar_pos, bar_steps)`` returns ``(logits, state)`` (the melody LSTM's signature)."""
    model.eval()
    dev = device or torch.device("cpu")
    order = sorted(range(len(tunes)), key=lambda i: len(tunes[i].steps))
    nll_all, pred_all, tgt_all = [], [], []
    for k in range(0, len(order), batch):
        chunk = [tunes[i] for i in order[k : k + batch]]
        tt = pad_tunes(tok, chunk)
        tokens, pos, bsteps, targets = (x.to(dev) for x in (tt.tokens, tt.bar_pos, tt.bar_steps, tt.targets))
        logits, _ = model(tokens, pos, bsteps)  # (B, T, V)
        mask = targets != IGNORE
        logp = functional.log_softmax(logits, dim=-1)
        tgt = targets.clamp(min=0)
        nll = -logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)  # (B, T)
        nll_all.append(nll[mask].cpu().numpy())
        pred_all.append(logits.argmax(-1)[mask].cpu().numpy())
        tgt_all.append(targets[mask].cpu().numpy())
    return np.concatenate(nll_all), np.concatenate(pred_all), np.concatenate(tgt_all)
