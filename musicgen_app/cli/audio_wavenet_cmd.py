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
    ev.add_argument(
        "--sketches",
        type=at.int_range(0, 100),
        default=20,
        metavar="N",
        help="held-out sketches to continue and transcribe (default 20; 0 skips)",
    )
    ev.add_argument(
        "--seconds",
        type=at.finite_float(0.5, 10.0),
        default=2.0,
        metavar="S",
        help="seconds of each continuation (default 2)",
    )
    ev.add_argument(
        "--temperature",
        type=at.finite_float(0.05, 2.0),
        default=1.0,
        metavar="T",
        help="sampling temperature of the continuations (default 1)",
    )
    ev.add_argument("--skip-nll", action="store_true", help="only the continuations (no NLL, no baseline)")


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
    res: dict = {"unit": "bits per sample (mu-law, 256 classes)"}
    if not args.skip_nll:
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
        res.update(
            {
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
        )
    else:  # keep the figures measured before
        res.update({k: v for k, v in model.card.get("metrics", {}).items() if k != "continuations"})
    if args.sketches:
        res["continuations"] = continuation_report(
            model, ds, args.sketches, args.seconds, args.temperature, log=lambda t: print(t, flush=True)
        )
    if args.write_card:
        from musicgen_app.ml.audio.restyle import store_metrics

        store_metrics(model, res)  # type: ignore[arg-type]
    if args.readme:
        from musicgen_app.cli.readme_block import write_block

        print(f"wrote {write_block(README_BLOCK, readme_text(res, model.card), after=README_AFTER)}")
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        if "test_nll" in res:
            g = res["generation"]
            print(
                f"{model.name}: test NLL {res['test_nll']:.3f} bits/sample vs "
                f"{res['baseline_nll']:.3f} ({res['baseline']}) over {res['test_samples']} samples of "
                f"{res['test_pieces']} held-out pieces; real-time factor {g['real_time_factor']:.2f} "
                f"(load {g['cpu_load_1min']:.1f})",
                file=sys.stdout,
            )
        if "continuations" in res:
            print(continuation_line(res["continuations"]))
    return 0


SKETCH_SECONDS = 6.0


def continuation_report(
    model: object, ds: object, count: int, seconds: float, temperature: float, log: object = None
) -> dict:
    """Continue ``count`` held-out sketches (their first 6 s rendered on piano) by ``seconds`` each,
    transcribe the continuations (basic-pitch) and the pieces' real next ``seconds`` alike, and
    pool notes per second and the share of notes in the sketch's key."""
    import time

    import numpy as np

    from musicgen_app.ml.audio import raw_wavenet as rw
    from musicgen_app.ml.audio.audio_file import Audio
    from musicgen_app.ml.audio.transcribe import transcribe_audio
    from musicgen_app.playback.render import render_song

    m = rw.as_audio_wavenet(model, "model")
    cfg, sr = m.network.cfg, m.sample_rate

    def render(song: object, rate: int) -> np.ndarray:
        return render_song(song, sample_rate=rate, tail_s=0.0)  # type: ignore[arg-type]

    def heard(x: np.ndarray) -> list[int]:
        return [e.pitch for e in transcribe_audio(Audio(np.asarray(x, np.float32)[:, None], sr))]

    rows, made, real = [], [], []
    n = round(seconds * sr)
    t0, gen_wall = time.perf_counter(), 0.0
    for k, (pid, sketch, piece) in enumerate(rw.held_out_sketches(ds, count, SKETCH_SECONDS)):
        key = rw.key_of_song(sketch)
        audio, roll, hold = rw.sketch_seed(sketch, cfg, render)
        g0 = time.perf_counter()
        out = m.continue_audio(audio, roll, n, hold=hold, seed_rng=k, temperature=temperature)
        gen_wall += time.perf_counter() - g0
        ref = rw.sketch_seed(rw.cut_song(piece, SKETCH_SECONDS + seconds), cfg, render)[0][len(audio) :]
        p_out, p_ref = heard(out), heard(ref[:n])
        made += [(p, key) for p in p_out]
        real += [(p, key) for p in p_ref]
        row = {"id": pid, "key": key.name, "model": rw.pitch_stats(p_out, key, seconds)}
        row["real"] = rw.pitch_stats(p_ref, key, seconds)
        rows.append(row)
        if callable(log):
            log(f"{k + 1}/{count} {pid} ({key.name}): model {row['model']} real {row['real']}")

    def pooled(pairs: list) -> float | None:
        return round(sum(p % 12 in key.diatonic_pcs() for p, key in pairs) / len(pairs), 4) if pairs else None

    total = count * seconds
    return {
        "sketches": count,
        "sketch_seconds": SKETCH_SECONDS,
        "seconds_each": seconds,
        "temperature": temperature,
        "held_out": "the dataset's test pieces, then chorales and Essen tunes it never rendered",
        "in_key_definition": "pitch class among the 7 diatonic ones of the sketch's key "
        "(Krumhansl-Schmuckler, duration-weighted); chance 7/12 = 0.583",
        "model_notes": len(made),
        "model_notes_per_second": round(len(made) / total, 3),
        "model_in_key": pooled(made),
        "real_notes": len(real),
        "real_notes_per_second": round(len(real) / total, 3),
        "real_in_key": pooled(real),
        "generation_real_time_factor": round(gen_wall / total, 3),
        "cpu_load_1min": round(os.getloadavg()[0], 2),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "pieces": rows,
    }


def continuation_line(c: dict) -> str:
    """One line of the continuation figures."""
    return (
        f"continuations of {c['sketches']} held-out sketches ({c['seconds_each']:g} s each, transcribed): "
        f"{c['model_notes_per_second']:.2f} notes/s, {100 * (c['model_in_key'] or 0):.0f}% in the sketch's "
        f"key; the pieces' real continuations: {c['real_notes_per_second']:.2f} notes/s, "
        f"{100 * (c['real_in_key'] or 0):.0f}% in key"
    )


def readme_text(res: dict, card: dict) -> str:
    """The README table of `audio wavenet evaluate --readme` (and the continuations' figures)."""
    tr, c = card.get("training", {}), card.get("config", {})
    text = ""
    if "test_nll" in res:
        g = res["generation"]
        text += (
            "  | model | test NLL (bits/sample) | baseline | baseline NLL | real-time factor | training |\n"
            "  |---|---|---|---|---|---|\n"
            f"  | `{card.get('name')}` ({c.get('sample_rate')} Hz, "
            f"receptive field {c.get('receptive_field')} "
            f"samples) | {res['test_nll']:.3f} | {res['baseline']} | {res['baseline_nll']:.3f} | "
            f"{g['real_time_factor']:.2f} (1 thread, load {g['cpu_load_1min']:.1f}) | "
            f"{tr.get('steps', '?')} steps, {tr.get('seconds', 0) / 60:.0f} min |\n\n"
            f"  Test: {res['test_samples']:,} samples of {res['test_pieces']} held-out pieces; the same test "
            f"audio with an empty piano roll (no conditioning): {res['test_nll_empty_piano_roll']:.3f} "
            "bits/sample.\n"
        )
    k = res.get("continuations")
    if k:
        text += (
            f"\n  Continuations (`--sketches {k['sketches']}`): {k['sketches']} held-out sketches (the first "
            f"{k['sketch_seconds']:g} s of pieces no training audio came from) rendered on piano and "
            f"continued {k['seconds_each']:g} s each (temperature {k['temperature']:g}, condition: the "
            "sketch's last bar looped), then transcribed by basic-pitch, beside the pieces' real next "
            f"{k['seconds_each']:g} s transcribed alike:\n\n"
            "  | audio | notes | notes per second | in the sketch's key |\n"
            "  |---|---|---|---|\n"
            f"  | WaveNet continuations | {k['model_notes']} | {k['model_notes_per_second']:.2f} | "
            f"{_share(k['model_in_key'])} |\n"
            f"  | the pieces' real continuations | {k['real_notes']} | {k['real_notes_per_second']:.2f} | "
            f"{_share(k['real_in_key'])} |\n\n"
            f"  In key: {k['in_key_definition']}. Generation real-time factor "
            f"{k['generation_real_time_factor']:.2f} (1 thread, load {k['cpu_load_1min']:.1f}).\n"
        )
    return text


def _share(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"
