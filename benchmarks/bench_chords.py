"""Continue over chords: how often each melody model's continuation lands on chord tones, with the
chords given to the sampler (``SamplingConfig.chords``, what ``continue --chords`` and the chord
lane pass) and without, on held-out POP909 songs.

For each of ``--cases`` held-out songs (the test split; the continuation starts at a bar line near
the middle of the MELODY track, the melody before it is the seed), every model continues ``--bars``
bars twice with the same seed: once plain, once over the song's own annotated chords of those bars
(``chord_midi.txt``). Reported: the share of continuation notes that are chord tones of the chord at
their onset, overall and on strong beats (``musicgen_app.ml.chord_eval``), and the song's own melody
over the same bars as a reference. The bias is sampling-time conditioning (``ml.sampling.CHORD_BIAS``,
ln 4 nats), the same constant for every model; no model is retrained.

Run: ``.venv/bin/python benchmarks/bench_chords.py [--cases 20] [--bars 4] [--readme]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = (
    "melody-lstm",
    "note-transformer",
    "wavenet",
    "chord-lstm",
    "pianoroll-lstm",
    "pianoroll-seq2seq",
    "pianoroll-gan",
    "char-lstm",
)


def main() -> None:
    """Measure and print the table (and write it into README.md with ``--readme``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--bars", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--readme", action="store_true")
    args = parser.parse_args()

    import torch

    from musicgen_app.ml.chord_eval import ToneCount, count_chord_tones, held_out_chord_cases
    from musicgen_app.ml.generate import SamplingConfig, generate_notes
    from musicgen_app.ml.registry import load_model
    from musicgen_app.ml.sampling import CHORD_BIAS

    torch.set_num_threads(1)
    cases = held_out_chord_cases(args.cases, args.bars)
    reference = ToneCount()
    for case in cases:
        end = case.start_tick + args.bars * case.song.ticks_per_bar(case.start_tick)
        own = [n for n in case.song.tracks[case.track].notes if case.start_tick <= n.start_tick < end]
        reference.add(count_chord_tones(case.song, own, case.chords))
    rows: list[tuple[str, ToneCount, ToneCount, float]] = []
    for name in args.models.split(","):
        model = load_model(name)
        plain, guided = ToneCount(), ToneCount()
        t0 = time.perf_counter()
        for i, case in enumerate(cases):
            for chords, acc in (((), plain), (tuple(case.chords), guided)):
                sampling = SamplingConfig(seed=args.seed + i, chords=chords)
                notes = generate_notes(
                    model,
                    case.song,
                    case.track,
                    start_tick=case.start_tick,
                    bars=args.bars,
                    sampling=sampling,
                )
                acc.add(count_chord_tones(case.song, notes, case.chords))
        seconds = (time.perf_counter() - t0) / max(1, 2 * len(cases))
        rows.append((name, plain, guided, seconds))
        print(f"{name}: {plain.share:.0%} -> {guided.share:.0%}", file=sys.stderr)
    load = os.getloadavg()[0]
    lines = [
        f"Chord tones among the notes of a {args.bars}-bar continuation of {len(cases)} held-out POP909 "
        f"songs (from a bar line near the middle of the MELODY track; seeds {args.seed}..; the song's "
        f"annotated chords; chord bias {CHORD_BIAS:.2f} nats at sampling time; load average {load:.1f} on "
        f"{os.cpu_count()} cores). The song's own melody over those bars: {reference.share:.0%} chord "
        f"tones ({reference.strong_share:.0%} on strong beats, {reference.notes} notes).",
        "",
        "| model | chord tones, no chords | with chords | strong beats, no chords | with chords "
        "| notes (no chords / with) | s per take |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, plain, guided, seconds in rows:
        lines.append(
            f"| {name} | {plain.share:.0%} | {guided.share:.0%} | {plain.strong_share:.0%} "
            f"| {guided.strong_share:.0%} | {plain.notes} / {guided.notes} | {seconds:.2f} |"
        )
    from readme_block import print_and_write

    print_and_write("bench-chords", "\n".join(lines), args.readme)


if __name__ == "__main__":
    main()
