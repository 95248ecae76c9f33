"""`musicgen audio ...`: the raw-audio side (paper 002's style-transfer autoencoder).

* ``audio dataset build|info [--pieces N] [--sample-rate HZ]``: render chorales and Essen melodies
  through FluidSynth on piano, guitar, strings and organ (mono), cached out of git;
* ``audio train [--layout hilbert|linear] [--minutes M] [--name NAME]``: train the autoencoder on
  the piano renders of the training pieces;
* ``audio evaluate [--model NAME]``: log-spectral distance to the piano render, before and after
  restyling the held-out pieces' other renders (written into the model card with ``--write-card``);
* ``audio restyle IN.wav -o OUT.wav [--to piano] [--model NAME]``: turn a recording toward piano;
* ``audio wavenet train|evaluate``, ``audio continue SEED -o OUT.wav``: paper 004's raw-audio
  WaveNet (:mod:`.audio_wavenet_cmd`, :mod:`.audio_continue_cmd`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from musicgen_app.cli import argtypes as at

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "hilbert-ae"
LAYOUT_CHOICES = ("hilbert", "linear")
TARGET_CHOICES = ("piano",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen audio`."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    ds = sub.add_parser("dataset", help="build or describe the rendered audio dataset")
    ds.add_argument("what", choices=("build", "info"), help="build (or rebuild) the cache, or describe it")
    ds.add_argument(
        "--pieces",
        type=at.int_range(2, 2000),
        default=200,
        metavar="N",
        help="pieces to render, half chorales and half Essen melodies, 2 to 2000 (default 200)",
    )
    ds.add_argument(
        "--sample-rate",
        type=at.int_choice((8000, 16000)),
        default=16000,
        metavar="HZ",
        help="8000 or 16000 (default 16000)",
    )
    ds.add_argument("--json", action="store_true", help="print the statistics as JSON")

    tr = sub.add_parser("train", help="train the style autoencoder on piano renders")
    tr.add_argument("--layout", choices=LAYOUT_CHOICES, default="hilbert", help="audio -> picture layout")
    tr.add_argument(
        "--minutes",
        type=at.finite_float(0.05, 600.0),
        default=25.0,
        metavar="M",
        help="wall-clock training time, 0.05 to 600 (default 25)",
    )
    tr.add_argument(
        "--name", type=at.checkpoint_name, default=None, help="checkpoint name (default: LAYOUT-ae)"
    )
    tr.add_argument(
        "--threads", type=at.int_range(1, 256), default=1, metavar="N", help="torch threads (default 1)"
    )
    tr.add_argument("--seed", type=at.seed, default=2002, help="random seed (default 2002)")
    tr.add_argument(
        "--resume", action="store_true", help="go on from the saved checkpoint of that name (another run)"
    )

    ev = sub.add_parser("evaluate", help="log-spectral distance of restyled held-out renders to piano")
    ev.add_argument("--model", type=at.model_name, action="append", default=None, help="model (repeatable)")
    ev.add_argument(
        "--limit", type=at.int_range(1, 10000), default=None, metavar="N", help="only N held-out pieces"
    )
    ev.add_argument("--write-card", action="store_true", help="store the figures in each model's card")
    ev.add_argument("--json", action="store_true", help="print the figures as JSON")
    ev.add_argument("--readme", action="store_true", help="write the figures into README.md's table")

    rs = sub.add_parser("restyle", help="turn a WAV recording toward piano")
    rs.add_argument(
        "input", metavar="IN.wav", type=at.input_file((".wav",), "WAV file"), help="the recording"
    )
    rs.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.wav",
        type=at.output_file((".wav",), "WAV file"),
        help="the WAV file to write (mono, the model's sample rate)",
    )
    rs.add_argument("--to", choices=TARGET_CHOICES, default="piano", help="the target instrument")
    rs.add_argument(
        "--model", type=at.model_name, default=DEFAULT_MODEL, help=f"the model (default {DEFAULT_MODEL})"
    )
    for action, module, text in _MORE:
        _module(module).add_arguments(sub.add_parser(action, help=text))


# raw-audio WaveNet (paper 004): action -> (module with add_arguments/run, help)
_MORE = (
    ("wavenet", "audio_wavenet_cmd", "train or evaluate the raw-audio WaveNet (paper 004)"),
    ("continue", "audio_continue_cmd", "continue a MIDI or WAV sketch as raw audio (paper 004's WaveNet)"),
)


def _module(name: str):
    import importlib

    return importlib.import_module(f"musicgen_app.cli.{name}")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen action."""
    for action, module, _text in _MORE:
        if args.action == action:
            return int(_module(module).run(args))
    return {"dataset": _dataset, "train": _train, "evaluate": _evaluate, "restyle": _restyle}[args.action](
        args
    )


def fluidsynth_renderer(sample_rate: int):
    """``render(song) -> mono float32``: the app's FluidSynth render, channels averaged, short tail."""
    from musicgen_app.playback.audio_file import to_mono
    from musicgen_app.playback.render import render_song

    def render(song):
        return to_mono(render_song(song, sample_rate=sample_rate, tail_s=0.5))

    return render


def _dataset(args: argparse.Namespace) -> int:
    import json

    from musicgen_app.ml.audio import dataset as ads

    if args.what == "build":
        from tqdm import tqdm

        bar = tqdm(
            total=args.pieces * len(ads.INSTRUMENTS), desc="rendering", unit="render", disable=args.json
        )

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        ds = ads.build_audio_dataset(
            fluidsynth_renderer(args.sample_rate),
            pieces=args.pieces,
            sample_rate=args.sample_rate,
            progress=progress,
        )
        bar.close()
    else:
        ds = ads.load_audio_dataset(args.sample_rate)
    info = ds.stats()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(
            f"{info['pieces']} pieces ({info['by_source']}), {info['seconds_per_instrument']} s each on "
            f"{', '.join(info['instruments'])}, {info['sample_rate']} Hz mono, at {info['path']}"
        )
        print(f"  split by piece: {info['split']}")
    return 0


def _train(args: argparse.Namespace) -> int:
    import torch

    from musicgen_app.errors import CheckpointError
    from musicgen_app.ml.audio import dataset as ads
    from musicgen_app.ml.audio import restyle as rs

    torch.set_num_threads(args.threads)
    ds = ads.load_audio_dataset()
    train = [ds.audio("piano", i) for i in ds.split("train")]
    val = [ds.audio("piano", i) for i in ds.split("val")]
    config = rs.RestyleConfig(layout=args.layout, sample_rate=ds.sample_rate)
    name = args.name or f"{args.layout}-ae"
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
    )
    runs.append({"steps": report.steps, "seconds": report.seconds, "best_val_mse": report.best_val_mse})
    card = rs.new_card(config, name)
    card["data"] = {
        "dataset": "Bach chorales + Essen melodies rendered on GM piano by FluidSynth (TimGM6mb)",
        **{k: v for k, v in ds.stats().items() if k != "path"},
        "trained_on": "piano renders of the train pieces only",
    }
    card["training"] = {
        "steps": sum(r["steps"] for r in runs),
        "seconds": round(sum(r["seconds"] for r in runs), 1),
        "runs": runs,
        "batch": 8,
        "optimizer": "Adam lr 1e-3 (paper 002), gradient norm clipped at 1, best validation weights kept",
        "loss": "MSE on the 0..1 pictures",
        "best_val_mse": report.best_val_mse,
        "history": report.history,  # the last run's (step, train mse, validation mse)
        "threads": args.threads,
        "seed": args.seed,
    }
    path = rs.save_restyler(net, card, name)
    print(f"saved {path} after {report.steps} steps ({report.seconds:.0f} s), val mse {report.best_val_mse}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    import torch

    from musicgen_app.ml.audio import dataset as ads
    from musicgen_app.ml.audio import restyle as rs
    from musicgen_app.ml.registry import load_model

    torch.set_num_threads(1)
    names = args.model or [DEFAULT_MODEL, "linear-ae"]
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
        "  | model | layout | held-out renders | restyled closer to piano | LSD input -> restyled (dB) | "
        "closer: guitar / strings / organ | piano -> piano LSD | 0-4 kHz only: closer, LSD | training |",
        "  |---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        by = r["by_instrument"]
        tr = cards[name].get("training", {})
        rows.append(
            f"  | `{name}` | {r['layout']} | {r['pieces']} pieces x {len(by)} = {r['comparisons']} | "
            f"{r['closer_fraction']:.0%} | {r['lsd_input_mean']:.2f} -> {r['lsd_restyled_mean']:.2f} | "
            + " / ".join(f"{by[k]['closer_fraction']:.0%}" for k in by)
            + f" | {r['lsd_piano_reconstruction_mean']:.2f} | {r['low_band_closer_fraction']:.0%}, "
            f"{r['low_band_lsd_input_mean']:.2f} -> {r['low_band_lsd_restyled_mean']:.2f} | "
            f"{tr.get('steps', '?')} steps, {tr.get('seconds', 0) / 60:.0f} min |"
        )
    return "\n".join(rows) + "\n"


def _restyle(args: argparse.Namespace) -> int:
    from musicgen_app.playback.audio_file import read_wav, resample, to_mono

    samples, rate = read_wav(args.input)  # a file that is not a WAV is refused before torch loads
    from musicgen_app.ml.audio import restyle as rs
    from musicgen_app.ml.registry import load_model
    from musicgen_app.playback.render import write_wav

    model = rs.as_restyler(load_model(args.model), args.model)
    if model.target != args.to:
        from musicgen_app.errors import GenerationError

        raise GenerationError(f"model {model.name} turns sound toward {model.target}, not {args.to}")
    mono = resample(to_mono(samples), rate, model.sample_rate)
    out = model.restyle(mono)
    write_wav(out, args.output, model.sample_rate)
    print(
        f"wrote {args.output} ({len(out) / model.sample_rate:.2f} s, {model.sample_rate} Hz mono, "
        f"toward {model.target} by {model.name})"
    )
    return 0
