"""The one training loop of every model family (and the loss-curve PNG it writes).

Each family supplies a ``loss(model, batch) -> (sum_loss, count)`` function, a batch maker and its
validation (a list of batches, or a function scoring the model: :data:`Validate`). The loop runs
AdamW with gradient clipping under a learning-rate schedule (``step``: full rate, then a tenth for
the last fifth of the budget; ``cosine``: a warm-up, then cosine decay to 2% over whichever ends
first, the epochs or the time budget). An *epoch* is ``eval_every`` steps; after each the loop
validates, appends a curve row, keeps the best weights and hands them to ``checkpoint`` (so a
killed run keeps its best so far and resumes from it: ``previous``). It stops at the time budget,
the step or epoch cap, or when validation stops improving (``patience`` epochs), then writes the
curve PNG. ``before_step`` runs before every step: a GAN's critic updates, so the adversarial step
runs inside the same loop. ``on_event`` receives progress as plain dicts (what ``--progress-json``
prints and the window's Train on My Music draws).

Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in DistributedDataParallel (gloo on
the CPU, NCCL on CUDA): each rank's batch maker reads its own shard, validation sums are added over
the ranks, every rank takes the same decisions (one clock), and only rank 0 writes checkpoints,
cards and curves (:attr:`DistContext.is_main`).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from musicgen_app.errors import CheckpointError

logger = logging.getLogger(__name__)

B = TypeVar("B")  # a family's batch type
LossFn = Callable[[nn.Module, B], tuple[torch.Tensor, int]]
# a family's own validation: ``(loss sum, count, {figure: sum})`` of this rank's share, each figure
# then divided by the count summed over the ranks (e.g. ``{"val_accuracy": correct}``)
Validate = Callable[[nn.Module], tuple[float, float, dict[str, float]]]
ProgressEvent = dict[str, Any]
STEP_EVENT_S = 0.25  # at most this often a "step" event


@dataclass
class TrainConfig:
    """How long and how hard to train (the one set of loop options of every family)."""

    minutes: float = 12.0
    lr: float = 2e-3
    weight_decay: float = 0.0
    clip: float = 1.0
    eval_every: int = 100  # steps per epoch: validation, a curve row and a checkpoint after each
    max_epochs: int = 0  # > 0: stop after this many epochs
    patience: int = 6  # epochs without improvement before stopping
    threads: int = 1
    seed: int = 0
    max_steps: int = 0  # > 0: stop after this many steps (smoke runs, the contract test)
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "step"  # "step", "cosine" (see the module's docstring) or "constant"
    warmup: float = 0.0  # cosine: the fraction of the planned steps spent warming up
    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"
    progress: bool = False  # a progress bar on stderr (main rank only)
    curve_png: str = ""  # write the training/validation curve here at the end
    curve_title: str = ""
    unit: str = "the family's unit"  # of the losses, for the curve's axis
    digits: int = 4  # the losses' rounding in the curve (and the smallest improvement: one unit of it)
    jump: float = 0.0  # > 0: an epoch validating above jump x the best goes back to the best weights
    # and halves the learning rate from then on (paper 002 saw Adam's loss jump up suddenly)


@dataclass
class TrainResult:
    """What the card records about training."""

    steps: int = 0
    seconds: float = 0.0
    best_valid_nll: float = math.inf
    best_epoch: int = 0
    stopped: str = "running"
    continued: bool = False  # ``history`` starts with the resumed run's rows
    # one row per epoch: epoch, step, train_nll, val_nll, the family's figures, minutes, units/s
    history: list[dict[str, Any]] = field(default_factory=list)


# -- torchrun --------------------------------------------------------------------------------------
@dataclass
class DistContext:
    """Where this process stands in a ``torchrun`` job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Only the main rank writes checkpoints, cards and curves, and shows progress."""
        return self.rank == 0

    def all_sum(self, values: list[float]) -> list[float]:
        """``values`` summed over every rank (identity when alone)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return [float(v) for v in t.cpu()]

    def all_max(self, value: float) -> float:
        """The largest ``value`` over every rank (so every rank takes the same decision)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return float(t.item())

    def barrier(self) -> None:
        """Wait for every rank (nothing when alone)."""
        if self.world > 1:
            torch.distributed.barrier()


def dist_context(device: str = "cpu") -> DistContext:
    """Join the ``torchrun`` process group when launched by it (gloo on CPU, NCCL on CUDA).

    ``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; without them this is a single
    process. ``device`` "cuda" picks the local rank's GPU (raises CheckpointError without one)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CheckpointError("--device cuda was asked for, but torch sees no CUDA GPU here")
        dev = torch.device(f"cuda:{local}" if device == "cuda" else device)
        torch.cuda.set_device(dev)
    elif device == "cpu":
        dev = torch.device("cpu")
    else:
        raise CheckpointError(f"unknown device '{device}' (use cpu or cuda)")
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
        logger.info("rank %d of %d joined the %s process group", rank, world, backend)
    return DistContext(rank, world, dev)


class _DDP(nn.parallel.DistributedDataParallel):
    """DistributedDataParallel that also answers the wrapped network's own attributes (a family's
    loss may read ``model.cfg`` or call ``model.encode`` besides its forward)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def _move(batch: Any, device: torch.device) -> Any:
    """A batch's tensors (in tuples, lists, dicts or dataclasses) on ``device``."""
    if device.type == "cpu":
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        moved = [_move(b, device) for b in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    if isinstance(batch, dict):
        return {k: _move(v, device) for k, v in batch.items()}
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(batch, **{f.name: _move(getattr(batch, f.name), device)
                                             for f in dataclasses.fields(batch) if f.init})  # fmt: skip
    return batch


# -- evaluation and curves ---------------------------------------------------------------------------
def evaluate_loss(model: nn.Module, loss: LossFn[B], batches: Iterable[B]) -> float:
    """Mean loss per counted unit over ``batches`` (eval mode, no gradients)."""
    total, count = _batch_sums(model, loss, batches)
    return total / max(1.0, count)


def _batch_sums(model: nn.Module, loss: LossFn[B], batches: Iterable[B]) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for b in batches:
            s, n = loss(model, b)
            total += float(s)
            count += n
    model.train(was_training)
    return total, float(count)


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


def history_rows(history: list) -> list[dict[str, Any]]:
    """A card's training history as rows (old cards stored ``(step, train, valid)`` triples)."""
    rows: list[dict[str, Any]] = []
    for i, h in enumerate(history or [], start=1):
        if isinstance(h, dict):
            rows.append(dict(h))
        else:
            step, tr, v = list(h)[:3]
            rows.append({"epoch": i, "step": int(step), "train_nll": tr, "val_nll": v})
    return rows


# -- the loop ----------------------------------------------------------------------------------------
def train(
    model: nn.Module,
    loss: LossFn[B],
    train_batch: Callable[[torch.Generator], B],
    valid: list[B] | Validate,
    cfg: TrainConfig,
    *,
    before_step: Callable[[torch.Generator], None] | None = None,
    checkpoint: Callable[[dict[str, torch.Tensor], TrainResult], object] | None = None,
    on_event: Callable[[ProgressEvent], None] | None = None,
    previous: dict | None = None,
    dist: DistContext | None = None,
    start_info: dict | None = None,
) -> TrainResult:
    """Train ``model`` in place (ending with its best validation weights, in eval mode).

    ``checkpoint(best_state, result)`` runs after every epoch on the main rank (``result.stopped``
    is "running" until the end). ``previous`` (a card's training record) continues a killed or
    finished run: its epochs are numbered on, and its weights (already in ``model``) stay the best
    until an epoch beats them. ``on_event`` (main rank) receives ``start`` (with ``start_info``),
    ``step`` (at most every 0.25 s), ``validating`` and ``epoch`` (the curve row) dicts."""
    from tqdm import tqdm

    ctx = dist or dist_context(cfg.device)
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 1000 * ctx.rank)  # each rank its own shard

    def emit(kind: str, **fields: Any) -> None:
        if on_event is not None and ctx.is_main:
            on_event({"event": kind, **fields})

    model.to(ctx.device)
    net: nn.Module = model
    if ctx.world > 1:  # DDP averages the gradients of the ranks' shares of every global batch
        net = _DDP(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.betas)
    res = TrainResult(
        history=history_rows((previous or {}).get("history", [])), continued=previous is not None
    )
    first_epoch = (int(res.history[-1].get("epoch", len(res.history))) + 1) if res.history else 1
    steps_before = int(res.history[-1].get("step", 0)) if res.history else 0
    budget = cfg.minutes * 60
    planned = cfg.max_steps or (cfg.max_epochs * cfg.eval_every if cfg.max_epochs else 0)

    def validate() -> tuple[float, dict[str, float]]:
        # every rank scores its share; the sums are combined
        if callable(valid):
            s, n, figures = valid(model)
        else:
            (s, n), figures = _batch_sums(model, loss, (_move(b, ctx.device) for b in valid)), {}
        keys = sorted(figures)
        sums = ctx.all_sum([s, n, *(figures[k] for k in keys)])
        model.train()
        n_all = max(1.0, sums[1])
        return sums[0] / n_all, {k: round(v / n_all, 4) for k, v in zip(keys, sums[2:], strict=True)}

    best_state = copy.deepcopy(model.state_dict())
    if previous is not None:
        res.best_valid_nll = round(validate()[0], cfg.digits)
        res.best_epoch = int(previous.get("best_epoch") or first_epoch - 1)
        logger.info("resuming: validation loss %.4f before this run", res.best_valid_nll)
    emit("start", epochs=cfg.max_epochs, batches_per_epoch=cfg.eval_every, budget_s=budget, unit=cfg.unit,
         **(start_info or {}))  # fmt: skip

    lr_scale = 1.0  # halved after each jump (``cfg.jump``)

    def set_lr(step: int, elapsed: float) -> None:
        if cfg.schedule == "cosine":
            frac = max(step / planned if planned else 0.0, elapsed / budget)
            warm = min(1.0, (step + 1) / max(1, int(cfg.warmup * planned))) if planned else 1.0
            lr = cfg.lr * warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))
        elif cfg.schedule == "constant":
            lr = cfg.lr
        else:  # full rate, then a tenth for the last fifth of the budget
            lr = cfg.lr if elapsed < 0.8 * budget else cfg.lr * 0.1
        for g in opt.param_groups:
            g["lr"] = lr * lr_scale

    t0 = time.monotonic()
    bad, step, epoch = 0, 0, first_epoch - 1
    last_event = -math.inf
    model.train()
    while True:
        epoch += 1
        run_loss, run_n = 0.0, 0
        bar = tqdm(
            range(cfg.eval_every),
            desc=f"epoch {epoch}",
            unit="step",
            disable=not (cfg.progress and ctx.is_main),
        )
        epoch_t0 = time.perf_counter()
        out_of_time = capped = False
        for b in bar:
            elapsed = ctx.all_max(time.monotonic() - t0)  # one clock for every rank
            set_lr(step, elapsed)
            if before_step is not None:
                before_step(gen)
            s, n = loss(net, _move(train_batch(gen), ctx.device))
            opt.zero_grad(set_to_none=True)
            (s / max(1, n)).backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            run_loss += float(s.detach())
            run_n += n
            step += 1
            bar.set_postfix(train=f"{run_loss / max(1, run_n):.3f}")
            out_of_time = elapsed > budget
            capped = cfg.max_steps > 0 and step >= cfg.max_steps
            now = time.monotonic()
            if now - last_event >= STEP_EVENT_S or b + 1 == cfg.eval_every or out_of_time or capped:
                last_event = now
                emit("step", epoch=epoch, batch=b + 1, batches=cfg.eval_every,
                     loss=round(float(s.detach()) / max(1, n), 4),
                     train_nll=round(run_loss / max(1, run_n), 4), elapsed_s=round(elapsed, 2))  # fmt: skip
            if out_of_time or capped:
                break
        bar.close()
        loop_s = ctx.all_max(time.perf_counter() - epoch_t0)
        tr_sum, tr_n = ctx.all_sum([run_loss, float(run_n)])
        emit("validating", epoch=epoch, tunes=(start_info or {}).get("val_tunes"))
        v, figures = validate()
        minutes = ctx.all_max(time.monotonic() - t0) / 60
        row = {"epoch": epoch, "step": steps_before + step,
               "train_nll": round(tr_sum / max(1.0, tr_n), cfg.digits), "val_nll": round(v, cfg.digits),
               **figures, "minutes": round(minutes, 2),
               "train_units_per_s": round(tr_n / max(1e-9, loop_s), 1)}  # fmt: skip
        res.history.append(row)
        emit("epoch", **row)
        logger.info("epoch %s", row)
        if row["val_nll"] < res.best_valid_nll - 10.0**-cfg.digits:
            res.best_valid_nll, res.best_epoch, bad = row["val_nll"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if cfg.jump and row["val_nll"] > cfg.jump * res.best_valid_nll:  # back to the best, smaller steps
                model.load_state_dict(best_state)
                lr_scale *= 0.5
                logger.info("validation jumped to %.4f (best %.4f): best weights back, learning rate x%g",
                            row["val_nll"], res.best_valid_nll, lr_scale)  # fmt: skip
        res.steps, res.seconds = step, round(time.monotonic() - t0, 1)
        if bad >= cfg.patience:
            res.stopped = f"early stop: no validation improvement for {cfg.patience} epochs"
        elif minutes * 60 > budget or out_of_time:
            res.stopped = f"time budget of {cfg.minutes:g} min"
        elif capped:
            res.stopped = f"{cfg.max_steps} step{'s' if cfg.max_steps != 1 else ''}"
        elif cfg.max_epochs and epoch - first_epoch + 1 >= cfg.max_epochs:
            res.stopped = f"{cfg.max_epochs} epoch{'s' if cfg.max_epochs != 1 else ''}"
        if res.stopped != "running":
            break
        if checkpoint is not None and ctx.is_main:  # a killed run resumes from this
            checkpoint(best_state, res)
    model.load_state_dict(best_state)
    model.eval()
    if ctx.is_main:
        if checkpoint is not None:
            checkpoint(best_state, res)
        if cfg.curve_png and res.history:
            title = cfg.curve_title or Path(cfg.curve_png).stem
            save_curve_png(res.history, Path(cfg.curve_png), title, unit=cfg.unit)
    ctx.barrier()
    return res


def maybe_resume(name: str, model: nn.Module, resume: bool) -> dict | None:
    """With ``resume``, start from the weights of models/<name> and return its training record
    (a checkpoint whose save was killed is finished first: the card's epochs, the weights beside it)."""
    if not resume:
        return None
    from musicgen_app.ml.checkpoint import finish_interrupted_save
    from musicgen_app.ml.families.checkpoint import load_weights, model_path, read_card

    finish_interrupted_save(model_path(name))
    card = read_card(name)
    load_weights(name, model)
    model.train()
    return card.get("training", {})


def training_record(res: TrainResult, previous: dict | None = None, threads: int = 1, **extra: Any) -> dict:
    """What a card stores about training (adding up the runs when training was resumed); ``extra``
    (the loop's config, device, ranks...) is stored as it is."""
    rec: dict[str, Any] = {
        "steps": res.steps,
        "seconds": res.seconds,
        "best_valid_nll": round(res.best_valid_nll, 4),
        "best_epoch": res.best_epoch,
        "stopped": res.stopped,
        "history": res.history,
        "threads": threads,
        "runs": 1,
        **extra,
    }
    if previous:
        rec["steps"] += int(previous.get("steps", 0))
        rec["seconds"] = round(rec["seconds"] + float(previous.get("seconds", 0)), 1)
        rec["runs"] = int(previous.get("runs", 1)) + 1
        if not res.continued:
            rec["history"] = [*history_rows(previous.get("history", [])), *res.history]
    return rec
