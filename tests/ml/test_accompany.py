"""Accompany with the shipped models: the accompaniment follows given chords, streams as a session
that can be cancelled, is the same for the same seed, and keeps the song's other tracks."""

from __future__ import annotations

import itertools

import pytest

from musicgen_app.core.chords import Chord, ChordSpan, estimate_chords, parse_progression
from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.song import Note, Song, TimeSignature, Track
from musicgen_app.errors import GenerationError
from musicgen_app.ml.accompany import (
    accompany_song,
    load_accompany_model,
    predict_chords,
    progression_spans,
    start_accompany_session,
)

BAR = 4 * 480


@pytest.fixture(scope="module")
def pop():
    return load_accompany_model("accompany-pop909")


def tune(bars: int = 16) -> Song:
    """A C major melody in quarters and halves, 16 bars, over the changes C G Am F."""
    phrase = [(64, 1), (67, 1), (72, 2), (71, 1), (67, 1), (62, 2), (72, 1), (69, 1), (64, 2), (65, 1),
              (69, 1), (72, 1), (69, 1)]  # fmt: skip
    notes, t = [], 0
    while t < bars * BAR:
        for pitch, beats in phrase:
            if t >= bars * BAR:
                break
            notes.append(Note(t, pitch, t + beats * 480 - 20, 90))
            t += beats * 480
    return Song(tracks=[Track(name="Melody", notes=notes)], time_signatures=[TimeSignature(0, 4, 4)])


def root_agreement(notes: list[Note], spans: list[ChordSpan], end: int) -> float:
    """Share of beats whose root estimated from ``notes`` is the root of the chord given there."""
    beats = [(t, t + 480) for t in range(0, end, 480)]
    est = estimate_chords(((n.start_tick, n.end_tick, n.pitch) for n in notes), beats)
    hits = total = 0
    for b0, _ in beats:
        given = next(s.chord for s in spans if s.start_tick <= b0 < s.end_tick)
        got = next(s.chord for s in est if s.start_tick <= b0 < s.end_tick)
        total += 1
        hits += got is not None and given is not None and got.root == given.root
    return hits / total


@pytest.mark.parametrize("style", ["piano", "chords", "bass"])
def test_the_accompaniment_follows_the_chords_it_is_given(pop, style: str) -> None:
    song = tune()
    # a progression against the melody's own harmony: the chords, not the melody, must lead
    spans = progression_spans(song, parse_progression("C G Am F"), 16 * BAR)
    assert [s.chord.symbol for s in spans[:5] if s.chord] == ["C", "G", "Am", "F", "C"]
    _, res = accompany_song(song, 0, style=style, model=pop, seed=11, chords=spans)
    assert res.chords[0].chord == Chord(0) and res.notes
    agree = root_agreement(res.notes, spans, 16 * BAR)
    assert agree >= {"piano": 0.6, "chords": 0.95, "bass": 0.6}[style], agree
    # the other progression moves the accompaniment with it
    other = progression_spans(song, parse_progression("F Dm Bb C"), 16 * BAR)
    _, res2 = accompany_song(song, 0, style=style, model=pop, seed=11, chords=other)
    assert root_agreement(res2.notes, other, 16 * BAR) >= {"piano": 0.6, "chords": 0.95, "bass": 0.6}[style]
    assert root_agreement(res2.notes, spans, 16 * BAR) < 0.5


def test_without_chords_the_model_chooses_them_and_keeps_the_melody(pop) -> None:
    song = tune()
    out, res = accompany_song(song, 0, style="piano", model=pop, seed=3)
    assert out.tracks[0] == song.tracks[0] and len(out.tracks) == 2
    assert out.tracks[1].name == "Piano accompaniment" and out.tracks[1].notes == res.notes
    assert all(s.chord is not None for s in res.chords)
    assert res.chords[0].start_tick <= 0 and res.chords[-1].end_tick >= 16 * BAR - 480
    _, again = accompany_song(song, 0, style="piano", model=pop, seed=3)
    assert again.notes == res.notes
    _, other = accompany_song(song, 0, style="piano", model=pop, seed=4)
    assert other.notes != res.notes


def test_predicted_chords_are_the_ones_the_accompaniment_follows(pop) -> None:
    song = tune()
    spans = predict_chords(song, 0, pop)
    _, res = accompany_song(song, 0, style="chords", model=pop, seed=1)
    assert spans == res.chords
    assert spans[0].start_tick <= 0 and all(a.end_tick == b.start_tick for a, b in itertools.pairwise(spans))
    # the tune's phrase is diatonic in C: its chords are chords of C major (or its relative minor)
    c_major = {0, 2, 4, 5, 7, 9, 11}
    inside = sum(s.end_tick - s.start_tick for s in spans if s.chord and s.chord.root in c_major)
    assert inside / (spans[-1].end_tick - spans[0].start_tick) >= 0.8


def test_the_session_streams_notes_as_they_end_and_cancels(pop) -> None:
    session = start_accompany_session(pop, tune(), 0, style="piano", seed=5)
    items = iter(session)
    first = next(items)
    assert isinstance(first, NoteEvent) and first.track == 1
    session.cancel()
    rest = list(items)
    assert isinstance(rest[-1], SessionFinished) and rest[-1].reason == "cancelled"
    assert len(rest) <= 8  # stops within a frame or so (the notes of that frame)


def test_a_satb_accompaniment_from_the_chorale_model_has_three_voices_below_the_soprano() -> None:
    song = tune(8)
    out, res = accompany_song(song, 0, style="satb", seed=2)
    assert res.model == "accompany-chorales" and out.tracks[1].program == 52 and res.notes
    for t in range(0, 8 * BAR, 240):
        sounding = [n for n in res.notes if n.start_tick <= t < n.end_tick]
        assert len(sounding) <= 3


def test_bad_requests_say_what_is_wrong(pop) -> None:
    song = tune(2)
    song.tracks.append(Track(name="Empty", channel=1))
    with pytest.raises(GenerationError, match="no notes"):
        accompany_song(song, 1, model=pop)
    with pytest.raises(GenerationError, match="no track 5"):
        accompany_song(song, 4, model=pop)
    with pytest.raises(GenerationError, match="unknown accompaniment style"):
        accompany_song(song, 0, style="jazz", model=pop)


def test_the_numpy_decoder_steps_compute_what_the_network_computes() -> None:
    import numpy as np
    import torch

    from musicgen_app.ml.accompany_net import MELODY_DIM, AccompanyConfig, AccompanyNet

    torch.manual_seed(0)
    net = AccompanyNet(AccompanyConfig(low=50, keys=10, enc_hidden=16, dec_hidden=24)).eval()
    t_len = 9
    mel = torch.randn(1, t_len, MELODY_DIM)
    chords = torch.randint(0, 49, (1, t_len))
    on = (torch.rand(1, t_len, 10) < 0.3).float()
    sound = torch.clamp(on + (torch.rand(1, t_len, 10) < 0.3).float(), 0, 1)
    with torch.no_grad():
        _, on_logits, sus_logits = net(mel, chords, on, sound)
        hidden, _ = net.encode(mel)
    dec = net.stepper(hidden[0], chords[0], mel[0])
    prev_on = prev_sound = np.zeros(0, dtype=np.int64)
    for t in range(t_len):
        a, b = dec.step(t, prev_on, prev_sound)
        assert np.allclose(a, on_logits[0, t].numpy(), atol=1e-5)
        assert np.allclose(b, sus_logits[0, t].numpy(), atol=1e-5)
        prev_on, prev_sound = np.nonzero(on[0, t].numpy())[0], np.nonzero(sound[0, t].numpy())[0]


def test_the_parameter_count_of_each_accompaniment_card_is_exact() -> None:
    from safetensors.torch import load_file

    from musicgen_app.ml import checkpoint_verify as cv
    from musicgen_app.ml.registry import list_models

    infos = [m for m in list_models(task=None) if m.name.startswith("accompany-")]
    assert {m.name for m in infos} >= {"accompany-pop909", "accompany-chorales", "accompany-chords"}
    for info in infos:
        arch, config = cv.card_config(info.card, info.name)
        stored = sum(t.numel() for t in load_file(str(info.path)).values())
        assert cv.validate_config(arch, config, info.name) == stored, info.name


def test_the_beat_chord_predictor_gives_one_chord_per_beat_read_from_both_sides() -> None:
    import numpy as np
    import torch

    from musicgen_app.ml.accompany_net import (
        N_CHORDS,
        BeatChordNet,
        BeatChordNetConfig,
        key_histogram,
        melody_arrays,
        melody_features,
    )

    torch.manual_seed(0)
    net = BeatChordNet(BeatChordNetConfig(hidden=16, layers=2)).eval()
    rows = np.array([(s, 2, 60 + (s * 7) % 12) for s in range(0, 128, 2)], dtype=np.int64)
    pitch, onset = melody_arrays(rows, 130)  # 32 beats and a half
    position = np.arange(130) % 16

    hist = torch.from_numpy(key_histogram(pitch))[None]  # the same song histogram throughout

    def logits(p: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return net(torch.from_numpy(melody_features(p, onset, position))[None], hist)[0]

    z = logits(pitch)
    assert z.shape == (130, N_CHORDS)
    beats = z[:128].reshape(32, 4, N_CHORDS)
    assert torch.equal(beats, beats[:, :1].expand(-1, 4, -1))  # one chord per beat
    assert torch.equal(z[128], z[127])  # the partial beat at the end takes the last whole beat's
    later = pitch.copy()
    later[100:] = np.where(later[100:] >= 0, later[100:] + 1, -1)  # change the melody from beat 25 on
    moved = (logits(later)[:96] - z[:96]).abs().amax(1)
    assert (moved > 1e-6).all()  # every earlier beat hears the change: the model reads both ways


def test_a_card_naming_several_chord_models_averages_them_and_a_bad_name_is_refused(tmp_path) -> None:
    import shutil

    import numpy as np

    from musicgen_app.errors import CheckpointError
    from musicgen_app.ml.accompany import load_accompany
    from musicgen_app.ml.accompany_net import MELODY_DIM
    from musicgen_app.ml.registry import list_models

    info = next(m for m in list_models(task=None) if m.name == "accompany-pop909")
    names = info.card["chord_model"]
    names = [names] if isinstance(names, str) else names
    for name in {"accompany-pop909", *names}:
        for suffix in (".json", ".safetensors"):
            shutil.copy(info.path.parent / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    path = tmp_path / "accompany-pop909.safetensors"
    both = load_accompany("accompany-pop909", {**info.card, "chord_model": [names[0], names[0]]}, path)
    one = load_accompany("accompany-pop909", {**info.card, "chord_model": names[0]}, path)
    assert len(both.chord_nets) == 2 and len(one.chord_nets) == 1
    song = tune()
    pitch = np.array([60 + (t // 4) % 12 for t in range(64)])
    mel = np.zeros((64, MELODY_DIM), dtype=np.float32)
    mel[np.arange(64), pitch % 12] = 1.0
    mel[np.arange(64), 15 + np.arange(64) % 16] = 1.0
    assert np.allclose(both.chord_logits(mel, pitch)[1], one.chord_logits(mel, pitch)[1], atol=1e-6)
    assert predict_chords(song, 0, both) == predict_chords(song, 0, one)
    for bad in (["../x"], "no such model", 3):
        with pytest.raises(CheckpointError):
            load_accompany("accompany-pop909", {**info.card, "chord_model": bad}, path)


def _over_a_second_part(bars: int = 8) -> Song:
    """A melody on E alone (it fits C, Am and Em) over a second part spelling Am and C in turn."""
    melody = [Note(t, 64, t + 440, 90) for t in range(0, bars * BAR, 480)]
    part = []
    for bar in range(bars):
        t = bar * BAR
        for p in (45, 57, 60, 64) if bar % 2 == 0 else (48, 55, 60, 64):  # Am, C
            part.append(Note(t, p, t + BAR - 20, 70, 1))
    tracks = [Track(name="Melody", notes=melody), Track(name="Keys", channel=1, notes=part)]
    return Song(tracks=tracks, time_signatures=[TimeSignature(0, 4, 4)])


def test_the_chords_hear_the_songs_other_parts(pop) -> None:
    from musicgen_app.ml.accompany import plan_accompany

    assert pop.reads_parts
    song = _over_a_second_part()
    heard = plan_accompany(pop, song, 0, style="chords")
    assert heard.parts_read == 1
    wanted = [9 if (t // BAR) % 2 == 0 else 0 for t in range(0, 8 * BAR, 480)]  # A, C per beat
    spans = heard.chord_spans

    def agreement(spans: list[ChordSpan]) -> float:
        roots = [next(s.chord.root for s in spans if s.chord and s.start_tick <= t < s.end_tick) for t in
                 range(0, 8 * BAR, 480)]  # fmt: skip
        return sum(r == w for r, w in zip(roots, wanted, strict=True)) / len(wanted)

    alone = plan_accompany(pop, song, 0, style="chords", other_parts=False)
    assert alone.parts_read == 0
    assert agreement(spans) >= 0.75 and agreement(spans) >= agreement(alone.chord_spans) + 0.25
    # melody only is the melody alone: the same chords as a song without the second part
    solo = Song(tracks=[song.tracks[0]], time_signatures=song.time_signatures)
    assert alone.chord_spans == plan_accompany(pop, solo, 0, style="chords").chord_spans


def test_the_other_parts_are_every_pitched_track_but_the_melody() -> None:
    import numpy as np

    from musicgen_app.ml.accompany import parts_on_grid, song_grid

    song = _over_a_second_part(2)
    song.tracks.append(Track(name="Drums", channel=9, is_drum=True, notes=[Note(0, 36, 100, 100, 9)]))
    song.tracks.append(Track(name="Empty", channel=3))
    grid = song_grid(song, song.tracks[0].notes)
    parts, used = parts_on_grid(song, 0, grid)
    assert used == 1 and parts is not None and parts.shape == (grid.n_frames, 13)
    assert set(np.nonzero(parts[0, :12])[0]) == {9, 0, 4} and parts[:, 12].all()  # A C E; no drum
    assert set(np.nonzero(parts[16, :12])[0]) == {0, 7, 4}
    alone, none = parts_on_grid(Song(tracks=[song.tracks[0]]), 0, grid)
    assert alone is None and none == 0


def test_chords_chosen_by_root_take_a_root_whose_qualities_share_the_probability() -> None:
    import numpy as np

    from musicgen_app.ml.accompany import beat_chords
    from musicgen_app.ml.accompany_net import N_CHORDS, chord_class

    # four beats: G major alone at 0.28; C torn between C, Cm, C7 and Cdim (C7 likeliest overall)
    probs = np.full((4, N_CHORDS), 1e-4)
    probs[:, chord_class(Chord(7, ""))] = 0.28
    c_classes = [chord_class(Chord(0, q)) for q in ("", "m", "7", "dim")]
    probs[:, c_classes] = [[0.17, 0.17, 0.18, 0.17], [0.18, 0.17, 0.16, 0.17], [0.16, 0.16, 0.19, 0.17],
                           [0.17, 0.16, 0.18, 0.17]]  # fmt: skip
    logits = np.repeat(np.log(probs), 4, axis=0)
    position = np.arange(16) % 16
    by_class = beat_chords(logits, position, change_cost={0: 0.0, 8: 0.2}, change_cost_other=0.5)
    assert (by_class == chord_class(Chord(7, ""))).all()  # the likeliest single class: G
    by_root = beat_chords(logits, position, change_cost={0: 0.0, 8: 0.2}, change_cost_other=0.5, by_root=True)
    # the likeliest root is C (0.69 in all), with the quality likeliest over the stretch: C7
    assert (by_root == chord_class(Chord(0, "7"))).all()


def test_on_a_melody_alone_every_chord_predictor_votes_and_hearing_parts_only_the_readers(pop) -> None:
    readers = [c for c in pop.chord_nets if getattr(c.cfg, "other_parts", False)]
    assert readers and len(readers) < len(pop.chord_nets)
    assert pop.voters(False) == pop.chord_nets
    assert list(pop.voters(True)) == readers


@pytest.mark.parametrize("off", [4, 8, 12])
def test_the_downbeat_check_finds_the_bar_lines_of_a_melody_written_a_beat_or_more_off(pop, off: int) -> None:
    from dataclasses import replace

    from musicgen_app.ml.accompany import melody_on_grid, rephase, song_grid

    song = tune()
    notes = sorted(song.tracks[0].notes)
    grid = song_grid(song, notes)
    pitch, onset = melody_on_grid(notes, grid)
    assert grid.position[0] == 0 and rephase(pop, grid, pitch, onset)[0].position[0] == 0
    moved = replace(grid, position=(grid.position - off) % 16)  # the bar lines written off the tune's
    assert (rephase(pop, moved, pitch, onset)[0].position == grid.position).all()


def test_a_beat_torn_between_the_qualities_of_one_root_is_sure_of_its_root() -> None:
    import numpy as np

    from musicgen_app.ml.accompany import root_sureness
    from musicgen_app.ml.accompany_net import N_CHORDS, chord_class

    one_root = np.full((1, N_CHORDS), 1e-6)
    one_root[0, [chord_class(Chord(0, q)) for q in ("", "m", "7", "dim")]] = 0.25
    two_roots = np.full((1, N_CHORDS), 1e-6)
    two_roots[0, [chord_class(Chord(0, "")), chord_class(Chord(7, ""))]] = 0.5
    assert root_sureness(np.log(one_root)) > -0.01  # all on C: no doubt about the root
    assert root_sureness(np.log(two_roots)) < -0.6  # C or G: log 2 nats of doubt


@pytest.mark.parametrize("metre", [(2, 4), (1, 4)])
def test_a_file_declaring_short_bars_gets_the_chords_of_its_4_4_reading(pop, metre) -> None:
    """Nearly half of POP909's files declare 1/4 or 2/4 over 4/4 music; the chord predictors learnt
    4/4 bars. Read as they are, such bars changed the chords (with 1/4, changes are cheap at every
    beat: 37 chords instead of 20 here) and cost 3 to 7 points of root agreement on the validation
    songs; grouped into 16-frame bars (the downbeat check then finds the harmony's bar lines), the
    same melody gets the same chords whatever the metre its file declares."""
    from musicgen_app.ml.accompany import melody_on_grid, plan_frames, song_grid

    four = tune()
    short = four.copy()
    short.time_signatures = [TimeSignature(0, *metre)]
    plans = []
    for song in (four, short):
        notes = sorted(song.tracks[0].notes)
        grid = song_grid(song, notes)
        pitch, onset = melody_on_grid(notes, grid)
        plans.append(plan_frames(pop, grid, pitch, onset, "chords"))
    assert (plans[0].grid.position == plans[1].grid.position).all()
    assert [(s.start_tick, s.chord) for s in plans[0].chord_spans] == [
        (s.start_tick, s.chord) for s in plans[1].chord_spans
    ]


@pytest.mark.parametrize("low", [0, -7])
def test_block_chords_sit_under_the_melody(pop, low: int) -> None:
    """The chords style's voicing stays under the tune (a pad above the melody masks it): before,
    a quarter to three quarters of its notes on POP909 songs sat at or above the melody note
    sounding at their onset. Moved down a fifth (its lowest note G3), the melody still gets its
    chords under it; the bass stays under the voices and never doubles one of them."""
    from itertools import groupby

    song = tune()
    song.tracks[0].notes = [
        Note(n.start_tick, n.pitch + low, n.end_tick, n.velocity) for n in song.tracks[0].notes
    ]
    spans = progression_spans(song, parse_progression("C G Am F"), 16 * BAR)
    _, res = accompany_song(song, 0, style="chords", model=pop, seed=11, chords=spans)
    melody = song.tracks[0].notes

    def sung(tick: int) -> list[int]:
        return [n.pitch for n in melody if n.start_tick <= tick < n.end_tick]

    under = [n for n in res.notes if sung(n.start_tick)]
    assert len(under) > 40
    assert not [n for n in under if any(n.pitch >= p for p in sung(n.start_tick))]
    for _, struck in groupby(
        sorted(res.notes, key=lambda n: (n.start_tick, n.pitch)), key=lambda n: n.start_tick
    ):
        pitches = [n.pitch for n in struck]
        assert len(pitches) == 4 and len(set(pitches)) == 4, pitches  # a bass and three voices
    assert root_agreement(res.notes, spans, 16 * BAR) >= 0.95  # still the chords given


def test_a_second_accompaniment_gets_its_own_name_and_channel() -> None:
    from musicgen_app.ml.accompany_styles import accompaniment_track

    song = tune()
    names = []
    for _ in range(3):
        track = accompaniment_track(song, "piano")
        assert track.channel not in {t.channel for t in song.tracks}
        song.tracks.append(track)
        names.append(track.name)
    assert names == ["Piano accompaniment", "Piano accompaniment 2", "Piano accompaniment 3"]
    assert accompaniment_track(song, "bass").name == "Bass"


def test_chords_given_everywhere_are_followed_without_running_the_chord_predictors(pop, monkeypatch) -> None:
    """With a chord on every beat (a full chord lane: every Accompany after the first accepted
    take), choosing chords is skipped: the plan is the given chords, sooner."""
    song = tune()
    spans = progression_spans(song, parse_progression("C G Am F"), 16 * BAR)

    def refuse(*args, **kwargs):
        raise AssertionError("the chord predictors ran although every chord was given")

    monkeypatch.setattr(pop, "chord_logits", refuse)
    _, res = accompany_song(song, 0, style="chords", model=pop, seed=11, chords=spans)
    assert root_agreement(res.notes, spans, 16 * BAR) >= 0.95
