"""The streaming adapter computes exactly what the network computes, with or without cached
prefills; the grid decoder emits each note once its length is known; the n-gram baseline is a
proper distribution."""

from __future__ import annotations

import numpy as np
import torch

from musicgen_app.core.song import Note
from musicgen_app.ml.families.melody_lstm import MelodyLSTM, MelodyLSTMConfig, MelodyLSTMModel
from musicgen_app.ml.generate import GridNoteDecoder
from musicgen_app.ml.ngram import KneserNeyNGram
from musicgen_app.ml.tokenizers import HOLD_ID, REST_ID, GridMelodyTokenizer

TOK = GridMelodyTokenizer(48, 84)


def tiny_model(bar_conditioning: bool = True) -> MelodyLSTMModel:
    torch.manual_seed(1)
    cfg = MelodyLSTMConfig(TOK.vocab_size, embed_dim=12, hidden_size=24, num_layers=2, pos_dim=4,
                           bar_conditioning=bar_conditioning)  # fmt: skip
    return MelodyLSTMModel("tiny", {}, TOK, MelodyLSTM(cfg))


def reference_logits(model: MelodyLSTMModel, tokens: list[int], pos) -> np.ndarray:
    with torch.inference_mode():
        x = torch.tensor([tokens])
        p = torch.tensor([[pos(k)[0] for k in range(len(tokens))]])
        b = torch.tensor([[pos(k)[1] for k in range(len(tokens))]])
        logits, _ = model.net(x, p, b)
    return logits[0].numpy()  # (T, V)


def test_prefill_and_steps_match_the_network() -> None:
    for conditioning in (True, False):
        model = tiny_model(conditioning)
        pos = lambda k: (k % 12, 12)  # noqa: E731
        tokens = [0, *np.random.default_rng(2).integers(1, TOK.vocab_size, 60).tolist()]
        ref = reference_logits(model, tokens, pos)
        adapter = model.adapter(pos)
        state, logits = adapter.prefill(tokens[:20])
        assert np.allclose(logits, ref[19], atol=1e-4)
        for i in range(20, len(tokens)):
            state, logits = adapter.step(tokens[i], state)
            assert np.allclose(logits, ref[i], atol=1e-4)


def test_cached_prefix_gives_the_same_state() -> None:
    model = tiny_model()
    pos = lambda k: (k % 16, 16)  # noqa: E731
    tokens = [0, *np.random.default_rng(3).integers(1, TOK.vocab_size, 80).tolist()]
    ref = reference_logits(model, tokens, pos)
    adapter = model.adapter(pos)
    adapter.prefill(tokens[:50])  # cached
    _, logits = adapter.prefill(tokens)  # extends the cached prefix
    assert np.allclose(logits, ref[-1], atol=1e-4)
    again = model.adapter(pos).prefill(tokens)  # exact hit
    assert np.allclose(again[1], ref[-1], atol=1e-4)
    shifted = model.adapter(lambda k: ((k + 3) % 16, 16))  # same tokens, other bar positions: no reuse
    ref_shifted = reference_logits(model, tokens, lambda k: ((k + 3) % 16, 16))
    assert np.allclose(shifted.prefill(tokens)[1], ref_shifted[-1], atol=1e-4)
    model.clear_prefill_cache()
    assert not model._tables.prefill_cache


def test_grid_decoder_emits_notes_when_their_end_is_known() -> None:
    dec = GridNoteDecoder(TOK, lambda i: 1000 + 120 * i, transpose=2, velocity=70, channel=3)
    p60 = TOK.encode_step(60)
    p62 = TOK.encode_step(62)
    assert dec.push(HOLD_ID) == []  # a hold with nothing open: silence
    assert dec.push(p60) == []
    assert dec.push(HOLD_ID) == []
    assert dec.push(p62) == [Note(1120, 62, 1360, 70, 3)]
    assert dec.push(REST_ID) == [Note(1360, 64, 1480, 70, 3)]
    assert dec.push(p60) == []
    assert dec.flush() == [Note(1600, 62, 1720, 70, 3)]
    assert dec.flush() == []


def test_ngram_is_a_distribution_and_learns() -> None:
    seqs = [[3, 2, 2, 2, 5, 2, 1, 2] * 10 for _ in range(5)]
    lm = KneserNeyNGram(4, 8).fit(seqs)
    for hist in ([], [3], [3, 2, 2], [7, 7, 7]):
        d = lm.distribution(hist)
        assert abs(d.sum() - 1) < 1e-9 and (d > 0).all()
        assert abs(d[5] - lm.prob(hist, 5)) < 1e-12
    assert lm.distribution([3, 2, 2, 2]).argmax() == 5
    assert lm.sequence_nll(seqs[0]).mean() < np.log(8) / 4
