"""Jam in the real window with the real shipped model: the keyboard's phrase (through the playback
controller's keyboard signal, as the keyboard delivers it) gets an answer on the window's output,
and each exchange lands in the two Jam tracks as one undo step."""

from __future__ import annotations

import time

import mido
import pytest

from musicgen_app.core.song import Note, Song, Track
from musicgen_app.gui.document import Document

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def _ready(win, qtbot) -> None:
    """melody-lstm answers one bar, seed 5, after a one-bar song."""
    qtbot.waitUntil(lambda: win.panel.model_combo.count() > 0, timeout=30_000)
    win.panel.model_combo.setCurrentIndex(win.panel.model_combo.findData("melody-lstm"))
    win.set_document(Document(Song(tracks=[Track(name="Melody", notes=[Note(0, 60, 1920, 90)])])))
    win.panel.random_seed.setChecked(False)
    win.panel.seed.setValue(5)
    win.panel.bars.setValue(1)


def _phrase() -> list[tuple[float, mido.Message]]:
    """Four notes as the keyboard delivers them: (perf_counter time, message)."""
    t = time.perf_counter()
    batch = []
    for i, p in enumerate([60, 62, 64, 67]):
        batch += [(t + 0.15 * i, mido.Message("note_on", note=p, velocity=90)),
                  (t + 0.15 * i + 0.12, mido.Message("note_off", note=p))]  # fmt: skip
    return batch


def test_jam_answers_a_phrase_and_records_the_exchange_in_one_undo_step(window, qtbot, recording) -> None:
    win = window
    _ready(win, qtbot)
    win.act_jam.trigger()
    assert win.act_jam.isChecked()
    assert [t.name for t in win.doc.song.tracks] == ["Melody", "Jam: you", "Jam: model"]
    with qtbot.waitSignal(win.jam_mode.ready, timeout=30_000):
        pass
    n_undo = win.doc.undo_stack.count()
    win.playback.keyboard_events.emit(_phrase())
    qtbot.waitUntil(lambda: win.doc.undo_stack.count() == n_undo + 1, timeout=30_000)
    you, model = win.doc.song.tracks[1], win.doc.song.tracks[2]
    assert [n.pitch for n in you.notes] == [60, 62, 64, 67]
    assert model.notes and all(n.start_tick > you.notes[-1].end_tick for n in model.notes)
    assert all(n.start_tick >= 2 * 1920 for n in you.notes)  # after the end of the song, a bar on
    sounded = [m.note for _, m in recording.messages if m.type == "note_on" and m.velocity > 0]
    assert sounded[-len(model.notes) :] == [n.pitch for n in model.notes]  # what was heard is recorded
    win.act_undo.trigger()
    assert not win.doc.song.tracks[1].notes and not win.doc.song.tracks[2].notes
    win.act_jam.trigger()
    assert not win.act_jam.isChecked() and not win.jam_mode.running


def test_jam_turned_off_without_playing_leaves_no_empty_tracks_and_says_when_no_keyboard_is_open(
    window, qtbot
) -> None:
    """Jam on, nothing played, Jam off: the song is as it was (no empty Jam tracks piling up). With
    no MIDI keyboard open, the status bar says so and where to choose one."""
    win = window
    _ready(win, qtbot)
    assert win.playback.keyboard_port == ""
    steps = win.doc.undo_stack.count()
    with qtbot.waitSignal(win.jam_mode.ready, timeout=30_000):
        win.act_jam.trigger()
    assert [t.name for t in win.doc.song.tracks] == ["Melody", "Jam: you", "Jam: model"]
    qtbot.waitUntil(lambda: "no MIDI keyboard" in win.statusBar().currentMessage(), timeout=5_000)
    assert "Settings ▸ Devices" in win.statusBar().currentMessage()
    win.act_jam.trigger()
    assert not win.jam_mode.running
    assert [t.name for t in win.doc.song.tracks] == ["Melody"]
    assert not win.doc.undo_stack.canUndo() or win.doc.undo_stack.index() == steps
    # a track the musician edited meanwhile is not taken away
    with qtbot.waitSignal(win.jam_mode.ready, timeout=30_000):
        win.act_jam.trigger()
    win.doc.set_song_attr("title", "changed", "Title")
    win.act_jam.trigger()
    assert [t.name for t in win.doc.song.tracks] == ["Melody", "Jam: you", "Jam: model"]


def test_jam_with_the_metronome_on_clicks_and_answers_at_a_bar_line(window, qtbot, recording) -> None:
    """The window's Metronome (M) on: Jam clicks every beat on the drum channel, and the answer to
    a phrase starts at a bar line of the jam, recorded after the song on the song's own bar lines."""
    win = window
    _ready(win, qtbot)
    win.act_metronome.setChecked(True)
    with qtbot.waitSignal(win.jam_mode.ready, timeout=30_000):
        win.act_jam.trigger()
    jam = win.jam_mode.jam
    assert jam.cfg.metronome and jam.bar_ticks == 1920

    def clicks() -> int:
        return sum(1 for _, m in recording.messages if m.type == "note_on" and m.channel == 9 and m.velocity)

    qtbot.waitUntil(lambda: clicks() >= 2, timeout=5_000)
    n_undo = win.doc.undo_stack.count()
    win.playback.keyboard_events.emit(_phrase())
    qtbot.waitUntil(lambda: win.doc.undo_stack.count() == n_undo + 1, timeout=30_000)
    ex = jam.exchanges[0]
    assert ex.answer and ex.answer_start_tick % 1920 == 0
    model = win.doc.song.tracks[2]
    off = win.jam_mode.offset_tick
    assert off % 1920 == 0 and model.notes[0].start_tick >= off + ex.answer_start_tick
    assert clicks() > 4  # the click went on under the answer
    win.act_jam.trigger()
    assert not win.jam_mode.running
