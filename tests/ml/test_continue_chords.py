"""`musicgen continue --chords`: the chords condition every melody model at sampling time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from musicgen_app.cli.continue_cmd import continuation_chords
from musicgen_app.cli.main import main
from musicgen_app.core.chords import ChordChange, ChordSpan, parse_chord, parse_progression
from musicgen_app.core.midi_io import read_midi, write_midi
from musicgen_app.core.song import Note, Song, Track
from musicgen_app.ml.chord_eval import ToneCount, count_chord_tones
from musicgen_app.ml.sampling import CHORD_BIAS, ChordGuide

PROGRESSION = "C | G | Am | F"


def _seed(path: Path) -> Path:
    """Two bars of a C major tune in 4/4 (eighth notes)."""
    pitches = [60, 62, 64, 65, 67, 65, 64, 62, 64, 67, 72, 71, 69, 67, 65, 64]
    notes = [Note(i * 240, p, i * 240 + 220, 90) for i, p in enumerate(pitches)]
    write_midi(Song(tracks=[Track("melody", notes=notes)]), path)
    return path


def _share(path: Path, seed_end: int, bars: int) -> ToneCount:
    song = read_midi(path).song
    new = [n for n in song.tracks[0].notes if n.start_tick >= seed_end]
    spans = continuation_chords(song, seed_end, bars, parse_progression(PROGRESSION))
    return count_chord_tones(song, new, spans)


@pytest.mark.parametrize("model", ["note-transformer", "melody-lstm"])
def test_chords_raise_the_chord_tone_share(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = _seed(tmp_path / "seed.mid")
    seed_end = read_midi(seed).song.tracks[0].end_tick
    plain, guided = ToneCount(), ToneCount()
    for s in (1, 2, 3):
        for extra, acc in (([], plain), (["--chords", PROGRESSION], guided)):
            out = tmp_path / f"out-{s}-{bool(extra)}.mid"
            argv = ["continue", str(seed), "-o", str(out), "--model", model, "--bars", "8", "--seed", str(s)]
            assert main([*argv, *extra]) == 0
            acc.add(_share(out, seed_end, 8))
    capsys.readouterr()
    assert guided.notes >= 20 and plain.notes >= 20
    assert guided.share >= plain.share + 0.15, (plain.share, guided.share)


def test_a_bad_progression_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = _seed(tmp_path / "seed.mid")
    assert main(["continue", str(seed), "-o", str(tmp_path / "o.mid"), "--chords", "C G H7 F"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'H7' is not a chord" in err[0]
    assert not (tmp_path / "o.mid").exists()


def test_progression_repeats_one_chord_per_bar() -> None:
    song = Song()
    spans = continuation_chords(song, 960, 3, parse_progression("C G"))  # starts mid-bar
    assert [(s.start_tick, s.end_tick, str(s.chord)) for s in spans] == [
        (960, 1920, "C"),
        (1920, 3840, "G"),
        (3840, 5760, "C"),
        (5760, 6720, "G"),
    ]


def test_guide_moves_chord_tones_and_keeps_the_pitch_mass() -> None:
    id_pitch = np.array([-1, -1, 60, 62, 64, 65, 67])  # rest, hold, C D E F G
    guide = ChordGuide([ChordSpan(0, 100, parse_chord("C"))], shift=0)
    z = np.zeros(7)
    guide.apply(z, id_pitch, 50)
    p = np.exp(z) / np.exp(z).sum()
    assert p[:2].sum() == pytest.approx(2 / 7)  # rest and hold keep their share
    assert p[2] / p[3] == pytest.approx(np.exp(CHORD_BIAS))  # C against D: e^bias
    z2 = np.zeros(7)
    guide.apply(z2, id_pitch, 150)  # no chord there
    assert not z2.any()
    moved = ChordGuide([ChordSpan(0, 100, parse_chord("C"))], shift=2)  # a model two semitones up
    assert moved.pitch_classes_at(0) == frozenset({2, 6, 9})


def test_fill_follows_chords_too() -> None:
    """The same conditioning reaches Fill (the lane's chords over the range, in the window)."""
    from musicgen_app.core.chords import spans_from_changes
    from musicgen_app.ml.fill import start_fill_session
    from musicgen_app.ml.generate import SamplingConfig
    from musicgen_app.ml.registry import load_model
    from musicgen_app.ml.session import NoteEvent

    pitches = [60, 62, 64, 65, 67, 65, 64, 62, 64, 67, 72, 71, 69, 67, 65, 64] * 3
    song = Song(
        tracks=[Track("melody", notes=[Note(i * 240, p, i * 240 + 220, 90) for i, p in enumerate(pitches)])]
    )
    start, end = 3840, 7680  # bars 3-4 of 6
    lane = [
        ChordChange(start, parse_chord("Dm")),
        ChordChange(5760, parse_chord("Em")),
        ChordChange(end, None),
    ]
    spans = spans_from_changes(lane, end)
    model = load_model("melody-lstm")
    plain, guided = ToneCount(), ToneCount()
    for seed in (1, 2, 3):
        for chords, acc in (((), plain), (tuple(spans), guided)):
            session = start_fill_session(
                model, song, 0, start, end, sampling=SamplingConfig(seed=seed, chords=chords)
            )
            notes = [ev.note for ev in session if isinstance(ev, NoteEvent)]
            acc.add(count_chord_tones(song, notes, spans))
    assert guided.notes >= 6
    assert guided.share >= plain.share + 0.15, (plain.share, guided.share)
