"""Fine-tune the shipped melody-lstm into a fill-in-the-middle model (``melody-fim``) on POP909.

Each example is one window of a training tune (the train split of the ``pop909`` dataset that
``musicgen dataset build --midi ../shared/data/pop909 --name pop909`` builds) rearranged as
suffix, prefix, middle (see :mod:`musicgen_app.ml.melody_fim`): a middle of 1-4 bars (or, one
time in four, any 4-64 steps) at a random step, up to ``--prefix`` steps before it and
``--suffix`` steps after it. Loss: every target (suffix, prefix and middle tokens), the middle
reported apart. Validation: the middle NLL of fixed windows of the validation tunes, beside the
base model's NLL of the same middles read after the prefix only (what a continuation knows).

Run: ``nice -n 5 .venv/bin/python scripts/train_melody_fim.py --minutes 25 --out models/``
(one torch thread; the best weights by validation middle NLL are written with their card).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musicgen_app.ml import data as data_mod  # noqa: E402
from musicgen_app.ml.checkpoint import save_checkpoint  # noqa: E402
from musicgen_app.ml.melody_fim import (  # noqa: E402
    GAP_SUFFIX,
    MelodyFIM,
    fim_layout,
    gap_bucket,
    init_from_melody_lstm,
)
from musicgen_app.ml.midi_data import load_midi_dataset  # noqa: E402
from musicgen_app.ml.registry import load_model  # noqa: E402

IGNORE = -100


def example(tune, tok, rng: np.random.Generator, prefix_len: int, suffix_len: int):
    """``(tokens, bar_pos, bar_steps, gap, targets, is_middle)`` arrays of one FIM window, or None."""
    ids = tok.encode_steps(tune.steps)
    n = len(ids)
    spb = int(tune.bar_steps[0]) or 16
    if rng.random() < 0.75:
        m = spb * int(rng.integers(1, 5))
        bar_lines = np.flatnonzero(tune.bar_pos == 0)
        bar_lines = bar_lines[(bar_lines >= 8) & (bar_lines + m + 4 <= n)]
        if not len(bar_lines):
            return None
        a = int(rng.choice(bar_lines))
    else:
        m = int(rng.integers(4, 65))
        if n < m + 16:
            return None
        a = int(rng.integers(8, n - m - 4 + 1))
    p0 = max(0, a - prefix_len)
    s1 = min(n, a + m + suffix_len)
    prefix, middle, suffix = ids[p0:a].tolist(), ids[a : a + m].tolist(), ids[a + m : s1].tolist()
    tokens, steps, gaps = fim_layout(prefix, suffix, m, tok)
    tokens = tokens + middle
    p = len(prefix)
    steps = steps + [p + j + 1 for j in range(m)]
    gaps = gaps + [gap_bucket(m - j - 1) for j in range(m)]
    # targets: the token at each input's predicted step (the dummy after the suffix: none)
    timeline = prefix + middle + suffix  # timeline step t -> token
    targets = []
    for k, t in enumerate(steps):
        dummy = k == len(suffix)
        targets.append(IGNORE if dummy or t >= len(timeline) else timeline[t])
    # bar positions of the predicted steps, in the tune's own bars
    idx = np.minimum(np.asarray(steps) + p0, n - 1)
    is_middle = np.zeros(len(tokens), bool)
    is_middle[len(suffix) + 1 + p : len(suffix) + 1 + p + m] = True  # inputs predicting m1.. and s0
    is_middle[len(suffix) + p] = True  # the last prefix token predicts m0
    return (
        np.asarray(tokens),
        tune.bar_pos[idx].astype(np.int64),
        tune.bar_steps[idx].astype(np.int64),
        np.asarray(gaps),
        np.asarray(targets),
        is_middle,
    )


def without_suffix(e):
    """The same window with the suffix's tokens withheld (``<suf>`` then at once ``<pre>``; the
    gap lengths kept): what the suffix's notes add, measured on the FIM model itself."""
    tokens, pos, bars, gap, targets, mid = e
    s = int(np.flatnonzero(gap != GAP_SUFFIX)[0])  # the <pre> marker
    keep = np.r_[0, s : len(tokens)]
    t = targets[keep].copy()
    t[0] = IGNORE
    return tokens[keep], pos[keep], bars[keep], gap[keep], t, mid[keep]


def batch(examples):
    t_max = max(len(e[0]) for e in examples)
    out = []
    for j, fill in enumerate((0, 0, 16, GAP_SUFFIX, IGNORE, False)):
        arr = np.full((len(examples), t_max), fill, dtype=bool if j == 5 else np.int64)
        for i, e in enumerate(examples):
            arr[i, : len(e[j])] = e[j]
        out.append(torch.from_numpy(arr))
    return out


def middle_nll(net: MelodyFIM, batches) -> float:
    """Mean NLL of the middle targets (inputs flagged ``is_middle``)."""
    net.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for tokens, pos, bars, gap, targets, mid in batches:
            logits, _ = net.forward_fim(tokens, pos, bars, gap)
            nll = functional.cross_entropy(
                logits.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none"
            )
            sel = mid & (targets != IGNORE)
            total += float(nll[sel].sum())
            count += int(sel.sum())
    net.train()
    return total / max(1, count)


def base_middle_nll(base, val_examples) -> float:
    """The base model's NLL of the same middle targets read after ``<s>`` + the prefix only."""
    total, count = 0.0, 0
    with torch.inference_mode():
        for tokens, pos, bars, gap, targets, mid in val_examples:
            s = int(np.flatnonzero(gap != GAP_SUFFIX)[0])  # the <pre> marker
            seq = tokens[s:].copy()
            seq[0] = 0  # <s>
            tgt, pb, bb, mm = targets[s:], pos[s:], bars[s:], mid[s:]
            logits, _ = base.net(
                torch.from_numpy(seq[None]), torch.from_numpy(pb[None]), torch.from_numpy(bb[None])
            )  # (1, T, V)
            lp = functional.log_softmax(logits[0], dim=-1)
            sel = np.flatnonzero(mm & (tgt != IGNORE))
            total -= float(lp[sel, tgt[sel]].sum())
            count += len(sel)
    return total / max(1, count)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--prefix", type=int, default=128)
    ap.add_argument("--suffix", type=int, default=32)
    ap.add_argument("--val", type=int, default=256, help="validation windows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "models"))
    ap.add_argument("--name", default="melody-fim")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    ds = load_midi_dataset("pop909")
    split = data_mod.split_indices(ds)
    base = load_model("melody-lstm")
    tok = base.tokenizer
    net = init_from_melody_lstm(base.net, tok)
    net.train()
    train = [ds.tune(int(i)) for i in split["train"]]
    val_rng = np.random.default_rng(12345)
    val_tunes = [ds.tune(int(i)) for i in split["val"]]
    val_ex = []
    while len(val_ex) < args.val:
        e = example(val_tunes[len(val_ex) % len(val_tunes)], tok, val_rng, args.prefix, args.suffix)
        if e is not None:
            val_ex.append(e)
    val_batches = [batch(val_ex[i : i + 64]) for i in range(0, len(val_ex), 64)]
    base_nll = base_middle_nll(base, val_ex)
    start_nll = middle_nll(net, val_batches)
    print(
        f"validation middle NLL: base melody-lstm after the prefix only {base_nll:.4f}; "
        f"FIM at start {start_nll:.4f}"
    )
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-5)
    best = (start_nll, 0, {k: v.detach().clone() for k, v in net.state_dict().items()})
    curve = [{"batches": 0, "val_middle_nll": round(start_nll, 4), "minutes": 0.0}]
    t0 = time.monotonic()
    step = 0
    while time.monotonic() - t0 < args.minutes * 60:
        exs = []
        while len(exs) < args.batch_size:
            e = example(train[int(rng.integers(len(train)))], tok, rng, args.prefix, args.suffix)
            if e is not None:
                exs.append(e)
        tokens, pos, bars, gap, targets, _ = batch(exs)
        logits, _ = net.forward_fim(tokens, pos, bars, gap)
        loss = functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            v = middle_nll(net, val_batches)
            minutes = (time.monotonic() - t0) / 60
            curve.append({"batches": step, "train_loss": round(float(loss), 4), "val_middle_nll": round(v, 4),
                          "minutes": round(minutes, 2)})  # fmt: skip
            print(
                f"{minutes:6.1f} min  batch {step}  train {float(loss):.4f}  val middle NLL {v:.4f}",
                flush=True,
            )
            if v < best[0]:
                best = (v, step, {k: t.detach().clone() for k, t in net.state_dict().items()})
    net.load_state_dict(best[2])
    no_suffix = [batch([without_suffix(e) for e in val_ex[i : i + 64]]) for i in range(0, len(val_ex), 64)]
    no_suffix_nll = middle_nll(net, no_suffix)
    print(
        f"FIM middle NLL with the suffix {best[0]:.4f}, with the suffix's notes withheld {no_suffix_nll:.4f}"
    )
    cfg = net.fim_cfg
    card = {
        "name": args.name,
        "family": "melody-fim",
        "seed_paper": "003",
        "description": (
            "Paper 003's melody LSTM fine-tuned for fill-in-the-middle: each window rearranged as "
            "suffix, prefix, middle with <suf>/<pre> markers, the steps left to the suffix embedded."
        ),
        "architecture": {
            "class": "MelodyFIM",
            "args": cfg.__dict__ | {},
            "parameters": sum(p.numel() for p in net.parameters()),
        },
        "tokenizer": tok.to_dict(),
        "markers": ["<suf>", "<pre>"],
        "conditioning": "bar position and bar length of the predicted step; steps to the suffix",
        "data": {
            "corpus": "pop909",
            "dataset": f"MIDI folder {ds.stats.get('folder', '')} (dataset '{ds.name}'), train split",
            "base": "melody-lstm",
        },
        "split": data_mod.split_record(ds, split),
        "training": {
            "config": vars(args),
            "curve": curve,
            "best_batch": best[1],
            "threads": 1,
            "device": "cpu",
        },
        "metrics": {
            "val_middle_nll": round(best[0], 4),
            "val_middle_nll_base_prefix_only": round(base_nll, 4),
            "val_middle_nll_suffix_withheld": round(no_suffix_nll, 4),
            "val_windows": len(val_ex),
        },
    }
    path = save_checkpoint(best[2], card, Path(args.out) / f"{args.name}.safetensors")
    print(f"wrote {path}: best validation middle NLL {best[0]:.4f} (batch {best[1]}), base {base_nll:.4f}")


if __name__ == "__main__":
    main()
