"""`musicgen audio wavenet train|evaluate`: paper 004's WaveNet on raw audio.

* ``train [--minutes M] [--name NAME]``: train on the piano renders of the rendered dataset's
  training pieces (8 kHz: `musicgen audio dataset build --sample-rate 8000`), conditioned on
  their piano rolls;
* ``evaluate [--model NAME] [--write-card] [--readme]``: test NLL in bits per sample against a
  mu-law n-gram fitted on the same training audio, and the real-time factor of fast generation.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from musicgen_app.cli import argtypes as at

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "audio-wavenet"
README_BLOCK = "audio-wavenet"
README_AFTER = "* *Paper 004's raw audio.*"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen audio wavenet`."""
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    tr = sub.add_parser("train", help="train on the 8 kHz piano renders")
    tr.add_argument(
        "--minutes",
        type=at.finite_float(0.05, 600.0),
        default=20.0,
        metavar="M",
        help="wall time (default 20)",
    )
    tr.add_argument("--name", type=at.checkpoint_name, default=DEFAULT_MODEL, help="checkpoint name")
    tr.add_argument("--seed", type=at.seed, default=4, help="random seed (default 4)")
    tr.add_argument(
        "--sample-rate", type=at.int_choice((8000, 16000)), default=8000, metavar="HZ", help="8000 or 16000"
    )
    ev = sub.add_parser("evaluate", help="test NLL (bits/sample) against the mu-law n-gram; real-time factor")
    ev.add_argument("--model", type=at.model_name, default=DEFAULT_MODEL, help="the model")
    ev.add_argument("--write-card", action="store_true", help="store the figures in the model card")
    ev.add_argument("--readme", action="store_true", help="write the figures into README.md")
    ev.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    """Train or evaluate."""
    return _train(args) if args.what == "train" else _evaluate(args)


def _train(args: argparse.Namespace) -> int:
    import torch

    from musicgen_app.ml.audio import dataset as ads
    from musicgen_app.ml.audio import raw_wavenet as rw

    torch.set_num_threads(1)
    ds = ads.load_audio_dataset(args.sample_rate)
    cfg = rw.AudioWaveNetConfig(sample_rate=ds.sample_rate)
    songs = rw.piece_songs(ds)
    train = rw.dataset_tracks(ds, cfg, "train", songs)
    val = rw.dataset_tracks(ds, cfg, "val", songs)
    net, rep = rw.train_audio_wavenet(
        cfg, train, val, seconds=args.minutes * 60, seed=args.seed, log=lambda s: print(s, flush=True)
    )
    card = rw.new_card(cfg, args.name)
    card["data"] = {
        "dataset": "Bach chorales + Essen melodies rendered on GM piano by FluidSynth (TimGM6mb)",
        **{k: v for k, v in ds.stats().items() if k != "path"},
        "trained_on": "piano renders of the train pieces, with the piano roll of their MIDI",
        "mu_law_classes": rw.CLASSES,
    }
    card["training"] = {
        "steps": rep.steps,
        "seconds": rep.seconds,
        "batch": "4 windows of 2,048 scored samples (after one receptive field of context)",
        "optimizer": "Adam lr 2e-3, gradient norm clipped at 1, best validation weights kept",
        "loss": "cross-entropy over the 256 mu-law classes",
        "best_val_bits_per_sample": rep.best_val_bits,
        "history": rep.history,
        "threads": 1,
        "seed": args.seed,
    }
    path = rw.save_audio_wavenet(net, card, args.name)
    print(f"saved {path} after {rep.steps} steps ({rep.seconds:.0f} s), val {rep.best_val_bits} bits/sample")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from musicgen_app.ml.audio import dataset as ads
    from musicgen_app.ml.audio import raw_wavenet as rw
    from musicgen_app.ml.registry import load_model

    torch.set_num_threads(1)
    model = rw.as_audio_wavenet(load_model(args.model), args.model)
    cfg = model.network.cfg
    ds = ads.load_audio_dataset(cfg.sample_rate)
    songs = rw.piece_songs(ds)
    tracks = {k: rw.dataset_tracks(ds, cfg, k, songs) for k in ("train", "val", "test")}
    wn_bits, n = rw.nll_bits(model.network, tracks["test"])
    # the same audio with an empty piano roll: what the conditioning is worth
    blind = [rw.Track(t.classes, np.zeros_like(t.roll)) for t in tracks["test"]]
    blind_bits, _ = rw.nll_bits(model.network, blind)
    baseline, choices = rw.fit_baseline(
        [t.classes for t in tracks["train"]], [t.classes for t in tracks["val"]]
    )
    base_bits = float(np.concatenate([baseline.bits(t.classes) for t in tracks["test"]]).mean())
    rtf = rw.real_time_factor(model, 1.0)
    load = os.getloadavg()[0]
    res = {
        "unit": "bits per sample (mu-law, 256 classes)",
        "test_pieces": len(tracks["test"]),
        "test_samples": n,
        "test_nll": round(wn_bits, 4),
        "test_nll_empty_piano_roll": round(blind_bits, 4),
        "baseline": f"mu-law {baseline.order}-gram, smoothing weight {baseline.beta:g} "
        "(order and weight chosen on validation)",
        "baseline_nll": round(base_bits, 4),
        "baseline_validation": choices,
        "generation": {**rtf, "cpu_load_1min": round(load, 2), "threads": 1},
    }
    if args.write_card:
        from musicgen_app.ml.audio.restyle import store_metrics

        store_metrics(model, res)  # type: ignore[arg-type]
    if args.readme:
        from musicgen_app.cli.readme_block import write_block

        print(f"wrote {write_block(README_BLOCK, readme_text(res, model.card), after=README_AFTER)}")
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(
            f"{model.name}: test NLL {res['test_nll']:.3f} bits/sample vs "
            f"{res['baseline_nll']:.3f} "
            f"({res['baseline']}) over {n} samples of {res['test_pieces']} held-out pieces; "
            f"real-time factor {rtf['real_time_factor']:.2f} (load {load:.1f})",
            file=sys.stdout,
        )
    return 0


def readme_text(res: dict, card: dict) -> str:
    """The README table of `audio wavenet evaluate --readme`."""
    tr, c, g = card.get("training", {}), card.get("config", {}), res["generation"]
    return (
        "  | model | test NLL (bits/sample) | baseline | baseline NLL | real-time factor | training |\n"
        "  |---|---|---|---|---|---|\n"
        f"  | `{card.get('name')}` ({c.get('sample_rate')} Hz, receptive field {c.get('receptive_field')} "
        f"samples) | {res['test_nll']:.3f} | {res['baseline']} | {res['baseline_nll']:.3f} | "
        f"{g['real_time_factor']:.2f} (1 thread, load {g['cpu_load_1min']:.1f}) | "
        f"{tr.get('steps', '?')} steps, {tr.get('seconds', 0) / 60:.0f} min |\n\n"
        f"  Test: {res['test_samples']:,} samples of {res['test_pieces']} held-out pieces; the same test "
        f"audio with an empty piano roll (no conditioning): {res['test_nll_empty_piano_roll']:.3f} "
        "bits/sample.\n"
    )
