"""`musicgen models [--json]`: the available models with their papers, data and metrics."""

from __future__ import annotations

import argparse
import json
import logging

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen models`."""
    parser.add_argument("--json", action="store_true", help="print a JSON list")


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def run(args: argparse.Namespace) -> int:
    """List every model card in the models directory."""
    from musicgen_app.ml.registry import list_models

    models = list_models()
    if args.json:
        print(json.dumps([m.to_json() for m in models], indent=2))
        return 0
    if not models:
        print("no models found")
        return 0
    for m in models:
        metrics = m.metrics or {}
        shown = ", ".join(
            f"{k} {_fmt(metrics[k])}" for k in ("test_nll", "baseline_nll", "test_accuracy") if k in metrics
        )
        print(f"{m.name}  (paper {m.seed_paper})  {m.architecture}")
        print(f"    data: {m.dataset}")
        if shown:
            print(f"    {shown}")
        systems = (metrics.get("chorale_continuations") or {}).get("systems", {})
        if m.name in systems and "real" in systems:  # a model without a likelihood (the GAN)
            own, real = systems[m.name], systems["real"]
            print(
                f"    no likelihood; test chorale continuations: in key {_fmt(own['in_key'])} "
                f"(real {_fmt(real['in_key'])}), notes per bar {_fmt(own['density'])} "
                f"(real {_fmt(real['density'])})"
            )
    return 0
