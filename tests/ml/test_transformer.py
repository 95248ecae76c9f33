"""The note-event Transformer: its token table, the KV-cache steps against the full forward pass,
and the shipped model streaming real continuations through the public generation API."""

from __future__ import annotations

import time
from itertools import pairwise

import numpy as np
import pytest
import torch

from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.song import Note, Song, TimeSignature, Track
from musicgen_app.ml.families import note_transformer as nt
from musicgen_app.ml.generate import SamplingConfig, generate_notes, start_session
from musicgen_app.ml.keys import parse_key
from musicgen_app.ml.registry import list_models, load_model

VOCAB = nt.NoteEventVocab()
SHIPPED = "note-transformer" in [m.name for m in list_models()]
needs_model = pytest.mark.skipif(not SHIPPED, reason="models/note-transformer.* is not there")


# -- the token table ---------------------------------------------------------------------------------
def test_ranges_tile_the_vocabulary_and_the_card_round_trips() -> None:
    ranges = VOCAB.ranges
    at = 0
    for first, n in ranges.values():
        assert first == at
        at += n
    assert at == VOCAB.vocab_size == len(VOCAB.tokens)
    assert nt.NoteEventVocab.from_dict(VOCAB.to_dict()) == VOCAB
    broken = {**VOCAB.to_dict(), "tokens": VOCAB.tokens[:-1]}
    with pytest.raises(ValueError):
        nt.NoteEventVocab.from_dict(broken)


def test_events_of_a_tune_with_a_pickup() -> None:
    # a quarter pickup into bar 1 of 3/4 (12 steps): G4, then C5 (half), D5 (quarter), then a rest bar
    steps = np.array([67, -2, -2, -2] + [72] + [-2] * 7 + [74, -2, -2, -2] + [-1] + [-2] * 11, dtype=np.int16)
    bar_pos = np.array([8, 9, 10, 11] + list(range(12)) * 2, dtype=np.uint8)
    bar_steps = np.full(len(steps), 12, dtype=np.uint8)
    notes, bars = nt.steps_to_events(steps, bar_pos, bar_steps, {0: 100})
    assert bars == [(-8, 12), (4, 12), (16, 12)]
    tokens = [VOCAB.tokens[t] for t in nt.encode_events(VOCAB, notes, bars)]
    assert tokens == [
        "bar:12", "pos:8", "pitch:67", "dur:4", f"vel:{VOCAB.vel(100) - VOCAB.vel(None) - 1}",
        "bar:12", "pos:0", "pitch:72", "dur:8", "vel:-", "pos:8", "pitch:74", "dur:4", "vel:-",
        "bar:12",
    ]  # fmt: skip
    kind, value = VOCAB.kind_of(VOCAB.pitch(130))
    assert kind == "pitch" and VOCAB.pitch_min <= value <= VOCAB.pitch_max and value % 12 == 130 % 12


def test_velocity_bins_round_trip() -> None:
    for v in (1, 40, 64, 90, 127):
        centre = VOCAB.velocity_of(VOCAB.vel(v))
        assert centre is not None and abs(centre - v) <= 127 / VOCAB.vel_bins / 2 + 1
    assert VOCAB.velocity_of(VOCAB.vel(None)) is None


# -- the network: cached steps are the full forward pass ------------------------------------------------
def _random_net() -> nt.NoteTransformer:
    torch.manual_seed(0)
    net = nt.NoteTransformer(
        nt.NoteTransformerConfig(VOCAB.vocab_size, d_model=64, n_layers=2, n_heads=4, d_ff=128)
    )
    return net.eval()


@pytest.mark.parametrize("prefill", [1, 7, 40])
def test_kv_cache_steps_equal_the_full_forward(prefill: int) -> None:
    net = _random_net()
    rng = np.random.default_rng(1)
    seq = rng.integers(0, VOCAB.vocab_size, 60).tolist()
    with torch.no_grad():
        full, _ = net(torch.tensor([seq]))  # (1, T, V)
    fast = nt.NumpyNoteTransformer(net)
    cache = fast.new_cache(capacity=4)  # grows while reading
    h = fast.forward(seq[:prefill], cache)
    got = [fast.logits(h)]
    for t in seq[prefill:]:
        got.append(fast.logits(fast.forward([t], cache)))
    want = full[0, prefill - 1 :].numpy()
    assert cache.length == len(seq)
    np.testing.assert_allclose(np.stack(got), want, atol=2e-4)


def test_alibi_reads_past_the_training_length() -> None:
    net = _random_net()
    seq = np.random.default_rng(2).integers(0, VOCAB.vocab_size, 3 * nt.SEQ_LEN).tolist()
    with torch.no_grad():
        logits, _ = net(torch.tensor([seq]))
    assert torch.isfinite(logits).all()


# -- the shipped model --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return load_model("note-transformer")


def folk_sketch(transpose: int = 0, velocities: list[int] | None = None) -> Song:
    """8 bars of a G major folk-like tune in 4/4 (eighths and quarters)."""
    phrase = [(67, 2), (67, 2), (71, 2), (74, 2), (72, 4), (71, 4), (69, 2), (71, 2), (72, 2), (69, 2),
              (67, 8), (74, 4), (72, 2), (71, 2), (69, 4), (67, 4), (66, 2), (67, 2), (69, 2), (66, 2),
              (67, 8)]  # fmt: skip
    notes, t = [], 0
    for i, (p, q) in enumerate(phrase * 2):
        v = velocities[i % len(velocities)] if velocities else 90
        notes.append(Note(t * 120, p + transpose, (t + q) * 120 - 10, v))
        t += q
    return Song(tracks=[Track(notes=notes)], time_signatures=[TimeSignature(0, 4, 4)])


@needs_model
def test_card_loads_and_verifies() -> None:
    infos = {m.name: m for m in list_models(verify=True)}
    assert "note-transformer" in infos
    card = infos["note-transformer"].card
    assert card["architecture"] == "note-transformer"
    assert card["metrics"]["test_nll"] > 0 and card["training"]["budget"]
    assert infos["note-transformer"].path.stat().st_size < 10e6


@needs_model
@pytest.mark.parametrize("transpose", [0, 3, -5])
def test_streams_a_continuation_in_key_with_sane_density(model, transpose: int) -> None:
    song = folk_sketch(transpose)
    start = max(n.end_tick for n in song.tracks[0].notes) + 10
    start = -(-start // 1920) * 1920
    notes = generate_notes(
        model, song, 0, start_tick=start, bars=4, sampling=SamplingConfig(seed=3, key_lock=None)
    )
    assert 4 <= len(notes) <= 4 * 16
    key = parse_key("G")
    scale = {(pc + transpose) % 12 for pc in key.scale_pcs()}
    assert sum(n.pitch % 12 in scale for n in notes) / len(notes) >= 0.85
    assert all(start <= n.start_tick < start + 4 * 1920 and n.start_tick % 120 == 0 for n in notes)
    assert all(a.end_tick <= b.start_tick for a, b in pairwise(notes))  # one line stays one line
    assert len({n.pitch for n in notes}) >= 3
    sketch = [n.pitch for n in song.tracks[0].notes]
    assert all(min(sketch) - 12 <= n.pitch <= max(sketch) + 12 for n in notes)


@needs_model
def test_session_streams_note_by_note_and_finishes(model) -> None:
    session = start_session(model, folk_sketch(), 0, bars=2, sampling=SamplingConfig(seed=1))
    events = list(session)
    assert isinstance(events[-1], SessionFinished) and events[-1].reason == "done"
    notes = [e for e in events if isinstance(e, NoteEvent)]
    assert notes and [e.seq for e in notes] == list(range(len(notes)))
    assert events[-1].tokens >= 4 * len(notes)  # four tokens a note, plus bar lines


@needs_model
def test_a_sketch_with_dynamics_gets_learned_velocities(model) -> None:
    song = folk_sketch(velocities=[100, 62, 80, 70, 96, 58, 84, 66])
    notes = generate_notes(model, song, 0, bars=4, sampling=SamplingConfig(seed=5, key_lock=None))
    assert len({n.velocity for n in notes}) >= 2
    flat = generate_notes(model, folk_sketch(), 0, bars=4, sampling=SamplingConfig(seed=5, key_lock=None))
    assert flat and all(1 <= n.velocity <= 127 for n in flat)


@needs_model
def test_first_note_does_not_collapse(model) -> None:
    """A guard, not the goal: the goal (<= 10 ms cold) is measured by benchmarks/bench_generation.py."""
    song = folk_sketch()
    times = []
    for seed in range(4):
        t0 = time.perf_counter()
        session = start_session(model, song, 0, bars=4, sampling=SamplingConfig(seed=seed))
        for ev in session:
            if isinstance(ev, NoteEvent):
                times.append(time.perf_counter() - t0)
                session.cancel()
        list(session)
    assert min(times) < 0.25


@needs_model
def test_beats_its_ngram_and_the_card_tells_the_truth(model) -> None:
    """The card's NLL is at least 15% below the n-gram's (same tokens, order chosen on validation),
    and the shipped weights reproduce the card's figure on the held-out chorales (quick to load)."""
    m = model.card["metrics"]
    assert m["test_nll"] <= 0.85 * m["baseline_nll"]
    assert m["test_nll_per_note"] <= 0.85 * m["baseline_nll_per_note"]
    net, vocab = nt.load_network(model.card, str(model.path))
    chorales = nt.load_corpora(vocab, ["chorales"])
    with torch.inference_mode():
        got = nt.evaluate_network(net, vocab, chorales, with_baseline=False)
    assert got["test_nll"] == pytest.approx(m["by_style"]["chorale"]["test_nll"], rel=0.01)
