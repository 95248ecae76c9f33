"""`musicgen audio evaluate [--model NAME]... [--write-card] [--readme]`: the held-out pieces' guitar,
strings and organ renders restyled, and their log-spectral distance to the piano render of the same
piece, before and after (:func:`musicgen_app.ml.audio.restyle.evaluate_restyler`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from musicgen_app.cli import argtypes as at

logger = logging.getLogger(__name__)

DEFAULT_MODELS = ["hilbert-ae", "linear-ae", "hilbert-ae-res", "linear-ae-res"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen audio evaluate`."""
    parser.add_argument(
        "--model", type=at.model_name, action="append", default=None, help="model (repeatable)"
    )
    parser.add_argument(
        "--limit", type=at.int_range(1, 10000), default=None, metavar="N", help="only N held-out pieces"
    )
    parser.add_argument("--write-card", action="store_true", help="store the figures in each model's card")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--readme", action="store_true", help="write the figures into README.md's table")


def run(args: argparse.Namespace) -> int:
    """Evaluate each model on the held-out pieces; optionally store the figures."""
    import json

    import torch

    from musicgen_app.ml.audio import dataset as ads
    from musicgen_app.ml.audio import restyle as rs
    from musicgen_app.ml.registry import load_model

    torch.set_num_threads(1)
    names = args.model or DEFAULT_MODELS
    results = {}
    for name in names:
        model = rs.as_restyler(load_model(name), name)
        ds = ads.load_audio_dataset(model.sample_rate)
        res = rs.evaluate_restyler(model, ds, limit=args.limit, log=lambda s: print(s, file=sys.stderr))
        results[model.name] = res
        if args.write_card:
            rs.store_metrics(model, res)
    if args.readme:
        from musicgen_app.cli.readme_block import write_block

        cards = {name: rs.as_restyler(load_model(name), name).card for name in results}
        print(f"wrote {write_block(README_BLOCK, readme_table(results, cards), after=README_AFTER)}")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, res in results.items():
            print(
                f"{name}: restyled closer to the piano render on {res['closer_fraction']:.0%} of "
                f"{res['comparisons']} held-out renders; log-spectral distance "
                f"{res['lsd_input_mean']:.2f} dB (input) -> {res['lsd_restyled_mean']:.2f} dB (restyled)"
            )
    return 0


README_BLOCK = "audio-restyle"
README_AFTER = "* *Paper 004's raw audio.*"


def readme_table(results: dict[str, dict], cards: dict[str, dict]) -> str:
    """The README table of `audio evaluate --readme`: one row per model."""
    rows = [
        "  | model | layout, variant | held-out renders | restyled closer to piano | "
        "LSD input -> restyled (dB) | closer: guitar / strings / organ | piano -> piano LSD | "
        "0-4 kHz only: closer, LSD | training |",
        "  |---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        by = r["by_instrument"]
        tr = cards[name].get("training", {})
        rows.append(
            f"  | `{name}` | {r['layout']}, {r.get('variant', 'paper')} | "
            f"{r['pieces']} pieces x {len(by)} = {r['comparisons']} | "
            f"{r['closer_fraction']:.0%} | {r['lsd_input_mean']:.2f} -> {r['lsd_restyled_mean']:.2f} | "
            + " / ".join(f"{by[k]['closer_fraction']:.0%}" for k in by)
            + f" | {r['lsd_piano_reconstruction_mean']:.2f} | {r['low_band_closer_fraction']:.0%}, "
            f"{r['low_band_lsd_input_mean']:.2f} -> {r['low_band_lsd_restyled_mean']:.2f} | "
            f"{_training_text(tr)} |"
        )
    return "\n".join(rows) + "\n"


def _training_text(tr: dict) -> str:
    """Steps by loss (runs without one were MSE; denoising runs, on altered piano, and paired runs,
    on other instruments' renders of the train pieces too, apart) and minutes:
    ``MSE 1060 + LSD 140 + LSD denoising 300 + LSD denoising + paired 50% 900 steps, 140 min``."""
    runs = tr.get("runs") or [{"steps": tr.get("steps", 0)}]
    by: dict[str, int] = {}
    for r in runs:
        loss = (
            str(r.get("loss", "mse")).upper()
            + (" denoising" if r.get("augment") else "")
            + (f" + paired {r['paired']:.0%}" if r.get("paired") else "")
        )
        by[loss] = by.get(loss, 0) + int(r.get("steps", 0))
    return " + ".join(f"{k} {v}" for k, v in by.items()) + f" steps, {tr.get('seconds', 0) / 60:.0f} min"
