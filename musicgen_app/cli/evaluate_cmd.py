"""`musicgen evaluate NAME [--json]`: held-out NLL, accuracy, baseline and continuation statistics.

`musicgen evaluate NAME --judge [--kinds ...] [--sketches N]`: the same judge for one model (its rows only).

`musicgen evaluate --all [--kinds folk,pop,chorale] [--sketches N] [--readme]`: every shipped model
continues held-out sketches of every kind and :mod:`musicgen_app.ml.judge` judges the takes; the
table (judge pass rate, notes per bar and in key against the real continuations, the classifier
two-sample accuracy, NLL against the n-gram, first note and file size from the model's card) is
printed and, with ``--readme``, written into README.md. ``--all --metrics`` instead recomputes
every model's card figures (NLL, n-gram, speed) and the comparison table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from musicgen_app.cli.argtypes import finite_float, model_name, positive_int

logger = logging.getLogger(__name__)

README_BLOCK = "model-judge"
KIND_NAMES = {
    "folk": "folk (Essen)",
    "pop": "pop (POP909)",
    "chorale": "chorale soprano",
    "chorale4": "chorale 4-part",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen evaluate`."""
    parser.add_argument(
        "name", nargs="?", type=model_name, help="model name (see `musicgen models`) or checkpoint path"
    )
    parser.add_argument(
        "--all", action="store_true", help="judge every model's continuations of held-out sketches"
    )
    parser.add_argument(
        "--judge", action="store_true", help="with NAME: judge its takes on held-out sketches (as --all)"
    )
    parser.add_argument("--kinds", default="folk,pop,chorale",
                        help="with --all: kinds of sketch, comma-separated: folk, pop, chorale "
                        "(soprano lines, and four-part openings for the polyphonic models)")  # fmt: skip
    parser.add_argument(
        "--sketches", type=positive_int(100_000), default=30, help="with --all: sketches per kind (30)"
    )
    parser.add_argument(
        "--temperature",
        type=finite_float(0.0, 10.0, lo_open=True),
        default=0.9,
        help="with --all: sampling temperature",
    )
    parser.add_argument(
        "--temperatures",
        default=None,
        metavar="T1,T2,...",
        help="with --all: judge at each of these temperatures and print the pass rates side by side "
        "(with --readme: into their own README table)",
    )
    parser.add_argument("--pop-data", default="pop909",
                        help="with --all: the POP909 dataset's name (`musicgen dataset build --midi DIR "
                        "--name pop909`)")  # fmt: skip
    parser.add_argument("--readme", action="store_true", help="with --all: write the table into README.md")
    parser.add_argument("--metrics", action="store_true",
                        help="with --all: recompute the cards' figures and the comparison table")  # fmt: skip
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
    parser.add_argument(
        "--tune-cache",
        action="store_true",
        help="char-lstm, chord-lstm: choose the continuous cache over the piece's own past on the "
        "validation split and store it in the card (the model plays with it)",
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate on the test tunes of the model's own split, or judge every model (``--all``)."""
    from musicgen_app.errors import MusicgenError

    if not args.name and not args.all:
        raise MusicgenError("name a model to evaluate, or use --all")
    if args.tune_cache:
        from musicgen_app.ml.families.evaluate import tune_model_cache

        if not args.name or args.all:
            raise MusicgenError("--tune-cache needs one model's name")
        cache = tune_model_cache(args.name)
        line = (
            f"{args.name}: cache theta {cache['theta']}, lambda {cache['lambda']}, bias {cache['bias']}, "
            f"window {cache['window'] or 'the whole piece'}; validation NLL "
            f"{cache['val_nll_without_cache']} -> {cache['val_nll_with_cache']} (stored in the card)"
        )
        print(json.dumps(cache, indent=2) if args.json else line)
        return 0
    if (args.all and not args.metrics) or args.judge:
        return run_judge(args)
    if args.all:
        return run_metrics(args)
    if _is_family(args.name):
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


def run_metrics(args: argparse.Namespace) -> int:
    """`musicgen evaluate --all --metrics`: every model's figures against its n-gram; the comparison
    table is printed and written into README.md."""
    from musicgen_app.cli.readme_block import write_block
    from musicgen_app.ml.families.evaluate import evaluate_all
    from musicgen_app.ml.ngram import GOAL_BELOW, PATIENCE

    started = time.perf_counter()
    figures = evaluate_all(n_tunes=args.tunes, with_samples=not args.no_samples, update_card=args.update_card)
    table = comparison_table(metrics=figures)
    seconds = time.perf_counter() - started
    print()
    print(table)
    command = "musicgen evaluate --all --metrics" + (
        " --no-samples" if args.no_samples else f" --tunes {args.tunes}"
    )
    body = (
        f"`{command}` ({seconds:.0f} s on this machine, load average {os.getloadavg()[0]:.1f}: the speed "
        "columns slow down with the load). Each model's NLL on "
        "its own test data, in its own unit, against an interpolated Kneser-Ney n-gram over the same "
        "tokens (`musicgen_app/ml/ngram.py`), fitted on the model's training data, its order chosen on "
        f"the validation data (orders 1, 2, ... until {PATIENCE} orders in a row bring no improvement), "
        f"scored on the same test data; the goal is a model at least {GOAL_BELOW:.0%} below it.\n\n"
        f"{table}"
    )
    path = write_block(COMPARISON_BLOCK, body, after="<!-- model-judge:begin -->")
    print(f"\nwrote the comparison table into {path}")
    return 0


def comparison_table(models_dir: str | Path | None = None, metrics: dict[str, dict] | None = None) -> str:
    """One Markdown table of every shipped model, from ``metrics`` by name or else their cards."""
    from musicgen_app.ml.ngram import GOAL_BELOW
    from musicgen_app.ml.registry import list_models

    rows = [
        "| model | paper | data | test NLL (unit) | n-gram (order chosen on validation) "
        f"| below the n-gram (goal {GOAL_BELOW:.0%}) | accuracy "
        "| continuations: in key / notes per bar / repeats | tokens/s | first note | file |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for info in sorted(list_models(models_dir), key=lambda i: (str(i.seed_paper), i.name)):
        m = {**(info.metrics or {}), **(metrics or {}).get(info.name, {})}  # the card fills what was skipped
        c = (m.get("continuations") or {}).get("model", {})
        unit = m.get("unit", "nats/step")
        nll = f"{_fmt(m.get('test_nll'))} ({unit})" if m.get("test_nll") is not None else "–"
        if m.get("test_nll_without_cache") is not None:  # the continuous cache over the piece's own past
            nll += f", {_fmt(m['test_nll_without_cache'])} without its cache"
        if m.get("test_nll_with_cache_off_when_playing") is not None:
            nll += f"; {_fmt(m['test_nll_with_cache_off_when_playing'])} with its cache (off when it plays)"
        size = info.path.stat().st_size / 1e6 if info.path.exists() else float("nan")
        data = info.card.get("data", {})
        data_name = data.get("dataset") if isinstance(data, dict) else str(data)
        cont = " / ".join(
            _fmt(c.get(k), f) for k, f in (("in_key", ".2f"), ("density", ".1f"), ("repetition", ".2f"))
        )
        speed_cols = f"{_fmt(m.get('tokens_per_s'), '.0f')} | {_fmt(m.get('first_note_ms'), '.1f')} ms"
        order = f" ({m['baseline_order']}-gram)" if m.get("baseline_order") else ""
        below = m.get("nll_below_baseline")
        verdict = "" if below is None else (" met" if below >= GOAL_BELOW else " **not met**")
        rows.append(
            f"| {info.name} | {info.seed_paper} | {data_name or '–'} | {nll} "
            f"| {_fmt(m.get('baseline_nll'))}{order} | {_fmt(below, '.1%')}{verdict} "
            f"| {_fmt(m.get('test_accuracy'), '.1%')} | {cont} | {speed_cols} | {size:.1f} MB |"
        )
    return "\n".join(rows)


COMPARISON_BLOCK = "model-comparison"


def _is_family(name: str) -> bool:
    from musicgen_app.ml.checkpoint import read_card
    from musicgen_app.ml.registry import is_family_card, resolve

    card = read_card(resolve(name))
    return is_family_card(card)


def parse_kinds(text: str) -> list[str]:
    """``folk,pop,chorale`` -> the judge's kinds (``chorale`` brings its four-part openings)."""
    from musicgen_app.errors import MusicgenError
    from musicgen_app.ml.judge import KINDS

    out: list[str] = []
    for word in (w.strip().lower() for w in text.split(",")):
        if not word:
            continue
        if word not in KINDS:
            raise MusicgenError(f"unknown kind '{word}' in --kinds (choose from folk, pop, chorale)")
        out += [word, "chorale4"] if word == "chorale" else [word]
    if not out:
        raise MusicgenError("--kinds names no kind (folk, pop, chorale)")
    return list(dict.fromkeys(out))


def run_judge(args: argparse.Namespace) -> int:
    """`musicgen evaluate --all`: judge every shipped model on every kind; print (and write) the table."""
    import torch

    from musicgen_app.errors import MusicgenError
    from musicgen_app.ml import judge
    from musicgen_app.ml.registry import list_models

    if not 1 <= args.sketches <= 10000:
        raise MusicgenError("--sketches must be between 1 and 10000")
    if not 0.05 <= args.temperature <= 5.0:
        raise MusicgenError("--temperature must be between 0.05 and 5")
    kinds = parse_kinds(args.kinds)
    models = list_models()
    if args.judge and not args.all:
        if args.readme:
            raise MusicgenError("--readme writes the table of every model: use it with --all")
        models = [i for i in models if i.name == args.name]
        if not models:
            raise MusicgenError(f"{args.name}: not a shipped model (see `musicgen models`)")
    if not models:
        raise MusicgenError("no models to evaluate (see `musicgen models`)")
    temperatures = _temperatures(args.temperatures) if args.temperatures else None
    torch.set_num_threads(1)
    started = time.perf_counter()
    sketches = {k: judge.load_sketches(k, args.sketches, pop_dataset=args.pop_data) for k in kinds}
    if temperatures is not None:
        return _judge_temperatures(args, models, sketches, temperatures, started)
    results: dict = {"real": {k: judge.real_floor(s) for k, s in sketches.items()}, "models": {}}
    for info in models:
        results["models"][info.name] = _judge_model(info, sketches, args.temperature)
    table = judge_table(results, models, kinds)
    seconds = time.perf_counter() - started
    command = "musicgen evaluate --all " + " ".join(
        [f"--kinds {args.kinds}", f"--sketches {args.sketches}"]
        + ([f"--temperature {args.temperature:g}"] if args.temperature != 0.9 else [])
    )
    if args.json:
        print(json.dumps(results, indent=1, default=float))
    else:
        print()
        print(table)
    print(f"\n{seconds:.0f} s", flush=True)
    if args.readme:
        from musicgen_app.cli.readme_block import write_block

        counts = ", ".join(f"{k} {len(s)}" for k, s in sketches.items())
        body = (
            f"`{command}` ({counts} held-out sketches, temperature {args.temperature:g}, key lock off, "
            f"{seconds:.0f} s on this machine). *judge: pass*: the share of takes passing every check "
            "of `musicgen_app/ml/judge.py` (notes per bar 0.5-2x the real continuation's, >= 85% in "
            "a key the sketch is in (its Krumhansl-Schmuckler key, or a diatonic collection holding "
            ">= 85% of it), within its range +- an octave, >= 4 distinct pitches (fewer where the real "
            "continuation has fewer), no pitch struck "
            "more than 8 times in a row, onsets on the 16th grid, a single line kept single); *failed "
            "checks*: how many takes failed each; *classifier*: held-out accuracy of a logistic "
            "regression telling the real 4 bars from the model's (50% = it cannot tell), in brackets "
            "the real-vs-real floor (the real 4 bars against the 4 after them). The *real "
            "continuations* rows put what the composers wrote through the same judge.\n\n"
            f"{table}"
        )
        path = write_block(README_BLOCK, body, after="**Reading the table.**")
        print(f"wrote the table into {path}")
    return 0


def _temperatures(text: str) -> list[float]:
    """The temperatures of ``--temperatures`` (raises MusicgenError with one line)."""
    from musicgen_app.errors import MusicgenError

    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise MusicgenError(f"--temperatures: not a list of numbers: {text!r}") from None
    if not values or not all(0.05 <= t <= 5.0 for t in values):
        raise MusicgenError("--temperatures: give numbers between 0.05 and 5, comma-separated")
    return values


def _judge_model(info: Any, sketches: dict, temperature: float) -> dict:
    """The judge's figures of one model (registry ModelInfo) on each kind of ``sketches`` it
    continues, at ``temperature``; one progress line per kind."""
    import torch

    from musicgen_app.ml import judge
    from musicgen_app.ml.registry import load_model

    model = load_model(info.name)
    row: dict = {}
    for kind in judge.kinds_for(info.card, list(sketches)):
        t0 = time.perf_counter()
        with torch.inference_mode():
            row[kind] = judge.evaluate_model_on(model, sketches[kind], temperature=temperature)
        f = row[kind]
        print(f"{info.name:<20} {kind:<9} T {temperature:g}: passed {f['passed']}/{f['sketches']}, "
              f"classifier {f['classifier']:.0%} ({time.perf_counter() - t0:.1f} s)", flush=True)  # fmt: skip
    return row


TEMPERATURES_BLOCK = "model-judge-temperatures"


def _judge_temperatures(
    args: argparse.Namespace, models: list, sketches: dict, temperatures: list[float], started: float
) -> int:
    """``--all --temperatures``: every model judged at each temperature, pass rates side by side."""
    rows = [
        "| model | sketches | " + " | ".join(f"pass at {t:g}" for t in temperatures) + " |",
        "|---|---|" + "---|" * len(temperatures),
    ]
    lowest: dict[float, tuple[float, str]] = {}
    for info in models:
        per_t = {t: _judge_model(info, sketches, t) for t in temperatures}
        for i, kind in enumerate(per_t[temperatures[0]]):
            cells = []
            for t in temperatures:
                rate = per_t[t][kind]["pass_rate"]
                cells.append(_fmt(rate, ".0%"))
                if t not in lowest or rate < lowest[t][0]:
                    lowest[t] = (rate, f"{info.name} {KIND_NAMES[kind]}")
            rows.append(f"| {info.name if i == 0 else ''} | {KIND_NAMES[kind]} | " + " | ".join(cells) + " |")
    table = "\n".join(rows)
    seconds = time.perf_counter() - started
    low = "; ".join(f"at {t:g}: {rate:.0%} ({where})" for t, (rate, where) in lowest.items())
    print(f"\n{table}\n\nlowest cell {low}\n{seconds:.0f} s", flush=True)
    if args.readme:
        from musicgen_app.cli.readme_block import write_block

        temps = ",".join(f"{t:g}" for t in temperatures)
        counts = ", ".join(f"{k} {len(s)}" for k, s in sketches.items())
        body = (
            f"`musicgen evaluate --all --kinds {args.kinds} --sketches {args.sketches} --temperatures "
            f"{temps} --readme` ({counts} held-out sketches, key lock off, {seconds:.0f} s on this "
            f"machine): the judge's pass rate of every model and kind at each temperature (the same "
            f"sketches and seeds as the table above). Lowest cell {low}.\n\n{table}"
        )
        path = write_block(TEMPERATURES_BLOCK, body, after="**Reading the table.**")
        print(f"wrote the table into {path}")
    return 0


def _fmt(x: object, spec: str = ".3f") -> str:
    return "–" if x is None or x != x else format(x, spec)  # type: ignore[operator]


def _fails(f: dict) -> str:
    from musicgen_app.ml.judge import CHECKS

    parts = [f"{name.replace('_', ' ')} {f['fails'][name]}" for name in CHECKS if name in f.get("fails", {})]
    return ", ".join(parts) or "–"


def _nll(metrics: dict) -> str:
    from musicgen_app.ml.ngram import baseline_summary

    return baseline_summary(metrics) or "–"


def judge_table(results: dict, models: list, kinds: list[str]) -> str:
    """The Markdown table of :func:`run_judge`'s results (``models``: registry ModelInfo)."""
    rows = [
        "| model | sketches | judge: pass | failed checks | notes per bar (real) | in key (real) "
        "| classifier (real vs real) | NLL vs n-gram | first note | file |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in kinds:
        r = results["real"][kind]
        rows.append(
            f"| *real continuations* | {KIND_NAMES[kind]} ({r['sketches']}) | {_fmt(r['pass_rate'], '.0%')} "
            f"| {_fails(r)} | {_fmt(r['real_notes_per_bar'], '.1f')} | {_fmt(r['real_in_key'], '.2f')} "
            f"| {_fmt(r['classifier'], '.0%')} (floor) | | | |"
        )
    for info in models:
        m = info.card.get("metrics") or {}
        size = info.path.stat().st_size / 1e6 if info.path.exists() else float("nan")
        first = f"{m['first_note_ms']:.1f} ms" if m.get("first_note_ms") is not None else "–"
        for i, (kind, f) in enumerate(results["models"].get(info.name, {}).items()):
            floor = results["real"][kind]["classifier"]
            tail = f"| {_nll(m)} | {first} | {size:.1f} MB |" if i == 0 else "| | | |"
            rows.append(
                f"| {info.name if i == 0 else ''} | {KIND_NAMES[kind]} | **{_fmt(f['pass_rate'], '.0%')}** "
                f"| {_fails(f)} | {_fmt(f['notes_per_bar'], '.1f')} ({_fmt(f['real_notes_per_bar'], '.1f')}) "
                f"| {_fmt(f['in_key'], '.2f')} ({_fmt(f['real_in_key'], '.2f')}) "
                f"| {_fmt(f['classifier'], '.0%')} ({_fmt(floor, '.0%')}) {tail}"
            )
    return "\n".join(rows)
