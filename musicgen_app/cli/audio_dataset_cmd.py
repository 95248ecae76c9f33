"""`musicgen audio dataset build|info [--pieces N] [--sample-rate HZ]`: the rendered audio dataset.

Bach chorales and Essen melodies rendered through FluidSynth on piano, guitar, strings and organ
(mono, aligned sample for sample, split by piece; :mod:`musicgen_app.ml.audio.dataset`), cached
out of git for the raw-audio models (paper 002's restyler, a raw-audio WaveNet).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from musicgen_app.cli import argtypes as at

if TYPE_CHECKING:
    import numpy as np

    from musicgen_app.core.song import Song

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen audio dataset`."""
    parser.add_argument(
        "what", choices=("build", "info"), help="build (or rebuild) the cache, or describe it"
    )
    parser.add_argument(
        "--pieces",
        type=at.int_range(2, 2000),
        default=200,
        metavar="N",
        help="pieces to render, half chorales and half Essen melodies, 2 to 2000 (default 200)",
    )
    parser.add_argument(
        "--sample-rate",
        type=at.int_choice((8000, 16000)),
        default=16000,
        metavar="HZ",
        help="8000 or 16000 (default 16000)",
    )
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON")


def fluidsynth_renderer(sample_rate: int) -> Callable[[Song], np.ndarray]:
    """``render(song) -> mono float32``: the app's FluidSynth render, channels averaged, short tail."""
    from musicgen_app.playback.render import render_song

    def render(song: Song) -> np.ndarray:
        return render_song(song, sample_rate=sample_rate, tail_s=0.5).mean(axis=1)

    return render


def run(args: argparse.Namespace) -> int:
    """Build the rendered dataset (with a progress bar) or describe the cache."""
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
