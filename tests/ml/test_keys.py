"""Key names, Krumhansl-Schmuckler estimates, transposition to C major / A minor."""

from __future__ import annotations

import pytest

from musicgen_app.errors import GenerationError
from musicgen_app.ml.keys import Key, estimate_key, parse_key, transposition_to_reference
from musicgen_app.ml.sampling import allowed_pitch_classes


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("C", Key(0, "major")),
        ("F#m", Key(6, "minor")),
        ("Bb minor", Key(10, "minor")),
        ("D dorian", Key(2, "dorian")),
        ("Edor", Key(4, "dorian")),
        ("eb major", Key(3, "major")),
    ],
)
def test_parse_key(text: str, key: Key) -> None:
    assert parse_key(text) == key


@pytest.mark.parametrize("text", ["H", "C blues", "", "12"])
def test_parse_key_refuses(text: str) -> None:
    with pytest.raises(GenerationError):
        parse_key(text)


def test_estimate_scales() -> None:
    d_major = [62, 64, 66, 67, 69, 71, 73, 74, 69, 66, 62]
    assert estimate_key(d_major) == Key(2, "major")
    e_minor = [64, 66, 67, 69, 71, 72, 74, 76, 71, 67, 64, 64]
    assert estimate_key(e_minor) == Key(4, "minor")


def test_transposition_keeps_register() -> None:
    assert transposition_to_reference(Key(2, "major")) == -2
    assert transposition_to_reference(Key(7, "major")) == 5
    assert transposition_to_reference(Key(8, "major")) == 4
    assert transposition_to_reference(Key(4, "minor")) == 5
    assert transposition_to_reference(Key(2, "dorian")) == -5


def test_auto_lock_follows_a_modal_sketch() -> None:
    drunken_sailor = [69, 69, 69, 62, 65, 69, 67, 67, 67, 60, 64, 67, 69, 71, 72, 74, 72, 69, 67, 64, 62]
    assert allowed_pitch_classes("auto", drunken_sailor) == Key(2, "dorian").diatonic_pcs()
    assert allowed_pitch_classes("off", drunken_sailor) is None
    assert allowed_pitch_classes("A minor", []) == Key(9, "minor").scale_pcs()
