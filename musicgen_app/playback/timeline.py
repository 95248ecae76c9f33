"""A song as a sorted list of timed MIDI messages, ready for the scheduler and the offline renderer.

Each event is a tuple ``(tick, prio, seq, seconds, msg, session_id, note)`` so that plain tuple
order sorts it: by tick, then note-offs (prio 0) before controls and program changes (1) before
note-ons (2), then by insertion. ``seconds`` comes from the tempo map once, when the event is made,
so the scheduler does no tempo arithmetic per event. ``session_id`` is 0 for the song's own
events; ``note`` is the :class:`~musicgen_app.core.song.Note` of a note-on (else None).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable

import mido

from musicgen_app.core.song import ControlEvent, Note, Song, TempoMap

logger = logging.getLogger(__name__)

PRIO_NOTE_OFF = 0
PRIO_CONTROL = 1
PRIO_NOTE_ON = 2

Event = tuple[int, int, int, float, mido.Message, int, Note | None]


class Timeline:
    """Builds events for one song's tempo map; ``seq`` keeps insertion order among equal times."""

    def __init__(self, tempo_map: TempoMap) -> None:
        self.tempo_map = tempo_map
        self._seq = itertools.count()

    def note_events(self, note: Note, session_id: int = 0) -> tuple[Event, Event]:
        """The note-on and note-off events of ``note``."""
        secs = self.tempo_map.tick_to_seconds
        ch, pitch = note.channel & 15, max(0, min(127, note.pitch))
        vel = max(1, min(127, note.velocity))
        on = mido.Message("note_on", channel=ch, note=pitch, velocity=vel)
        off = mido.Message("note_off", channel=ch, note=pitch, velocity=0)
        end = max(note.end_tick, note.start_tick)
        return (
            (note.start_tick, PRIO_NOTE_ON, next(self._seq), secs(note.start_tick), on, session_id, note),
            (end, PRIO_NOTE_OFF, next(self._seq), secs(end), off, session_id, None),
        )

    def control_event(self, ev: ControlEvent) -> Event | None:
        """The event of one channel control (None for a kind MIDI cannot carry)."""
        msg = control_message(ev)
        if msg is None:
            return None
        return (ev.tick, PRIO_CONTROL, next(self._seq), self.tempo_map.tick_to_seconds(ev.tick), msg, 0, None)

    def song_events(self, song: Song) -> list[Event]:
        """Every note and control of every track, sorted."""
        events: list[Event] = []
        for track in song.tracks:
            for note in track.notes:
                events.extend(self.note_events(note))
            for ev in track.controls:
                e = self.control_event(ev)
                if e is not None:
                    events.append(e)
        events.sort()
        return events


def control_message(ev: ControlEvent) -> mido.Message | None:
    """A mido message for a :class:`ControlEvent` (None when the kind is unknown or out of range)."""
    ch = ev.channel & 15
    try:
        if ev.kind == "control_change":
            return mido.Message("control_change", channel=ch, control=ev.number, value=ev.value)
        if ev.kind == "program_change":
            return mido.Message("program_change", channel=ch, program=ev.number)
        if ev.kind == "pitchwheel":
            return mido.Message("pitchwheel", channel=ch, pitch=ev.value)
        if ev.kind == "aftertouch":
            return mido.Message("aftertouch", channel=ch, value=ev.value)
        if ev.kind == "polytouch":
            return mido.Message("polytouch", channel=ch, note=ev.number, value=ev.value)
    except (ValueError, TypeError):
        logger.debug("skipping out-of-range control %r", ev)
    return None


def setup_messages(song: Song) -> list[mido.Message]:
    """Program changes that put each (non-drum) track's instrument on its channel."""
    msgs: list[mido.Message] = []
    seen: set[int] = set()
    for track in song.tracks:
        ch = track.channel & 15
        if track.is_drum or ch == 9 or ch in seen:
            continue
        seen.add(ch)
        msgs.append(mido.Message("program_change", channel=ch, program=max(0, min(127, track.program))))
    return msgs


def song_channels(song: Song) -> set[int]:
    """Every channel the song's tracks, notes and controls use."""
    chans: set[int] = set()
    for track in song.tracks:
        chans.add(track.channel & 15)
        chans.update(n.channel & 15 for n in track.notes)
        chans.update(c.channel & 15 for c in track.controls)
    return chans


def chase_messages(events: Iterable[Event], upto_tick: int) -> list[mido.Message]:
    """The last program and controller values set before ``upto_tick``, to resend after a jump."""
    state: dict[tuple[int, str, int], mido.Message] = {}
    for ev in events:
        if ev[0] >= upto_tick:
            break
        if ev[1] != PRIO_CONTROL:
            continue
        msg = ev[4]
        if msg.type == "control_change":
            state[(msg.channel, "cc", msg.control)] = msg
        elif msg.type == "program_change":
            state[(msg.channel, "pc", 0)] = msg
        elif msg.type == "pitchwheel":
            state[(msg.channel, "pw", 0)] = msg
    return list(state.values())
