"""Every registered model family keeps one contract (ml/family.py).

For each family: a tiny network is trained for two steps through the family's own training entry
on a tiny dataset built from real MIDI files (four POP909 songs), saved (weights + schema-2 card),
loaded back through the one registry, and streams a continuation of a sketch. On the family's
shipped model: a session cancels within one model step, a temperature change takes effect in the
running session, and the same seed gives the same take.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from musicgen_app.core import paths
from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.midi_io import read_midi
from musicgen_app.core.song import Note
from musicgen_app.ml.family import TrainData, TrainRun, family_key
from musicgen_app.ml.generate import SamplingConfig, start_session
from musicgen_app.ml.registry import get_family, load_model, trainable_families

POP909 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "pop909"
FAMILIES = trainable_families()
SKETCH = "folk_tune.mid"


def test_every_shipped_midi_family_is_registered() -> None:
    assert FAMILIES == [
        "melody-lstm", "char-lstm", "chord-lstm", "pianoroll-lstm", "pianoroll-seq2seq",
        "pianoroll-gan", "wavenet", "note-transformer",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TrainData, Path]]:
    if not (POP909 / "001" / "001.mid").is_file():
        pytest.skip("POP909 is not beside the project (../shared/data/pop909)")
    from musicgen_app.ml.family import load_train_data
    from musicgen_app.ml.midi_data import build_midi_dataset

    root = tmp_path_factory.mktemp("contract")
    music = root / "music"
    for song in ("001", "002", "003", "004"):
        shutil.copytree(POP909 / song, music / song)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSICGEN_CACHE_DIR", str(root / "cache"))
        build_midi_dataset(music, "tiny", workers=1, progress=False)
        yield load_train_data("tiny"), root / "cache"


def _song():
    return read_midi(paths.resources_dir() / "examples" / SKETCH).song


def _track(song) -> int:
    return max(range(len(song.tracks)), key=lambda i: len(song.tracks[i].notes))


def _take(model, seed: int, temperature: float = 1.0, change: float | None = None) -> tuple[list[Note], str]:
    """The notes of one session (with ``change``: the temperature set to it after the first note)."""
    song = _song()
    track = _track(song)
    s = start_session(model, song, track, bars=4, sampling=SamplingConfig(temperature=temperature, seed=seed))
    notes: list[Note] = []
    reason = ""
    for ev in s:
        if isinstance(ev, NoteEvent):
            notes.append(ev.note)
            if change is not None and len(notes) == 1:
                s.set_temperature(change)
        elif isinstance(ev, SessionFinished):
            reason = ev.reason
    return notes, reason


@pytest.mark.parametrize("key", FAMILIES)
def test_tiny_training_save_load_stream(
    key: str, tiny_data: tuple[TrainData, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, cache = tiny_data
    monkeypatch.setenv("MUSICGEN_CACHE_DIR", str(cache))
    fam = get_family(key)
    run = TrainRun(name=f"tiny-{key}", out_dir=tmp_path, minutes=2.0, max_steps=2, tiny=True)
    card = fam.train(data, run)
    assert run.weights.is_file() and run.weights.with_suffix(".json").is_file()
    assert family_key(card) == key
    assert _steps(card) == 2
    assert (tmp_path / f"tiny-{key}-curve.png").is_file()
    model = load_model(run.weights)
    assert family_key(model.card) == key
    notes, reason = _take(model, seed=3)
    assert reason == "done"
    song = _song()
    assert all(n.start_tick >= song.tracks[_track(song)].end_tick - 1 for n in notes)
    # a resumed run starts from the checkpoint and adds its steps to the record
    again = fam.train(data, replace(run, resume=True))
    assert _steps(again) == 4


def _steps(card: dict) -> int:
    """Training steps a card records (melody-lstm: its curve has one row per epoch of one batch)."""
    training = card["training"]
    return int(training["steps"]) if "steps" in training else len(training["curve"])


# -- the accompaniment models: loaded through the one registry, trained by the one loop -------------
@pytest.mark.parametrize("key", ["accompany", "accompany-chords"])
def test_accompaniment_tiny_training_save_load(
    key: str, tiny_data: tuple[TrainData, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The accompaniment models are registry families too (their loaders), though not continuation
    families: they read a melody with its chords and POP909's piano part (``accompany_train``'s
    pieces), not :class:`TrainData`. Two steps of the one loop, saved, loaded by the registry, used."""
    import json

    import torch

    from musicgen_app.ml import accompany_train as at
    from musicgen_app.ml.accompany import accompany_song
    from musicgen_app.ml.accompany_net import AccompanyConfig, ChordNetConfig
    from musicgen_app.ml.midi_data import build_midi_dataset

    _, cache = tiny_data
    monkeypatch.setenv("MUSICGEN_CACHE_DIR", str(cache))
    build_midi_dataset(cache.parent / "music", "pop909", workers=1, progress=False)
    pieces = at.load_pop909()
    assert len(pieces) == 4 and any(p.chords.any() for p in pieces)  # chords read from the annotations
    out = tmp_path / f"tiny-{key}"
    if key == "accompany":
        cfg = AccompanyConfig(enc_hidden=8, dec_hidden=8, chord_dim=4)
        card = at.train("pop909", out, minutes=2.0, cfg=cfg, window=64, batch_size=2, lr=1e-3, seed=1,
                        max_steps=2, pieces=(pieces, pieces, 0))  # fmt: skip
    else:
        card = at.train_chords(out, minutes=2.0, cfg=ChordNetConfig(channels=8), window=64, batch_size=2,
                               lr=1e-3, seed=1, max_steps=2, pieces=(pieces, pieces))  # fmt: skip
    assert card["training"]["steps"] == 2 and len(card["training"]["history"]) == 1
    assert (tmp_path / f"tiny-{key}-curve.png").is_file()
    model = load_model(out.with_suffix(".safetensors"))
    assert family_key(json.loads(out.with_suffix(".json").read_text())) == key
    if key == "accompany":
        song = _song()
        new, _ = accompany_song(song, _track(song), style="piano", model=model, seed=3)  # type: ignore[arg-type]
        assert len(new.tracks) == len(song.tracks) + 1 and new.tracks[-1].notes
    else:
        assert isinstance(model, torch.nn.Module)


# -- the streaming contract, on each family's shipped model ----------------------------------------------
@pytest.fixture(scope="module")
def shipped() -> dict:
    return {}


def _shipped(cache: dict, key: str):
    if key not in cache:
        cache[key] = load_model(key)
    return cache[key]


@pytest.mark.parametrize("key", FAMILIES)
def test_same_seed_same_take(key: str, shipped: dict) -> None:
    model = _shipped(shipped, key)
    a, ra = _take(model, seed=11)
    b, rb = _take(model, seed=11)
    assert ra == rb == "done"
    assert a and a == b


@pytest.mark.parametrize("key", FAMILIES)
def test_cancel_takes_effect_within_one_step(key: str, shipped: dict) -> None:
    model = _shipped(shipped, key)
    song = _song()
    s = start_session(model, song, _track(song), bars=8, sampling=SamplingConfig(seed=5))
    events = iter(s)
    first = next(ev for ev in events if isinstance(ev, NoteEvent))
    assert first.session_id == s.id
    at_cancel = s.steps
    s.cancel()
    rest = list(events)
    assert isinstance(rest[-1], SessionFinished) and rest[-1].reason == "cancelled"
    assert s.steps <= at_cancel + 1
    # cancelled before it starts: no model step at all
    s2 = start_session(model, song, _track(song), bars=8, sampling=SamplingConfig(seed=5))
    s2.cancel()
    evs = list(s2)
    assert len(evs) == 1 and evs[0].reason == "cancelled" and s2.steps == 0


@pytest.mark.parametrize("key", FAMILIES)
def test_temperature_change_takes_effect_in_the_running_session(key: str, shipped: dict) -> None:
    """Near-greedy sampling (temperature 0.001) is the same for every seed; raised to 5 after the
    first note, the takes of two seeds part: the new temperature was used by the running session.
    (5, not 1.5: the shipped GAN's takes at temperature 1 are the same for every seed, its
    generator reads little of its noise; at 5 they part.)"""
    model = _shipped(shipped, key)
    g1, _ = _take(model, seed=1, temperature=1e-3)
    g2, _ = _take(model, seed=2, temperature=1e-3)
    assert g1 == g2
    h1, _ = _take(model, seed=1, temperature=1e-3, change=5.0)
    h2, _ = _take(model, seed=2, temperature=1e-3, change=5.0)
    assert h1[:1] == h2[:1] == g1[:1]
    assert h1 != h2


def test_cli_trains_any_family_on_a_midi_folder_and_continues_with_it(tmp_path: Path) -> None:
    """`musicgen train FAMILY --data DIR --out-dir D --name N` (again with ``--resume``: a second
    run on the same checkpoint), then `musicgen continue --model D/N` (the path without suffix)."""
    import json
    import os
    import subprocess
    import sys

    if not (POP909 / "001" / "001.mid").is_file():
        pytest.skip("POP909 is not beside the project (../shared/data/pop909)")
    music = tmp_path / "music"
    for song in ("001", "002", "003"):
        shutil.copytree(POP909 / song, music / song)
    env = {**os.environ, "MUSICGEN_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    cli = [sys.executable, "-m", "musicgen_app"]
    runs = tmp_path / "runs"
    train = subprocess.run(
        [*cli, "train", "chord-lstm", "--data", str(music), "--minutes", "0.05", "--out-dir", str(runs),
         "--name", "mine"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-2000:]
    assert (runs / "mine.safetensors").is_file() and "valid_nll" in train.stdout
    again = subprocess.run(
        [*cli, "train", "chord-lstm", "--data", str(music), "--minutes", "0.05", "--out-dir", str(runs),
         "--name", "mine", "--resume"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((runs / "mine.json").read_text())["training"]["runs"] == 2
    out = tmp_path / "out.mid"
    cont = subprocess.run(
        [*cli, "continue", str(paths.resources_dir() / "examples" / SKETCH), "-o", str(out), "--model",
         str(runs / "mine"), "--seed", "1"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert cont.returncode == 0, cont.stderr[-2000:]
    assert len(read_midi(out).song.tracks[0].notes) > len(_song().tracks[0].notes)


# -- card schema ----------------------------------------------------------------------------------------
def test_shipped_cards_are_schema_2_keyed_by_family() -> None:
    import json

    for key in FAMILIES:
        card = json.loads((paths.models_dir() / f"{key}.json").read_text())
        assert card["schema"] == 2 and card["family"] == key


@pytest.mark.parametrize("key", ["pianoroll-lstm", "melody-lstm"])
def test_version_1_cards_still_load(key: str, tmp_path: Path) -> None:
    """A shipped checkpoint with its card as it was before schema 2 loads as the same family."""
    import json

    card = json.loads((paths.models_dir() / f"{key}.json").read_text())
    card.pop("schema")
    if key.startswith("pianoroll"):
        card["family"] = "pianoroll"  # version 1: the three piano-roll families shared it
    (tmp_path / "old.json").write_text(json.dumps(card, indent=1) + "\n")
    shutil.copy(paths.models_dir() / f"{key}.safetensors", tmp_path / "old.safetensors")
    model = load_model(tmp_path / "old.safetensors")
    assert family_key(model.card) == key
    assert _take(model, seed=4) == _take(load_model(key), seed=4)
