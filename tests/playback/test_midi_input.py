"""A MIDI keyboard on a real JACK port: thru, time stamps, port list, unplug and replug."""

from __future__ import annotations

import time

import mido
import pytest

from musicgen_app.errors import DeviceError
from musicgen_app.playback.midi_input import MidiInput, list_input_ports
from musicgen_app.playback.outputs import RecordingOutput

from .helpers import wait_until

pytestmark = [pytest.mark.jack, pytest.mark.slow]


def _keyboard():
    import rtmidi

    kb = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "keyboard")
    kb.open_virtual_port("out")
    return kb


def test_keyboard_thru_timestamps_and_reconnect(jack_server) -> None:
    kb = _keyboard()
    thru = RecordingOutput()
    assert "keyboard:out" in list_input_ports("jack")
    with MidiInput("keyboard", api="jack", thru=thru, poll_s=0.1) as inp:
        assert inp.port_name == "keyboard:out" and inp.connected
        time.sleep(0.1)
        sent_at = []
        for pitch in (60, 64, 67):
            sent_at.append(time.perf_counter())
            kb.send_message([0x90, pitch, 100])
            time.sleep(0.05)
            kb.send_message([0x80, pitch, 0])
        assert wait_until(lambda: inp.queue.qsize() >= 6, 3.0)
        got = [inp.queue.get_nowait() for _ in range(6)]
        assert [(m.type, m.note) for _, m in got] == [
            (t, p) for p in (60, 64, 67) for t in ("note_on", "note_off")
        ]
        stamps = [t for t, _ in got]
        assert stamps == sorted(stamps)
        lat = [(got[2 * i][0] - sent_at[i]) * 1000 for i in range(3)]
        print(f"\nkeyboard -> queue latency over JACK: {', '.join(f'{x:.2f}' for x in lat)} ms")
        assert [m.note for m in thru.of_type("note_on")] == [60, 64, 67]  # played through
        # unplug: reported; replug: reopened by name and messages flow again
        kb.close_port()
        kb.delete()
        assert wait_until(lambda: not inp.connected, 3.0)
        assert inp.status.get(timeout=1).kind == "disconnected"
        assert "keyboard:out" not in inp.list_ports()
        kb = _keyboard()
        assert wait_until(lambda: inp.connected, 3.0)
        assert inp.status.get(timeout=1).kind == "reconnected"
        time.sleep(0.1)
        kb.send_message([0x90, 72, 90])
        assert wait_until(lambda: any(m.note == 72 for m in thru.of_type("note_on")), 3.0)
    kb.delete()


def test_unknown_keyboard_is_a_device_error_listing_ports(jack_server) -> None:
    kb = _keyboard()
    try:
        with pytest.raises(DeviceError, match=r"no MIDI input port called 'nope'.*keyboard:out"):
            MidiInput("nope", api="jack")
    finally:
        kb.delete()


def test_no_message_is_lost_while_python_keeps_the_interpreter_busy(jack_server) -> None:
    import threading

    kb = _keyboard()
    stop = threading.Event()

    def busy() -> None:  # plain Python, holding the interpreter lock as much as it can
        x = 0
        while not stop.is_set():
            for k in range(10_000):
                x += k * k

    th = threading.Thread(target=busy, daemon=True)
    try:
        with MidiInput("keyboard", api="jack", poll_s=0.5) as inp:
            time.sleep(0.1)
            th.start()
            for i in range(300):
                kb.send_message([0x90 if i % 2 == 0 else 0x80, 40 + (i // 2) % 40, 100 if i % 2 == 0 else 0])
                if i % 10 == 9:
                    time.sleep(0.005)
            assert wait_until(lambda: inp.queue.qsize() >= 300, 5.0)
            got = [inp.queue.get_nowait()[1] for _ in range(300)]
    finally:
        stop.set()
        kb.delete()
    assert [m.type for m in got] == ["note_on", "note_off"] * 150
    assert [m.note for m in got[::2]] == [40 + i % 40 for i in range(150)]


def test_virtual_output_port_is_visible_and_readable(jack_server) -> None:
    from musicgen_app.playback.outputs import open_output

    out = open_output("virtual", midi_api="jack")  # what a DAW would record from
    try:
        assert out.name == "musicgen:out"
        assert "musicgen:out" in list_input_ports("jack")
        with MidiInput("musicgen:out", api="jack", poll_s=0.5) as inp:
            time.sleep(0.1)
            for pitch in (60, 62):
                out.send(mido.Message("note_on", note=pitch, velocity=80))
                out.send(mido.Message("note_off", note=pitch))
            assert wait_until(lambda: inp.queue.qsize() >= 4, 3.0)
            got = [inp.queue.get_nowait()[1] for _ in range(4)]
    finally:
        out.close()
    assert [(m.type, m.note) for m in got] == [
        ("note_on", 60),
        ("note_off", 60),
        ("note_on", 62),
        ("note_off", 62),
    ]


def test_a_read_that_comes_late_does_not_move_the_note(jack_server) -> None:
    """The reader kept from the port for 60 ms (as when the interpreter is busy elsewhere): the
    note played meanwhile keeps its time, from the MIDI system's own stamps, not the late read's."""
    kb = _keyboard()
    with MidiInput("keyboard", api="jack", poll_s=0.1) as inp:
        time.sleep(0.1)
        kb.send_message([0x90, 60, 100])
        first = time.perf_counter()
        assert wait_until(lambda: inp.queue.qsize() >= 1, 3.0)
        time.sleep(0.2)
        with inp._lock:  # the reader cannot read while this is held
            kb.send_message([0x90, 64, 100])
            second = time.perf_counter()
            time.sleep(0.06)
        assert wait_until(lambda: inp.queue.qsize() >= 2, 3.0)
        (t1, m1), (t2, m2) = inp.queue.get_nowait(), inp.queue.get_nowait()
        assert (m1.note, m2.note) == (60, 64)
        gap_error_ms = ((t2 - t1) - (second - first)) * 1000
        print(f"\nrecorded gap - played gap with a 60 ms late read: {gap_error_ms:.2f} ms")
        assert abs(gap_error_ms) < 5.0, gap_error_ms
    kb.delete()


def test_message_times_chain_the_deltas_and_fall_back_to_the_clock() -> None:
    from musicgen_app.playback.midi_input import message_times

    # a late read: the chain from the message before keeps the gaps
    assert message_times(10.0, [0.5, 0.25], now=10.8) == [10.5, 10.75]
    # the chain would end after the read: the batch ends at the read's time
    assert message_times(10.0, [0.5, 0.25], now=10.6) == [10.35, 10.6]
    # a first message (RtMidi's delta 0) or a reopened port: the clock
    assert message_times(-1e9, [0.0], now=5.0) == [5.0]
    assert message_times(1.0, [0.0, 0.1], now=5.0) == [4.9, 5.0]

