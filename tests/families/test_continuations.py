"""The shipped models of papers 000, 001, 002 (frame LSTM, seq2seq, GAN) and 004 continue unseen
tunes, streaming.

The sketches below were written for these tests (so no model was trained on them): major, minor
and modal, in 3/4 and 4/4. Every model continues each one through the app's one entry point,
``ml.generate.start_session``, with the key lock off, so the checks are about the model itself:
the continuation must stay in the sketch's key (pooled over the sketches), near its register, on
the 16th grid, inside the requested bars, and arrive note by note while it is being generated.
"""

from __future__ import annotations

import statistics

import pytest

from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.song import Note, Song, TimeSignature, Track
from musicgen_app.ml.families import SHIPPED
from musicgen_app.ml.families.char_notes import ARCHITECTURE as CHAR_NOTES
from musicgen_app.ml.generate import SamplingConfig, start_session
from musicgen_app.ml.keys import MODES
from musicgen_app.ml.registry import load_model

RES = 480
STEP = RES // 4

# (name, tonic pc, mode, beats per bar, [(MIDI pitch, length in 16ths)]) - four bars each
SKETCHES = [
    ("D major 4/4", 2, "major", 4,
     [(62, 4), (64, 4), (66, 4), (67, 4), (69, 8), (66, 4), (62, 4), (67, 4), (71, 4), (69, 4), (67, 4),
      (66, 8), (64, 8)]),
    ("E minor 3/4", 4, "minor", 3,
     [(64, 4), (67, 4), (71, 4), (72, 6), (71, 2), (69, 4), (67, 4), (66, 4), (64, 4), (66, 8), (59, 4)]),
    ("D dorian 4/4", 2, "dorian", 4,
     [(62, 4), (65, 4), (69, 4), (71, 4), (72, 4), (71, 4), (69, 8), (67, 4), (65, 4), (64, 4), (62, 4),
      (60, 4), (62, 4), (65, 8)]),
    ("G mixolydian 3/4", 7, "mixolydian", 3,
     [(67, 4), (71, 4), (74, 4), (77, 6), (76, 2), (74, 4), (72, 4), (71, 4), (69, 4), (67, 8), (65, 4)]),
    ("F major 4/4", 5, "major", 4,
     [(65, 2), (67, 2), (69, 4), (72, 4), (70, 4), (69, 4), (67, 4), (65, 8), (69, 4), (72, 4), (74, 4),
      (72, 4), (70, 4), (69, 4), (67, 8)]),
]  # fmt: skip
BARS = 4


def sketch_song(beats: int, notes: list[tuple[int, int]]) -> Song:
    """A one-track song of (pitch, 16ths) notes in ``beats``/4."""
    out, t = [], 0
    for p, d in notes:
        out.append(Note(t * STEP, p, (t + d) * STEP, 90))
        t += d
    return Song(resolution=RES, tracks=[Track(notes=out)], time_signatures=[TimeSignature(0, beats, 4)])


def top_line(notes: list[Note]) -> list[Note]:
    """The highest note at each onset (the melody of a polyphonic continuation)."""
    best: dict[int, Note] = {}
    for n in notes:
        if n.start_tick not in best or n.pitch > best[n.start_tick].pitch:
            best[n.start_tick] = n
    return [best[t] for t in sorted(best)]


@pytest.fixture(scope="module", params=SHIPPED)
def model(request):
    return load_model(request.param)


def test_card_names_its_paper(model) -> None:
    assert model.card["seed_paper"] in ("000", "001", "002", "004", "beyond")  # beyond: note-transformer
    assert model.card["architecture"] in (*SHIPPED, CHAR_NOTES)  # char-lstm's hierarchical network
    if model.card["architecture"] == "pianoroll-gan":  # no likelihood: continuation statistics instead
        assert model.card["metrics"]["chorale_continuations"]["cases"] > 0
    else:
        assert model.card["metrics"]["test_nll"] > 0


@pytest.mark.slow
def test_continues_unseen_tunes_in_key_register_and_grid(model) -> None:
    in_key = total = in_band = melody_total = 0
    for name, tonic, mode, beats, notes in SKETCHES:
        song = sketch_song(beats, notes)
        start = song.tracks[0].end_tick
        bar_ticks = beats * RES
        session = start_session(model, song, 0, bars=BARS, sampling=SamplingConfig(seed=7, key_lock=None))
        events = list(session)
        assert isinstance(events[-1], SessionFinished) and events[-1].reason == "done", (name, events[-1])
        gen = [e.note for e in events if isinstance(e, NoteEvent)]
        assert [e.seq for e in events[:-1]] == list(range(len(gen)))
        assert len(gen) >= BARS, f"{model.name} wrote {len(gen)} notes for {BARS} bars of {name}"
        for n in gen:  # absolute ticks, inside the requested bars, on the 16th grid
            assert start <= n.start_tick < n.end_tick <= start + BARS * bar_ticks, (name, n)
            assert n.start_tick % STEP == 0 and n.end_tick % STEP == 0, (name, n)
        scale = {(tonic + d) % 12 for d in MODES[mode]}
        if mode == "minor":
            scale |= {(tonic + 9) % 12, (tonic + 11) % 12}  # melodic/harmonic minor
        in_key += sum(1 for n in gen if n.pitch % 12 in scale)
        total += len(gen)
        # register: the continuation's melody (its top line) stays around the sketch's
        pitches = [p for p, _ in notes]
        melody = [n.pitch for n in top_line(gen)]
        assert abs(statistics.median(melody) - statistics.median(pitches)) < 12, (name, melody)
        in_band += sum(1 for p in melody if min(pitches) - 7 <= p <= max(pitches) + 7)
        melody_total += len(melody)
    # chance level is 7/12 = 0.58
    assert in_key / total >= 0.8, f"{model.name}: only {in_key}/{total} continuation notes in key"
    assert in_band / melody_total >= 0.9, f"{model.name}: {in_band}/{melody_total} melody notes in register"


def _steps_done(session) -> int:
    """Model steps a session has taken (family sessions count their engine's, token sessions theirs)."""
    return session.engine.tokens if hasattr(session, "engine") else len(session.tokens)


def test_streams_notes_while_generating_and_cancels(model) -> None:
    _, _, _, beats, notes = SKETCHES[0]
    song = sketch_song(beats, notes)
    session = start_session(model, song, 0, bars=8, sampling=SamplingConfig(seed=3))
    it = iter(session)
    first = next(it)
    assert isinstance(first, NoteEvent) and first.session_id == session.id
    # the first note came out after a fraction of the model steps the whole take needs
    steps_at_first = _steps_done(session)
    assert steps_at_first < 8 * beats * 4
    session.cancel()
    rest = list(it)
    finished = rest[-1]
    assert isinstance(finished, SessionFinished) and finished.reason == "cancelled"
    # no model step after the cancel: what still came were notes completed by the step in flight
    assert finished.tokens == steps_at_first
    assert all(isinstance(e, NoteEvent) and e.note.start_tick <= first.note.end_tick for e in rest[:-1])


def test_same_seed_same_take(model) -> None:
    _, _, _, beats, notes = SKETCHES[1]
    song = sketch_song(beats, notes)

    def take() -> list[Note]:
        cfg = SamplingConfig(seed=11, temperature=0.9)
        return [
            e.note for e in start_session(model, song, 0, bars=2, sampling=cfg) if isinstance(e, NoteEvent)
        ]

    assert take() == take()
