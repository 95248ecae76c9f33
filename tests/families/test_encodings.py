"""The extra families' encodings, table-driven, and the WaveNet's fast generation against its
full convolution (same logits, step by step)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicgen_app.core.song import Note, Song, TimeSignature, Track
from musicgen_app.ml.families import char_lstm, chord_lstm, pianoroll
from musicgen_app.ml.families.common import StepNote, melody_line, seed_context
from musicgen_app.ml.tokenizers import HOLD, REST


@pytest.mark.parametrize(
    ("steps", "triples", "text"),
    [
        # pitch, 4 holds -> a quarter note; a rest after it makes "next" longer than "duration"
        ([60, HOLD, HOLD, HOLD, 62, HOLD, REST, HOLD], [(60, 4, 4), (62, 2, 2)], "60:500:500;62:250:250;"),
        (
            [67, HOLD, REST, HOLD, 69, 71],
            [(67, 2, 4), (69, 1, 1), (71, 1, 1)],
            "67:250:500;69:125:125;71:125:125;",
        ),
    ],
)
def test_notes_duration_next_text(steps, triples, text) -> None:
    got = char_lstm.steps_notes(np.array(steps))
    assert got == triples
    assert char_lstm.notes_text(got) == text
    assert char_lstm.encode_text("\n" + text)[0] == char_lstm.NEWLINE


def test_chord_slices_and_tokens() -> None:
    # soprano half note over a moving bass: two slices, the soprano held across them
    notes = [StepNote(0, 8, 72), StepNote(0, 4, 48), StepNote(4, 4, 50), StepNote(8, 4, 71)]
    slices = chord_lstm.slices_of(notes)
    assert slices == [((48, 72), 4), ((50, 72), 4), ((71,), 4)]
    assert chord_lstm.chord_name((48, 72)) == "48.72"
    assert chord_lstm.normal_order((60, 64, 67)) == (0, 4, 7)
    vocab = chord_lstm.ChordVocab.build([slices, slices], min_count=2)
    ids = vocab.encode(slices)
    assert [vocab.tokens[i] for i in ids] == ["<s>", "48.72", "d4", "50.72", "d4", "71", "d4"]
    # a rare chord is dropped and its time goes to the slice before
    rare = [*slices, ((40, 41, 42), 2)]
    assert [vocab.tokens[i] for i in vocab.encode(rare)][-1] == "d6"
    # a sketch's unknown chord falls back to its top note, folded into the known range
    assert vocab.tokens[vocab.seed_chord_id((30, 71))] == "71"
    assert vocab.tokens[vocab.seed_chord_id((30, 95))] == "71"


def test_piano_roll_three_states() -> None:
    roll = pianoroll.roll_of([(0, 3, 60), (3, 2, 60), (1, 1, 64)], 6)
    assert roll.shape == (6, 88)
    k60, k64 = 60 - pianoroll.LOW, 64 - pianoroll.LOW
    # a re-struck key is an onset again, not a longer note: the point of the three classes
    assert roll[:, k60].tolist() == [1, 2, 2, 1, 2, 0]
    assert roll[:, k64].tolist() == [0, 1, 0, 0, 0, 0]
    x = pianoroll.frame_inputs(roll)
    assert x.shape == (6, 176) and x[0, k60] == 1 and x[1, 88 + k60] == 1


def test_seed_context_reads_the_grid_key_and_bars() -> None:
    notes = [Note(i * 120, p, i * 120 + 110, 80) for i, p in enumerate([64, 66, 68, 69, 71, 73, 75, 76])]
    song = Song(tracks=[Track(notes=notes)], time_signatures=[TimeSignature(0, 3, 4)])
    ctx = seed_context(song, 0, bars=2)
    assert ctx.start_step == 8 and ctx.end_step == 8 + 2 * 12 and ctx.bar_steps == 12
    assert [n.start for n in ctx.notes] == list(range(8)) and all(n.length == 1 for n in ctx.notes)
    assert ctx.key.tonic_pc == 4 and ctx.key.mode == "major"  # E major
    assert ctx.to_tick(ctx.start_step) == 960
    assert melody_line([StepNote(0, 4, 60), StepNote(0, 4, 67), StepNote(2, 2, 64)]) == [
        StepNote(0, 2, 67),
        StepNote(2, 2, 64),
    ]


def test_fast_wavenet_matches_the_full_network() -> None:
    from musicgen_app.ml.families.wavenet import FastWaveNet
    from musicgen_app.ml.registry import load_model

    model = load_model("wavenet")
    net = model.net
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, net.cfg.vocab_size, (1, 300), generator=g)
    bp = torch.arange(300)[None] % 12
    bs = torch.full_like(bp, 12)
    with torch.inference_mode():
        full, _ = net(ids, bp, bs)  # (1, T, V)
        fast = FastWaveNet(net)
        got = [fast.prefill(ids[:, :40], bp[:, :40], bs[:, :40])]
        got += [fast.step(int(ids[0, t]), int(bp[0, t]), 12) for t in range(40, 300)]
    # the steps beyond the receptive field (258) prove the queues drop what they should
    assert np.allclose(np.stack(got), full[0, 39:].numpy(), atol=1e-4)


def test_fast_lstm_steps_match_the_networks() -> None:
    from musicgen_app.ml.families.chorales import chorale_splits
    from musicgen_app.ml.families.common import LSTMStepper, TokenLSTMEnsemble, stepper_of
    from musicgen_app.ml.registry import load_model

    net = load_model("chord-lstm").make_engine().model
    assert isinstance(net, TokenLSTMEnsemble)  # the numpy steps of every member, mixed as the network mixes
    ids = torch.randint(0, net.cfg.vocab_size, (1, 40), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        full, _ = net(ids)  # (1, T, V)
        stepper = stepper_of(net)
        logits, state = stepper.prefill(ids[0, :10].tolist())
        got = [logits]
        for t in range(10, 39):
            logits, state = stepper.step(int(ids[0, t]), state)
            got.append(logits)
    assert np.allclose(np.stack(got), full[0, 9:39].numpy(), atol=1e-4)

    net = load_model("pianoroll-lstm").make_engine().model
    ch = chorale_splits()["test"][0]
    roll = pianoroll.roll_of([(s, d, p) for s, d, p, _ in ch.notes], 40)
    prev = np.concatenate([np.zeros((1, 88), np.int8), roll[:-1]])
    x = torch.from_numpy(pianoroll.frame_inputs(prev))[None]
    bp = torch.from_numpy((np.arange(40) - ch.bar_offset) % ch.bar_steps)[None].long()
    bs = torch.full_like(bp, ch.bar_steps)
    with torch.inference_mode():
        full, _ = net(x, bp, bs)  # (1, T, 88, 3)
        _, state = net(x[:, :10], bp[:, :10], bs[:, :10])
        state = LSTMStepper.state_from(state)
        frames = pianoroll.FrameStepper.of(net)
        for t in range(10, 40):
            logits, _, state = frames.step(prev[t], int(bp[0, t]), ch.bar_steps, state)
            assert torch.allclose(logits, full[0, t], atol=1e-4), t
