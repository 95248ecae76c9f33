"""The accompaniment bench's measure (`benchmarks/bench_accompany.py`) on real held-out POP909
songs: the song's own PIANO track agrees with its annotated chords on most beats (the measure and
the reference are sound), the accompaniment played on the annotated chords nearly as often, and
the numbers the table prints add up."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

POP909 = Path(__file__).resolve().parents[3] / "shared" / "data" / "pop909"

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not POP909.is_dir(), reason="POP909 is not beside the project")
def test_the_bench_measures_the_real_accompaniment_the_chords_given_and_the_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from musicgen_app.ml import midi_data
    from musicgen_app.ml.accompany import load_accompany_model
    from musicgen_app.ml.accompany_eval import REAL, evaluate

    monkeypatch.setenv("MUSICGEN_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "pop"
    root.mkdir()
    picked = 0
    for folder in sorted(p for p in POP909.iterdir() if p.is_dir()):
        mids = midi_data.midi_files(folder)
        if mids and midi_data._content_split(midi_data._file_sha1(mids[0])) == "test":
            shutil.copytree(folder, root / folder.name)
            picked += 1
        if picked == 3:
            break
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
