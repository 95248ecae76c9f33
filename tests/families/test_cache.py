"""The continuous cache of the token LSTMs (chord-lstm; char-lstm's flat network before its hierarchical
model) (``ml/families/cache.py``): it lowers the shipped
models' NLL on real validation pieces, the streaming stepper samples from exactly the distribution
evaluation scores, and a cached take is deterministic by seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicgen_app.core.events import NoteEvent
from musicgen_app.core.song import Note, Song, Track
from musicgen_app.ml.families.cache import CacheConfig, piece_log_probs
from musicgen_app.ml.families.common import CachedTokenStepper, sequence_nll
from musicgen_app.ml.families.evaluate import cache_sequences
from musicgen_app.ml.generate import SamplingConfig, start_session
from musicgen_app.ml.registry import load_model

CACHED = ["chord-lstm"]  # char-lstm ships its hierarchical model now: no cache


@pytest.fixture(scope="module", params=CACHED)
def shipped(request: pytest.FixtureRequest) -> tuple:
    """(model, its network, its cache settings, a few validation sequences)."""
    torch.set_num_threads(1)  # the suite runs on 2 shared cores
    model = load_model(request.param)
    cache = CacheConfig.from_card(model.card, even_off=True)  # (a cache shipped off counts too)
    assert cache is not None, f"{request.param} has no cache settings"
    val = cache_sequences(model)["val"]
    return model, model.make_engine().model, cache, [val[i] for i in (0, 3, 7, 11, 19)]


def test_the_cache_lowers_the_validation_nll_of_the_shipped_model(shipped: tuple) -> None:
    _, net, cache, pieces = shipped
    with torch.inference_mode():
        bare, _, n = sequence_nll(net, pieces)
        cached, _, _ = sequence_nll(net, pieces, cache)
    assert n > 500
    assert cached < 0.99 * bare, (cached, bare)
    # a cache that may not look back (window 1 over a very flat similarity) changes almost nothing
    tiny = CacheConfig(theta=0.0, lam=1e-6, window=1)
    with torch.inference_mode():
        assert sequence_nll(net, pieces, tiny)[0] == pytest.approx(bare, rel=1e-4)


def test_the_stepper_samples_from_the_distribution_evaluation_scores(shipped: tuple) -> None:
    _, net, cache, pieces = shipped
    seq = pieces[1][:160]
    k = 12  # the prompt read at the prefill, then one step per token
    with torch.inference_mode():
        y, _ = net.top_states(torch.tensor([seq[:-1]]))
        scored = piece_log_probs(net.head_logits(y)[0].numpy(), y[0].numpy(), np.asarray(seq[1:]), cache)
        stepper = CachedTokenStepper(net, cache)
        logp, state = stepper.prefill(seq[:k])
        streamed = [logp]
        for t in seq[k:-1]:
            logp, state = stepper.step(t, state)
            streamed.append(logp)
        bare = piece_log_probs(net.head_logits(y)[0].numpy(), y[0].numpy(), np.asarray(seq[1:]), None)
    got = np.stack(streamed)  # the distributions of tokens k .. end
    assert np.allclose(np.exp(got), np.exp(scored[k - 1 :]), atol=2e-4)
    assert np.allclose(np.exp(got).sum(axis=1), 1.0, atol=1e-6)
    # and the cache really is in it: the network alone differs
    assert np.abs(np.exp(bare[k - 1 :]) - np.exp(got)).max() > 0.05


def _take(model, seed: int) -> list[tuple[int, int, int]]:
    melody = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64, 62, 60]
    song = Song(tracks=[Track(notes=[Note(i * 240, p, i * 240 + 240, 90) for i, p in enumerate(melody)])])
    events = start_session(model, song, 0, bars=4, sampling=SamplingConfig(seed=seed, temperature=0.9))
    return [(e.note.start_tick, e.note.pitch, e.note.end_tick) for e in events if isinstance(e, NoteEvent)]


def test_a_take_is_deterministic_by_seed(shipped: tuple) -> None:
    """Same seed, same take; another seed, another (with the cache on, as chord-lstm ships)."""
    model = shipped[0]
    first = _take(model, 5)
    assert len(first) >= 4
    assert _take(model, 5) == first
    assert _take(model, 6) != first


def test_only_the_token_lstms_tune_a_cache() -> None:
    from musicgen_app.errors import MusicgenError
    from musicgen_app.ml.families.evaluate import tune_model_cache

    with pytest.raises(MusicgenError, match="only char-lstm and chord-lstm"):
        tune_model_cache("wavenet")
    with pytest.raises(MusicgenError, match="hierarchical char-lstm model has no continuous cache"):
        tune_model_cache("char-lstm")


def test_the_shipped_chord_lstm_is_an_ensemble_whose_mixture_beats_each_member() -> None:
    """chord-lstm ships as one checkpoint of several LSTMs (issue 11's NLL goal): it loads as an
    ensemble with the card's mixture weights, and on validation chorales the mixture scores better
    than any of its members alone (the stepper test above streams the same mixture)."""
    from musicgen_app.ml.families.common import TokenLSTMEnsemble

    torch.set_num_threads(1)
    model = load_model("chord-lstm")
    net = model.make_engine().model
    assert isinstance(net, TokenLSTMEnsemble)
    record = model.card["ensemble"]
    assert len(net.members) == record["members"] >= 2
    assert net.weights.numpy() == pytest.approx(record["weights"], abs=1e-3)
    assert min(record["weights"]) > 0.05  # every member counts
    val = cache_sequences(model)["val"]
    pieces = [val[i] for i in (0, 3, 7, 11, 19)]
    with torch.inference_mode():
        mixed = sequence_nll(net, pieces)[0]
        alone = [sequence_nll(m, pieces)[0] for m in net.members]
    assert mixed < min(alone) - 0.01, (mixed, alone)
