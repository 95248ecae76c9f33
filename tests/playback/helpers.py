"""Songs and clocks shared by the playback tests (built from core.song objects)."""

from __future__ import annotations

import time
from collections.abc import Callable

from musicgen_app.core.song import ControlEvent, Note, Song, TempoChange, Track


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def two_track_song(tempo_change: bool = True) -> Song:
    """Melody (channel 0, program 73) and bass (channel 1, program 32), a tempo change at bar 2."""
    r = 480
    melody = [Note(i * r, 60 + (i * 2) % 12, (i + 1) * r, 90, 0) for i in range(8)]
    bass = [Note(i * 2 * r, 36 + i, (i * 2 + 2) * r, 80, 1) for i in range(4)]
    tempos = [TempoChange(0, 500_000)]
    if tempo_change:
        tempos.append(TempoChange(4 * r, 250_000))  # 120 -> 240 BPM at bar 2
    return Song(
        resolution=r,
        tracks=[
            Track("melody", program=73, channel=0, notes=melody),
            Track(
                "bass",
                program=32,
                channel=1,
                notes=bass,
                controls=[ControlEvent(0, "control_change", 7, 100, 1)],
            ),
        ],
        tempos=tempos,
    )


def run_fake(sched, clock: FakeClock, until: float | None = None) -> None:
    """Pump a non-threaded scheduler from deadline to deadline (up to clock time ``until``)."""
    for _ in range(100_000):
        nxt = sched.pump()
        if nxt is None:
            return
        if until is not None and nxt > until:
            clock.t = until
            sched.pump()
            return
        clock.t = max(clock.t, nxt)
    raise AssertionError("scheduler never finished")


def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``cond`` every 10 ms until it holds or ``timeout`` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()
