"""Every shipped model with a likelihood beats its own best n-gram on held-out data, by 15% (the goal).

The models' NLLs are computed here, from the shipped weights and the cached datasets (built on
first use), and must match what their cards say (so `musicgen models` and the README table tell
the truth). The n-gram baselines (interpolated Kneser-Ney, fitted on the same training tokens,
order chosen on the same validation data, scored on the same test tokens) are computed here too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pytest
import torch

from musicgen_app.ml.families import evaluate as fam_eval
from musicgen_app.ml.ngram import GOAL_BELOW
from musicgen_app.ml.registry import load_model

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def _melody_metrics(model) -> dict:
    """The melody models' test NLL per step and their n-gram (counted once for both)."""
    from musicgen_app.ml import data as data_mod

    ds = data_mod.load_or_build("essen", progress=False)
    split = data_mod.split_indices(ds)
    nll, _, _ = model.score_tunes(list(ds.tunes(split["test"])))
    return {"test_nll": float(np.mean(nll)), **_melody_baseline()}


@functools.cache
def _melody_baseline() -> dict:
    from musicgen_app.ml import data as data_mod
    from musicgen_app.ml.evaluate import baseline_nll
    from musicgen_app.ml.tokenizers import GridMelodyTokenizer

    ds = data_mod.load_or_build("essen", progress=False)
    return baseline_nll(ds, data_mod.split_indices(ds), GridMelodyTokenizer())


METRICS: dict[str, Callable] = {
    "char-lstm": fam_eval.char_lstm_metrics,
    "chord-lstm": fam_eval.chord_lstm_metrics,
    "pianoroll-lstm": fam_eval.pianoroll_metrics,
    "pianoroll-seq2seq": fam_eval.pianoroll_metrics,
    "melody-lstm": _melody_metrics,
    "wavenet": _melody_metrics,
}
# measured with the n-gram's order chosen on validation data: chord-lstm, an ensemble of two LSTMs
# with its cache, 16.8% (13.6% as one LSTM); wavenet, retrained: 16.6%; char-lstm's hierarchical
# model 24% (its flat network was 3.6%); the strict xfail turns into a failure (remove the name
# then) once a model meets the goal
GOAL_NOT_MET_YET: set[str] = set()


@functools.cache
def figures(name: str) -> tuple[object, dict]:
    """The model and its held-out figures (computed once per test session)."""
    torch.set_num_threads(1)
    model = load_model(name)
    with torch.inference_mode():
        return model, METRICS[name](model)


@pytest.mark.parametrize("name", [n for n in METRICS if n != "melody-lstm"])
def test_the_model_beats_its_best_ngram_and_matches_its_card(name: str) -> None:
    model, m = figures(name)
    assert m["test_nll"] < m["baseline_nll"], f"{name}: {m['test_nll']} vs n-gram {m['baseline_nll']}"
    stored = model.card["metrics"]["test_nll"]
    assert m["test_nll"] == pytest.approx(stored, rel=0.01), (
        f"{name}: card says {stored}, weights {m['test_nll']}"
    )
    assert m["baseline_order"] > 5  # the order search went past the orders once tried by hand
    if name.startswith("pianoroll"):
        # the two-class figure (the form of the published JSB results) merges states, so it is lower
        assert m["test_nll_binary"] <= m["test_nll"]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="below 15% (issue 10)"))
        if n in GOAL_NOT_MET_YET
        else n
        for n in METRICS
    ],
)
def test_the_model_is_15_percent_below_its_best_ngram(name: str) -> None:
    _, m = figures(name)
    below = 1 - m["test_nll"] / m["baseline_nll"]
    assert below >= GOAL_BELOW, f"{name}: {below:.1%} below its {m['baseline_order']}-gram"
