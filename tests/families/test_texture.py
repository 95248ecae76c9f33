"""Texture follows the sketch (issue 11): the piano-roll families decide a frame's keys jointly and
keep a single line a line unless the musician asks for harmony; chord-lstm writes no chords onto a
line; Twinkle Twinkle is continued bar after bar by every piano-roll model."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch

from musicgen_app.core.song import Note, Song, TimeSignature, Track
from musicgen_app.errors import GenerationError
from musicgen_app.ml import judge as J  # noqa: N812
from musicgen_app.ml.families import gan
from musicgen_app.ml.families import pianoroll as pr
from musicgen_app.ml.families.chorales import chorale_splits
from musicgen_app.ml.generate import SamplingConfig, generate_notes
from musicgen_app.ml.registry import load_model

PIANO_ROLLS = ("pianoroll-lstm", "pianoroll-seq2seq", "pianoroll-gan")
RES = 480
BAR = 4 * RES
TWINKLE = [60, 60, 67, 67, 69, 69, 67, None, 65, 65, 64, 64, 62, 62, 60, None]  # None: the half note goes on
TWINKLE_NEXT = [67, 67, 65, 65, 64, 64, 62, None, 67, 67, 65, 65, 64, 64, 62, None]


def _quarters(pitches: list[int | None], start: int = 0) -> list[Note]:
    notes: list[Note] = []
    for i, p in enumerate(pitches):
        t = start + i * RES
        if p is None:
            last = notes[-1]
            notes[-1] = Note(last.start_tick, last.pitch, t + RES, 90)
        else:
            notes.append(Note(t, p, t + RES, 90))
    return notes


def twinkle() -> J.Sketch:
    """Four bars of Twinkle Twinkle in C, cut at bar 4; the real continuation is the next phrase twice."""
    song = Song(
        resolution=RES, tracks=[Track(notes=_quarters(TWINKLE))], time_signatures=[TimeSignature(0, 4, 4)]
    )
    return J.Sketch("hand", "twinkle", song, 4 * BAR, _quarters(TWINKLE_NEXT, 4 * BAR), seed=1)


def _take(model, sketch: J.Sketch, seed: int, voices: str = "sketch", temperature: float = 0.9) -> list[Note]:
    sampling = SamplingConfig(temperature=temperature, key_lock=None, seed=seed, voices=voices)
    return generate_notes(model, sketch.song, 0, start_tick=sketch.cut_tick, bars=J.BARS, sampling=sampling)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.mark.parametrize("name", PIANO_ROLLS)
def test_twinkle_is_continued_bar_after_bar_as_a_line(name: str) -> None:
    model = load_model(name)
    sketch = twinkle()
    passed, empty = 0, []
    for seed in range(1, 7):
        take = _take(model, sketch, seed)
        bars = {(n.start_tick - sketch.cut_tick) // BAR for n in take}
        empty += [(seed, b) for b in range(J.BARS) if b not in bars]
        assert J.max_simultaneous(take) <= 1, (seed, take)  # a line stays a line
        passed += J.judge_continuation(sketch, take).passed
    # the shipped models before issue 11: 0 of 6 takes passed (chords, too few notes, out of key)
    assert len(empty) <= 1, f"{name} left bars empty (seed, bar): {empty}"
    assert passed >= 4, f"{name}: {passed}/6 takes passed the judge"


@pytest.mark.parametrize("name", ["pianoroll-lstm", "pianoroll-seq2seq", "pianoroll-gan", "chord-lstm"])
def test_a_single_line_gets_voices_only_when_harmony_is_asked_for(name: str) -> None:
    model = load_model(name)
    sketches = [twinkle(), *J.load_sketches("folk", 6)]
    most = {"sketch": 0, "harmony": 0}
    for voices in most:
        for i, s in enumerate(sketches):
            take = _take(model, s, seed=100 + i, voices=voices)
            most[voices] = max(most[voices], J.max_simultaneous(take))
    assert most["sketch"] == 1
    if name != "chord-lstm":  # it may add voices when asked, but continues most lines as lines
        assert most["harmony"] >= 2, f"{name} added no voice when asked"


def test_four_part_sketches_keep_their_voices() -> None:
    model = load_model("pianoroll-lstm")
    sketches = J.load_sketches("chorale4", 4)
    most = [J.max_simultaneous(_take(model, s, seed=s.seed)) for s in sketches]
    assert all(2 <= m <= J.max_simultaneous(s.notes) for m, s in zip(most, sketches, strict=True)), most


def test_the_note_axis_is_the_teacher_forced_conditional() -> None:
    """Drawing a frame key by key, top down, meets the logits training scored for each key."""
    net = load_model("pianoroll-lstm").make_engine().model
    assert net.cfg.nade_size > 0
    b = pr.make_batch(chorale_splits()["test"], 2, 24, np.random.default_rng(3), False)
    with torch.inference_mode():
        full, _ = net(b.frames, b.bar_pos, b.bar_steps, target=b.target)
        base, y, _ = net.run(b.frames, b.bar_pos, b.bar_steps)
    axis = pr.NoteAxis.of(net)
    assert axis is not None
    for t in (5, 17):
        target = b.target[0, t].numpy()
        a = y[0, t].numpy() @ axis.c_w + axis.c_b
        for k in range(pr.KEYS - 1, -1, -1):
            lk = base[0, t, k].numpy() + pr.sigmoid(a) @ axis.v[k]
            assert np.allclose(lk, full[0, t, k].numpy(), atol=1e-4), (t, k)
            if target[k]:
                a = a + axis.w[k, target[k] - 1]


def test_draw_frame_stops_at_the_voice_cap_and_keeps_the_top_voice() -> None:
    logits = np.full((pr.KEYS, 3), -20.0)
    logits[:, pr.ONSET] = 20.0  # every key wants to start
    ok = np.ones((pr.KEYS, 3), bool)
    ok[:, pr.SUSTAIN] = False
    keys = np.arange(60, 39, -1)  # the register, highest first
    u = np.full(len(keys), 0.5)
    for cap, want in ((1, [60]), (3, [58, 59, 60])):
        frame, _ = pr.draw_frame(logits, np.zeros(4), None, keys, ok, cap, 1.0, 1.0, u)
        assert np.flatnonzero(frame).tolist() == want
    # a key the repeat guard forbids is passed over
    ok[60, pr.ONSET] = False
    frame, _ = pr.draw_frame(logits, np.zeros(4), None, keys, ok, 1, 1.0, 1.0, u)
    assert np.flatnonzero(frame).tolist() == [59]


def test_gan_decoding_keeps_the_top_voice_and_stops_repeats() -> None:
    probs = np.zeros((2, gan.FRAMES, gan.PITCHES), np.float32)
    probs[0, 0, [10, 14, 17]] = 0.9  # a chord
    probs[1, 1:4, [10, 14, 17]] = 0.9
    out = gan.decode_window(probs, np.zeros(gan.PITCHES, bool), 0.5, None, cap=1)
    assert ((out > 0).sum(1) <= 1).all() and out[0, 17] == gan.ONSET and out[1, 17] == gan.SUSTAIN
    probs = np.zeros((2, gan.FRAMES, gan.PITCHES), np.float32)
    probs[0, :, 20] = 0.9  # the same key struck every frame
    runs = np.zeros(gan.PITCHES, int)
    out = gan.decode_window(probs, np.zeros(gan.PITCHES, bool), 0.5, None, 1, runs, max_repeats=4)
    assert (out[:, 20] == gan.ONSET).sum() == 4 and runs[20] == 4


def test_voices_must_be_sketch_or_harmony() -> None:
    assert SamplingConfig().voices == "sketch"
    with pytest.raises(GenerationError, match="voices"):
        SamplingConfig(voices="choir")


def test_the_gan_stays_in_the_sketch_register() -> None:
    """Every note of the bar GAN's take within the sketch's range +- an octave, and its middle (the
    median pitch) within a fifth of the sketch's: the generator follows the register, the mask only
    guards the edges (the GAN before issue 11 left it on 3 in 7 folk tunes)."""
    model = load_model("pianoroll-gan")
    sketches = [*J.load_sketches("folk", 8), *J.load_sketches("chorale", 6)]
    far = []
    for s in sketches:
        take = _take(model, s, seed=s.seed)
        sk = [n.pitch for n in s.notes]
        assert take and all(min(sk) - 12 <= n.pitch <= max(sk) + 12 for n in take), s.name
        if abs(float(np.median([n.pitch for n in take])) - float(np.median(sk))) > 7:
            far.append(s.name)
    assert len(far) <= 1, far


def test_char_lstm_keeps_a_line_a_line() -> None:
    """The text encoding gives each note a duration and a step to the next note; a duration longer
    than the step sounded under the next note (two folk takes in 60 had two notes at once)."""
    model = load_model("char-lstm")
    for s in [twinkle(), *J.load_sketches("folk", 30)]:
        take = _take(model, s, seed=s.seed)
        assert take and J.max_simultaneous(take) == 1, s.name


def test_chord_lstm_strikes_a_repeated_note_again_on_a_line() -> None:
    """On a line the same note in the next slice is a new note (slices are cut where notes start and
    end): before, it was tied, so Twinkle's repeated notes, and every repeated note of a pop line,
    were lost."""
    model = load_model("chord-lstm")
    sketch = twinkle()
    again = 0
    for seed in range(1, 7):
        take = sorted(_take(model, sketch, seed), key=lambda n: n.start_tick)
        again += sum(a.pitch == b.pitch and a.end_tick == b.start_tick for a, b in pairwise(take))
    assert again >= 2, again
