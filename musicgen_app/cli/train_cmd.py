"""`musicgen train MODEL [--data NAME|DIR] [--from MODEL] [options]`: train a model.

melody-lstm trains on a music21 corpus (``--corpus``) or on any folder of MIDI files
(``--data``), from scratch or fine-tuning a model (``--from``). Every other family trains on its
own corpus mix, or with ``--data`` on any MIDI dataset through its
:class:`~musicgen_app.ml.family.Family` (``--name``, ``--minutes``, ``--out-dir``, ``--seed``).
Under ``torchrun`` melody-lstm runs as one rank of a DistributedDataParallel job (gloo on CPU, NCCL
with ``--device cuda``)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from musicgen_app.cli import argtypes as at
from musicgen_app.ml.families import SHIPPED as SHIPPED_FAMILIES

logger = logging.getLogger(__name__)

MAX_MINUTES = 7 * 24 * 60.0
MAX_HIDDEN = 4096
MAX_LAYERS = 16

# melody-lstm (paper 003) and the model families of papers 000, 001, 002, 004 (ml/families)
SHIPPED = "shipped"
TRAINABLE = ("melody-lstm", *SHIPPED_FAMILIES)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen train`, each checked by its parser (``cli.argtypes``).

    Defaults are None here and filled from ``ml.train.TrainConfig`` in :func:`run`, so that building
    the parser (and refusing a bad value) does not import torch.
    """
    recipe = "default: the melody-lstm recipe"
    parser.add_argument("model", choices=TRAINABLE, help="which model family to train")
    parser.add_argument("--name", type=at.checkpoint_name, help="checkpoint name (default: the model's name)")
    parser.add_argument("--corpus", choices=("essen", "oneill", "ryan"), help=f"training corpus ({recipe})")
    parser.add_argument(
        "--epochs", type=at.positive_int(100_000), help=f"at most this many epochs ({recipe})"
    )
    parser.add_argument("--batch-size", type=at.positive_int(65_536), help=f"windows per batch ({recipe})")
    parser.add_argument(
        "--seq-len", type=at.int_range(2, 65_536), help=f"window length in 16th steps ({recipe})"
    )
    parser.add_argument(
        "--lr", type=at.finite_float(0.0, 10.0, lo_open=True), help=f"learning rate ({recipe})"
    )
    parser.add_argument(
        "--patience",
        type=at.positive_int(100_000),
        help=f"early stopping patience in epochs, at least 1 ({recipe})",
    )
    parser.add_argument(
        "--minutes",
        type=at.finite_float(0.0, MAX_MINUTES, lo_open=True),
        help=f"time budget in minutes ({recipe})",
    )
    parser.add_argument("--threads", type=at.positive_int(1024), help=f"torch CPU threads ({recipe})")
    parser.add_argument("--hidden", type=at.positive_int(MAX_HIDDEN), help=f"LSTM hidden size ({recipe})")
    parser.add_argument("--layers", type=at.positive_int(MAX_LAYERS), help=f"LSTM layers ({recipe})")
    parser.add_argument(
        "--dropout",
        type=at.finite_float(0.0, 1.0, hi_open=True),
        help=f"dropout, at least 0 and below 1 ({recipe})",
    )
    parser.add_argument("--no-bar-conditioning", action="store_true", help="train without bar positions")
    parser.add_argument(
        "--limit-tunes",
        type=at.non_negative_int(10_000_000),
        default=0,
        help="train on the first N tunes only (0: all)",
    )
    parser.add_argument(
        "--out-dir",
        type=at.creatable_dir,
        metavar="DIR",
        help="the folder to write the checkpoint into, made when missing (default: models/)",
    )
    parser.add_argument("--seed", type=at.seed, help=f"random seed ({recipe})")
    parser.add_argument("--no-evaluate", action="store_true", help="skip the test-set evaluation at the end")
    parser.add_argument(
        "--data",
        type=at.non_empty("a dataset name or folder"),
        default=None,
        metavar="NAME|DIR",
        help="a dataset built by `dataset build --midi`, or a MIDI folder (built first); "
        "every family trains on it",
    )
    parser.add_argument(
        "--from",
        dest="base",
        type=at.model_name,
        default=None,
        metavar="MODEL",
        help="melody-lstm: fine-tune this model (a shipped name, one of your own, or a path) on --data",
    )
    parser.add_argument(
        "--progress-json",
        action="store_true",
        help="report progress as JSON lines on stdout (what the window's Train on My Music reads), no bars",
    )
    parser.add_argument(
        "--device", type=_device, default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)"
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const=SHIPPED,
        default=None,
        type=_checkpoint,
        metavar="CHECKPOINT",
        help="continue from the shipped weights, or with --data from --out-dir/--name "
        "(or, for melody-lstm, from CHECKPOINT)",
    )


def _checkpoint(value: str) -> str:
    """``--resume [CHECKPOINT]``: a checkpoint file; argparse also passes the bare flag's const here."""
    return value if value == SHIPPED else at.input_file(what="checkpoint")(value)


def _device(value: str) -> str:
    """``--device``: cpu, cuda or cuda:N."""
    import re

    if not re.fullmatch(r"cpu|cuda(:\d{1,2})?", value):
        raise argparse.ArgumentTypeError(f"'{value}' is not a training device (use cpu, cuda or cuda:N)")
    return value


def _given(args: argparse.Namespace, name: str, default: Any) -> Any:
    value = getattr(args, name)
    return default if value is None else value


# options that only `train melody-lstm` reads (the families take --name, --minutes and --resume)
MELODY_ONLY = (
    "corpus",
    "epochs",
    "batch_size",
    "seq_len",
    "lr",
    "patience",
    "threads",
    "hidden",
    "layers",
    "dropout",
    "out_dir",
    "seed",
)


def run(args: argparse.Namespace) -> int:
    """Train, then evaluate on the test tunes and write the metrics into the card."""
    if args.model != "melody-lstm":
        allowed = ("out_dir", "seed") if args.data else ()
        ignored = [
            f"--{o.replace('_', '-')}"
            for o in MELODY_ONLY
            if getattr(args, o) is not None and o not in allowed
        ]
        ignored += ["--no-bar-conditioning"] if args.no_bar_conditioning else []
        ignored += ["--limit-tunes"] if args.limit_tunes else []
        ignored += ["--resume CHECKPOINT"] if args.resume not in (None, SHIPPED) else []
        if ignored:
            from musicgen_app.errors import MusicgenError

            raise MusicgenError(
                f"{', '.join(ignored)}: only for `musicgen train melody-lstm`; "
                f"{args.model} takes --name, --minutes and --resume"
            )
    from musicgen_app.ml import FINE_TUNABLE
    from musicgen_app.ml.train import TrainConfig, train_melody_lstm

    if args.model not in FINE_TUNABLE and args.base:
        from musicgen_app.errors import DatasetError

        raise DatasetError(
            f"--from fine-tunes {' and '.join(FINE_TUNABLE)} for now; "
            f"{args.model} trains from scratch on --data"
        )
    if args.progress_json and args.model != "melody-lstm":
        from musicgen_app.errors import MusicgenError

        raise MusicgenError(f"--progress-json: only for `musicgen train melody-lstm`, not {args.model}")
    d = TrainConfig()
    if args.model != "melody-lstm" and args.data:
        return _train_family_on_data(args, _given(args, "minutes", d.time_budget_min))
    if args.model != "melody-lstm":
        from musicgen_app.ml.families.builtin import train_shipped_recipe
        from musicgen_app.ml.families.evaluate import evaluate_family, format_family_report

        name = args.name or args.model
        minutes = _given(args, "minutes", d.time_budget_min)
        card = train_shipped_recipe(args.model, minutes=minutes, name=name, resume=bool(args.resume))
        print(f"wrote models/{card['name']}.safetensors and .json")
        if not args.no_evaluate:
            print(format_family_report(evaluate_family(card["name"], update_card=True)))
        return 0
    import os

    emit = _json_lines if args.progress_json else None
    data = args.data or ""
    if emit is not None and data and int(os.environ.get("WORLD_SIZE", "1") or 1) == 1:
        data = _build_folder(data, emit)  # (under torchrun, rank 0 builds it first in training)
    cfg = TrainConfig(
        name=_given(args, "name", d.name),
        corpus=_given(args, "corpus", d.corpus),
        max_epochs=_given(args, "epochs", d.max_epochs),
        batch_size=_given(args, "batch_size", d.batch_size),
        seq_len=_given(args, "seq_len", d.seq_len),
        lr=_given(args, "lr", d.lr),
        patience=_given(args, "patience", d.patience),
        time_budget_min=_given(args, "minutes", d.time_budget_min),
        threads=_given(args, "threads", d.threads),
        hidden_size=_given(args, "hidden", d.hidden_size),
        num_layers=_given(args, "layers", d.num_layers),
        dropout=_given(args, "dropout", d.dropout),
        bar_conditioning=not args.no_bar_conditioning,
        limit_tunes=args.limit_tunes,
        out_dir=_given(args, "out_dir", d.out_dir),
        seed=_given(args, "seed", d.seed),
        resume=_resume_path(args, _given(args, "name", d.name)),
        data=data,
        base=_model_path(args.base) if args.base else "",
        device=args.device,
    )
    path = train_melody_lstm(cfg, progress=emit is None, on_event=emit)
    if int(os.environ.get("RANK", "0") or 0) != 0:
        return 0  # under torchrun, rank 0 reports and evaluates
    if emit is not None:
        from musicgen_app.ml.checkpoint import read_card

        training = read_card(path).get("training", {})
        emit(
            {
                "event": "done",
                "path": str(path),
                "best_epoch": training.get("best_epoch"),
                "best_val_nll": training.get("best_val_nll"),
                "stopped": training.get("stopped"),
            }
        )
        return 0
    print(f"wrote {path} and {path.with_suffix('.json')}")
    if not args.no_evaluate and args.data:
        print("(the test-set evaluation reads the corpora; skipped for --data)")
    elif not args.no_evaluate:
        from musicgen_app.ml.evaluate import evaluate_model, format_report

        report = evaluate_model(str(path), update_card=True)
        print(format_report(report))
    return 0


def _train_family_on_data(args: argparse.Namespace, minutes: float) -> int:
    """`musicgen train FAMILY --data NAME|DIR`: the family's network trained on that dataset."""
    from pathlib import Path

    from musicgen_app.core import paths
    from musicgen_app.ml.family import TrainRun, load_train_data
    from musicgen_app.ml.registry import get_family

    data = load_train_data(args.data, progress=True)
    out = Path(args.out_dir) if args.out_dir else paths.models_dir()
    run = TrainRun(
        name=args.name or args.model,
        out_dir=out,
        minutes=minutes,
        seed=args.seed or 0,
        resume=bool(args.resume),  # from the checkpoint this run writes (out_dir/name)
        progress=True,
    )
    card = get_family(args.model).train(data, run)
    metrics = ", ".join(f"{k} {v}" for k, v in card.get("metrics", {}).items())
    print(f"wrote {run.weights} and {run.weights.with_suffix('.json')} ({metrics})")
    return 0


def _json_lines(event: dict[str, Any]) -> None:
    """``--progress-json``: one JSON object per line on stdout, flushed at once."""
    import json
    import sys

    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _build_folder(spec: str, emit: Any) -> str:
    """``--data DIR`` with ``--progress-json``: build the folder's dataset, reporting the files read
    (``reading``) and what was used and skipped, with each reason (``dataset``); returns its name.
    A dataset name or a corpus is returned as it is."""
    from pathlib import Path

    from musicgen_app.ml import midi_data

    folder = Path(spec).expanduser()
    if not folder.is_dir():
        return spec
    report = midi_data.build_midi_dataset(
        folder,
        None,
        progress=False,
        on_progress=lambda done, total: emit({"event": "reading", "done": done, "total": total}),
    )
    emit(
        {
            "event": "dataset",
            "name": report.name,
            "used": report.used,
            "read": report.parsed,
            "from_cache": report.cached,
            "skipped": [{"file": f, "reason": why} for f, why in report.skipped],
        }
    )
    return report.name


def _resume_path(args: argparse.Namespace, name: str) -> str:
    if args.resume != SHIPPED:
        return str(args.resume or "")
    from musicgen_app.core import paths

    return str(paths.models_dir() / f"{name}.safetensors")


def _model_path(spec: str) -> str:
    """A model given by name (shipped) or path, as the path of its weights (raises CheckpointError)."""
    from pathlib import Path

    from musicgen_app.core import paths
    from musicgen_app.errors import CheckpointError

    p = Path(spec).expanduser()
    for candidate in (
        p,
        p.with_suffix(".safetensors"),
        paths.models_dir() / f"{spec}.safetensors",
        paths.user_models_dir() / f"{spec}.safetensors",
    ):
        if candidate.suffix == ".safetensors" and candidate.is_file():
            return str(candidate)
    raise CheckpointError(
        f"no model '{spec}' (a shipped name like melody-lstm, one of your own, or a .safetensors path)"
    )
