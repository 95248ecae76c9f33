"""The accompaniment bench's measure (`benchmarks/bench_accompany.py`) on real held-out POP909
songs: the song's own PIANO track agrees with its annotated chords on most beats (the measure and
the reference are sound), the accompaniment played on the annotated chords nearly as often, and
the numbers the table prints add up."""

from __future__ import annotations

from pathlib import Path

import pytest
from midi_folder_support import POP909, pop909_songs

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not POP909.is_dir(), reason="POP909 is not beside the project")
def test_the_bench_measures_the_real_accompaniment_the_chords_given_and_the_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from musicgen_app.ml import midi_data
    from musicgen_app.ml.accompany import load_accompany_model
    from musicgen_app.ml.accompany_eval import REAL, evaluate

    monkeypatch.setenv("MUSICGEN_CACHE_DIR", str(tmp_path / "cache"))
    root = pop909_songs(tmp_path / "pop", {"test": 3})
    midi_data.build_midi_dataset(root, "pop909", workers=1, progress=False)
    pop = load_accompany_model("accompany-pop909")
    r = evaluate({"piano (melody only)": (pop, "piano"), "piano (chords given)": (pop, "piano")}, "pop909")
    assert r["songs"] == 3 and r["beats"] > 300
    assert 0 < r["beats_melody_sounding"] <= r["beats"]
    agree = r["agreement"]
    assert set(agree) == {
        "piano (melody only)",
        "piano (chords given)",
        "baseline",
        "baseline, bars moved",
        REAL,
    }
    assert agree[REAL] >= 0.8  # the song's own accompaniment, estimated the same way
    assert agree["piano (chords given)"] >= 0.85
    assert all(0.0 <= v <= 1.0 for v in agree.values())
    assert agree["piano (melody only)"] < agree["piano (chords given)"]
    assert set(r["seconds_per_song"]) == {"piano (melody only)", "piano (chords given)"}
