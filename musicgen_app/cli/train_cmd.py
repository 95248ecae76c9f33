"""`musicgen train MODEL [--data NAME|DIR] [--from MODEL] [options]`: train a model.

melody-lstm trains on a music21 corpus (``--corpus``) or on any folder of MIDI files
(``--data``), from scratch or fine-tuning a model (``--from``). Under ``torchrun`` it runs as
one rank of a DistributedDataParallel job (gloo on CPU, NCCL with ``--device cuda``)."""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger(__name__)

# melody-lstm (paper 003) and the model families of papers 000, 001, 002, 004 (ml/families)
SHIPPED = "shipped"
TRAINABLE = (
    "melody-lstm",
    "char-lstm",
    "chord-lstm",
    "pianoroll-lstm",
    "pianoroll-seq2seq",
    "pianoroll-gan",
    "wavenet",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen train`."""
    from musicgen_app.ml.train import TrainConfig

    d = TrainConfig()
    parser.add_argument("model", choices=TRAINABLE, help="which model family to train")
    parser.add_argument("--name", default=d.name, help="checkpoint name (default: %(default)s)")
    parser.add_argument("--corpus", default=d.corpus, choices=("essen", "oneill", "ryan"))
    parser.add_argument("--epochs", type=int, default=d.max_epochs, help="at most this many epochs")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--seq-len", type=int, default=d.seq_len, help="window length in 16th steps")
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--patience", type=int, default=d.patience, help="early stopping patience (epochs)")
    parser.add_argument("--minutes", type=float, default=d.time_budget_min, help="time budget")
    parser.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads")
    parser.add_argument("--hidden", type=int, default=d.hidden_size)
    parser.add_argument("--layers", type=int, default=d.num_layers)
    parser.add_argument("--dropout", type=float, default=d.dropout)
    parser.add_argument("--no-bar-conditioning", action="store_true", help="train without bar positions")
    parser.add_argument("--limit-tunes", type=int, default=0, help="train on the first N tunes only")
    parser.add_argument("--out-dir", default="", help="where to write the checkpoint (default: models/)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--no-evaluate", action="store_true", help="skip the test-set evaluation at the end")
    parser.add_argument(
        "--data",
        default="",
        metavar="NAME|DIR",
        help="melody-lstm: a dataset built by `dataset build --midi`, or a MIDI folder (built first)",
    )
    parser.add_argument(
        "--from",
        dest="base",
        default="",
        metavar="MODEL",
        help="melody-lstm: fine-tune this model (a shipped name or a .safetensors path) on --data",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    parser.add_argument(
        "--resume",
        nargs="?",
        const=SHIPPED,
        default="",
        metavar="CHECKPOINT",
        help="continue from the shipped weights (or, for melody-lstm, from CHECKPOINT)",
    )


def run(args: argparse.Namespace) -> int:
    """Train, then evaluate on the test tunes and write the metrics into the card."""
    from musicgen_app.ml.train import TrainConfig, train_melody_lstm

    if args.model != "melody-lstm" and (args.data or args.base):
        from musicgen_app.errors import DatasetError

        raise DatasetError(
            f"--data and --from train melody-lstm for now; {args.model} trains on its own corpus"
        )
    if args.model != "melody-lstm":
        from musicgen_app.ml.families import train_family
        from musicgen_app.ml.families.evaluate import evaluate_family, format_family_report

        name = args.model if args.name == TrainConfig().name else args.name
        card = train_family(args.model, minutes=args.minutes, name=name, resume=bool(args.resume))
        print(f"wrote models/{card['name']}.safetensors and .json")
        if not args.no_evaluate:
            print(format_family_report(evaluate_family(card["name"], update_card=True)))
        return 0
    cfg = TrainConfig(
        name=args.name,
        corpus=args.corpus,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        lr=args.lr,
        patience=args.patience,
        time_budget_min=args.minutes,
        threads=args.threads,
        hidden_size=args.hidden,
        num_layers=args.layers,
        dropout=args.dropout,
        bar_conditioning=not args.no_bar_conditioning,
        limit_tunes=args.limit_tunes,
        out_dir=args.out_dir,
        seed=args.seed,
        resume=_resume_path(args),
        data=args.data,
        base=_model_path(args.base) if args.base else "",
        device=args.device,
    )
    path = train_melody_lstm(cfg)
    import os

    if int(os.environ.get("RANK", "0") or 0) != 0:
        return 0  # under torchrun, rank 0 reports and evaluates
    print(f"wrote {path} and {path.with_suffix('.json')}")
    if not args.no_evaluate and args.data:
        print("(the test-set evaluation reads the corpora; skipped for --data)")
    elif not args.no_evaluate:
        from musicgen_app.ml.evaluate import evaluate_model, format_report

        report = evaluate_model(str(path), update_card=True)
        print(format_report(report))
    return 0


def _resume_path(args: argparse.Namespace) -> str:
    if args.resume != SHIPPED:
        return str(args.resume or "")
    from musicgen_app.core import paths

    return str(paths.models_dir() / f"{args.name}.safetensors")


def _model_path(spec: str) -> str:
    """A model given by name (shipped) or path, as the path of its weights (raises CheckpointError)."""
    from pathlib import Path

    from musicgen_app.core import paths
    from musicgen_app.errors import CheckpointError

    p = Path(spec).expanduser()
    for candidate in (p, p.with_suffix(".safetensors"), paths.models_dir() / f"{spec}.safetensors"):
        if candidate.suffix == ".safetensors" and candidate.is_file():
            return str(candidate)
    raise CheckpointError(f"no model '{spec}' (a shipped name like melody-lstm, or a .safetensors path)")
