"""n-gram baseline speed: the one-pass numpy fit against the dictionary fit it replaced, in the same
run, on the Essen melody tokens (1.3 million training steps), then the whole order search of every
corpus the models are compared on.

    .venv/bin/python benchmarks/bench_ngram.py [--orders 3,5,10,20] [--no-old] [--corpora melody,char]

Prints, per order: the old fit (dictionaries, one order at a time), the new fit of that order alone,
and the same new fit scoring the validation tunes; then per corpus: the order search (orders 1, 2, ...
until two orders bring no improvement on validation data), its chosen order and its time; and the
machine with its load (other processes share the cores, so the figures are noisy).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from ml.ngram_reference import ReferenceKneserNeyNGram

from musicgen_app.ml.ngram import KneserNeyNGram, choose_order

Corpus = tuple[list, list, list, int, int]  # train, val, test, vocabulary size, <s>


def melody() -> Corpus:
    """The melody models' step tokens on the Essen split."""
    from musicgen_app.ml import data as data_mod
    from musicgen_app.ml.tokenizers import GridMelodyTokenizer

    ds = data_mod.load_or_build("essen", progress=False)
    split = data_mod.split_indices(ds)
    tok = GridMelodyTokenizer()
    enc = {k: [tok.encode_steps(t.steps) for t in ds.tunes(split[k])] for k in ("train", "val", "test")}
    return enc["train"], enc["val"], enc["test"], tok.vocab_size, 0


def char() -> Corpus:
    """The character model's text of the same tunes."""
    from musicgen_app.ml import data as data_mod
    from musicgen_app.ml.families import char_lstm as cl

    ds = data_mod.load_or_build("essen", progress=False)
    split = data_mod.split_indices(ds)
    enc = {
        k: [cl.encode_text(cl.tune_text(t.steps))[1:] for t in ds.tunes(split[k])]
        for k in ("train", "val", "test")
    }
    return enc["train"], enc["val"], enc["test"], len(cl.CHARS), cl.NEWLINE


def chorale() -> Corpus:
    """The chord model's slice tokens of the chorales."""
    from musicgen_app.ml.families import chord_lstm as cl
    from musicgen_app.ml.families.chorales import chorale_splits
    from musicgen_app.ml.registry import load_model

    vocab = load_model("chord-lstm").make_engine().vocab
    s = chorale_splits()
    train = [x[1:] for x in cl.encoded_split(vocab, s["train"])]
    val, test = ([x[1:] for x in cl.encoded_split(vocab, s[k], soprano=False)] for k in ("valid", "test"))
    return train, val, test, vocab.size, 0


def keys() -> Corpus:
    """The piano rolls' per-key state sequences (88 per chorale)."""
    from musicgen_app.ml.families import pianoroll as pr
    from musicgen_app.ml.families.chorales import chorale_splits

    s = chorale_splits()

    def seqs(name: str) -> list[np.ndarray]:
        rolls = [pr.roll_of([(a, d, p) for a, d, p, _ in ch.notes], ch.length_steps) for ch in s[name]]
        return [r[:, k] for r in rolls for k in range(pr.KEYS)]

    return seqs("train"), seqs("valid"), seqs("test"), 3, pr.SILENT


CORPORA: dict[str, Callable[[], Corpus]] = {"melody": melody, "char": char, "chorale": chorale, "keys": keys}


def seconds(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``fn()`` (the CPU figure is the one other jobs disturb less)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def fmt(t: tuple[float, float]) -> str:
    """``12.34s (5.67s CPU)``."""
    return f"{t[0]:.2f}s ({t[1]:.2f}s CPU)"


def machine() -> str:
    """CPU, cores, load, versions."""
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}; {os.cpu_count()} cores; load average {load}; Python {platform.python_version()}, "
        f"numpy {np.__version__}; single-threaded"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", default="3,5,10,20", help="orders to fit old and new (melody tokens)")
    parser.add_argument("--no-old", action="store_true", help="skip the dictionary fit (minutes)")
    parser.add_argument("--corpora", default="melody,char,chorale,keys", help="corpora of the order search")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    train, val, _test, vocab, bos = melody()
    print(f"\nmelody tokens: {sum(map(len, train)):,} training, {sum(map(len, val)):,} validation steps")
    print(f"{'order':>5} {'old fit':>24} {'new fit':>24} {'new fit + val NLL':>24} {'speed-up (CPU)':>14}")
    for order in (int(x) for x in args.orders.split(",")):
        nan = (float("nan"), float("nan"))
        old = nan if args.no_old else seconds(lambda o=order: ReferenceKneserNeyNGram(o, vocab).fit(train))
        new = seconds(lambda o=order: KneserNeyNGram(o, vocab).fit(train))
        scored = seconds(lambda o=order: KneserNeyNGram(o, vocab).fit(train).nll(val))
        print(
            f"{order:>5} {fmt(old):>24} {fmt(new):>24} {fmt(scored):>24} {old[1] / new[1]:>13.0f}x",
            flush=True,
        )
    print(f"\n{'corpus':<8} {'train tokens':>12} {'orders tried':>12} {'chosen':>6} {'val NLL':>8} "
          f"{'test NLL':>8} {'search':>24} {'CPU per order':>13}")  # fmt: skip
    for name in args.corpora.split(","):
        train, val, test, vocab, bos = CORPORA[name]()
        wall, cpu = time.perf_counter(), time.process_time()
        s = choose_order(train, val, vocab, bos=bos, score=[test])
        took = (time.perf_counter() - wall, time.process_time() - cpu)
        tried = max(s.val_nll)
        nll = f"{s.val_nll[s.order]:>8.4f} {s.mean_nll():>8.4f}"
        print(f"{name:<8} {sum(map(len, train)):>12,} {f'1..{tried}':>12} {s.order:>6} {nll} "
              f"{fmt(took):>24} {took[1] / tried:>12.2f}s", flush=True)  # fmt: skip
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
