"""`musicgen train MODEL [--data NAME|DIR] [--from MODEL] [options]`: train a model.

Every family trains through the one loop (:mod:`musicgen_app.ml.training`) on any MIDI dataset
(``--data``), from scratch or fine-tuning a model of the same family (``--from``), resuming a
killed run (``--resume``), with ``--minutes``, ``--epochs``, ``--lr``, ``--patience``,
``--threads``, ``--progress-json``; under ``torchrun`` as one rank of a DistributedDataParallel job
(gloo on CPU, NCCL with ``--device cuda``). melody-lstm also trains on a music21 corpus
(``--corpus``) and takes its network and batch options; without ``--data`` every other family runs
its shipped model's recipe on its own corpus mix."""

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

    Defaults are None here and filled from the family's recipe in :func:`run`, so that building
    the parser (and refusing a bad value) does not import torch.
    """
    recipe = "default: the family's recipe"
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
        help="fine-tune this model of the same family (a shipped name, one of your own, or a path) on --data",
    )
    parser.add_argument(
        "--progress-json",
        action="store_true",
        help="with --data: report progress as JSON lines on stdout (what the window's Train on My Music "
        "reads), no bars",
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
        help="continue a killed or finished run: from --out-dir/--name (default: the shipped weights), "
        "or from CHECKPOINT",
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


# options of the one training loop (every family with --data; melody-lstm also on a corpus)
LOOP_OPTIONS = {"epochs": "max_epochs", "lr": "lr", "patience": "patience", "threads": "threads"}
# melody-lstm's own options: its network and its batches
MELODY_OPTIONS = {"hidden": "hidden_size", "layers": "num_layers", "dropout": "dropout",
                  "batch_size": "batch_size", "seq_len": "seq_len"}  # fmt: skip
DEFAULT_MINUTES = 54.0


def run(args: argparse.Namespace) -> int:
    """Train through the family's one loop, then (melody-lstm on a corpus) evaluate on the test
    tunes and write the metrics into the card."""
    from musicgen_app.errors import MusicgenError

    melody = args.model == "melody-lstm"
    if not melody:
        ignored = [
            f"--{o.replace('_', '-')}" for o in ("corpus", *MELODY_OPTIONS) if getattr(args, o) is not None
        ]
        ignored += ["--no-bar-conditioning"] if args.no_bar_conditioning else []
        ignored += ["--limit-tunes"] if args.limit_tunes else []
        if not args.data:
            ignored += [
                f"--{o.replace('_', '-')}"
                for o in (*LOOP_OPTIONS, "out_dir", "seed")
                if getattr(args, o) is not None
            ]
            ignored += ["--from"] if args.base else []
            ignored += ["--progress-json"] if args.progress_json else []
            ignored += ["--resume CHECKPOINT"] if args.resume not in (None, SHIPPED) else []
            ignored += ["--device"] if args.device != "cpu" else []
        if ignored:
            where = "with --data" if args.data else "on its own corpus (without --data)"
            raise MusicgenError(
                f"{', '.join(ignored)}: not for `musicgen train {args.model}` {where}; {args.model} takes "
                "--name, --minutes and --resume on its own corpus, and with --data also --from, --out-dir, "
                "--seed, --epochs, --lr, --patience, --threads, --device and --progress-json"
            )
        if not args.data:
            return _shipped_recipe(args)
    elif args.corpus and args.data:
        raise MusicgenError("--corpus and --data: give one of them")
    if args.base and not args.data:
        from musicgen_app.errors import DatasetError

        raise DatasetError("--from MODEL fine-tunes on your music: give it with --data NAME|DIR")
    return _train(args)


def _shipped_recipe(args: argparse.Namespace) -> int:
    """`musicgen train FAMILY` without --data: the shipped model's recipe on its own corpus mix."""
    from musicgen_app.ml.families.builtin import train_shipped_recipe
    from musicgen_app.ml.families.evaluate import evaluate_family, format_family_report

    name = args.name or args.model
    minutes = _given(args, "minutes", DEFAULT_MINUTES)
    card = train_shipped_recipe(args.model, minutes=minutes, name=name, resume=bool(args.resume))
    print(f"wrote models/{card['name']}.safetensors and .json")
    if not args.no_evaluate:
        print(format_family_report(evaluate_family(card["name"], update_card=True)))
    return 0


def _train(args: argparse.Namespace) -> int:
    """`musicgen train FAMILY --data NAME|DIR` (or melody-lstm on a corpus): the family's network
    trained by the one loop, fine-tuned from ``--from``, resumed with ``--resume``; one rank of a
    DistributedDataParallel job under torchrun (the main rank builds the data first, then the
    others read it)."""
    from pathlib import Path

    from musicgen_app.core import paths
    from musicgen_app.ml.family import TrainData, TrainRun, load_train_data
    from musicgen_app.ml.registry import get_family
    from musicgen_app.ml.training import dist_context

    family = get_family(args.model)
    ctx = dist_context(args.device)
    emit = _json_lines if args.progress_json and ctx.is_main else None
    spec = args.data or ""
    if emit is not None and spec and ctx.world == 1:
        spec = _build_folder(spec, emit)  # (under torchrun, the main rank builds it below)

    def data(progress: bool) -> TrainData:
        if spec:
            return load_train_data(spec, progress=progress, pieces=family.uses_pieces)
        from musicgen_app.ml import data as data_mod

        corpus = args.corpus or "essen"
        return TrainData(corpus, data_mod.load_or_build(corpus, progress=progress), {})

    show = emit is None and ctx.is_main
    if ctx.is_main:
        train_data = data(show)
    ctx.barrier()
    if not ctx.is_main:
        train_data = data(False)
    name = args.name or args.model
    out = Path(args.out_dir) if args.out_dir else paths.models_dir()
    resume = args.resume not in (None, SHIPPED)
    options = {v: getattr(args, k) for k, v in MELODY_OPTIONS.items() if getattr(args, k) is not None}
    if args.no_bar_conditioning:
        options["bar_conditioning"] = False
    if args.limit_tunes:
        options["limit_tunes"] = args.limit_tunes
    loop = {v: getattr(args, k) for k, v in LOOP_OPTIONS.items() if getattr(args, k) is not None}
    run = TrainRun(
        name=name,
        out_dir=out,
        minutes=_given(args, "minutes", DEFAULT_MINUTES),
        seed=_given(args, "seed", 0),
        resume=args.resume is not None,  # bare: from the checkpoint this run writes (out_dir/name)
        resume_from=str(args.resume) if resume else "",
        base=_model_path(args.base) if args.base else "",
        progress=show,
        loop={**loop, "device": args.device},
        options=options,
        on_event=emit,
    )
    if run.resume:  # a run killed while writing its checkpoint resumes from the one its card shows
        from musicgen_app.ml.checkpoint import finish_interrupted_save

        if ctx.is_main:
            finish_interrupted_save(run.resume_path)
        ctx.barrier()
    if run.resume and not run.resume_path.is_file():
        from musicgen_app.errors import CheckpointError

        raise CheckpointError(f"--resume: no checkpoint at {run.resume_path} to continue from")
    card = family.train(train_data, run)
    if not ctx.is_main:
        return 0  # under torchrun, the main rank reports and evaluates
    training = card.get("training", {})
    if emit is not None:
        emit(
            {
                "event": "done",
                "path": str(run.weights),
                "best_epoch": training.get("best_epoch"),
                "best_val_nll": training.get("best_valid_nll"),
                "stopped": training.get("stopped"),
            }
        )
        return 0
    metrics = ", ".join(f"{k} {v}" for k, v in card.get("metrics", {}).items())
    print(
        f"wrote {run.weights} and {run.weights.with_suffix('.json')} ({metrics}; {training.get('stopped')})"
    )
    if args.model == "melody-lstm" and not args.no_evaluate and not args.data:
        from musicgen_app.ml.evaluate import evaluate_model, format_report

        print(format_report(evaluate_model(str(run.weights), update_card=True)))
    elif args.model == "melody-lstm" and not args.no_evaluate:
        print("(the test-set evaluation reads the corpora; skipped for --data)")
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
