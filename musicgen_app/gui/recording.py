"""Recording from a MIDI keyboard: messages from :class:`~musicgen_app.playback.midi_input.MidiInput`
become notes at the playhead, drawn while they are played and added as one undo step at the end."""

from __future__ import annotations

import logging
import time
from typing import Any

from musicgen_app.core.song import Note, TempoMap

logger = logging.getLogger(__name__)


class NoteCollector:
    """Pairs note-ons with note-offs at ticks (pure: no port, testable on its own)."""

    def __init__(self, channel: int = 0) -> None:
        self.channel = channel
        self.done: list[Note] = []
        self._open: dict[int, tuple[int, int]] = {}  # pitch -> (start_tick, velocity)

    def feed(self, msg: Any, tick: int) -> None:
        """One MIDI message heard at ``tick``."""
        if msg.type == "note_on" and msg.velocity > 0:
            if msg.note in self._open:
                self._close(msg.note, tick)
            self._open[msg.note] = (tick, msg.velocity)
        elif msg.type in ("note_off", "note_on"):
            self._close(msg.note, tick)

    def _close(self, pitch: int, tick: int) -> None:
        start, vel = self._open.pop(pitch, (None, 0))
        if start is not None:
            self.done.append(Note(start, pitch, max(tick, start + 1), max(1, vel), self.channel))

    def notes(self, now_tick: int) -> list[Note]:
        """Finished notes plus the ones still held, drawn up to ``now_tick``."""
        held = [Note(s, p, max(now_tick, s + 1), max(1, v), self.channel) for p, (s, v) in self._open.items()]
        return self.done + held

    def finish(self, now_tick: int) -> list[Note]:
        """Close every held note at ``now_tick`` and return all notes."""
        for pitch in list(self._open):
            self._close(pitch, now_tick)
        return sorted(self.done)


class Recorder:
    """An open MIDI input feeding a :class:`NoteCollector` (thru to the output if asked)."""

    def __init__(self, port: str, thru: Any, channel: int, tempo_map: TempoMap | None = None) -> None:
        from musicgen_app.playback.midi_input import MidiInput

        self._input = MidiInput(port, thru=thru)
        self.collector = NoteCollector(channel)
        #: the song's tempo map: a message heard s seconds before the playhead's tick is placed
        #: at the tick s seconds earlier (120 BPM at 480 ticks per quarter when not given)
        self.tempo_map = tempo_map if tempo_map is not None else TempoMap([], 480)

    def poll(self, now_tick: int, at: float | None = None) -> list[Note]:
        """Take the messages that arrived; returns what to draw.

        ``now_tick`` is the playhead at ``at`` (``time.perf_counter()``; default: now); a message
        is placed that many ticks before it as it came earlier.
        """
        now = time.perf_counter() if at is None else at
        while True:
            item = self._input.get(timeout=0)
            if item is None:
                break
            t, msg = item
            at_s = self.tempo_map.tick_to_seconds(now_tick) - (now - t)
            tick = max(0, round(self.tempo_map.seconds_to_tick(at_s)))
            self.collector.feed(msg, tick)
        return self.collector.notes(now_tick)

    def finish(self, now_tick: int, at: float | None = None) -> list[Note]:
        """Stop recording; the recorded notes."""
        self.poll(now_tick, at)
        self.close()
        return self.collector.finish(now_tick)

    def close(self) -> None:
        """Close the port."""
        self._input.close()
