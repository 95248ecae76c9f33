"""Held-out evaluation of the extra families, on their own tokens, beside the melody model's.

For each model: NLL and accuracy on its test data (its own token unit), an interpolated
Kneser-Ney n-gram (:func:`~musicgen_app.ml.ngram.choose_order`) fitted on the same training
tokens, its order chosen on the validation data, scored on the same test tokens (the model's NLL
should be at least 15% below it), statistics of continuations of held-out Essen tunes
(:func:`musicgen_app.ml.evaluate.sample_continuations`, the same tunes, seeds and key lock off
for every model), and streaming speed (time to the first note, tokens per second) on a fixed
sketch. ``musicgen evaluate --all --metrics`` (``cli/evaluate_cmd.py``) renders them as one
Markdown table and writes it into README.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.song import Note, Song, Track
from musicgen_app.ml import data as data_mod
from musicgen_app.ml.checkpoint import card_path
from musicgen_app.ml.models import GenerativeModel

if TYPE_CHECKING:
    from musicgen_app.ml.families import FamilyModel
    from musicgen_app.ml.families.common import TokenLSTM
from musicgen_app.ml.family import family_key
from musicgen_app.ml.ngram import (
    against_baseline,
    baseline_metrics,
    baseline_summary,
    choose_order,
)

logger = logging.getLogger(__name__)


def _char_sequences() -> dict[str, list[list[int]]]:
    """char-lstm's tunes as character ids by split (train/val/test: the melody model's Essen split)."""
    from musicgen_app.ml.families import char_lstm as cl

    ds = data_mod.load_or_build("essen", progress=False)
    split = data_mod.split_indices(ds)
    return {k: [cl.encode_text(cl.tune_text(t.steps)) for t in ds.tunes(v)] for k, v in split.items()}


def cache_sequences(model: FamilyModel) -> dict[str, list[list[int]]]:
    """The token sequences by split of a model with a continuous cache (char-lstm, chord-lstm)."""
    eng = model.make_engine()
    if family_key(model.card) == "chord-lstm":
        from musicgen_app.ml.families.chord_lstm import chorale_token_splits

        return chorale_token_splits(eng.vocab)
    return _char_sequences()


def cache_metrics(net: TokenLSTM, card: dict, test: list[list[int]]) -> dict:
    """Test NLL and accuracy with the card's continuous cache, and without it (the network alone)."""
    from musicgen_app.ml.families.cache import CacheConfig
    from musicgen_app.ml.families.common import sequence_nll

    cache = CacheConfig.from_card(card)
    nll, acc, n = sequence_nll(net, test, cache)
    out: dict = {"test_nll": round(nll, 4), "test_accuracy": round(acc, 4), "test_tokens": n}
    if cache is not None:
        bare, bare_acc, _ = sequence_nll(net, test)
        stored = card.get("cache", {})
        out.update({
            "test_nll_without_cache": round(bare, 4),
            "test_accuracy_without_cache": round(bare_acc, 4),
            "cache": {k: stored.get(k) for k in ("theta", "lambda", "bias", "window",
                                                  "val_nll_without_cache", "val_nll_with_cache")},
        })  # fmt: skip
    else:
        off = CacheConfig.from_card(card, even_off=True)  # settings kept, but the model plays without them
        if off is not None:
            out["test_nll_with_cache_off_when_playing"] = round(sequence_nll(net, test, off)[0], 4)
            out.update(test_nll_without_cache=None, test_accuracy_without_cache=None)  # clears old figures
    return out


def char_lstm_metrics(model: FamilyModel) -> dict:
    """Test NLL per character (with its continuous cache, and without) and its n-gram baseline (same
    Essen split as the melody model)."""
    from musicgen_app.ml.families import char_lstm as cl
    from musicgen_app.ml.families.char_notes import NoteCharLSTM, items_nll, text_items

    chars = _char_sequences()
    net = model.make_engine().model
    if isinstance(net, NoteCharLSTM):  # the hierarchical model: the same characters, no cache
        texts = ["".join(cl.CHARS[c] for c in s) for s in chars["test"]]
        nll, acc, n = items_nll(net, text_items(texts, net.cfg))
        m = {"test_nll": round(nll, 4), "test_accuracy": round(acc, 4), "test_tokens": n}
    else:
        m = cache_metrics(net, model.card, chars["test"])
    notes = sum(s.count(cl.SEMI) for s in chars["test"])
    # the LSTM predicts every character after the leading newline; so does the n-gram (bos = newline)
    rest = {k: [s[1:] for s in v] for k, v in chars.items()}
    search = choose_order(rest["train"], rest["val"], len(cl.CHARS), bos=cl.NEWLINE, score=[rest["test"]])
    return {
        **m,
        "test_nll_per_note": round(m["test_nll"] * m["test_tokens"] / max(1, notes), 4),
        "unit": "nats/char",
        **baseline_metrics(search, "on the same characters"),
    }


def chord_lstm_metrics(model: FamilyModel) -> dict:
    """Test NLL per token on the four-voice test chorales (with its continuous cache, and without),
    and its n-gram baseline."""
    from musicgen_app.ml.families.chord_lstm import chorale_token_splits

    eng = model.make_engine()
    seqs = chorale_token_splits(eng.vocab)
    m = cache_metrics(eng.model, model.card, seqs["test"])
    # the LSTM reads the first token and predicts the rest; the n-gram scores the same tokens
    rest = {k: [s[1:] for s in v] for k, v in seqs.items()}
    search = choose_order(rest["train"], rest["val"], eng.vocab.size, score=[rest["test"]])
    return {
        **m,
        "unit": "nats/token",
        "test_set": "four-voice test chorales",
        **baseline_metrics(search, "on the same tokens"),
    }


def tune_model_cache(name: str) -> dict:
    """Choose the continuous cache of a token-LSTM family model (char-lstm, chord-lstm) on its
    validation split and store it in the model's card (``cache``); returns that record."""
    import torch

    from musicgen_app.errors import MusicgenError
    from musicgen_app.ml.families.common import TokenLSTM, tune_cache
    from musicgen_app.ml.registry import load_model

    torch.set_num_threads(1)
    model = load_model(name)
    if family_key(model.card) not in ("char-lstm", "chord-lstm") or model.path is None:
        raise MusicgenError(f"{name}: only char-lstm and chord-lstm models have a continuous cache")
    net = model.make_engine().model
    if not isinstance(net, TokenLSTM):
        raise MusicgenError(f"{name}: a hierarchical char-lstm model has no continuous cache")
    cfg, record = tune_cache(net, cache_sequences(model)["val"])
    cache = {**cfg.to_card(), **record}
    cpath = card_path(Path(model.path))
    stored = json.loads(cpath.read_text())
    stored["cache"] = cache
    _write_card(cpath, stored)
    return cache


@functools.lru_cache(maxsize=1)
def _key_ngram() -> tuple[tuple[np.ndarray, ...], dict]:
    """Per test chorale, the per-key n-gram's NLL of every key and frame, (88, T) each, and the
    baseline's figures (the fit is shared by both piano-roll models, so it is done once per process)."""
    from musicgen_app.ml.families import pianoroll as pr
    from musicgen_app.ml.families.chorales import chorale_splits

    splits = chorale_splits()

    def keys(name: str) -> list[np.ndarray]:
        """Every key's state sequence of every chorale of a split, chorale by chorale."""
        rolls = [pr.roll_of([(s, d, p) for s, d, p, _ in ch.notes], ch.length_steps) for ch in splits[name]]
        return [r[:, k] for r in rolls for k in range(pr.KEYS)]

    # a key's sequence starts with a silent "before the piece" state, the n-gram's <s>
    search = choose_order(keys("train"), keys("valid"), 3, bos=pr.SILENT, score=[keys("test")])
    per_key = search.scored[0]
    per_chorale = tuple(np.stack(per_key[i : i + pr.KEYS]) for i in range(0, len(per_key), pr.KEYS))
    figures = baseline_metrics(search, "over each key's own states (counts shared by all keys)")
    # the order is chosen on the NLL per key and frame (the same order as the sum over the 88 keys)
    return per_chorale, {**figures, "baseline_val_nll_unit": "nats per key and frame"}


def pianoroll_metrics(model: FamilyModel) -> dict:
    """Frame NLL (summed over 88 keys) and a per-key n-gram over each key's own state sequence."""
    from musicgen_app.ml.families import pianoroll as pr
    from musicgen_app.ml.families.chorales import chorale_splits

    net = model.make_engine().model
    metrics = pr.evaluate(net, chorale_splits()["test"])
    first = pr.S2S_CONTEXT if net.cfg.kind == "seq2seq" else 0  # seq2seq scores frames after its context
    per_key, figures = _key_ngram()
    total = sum(float(m[:, first:].sum()) for m in per_key)
    frames = sum(max(0, m.shape[1] - first) for m in per_key)
    metrics.update({**figures, "baseline_nll": round(total / max(1, frames), 4)})
    return metrics


def gan_metrics(model: GenerativeModel) -> dict:
    """No likelihood: statistics of continuations of the test chorales, beside the real ones, the
    frame LSTM's and two baselines (:mod:`musicgen_app.ml.families.chorale_continuations`)."""
    from musicgen_app.ml.families import chorale_continuations as cc
    from musicgen_app.ml.families.chorales import chorale_splits
    from musicgen_app.ml.registry import load_model

    others = {"pianoroll-lstm": load_model("pianoroll-lstm")}
    return {
        "unit": "no likelihood (GAN)",
        "chorale_continuations": cc.compare({model.name: model, **others}, chorale_splits()["test"]),
    }


def note_transformer_metrics(model: FamilyModel) -> dict:
    """Test NLL per token and per note over every corpus, beside the n-gram's (order chosen on
    validation, same tokens)."""
    from musicgen_app.ml.families import note_transformer as nt

    net, vocab = nt.load_network(model.card, str(model.path))
    return nt.evaluate_network(net, vocab, nt.load_corpora(vocab))


def speed(model: GenerativeModel, runs: int = 5) -> dict:
    """Median time to the first note (cold: no cached prefill) and tokens per second over ``runs``
    sessions."""
    from musicgen_app.ml.generate import SamplingConfig, start_session

    melody = [60, 62, 64, 65, 67, 69, 67, 65, 64, 62, 64, 60, 67, 65, 64, 62]
    firsts, rates = [], []
    for r in range(runs + 1):
        # a different sketch each run (moved by r semitones), so no run reuses a cached prefill
        notes = [Note(i * 240, p + r, i * 240 + 240, 90) for i, p in enumerate(melody)]
        song = Song(tracks=[Track(notes=notes)])
        t0 = time.perf_counter()
        first = None
        fin = None
        for ev in start_session(model, song, 0, bars=4, sampling=SamplingConfig(seed=r, key_lock=None)):
            if isinstance(ev, NoteEvent) and first is None:
                first = time.perf_counter() - t0
            if isinstance(ev, SessionFinished):
                fin = ev
        if r == 0:
            continue  # warm-up
        if first is not None:
            firsts.append(first * 1000)
        if fin is not None and fin.seconds > 0:
            rates.append(fin.tokens / fin.seconds)
    return {
        "first_note_ms": round(statistics.median(firsts), 2) if firsts else None,
        "tokens_per_s": round(statistics.median(rates), 1) if rates else None,
    }


def evaluate_family(
    name: str, *, update_card: bool = True, n_tunes: int = 30, with_samples: bool = True
) -> dict:
    """All figures of one family model; with ``update_card`` they are merged into its card."""
    import torch

    from musicgen_app.ml.evaluate import sample_continuations
    from musicgen_app.ml.registry import get_family, load_model

    torch.set_num_threads(1)
    model = load_model(name)
    t0 = time.perf_counter()
    with torch.inference_mode():
        metric = get_family(family_key(model.card)).metric  # its own figures, in its own unit
        if metric:
            m = globals()[metric](model)
        else:
            from musicgen_app.ml.evaluate import evaluate_model

            m = evaluate_model(name, with_samples=False)["metrics"]
    m.update(against_baseline(m))
    if with_samples:
        ds = data_mod.load_or_build("essen", progress=False)
        split = data_mod.split_indices(ds)
        m["continuations"] = sample_continuations(model, ds, split["test"], n_tunes=n_tunes)
    m.update(speed(model))
    m["eval_seconds"] = round(time.perf_counter() - t0, 1)
    if update_card and model.path is not None:
        _merge_into_card(Path(model.path), m)
    return {"name": model.name, "seed_paper": model.card.get("seed_paper"), "metrics": m}


def _merge_into_card(path: Path, extra: dict) -> None:
    """Merge ``extra`` into the metrics of the card beside ``path`` (atomically)."""
    cpath = card_path(path)
    stored = json.loads(cpath.read_text())
    stored["metrics"] = {**stored.get("metrics", {}), **extra}
    _write_card(cpath, stored)


def _write_card(cpath: Path, card: dict) -> None:
    """Write a card atomically."""
    tmp = cpath.with_name(cpath.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=1) + "\n")
    tmp.replace(cpath)


def format_family_report(report: dict) -> str:
    """A readable summary of :func:`evaluate_family`'s result."""
    m = report["metrics"]
    lines = [f"{report['name']} (paper {report.get('seed_paper')})"]
    if "test_nll" in m:
        lines += [
            f"  test NLL        {m['test_nll']:.4f} {m.get('unit', '')}",
            *(
                [f"  without cache   {m['test_nll_without_cache']:.4f} (the network alone)"]
                if m.get("test_nll_without_cache") is not None
                else []
            ),
            f"  n-gram baseline {m['baseline_nll']:.4f} ({m.get('baseline', '')})",
            f"  NLL vs n-gram   {baseline_summary(m)}",
            f"  accuracy        {m.get('test_accuracy', float('nan')):.1%}",
        ]
    cc = m.get("chorale_continuations")
    if cc:
        lines.append(f"  continuations of {cc['cases']} cuts of {cc['chorales']} test chorales, no key lock:")
        keys = list(next(iter(cc["systems"].values())))
        lines.append("    " + f"{'':<18}" + "".join(f"{k:>14}" for k in keys))
        for name, row in cc["systems"].items():
            lines.append("    " + f"{name:<18}" + "".join(f"{row[k]:>14.3f}" for k in keys))
    for k in ("test_nll_binary", "test_bits_per_key_frame", "test_nll_per_note"):
        if k in m:
            lines.append(f"  {k:<15} {m[k]}")
    c = m.get("continuations")
    if c:
        lines.append(f"  continuations of {c['tunes']} held-out Essen tunes (key lock off):")
        for k in ("in_key", "density", "repetition", "distinct"):
            lines.append(f"    {k:<11} model {c['model'][k]:.3f}   real {c['real'][k]:.3f}")
    lines.append(f"  first note {m.get('first_note_ms')} ms, {m.get('tokens_per_s')} tokens/s")
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    """`musicgen evaluate NAME` for a family model."""
    report = evaluate_family(
        args.name, update_card=args.update_card, n_tunes=args.tunes, with_samples=not args.no_samples
    )
    print(json.dumps(report, indent=2) if args.json else format_family_report(report))
    return 0


def evaluate_all(*, n_tunes: int, with_samples: bool, update_card: bool) -> dict[str, dict]:
    """`musicgen evaluate --all --metrics`: every shipped model's figures (printed; a family card is
    updated, another model's card only with ``update_card``), by model name."""
    from musicgen_app.ml.evaluate import evaluate_model, format_report
    from musicgen_app.ml.registry import is_family_card, list_models, load_model

    figures: dict[str, dict] = {}
    for info in list_models():
        if is_family_card(info.card):
            report = evaluate_family(info.name, update_card=True, n_tunes=n_tunes, with_samples=with_samples)
            print(format_family_report(report), flush=True)
        else:  # another family's card is its owner's to update: its figures go to the table only
            report = evaluate_model(
                info.name, update_card=update_card, n_tunes=n_tunes, with_samples=with_samples
            )
            report["metrics"].update(speed(load_model(info.name)))
            print(format_report(report), flush=True)
        figures[info.name] = report["metrics"]
    return figures
