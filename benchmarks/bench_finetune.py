"""Fine-tuning the melody model on a musician's 50 songs: how long it takes and what it buys.

The musician's folder is 50 POP909 songs (the first 50 by folder name outside POP909's test split,
which is by a hash of each file's content; each song with its annotation files). The fine-tune runs
as a user runs it, a process of its own from a cold dataset cache:
``musicgen train melody-lstm --data FOLDER --from melody-lstm --minutes M``; its wall time includes
starting, reading the 50 files, training, validation and writing the model (``--threads`` 1).

Both models, the shipped one and the fine-tuned one, are then scored on held-out songs of the same
collection that the folder does not hold (POP909's test split): NLL and accuracy per 16th step,
read whole from each song's start, and the continuation judge (:mod:`musicgen_app.ml.judge`) on
its pop sketches, the same sketches and seeds as ``musicgen evaluate --all``, at the judge's
temperature (0.9) and at the others given: pass rate, notes per bar against the real
continuation's, and the classifier that tells the real continuation from the model's (50% = it
cannot).

Run: ``nice -n 5 .venv/bin/python benchmarks/bench_finetune.py [--songs 50] [--minutes 4]
[--lr 0 0.001] [--sketches 60] [--temperatures 0.9 1.0 1.1] [--readme]`` (one fine-tune per
learning rate; 0: the recipe's).
The load average is printed with the figures: on a shared machine a run gets fewer batches in its
minutes.
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

README_BLOCK = "bench-finetune"


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def pick_songs(pop909: Path, n: int, dest: Path) -> list[str]:
    """Copy the first ``n`` POP909 songs outside its test split (with their annotation files)
    into ``dest``; returns their folder names."""
    from musicgen_app.ml.midi_data import file_split, midi_files

    chosen: list[str] = []
    for f in midi_files(pop909):
        if len(chosen) == n:
            break
        if f.parent == pop909 or file_split(f) == "test":
            continue
        shutil.copytree(f.parent, dest / f.parent.name)
        chosen.append(f.parent.name)
    return chosen


def fine_tune(
    folder: Path, work: Path, minutes: float, lr: float | None, name: str
) -> tuple[dict, list[dict], float]:
    """Run the command (each run from a cold cache); returns (its final event, every event, wall s)."""
    cmd = [sys.executable, "-m", "musicgen_app", "train", "melody-lstm", "--data", str(folder)]
    cmd += ["--from", "melody-lstm", "--minutes", f"{minutes:g}", "--out-dir", str(work / "runs")]
    cmd += ["--name", name, "--progress-json"] + (["--lr", str(lr)] if lr else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT), MUSICGEN_CACHE_DIR=str(work / f"cache-{name}"))
    t0 = time.perf_counter()
    events: list[dict] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True, cwd=work) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            ev = json.loads(line)
            ev["at_s"] = round(time.perf_counter() - t0, 1)
            events.append(ev)
            if ev["event"] in ("dataset", "start", "epoch", "done"):
                shown = {k: v for k, v in ev.items() if k != "skipped"}
                print(f"  {ev['at_s']:>6.1f} s  {json.dumps(shown)}")
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not events or events[-1]["event"] != "done":
        raise SystemExit(f"the fine-tune failed (exit code {proc.returncode})")
    return events[-1], events, wall


def score(model_path: str, tunes: list, sketches: list, temperatures: list[float]) -> dict:
    """Held-out NLL/accuracy per step and the judge's figures (per temperature) of one model."""
    from musicgen_app.ml import judge
    from musicgen_app.ml.registry import load_model

    model = load_model(model_path)
    t0 = time.perf_counter()
    nll, pred, tgt = model.score_tunes(tunes)
    out = {
        "nll": float(nll.mean()),
        "accuracy": float((pred == tgt).mean()),
        "onset_accuracy": float((pred[tgt >= 3] == tgt[tgt >= 3]).mean()),
        "steps": len(tgt),
    }
    if sketches:
        out["judge"] = {t: judge.evaluate_model_on(model, sketches, temperature=t) for t in temperatures}
    out["seconds"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pop909", default=str(ROOT.parent / "shared" / "data" / "pop909"))
    ap.add_argument("--songs", type=int, default=50)
    ap.add_argument("--minutes", type=float, default=4.0, help="the training budget (--minutes)")
    ap.add_argument(
        "--lr", type=float, nargs="+", default=[0.0], help="learning rates, one run each (0: the recipe's)"
    )
    ap.add_argument("--sketches", type=int, default=60, help="pop sketches for the judge (0: none)")
    ap.add_argument(
        "--temperatures", type=float, nargs="+", default=[0.9], help="sampling temperatures for the judge"
    )
    ap.add_argument("--keep", action="store_true", help="keep the work folder (the model, the data)")
    ap.add_argument("--readme", action="store_true", help="write the figures into README.md")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    os.environ["MUSICGEN_CACHE_DIR"] = str(work / "cache")  # the held-out dataset's
    from musicgen_app.core import paths
    from musicgen_app.ml import data as data_mod
    from musicgen_app.ml import judge
    from musicgen_app.ml.midi_data import build_midi_dataset, load_midi_dataset

    pop909 = Path(args.pop909)
    folder = work / "my-songs"
    songs = pick_songs(pop909, args.songs, folder)
    runs = []
    for lr in args.lr:
        load_before = _load()
        print(f"{len(songs)} songs ({songs[0]}..{songs[-1]}); lr {lr or 'recipe'}; load {load_before}")
        name = f"pop50-lr{lr:g}" if lr else "pop50-tuned"
        final, events, wall = fine_tune(folder, work, args.minutes, lr or None, name)
        load_after = _load()
        print(f"fine-tune: {wall:.1f} s wall ({final['stopped']}); load {load_after}")
        runs.append((lr, final, events, wall, load_before, load_after))

    # held-out: POP909's test split (by content hash; none of it is in the folder)
    build_midi_dataset(pop909, "pop909", progress=False)
    ds = load_midi_dataset("pop909")
    held_out = list(ds.tunes(data_mod.split_indices(ds)["test"]))
    sketches = judge.pop_sketches(args.sketches, "pop909") if args.sketches else []
    temps = args.temperatures
    base = score(str(paths.models_dir() / "melody-lstm.safetensors"), held_out, sketches, temps)
    rows = [("melody-lstm (shipped)", base)]
    from musicgen_app.ml.families.builtin import MelodyLSTMFamily

    machine = platform.processor() or platform.machine()
    lrs = " ".join(f"{lr:g}" for lr in args.lr)
    temps_text = " ".join(f"{t:g}" for t in temps)
    lines = [
        f"`benchmarks/bench_finetune.py --songs {args.songs} --minutes {args.minutes:g} --lr {lrs} "
        f"--sketches {args.sketches} --temperatures {temps_text}` ({machine}, {os.cpu_count()} "
        "cores, one torch thread). The "
        f"musician's folder: {len(songs)} POP909 songs ({songs[0]}-{songs[-1]}, outside its test "
        f"split). Each run is `musicgen train melody-lstm --data FOLDER --from melody-lstm --minutes "
        f"{args.minutes:g} [--lr LR]` from a cold cache; its wall time counts starting, reading the "
        f"files, training, validating and writing the model. Held out: POP909's test split "
        f"({len(held_out)} songs, {base['steps']} steps; none in the folder) and the judge's "
        f"{len(sketches)} pop sketches from it.",
        "",
    ]
    for lr, final, events, wall, load_before, load_after in runs:
        epochs = [e for e in events if e["event"] == "epoch"]
        start = next(e for e in events if e["event"] == "start")
        dataset = next(e for e in events if e["event"] == "dataset")
        label = f"lr {lr:g}" if lr else f"lr {MelodyLSTMFamily.LOOP['lr']:g} (the recipe's)"
        lines.append(
            f"- {label}: **{wall / 60:.1f} minutes** wall (load average {load_before} before, "
            f"{load_after} after): reading the {dataset['used']} files {dataset['at_s']:.0f} s, then "
            f"{start['train_tunes']} songs for training and {start['val_tunes']} for validation, "
            f"{len(epochs)} epochs of {start['batches_per_epoch']} batches, stopped by {final['stopped']} "
            f"(best epoch {final['best_epoch']}, validation NLL {final['best_val_nll']})."
        )
        rows.append(
            (
                f"fine-tuned on the {len(songs)} songs, {label}",
                score(final["path"], held_out, sketches, temps),
            )
        )
    lines += [
        "",
        "| model | held-out NLL (nats/step) | accuracy | onset accuracy | temperature | judge: pass "
        "| failed checks | notes per bar (real) | classifier (50% = cannot tell) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        first = f"| {name} | {r['nll']:.3f} | {r['accuracy']:.1%} | {r['onset_accuracy']:.1%} |"
        for k, (t, j) in enumerate((r.get("judge") or {"–": None}).items()):
            head = first if k == 0 else "| | | | |"
            if j is None:
                lines.append(f"{head} – | – | – | – | – |")
                continue
            fails = ", ".join(f"{c} {v}" for c, v in j["fails"].items()) or "–"
            lines.append(
                f"{head} {t:.1f} | {j['pass_rate']:.0%} | {fails} | {j['notes_per_bar']:.1f} "
                f"({j['real_notes_per_bar']:.1f}) | {j['classifier']:.0%} |"
            )
    body = "\n".join(lines)
    print()
    print(body)
    if args.readme:
        from musicgen_app.cli.readme_block import write_block

        print(f"wrote {write_block(README_BLOCK, body, after='**Distributed training.**')}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")


if __name__ == "__main__":
    main()
