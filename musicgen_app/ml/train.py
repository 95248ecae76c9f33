"""Training of the melody LSTM on the cached corpus: progress bar, checkpoints, early stopping,
loss curves as PNG. Runs on the CPU with one torch thread by default (the machine is shared).

One "epoch" reads every training step once, as windows of ``seq_len`` steps cut at a random
offset from the concatenation of the training tunes (each tune starts with ``<s>``). Validation
reads each validation tune whole, from its start. The best weights (lowest validation NLL) are
kept; training stops after ``patience`` epochs without improvement or when the time budget ends.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from musicgen_app.core import paths
from musicgen_app.errors import CheckpointError
from musicgen_app.ml import data as data_mod
from musicgen_app.ml.checkpoint import save_checkpoint
from musicgen_app.ml.families.training import save_curve_png
from musicgen_app.ml.grid_data import per_step_outputs, stream_arrays
from musicgen_app.ml.melody_lstm import MelodyLSTM, MelodyLSTMConfig
from musicgen_app.ml.tokenizers import GridMelodyTokenizer

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Options of `musicgen train melody-lstm`."""

    name: str = "melody-lstm"
    corpus: str = "essen"
    max_epochs: int = 30
    batch_size: int = 64
    seq_len: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    patience: int = 3
    time_budget_min: float = 54.0
    threads: int = 1
    seed: int = 0
    embed_dim: int = 96
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.2
    bar_conditioning: bool = True
    out_dir: str = ""
    limit_tunes: int = 0  # > 0: train on the first N training tunes only (smoke runs)
    resume: str = ""  # a checkpoint to continue from (same tokenizer and architecture)
    data: str = ""  # a dataset built from a MIDI folder (name) or a folder; "" = ``corpus``
    base: str = ""  # fine-tune this checkpoint (its vocabulary and architecture) on ``data``
    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"
    curve_png: str = ""
    max_batches: int = 0  # > 0: stop after this many batches (smoke runs, the contract test)
    extra: dict = field(default_factory=dict)


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


def dist_context(device: str = "cpu") -> DistContext:
    """Join the ``torchrun`` process group when launched by it (gloo on CPU, NCCL on CUDA).

    ``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; without them this is a single
    process. ``device`` "cuda" picks the local rank's GPU."""
    import os

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


ProgressEvent = dict[str, Any]
STEP_EVENT_S = 0.25  # at most this often a "step" event


def train_melody_lstm(
    cfg: TrainConfig,
    *,
    progress: bool = True,
    dataset: data_mod.Dataset | None = None,
    on_event: Callable[[ProgressEvent], None] | None = None,
) -> Path:
    """Train, keep the best epoch, write ``<out_dir>/<name>.safetensors`` + card; returns its path.

    ``on_event`` (main rank only) receives plain dicts as training goes: ``start`` (epochs,
    batches per epoch, budget, tunes), ``step`` (epoch, batch, batches, the batch's loss and the
    epoch's running train NLL; at most every 0.25 s, and the epoch's last batch), ``validating``,
    then ``epoch`` (the curve row: train and validation NLL, accuracy, minutes)."""
    from tqdm import tqdm

    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)  # the same on every rank: one window order for all
    ctx = dist_context(cfg.device)
    progress = progress and ctx.is_main

    def emit(kind: str, **fields: Any) -> None:
        if on_event is not None and ctx.is_main:
            on_event({"event": kind, **fields})

    if dataset is not None:
        ds = dataset
    elif cfg.data:
        from musicgen_app.ml.midi_data import resolve_data

        if ctx.world > 1:
            # rank 0 builds or refreshes the cache first; the others then read it
            if ctx.is_main:
                ds = resolve_data(cfg.data, progress=progress)
            torch.distributed.barrier()
            if not ctx.is_main:
                ds = resolve_data(cfg.data, progress=False)
        else:
            ds = resolve_data(cfg.data, progress=progress)
    else:
        ds = data_mod.load_or_build(cfg.corpus, progress=progress)
    split = data_mod.split_indices(ds)
    train_idx = split["train"][: cfg.limit_tunes] if cfg.limit_tunes else split["train"]
    train_tunes = list(ds.tunes(train_idx))
    val_tunes = list(ds.tunes(split["val"]))
    train_pitches = np.concatenate([t.steps[t.steps >= 0] for t in train_tunes])
    tok = GridMelodyTokenizer.covering(train_pitches, margin=2)
    if cfg.resume or cfg.base:
        from musicgen_app.ml.checkpoint import read_card

        tok = GridMelodyTokenizer.from_dict(read_card(cfg.resume or cfg.base).get("tokenizer", {}))
    mcfg = MelodyLSTMConfig(
        vocab_size=tok.vocab_size,
        embed_dim=cfg.embed_dim,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout,
        bar_conditioning=cfg.bar_conditioning,
    )
    if cfg.base:
        # fine-tuning: the base model's vocabulary and architecture, its weights as the start
        from musicgen_app.ml.checkpoint import load_into, load_weights, read_card

        base_card = read_card(cfg.base)
        args = dict(base_card.get("architecture", {}).get("args", {}))
        mcfg = MelodyLSTMConfig(**dict(args, dropout=cfg.dropout)) if args else mcfg
        model = MelodyLSTM(mcfg)
        load_into(model, load_weights(cfg.base), Path(cfg.base).stem)
        cfg.extra["base_model"] = {"name": base_card.get("name"), "path": str(cfg.base)}
    else:
        model = MelodyLSTM(mcfg)
    previous: dict = {}
    if cfg.resume:
        from musicgen_app.ml.checkpoint import load_into, load_weights, read_card

        previous = read_card(cfg.resume)
        if previous.get("tokenizer", {}).get("tokens") != tok.tokens:
            raise CheckpointError(f"{cfg.resume} has another vocabulary; it cannot be resumed on this data")
        load_into(model, load_weights(cfg.resume), Path(cfg.resume).stem)
        prev = previous.get("training", {})
        cfg.extra["previous_run"] = {
            k: prev.get(k) for k in ("config", "best_epoch", "best_val_nll", "stopped")
        }
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("model: %d parameters, vocabulary %d", n_params, tok.vocab_size)
    stream = [torch.from_numpy(a) for a in stream_arrays(tok, train_tunes)]
    n = len(stream[0])
    windows_per_epoch = max(1, n // cfg.seq_len)
    batches_per_epoch = max(1, windows_per_epoch // cfg.batch_size)
    model.to(ctx.device)
    net: torch.nn.Module = model
    if ctx.world > 1:
        # each rank reads its own share of every global batch; DDP averages the gradients
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
        )
    val_shard = val_tunes[ctx.rank :: ctx.world]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_batches = batches_per_epoch * cfg.max_epochs
    done_batches = 0

    def set_lr(elapsed_s: float) -> None:
        # warm-up, then cosine decay over whichever ends first: the epochs or the time budget
        frac = max(done_batches / total_batches, elapsed_s / budget_s)
        warm = min(1.0, (done_batches + 1) / max(1, int(0.03 * total_batches)))
        lr = cfg.lr * warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))
        for g in opt.param_groups:
            g["lr"] = lr

    out_dir = Path(cfg.out_dir) if cfg.out_dir else paths.models_dir()
    curve: list[dict] = list(previous.get("training", {}).get("curve", []))
    first_epoch = (curve[-1]["epoch"] + 1) if curve else 1
    best: tuple[float, int, dict[str, Any] | None] = (math.inf, 0, None)

    def validate() -> tuple[float, float]:
        # every rank scores its share of the validation tunes; the sums are combined
        nll_sum, correct, count = 0.0, 0.0, 0.0
        if val_shard:
            nll, pred, tgt = per_step_outputs(model, tok, val_shard, device=ctx.device)
            nll_sum, correct, count = float(nll.sum()), float((pred == tgt).sum()), float(len(nll))
        nll_sum, correct, count = ctx.all_sum([nll_sum, correct, count])
        return nll_sum / max(1.0, count), correct / max(1.0, count)

    if cfg.resume:
        prev_best = int(previous.get("training", {}).get("best_epoch") or first_epoch - 1)
        best = (
            round(validate()[0], 4),
            prev_best,
            {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        )
        logger.info("resuming from %s: validation NLL %.4f", cfg.resume, best[0])
    started = time.monotonic()
    budget_s = cfg.time_budget_min * 60
    stop_reason = "max_epochs"
    emit(
        "start",
        epochs=cfg.max_epochs,
        batches_per_epoch=batches_per_epoch,
        budget_s=budget_s,
        train_tunes=len(train_tunes),
        val_tunes=len(val_tunes),
        parameters=n_params,
    )
    last_step_event = -math.inf
    for epoch in range(first_epoch, first_epoch + cfg.max_epochs):
        model.train()
        shift = int(rng.integers(cfg.seq_len))
        starts = shift + cfg.seq_len * rng.permutation(max(1, (n - shift) // cfg.seq_len))
        total, count = 0.0, 0
        bar = tqdm(range(batches_per_epoch), desc=f"epoch {epoch}", unit="batch", disable=not progress)
        epoch_t0 = time.perf_counter()
        for b in bar:
            s = torch.from_numpy(starts[b * cfg.batch_size : (b + 1) * cfg.batch_size])
            if len(s) < ctx.world:
                break
            s = s[ctx.rank :: ctx.world]  # this rank's share of the global batch
            idx = s.unsqueeze(1) + torch.arange(cfg.seq_len).unsqueeze(0)  # (B/world, L)
            idx = idx.clamp(max=n - 1)
            x, p, bs, y = (a[idx].to(ctx.device) for a in stream)
            logits, _ = net(x, p, bs)  # (B/world, L, V)
            loss = functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            elapsed = ctx.all_max(time.monotonic() - started)  # one clock for every rank
            set_lr(elapsed)
            opt.step()
            done_batches += 1
            total += loss.item() * y.numel()
            count += y.numel()
            bar.set_postfix(nll=f"{total / count:.3f}")
            now = time.monotonic()
            if now - last_step_event >= STEP_EVENT_S or b + 1 == batches_per_epoch or elapsed > budget_s:
                last_step_event = now
                emit(
                    "step",
                    epoch=epoch,
                    batch=b + 1,
                    batches=batches_per_epoch,
                    loss=round(loss.item(), 4),
                    train_nll=round(total / count, 4),
                    elapsed_s=round(elapsed, 2),
                )
            if elapsed > budget_s or (cfg.max_batches and done_batches >= cfg.max_batches):
                break
        loop_s = ctx.all_max(time.perf_counter() - epoch_t0)
        total, n_seen = ctx.all_sum([total, float(count)])
        emit("validating", epoch=epoch, tunes=len(val_tunes))
        val_nll, val_acc = validate()
        row = {
            "epoch": epoch,
            "train_nll": round(total / max(1.0, n_seen), 4),
            "val_nll": round(val_nll, 4),
            "val_accuracy": round(val_acc, 4),
            "minutes": round(ctx.all_max(time.monotonic() - started) / 60, 2),
            "train_steps_per_s": round(n_seen / max(1e-9, loop_s), 1),  # 16th steps, all ranks
        }
        curve.append(row)
        emit("epoch", **row)
        logger.info("epoch %s", row)
        if progress:
            tqdm.write(f"epoch {epoch}: {row}")
        if row["val_nll"] < best[0] - 1e-4:
            best = (
                row["val_nll"],
                epoch,
                {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            )
        elif epoch - best[1] >= cfg.patience:
            stop_reason = f"early stop: no validation improvement for {cfg.patience} epochs"
            break
        if row["minutes"] * 60 > budget_s:
            stop_reason = f"time budget of {cfg.time_budget_min} min"
            break
        if cfg.max_batches and done_batches >= cfg.max_batches:
            stop_reason = f"{cfg.max_batches} batches"
            break
        if ctx.is_main:  # a checkpoint per epoch: a killed run resumes from it (--resume PATH)
            _write(out_dir, cfg, mcfg, tok, ds, split, curve, best, n_params, stop_reason="running")
    path = out_dir / f"{cfg.name}.safetensors"
    if ctx.is_main:
        path = _write(out_dir, cfg, mcfg, tok, ds, split, curve, best, n_params, stop_reason=stop_reason)
        png = Path(cfg.curve_png) if cfg.curve_png else out_dir / f"{cfg.name}-curve.png"
        save_curve_png(curve, png, f"{cfg.name} on {cfg.data or cfg.corpus}")
    if ctx.world > 1:
        torch.distributed.barrier()
    return path


def _write(out_dir, cfg, mcfg, tok, ds, split, curve, best, n_params, *, stop_reason: str) -> Path:
    card = {
        "name": cfg.name,
        "family": "melody-lstm",
        "seed_paper": "003",
        "description": (
            "Paper 003's melody LSTM on a 16th-note grid (pitch at onset, r rest, _ hold), with token "
            "embeddings, two LSTM layers and the position in the bar as conditioning."
        ),
        "architecture": {"class": "MelodyLSTM", "args": mcfg.to_dict(), "parameters": n_params},
        "tokenizer": tok.to_dict(),
        "conditioning": (
            "position of the predicted step in its bar and the bar length, in 16th steps (embedded)"
            if mcfg.bar_conditioning
            else "none"
        ),
        "data": {
            "corpus": cfg.data or cfg.corpus,
            "dataset": (
                f"MIDI folder {ds.stats.get('folder', '')} (dataset '{ds.name}')"
                if ds.stats.get("source") == "midi-folder"
                else f"music21 corpus {data_mod.CORPORA[cfg.corpus]} (ABC)"
            ),
            "stats": ds.stats,
            "training_key": "C major / A minor (each tune transposed; continuations are moved back)",
        },
        "split": data_mod.split_record(ds, split),
        "training": {
            "config": asdict(cfg),
            "curve": curve,
            "best_epoch": best[1],
            "best_val_nll": best[0],
            "stopped": stop_reason,
            "device": cfg.device,
            "threads": cfg.threads,
            "ranks": int(__import__("os").environ.get("WORLD_SIZE", "1") or 1),
        },
        "metrics": {},
    }
    state = best[2] if best[2] is not None else {}
    return save_checkpoint(state, card, out_dir / f"{cfg.name}.safetensors")
