"""Chord symbols: typed and annotated spellings parse, spell back, and estimate from notes."""

from __future__ import annotations

import pytest

from musicgen_app.core.chords import (
    QUALITIES,
    Chord,
    ChordError,
    ChordSpan,
    chord_at,
    estimate_chords,
    parse_chord,
    parse_progression,
)


@pytest.mark.parametrize(
    ("text", "root", "quality", "bass"),
    [
        ("C", 0, "", None), ("Am7", 9, "m7", None), ("F/A", 5, "", 9), ("Bb7", 10, "7", None),
        ("F#m7b5", 6, "m7b5", None), ("Gsus4", 7, "sus4", None), ("A:min7", 9, "m7", None),
        ("C:maj/3", 0, "", 4), ("G:sus4(b7)", 7, "7sus4", None), ("E:min7/b7", 4, "m7", 2),
        ("Ebmaj7", 3, "maj7", None), ("B:hdim7", 11, "m7b5", None),
    ],
)
def test_symbols_parse(text: str, root: int, quality: str, bass: int | None) -> None:
    assert parse_chord(text) == Chord(root, quality, bass)


def test_every_quality_spells_back() -> None:
    for root in range(12):
        for quality in QUALITIES:
            for bass in (None, (root + 7) % 12):
                chord = Chord(root, quality, bass)
                assert parse_chord(chord.symbol) == chord


@pytest.mark.parametrize("bad", ["H", "Cxyz", "C/Q", "7", "Am/9b"])
def test_bad_symbols_say_why(bad: str) -> None:
    with pytest.raises(ChordError, match=bad.split("/")[0][:1] or bad):
        parse_chord(bad)


def test_progression_and_no_chord() -> None:
    assert parse_progression("C | G  Am,F N.C.") == [
        Chord(0), Chord(7), Chord(9, "m"), Chord(5), None]
    with pytest.raises(ChordError):
        parse_progression("  ")


def test_estimate_from_notes() -> None:
    # C major arpeggio, then A minor with an A in the bass, then G7.
    notes = [(0, 100, 60), (0, 100, 64), (0, 100, 67), (100, 200, 57), (100, 200, 60),
             (100, 200, 64), (200, 300, 55), (200, 300, 59), (200, 300, 62), (200, 300, 65)]
    spans = estimate_chords(notes, [(0, 100), (100, 200), (200, 300), (300, 400)])
    assert [s.chord.symbol if s.chord else None for s in spans] == ["C", "Am", "G7", None]
    assert chord_at(spans, 150) == Chord(9, "m")
    assert chord_at([ChordSpan(0, 10, Chord(0))], 10) is None
