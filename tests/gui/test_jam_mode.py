"""Jam in the real window with the real shipped model: a phrase played on a keyboard (a virtual
port on a private JACK server, opened as the window's MIDI keyboard) gets an answer on the window's
output, and each exchange lands in the two Jam tracks as one undo step."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from musicgen_app.core.song import Note, Song, Track
from musicgen_app.gui.document import Document

pytestmark = [pytest.mark.gui, pytest.mark.jack, pytest.mark.slow]


def _ready(win, qtbot) -> None:
    """melody-lstm answers one bar, seed 5, after a one-bar song."""
    qtbot.waitUntil(lambda: win.panel.model_combo.count() > 0, timeout=30_000)
    win.panel.model_combo.setCurrentIndex(win.panel.model_combo.findData("melody-lstm"))
    win.set_document(Document(Song(tracks=[Track(name="Melody", notes=[Note(0, 60, 1920, 90)])])))
    win.panel.random_seed.setChecked(False)
    win.panel.seed.setValue(5)
    win.panel.bars.setValue(1)


@pytest.fixture
def keyboard(window, qtbot, jack_server) -> Iterator:
    """A keyboard (an rtmidi port on the private JACK server), open as the window's MIDI keyboard."""
    import rtmidi

    kb = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "gui-keyboard")
    kb.open_virtual_port("out")
    try:
        window.playback.open_keyboard("gui-keyboard", thru=False)
        qtbot.waitUntil(lambda: window.playback.keyboard_port != "", timeout=10_000)
        yield kb
    finally:
        kb.close_port()
        kb.delete()


def _play(kb) -> None:
    """Four notes on the keyboard, 150 ms apart."""
    for p in [60, 62, 64, 67]:
        kb.send_message([0x90, p, 90])
        time.sleep(0.12)
        kb.send_message([0x80, p, 0])
        time.sleep(0.03)


def test_jam_answers_a_phrase_and_records_the_exchange_in_one_undo_step(
    window, qtbot, recording, keyboard
) -> None:
    win = window
    _ready(win, qtbot)
    win.settings.jam_silence_ms = 400  # Settings ▸ Devices: the pause that ends a phrase
    win.act_jam.trigger()
    assert win.act_jam.isChecked()
    assert [t.name for t in win.doc.song.tracks] == ["Melody", "Jam: you", "Jam: model"]
    with qtbot.waitSignal(win.jam_mode.ready, timeout=30_000):
        pass
    assert win.jam_mode.jam.cfg.silence_ms == 400
    qtbot.waitUntil(lambda: "pause (400 ms)" in win.statusBar().currentMessage(), timeout=5_000)
    n_undo = win.doc.undo_stack.count()
    _play(keyboard)
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


def test_jam_with_the_metronome_on_clicks_and_answers_at_a_bar_line(
    window, qtbot, recording, keyboard
) -> None:
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
    _play(keyboard)
    qtbot.waitUntil(lambda: win.doc.undo_stack.count() == n_undo + 1, timeout=30_000)
    ex = jam.exchanges[0]
    assert ex.answer and ex.answer_start_tick % 1920 == 0
    model = win.doc.song.tracks[2]
    off = win.jam_mode.offset_tick
    assert off % 1920 == 0 and model.notes[0].start_tick >= off + ex.answer_start_tick
    assert clicks() > 4  # the click went on under the answer
    win.act_jam.trigger()
    assert not win.jam_mode.running


def test_a_key_reaches_the_jam_while_the_ui_thread_is_busy(window, qtbot, keyboard) -> None:
    """The keyboard's messages are tapped on the thread they arrive on: a key played while the UI
    thread is busy (a long repaint, a dialog being built) reaches a tap at once, not after it."""
    import threading

    got: list[tuple[float, str, int]] = []
    window.playback.add_keyboard_tap(
        lambda item: got.append((time.perf_counter(), threading.current_thread().name, item[1].note))
    )
    keyboard.send_message([0x90, 72, 90])
    sent = time.perf_counter()
    time.sleep(0.4)  # the UI thread busy: no event loop, no timer
    busy_until = time.perf_counter()
    keyboard.send_message([0x80, 72, 0])
    assert got and got[0][2] == 72, got
    assert got[0][0] < busy_until and got[0][0] - sent < 0.1, (got[0][0] - sent, busy_until - sent)
    assert got[0][1] != threading.main_thread().name
