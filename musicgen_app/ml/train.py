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
from musicgen_app.ml.melody_lstm import MelodyLSTM, MelodyLSTMConfig
from musicgen_app.ml.tokenizers import BOS, GridMelodyTokenizer

logger = logging.getLogger(__name__)

IGNORE = -100


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
    curve_png: str = ""
    extra: dict = field(default_factory=dict)


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
    model: MelodyLSTM, tok: GridMelodyTokenizer, tunes: list[data_mod.EncodedTune], batch: int = 32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every target step of ``tunes`` (read whole, from the start): ``(nll, argmax, target)``."""
    model.eval()
    order = sorted(range(len(tunes)), key=lambda i: len(tunes[i].steps))
    nll_all, pred_all, tgt_all = [], [], []
    for k in range(0, len(order), batch):
        chunk = [tunes[i] for i in order[k : k + batch]]
        tt = pad_tunes(tok, chunk)
        logits, _ = model(tt.tokens, tt.bar_pos, tt.bar_steps)  # (B, T, V)
        mask = tt.targets != IGNORE
        logp = functional.log_softmax(logits, dim=-1)
        tgt = tt.targets.clamp(min=0)
        nll = -logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)  # (B, T)
        nll_all.append(nll[mask].numpy())
        pred_all.append(logits.argmax(-1)[mask].numpy())
        tgt_all.append(tt.targets[mask].numpy())
    return np.concatenate(nll_all), np.concatenate(pred_all), np.concatenate(tgt_all)


def save_curve_png(curve: list[dict], path: Path, title: str) -> None:
    """Training and validation NLL per epoch as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ep = [c["epoch"] for c in curve]
    ax.plot(ep, [c["train_nll"] for c in curve], marker="o", label="train")
    ax.plot(ep, [c["val_nll"] for c in curve], marker="o", label="validation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL (nats per step)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def train_melody_lstm(
    cfg: TrainConfig, *, progress: bool = True, dataset: data_mod.Dataset | None = None
) -> Path:
    """Train, keep the best epoch, write ``<out_dir>/<name>.safetensors`` + card; returns its path."""
    from tqdm import tqdm

    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    ds = dataset if dataset is not None else data_mod.load_or_build(cfg.corpus, progress=progress)
    split = data_mod.split_indices(ds)
    train_idx = split["train"][: cfg.limit_tunes] if cfg.limit_tunes else split["train"]
    train_tunes = list(ds.tunes(train_idx))
    val_tunes = list(ds.tunes(split["val"]))
    train_pitches = np.concatenate([t.steps[t.steps >= 0] for t in train_tunes])
    tok = GridMelodyTokenizer.covering(train_pitches, margin=2)
    if cfg.resume:
        from musicgen_app.ml.checkpoint import read_card

        tok = GridMelodyTokenizer.from_dict(read_card(cfg.resume).get("tokenizer", {}))
    mcfg = MelodyLSTMConfig(
        vocab_size=tok.vocab_size,
        embed_dim=cfg.embed_dim,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout,
        bar_conditioning=cfg.bar_conditioning,
    )
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
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_batches = batches_per_epoch * cfg.max_epochs
    done_batches = 0

    def set_lr() -> None:
        # warm-up, then cosine decay over whichever ends first: the epochs or the time budget
        frac = max(done_batches / total_batches, (time.monotonic() - started) / budget_s)
        warm = min(1.0, (done_batches + 1) / max(1, int(0.03 * total_batches)))
        lr = cfg.lr * warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))
        for g in opt.param_groups:
            g["lr"] = lr

    out_dir = Path(cfg.out_dir) if cfg.out_dir else paths.models_dir()
    curve: list[dict] = list(previous.get("training", {}).get("curve", []))
    first_epoch = (curve[-1]["epoch"] + 1) if curve else 1
    best: tuple[float, int, dict[str, Any] | None] = (math.inf, 0, None)
    if cfg.resume:
        nll, _, _ = per_step_outputs(model, tok, val_tunes)
        prev_best = int(previous.get("training", {}).get("best_epoch") or first_epoch - 1)
        best = (
            round(float(nll.mean()), 4),
            prev_best,
            {k: v.clone() for k, v in model.state_dict().items()},
        )
        logger.info("resuming from %s: validation NLL %.4f", cfg.resume, best[0])
    started = time.monotonic()
    budget_s = cfg.time_budget_min * 60
    stop_reason = "max_epochs"
    for epoch in range(first_epoch, first_epoch + cfg.max_epochs):
        model.train()
        shift = int(rng.integers(cfg.seq_len))
        starts = shift + cfg.seq_len * rng.permutation(max(1, (n - shift) // cfg.seq_len))
        total, count = 0.0, 0
        bar = tqdm(range(batches_per_epoch), desc=f"epoch {epoch}", unit="batch", disable=not progress)
        for b in bar:
            s = torch.from_numpy(starts[b * cfg.batch_size : (b + 1) * cfg.batch_size])
            if len(s) == 0:
                break
            idx = s.unsqueeze(1) + torch.arange(cfg.seq_len).unsqueeze(0)  # (B, L)
            idx = idx.clamp(max=n - 1)
            x, p, bs, y = (a[idx] for a in stream)
            logits, _ = model(x, p, bs)  # (B, L, V)
            loss = functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            set_lr()
            opt.step()
            done_batches += 1
            total += loss.item() * y.numel()
            count += y.numel()
            bar.set_postfix(nll=f"{total / count:.3f}")
            if time.monotonic() - started > budget_s:
                break
        nll, pred, tgt = per_step_outputs(model, tok, val_tunes)
        row = {
            "epoch": epoch,
            "train_nll": round(total / max(1, count), 4),
            "val_nll": round(float(nll.mean()), 4),
            "val_accuracy": round(float((pred == tgt).mean()), 4),
            "minutes": round((time.monotonic() - started) / 60, 2),
        }
        curve.append(row)
        logger.info("epoch %s", row)
        if progress:
            tqdm.write(f"epoch {epoch}: {row}")
        if row["val_nll"] < best[0] - 1e-4:
            best = (row["val_nll"], epoch, {k: v.clone() for k, v in model.state_dict().items()})
        elif epoch - best[1] >= cfg.patience:
            stop_reason = f"early stop: no validation improvement for {cfg.patience} epochs"
            break
        if time.monotonic() - started > budget_s:
            stop_reason = f"time budget of {cfg.time_budget_min} min"
            break
        _write(out_dir, cfg, mcfg, tok, ds, split, curve, best, n_params, stop_reason="running")
    path = _write(out_dir, cfg, mcfg, tok, ds, split, curve, best, n_params, stop_reason=stop_reason)
    png = Path(cfg.curve_png) if cfg.curve_png else out_dir / f"{cfg.name}-curve.png"
    save_curve_png(curve, png, f"{cfg.name} on {cfg.corpus}")
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
            "corpus": cfg.corpus,
            "dataset": f"music21 corpus {data_mod.CORPORA[cfg.corpus]} (ABC)",
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
            "device": "cpu",
            "threads": cfg.threads,
        },
        "metrics": {},
    }
    state = best[2] if best[2] is not None else {}
    return save_checkpoint(state, card, out_dir / f"{cfg.name}.safetensors")
