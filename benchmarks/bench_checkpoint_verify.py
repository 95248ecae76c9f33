"""What checkpoint verification costs: loading every shipped model with and without the checks.

For each model in models/, in the same run (median of ``--repeats``):

* **sha256**: hashing the weights file (what the digest check reads);
* **values**: the tensor-list and NaN/inf check over the loaded tensors;
* **load checked / load unchecked**: ``load_model`` as the app runs it, and with the digest and
  tensor checks switched off (the card validation is arithmetic and stays on): their ratio is
  the price of verification;
* **finite check per step**: ``require_finite`` on one step's logits, against one
  ``Sampler.sample`` call (the sampling step it guards).

Run: ``.venv/bin/python benchmarks/bench_checkpoint_verify.py [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from safetensors.torch import load_file

from musicgen_app.ml import checkpoint as ckpt
from musicgen_app.ml import checkpoint_verify as cv
from musicgen_app.ml.registry import list_models, load_model
from musicgen_app.ml.sampling import Sampler, SamplingConfig, TokenClasses, require_finite

STEPS = 20000


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    r = args.repeats
    print(f"{'model':18} {'MB':>5} {'sha256':>8} {'values':>8} {'checked':>9} {'unchecked':>10} {'ratio':>6}")
    for info in list_models():
        path = info.path
        tensors = load_file(str(path))
        sha = median_ms(lambda p=path: cv.file_digest(p), r)
        values = median_ms(lambda t=tensors, c=info.card: cv.check_tensors(t, c, "x"), r)
        load_model(path)  # warm caches and imports
        checked = median_ms(lambda p=path: load_model(p), r)
        saved = ckpt.check_digest, ckpt.check_tensors
        ckpt.check_digest = ckpt.check_tensors = lambda *a: None  # type: ignore[assignment]
        try:
            unchecked = median_ms(lambda p=path: load_model(p), r)
        finally:
            ckpt.check_digest, ckpt.check_tensors = saved
        mb = path.stat().st_size / 1e6
        print(
            f"{info.name:18} {mb:5.2f} {sha:7.2f}ms {values:7.2f}ms {checked:8.1f}ms {unchecked:9.1f}ms "
            f"{checked / unchecked:6.2f}"
        )
    for vocab in (52, 1686):
        logits = np.random.default_rng(0).normal(size=vocab).astype(np.float32)
        classes = TokenClasses(vocab, 1, 2, np.arange(vocab) % 128 - 3)
        sampler = Sampler(classes, SamplingConfig(key_lock=None), seed=1)
        fin = median_ms(lambda lg=logits: [require_finite(lg) for _ in range(STEPS)], 3) / STEPS * 1000
        smp = median_ms(lambda lg=logits, s=sampler: [s.sample(lg, 1.0) for _ in range(STEPS)], 3)
        smp *= 1000 / STEPS
        print(
            f"vocabulary {vocab:5}: finite check {fin:.2f} us per step, "
            f"sampling step {smp:.2f} us ({fin / smp:.1%})"
        )


if __name__ == "__main__":
    main()
