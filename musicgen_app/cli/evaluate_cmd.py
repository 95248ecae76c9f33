"""`musicgen evaluate NAME [--json]`: held-out NLL, accuracy, baseline and continuation statistics."""

from __future__ import annotations

import argparse
import json
import logging

from musicgen_app.cli.argtypes import model_name, positive_int

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen evaluate`."""
    parser.add_argument(
        "name", nargs="?", type=model_name, help="model name (see `musicgen models`) or checkpoint path"
    )
    parser.add_argument(
        "--all", action="store_true", help="evaluate every model, store the figures, write the README table"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--tunes",
        type=positive_int(100_000),
        default=60,
        help="test tunes to sample continuations of, at least 1 (default 60)",
    )
    parser.add_argument("--no-samples", action="store_true", help="skip the sampled-continuation statistics")
    parser.add_argument("--no-baseline", action="store_true", help="skip the n-gram baseline")
    parser.add_argument("--update-card", action="store_true", help="store the figures in the model's card")


def run(args: argparse.Namespace) -> int:
    """Evaluate on the test tunes of the model's own split."""
    if not args.name and not args.all:
        from musicgen_app.errors import MusicgenError

        raise MusicgenError("name a model to evaluate, or use --all")
    if args.all or (args.name and _is_family(args.name)):
        from musicgen_app.ml.families.evaluate import run_evaluate

        return run_evaluate(args)
    from musicgen_app.ml.evaluate import evaluate_model, format_report

    report = evaluate_model(
        args.name,
        update_card=args.update_card,
        n_tunes=args.tunes,
        with_baseline=not args.no_baseline,
        with_samples=not args.no_samples,
    )
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _is_family(name: str) -> bool:
    from musicgen_app.ml.checkpoint import read_card
    from musicgen_app.ml.families import is_family_card
    from musicgen_app.ml.registry import resolve

    card = read_card(resolve(name))
    return isinstance(card.get("architecture"), str) and is_family_card(card)
