"""Accompany in the real window with the real shipped model: the active (melody) track gets an
accompaniment streamed into the roll and the output, accepted as one undo step that adds a new
track (named and voiced for the style) and leaves the melody untouched; Again adds a take."""

from __future__ import annotations

import pytest

from musicgen_app.core.song import Note, Song, Track
from musicgen_app.gui.document import Document

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def melody() -> Song:
    pitches = [64, 67, 72, 71, 69, 67, 65, 64, 62, 65, 69, 67, 64, 62, 60, 60]
    notes = [Note(i * 480, p, i * 480 + 440, 90) for i, p in enumerate(pitches * 2)]
    return Song(tracks=[Track(name="Melody", notes=notes)])


@pytest.fixture
def ready(window):
    window.set_document(Document(melody()))
    window.panel.random_seed.setChecked(False)
    window.panel.seed.setValue(7)
    window.panel.variations.setValue(1)
    return window


def test_accompany_streams_a_take_and_accepting_adds_a_track_in_one_undo_step(ready, qtbot) -> None:
    win = ready
    before = win.doc.song.copy()
    win.accompany_style_actions["piano"].trigger()
    win.act_accompany.trigger()
    assert win.playback.playing
    qtbot.waitUntil(lambda: not win.gen.running, timeout=60_000)
    take = win.gen.current_take()
    assert take is not None and take.status == "done" and take.notes
    assert win.canvas.take_notes == take.notes
    played = win.playback.scheduler.played
    qtbot.waitUntil(lambda: len(played) >= len(take.notes), timeout=30_000)
    heard = [n for _, n in played]
    assert all(n in heard for n in take.notes)  # streamed to the output as it was written
    assert len(win.doc.song.tracks) == 1  # nothing changes before Accept
    n_undo = win.doc.undo_stack.count()
    win.act_accept.trigger()
    assert win.doc.undo_stack.count() == n_undo + 1
    song = win.doc.song
    assert len(song.tracks) == 2
    assert song.tracks[0].notes == before.tracks[0].notes and song.tracks[0].name == "Melody"
    new = song.tracks[1]
    assert new.name == "Piano accompaniment" and new.program == 0 and new.channel != song.tracks[0].channel
    assert sorted((n.start_tick, n.pitch, n.end_tick) for n in new.notes) == sorted(
        (n.start_tick, n.pitch, n.end_tick) for n in take.notes
    )
    assert song.chords  # the empty chord lane now shows the chords the accompaniment plays
    win.act_undo.trigger()
    assert len(win.doc.song.tracks) == 1 and win.doc.song.tracks[0].notes == before.tracks[0].notes
    assert not win.doc.song.chords  # the same undo step


def test_again_adds_a_bass_take_and_the_bass_track_is_a_bass(ready, qtbot) -> None:
    win = ready
    win.accompany_style_actions["bass"].trigger()
    win.act_accompany.trigger()
    qtbot.waitUntil(lambda: not win.gen.running and len(win.gen.takes) == 1, timeout=60_000)
    win.act_regen.trigger()
    qtbot.waitUntil(lambda: not win.gen.running and len(win.gen.takes) == 2, timeout=60_000)
    first, second = win.gen.takes
    assert second.seed != first.seed and second.notes != first.notes
    assert all(28 <= n.pitch <= 52 for n in first.notes + second.notes)
    win.act_accept.trigger()
    new = win.doc.song.tracks[-1]
    assert new.name == "Bass" and new.program == 32 and new.notes


def test_accompany_of_an_empty_track_says_what_to_select(ready, monkeypatch) -> None:
    win = ready
    win.set_document(Document(Song(tracks=[*melody().tracks, Track(name="Empty", channel=1)])))
    win.doc.set_active_track(1)
    shown: list[str] = []
    monkeypatch.setattr(win, "show_error", lambda title, text: shown.append(text))
    win.act_accompany.trigger()
    assert shown and "select the melody" in shown[0]
    assert not win.gen.running


def test_accompany_follows_the_chord_lane(ready, qtbot) -> None:
    """Chords typed on the lane (F Dm Bb C, against the melody's C major) are the chords the
    accompaniment plays: its estimated root per bar matches the lane's on most bars, and
    accepting it leaves the musician's lane as it was."""
    from musicgen_app.core.chords import ChordChange, estimate_chords, parse_progression
    from musicgen_app.core.edits import replace_chords

    win = ready
    song = win.doc.song
    bar = 4 * song.resolution
    prog = parse_progression("F Dm Bb C")
    lane = [ChordChange(i * bar, prog[i % 4]) for i in range(8)]
    win.doc.apply(replace_chords(song, 0, 8 * bar, lane), "chords")
    win.accompany_style_actions["chords"].trigger()
    win.act_accompany.trigger()
    qtbot.waitUntil(lambda: not win.gen.running, timeout=60_000)
    take = win.gen.current_take()
    assert take is not None and take.notes
    notes = [(n.start_tick, n.end_tick, n.pitch) for n in take.notes]
    per_bar = [estimate_chords(notes, [(i * bar, (i + 1) * bar)])[0].chord for i in range(8)]
    roots = [c.root if c else None for c in per_bar]
    agree = sum(r == prog[i % 4].root for i, r in enumerate(roots) if prog[i % 4] is not None)
    assert agree >= 6, roots
    win.act_accept.trigger()
    assert win.doc.song.chords == lane
