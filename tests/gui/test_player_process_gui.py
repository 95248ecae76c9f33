"""The window as the app runs it: playback in a player process of its own, out of a real JACK MIDI
port. Key previews, Space, a streaming Continue with the shipped model and Esc all reach the port;
nothing hangs; a dead player is reported and started again."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from jack_support import Receiver

from musicgen_app.core.autosave import AutosaveStore
from musicgen_app.gui.document import Document
from musicgen_app.gui.settings import AppSettings

from .helpers import record_two_notes
from .test_continue import prepare_continue

pytestmark = [pytest.mark.gui, pytest.mark.jack, pytest.mark.slow]


def _sounding(messages: list[tuple[float, list[int]]]) -> set[tuple[int, int]]:
    """(channel, pitch) switched on and not ended by a note-off or an all-notes/sound-off."""
    on: Counter = Counter()
    for _, data in messages:
        status, ch = data[0] & 0xF0, data[0] & 15
        if status == 0x90 and data[2] > 0:
            on[(ch, data[1])] += 1
        elif status in (0x80, 0x90):
            on[(ch, data[1])] = 0
        elif status == 0xB0 and data[1] in (120, 123):
            for key in [k for k in on if k[0] == ch]:
                on[key] = 0
    return {k for k, v in on.items() if v > 0}


@pytest.fixture
def port_window(qtbot, jack_receiver: Receiver, tmp_path: Path) -> Iterator:
    from musicgen_app.gui.main_window import MainWindow

    settings = AppSettings()
    settings.output = jack_receiver.port
    win = MainWindow(output=None, settings=settings, autosave_store=AutosaveStore(tmp_path / "autosave"))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.playback.player is not None and win.playback.player.ready, timeout=30_000)
    qtbot.waitUntil(lambda: win.playback.output_name == jack_receiver.port, timeout=5_000)
    yield win
    win.shutdown()


def test_playback_runs_in_a_player_process_and_reaches_the_port(
    port_window, qtbot, jack_receiver: Receiver, sketch
) -> None:
    win = port_window
    player = win.playback.player
    assert player.alive and player.name == jack_receiver.port
    # a key on the keyboard strip sounds it, and it ends
    win.roll.keyboard.key_pressed.emit(72)
    qtbot.waitUntil(lambda: any(d[:2] == [0x90, 72] for _, d in jack_receiver.messages), timeout=3000)
    qtbot.waitUntil(lambda: not _sounding(jack_receiver.messages), timeout=3000)
    # Space plays the sketch from the playhead; the playhead moves; Space stops
    win.set_document(Document(sketch(2)))
    n0 = len(jack_receiver.messages)
    win.act_play.trigger()
    assert win.playback.playing
    qtbot.waitUntil(lambda: win.canvas.playhead_tick > 480, timeout=5000)
    win.act_play.trigger()
    assert not win.playback.playing
    qtbot.wait(300)
    got = jack_receiver.messages[n0:]
    assert [d[1] for _, d in got if d[0] == 0x90 and d[2] > 0][:2] == [60, 62]
    assert not _sounding(jack_receiver.messages)


def test_continue_streams_through_the_player_and_esc_leaves_nothing_sounding(
    port_window, qtbot, jack_receiver: Receiver, sketch
) -> None:
    win = port_window
    prepare_continue(win, qtbot, sketch(2), 7)
    n0 = len(jack_receiver.messages)
    win.act_continue.trigger()
    qtbot.waitUntil(lambda: not win.gen.running, timeout=120_000)
    take = win.gen.current_take()
    assert take is not None and take.notes
    # the take's notes come out of the port, in order, once each
    qtbot.waitUntil(lambda: not win.playback.playing, timeout=30_000)
    on = [d[1] for _, d in jack_receiver.messages[n0:] if d[0] & 0xF0 == 0x90 and d[2] > 0]
    assert on[-len(take.notes) :] == [n.pitch for n in sorted(take.notes)]
    assert not _sounding(jack_receiver.messages)
    # a second Continue, stopped with Esc while it sounds: silent at once, nothing left on
    win.panel.seed.setValue(8)
    win.panel.bars.setValue(8)
    win.act_continue.trigger()
    qtbot.waitUntil(lambda: len(win.canvas.take_notes) >= 2, timeout=60_000)
    qtbot.wait(200)
    t_stop = time.perf_counter()
    win.act_stop.trigger()  # Esc
    assert not win.gen.running and not win.playback.playing
    qtbot.wait(300)
    msgs = jack_receiver.messages
    assert not _sounding(msgs)
    # the player's panic (all notes off) is heard within 50 ms of Esc
    panic = [t for t, d in msgs if d[0] & 0xF0 == 0xB0 and d[1] == 123 and t >= t_stop]
    assert panic and panic[0] - t_stop < 0.05, (panic[:1], t_stop)
    print(f"Esc -> all-notes-off at the port: {(panic[0] - t_stop) * 1000:.1f} ms")
    late_ons = [t for t, d in msgs if d[0] & 0xF0 == 0x90 and d[2] > 0 and t > panic[0]]
    assert late_ons == []


def test_a_dead_player_is_reported_and_started_again(port_window, qtbot, jack_receiver) -> None:
    win = port_window
    old = win.playback.player
    messages: list[str] = []
    win.playback.error.connect(messages.append)
    os.kill(old._proc.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: any("stopped unexpectedly" in m for m in messages), timeout=5_000)
    new = win.playback.player
    assert new is not old
    qtbot.waitUntil(lambda: new.ready, timeout=30_000)
    win.roll.keyboard.key_pressed.emit(65)
    qtbot.waitUntil(lambda: any(d[:2] == [0x90, 65] for _, d in jack_receiver.messages), timeout=3000)


def test_no_audio_device_is_a_message_and_continue_still_works(
    qtbot, tmp_path: Path, sketch, no_midi_system
) -> None:
    """No sound card and no JACK here: FluidSynth cannot open a driver in the player process. The
    window says so, shows "no output", and Continue still writes its take into the roll."""
    from musicgen_app.gui.main_window import MainWindow

    settings = AppSettings()
    settings.output = "fluidsynth"
    errors: list[str] = []
    win = MainWindow(output=None, settings=settings, autosave_store=AutosaveStore(tmp_path / "a"))
    win.playback.error.connect(errors.append)
    qtbot.addWidget(win)
    try:
        win.show()
        qtbot.waitUntil(lambda: any("No sound output" in e for e in errors), timeout=30_000)
        assert "audio" in errors[0].lower() or "driver" in errors[0].lower(), errors
        assert win.playback.player is not None and not win.playback.player.ready
        win.roll.keyboard.key_pressed.emit(60)  # dropped quietly: the message was shown once
        prepare_continue(win, qtbot, sketch(2), 3)
        win.act_continue.trigger()
        qtbot.waitUntil(lambda: not win.gen.running, timeout=120_000)
        take = win.gen.current_take()
        assert take is not None and take.notes and win.canvas.take_notes == take.notes
        win.act_play.trigger()  # nothing to play through: no crash, no hang
        qtbot.wait(200)
        win.act_play.trigger()
    finally:
        win.shutdown()


def test_keyboard_plays_thru_in_the_player_and_records_into_the_track(
    port_window, qtbot, jack_receiver: Receiver
) -> None:
    """A MIDI keyboard (a JACK virtual port) is open all the time: what it plays sounds at once
    through the player process's output, without Record; Record puts it in the track."""
    import rtmidi

    from musicgen_app.core.song import Song, Track

    win = port_window
    kb = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "gui-keyboard")
    kb.open_virtual_port("out")
    try:
        win.settings.input_port, win.settings.thru = "gui-keyboard", True
        win.playback.open_keyboard("gui-keyboard", True)
        qtbot.waitUntil(lambda: win.playback.keyboard_port.startswith("gui-keyboard"), timeout=10_000)
        # thru, not recording: the note sounds at the output
        latencies = []
        for pitch in (60, 64, 67):
            t0 = time.perf_counter()
            kb.send_message([0x90, pitch, 100])
            qtbot.waitUntil(
                lambda p=pitch: any(d[:2] == [0x90, p] for _, d in jack_receiver.messages), timeout=3000
            )
            arrived = next(t for t, d in jack_receiver.messages if d[:2] == [0x90, pitch])
            latencies.append((arrived - t0) * 1000)
            qtbot.waitUntil(lambda p=pitch: win.roll.keyboard.held == {p}, timeout=3000)  # key lit
            kb.send_message([0x80, pitch, 0])
            qtbot.waitUntil(lambda: win.roll.keyboard.held == set(), timeout=3000)
        print("keyboard -> player thru -> JACK port: " + ", ".join(f"{ms:.1f} ms" for ms in latencies))
        assert win.doc.notes == []
        # thru off: nothing reaches the output
        win.playback.set_thru(False)
        qtbot.wait(200)
        n0 = len(jack_receiver.messages)
        kb.send_message([0x90, 72, 100])
        qtbot.wait(300)
        kb.send_message([0x80, 72, 0])
        assert not [d for _, d in jack_receiver.messages[n0:] if d[:2] == [0x90, 72]]
        win.playback.set_thru(True)
        # Record: two notes into the active track, one undo step
        win.set_document(Document(Song(tracks=[Track(name="Melody")])))
        apart_s = record_two_notes(win, kb, qtbot, (62, 90), (65, 70), pedal=True)
        notes = win.doc.notes
        assert [(n.pitch, n.velocity) for n in notes] == [(62, 90), (65, 70)]
        # as far apart as they were played: at 120 BPM and 480 ticks per quarter, 960 ticks a second
        # (within 30 ticks, 31 ms: the keyboard's time stamps against the player's reports)
        assert abs(notes[1].start_tick - notes[0].start_tick - apart_s * 960) < 30, (notes, apart_s)
        # the sustain pedal as played: down before the first note, up after the last
        pedal = [(c.tick, c.value) for c in win.doc.song.tracks[0].controls if c.number == 64]
        assert [v for _, v in pedal] == [127, 0]
        assert pedal[0][0] <= notes[0].start_tick and pedal[1][0] >= notes[1].end_tick - 5
        assert win.doc.undo_stack.count() == 1
        win.act_undo.trigger()
        assert win.doc.notes == [] and win.doc.song.tracks[0].controls == []
        # a key struck the moment Record is pressed lands at the start, not at a stale playhead
        win.canvas.playhead_tick = 0
        win.act_record.trigger()
        kb.send_message([0x90, 69, 100])
        qtbot.waitUntil(lambda: len(win.canvas.record_notes) == 1, timeout=3000)
        qtbot.wait(200)
        kb.send_message([0x80, 69, 0])
        qtbot.wait(100)
        win.act_record.trigger()
        (note,) = win.doc.notes
        assert note.pitch == 69 and note.start_tick < 60, note  # within 1/8 beat of the start
    finally:
        kb.close_port()
        kb.delete()
