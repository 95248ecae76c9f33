"""Helpers shared by the GUI tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator


@contextlib.contextmanager
def private_jack(tag: str) -> Iterator[dict[str, str] | None]:
    """A dummy-backend JACK server (no sound card needed) under a unique name.

    Yields the environment variables that point a client at it, or None when ``jackd`` and
    ``jack_wait`` are not installed or the server does not start.
    """
    jackd, waiter = shutil.which("jackd"), shutil.which("jack_wait")
    if jackd is None or waiter is None:
        yield None
        return
    name = f"musicgen-{tag}-{os.getpid()}"
    env = {"JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1", "JACK_NO_AUDIO_RESERVATION": "1"}
    proc = subprocess.Popen(
        [jackd, "-S", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        subprocess.run([waiter, "-s", name, "-w", "-t", "10"], env={**os.environ, **env}, capture_output=True)
        yield env if proc.poll() is None else None
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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
