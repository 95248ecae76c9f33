"""Events that cross layers: what a generation session yields and the player/app consume."""

from __future__ import annotations

from dataclasses import dataclass

from musicgen_app.core.song import Note


@dataclass(frozen=True, slots=True)
class NoteEvent:
    """One generated note, emitted as soon as it is known.

    ``note`` is in the song's own ticks and timeline (absolute, at the song's resolution), so it
    can be scheduled and drawn as it is. ``session_id`` tells which session produced it: the
    consumers drop events whose session was cancelled. ``seq`` counts 0, 1, 2... within a session.
    """

    session_id: int
    seq: int
    note: Note
    track: int = 0


@dataclass(frozen=True, slots=True)
class SessionFinished:
    """The last item a session yields: how it ended (``done``, ``cancelled`` or ``error``)."""

    session_id: int
    reason: str
    message: str = ""
    notes: int = 0
    tokens: int = 0
    seconds: float = 0.0
