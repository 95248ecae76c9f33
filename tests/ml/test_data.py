"""The dataset builder on a handful of tunes: encoding, the duration filter, transposition, bar
positions, caching and the split."""

from __future__ import annotations

import numpy as np
import pytest

from musicgen_app.errors import DatasetError
from musicgen_app.ml import data
from musicgen_app.ml.tokenizers import HOLD, REST

# D major, 2/4, a pickup of one eighth, L:1/16
PICKUP_D_MAJOR = """X:1
T:Pickup tune
M:2/4
L:1/16
K:D
A2 | d4 f4 | a6 f2 | e4 c4 | d8 |]
"""
# contains a triplet: dropped by the paper's duration filter
TRIPLET = """X:2
T:Triplet tune
M:4/4
L:1/8
K:C
(3cde c2 G2 E2 | C8 |]
"""
# a rest and a tie
REST_TIE_A_MINOR = """X:3
T:Rest and tie
M:3/4
L:1/8
K:Am
A2 c2 e2 | z2 e2- e2 | d2 c2 B2 | A6 |]
"""


def test_encodes_grid_transposes_and_filters() -> None:
    ds = data.build_dataset(
        "abc", progress=False, tunes=[("t/1", PICKUP_D_MAJOR), ("t/2", TRIPLET), ("t/3", REST_TIE_A_MINOR)]
    )
    assert ds.stats["kept"] == 2
    assert ds.stats["rejected"] == {"unusual duration": 1}
    pickup = ds.tune(0)
    assert pickup.meta["estimated_key"] == "D major"
    assert pickup.meta["transposition"] == -2
    # A4 (69) eighth-note pickup, transposed to G4 (67); then D5 -> C5 (72)
    assert pickup.steps[:4].tolist() == [67, HOLD, 72, HOLD]
    # the pickup sits at the end of a 2/4 bar (8 steps): positions 6, 7, then the downbeat
    assert pickup.bar_pos[:4].tolist() == [6, 7, 0, 1]
    assert set(pickup.bar_steps.tolist()) == {8}
    assert len(pickup.steps) == 2 + 4 * 8
    tied = ds.tune(1)
    assert tied.meta["mode"] == "minor" and tied.meta["transposition"] == 0
    # bar 2 (3/4 = 12 steps): a quarter rest, then E tied over two quarters = one onset held 8 steps
    assert tied.steps[12:24].tolist() == [REST, HOLD, HOLD, HOLD, 76] + [HOLD] * 7
    assert tied.bar_pos[12] == 0


def test_corpus_sample_builds_and_caches(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICGEN_CACHE_DIR", str(tmp_path))
    ds = data.build_dataset("essen", limit=6, progress=False)
    assert 1 <= len(ds) <= 6
    for tune in ds.tunes(range(len(ds))):
        assert tune.steps[0] != HOLD
        notes = tune.steps[tune.steps >= 0]
        assert notes.size and notes.min() > 30 and notes.max() < 100
    path = data.cache_path("essen")
    data.save_dataset(ds, path)
    again = data.load_dataset(path)
    assert np.array_equal(again.steps, ds.steps) and again.meta == ds.meta
    split = data.split_indices(again)
    assert sorted(np.concatenate(list(split.values())).tolist()) == list(range(len(ds)))
    assert data.split_record(again, split) == data.split_record(ds, data.split_indices(ds))


def test_unknown_corpus_and_broken_cache(tmp_path) -> None:
    with pytest.raises(DatasetError):
        data.corpus_files("nope")
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DatasetError):
        data.load_dataset(bad)
