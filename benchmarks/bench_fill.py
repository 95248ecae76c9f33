"""Fill: how the join sits in its surroundings, over held-out POP909 songs.

For each of ``--cases`` held-out songs (the test split by file content), two bars near the middle
of the MELODY track are filled (``musicgen_app.ml.fill_eval``), and the figures are compared with
the song's own two bars (the reference) measured in the same run:

* ``K=1``: the first candidate only: a plain continuation after the prefix (with the key and
  register of both sides), the suffix not consulted;
* ``K=8`` (the default of `musicgen fill`) and ``K=16``: the candidate whose suffix likelihood is
  highest;
* other models given with ``--model`` (e.g. the fill-in-the-middle checkpoint that
  ``scripts/train_melody_fim.py`` writes), at K=1 and K=8.

Every fill is also checked byte for byte outside its range (the count of files that differ is
reported; it must be 0). Run: ``.venv/bin/python benchmarks/bench_fill.py [--cases 50] [--readme]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _outside_differs(song, filled, track: int, start: int, end: int) -> bool:
    """Whether anything outside the range differs in the exported files (other chunks whole, the
    track's notes starting outside the range whole, every other event of it identical)."""
    from musicgen_app.core.midi_io import midi_bytes
    from musicgen_app.ml.fill import split_at_range

    a, b = midi_bytes(song), midi_bytes(filled)
    if len(a) == len(b) == 0:
        return False
    before_a, _, after_a = split_at_range(song.tracks[track].notes, start, end)
    before_b, _, after_b = split_at_range(filled.tracks[track].notes, start, end)
    other = [i for i in range(len(song.tracks)) if i != track]
    return (
        before_a != before_b
        or after_a != after_b
        or any(song.tracks[i] != filled.tracks[i] for i in other)
        or song.tracks[track].controls != filled.tracks[track].controls
        or song.tracks[track].meta != filled.tracks[track].meta
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=50)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--model", action="append", default=[], help="also measure this model at K=1")
    ap.add_argument("--density-weight", type=float, nargs="+", default=[3.0])
    ap.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = ap.parse_args()

    from musicgen_app.ml.fill import fill_song, split_at_range
    from musicgen_app.ml.fill_eval import held_out_cases, join_stats, summarize
    from musicgen_app.ml.registry import load_model
    from musicgen_app.ml.sampling import SamplingConfig

    cases = held_out_cases(args.cases)
    base = load_model("melody-lstm")
    methods = [("melody-lstm, K=1 (continuation)", base, 1, 0.0)]
    for w in args.density_weight:
        methods += [(f"melody-lstm, K={k}, density weight {w:g}", base, k, w) for k in (8, 16)]
    for name in args.model:
        other = load_model(name)
        label = getattr(other, "name", name)
        methods += [(f"{label}, K=1", other, 1, 0.0)]
        methods += [(f"{label}, K=8, density weight {w:g}", other, 8, w) for w in args.density_weight]
    rows: dict[str, list] = {"real (the song's own bars)": []}
    seconds: dict[str, float] = {}
    differ = 0
    for case in cases:
        real = split_at_range(case.song.tracks[case.track].notes, case.start_tick, case.end_tick)[1]
        rows["real (the song's own bars)"].append(join_stats(case, real))
    for label, model, k, weight in methods:
        rows[label] = []
        t0 = time.perf_counter()
        for case in cases:
            filled, _ = fill_song(
                model,
                case.song,
                case.track,
                case.start_tick,
                case.end_tick,
                candidates=k,
                density_weight=weight,
                sampling=SamplingConfig(seed=args.seed),
            )
            differ += _outside_differs(case.song, filled, case.track, case.start_tick, case.end_tick)
            new = split_at_range(filled.tracks[case.track].notes, case.start_tick, case.end_tick)[1]
            rows[label].append(join_stats(case, new))
        seconds[label] = (time.perf_counter() - t0) / max(1, len(cases))
    load = os.getloadavg()[0]
    lines = [
        f"Fill of 2 bars in the middle of the MELODY track of {len(cases)} held-out POP909 songs "
        f"(seed {args.seed}; neighbours: 4 bars on each side; load average {load:.1f} on "
        f"{os.cpu_count()} cores). Files with a change outside the range: {differ}.",
        "",
        "| take | interval across an edge (semitones) | edges within a fifth | notes/bar vs neighbours "
        "| \\|log2 density ratio\\| | in the neighbours' key | outside their register | silent "
        "| ms per fill |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, rs in rows.items():
        f = summarize(rs)
        ms = f"{seconds[label] * 1000:.0f}" if label in seconds else "-"
        lines.append(
            f"| {label} | {f['edge_interval']:.2f} | {f['edge_within_fifth']:.0%} "
            f"| x{f['density_ratio']:.2f} | {f['density_log2_error']:.2f} | {f['in_key']:.0%} "
            f"| {f['outside_register']:.0%} "
            f"| {f['silent']} | {ms} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.readme:
        from readme_block import write_block

        cmd = " ".join(["benchmarks/bench_fill.py", *sys.argv[1:]])
        write_block("bench-fill", f"`{cmd.strip()}`:\n\n{text}")


if __name__ == "__main__":
    main()
