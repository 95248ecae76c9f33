"""The shipped melody model continues well-known melodies it never saw, through the streaming engine.

The melodies are written here as (pitch, length in 16ths) lists (``None`` = rest). Each
continuation must stay in the melody's key (>= 85% of notes in its scale), in its register, on the
16th grid, and never stick on one pitch. Sessions are reproducible by seed, cancel within a step,
and follow live temperature changes.
"""

from __future__ import annotations

import statistics
import threading
from itertools import pairwise

import numpy as np
import pytest

from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.song import Note, Song, TimeSignature, Track
from musicgen_app.errors import GenerationError
from musicgen_app.ml.generate import SamplingConfig, generate_notes, start_session
from musicgen_app.ml.keys import Key, parse_key
from musicgen_app.ml.registry import load_model

MODEL = "melody-lstm"
Q, E, H, DQ, DH = 4, 2, 8, 6, 12  # quarter, eighth, half, dotted quarter, dotted half (16ths)

# name -> (key, meter, pickup in 16ths, notes)
MELODIES: dict[str, tuple[str, tuple[int, int], int, list[tuple[int | None, int]]]] = {
    "twinkle (D major, 4/4)": (
        "D major",
        (4, 4),
        0,
        [(62, Q), (62, Q), (69, Q), (69, Q), (71, Q), (71, Q), (69, H),
         (67, Q), (67, Q), (66, Q), (66, Q), (64, Q), (64, Q), (62, H),
         (69, Q), (69, Q), (67, Q), (67, Q), (66, Q), (66, Q), (64, H)],
    ),
    "ode to joy (F major, 4/4)": (
        "F major",
        (4, 4),
        0,
        [(69, Q), (69, Q), (70, Q), (72, Q), (72, Q), (70, Q), (69, Q), (67, Q),
         (65, Q), (65, Q), (67, Q), (69, Q), (69, DQ), (67, E), (67, H)],
    ),
    "happy birthday (G major, 3/4, pickup)": (
        "G major",
        (3, 4),
        4,
        [(62, 3), (62, 1), (64, Q), (62, Q), (67, Q), (66, H), (62, 3), (62, 1), (64, Q), (62, Q),
         (69, Q), (67, H)],
    ),
    "god rest ye merry (E minor, 4/4)": (
        "E minor",
        (4, 4),
        0,
        [(64, Q), (64, Q), (71, Q), (71, Q), (69, Q), (67, Q), (66, Q), (64, Q),
         (62, Q), (64, Q), (66, Q), (67, Q), (69, Q), (71, DH)],
    ),
    "greensleeves (A minor, 3/4, pickup)": (
        "A minor",
        (3, 4),
        4,
        [(69, Q), (72, H), (74, Q), (76, DQ), (77, E), (76, Q), (74, H), (71, Q), (67, DQ), (69, E),
         (71, Q), (72, H), (69, Q), (69, DQ), (68, E), (69, Q), (71, H), (68, Q), (64, H)],
    ),
    "scarborough fair (D dorian, 3/4)": (
        "D dorian",
        (3, 4),
        0,
        [(62, H), (62, Q), (69, H), (69, Q), (64, DQ), (65, E), (64, Q), (62, DH),
         (69, Q), (72, H), (74, Q), (72, H), (69, Q), (71, Q), (67, Q), (69, DH)],
    ),
    "drunken sailor (D dorian, 4/4)": (
        "D dorian",
        (4, 4),
        0,
        [(69, E), (69, E), (69, E), (69, E), (69, E), (69, E), (69, E), (69, E),
         (69, Q), (62, Q), (65, Q), (69, Q),
         (67, E), (67, E), (67, E), (67, E), (67, E), (67, E), (67, E), (67, E),
         (67, Q), (60, Q), (64, Q), (67, Q)],
    ),
}  # fmt: skip


def melody_song(spec: tuple[str, tuple[int, int], int, list[tuple[int | None, int]]]) -> Song:
    """A one-track song of a melody spec (a pickup starts that many 16ths before bar 2)."""
    _, (num, den), pickup, notes = spec
    bar = 480 * 4 * num // den
    t = bar - pickup * 120 if pickup else 0
    out = []
    for pitch, length in notes:
        if pitch is not None:
            out.append(Note(t, pitch, t + length * 120, 90))
        t += length * 120
    return Song(tracks=[Track(notes=out)], time_signatures=[TimeSignature(0, num, den)])


@pytest.fixture(scope="module")
def model():
    return load_model(MODEL)


def max_run(pitches: list[int]) -> int:
    best = run = 1
    for a, b in pairwise(pitches):
        run = run + 1 if a == b else 1
        best = max(best, run)
    return best


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MELODIES))
@pytest.mark.parametrize("key_lock", ["auto", None])
def test_continuation_stays_in_key_register_and_grid(model, name: str, key_lock: str | None) -> None:
    spec = MELODIES[name]
    song = melody_song(spec)
    seed_notes = song.tracks[0].notes
    seed_pitches = [n.pitch for n in seed_notes]
    scale = parse_key(spec[0]).scale_pcs() if "minor" in spec[0] else parse_key(spec[0]).diatonic_pcs()
    lo, hi = min(seed_pitches), max(seed_pitches)
    in_key_total = notes_total = 0
    for seed in range(3):
        notes = generate_notes(model, song, 0, bars=4, sampling=SamplingConfig(seed=seed, key_lock=key_lock))
        assert len(notes) >= 4, f"{name}: only {len(notes)} notes"
        pitches = [n.pitch for n in notes]
        assert notes[0].start_tick >= song.end_tick
        assert all(n.start_tick % 120 == 0 and n.end_tick % 120 == 0 for n in notes), "off the 16th grid"
        assert all(b.start_tick >= a.end_tick for a, b in pairwise(notes)), "overlap"
        # the register: within an octave of the seed's range, centred near the seed's middle
        assert lo - 12 <= min(pitches) and max(pitches) <= hi + 12, f"{name}: {pitches} left {lo}-{hi}"
        assert abs(statistics.median(pitches) - statistics.median(seed_pitches)) <= 9, f"{name}: {pitches}"
        assert len(set(pitches)) >= 3 and max_run(pitches) <= 4, f"{name}: stuck: {pitches}"
        in_key_total += sum(1 for p in pitches if p % 12 in scale)
        notes_total += len(pitches)
    ratio = in_key_total / notes_total
    assert ratio >= 0.85, f"{name} (key lock {key_lock}): only {ratio:.0%} of notes in {spec[0]}"
    if key_lock == "auto":
        assert ratio == 1.0


def test_same_seed_same_take_other_seed_other_take(model) -> None:
    song = melody_song(MELODIES["twinkle (D major, 4/4)"])
    a = generate_notes(model, song, bars=4, sampling=SamplingConfig(seed=7))
    b = generate_notes(model, song, bars=4, sampling=SamplingConfig(seed=7))
    c = generate_notes(model, song, bars=4, sampling=SamplingConfig(seed=8))
    assert a == b
    assert a != c


def test_named_key_lock(model) -> None:
    song = melody_song(MELODIES["ode to joy (F major, 4/4)"])
    scale = Key(4, "minor").scale_pcs()
    for seed in range(3):
        notes = generate_notes(model, song, bars=2, sampling=SamplingConfig(seed=seed, key_lock="E minor"))
        assert notes and all(n.pitch % 12 in scale for n in notes)


def test_events_carry_session_id_and_order(model) -> None:
    song = melody_song(MELODIES["god rest ye merry (E minor, 4/4)"])
    s1 = start_session(model, song, bars=2, sampling=SamplingConfig(seed=1))
    s2 = start_session(model, song, bars=2, sampling=SamplingConfig(seed=1))
    assert s1.id != s2.id
    events = list(s1)
    assert isinstance(events[-1], SessionFinished) and events[-1].reason == "done"
    notes = [e for e in events if isinstance(e, NoteEvent)]
    assert [e.seq for e in notes] == list(range(len(notes)))
    assert all(e.session_id == s1.id for e in events)
    assert events[-1].notes == len(notes) and events[-1].tokens == 32


def test_cancel_takes_effect_within_one_step(model) -> None:
    song = melody_song(MELODIES["twinkle (D major, 4/4)"])
    session = start_session(model, song, bars=16, sampling=SamplingConfig(seed=3))
    it = iter(session)
    first = next(it)
    assert isinstance(first, NoteEvent)
    tokens_at_cancel = len(session.tokens)
    session.cancel()
    rest = list(it)
    assert len(session.tokens) <= tokens_at_cancel + 1
    assert all(isinstance(e, NoteEvent) for e in rest[:-1]) and len(rest) <= 2
    assert isinstance(rest[-1], SessionFinished) and rest[-1].reason == "cancelled"


def test_cancel_from_another_thread(model) -> None:
    song = melody_song(MELODIES["twinkle (D major, 4/4)"])
    session = start_session(model, song, bars=256, sampling=SamplingConfig(seed=3))
    seen = threading.Event()
    out: list = []

    def consume() -> None:
        for ev in session:
            out.append(ev)
            seen.set()

    worker = threading.Thread(target=consume)
    worker.start()
    assert seen.wait(10)
    session.cancel()
    worker.join(10)
    assert not worker.is_alive()
    assert out[-1].reason == "cancelled" and len(session.tokens) < session.n_steps


def test_temperature_change_takes_effect_at_the_next_token(model) -> None:
    song = melody_song(MELODIES["ode to joy (F major, 4/4)"])
    plain = start_session(model, song, bars=8, sampling=SamplingConfig(seed=11, key_lock=None))
    list(plain)
    changed = start_session(model, song, bars=8, sampling=SamplingConfig(seed=11, key_lock=None))
    it = iter(changed)
    next(it)
    k = len(changed.tokens)
    changed.set_temperature(0.001)
    list(it)
    assert changed.temperature == 0.001
    assert changed.tokens[:k] == plain.tokens[:k]
    assert changed.tokens[k:] != plain.tokens[k:]
    # near-greedy sampling repeats the model's most likely continuation: a second run with another
    # random seed but the same switch point gives the same tokens after it
    again = start_session(model, song, bars=8, sampling=SamplingConfig(seed=11, key_lock=None))
    it = iter(again)
    next(it)
    again.set_temperature(0.001)
    again.sampler.rng = np.random.default_rng(99)
    list(it)
    assert again.tokens == changed.tokens


def test_bad_requests(model) -> None:
    song = melody_song(MELODIES["twinkle (D major, 4/4)"])
    with pytest.raises(GenerationError):
        start_session(model, song, track=3)
    with pytest.raises(GenerationError):
        start_session(model, song, bars=0)
    with pytest.raises(GenerationError):
        SamplingConfig(temperature=0)
    with pytest.raises(GenerationError):
        start_session(model, song, sampling=SamplingConfig(key_lock="H moll"))


@pytest.mark.parametrize("resolution", [90, 96, 1000])
def test_any_resolution_gives_the_same_take_on_its_own_grid(model, resolution: int) -> None:
    def at(res: int) -> list[tuple[float, float, int]]:
        notes = [Note(i * res, p, (i + 1) * res, 90) for i, p in enumerate([67, 69, 71, 72, 74, 72, 71, 69])]
        song = Song(resolution=res, tracks=[Track(notes=notes)])
        out = generate_notes(model, song, bars=2, sampling=SamplingConfig(seed=4))
        return [(n.start_tick / res, n.end_tick / res, n.pitch) for n in out]

    reference = at(480)
    assert reference
    got = at(resolution)
    assert [p for _, _, p in got] == [p for _, _, p in reference]
    for (s, e, _), (rs, re_, _) in zip(got, reference, strict=True):
        assert abs(s - rs) <= 0.5 / resolution and abs(e - re_) <= 0.5 / resolution
