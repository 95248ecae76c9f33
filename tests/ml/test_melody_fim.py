"""The fill-in-the-middle melody LSTM (ml/melody_fim.py): the prompt layout, a network initialised
from the shipped melody-lstm reads like it, and it fills a range through the same session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from musicgen_app.ml.fill import fill_song, split_at_range
from musicgen_app.ml.melody_fim import (
    GAP_FAR,
    GAP_SUFFIX,
    MelodyFIMModel,
    fim_layout,
    init_from_melody_lstm,
    load_melody_fim,
    marker_ids,
)
from musicgen_app.ml.registry import load_model
from musicgen_app.ml.sampling import SamplingConfig

from .test_fill import band_song


@pytest.fixture(scope="module")
def base():
    return load_model("melody-lstm")


def test_the_layout_reads_the_suffix_then_the_prefix_each_input_predicting_its_step(base) -> None:
    tok = base.tokenizer
    suf, pre = marker_ids(tok)
    tokens, steps, gaps = fim_layout([10, 11, 12], [20, 21], 4, tok)
    assert tokens == [suf, 20, 21, pre, 10, 11, 12]
    # suffix inputs predict steps 7, 8 (and a dummy 9); <pre> predicts prefix step 0; the last
    # prefix token predicts the middle's first step (3), 4 steps before the suffix
    assert steps == [7, 8, 9, 0, 1, 2, 3]
    assert gaps == [GAP_SUFFIX] * 3 + [7, 6, 5, 4]
    far = fim_layout(list(range(300)), [], 10, tok)[2]
    assert far[3] == GAP_FAR and far[-1] == 10


def test_a_network_initialised_from_melody_lstm_continues_like_it(base) -> None:
    net = init_from_melody_lstm(base.net, base.tokenizer).eval()
    tokens = torch.tensor([[0, 20, 2, 2, 22, 2, 24, 2]])
    pos = torch.arange(8)[None] % 16
    bars = torch.full((1, 8), 16)
    with torch.inference_mode():
        want, _ = base.net(tokens, pos, bars)
        got, _ = net.forward_fim(tokens, pos, bars, torch.full((1, 8), GAP_FAR))
    v = base.tokenizer.vocab_size
    assert torch.allclose(got[..., :v], want, atol=1e-5)
    assert (got[..., v:].amax(-1) < want.amax(-1) - 5).all()  # the markers are (almost) never predicted


def test_a_fim_model_fills_a_range_and_round_trips_its_checkpoint(base, tmp_path: Path) -> None:
    from musicgen_app.ml.checkpoint import read_card, save_checkpoint

    net = init_from_melody_lstm(base.net, base.tokenizer)
    card = {
        "name": "fim-test",
        "family": "melody-fim",
        "architecture": {"class": "MelodyFIM", "args": dict(net.fim_cfg.__dict__)},
        "tokenizer": base.tokenizer.to_dict(),
    }
    path = save_checkpoint(net.state_dict(), card, tmp_path / "fim-test.safetensors")
    model = load_melody_fim("fim-test", read_card(path), path)
    assert isinstance(model, MelodyFIMModel)
    assert isinstance(load_model(path), MelodyFIMModel)
    song = band_song()
    start, end = 4 * 1920, 6 * 1920
    filled, session = fill_song(model, song, 0, start, end, sampling=SamplingConfig(seed=3), candidates=2)
    new = split_at_range(filled.tracks[0].notes, start, end)[1]
    assert new and all(start <= n.start_tick and n.end_tick <= end for n in new)
    assert session.plan.cond is not None and session.plan.tokens[0] == marker_ids(base.tokenizer)[0]
    assert len(session.plan.suffix) == 1  # only the join into the suffix is scored
    assert np.isfinite([c.score for c in session.candidates]).all()


def test_the_numpy_adapter_computes_what_the_network_does(base) -> None:
    from musicgen_app.ml.melody_fim import FIMTables, MelodyFIMAdapter

    torch.manual_seed(0)
    net = init_from_melody_lstm(base.net, base.tokenizer).eval()
    with torch.no_grad():
        net.gap_embed.weight.normal_(0, 0.5)  # a gap that matters
    tokens, steps, gaps = fim_layout([10, 2, 2, 12, 2, 14] * 5, [20, 2, 21, 2], 8, base.tokenizer)
    conds = [(s % 16, 16, g) for s, g in zip(steps, gaps, strict=True)]
    after = (len(tokens) % 16, 16, 3)
    adapter = MelodyFIMAdapter(FIMTables(net), lambda k: conds[k] if k < len(conds) else after, base.classes)
    state, first = adapter.prefill(tokens)
    _, second = adapter.step(15, state)
    t = torch.tensor([[*tokens, 15]])
    with torch.inference_mode():
        ref, _ = net.forward_fim(
            t,
            torch.tensor([[c[0] for c in [*conds, after]]]),
            torch.full_like(t, 16),
            torch.tensor([[c[2] for c in [*conds, after]]]),
        )
    assert np.allclose(ref[0, -2].numpy(), first, atol=1e-4)
    assert np.allclose(ref[0, -1].numpy(), second, atol=1e-4)
