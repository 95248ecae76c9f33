"""`musicgen models [--json] [--rehash]`: the available models with their papers, data and metrics.

Every checkpoint is verified as loading would (card, weights digest, tensors, NaN/inf); a refused
one is one line on stderr and the exit status is 2. ``--rehash`` (maintenance) writes each card's
weights record (sha256, tensor names, shapes and dtypes) from the weights beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen models`."""
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.add_argument(
        "--rehash",
        action="store_true",
        help="maintenance: write each card's weights digest and tensor list from its weights file",
    )


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def run(args: argparse.Namespace) -> int:
    """List every model card in the models directory, then the musician's own (Train on My Music)."""
    from musicgen_app.core import paths
    from musicgen_app.ml.registry import list_models, load_model

    if args.rehash:
        from musicgen_app.ml.checkpoint_verify import rehash_cards

        names = rehash_cards(paths.models_dir(), load=load_model)
        print(f"rehashed {len(names)} card(s): {', '.join(names) or 'all were up to date'}")
        return 0
    problems: list = []
    models = list_models(verify=True, problems=problems, task=None, user=True)
    for _name, exc in problems:
        print(f"error: {exc}", file=sys.stderr)
    status = 2 if problems else 0
    if args.json:
        print(json.dumps([m.to_json() for m in models], indent=2))
        return status
    if not models:
        print("no models found")
        return status
    for m in models:
        metrics = m.metrics or {}
        shown = ", ".join(
            f"{k} {_fmt(metrics[k])}" for k in ("test_nll", "baseline_nll", "test_accuracy") if k in metrics
        )
        config = (m.card.get("config") or {}) if m.card.get("task") == "restyle" else {}
        layout, variant = config.get("layout"), config.get("variant", "paper")
        shape = f"{m.architecture} ({layout} layout, {variant} variant)" if layout else m.architecture
        paper = f"  (paper {m.seed_paper})" if m.seed_paper else ""
        print(f"{m.name}{paper}  {shape}")
        print(f"    data: {m.dataset}")
        if shown:
            print(f"    {shown}")
        if "closer_fraction" in metrics:  # an audio restyler (paper 002's autoencoder)
            print(
                f"    restyled closer to piano on {_fmt(metrics['closer_fraction'])} of held-out renders; "
                f"log-spectral distance {_fmt(metrics['lsd_input_mean'])} -> "
                f"{_fmt(metrics['lsd_restyled_mean'])} dB"
            )
        if "valid_frame_root_accuracy" in metrics:  # an accompaniment model or chord predictor
            print(f"    chord root right on {_fmt(metrics['valid_frame_root_accuracy'])} of valid frames")
        systems = (metrics.get("chorale_continuations") or {}).get("systems", {})
        if m.name in systems and "real" in systems:  # a model without a likelihood (the GAN)
            own, real = systems[m.name], systems["real"]
            print(
                f"    no likelihood; test chorale continuations: in key {_fmt(own['in_key'])} "
                f"(real {_fmt(real['in_key'])}), notes per bar {_fmt(own['density'])} "
                f"(real {_fmt(real['density'])})"
            )
    return status
