"""`musicgen audio train [--layout hilbert|linear] [--variant paper|residual] [--minutes M] [--name NAME]
[--resume] [--paired SHARE]`: paper 002's style autoencoder trained on the piano renders of the
training pieces (one torch thread by default); with ``--paired``, also on the training pieces'
guitar, strings and organ renders as inputs with their piano render as target (not the paper's).
"""

from __future__ import annotations

import argparse
import logging

from musicgen_app.cli import argtypes as at

logger = logging.getLogger(__name__)

LAYOUT_CHOICES = ("hilbert", "linear")
LOSS_TEXT = {
    "mse": "MSE on the 0..1 pictures",
    "lsd": "log-spectral distance (dB) of the decoded, peak-matched output to the input window",
}
AUGMENT_TEXT = (
    ", the input altered (random EQ, sustain, envelope, distortion, noise), the target the clean piano window"
)

PAIRED_TEXT = (
    "; {:.0%} of each batch: a train piece's guitar, strings or organ render as input, its piano render "
    "as target, the output scaled to the input's peak"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen audio train`."""
    parser.add_argument("--layout", choices=LAYOUT_CHOICES, default="hilbert", help="audio -> picture layout")
    parser.add_argument(
        "--variant",
        choices=("paper", "residual"),
        default="paper",
        help="paper: the paper's network (sigmoid picture out); residual: the same network, its "
        "output a gain on each input sample (1 + tanh), starting as the identity (default paper)",
    )
    parser.add_argument(
        "--paired",
        type=at.finite_float(0.0, 1.0),
        default=0.0,
        metavar="SHARE",
        help="share of each batch cut from the training pieces' guitar/strings/organ renders, the "
        "target their piano render (not the paper's piano-only recipe; default 0)",
    )
    parser.add_argument(
        "--minutes",
        type=at.finite_float(0.05, 600.0),
        default=25.0,
        metavar="M",
        help="wall-clock training time, 0.05 to 600 (default 25)",
    )
    parser.add_argument(
        "--name", type=at.checkpoint_name, default=None, help="checkpoint name (default: LAYOUT-ae)"
    )
    parser.add_argument(
        "--threads", type=at.int_range(1, 256), default=1, metavar="N", help="torch threads (default 1)"
    )
    parser.add_argument("--seed", type=at.seed, default=2002, help="random seed (default 2002)")
    parser.add_argument(
        "--resume", action="store_true", help="go on from the saved checkpoint of that name (another run)"
    )
    parser.add_argument(
        "--loss",
        choices=("mse", "lsd"),
        default="mse",
        help="mse: on the pictures (the paper's); lsd: the evaluation's log-spectral distance (default mse)",
    )
    parser.add_argument(
        "--lr",
        type=at.finite_float(1e-6, 1.0),
        default=1e-3,
        metavar="LR",
        help="Adam learning rate (default 1e-3, the paper's)",
    )
    parser.add_argument(
        "--revive",
        action="store_true",
        help="with --resume: give the channels that are never active fresh weights first (same output)",
    )
    parser.add_argument(
        "--augment",
        action="store_true",
        help="denoising training: the input is piano altered by random EQ, sustain, envelope, "
        "distortion and noise; the target is the clean piano",
    )


def run(args: argparse.Namespace) -> int:
    """Train (or go on training) and save the checkpoint with its card."""
    import numpy as np
    import torch

    from musicgen_app.errors import CheckpointError
    from musicgen_app.ml.audio import dataset as ads
    from musicgen_app.ml.audio import restyle as rs

    torch.set_num_threads(args.threads)
    ds = ads.load_audio_dataset()
    train = [ds.audio("piano", i) for i in ds.split("train")]
    val = [ds.audio("piano", i) for i in ds.split("val")]
    pairs, val_pairs = None, None
    if args.paired > 0:

        def paired(split: str) -> list:
            return [
                np.stack([ds.audio(inst, i), ds.audio("piano", i)])
                for i in ds.split(split)
                for inst in rs.SOURCE_INSTRUMENTS
            ]

        pairs, val_pairs = paired("train"), paired("val")
    config = rs.RestyleConfig(layout=args.layout, sample_rate=ds.sample_rate, variant=args.variant)
    name = args.name or (f"{args.layout}-ae" + ("-res" if args.variant == "residual" else ""))
    start, runs = None, []
    if args.resume:
        from musicgen_app.ml.registry import load_model

        before = rs.as_restyler(load_model(name), name)
        if before.network.config != config:
            raise CheckpointError(f"model {name} was trained with another configuration; train it anew")
        start = before.network
        done = before.card.get("training", {})
        runs = list(
            done.get("runs", [{k: done[k] for k in ("steps", "seconds", "best_val_mse") if k in done}])
        )
    net, report = rs.train_autoencoder(
        config,
        train,
        val,
        seconds=args.minutes * 60,
        seed=args.seed + len(runs),
        log=lambda s: print(s, flush=True),
        start=start,
        loss=args.loss,
        augment=args.augment,
        revive=args.revive and start is not None,
        lr=args.lr,
        pairs=pairs,
        val_pairs=val_pairs,
        paired_share=args.paired,
    )
    runs.append(
        {
            "steps": report.steps,
            "seconds": report.seconds,
            f"best_val_{args.loss}": report.best_val_mse,
            "seed": args.seed + len(runs),
            "loss": args.loss,
            **({"augment": list(rs.AUGMENTATIONS)} if args.augment else {}),
            **({"lr": args.lr} if args.lr != 1e-3 else {}),
            **({"revived_dead_channels": True} if args.revive and start is not None else {}),
            **({"paired": args.paired} if pairs else {}),
        }
    )
    card = rs.new_card(config, name)
    card["data"] = {
        "dataset": "Bach chorales + Essen melodies rendered on GM piano"
        + (", nylon guitar, string ensemble and church organ" if any(r.get("paired") for r in runs) else "")
        + " by FluidSynth (TimGM6mb)",
        **{k: v for k, v in ds.stats().items() if k != "path"},
        "trained_on": "piano renders of the train pieces only"
        if not any(r.get("paired") for r in runs)
        else "piano renders of the train pieces, and the guitar, strings and organ renders of the same "
        "train pieces as inputs with their piano render as target (paired; not the paper's piano-only "
        "recipe); validation: the val pieces likewise",
    }
    card["training"] = {
        "steps": sum(r["steps"] for r in runs),
        "seconds": round(sum(r["seconds"] for r in runs), 1),
        "runs": runs,
        "batch": 8,
        "optimizer": "Adam lr 1e-3 (paper 002), gradient norm clipped at 1, best validation weights kept",
        "loss": " then ".join(
            dict.fromkeys(
                LOSS_TEXT[r.get("loss", "mse")]
                + (AUGMENT_TEXT if r.get("augment") else "")
                + (PAIRED_TEXT.format(r["paired"]) if r.get("paired") else "")
                for r in runs
            )
        ),  # the runs' losses in order (a run without one was MSE)
        f"best_val_{args.loss}": report.best_val_mse,
        "history": report.history,  # the last run's (step, train loss, validation loss)
        "threads": args.threads,
        "seed": args.seed,  # run k (from 0) draws its windows with seed + k
    }
    path = rs.save_restyler(net, card, name)
    print(
        f"saved {path} after {report.steps} steps ({report.seconds:.0f} s), "
        f"val {args.loss} {report.best_val_mse}"
    )
    return 0
