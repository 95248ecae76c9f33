"""Generation speed: streaming sessions against the papers' window re-running and block generation.

For each model (default: every model in models/), in the same run, at batch 1 on the CPU:

* **first note**: time from the ``start_session`` call to the first NoteEvent (prefill over the
  seed, 4 bars or ``--seed-bars``, + the steps until the first note's length is known; loading the
  model is not included);
* **streaming per token**: a long session's time per sampled token after the prefill, carrying the
  recurrent state;
* **window re-run per token**: the papers' approach: every step re-reads the last 64 tokens from
  scratch (same model, same sampler);
* **block first note**: generating the whole continuation first (as block-generating tools do),
  then taking its first note.

Goals: first note <= 10 ms; streaming >= 4x faster per token than window re-running.
Run: ``.venv/bin/python benchmarks/bench_generation.py [--models a b] [--bars 8] [--repeats 7]``.
Models without a token adapter (other families) get "n/a" in the window column.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from musicgen_app.core.events import NoteEvent
from musicgen_app.core.song import Note, Song, Track
from musicgen_app.ml.generate import SamplingConfig, generate_notes, start_session
from musicgen_app.ml.registry import list_models, load_model
from musicgen_app.ml.sampling import Sampler

WINDOW = 64


def seed_song(bars: int = 4) -> Song:
    """A seed of ``bars`` bars of 4/4 (default 4: 64 steps): the first phrase of 'Twinkle,
    Twinkle' in D, repeated."""
    notes, t = [], 0
    for p, q in [(62, 1), (62, 1), (69, 1), (69, 1), (71, 1), (71, 1), (69, 2)] * max(1, bars // 2):
        notes.append(Note(t, p, t + q * 480 - 10, 90))
        t += q * 480
    return Song(tracks=[Track(notes=notes)])


def first_note_ms(model, song: Song, seed: int, *, cold: bool = True) -> float:
    """From the start_session call to the first NoteEvent; ``cold`` forgets cached prefills first."""
    if cold and hasattr(model, "clear_prefill_cache"):
        model.clear_prefill_cache()
    t0 = time.perf_counter()
    session = start_session(model, song, 0, bars=4, sampling=SamplingConfig(seed=seed))
    for ev in session:
        if isinstance(ev, NoteEvent):
            dt = time.perf_counter() - t0
            session.cancel()
            for _ in session:
                pass
            return dt * 1000
    return float("nan")


def streaming_token_ms(model, song: Song, bars: int, seed: int) -> float:
    """Per sampled token, after the prefill: sample + decode + one model step."""
    session = start_session(model, song, 0, bars=bars, sampling=SamplingConfig(seed=seed))
    finished = [ev for ev in session if not isinstance(ev, NoteEvent)][-1]
    n = len(session.tokens)
    return (finished.seconds - session.prefill_seconds) / n * 1000 if n else float("nan")


def window_token_ms(model, song: Song, bars: int, seed: int) -> float:
    """The papers' loop: re-read the last WINDOW tokens for every new token."""
    session = start_session(model, song, 0, bars=bars, sampling=SamplingConfig(seed=seed))
    adapter, sampler = session.adapter, Sampler(model.classes, SamplingConfig(seed=seed), seed=seed)
    tokens = list(session.token_stepper.prompt)
    n = session.n_steps
    t0 = time.perf_counter()
    reread = getattr(adapter, "_prefill", None)  # the uncached prefill, when the adapter caches
    for _ in range(n):
        window = tokens[-WINDOW:]
        if reread is not None:
            k0 = len(tokens) - len(window)
            _, logits = reread(window, [adapter.bar_position(k0 + i) for i in range(len(window))])
        else:
            _, logits = adapter.prefill(window)
        tokens.append(sampler.sample(logits, 1.0))
    return (time.perf_counter() - t0) / n * 1000


def block_first_note_ms(model, song: Song, bars: int, seed: int) -> float:
    t0 = time.perf_counter()
    notes = generate_notes(model, song, 0, bars=bars, sampling=SamplingConfig(seed=seed, max_retries=0))
    dt = time.perf_counter() - t0
    return dt * 1000 if notes else float("nan")


def _ms(value: float, width: int, digits: int) -> str:
    """``value`` as ``12.34ms`` right-aligned, or ``n/a`` for a figure the model does not have."""
    return f"{value:>{width}.{digits}f}ms" if value == value else f"{'n/a':>{width + 2}}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=None, help="model names (default: all in models/)")
    ap.add_argument("--bars", type=int, default=8, help="bars generated for the per-token figures")
    ap.add_argument("--repeats", type=int, default=7, help="runs per figure (the median is shown)")
    ap.add_argument(
        "--seed-bars", type=int, default=4, choices=(4, 8), help="bars of seed read by the prefill"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = args.models or [m.name for m in list_models()]
    cpu = f"{platform.machine()} {platform.processor() or ''}".strip()
    py = platform.python_version()
    print(f"machine: {cpu}, {os.cpu_count()} cores, python {py}, torch {torch.__version__}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average before the run: {load} (other jobs on the machine slow every figure)")
    song = seed_song(args.seed_bars)
    steps = 16 * args.seed_bars
    threads = torch.get_num_threads()
    print(f"torch threads: {threads}; seed: {args.seed_bars} bars of 4/4 ({steps} grid steps), batch 1")
    rows = []
    for name in names:
        model = load_model(name)
        has_adapter = hasattr(model, "adapter")
        first_note_ms(model, song, 0)  # warm up (first calls allocate)
        fn = statistics.median(first_note_ms(model, song, s) for s in range(1, args.repeats + 1))
        fw = statistics.median(first_note_ms(model, song, s, cold=False) for s in range(1, args.repeats + 1))
        if has_adapter:
            st = statistics.median(streaming_token_ms(model, song, args.bars, s) for s in range(args.repeats))
            wn = statistics.median(
                window_token_ms(model, song, args.bars, s) for s in range(max(3, args.repeats // 2))
            )
        else:
            st = wn = float("nan")
        bl = statistics.median(
            block_first_note_ms(model, song, args.bars, s) for s in range(max(3, args.repeats // 2))
        )
        rows.append((name, fn, fw, st, wn, bl))
    print(
        f"oneDNN enabled: {torch.backends.mkldnn.enabled} (the melody LSTM steps in numpy, one BLAS thread)"
    )
    print()
    head = ("model", "1st note", "warm 1st", "stream/tok", "window/tok", "ratio", f"block {args.bars}b")
    print(f"{head[0]:<20} {head[1]:>10} {head[2]:>10} {head[3]:>11} {head[4]:>11} {head[5]:>7} {head[6]:>10}")
    for name, fn, fw, st, wn, bl in rows:
        ratio = wn / st if st == st and wn == wn and st > 0 else float("nan")
        cells = [_ms(fn, 8, 2), _ms(fw, 8, 2), _ms(st, 9, 3), _ms(wn, 9, 3)]
        r = f"{ratio:>6.1f}x" if ratio == ratio else f"{'n/a':>7}"
        print(f"{name:<20} {cells[0]} {cells[1]} {cells[2]} {cells[3]} {r} {_ms(bl, 8, 1)}")
    print()
    print("1st note: cold (no cached prefill); warm: the same sketch again (a new take reuses the prefill)")
    print(f"block: time to the first note when all {args.bars} bars are generated first")
    print(f"goals: first note <= 10 ms; streaming >= 4x faster per token than re-reading {WINDOW} tokens")
    for name, fn, _, st, wn, _ in rows:
        ratio = wn / st if st == st and wn == wn and st > 0 else float("nan")
        ok_first = "met" if fn <= 10 else "MISSED"
        ok_ratio = "met" if ratio >= 4 else ("n/a" if ratio != ratio else "MISSED")
        shown = f"{ratio:.1f}x" if ratio == ratio else "no token adapter"
        print(f"  {name}: first note {ok_first} ({fn:.2f} ms cold), speed-up {ok_ratio} ({shown})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
