"""A small time-boxed training loop shared by the extra families.

Each family supplies a ``loss(model, batch) -> (sum_loss, count)`` function and batch makers; the
loop runs Adam with gradient clipping, checks the validation loss every ``eval_every`` steps, keeps
the best weights, and stops at the time budget or when validation stops improving.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import nn

logger = logging.getLogger(__name__)

B = TypeVar("B")  # a family's batch type
LossFn = Callable[[nn.Module, B], tuple[torch.Tensor, int]]


@dataclass
class TrainConfig:
    """How long and how hard to train."""

    minutes: float = 12.0
    lr: float = 2e-3
    weight_decay: float = 0.0
    clip: float = 1.0
    eval_every: int = 100
    patience: int = 6  # evaluations without improvement before stopping
    threads: int = 1
    seed: int = 0
    max_steps: int = 0  # > 0: stop after this many steps (smoke runs, the contract test)


@dataclass
class TrainResult:
    """What the card records about training."""

    steps: int = 0
    seconds: float = 0.0
    best_valid_nll: float = math.inf
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (step, train, valid)


def evaluate_loss(model: nn.Module, loss: LossFn[B], batches: Iterable[B]) -> float:
    """Mean loss per counted unit over ``batches`` (eval mode, no gradients)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for b in batches:
            s, n = loss(model, b)
            total += float(s)
            count += n
    model.train(was_training)
    return total / max(1, count)


def train(
    model: nn.Module,
    loss: LossFn[B],
    train_batch: Callable[[torch.Generator], B],
    valid_batches: list[B],
    cfg: TrainConfig,
) -> TrainResult:
    """Train ``model`` in place (ending with its best validation weights)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps_guess = 10**9
    res = TrainResult()
    best_state = copy.deepcopy(model.state_dict())
    bad = 0
    t0 = time.monotonic()
    budget = cfg.minutes * 60
    run_loss, run_n = 0.0, 0
    model.train()
    step = 0
    while step < total_steps_guess:
        elapsed = time.monotonic() - t0
        # cosine-free schedule: full rate, then a tenth for the last fifth of the budget
        lr = cfg.lr if elapsed < 0.8 * budget else cfg.lr * 0.1
        for g in opt.param_groups:
            g["lr"] = lr
        s, n = loss(model, train_batch(gen))
        opt.zero_grad(set_to_none=True)
        (s / max(1, n)).backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        run_loss += float(s.detach())
        run_n += n
        step += 1
        out_of_time = time.monotonic() - t0 > budget or (cfg.max_steps > 0 and step >= cfg.max_steps)
        if step % cfg.eval_every == 0 or out_of_time:
            v = evaluate_loss(model, loss, valid_batches)
            tr = run_loss / max(1, run_n)
            run_loss, run_n = 0.0, 0
            res.history.append((step, round(tr, 4), round(v, 4)))
            logger.info("step %d  train %.4f  valid %.4f  (%.0fs)", step, tr, v, time.monotonic() - t0)
            if v < res.best_valid_nll - 1e-4:
                res.best_valid_nll = v
                best_state = copy.deepcopy(model.state_dict())
                bad = 0
            else:
                bad += 1
            if bad >= cfg.patience or out_of_time:
                break
    model.load_state_dict(best_state)
    model.eval()
    res.steps = step
    res.seconds = round(time.monotonic() - t0, 1)
    return res


def maybe_resume(name: str, model: nn.Module, resume: bool) -> dict | None:
    """With ``resume``, start from the weights of models/<name> and return its training record."""
    if not resume:
        return None
    from musicgen_app.ml.families.checkpoint import load_weights, read_card

    card = read_card(name)
    load_weights(name, model)
    model.train()
    return card.get("training", {})


def training_record(res: TrainResult, previous: dict | None = None, threads: int = 1) -> dict:
    """What a card stores about training (adding up the runs when training was resumed)."""
    rec: dict[str, Any] = {
        "steps": res.steps,
        "seconds": res.seconds,
        "best_valid_nll": round(res.best_valid_nll, 4),
        "history": res.history,
        "threads": threads,
        "runs": 1,
    }
    if previous:
        rec["steps"] += int(previous.get("steps", 0))
        rec["seconds"] = round(rec["seconds"] + float(previous.get("seconds", 0)), 1)
        rec["history"] = [*previous.get("history", []), *res.history]
        rec["runs"] = int(previous.get("runs", 1)) + 1
    return rec
