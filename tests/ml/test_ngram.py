"""The n-gram baseline: the one-pass counts equal the straightforward dictionaries, it is a
distribution, the order search stops by itself on validation data, and every model is reported
against its best n-gram."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from musicgen_app.ml.ngram import KneserNeyNGram, against_baseline, choose_order

from .ngram_reference import ReferenceKneserNeyNGram

VOCAB = 7
BOS = 6


def corpus(seed: int, n: int = 40) -> list[list[int]]:
    """Random tunes (some empty, some short, some given twice) and a repeated motif, so every order
    has repeats."""
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(0, 5, int(rng.integers(0, 50))).tolist() for _ in range(n)]
    return [*seqs, *seqs[::7], [1, 2, 3, 1, 2, 3, 4, 0] * 6, [BOS, BOS, 2, BOS], [1, 2, 3, 1, 2, 3, 4, 0] * 6]


@pytest.mark.parametrize("order", [1, 2, 3, 5, 8])
def test_counts_and_probabilities_equal_the_reference(order: int) -> None:
    train = corpus(0)
    fast = KneserNeyNGram(order, VOCAB, bos=BOS).fit(train)
    ref = ReferenceKneserNeyNGram(order, VOCAB, bos=BOS).fit(train)
    for k in range(order):
        assert fast.counts(k) == ref.counts[k], f"order {order}, contexts of length {k}"
    assert fast.discounts == pytest.approx(ref.discounts, abs=1e-15)
    for seq in corpus(1, 10):  # unseen tunes: contexts seen and unseen at every order
        assert np.allclose(fast.sequence_nll(seq), ref.sequence_nll(seq), rtol=0, atol=1e-12)


def test_distributions_sum_to_one_for_random_contexts() -> None:
    rng = np.random.default_rng(2)
    lm = KneserNeyNGram(6, VOCAB, bos=BOS).fit(corpus(0))
    ref = ReferenceKneserNeyNGram(6, VOCAB, bos=BOS).fit(corpus(0))
    for _ in range(200):
        hist = rng.integers(0, VOCAB, int(rng.integers(0, 9))).tolist()
        d = lm.distribution(hist)
        assert abs(d.sum() - 1) < 1e-12 and (d > 0).all(), hist
        assert np.allclose(d, [ref.prob(hist, w) for w in range(VOCAB)], rtol=0, atol=1e-12)
        assert lm.prob(hist, 3) == pytest.approx(d[3], abs=1e-15)


def test_every_discount_leaves_mass_for_unseen_tokens() -> None:
    # every bigram of the training data occurs at least twice: n1 = 0 must not give D = 0
    lm = KneserNeyNGram(2, 4).fit([[1, 2, 1, 2, 1, 2]] * 3)
    assert all(d > 0 for d in lm.discounts)
    assert np.isfinite(lm.sequence_nll([1, 3, 2, 2])).all()


def test_the_order_search_matches_separate_fits_and_stops_by_itself() -> None:
    train, val, test = corpus(3, 60), corpus(4, 15), corpus(5, 15)
    search = choose_order(train, val, VOCAB, bos=BOS, score=[test], max_order=12, patience=2)
    assert search.stopped_by_itself and search.val_nll[search.order] == min(search.val_nll.values())
    assert max(search.val_nll) == search.order + 2  # stopped after two orders without improvement
    for order, nll in search.val_nll.items():
        ref = ReferenceKneserNeyNGram(order, VOCAB, bos=BOS).fit(train)
        assert nll == pytest.approx(np.concatenate([ref.sequence_nll(s) for s in val]).mean(), abs=1e-5)
    chosen = KneserNeyNGram(search.order, VOCAB, bos=BOS).fit(train)
    for got, seq in zip(search.scored[0], test, strict=True):
        assert np.allclose(got, chosen.sequence_nll(seq), atol=1e-12)
    assert search.describe().startswith(f"{search.order}-gram")


def test_the_order_search_stops_at_its_cap_and_refuses_empty_data() -> None:
    motif = [[0, 1, 2, 3, 4, 0, 4, 3, 2, 1] * 8]  # validation keeps improving with longer contexts
    search = choose_order(motif * 3, motif, 5, bos=5 - 1, max_order=4)
    assert max(search.val_nll) == 4 and not search.stopped_by_itself
    with pytest.raises(ValueError, match="training and validation"):
        choose_order([], motif, 5)


def test_every_model_is_reported_against_its_best_ngram(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from musicgen_app.cli.evaluate_cmd import _nll, comparison_table
    from musicgen_app.core import paths

    models = tmp_path / "models"
    models.mkdir()
    for name in ("melody-lstm", "chord-lstm", "pianoroll-gan"):
        for suffix in (".json", ".safetensors"):
            shutil.copy(paths.REPO_ROOT / "models" / f"{name}{suffix}", models / f"{name}{suffix}")
    good = {"test_nll": 0.652, "baseline_nll": 0.86, "baseline_order": 33, "unit": "nats/step"}
    weak = {"test_nll": 2.622, "baseline_nll": 2.811, "baseline_order": 6, "unit": "nats/token"}
    good, weak = ({**m, **against_baseline(m)} for m in (good, weak))
    assert good["meets_baseline_goal"] and not weak["meets_baseline_goal"]
    assert weak["nll_below_baseline"] == pytest.approx(1 - 2.622 / 2.811, abs=1e-4)
    assert against_baseline({"unit": "no likelihood (GAN)"}) == {}
    assert _nll(good) == "0.652 vs 0.860 nats/step (33-gram): 24% below, goal 15% met"
    assert _nll(weak).endswith("(6-gram): 7% below, goal 15% NOT met") and _nll({}) == "–"
    table = comparison_table(models, {"melody-lstm": good, "chord-lstm": weak, "pianoroll-gan": {}})
    rows = {line.split(" | ")[0][2:]: line for line in table.splitlines()[2:]}
    assert "| 0.860 (33-gram) | 24.2% met |" in rows["melody-lstm"]
    assert "| 2.811 (6-gram) | 6.7% **not met** |" in rows["chord-lstm"]
    assert "| – | – |" in rows["pianoroll-gan"]


@pytest.mark.parametrize(("top", "groups"), [(1 << 12, 10), (1 << 30, 10), (1 << 40, 10), (1 << 30, 5000)])
def test_each_sort_of_the_counting_pass_is_stable_and_exact(top: int, groups: int) -> None:
    from musicgen_app.ml.ngram import _stable_argsort

    rng = np.random.default_rng(top % 997 + groups)
    runs = np.sort(rng.integers(0, top // 64, 20_000)) * 64  # sorted runs, then a random last digit
    keys = runs + rng.integers(0, 64, len(runs))
    assert np.array_equal(_stable_argsort(keys, groups), np.argsort(keys, kind="stable"))
