"""Accompany: does the accompaniment follow the harmony of held-out songs?

For each held-out POP909 song (the test split by file content) the accompaniment model writes an
accompaniment under the MELODY track; the chord of every beat is estimated from the
accompaniment's notes alone (``core.chords.estimate_chords``) and its root compared with the
root annotated in the song's ``chord_midi.txt`` (``musicgen_app.ml.accompany_eval``). Measured in
the same run:

* ``piano``: the learned texture (``accompany-pop909``);
* ``chords``: block chords on the chords the model chose;
* ``bass``: the bass line (the estimate sees one note at a time: mostly the chord root);

each twice: ``(melody only)``, the chords chosen from the MELODY track alone, and ``(melody +
BRIDGE)``, hearing the song's BRIDGE track too (its second melody / instrumental line, as
Accompany hears a song's other tracks; the PIANO track is the target and never an input);
* ``baseline``: per bar, the diatonic triad of the song's key that covers most of the bar's
  melody, as a block chord (and again with its bars moved by the whole beats whose triads
  cover the most melody: the baseline's own downbeat check, as the model checks its downbeat);
* ``piano (chords given)``: the piano texture on the song's annotated chords instead of the ones
  the model chooses: how well the accompaniment follows chords, apart from choosing them.

With ``--chorales``: the held-out Bach chorales, the ``satb`` accompaniment (``accompany-chorales``)
against the chords estimated from the real alto, tenor and bass, and the same baseline.
Run: ``.venv/bin/python benchmarks/bench_accompany.py [--songs N] [--chorales] [--readme]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=None, help="held-out songs to use (default: all)")
    ap.add_argument("--chorales", action="store_true", help="also the chorales (satb)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from musicgen_app.ml.accompany import load_accompany_model
    from musicgen_app.ml.accompany_eval import WITH_PARTS, evaluate

    pop = load_accompany_model("accompany-pop909")
    t0 = time.perf_counter()
    runs = [
        evaluate(
            {
                **{f"{style} (melody only)": (pop, style) for style in ("piano", "chords", "bass")},
                **{f"{style} {WITH_PARTS}": (pop, style) for style in ("piano", "chords", "bass")},
                "piano (chords given)": (pop, "piano"),
            },
            "pop909",
            songs=args.songs,
            seed=args.seed,
        )
    ]
    if args.chorales:
        satb = load_accompany_model("accompany-chorales")
        systems = {"satb": (satb, "satb"), "satb (chords given)": (satb, "satb")}
        runs.append(evaluate(systems, "chorales", songs=args.songs, seed=args.seed))
    load = os.getloadavg()[0]
    lines = [
        f"Root agreement per beat between the accompaniment (its chord estimated from its own notes) "
        f"and the reference, on held-out songs (seed {args.seed}; {time.perf_counter() - t0:.0f} s "
        f"at load average {load:.1f} on {os.cpu_count()} cores):",
        "",
        "| held out | reference | beats | style | agreement | ms per song |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        what = f"{r['songs']} POP909 songs" if r["corpus"] == "pop909" else f"{r['songs']} Bach chorales"
        ref = "annotated chords" if r["corpus"] == "pop909" else "chords of the real ATB"
        for name, value in r["agreement"].items():
            label = {
                "baseline": "baseline (diatonic triad per bar)",
                "baseline, bars moved": "baseline, its bars moved to fit the melody best",
            }.get(name, name)
            ms = r["seconds_per_song"].get(name)
            ms_text = "-" if ms is None else f"{ms * 1000:.0f}"
            lines.append(f"| {what} | {ref} | {r['beats']} | {label} | {value:.1%} | {ms_text} |")
    text = "\n".join(lines)
    print(text)
    for r in runs:  # a diagnostic, not in the README: the beats where the melody sounds at all
        sounding = ", ".join(f"{k} {v:.1%}" for k, v in r["agreement_melody_sounding"].items())
        print(f"\n{r['corpus']}, the {r['beats_melody_sounding']} beats where the melody sounds: {sounding}")
    if args.readme:
        from readme_block import write_block

        cmd = " ".join(["benchmarks/bench_accompany.py", *sys.argv[1:]])
        write_block("bench-accompany", f"`{cmd.strip()}`:\n\n{text}")


if __name__ == "__main__":
    main()
