"""The MIDI fuzz at full size: N mutated files (default 100,000) through the importer, with the
count of each outcome and the worst time and memory.

    .venv/bin/python benchmarks/bench_fuzz.py [--n 100000] [--seed 20261121] [--no-check]

Each mutant (tests/reliability/fuzz.py: bit flips, status bytes, cuts, wrong chunk lengths, huge
time values... on the test suite's seed files) is read with ``read_midi``; an import is then
checked as the CI test does (``inspect`` describes it; it exports and re-imports unchanged) unless
``--no-check``. Outcomes: imports, clean refusals (MidiImportError), other exceptions, check
failures, hangs (over 2 s, or stopped by a 2 s alarm). Prints the counts, the slowest mutant, the
peak resident memory of the process, and the first few inputs of each bad outcome. Target: 0 other
exceptions, 0 check failures, 0 hangs.
"""

from __future__ import annotations

import argparse
import platform
import random
import resource
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from reliability.fuzz import check, mutate, seeds

from musicgen_app.core.midi_io import read_midi
from musicgen_app.errors import MidiImportError

HANG_S = 2.0


class _Hang(Exception):  # noqa: N818 (an alarm, not an error of the code under test)
    pass


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise _Hang


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz and print the counts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="mutants to try (default 100000)")
    parser.add_argument("--seed", type=int, default=20261121, help="random seed")
    parser.add_argument("--no-check", action="store_true", help="only import, skip the round-trip check")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    rng = random.Random(args.seed)
    files = seeds()
    counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    slowest = (0.0, b"")
    rss_start = _rss_mib()
    signal.signal(signal.SIGALRM, _alarm)
    started = time.perf_counter()
    for i in range(args.n):
        data = mutate(rng.choice(files), rng)
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, HANG_S)
        outcome = "imports"
        detail = ""
        try:
            read_midi(data)
        except MidiImportError:
            outcome = "clean refusals"
        except _Hang:
            outcome = "hangs"
        except Exception as exc:  # the point of the run: count what escapes
            outcome, detail = "other exceptions", f"{type(exc).__name__}: {exc}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        elapsed = time.perf_counter() - t0
        if elapsed > HANG_S:
            outcome = "hangs"
        slowest = max(slowest, (elapsed, data))
        if outcome == "imports" and not args.no_check:
            try:
                check(data)
            except Exception as exc:
                outcome, detail = "check failures", f"{type(exc).__name__}: {exc}"
        counts[outcome] += 1
        if outcome not in ("imports", "clean refusals"):
            examples.setdefault(outcome, [])
            if len(examples[outcome]) < 3:
                examples[outcome].append(f"{detail} on {data[:80]!r}")
        if (i + 1) % 10_000 == 0:
            print(f"  {i + 1:,} mutants, {time.perf_counter() - started:.0f} s", flush=True)
    total = time.perf_counter() - started
    print(f"machine: {platform.machine()} {platform.processor() or ''}, Python {platform.python_version()}")
    print(
        f"mutants: {args.n:,} from {len(files)} seed files in {total:.1f} s "
        f"({total / args.n * 1e3:.2f} ms each)"
    )
    for name in ("imports", "clean refusals", "other exceptions", "check failures", "hangs"):
        print(f"  {name}: {counts[name]:,}")
    print(f"slowest import: {slowest[0] * 1e3:.1f} ms ({len(slowest[1]):,} bytes)")
    print(f"max RSS: {_rss_mib():.0f} MiB (at start {rss_start:.0f} MiB)")
    for name, lines in examples.items():
        for line in lines:
            print(f"{name}: {line}")
    bad = counts["other exceptions"] + counts["check failures"] + counts["hangs"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
