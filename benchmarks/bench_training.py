"""Training data and training speed on this machine.

* dataset build: reading a MIDI folder (default: POP909 beside the project) into the cache with 1
  and with 2 worker processes, each from a cold cache, in the same run; and the re-run on the
  unchanged folder (everything from the cache);
* training throughput of melody-lstm on that dataset: 16th steps per second over all ranks, for
  one process and for ``torchrun --nproc_per_node 2`` (DistributedDataParallel, gloo on the CPU),
  same global batch, one short epoch each.

Run: ``.venv/bin/python benchmarks/bench_training.py [--folder DIR] [--limit N] [--ranks 1 2]``.
On a GPU machine add ``--device cuda``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _subset(folder: Path, limit: int, dest: Path) -> Path:
    from musicgen_app.ml.midi_data import midi_files

    files = midi_files(folder)[:limit] if limit else midi_files(folder)
    for f in files:
        target = dest / f.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        for side in f.parent.glob("*.txt"):  # annotation files travel with their song
            if not (target.parent / side.name).exists():
                shutil.copy(side, target.parent / side.name)
        shutil.copy(f, target)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", default=str(ROOT.parent / "shared" / "data" / "pop909"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N files (0: all)")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--minutes", type=float, default=1.0, help="training time per run")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each measurement, interleaved (best kept)")
    ap.add_argument("--readme", action="store_true", help="write the tables into README.md")
    args = ap.parse_args()
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line)
        lines.append(line)

    from musicgen_app.ml.midi_data import build_midi_dataset

    work = Path(tempfile.mkdtemp(prefix="bench-training-"))
    folder = _subset(Path(args.folder), args.limit, work / "music") if args.limit else Path(args.folder)
    machine = platform.processor() or platform.machine()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    say(f"machine: {machine}, {os.cpu_count()} cores, python {platform.python_version()}; load {load}")
    say(f"folder: {folder}")
    say()
    say(f"each figure: the best of {args.repeat} interleaved runs (all in brackets); load: 1-min average")
    say()
    say("| dataset build | files | seconds | files/s | load |\n|---|---|---|---|---|")
    env = dict(os.environ)
    builds: dict[int, list[float]] = {1: [], 2: []}
    n = 0
    for r in range(args.repeat):
        for workers in (1, 2):
            os.environ["MUSICGEN_CACHE_DIR"] = str(work / f"cache{workers}-{r}")
            t0 = time.perf_counter()
            rep = build_midi_dataset(folder, "bench", workers=workers, progress=False)
            builds[workers].append(time.perf_counter() - t0)
            n = rep.used + len(rep.skipped)
    for workers, times in builds.items():
        dt = min(times)
        runs = ", ".join(f"{t:.1f}" for t in times)
        say(f"| {workers} worker{'s' if workers > 1 else ''}, cold | {n} | {dt:.1f} ({runs}) | {n / dt:.1f} "
            f"| {os.getloadavg()[0]:.1f} |")  # fmt: skip
    t0 = time.perf_counter()
    rep = build_midi_dataset(folder, "bench", workers=2, progress=False)
    dt = time.perf_counter() - t0
    say(f"| re-run, unchanged folder | {rep.cached} from cache | {dt:.2f} | - |")
    env["MUSICGEN_CACHE_DIR"] = os.environ["MUSICGEN_CACHE_DIR"]
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    say()
    say("| training melody-lstm | ranks | 16th steps/s (all ranks) | ratio to 1 rank | load |")
    say("|---|---|---|---|---|")
    rates: dict[int, list[float]] = {r: [] for r in args.ranks}
    for rep_i in range(args.repeat):
        for ranks in args.ranks:
            launcher = (
                [sys.executable, "-m", "musicgen_app"]
                if ranks == 1
                else [
                    shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun",
                    "--standalone",
                    "--nproc_per_node",
                    str(ranks),
                    "-m",
                    "musicgen_app",
                ]
            )
            out = work / f"runs{ranks}-{rep_i}"
            cmd = [
                *launcher, "train", "melody-lstm", "--data", "bench", "--name", "b", "--out-dir", str(out),
                "--epochs", "1", "--minutes", str(args.minutes), "--batch-size", "64", "--no-evaluate",
                "--device", args.device,
            ]  # fmt: skip
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                say(f"| {args.device} | {ranks} | failed: {proc.stderr.strip().splitlines()[-1:]} | | |")
                continue
            card = json.loads((out / "b.json").read_text())
            rates[ranks].append(card["training"]["history"][-1]["train_units_per_s"])
    base = max(rates.get(1) or [0]) or None
    for ranks, got in rates.items():
        if not got:
            continue
        best = max(got)
        runs = ", ".join(f"{x:,.0f}" for x in got)
        ratio = f"{best / base:.2f}" if base else "-"
        say(f"| {args.device} | {ranks} | {best:,.0f} ({runs}) | {ratio} | {os.getloadavg()[0]:.1f} |")
    shutil.rmtree(work, ignore_errors=True)
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        say()
        say(
            "The machine was busier than its cores (load above the core count): the scheduler gives "
            "two processes about twice the CPU share of one, so the 2-rank ratio measures that share "
            "as much as the scaling; on an idle machine it is bounded by the cores."
        )
    say()
    say(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min)")
    if args.readme:
        from readme_block import write_block

        cmd = "benchmarks/bench_training.py " + " ".join(sys.argv[1:])
        write_block("bench-training", f"`{cmd.strip()}`:\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
