"""Helpers shared by the GUI tests."""

from __future__ import annotations

import time


def record_two_notes(
    win, kb, qtbot, first: tuple[int, int], second: tuple[int, int], pedal: bool = False
) -> float:
    """Press Record, play ``first`` then ``second`` ((pitch, velocity), 250 ms each) on the
    keyboard ``kb`` (an rtmidi MidiOut), watch them drawn while played, stop recording. With
    ``pedal`` the sustain pedal goes down before the first note and up after the last. Returns the
    seconds between the two note-ons as sent."""
    win.act_record.trigger()
    assert win.act_record.isChecked() and win.playback.playing
    qtbot.wait(300)
    if pedal:
        kb.send_message([0xB0, 64, 127])
    kb.send_message([0x90, first[0], first[1]])
    t_first = time.perf_counter()
    qtbot.waitUntil(lambda: [n.pitch for n in win.canvas.record_notes] == [first[0]], timeout=3000)
    qtbot.wait(250)
    kb.send_message([0x80, first[0], 0])
    kb.send_message([0x90, second[0], second[1]])
    t_second = time.perf_counter()
    qtbot.wait(250)
    kb.send_message([0x80, second[0], 0])
    if pedal:
        kb.send_message([0xB0, 64, 0])
    qtbot.waitUntil(lambda: len(win.canvas.record_notes) == 2, timeout=3000)
    qtbot.wait(100)
    win.act_record.trigger()  # stop recording
    assert not win.act_record.isChecked()
    return t_second - t_first
