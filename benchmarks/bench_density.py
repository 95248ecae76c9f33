"""The density guide's gain, chosen on sketches from the TRAINING splits (never the judge's held-out ones).

For each gain (``--gains``, 0 = the guide off) every model continues ``--sketches`` sketches of each
kind cut from the training tunes (folk: Essen, pop: POP909, chorale: soprano lines and four-part
openings for the polyphonic models), as the judge does (temperature 0.9, key lock off, a seed per
sketch); printed per model and kind: the judge's pass rate, how many takes failed on notes per
bar, and the mean ratio of the take's notes per bar to the real continuation's. The gain in
``musicgen_app.ml.sampling.DENSITY_GAIN`` is the one with the fewest failures over all cells here.
``--rhythms`` does the same for the rhythm prior's gain (``RHYTHM_GAIN``, the families that read
it: chord-lstm), each against every density gain, and ``--tonals`` for the tonal prior's
(``TONAL_GAIN``: chord-lstm, pianoroll-gan); each cell also counts the takes failed on "in key".

Run: ``.venv/bin/python benchmarks/bench_density.py [--sketches 30] [--gains 0,0.5,1,2] [--rhythms 0.5]
[--tonals 0,0.5] [--models a,b] [--temperature 0.9]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    """Measure and print the table."""
    import numpy as np
    import torch

    from musicgen_app.ml import judge, sampling
    from musicgen_app.ml.registry import list_models, load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sketches", type=int, default=30)
    ap.add_argument("--gains", default="0,0.5,1,2")
    ap.add_argument("--rhythms", default=str(sampling.RHYTHM_GAIN), help="rhythm prior gains (0: off)")
    ap.add_argument("--tonals", default=str(sampling.TONAL_GAIN), help="tonal prior gains (0: off)")
    ap.add_argument("--models", default="", help="comma-separated model names (default: every shipped one)")
    ap.add_argument("--variety", choices=("on", "off"), default="on", help="the variety guard (on)")
    ap.add_argument("--limit", type=float, default=None, help="the guide's largest bias in nats")
    ap.add_argument("--kinds", default="folk,pop,chorale,chorale4")
    ap.add_argument("--temperature", type=float, default=judge.TEMPERATURE)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.limit is not None:
        sampling.DENSITY_LIMIT = args.limit
    gains = [
        (float(g), float(r), float(k))
        for g in args.gains.split(",")
        for r in args.rhythms.split(",")
        for k in args.tonals.split(",")
    ]
    kinds = [k for k in args.kinds.split(",") if k]
    sketches = {k: judge.load_sketches(k, args.sketches, split="train") for k in kinds}
    wanted = [m for m in args.models.split(",") if m]
    infos = [i for i in list_models() if not wanted or i.name in wanted]
    totals = {g: [0, 0] for g in gains}
    print(f"training-split sketches: {', '.join(f'{k} {len(s)}' for k, s in sketches.items())}")
    print(
        "model                kind      "
        + "  ".join(f"gain {g:<3g}/{r:<3g}/{k:<3g} pass npb-fail key-fail ratio" for g, r, k in gains)
    )
    for info in infos:
        kinds_here = judge.kinds_for(info.card, kinds)
        if not kinds_here:
            continue
        model = load_model(info.name)
        for kind in kinds_here:
            cells = []
            for g, r, k in gains:
                settings = {"temperature": args.temperature, "density": g, "rhythm": r, "tonal": k,
                            "variety": args.variety == "on"}  # fmt: skip
                takes = [judge.continue_sketch(model, s, **settings) for s in sketches[kind]]
                verdicts = [
                    judge.judge_continuation(s, t) for s, t in zip(sketches[kind], takes, strict=True)
                ]
                passed = sum(v.passed for v in verdicts)
                npb = sum("notes_per_bar" in v.failed for v in verdicts)
                key = sum("in_key" in v.failed for v in verdicts)
                ratio = np.mean(
                    [len(t) / max(1, len(s.real)) for s, t in zip(sketches[kind], takes, strict=True)]
                )
                totals[g, r, k][0] += passed
                totals[g, r, k][1] += len(verdicts)
                cells.append(f"{passed / len(verdicts):>19.0%} {npb:>8d} {key:>8d} {ratio:6.2f}")
            print(f"{info.name:<20} {kind:<9}" + "  ".join(cells), flush=True)
    print(
        "all cells: "
        + ", ".join(
            f"gain {g:g} rhythm {r:g} tonal {k:g}: {p}/{n} passed" for (g, r, k), (p, n) in totals.items()
        )
    )


if __name__ == "__main__":
    main()
