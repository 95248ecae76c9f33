"""char-lstm's hierarchical character model (``ml/families/char_notes.py``): the streaming stepper
gives every character exactly the probability that evaluation scores, a prompt read in one pass is
the same as one read character by character, and a card of paper 000's flat character LSTM (every
char-lstm card before this model) still loads, streams and fine-tunes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from musicgen_app.core import paths
from musicgen_app.core.events import NoteEvent
from musicgen_app.core.midi_io import read_midi
from musicgen_app.ml.families import char_lstm as cl
from musicgen_app.ml.families import char_notes as cn
from musicgen_app.ml.families.evaluate import _char_sequences
from musicgen_app.ml.generate import SamplingConfig, start_session
from musicgen_app.ml.registry import load_model


@pytest.fixture(scope="module")
def shipped() -> tuple[cn.NoteCharLSTM, list[str]]:
    """The shipped network and a few validation tunes as text."""
    torch.set_num_threads(1)  # the suite runs on 2 shared cores
    net = load_model("char-lstm").make_engine().model
    assert isinstance(net, cn.NoteCharLSTM)
    val = _char_sequences()["val"]
    return net, ["".join(cl.CHARS[c] for c in val[i]) for i in (0, 5, 9)]


def test_the_stepper_samples_from_what_evaluation_scores(shipped: tuple) -> None:
    net, texts = shipped
    stepper = cn.NoteCharStepper(net)
    for text in texts:
        ids = cl.encode_text(text)
        logits, state = stepper.prefill(ids[:1])
        streamed = 0.0
        for c in ids[1:]:
            streamed -= float(logits[c] - np.logaddexp.reduce(logits.astype(np.float64)))
            logits, state = stepper.step(c, state)
        scored, _, n = cn.items_nll(net, cn.text_items([text], net.cfg))
        assert n == len(ids) - 1
        assert abs(streamed / n - scored) < 1e-4, (streamed / n, scored)
        assert scored < 0.6  # a trained model (an untrained one reads ~2.5 nats a character)


def test_a_prompt_read_in_one_pass_is_the_same_as_character_by_character(shipped: tuple) -> None:
    net, texts = shipped
    stepper = cn.NoteCharStepper(net)
    ids = cl.encode_text(texts[0])
    for cut in (1, 12, 40, 41):  # at a tune's start, inside notes, and right after a note's ';'
        whole, _ = stepper.prefill(ids[:cut], pos=4)
        logits, state = stepper.start(4)
        for c in ids[1:cut]:
            logits, state = stepper.step(c, state)
        assert np.allclose(whole, logits, atol=1e-4), cut


def _flat_card(tmp_path: Path) -> Path:
    """A small flat character LSTM saved with a card as every char-lstm card before the
    hierarchical model (architecture ``char-lstm``, a TokenLSTM config)."""
    from dataclasses import asdict

    from musicgen_app.ml.checkpoint import save_checkpoint
    from musicgen_app.ml.families.common import TokenLSTM, TokenLSTMConfig

    cfg = TokenLSTMConfig(len(cl.CHARS), embed_dim=8, hidden_size=16, num_layers=1, dropout=0.0)
    torch.manual_seed(0)
    net = TokenLSTM(cfg)
    card = {"schema": 2, "name": "flat", "family": "char-lstm", "architecture": "char-lstm",
            "seed_paper": "000", "config": asdict(cfg),
            "vocab": {"kind": "characters", "tokens": list(cl.CHARS)}}  # fmt: skip
    path = tmp_path / "flat.safetensors"
    save_checkpoint(net.state_dict(), card, path)
    return path


def test_an_old_flat_char_lstm_card_still_loads_streams_and_fine_tunes(tmp_path: Path) -> None:
    from musicgen_app.ml.families.common import TokenLSTM
    from musicgen_app.ml.family import TrainRun, load_train_data
    from musicgen_app.ml.registry import get_family

    torch.set_num_threads(1)
    path = _flat_card(tmp_path)
    model = load_model(path)
    assert isinstance(model.make_engine().model, TokenLSTM)
    song = read_midi(paths.resources_dir() / "examples" / "folk_tune.mid").song
    track = max(range(len(song.tracks)), key=lambda i: len(song.tracks[i].notes))
    session = start_session(model, song, track, bars=2, sampling=SamplingConfig(seed=1))
    assert any(isinstance(ev, NoteEvent) for ev in session)
    run = TrainRun(name="ft", out_dir=tmp_path, minutes=1.0, max_steps=2, base=str(path))
    card = get_family("char-lstm").train(load_train_data("essen", pieces=False), run)
    assert card["architecture"] == "char-lstm" and card["config"]["hidden_size"] == 16
    assert isinstance(load_model(run.weights).make_engine().model, TokenLSTM)
