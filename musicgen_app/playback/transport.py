"""The transport: the one interface through which the app plays, streams and stops notes.

Two classes implement it: :class:`~musicgen_app.playback.scheduler.Scheduler` (a timing thread in
this process) and :class:`~musicgen_app.playback.player_process.PlayerProcess` (the same scheduler
in a child process, driven through typed messages). Code that plays (``live.play_session``, the
GUI's playback adapter, the generation thread sending notes straight to the player) is written
against :class:`Transport` and works with either.

Every method may be called from any thread; none waits on the output (a player process queues the
command; a scheduler takes its lock for microseconds).
"""

from __future__ import annotations

import queue
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from musicgen_app.core.song import Note, Song


@runtime_checkable
class Transport(Protocol):
    """Play a song (and notes appended while it plays) at absolute deadlines; report on ``status``."""

    #: PlaybackError / PlaybackFinished (and, from a player process, its other reports)
    status: queue.Queue[Any]
    #: (session_id, note) of every appended note whose note-on was sent in the last run
    played: list[tuple[int, Note]]
    #: ``time.perf_counter`` time the first appended note's note-on was sent (None before)
    first_streamed_note_time: float | None
    #: total seconds the stream stalled for notes that came after their time
    late_shift_s: float
    #: (deadline, send time) per sent event when timing is recorded, else None
    timing: list[tuple[float, float]] | None

    @property
    def position_tick(self) -> int:
        """The playhead in ticks."""
        ...

    @property
    def state(self) -> str:
        """``stopped``, ``playing`` or ``paused``."""
        ...

    def play(
        self,
        song: Song,
        start_tick: int = 0,
        *,
        streaming: bool = False,
        include_song: bool = True,
        at_time: float | None = None,
    ) -> None:
        """Play ``song`` from ``start_tick``; ``streaming`` keeps going for appended notes;
        ``at_time``: the ``time.perf_counter`` time ``start_tick`` sounds at (None: now)."""
        ...

    def append_notes(self, items: Iterable[Any]) -> int:
        """Schedule notes (``Note`` or events with ``.note`` and ``.session_id``); how many."""
        ...

    def end_stream(self) -> None:
        """No more notes will be appended: end after the last one."""
        ...

    def cancel_session(self, session_id: int) -> None:
        """Drop and silence a generation session's notes, now and later."""
        ...

    def stop(self) -> None:
        """Stop and silence everything."""
        ...

    def pause(self) -> None:
        """Stop sounding, keep the position."""
        ...

    def resume(self) -> None:
        """Go on from the paused (or stopped) position."""
        ...

    def seek(self, tick: int) -> None:
        """Move the playhead (silencing what sounds)."""
        ...

    def set_loop(self, start_tick: int | None, end_tick: int | None = None) -> None:
        """Loop between two ticks; ``set_loop(None)`` ends looping."""
        ...

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has finished or stopped; False on timeout."""
        ...

    def close(self) -> None:
        """Stop and release the thread or process (idempotent)."""
        ...
