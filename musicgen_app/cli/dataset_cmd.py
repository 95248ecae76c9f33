"""`musicgen dataset build|info [--corpus essen|oneill|ryan]`: the cached training data."""

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


def run(args: argparse.Namespace) -> int:
    """Build the dataset (with a progress bar) or print what the cache holds."""
    from musicgen_app.errors import DatasetError
    from musicgen_app.ml import data

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
