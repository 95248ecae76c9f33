"""Play a continuation while it is being generated.

:func:`play_session` takes any iterable of events (duck-typed: items with ``.note`` and
``.session_id`` are notes, an item with ``.reason`` ends the stream), such as an
``ml.session.GenerationSession``; playback never imports ``ml``. The iterable is consumed on the
calling thread (that is where the model runs) while the scheduler's thread sends each note at its
time. It returns exactly the notes whose note-on was sent, so a file written from the result holds
what was heard.

When playback stops under the stream (the output died: see
:class:`~musicgen_app.playback.scheduler.OutputFailed`) the session is cancelled at once, and the
result says so (reason ``output-failed``, :attr:`LiveResult.failure`): its notes are those heard
before the device died.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from musicgen_app.core.song import Note, Song
from musicgen_app.playback.outputs import Output
from musicgen_app.playback.scheduler import OutputFailed, Scheduler
from musicgen_app.playback.transport import Transport

logger = logging.getLogger(__name__)


@dataclass
class LiveResult:
    """What a live continuation did."""

    notes: list[Note] = field(default_factory=list)  # played, in the order their note-ons were sent
    reason: str = "done"  # the session's reason (done / cancelled / error), "interrupted" or "output-failed"
    message: str = ""
    generated: int = 0  # notes the session yielded (more than ``notes`` when stopped early)
    start_time: float = 0.0  # clock time play_session began
    first_note_time: float | None = None  # clock time the first note-on was sent
    stall_s: float = 0.0  # how long playback waited for notes that came late
    errors: list[str] = field(default_factory=list)  # output failures reported while playing
    failure: OutputFailed | None = None  # the output died: playback stopped, the session was cancelled

    @property
    def first_note_latency_s(self) -> float | None:
        """Seconds from the start of play_session to the first note-on sent."""
        return None if self.first_note_time is None else self.first_note_time - self.start_time


def play_session(
    events: Iterable[Any],
    song: Song,
    output: Output | None = None,
    *,
    start_tick: int | None = None,
    include_song: bool = False,
    scheduler: Transport | None = None,
    on_note: Callable[[Note], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> LiveResult:
    """Stream the notes of ``events`` to ``output`` as they arrive and return what was played.

    ``scheduler`` may be any :class:`~musicgen_app.playback.transport.Transport`: a running
    :class:`Scheduler` or a :class:`~musicgen_app.playback.player_process.PlayerProcess` (then
    ``output`` is None: the player process owns its output, and the timing is immune to the
    model's Python work here).

    ``start_tick`` is where the continuation starts (default: the end of the song's last note);
    it sounds as soon as the first note at that tick arrives. ``include_song=True`` plays the song
    from ``start_tick`` too (e.g. to hear the sketch's held notes). On KeyboardInterrupt the
    session is cancelled (``events.cancel()`` when it has one), playback stops with a panic and
    the result (reason ``interrupted``) holds what was played up to then; any other exception
    cancels and stops the same way and propagates.
    """
    result = LiveResult(start_time=clock())
    own = scheduler is None
    sched: Transport
    if scheduler is None:
        if output is None:
            raise ValueError("play_session needs an output or a scheduler")
        sched = Scheduler(output, clock=clock)
    else:
        sched = scheduler
        if output is not None:
            if not isinstance(sched, Scheduler):
                raise ValueError("a player process owns its output: pass no output with it")
            sched.set_output(output)
    start = song.end_tick if start_tick is None else int(start_tick)
    streamed, ended_early = threading.Event(), threading.Event()
    try:
        sched.play(song, start_tick=start, streaming=True, include_song=include_song)
        threading.Thread(
            target=_cancel_when_playback_ends,
            args=(sched, events, streamed, ended_early),
            name="musicgen-live-watch",
            daemon=True,
        ).start()
        for ev in events:
            if ended_early.is_set():
                break
            note = getattr(ev, "note", None)
            if isinstance(note, Note):
                if sched.append_notes([ev]):
                    result.generated += 1
                    if on_note is not None:
                        on_note(note)
            elif hasattr(ev, "reason"):
                result.reason = str(ev.reason)
                result.message = str(getattr(ev, "message", "") or "")
                break
        streamed.set()
        sched.end_stream()
        sched.wait()
    except KeyboardInterrupt:
        _cancel(events)
        sched.stop()
        sched.wait(2.0)  # a player process reports what it played when it has stopped
        result.reason = "interrupted"
    except BaseException:
        _cancel(events)
        sched.stop()
        sched.wait(2.0)
        raise
    finally:
        streamed.set()
        result.notes = [n for _, n in sched.played]
        result.first_note_time = sched.first_streamed_note_time
        result.stall_s = sched.late_shift_s
        while not sched.status.empty():
            item = sched.status.get_nowait()
            if isinstance(item, OutputFailed) and result.failure is None:
                result.failure = item
            if hasattr(item, "message"):
                result.errors.append(item.message)
        if own:
            sched.close()
    if result.failure is not None and result.reason in ("done", "cancelled"):
        result.reason, result.message = "output-failed", result.failure.message
    return result


def _cancel_when_playback_ends(
    sched: Any, events: Any, streamed: threading.Event, ended_early: threading.Event
) -> None:
    """Cancel the session when playback ends before the stream does (the output died), so the
    model stops within one step instead of writing notes nobody hears."""
    while not streamed.is_set():
        if sched.wait(0.25):
            if not streamed.is_set():
                ended_early.set()
                _cancel(events)
            return


def _cancel(events: Any) -> None:
    cancel = getattr(events, "cancel", None)
    if callable(cancel):
        cancel()
