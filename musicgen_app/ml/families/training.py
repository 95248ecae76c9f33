"""The time-boxed training loop of the families (and the loss-curve PNG every loop writes).

Each family supplies a ``loss(model, batch) -> (sum_loss, count)`` function and batch makers; the
loop runs AdamW with gradient clipping (full rate, then a tenth for the last fifth of the budget),
checks the validation loss every ``eval_every`` steps, keeps the best weights, hands them to
``checkpoint`` at each improvement (a killed run keeps its best so far; ``maybe_resume`` continues
from it), shows a progress bar, writes the curve PNG, and stops at the time budget, the step cap,
or when validation stops improving. ``before_step`` runs before every step: a GAN's critic
updates, so the adversarial step runs inside the same loop.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
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
    betas: tuple[float, float] = (0.9, 0.999)
    progress: bool = False  # a progress bar on stderr
    curve_png: str = ""  # write the training/validation curve here at the end


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


def save_curve_png(
    curve: list[dict], path: Path, title: str, *, x: str = "epoch", unit: str = "nats per step"
) -> None:
    """Training and validation NLL (``train_nll``, ``val_nll``) against ``x`` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ep = [c[x] for c in curve]
    ax.plot(ep, [c["train_nll"] for c in curve], marker="o", label="train")
    ax.plot(ep, [c["val_nll"] for c in curve], marker="o", label="validation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(x)
    ax.set_ylabel(f"NLL ({unit})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def train(
    model: nn.Module,
    loss: LossFn[B],
    train_batch: Callable[[torch.Generator], B],
    valid_batches: list[B],
    cfg: TrainConfig,
    *,
    before_step: Callable[[torch.Generator], None] | None = None,
    checkpoint: Callable[[nn.Module, TrainResult], object] | None = None,
) -> TrainResult:
    """Train ``model`` in place (ending with its best validation weights)."""
    from tqdm import tqdm

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.betas)
    bar = tqdm(total=cfg.max_steps or None, unit="step", disable=not cfg.progress)
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
        if before_step is not None:
            before_step(gen)
        s, n = loss(model, train_batch(gen))
        opt.zero_grad(set_to_none=True)
        (s / max(1, n)).backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        run_loss += float(s.detach())
        run_n += n
        step += 1
        bar.update(1)
        out_of_time = time.monotonic() - t0 > budget or (cfg.max_steps > 0 and step >= cfg.max_steps)
        if step % cfg.eval_every == 0 or out_of_time:
            v = evaluate_loss(model, loss, valid_batches)
            tr = run_loss / max(1, run_n)
            run_loss, run_n = 0.0, 0
            res.history.append((step, round(tr, 4), round(v, 4)))
            logger.info("step %d  train %.4f  valid %.4f  (%.0fs)", step, tr, v, time.monotonic() - t0)
            bar.set_postfix(train=f"{tr:.3f}", valid=f"{v:.3f}")
            if v < res.best_valid_nll - 1e-4:
                res.best_valid_nll = v
                best_state = copy.deepcopy(model.state_dict())
                bad = 0
                if checkpoint is not None:
                    res.steps, res.seconds = step, round(time.monotonic() - t0, 1)
                    checkpoint(model, res)
            else:
                bad += 1
            if bad >= cfg.patience or out_of_time:
                break
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    res.steps = step
    res.seconds = round(time.monotonic() - t0, 1)
    if cfg.curve_png and res.history:
        rows = [{"step": s, "train_nll": tr, "val_nll": v} for s, tr, v in res.history]
        save_curve_png(
            rows, Path(cfg.curve_png), Path(cfg.curve_png).stem, x="step", unit="the family's unit"
        )
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
