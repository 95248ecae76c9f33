"""The shipped bar GAN (paper 002's WGAN-GP, MidiNet-style): loading, streaming, key lock, seeds.

The checks every shipped family passes (unseen tunes in key, in register, on the grid, streaming
and cancelling) run on it through ``test_continuations.py``; these are the GAN's own: its card
(no likelihood, continuation statistics instead), the key lock masking its onsets, temperature
as the noise scale, and damaged checkpoints.
"""

from __future__ import annotations

import shutil

import pytest

from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.errors import CheckpointError
from musicgen_app.ml.families import gan
from musicgen_app.ml.generate import SamplingConfig, start_session
from musicgen_app.ml.keys import parse_key
from musicgen_app.ml.registry import list_models, load_model

from .test_continuations import SKETCHES, sketch_song

NAME = "pianoroll-gan"


@pytest.fixture(scope="module")
def model():
    return load_model(NAME)


def _take(model, sketch: int = 0, bars: int = 4, **sampling) -> list[NoteEvent]:
    _, _, _, beats, notes = SKETCHES[sketch]
    events = list(
        start_session(model, sketch_song(beats, notes), 0, bars=bars, sampling=SamplingConfig(**sampling))
    )
    assert isinstance(events[-1], SessionFinished) and events[-1].reason == "done", events[-1]
    return [e for e in events[:-1] if isinstance(e, NoteEvent)]


def test_shipped_card_and_weights(model) -> None:
    card = model.card
    assert card["seed_paper"] == "002" and card["architecture"] == NAME
    assert NAME in [m.name for m in list_models()]  # the app's model chooser and `musicgen models`
    assert model.path.stat().st_size < 4_000_000
    m = card["metrics"]
    assert "test_nll" not in m  # a GAN has no likelihood
    systems = m["chorale_continuations"]["systems"]
    assert {"real", NAME, "pianoroll-lstm", "repeat-last-bar", "random-in-key"} <= set(systems)
    assert card["training"]["generator_steps"] > 0 and card["training"]["history"]


def test_streams_in_completion_order_deterministically(model) -> None:
    a = _take(model, seed=5)
    assert len(a) >= 4
    ends = [e.note.end_tick for e in a]
    assert ends == sorted(ends)  # each note is streamed in the frame where it stops
    assert [e.seq for e in a] == list(range(len(a)))
    assert [e.note for e in _take(model, seed=5)] == [e.note for e in a]
    assert [e.note for e in _take(model, seed=6)] != [e.note for e in a]


def test_temperature_scales_the_noise(model) -> None:
    # near zero the noise vanishes: every seed gives the generator's typical continuation; at 1
    # seeds differ (on some sketches, e.g. the D dorian one, the generator ignores z at 1 and only
    # varies from about 2 on: the conditional GAN's partial mode collapse)
    def takes(temperature: float) -> set:
        return {tuple(e.note for e in _take(model, 1, temperature=temperature, seed=s)) for s in (1, 2, 3)}

    assert len(takes(1e-3)) == 1
    assert len(takes(1.0)) > 1


@pytest.mark.parametrize("key", ["F# major", "Bb minor"])
def test_key_lock_masks_onsets(model, key: str) -> None:
    # keys far from the sketches' own (D major, E minor): only the mask can keep the notes there
    allowed = parse_key(key).scale_pcs()
    for i in (0, 1):
        notes = [e.note for e in _take(model, i, key_lock=key, seed=3)]
        assert notes and all(n.pitch % 12 in allowed for n in notes), (key, [n.pitch for n in notes])


def test_decode_window_rules() -> None:
    import numpy as np

    probs = np.zeros((2, gan.FRAMES, gan.PITCHES), np.float32)
    probs[0, 0, 10] = 0.9  # an onset...
    probs[1, 1:4, 10] = 0.8  # ...held three more frames
    probs[1, 0:4, 20] = 0.9  # a sustain of a key that is not sounding: silent
    probs[0, 5, 11] = 0.9  # an onset the key lock forbids
    ok = np.ones(gan.PITCHES, bool)
    ok[11] = False
    out = gan.decode_window(probs, np.zeros(gan.PITCHES, bool), 0.5, ok)
    assert out[:5, 10].tolist() == [gan.ONSET, gan.SUSTAIN, gan.SUSTAIN, gan.SUSTAIN, gan.SILENT]
    assert not out[:, 20].any() and not out[:, 11].any()
    # a key sounding before the window may go on
    sounding = np.zeros(gan.PITCHES, bool)
    sounding[20] = True
    assert gan.decode_window(probs, sounding, 0.5, ok)[:4, 20].tolist() == [gan.SUSTAIN] * 4


def test_corrupt_checkpoint_is_a_checkpoint_error(model, tmp_path) -> None:
    card = model.path.with_suffix(".json")
    shutil.copy(card, tmp_path / "broken.json")
    (tmp_path / "broken.safetensors").write_bytes(model.path.read_bytes()[:5000])  # cut short
    with pytest.raises(CheckpointError, match=r"corrupt|damaged"):
        load_model(tmp_path / "broken.safetensors")
    # weights of another shape than the card says
    text = card.read_text().replace('"width": 128', '"width": 64')
    (tmp_path / "other.json").write_text(text)
    shutil.copy(model.path, tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "other.safetensors")
