"""`musicgen dataset build|info [--corpus essen|oneill|ryan | --midi DIR [--name NAME]]`: the cached
training data, from music21's corpora or from any folder of MIDI files."""

from __future__ import annotations

import argparse
import json
import logging

from musicgen_app.cli.argtypes import positive_int

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen dataset`."""
    parser.add_argument(
        "action", choices=("build", "info"), help="build (or rebuild) the cache, or describe it"
    )
    parser.add_argument("--corpus", default="essen", choices=("essen", "oneill", "ryan"))
    parser.add_argument(
        "--limit",
        type=positive_int(10_000_000),
        default=None,
        metavar="N",
        help="only the first N tunes, N >= 1 (for a quick look)",
    )
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON")
    parser.add_argument(
        "--midi",
        metavar="DIR",
        default=None,
        help="build from every MIDI file under this folder (recursively)",
    )
    parser.add_argument(
        "--name", default=None, help="name of the dataset built from --midi (default: the folder's)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes reading files in parallel (default: one per core)",
    )


def run(args: argparse.Namespace) -> int:
    """Build the dataset (with a progress bar) or print what the cache holds."""
    from musicgen_app.errors import DatasetError
    from musicgen_app.ml import data

    if args.midi is not None or args.name is not None:
        return _run_midi(args)
    path = data.cache_path(args.corpus)
    if args.action == "build":
        if args.limit is not None:
            ds = data.build_dataset(args.corpus, limit=args.limit)
            path = path.with_name(f"{args.corpus}-first{args.limit}-v{data.DATASET_VERSION}.npz")
        else:
            ds = data.build_dataset(args.corpus)
        data.save_dataset(ds, path)
    else:
        if not path.exists():
            raise DatasetError(f"no cached dataset for '{args.corpus}'; run `musicgen dataset build`")
        ds = data.load_dataset(path)
    split = data.split_indices(ds)
    info = dict(ds.stats, path=str(path), split={k: len(v) for k, v in split.items()})
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"{ds.stats['kept']} of {ds.stats['parsed']} tunes kept, {ds.stats['steps']} steps, at {path}")
        for reason, count in sorted(ds.stats["rejected"].items()):
            print(f"  dropped {count}: {reason}")
        print(f"  split by tune: {info['split']}")
    return 0


def _run_midi(args: argparse.Namespace) -> int:
    """`dataset build --midi DIR [--name NAME]` and `dataset info --name NAME`."""
    from pathlib import Path

    from musicgen_app.errors import DatasetError
    from musicgen_app.ml import data, midi_data

    if args.action == "build":
        if args.midi is None:
            raise DatasetError("`dataset build --name` needs --midi DIR, the folder to read")
        if args.workers is not None and args.workers < 1:
            raise DatasetError("--workers must be at least 1")
        report = midi_data.build_midi_dataset(Path(args.midi), args.name, workers=args.workers)
        name = report.name
        skipped = report.skipped
        extra = {"read": report.parsed, "from_cache": report.cached}
    else:
        name = args.name or Path(args.midi).expanduser().resolve().name
        skipped = []
        extra = {}
    ds = midi_data.load_midi_dataset(name)
    split = data.split_indices(ds)
    info = dict(
        ds.stats,
        name=name,
        path=str(midi_data.dataset_dir(name)),
        split={k: len(v) for k, v in split.items()},
        skipped=[{"file": f, "reason": why} for f, why in skipped],
        **extra,
    )
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(
        f"dataset '{name}': {ds.stats['kept']} of {ds.stats['parsed']} files used, "
        f"{ds.stats['steps']} melody steps, at {info['path']}"
    )
    if extra:
        print(f"  {extra['read']} files read, {extra['from_cache']} taken from the cache")
    for f, why in skipped:
        print(f"  skipped {f}: {why}")
    print(f"  split by a hash of each file's content: {info['split']}")
    return 0
