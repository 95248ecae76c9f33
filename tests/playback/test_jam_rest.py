"""An answer that opens with a long rest is moved earlier by whole beats (no devices: a player
that only collects what it is given, a session that yields prepared notes)."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import mido
import pytest

from musicgen_app.core.song import Note
from musicgen_app.playback.jam import Jam, JamConfig, opening_rest_trim


@dataclass(frozen=True)
class _Ev:
    note: Note
    session_id: int = 1


class _Session:
    cancelled = False

    def __init__(self, notes: list[Note]) -> None:
        self.notes = notes

    def __iter__(self):
        return (_Ev(n) for n in self.notes)

    def cancel(self) -> None:
        self.cancelled = True


class _Player:
    """Collects what the jam sends; a run ends when the stream is ended."""

    def __init__(self) -> None:
        self.sent: list[Note] = []
        self.played: list[tuple[int, Note]] = []
        self._done = threading.Event()

    def play(self, *_a, **_k) -> None:
        self._done.clear()

    def append_notes(self, evs) -> None:
        for ev in evs:
            self.sent.append(ev.note)
            self.played.append((0, ev.note))

    def end_stream(self) -> None:
        self._done.set()

    def wait(self, timeout=None) -> bool:
        return self._done.wait(timeout)

    def stop(self) -> None:
        self._done.set()


def _answer_to(rest_beats: float) -> list[Note]:
    """The notes the jam plays of an answer whose first note comes ``rest_beats`` after its start."""
    q = 480
    player = _Player()
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    starts: list[int] = []

    def make_session(_song, start_tick: int, _bars: int) -> _Session:
        starts.append(start_tick)
        first = start_tick + round(rest_beats * q)
        return _Session([Note(first, 67, first + q // 2), Note(first + q, 69, first + 2 * q)])

    jam = Jam(player, make_session, JamConfig(bars=1, silence_ms=50, bpm=240), inbox=inbox)
    stop = threading.Event()
    runner = threading.Thread(target=jam.run, args=(stop,), kwargs={"max_exchanges": 1}, daemon=True)
    runner.start()
    t = time.perf_counter()
    inbox.put((t, mido.Message("note_on", note=60, velocity=90)))
    inbox.put((t + 0.1, mido.Message("note_off", note=60)))
    runner.join(timeout=5)
    stop.set()
    assert not runner.is_alive() and starts
    return [Note(n.start_tick - starts[0], n.pitch, n.end_tick - starts[0]) for n in player.sent]


@pytest.mark.parametrize(
    ("rest_beats", "opens_after"),
    [(0, 0), (0.5, 0.5), (1, 1), (1.25, 0.25), (2.5, 0.5), (3, 0)],
)
def test_an_answer_opens_within_a_beat_and_keeps_its_rhythm(rest_beats: float, opens_after: float) -> None:
    notes = _answer_to(rest_beats)
    assert notes[0].start_tick == round(opens_after * 480)
    assert notes[1].start_tick - notes[0].start_tick == 480  # the rhythm is the model's
    assert [n.pitch for n in notes] == [67, 69]


def test_with_the_metronome_the_rest_is_kept() -> None:
    assert opening_rest_trim(3 * 480, 480, metronome=True) == 0
    assert opening_rest_trim(3 * 480, 480, metronome=False) == 3 * 480
    assert opening_rest_trim(480, 480, metronome=False) == 0
