"""The shared sampler: temperature, top-k, top-p, entropy temperature, symbol bias, key lock,
guards against degenerate output, reproducibility by seed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from musicgen_app.ml.sampling import Sampler, SamplingConfig, TokenClasses
from musicgen_app.ml.tokenizers import BOS, HOLD_ID, REST_ID, GridMelodyTokenizer

TOK = GridMelodyTokenizer(48, 72)
CLASSES = TokenClasses(TOK.vocab_size, REST_ID, HOLD_ID, TOK.id_pitches(), never=(BOS,))


def pitch_id(p: int) -> int:
    return TOK.encode_step(p)


def draws(cfg: SamplingConfig, logits: np.ndarray, n: int = 400, **kw) -> np.ndarray:
    out = []
    for i in range(n):
        s = Sampler(CLASSES, cfg, seed=i, **kw)
        out.append(s.sample(logits, cfg.temperature))
    return np.array(out)


def flat() -> np.ndarray:
    return np.zeros(TOK.vocab_size)


def test_never_samples_bos_and_is_reproducible() -> None:
    cfg = SamplingConfig()
    logits = flat()
    logits[BOS] = 50.0
    assert BOS not in draws(cfg, logits, 100)
    a = Sampler(CLASSES, cfg, seed=5)
    b = Sampler(CLASSES, cfg, seed=5)
    assert [a.sample(flat(), 1.0) for _ in range(50)] == [b.sample(flat(), 1.0) for _ in range(50)]


def test_temperature_sharpens_and_flattens() -> None:
    logits = flat()
    logits[pitch_id(60)] = 2.0
    cold = draws(SamplingConfig(temperature=0.1), logits)
    hot = draws(SamplingConfig(temperature=3.0), logits)
    assert (cold == pitch_id(60)).mean() > 0.99
    assert (hot == pitch_id(60)).mean() < 0.2


def test_top_k_and_top_p() -> None:
    logits = -np.arange(TOK.vocab_size, dtype=float) * 0.1
    logits[BOS] = -100
    assert set(draws(SamplingConfig(top_k=3, symbol_bias=0), logits).tolist()) == {1, 2, 3}
    p = np.exp(logits - logits.max())
    p[BOS] = 0
    p /= p.sum()
    order = np.argsort(-p)
    nucleus = set(order[: int(np.searchsorted(np.cumsum(p[order]), 0.5)) + 1].tolist())
    assert set(draws(SamplingConfig(top_p=0.5, symbol_bias=0), logits).tolist()) == nucleus


def test_entropy_temperature_heats_a_confident_model() -> None:
    confident = flat()
    confident[pitch_id(60)] = 6.0
    plain = draws(SamplingConfig(), confident)
    scaled = draws(SamplingConfig(entropy_temperature=True), confident)
    assert (scaled == pitch_id(60)).mean() < (plain == pitch_id(60)).mean() - 0.05
    unsure = flat()
    unsure[pitch_id(60)] = 1.0
    plain = draws(SamplingConfig(), unsure)
    scaled = draws(SamplingConfig(entropy_temperature=True), unsure)
    assert (scaled == pitch_id(60)).mean() > (plain == pitch_id(60)).mean()


def test_symbol_bias_reduces_rests() -> None:
    logits = flat()
    logits[REST_ID] = 3.0
    none = draws(SamplingConfig(symbol_bias=0.0), logits)
    biased = draws(SamplingConfig(symbol_bias=2.0), logits)
    assert (biased == REST_ID).mean() < (none == REST_ID).mean() / 2


def test_key_lock_masks_pitches() -> None:
    c_major = frozenset({0, 2, 4, 5, 7, 9, 11})
    got = draws(SamplingConfig(), flat(), allowed_pcs=c_major)
    pitches = [TOK.decode_id(int(t)) for t in got if TOK.is_pitch(int(t))]
    assert pitches and all(p % 12 in c_major for p in pitches)


def test_register_mask() -> None:
    got = draws(SamplingConfig(register_margin=2), flat(), pitch_range=(60, 64))
    pitches = [TOK.decode_id(int(t)) for t in got if TOK.is_pitch(int(t))]
    assert pitches and min(pitches) >= 58 and max(pitches) <= 66


@pytest.mark.parametrize("favourite", ["rest", "hold", "pitch"])
def test_guards_stop_degenerate_output(favourite: str) -> None:
    """Even a model that only wants silence, one endless note or one pitch cannot get stuck."""
    cfg = SamplingConfig(max_rest_steps=16, max_repeats=4, max_hold_steps=32)
    logits = np.full(TOK.vocab_size, -5.0)
    target = {"rest": REST_ID, "hold": HOLD_ID, "pitch": pitch_id(67)}[favourite]
    logits[target] = 10.0
    if favourite == "rest":
        logits[HOLD_ID] = 9.0  # rests are followed by holds
    s = Sampler(CLASSES, cfg, seed=1)
    tokens = [s.sample(logits, 1.0) for _ in range(200)]
    codes = TOK.decode_ids(tokens).tolist()
    pitches = [c for c in codes if c >= 0]
    assert pitches, "no note at all"
    longest_hold = run = 0
    for c in codes:
        run = run + 1 if c == -2 else 0
        longest_hold = max(longest_hold, run)
    assert longest_hold <= 32
    if favourite == "pitch":
        assert max(len(list(g)) for _, g in itertools.groupby(pitches)) <= 4
    if favourite == "rest":
        silent = run = 0
        resting = False
        for c in codes:
            if c >= 0:
                resting, run = False, 0
            elif c == -1 or resting:
                resting, run = True, run + 1
            silent = max(silent, run)
        assert 0 < silent <= 16


def test_bad_configs() -> None:
    from musicgen_app.errors import GenerationError

    for kw in ({"temperature": 0}, {"temperature": float("nan")}, {"top_p": 0}, {"top_k": -1}):
        with pytest.raises(GenerationError):
            SamplingConfig(**kw)
