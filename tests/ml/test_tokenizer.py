"""The grid tokenizer is data: its table, round trips, and refusing a mismatched vocabulary."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musicgen_app.errors import CheckpointError
from musicgen_app.ml.tokenizers import (
    BOS,
    HOLD,
    HOLD_ID,
    REST,
    REST_ID,
    GridMelodyTokenizer,
    notes_to_steps,
    steps_to_notes,
)

TOK = GridMelodyTokenizer(45, 91)


@pytest.mark.parametrize(
    ("code", "token_id", "symbol"),
    [(HOLD, HOLD_ID, "_"), (REST, REST_ID, "r"), (45, 3, "45"), (60, 18, "60"), (91, 49, "91")],
)
def test_table(code: int, token_id: int, symbol: str) -> None:
    assert TOK.encode_step(code) == token_id
    assert TOK.decode_id(token_id) == code
    assert TOK.tokens[token_id] == symbol
    assert TOK.tokens[BOS] == "<s>"


def test_out_of_range_pitches_fold_by_octaves() -> None:
    assert TOK.decode_id(TOK.encode_step(30)) == 42 + 12
    assert TOK.decode_id(TOK.encode_step(100)) == 88
    assert list(TOK.decode_ids(TOK.encode_steps([30, 100, 60]))) == [54, 88, 60]


step_codes = st.lists(st.one_of(st.just(HOLD), st.just(REST), st.integers(45, 91)), min_size=1, max_size=200)


@given(step_codes)
@settings(max_examples=60, deadline=None)
def test_steps_ids_round_trip(codes: list[int]) -> None:
    ids = TOK.encode_steps(codes)
    assert ids.min() >= 0 and ids.max() < TOK.vocab_size
    assert list(TOK.decode_ids(ids)) == codes


@given(
    st.lists(st.tuples(st.integers(1, 8), st.integers(0, 3), st.integers(45, 91)), min_size=1, max_size=40)
)
@settings(max_examples=60, deadline=None)
def test_notes_steps_round_trip(spec: list[tuple[int, int, int]]) -> None:
    """Monophonic notes on the grid (each followed by an optional rest) survive notes -> steps -> notes."""
    tps = 120
    notes, t = [], 0
    for length, gap, pitch in spec:
        notes.append((t, t + length * tps, pitch))
        t += (length + gap) * tps
    steps = notes_to_steps(notes, 0, t, tps)
    assert steps_to_notes(steps.tolist(), 0, tps) == notes
    ids = TOK.encode_steps(steps)
    assert steps_to_notes(TOK.decode_ids(ids).tolist(), 0, tps) == notes


def test_overlapping_notes_become_monophonic() -> None:
    steps = notes_to_steps([(0, 480, 60), (240, 720, 64), (240, 480, 62)], 0, 960, 120)
    assert steps.tolist() == [60, HOLD, 64, HOLD, HOLD, HOLD, REST, HOLD]


def test_vocabulary_saved_and_checked() -> None:
    d = TOK.to_dict()
    assert GridMelodyTokenizer.from_dict(d) == TOK
    assert len(d["tokens"]) == TOK.vocab_size
    bad = dict(d, tokens=d["tokens"][:-1])
    with pytest.raises(CheckpointError):
        GridMelodyTokenizer.from_dict(bad)
    with pytest.raises(CheckpointError):
        GridMelodyTokenizer.from_dict({"kind": "grid-melody"})


def test_id_pitches() -> None:
    table = TOK.id_pitches()
    assert table[:3].tolist() == [-1, -1, -1]
    assert np.array_equal(table[3:], np.arange(45, 92))
