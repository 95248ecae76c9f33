"""The scheduler: a thread that sends timed MIDI messages at absolute deadlines.

Every event has a deadline ``origin + seconds(tick)`` on a monotonic clock (``time.perf_counter``
by default; injectable for tests), computed once through the song's tempo map, so errors never add
up. The thread waits on a condition variable until shortly before the deadline (``spin_s``, 1 ms)
and then spins on the clock, without holding the lock, to the deadline itself. Notes generated
while playing are appended through :meth:`Scheduler.append_notes`, which wakes the thread.

At equal ticks note-offs go before controls and program changes, which go before note-ons. The
scheduler counts which notes sound; on stop, pause, seek, a loop jump, a cancelled session, an
output change or an output error it sends note-offs for them and then the output's panic (sustain
off, all notes off, all sound off on the channels in use), so no note is left hanging.

An output that fails (a send raises :class:`~musicgen_app.errors.DeviceError` or an OS error, or
the output reports its device dead through :meth:`~musicgen_app.playback.outputs.Output.fail`, which
wakes the thread at once) stops playback loudly: panic where the device still takes it, the output
switched off (replaced by :class:`~musicgen_app.playback.outputs.NullOutput`), an
:class:`OutputFailed` report on :attr:`Scheduler.status` and through ``on_error``, and the run ends
with reason ``failed``. The notes sent after the device died are taken out of :attr:`played` (they
were never heard) and counted in the report. The scheduler itself keeps running: a new output and
``play`` work as before.

The GIL: a thread that runs plain Python holds the interpreter for up to the switch interval
(5 ms by default) before the timing thread gets it back. While anything plays, the interpreter's
switch interval is shortened to ``switch_interval_s`` (0.5 ms) and restored when the last player
stops (see :func:`fast_switching`). Per-event work in the thread is a tuple lookup, a dict update
and the output's ``send``.

With ``threaded=False`` no thread runs: tests advance a fake clock and call :meth:`pump`.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import mido

from musicgen_app.core.song import Note, Song, TempoMap
from musicgen_app.errors import DeviceError
from musicgen_app.playback import timeline as tl
from musicgen_app.playback.outputs import NullOutput, Output

logger = logging.getLogger(__name__)

STOPPED = "stopped"
PLAYING = "playing"
PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class PlaybackError:
    """An output failed and was switched off; the player goes on."""

    message: str
    output_name: str


@dataclass(frozen=True, slots=True)
class OutputFailed(PlaybackError):  # noqa: N818 - a report (a dataclass), not an exception
    """The output died while in use (its device failed, the JACK server or port went away):
    playback stopped and the output was switched off.

    ``failed_at`` is the ``time.perf_counter`` time the device died (None when only a send found
    out); ``notes_heard`` counts the streamed notes whose note-on went out before that, and
    ``notes_lost`` those sent after it (into a dead device, so never heard).
    """

    failed_at: float | None = None
    notes_heard: int = 0
    notes_lost: int = 0


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    """Playback ended: ``reason`` is ``end`` (the last event was sent), ``stopped``, or ``failed``
    (the output died; an :class:`OutputFailed` came first)."""

    reason: str
    position_tick: int


# -- the interpreter's switch interval ---------------------------------------------------------
_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.005


def _acquire_fast_switching(interval_s: float) -> None:
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            if interval_s < _switch_saved:
                sys.setswitchinterval(interval_s)
        _switch_users += 1


def _release_fast_switching() -> None:
    global _switch_users
    with _switch_lock:
        _switch_users = max(0, _switch_users - 1)
        if _switch_users == 0:
            sys.setswitchinterval(_switch_saved)


@contextlib.contextmanager
def fast_switching(interval_s: float = 0.0005) -> Iterator[None]:
    """Shorten the interpreter's thread switch interval (so a timing thread waits at most that long)."""
    _acquire_fast_switching(interval_s)
    try:
        yield
    finally:
        _release_fast_switching()


def try_realtime(priority: int, what: str) -> bool:
    """Ask the OS for real-time scheduling (Linux SCHED_FIFO at ``priority``) of the calling thread
    only; False (and nothing changes) without permission or on another OS."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, ValueError) as exc:
        logger.debug("no real-time scheduling for %s: %s", what, exc)
        return False
    return True


class Scheduler:
    """Plays a song (and notes appended while it plays) on an :class:`Output` at absolute deadlines."""

    def __init__(
        self,
        output: Output,
        clock: Callable[[], float] = time.perf_counter,
        *,
        threaded: bool = True,
        spin_s: float = 0.001,
        switch_interval_s: float | None = 0.0005,
        stall_late_notes: bool = True,
        realtime_priority: int | None = 5,
        record_timing: bool = False,
        on_error: Callable[[OutputFailed], None] | None = None,
        on_finished: Callable[[PlaybackFinished], None] | None = None,
    ) -> None:
        self.clock = clock
        self.spin_s = spin_s
        self.switch_interval_s = switch_interval_s
        self.stall_late_notes = stall_late_notes
        self.realtime_priority = realtime_priority
        #: whether the thread got real-time scheduling (SCHED_FIFO); see :meth:`_try_realtime`.
        self.realtime = False
        self.on_error = on_error
        self.on_finished = on_finished
        #: OutputFailed / PlaybackFinished items, for a GUI timer to drain.
        self.status: queue.Queue[PlaybackError | PlaybackFinished] = queue.Queue()
        #: (deadline, time the send began) per sent event when ``record_timing``.
        self.timing: list[tuple[float, float]] | None = [] if record_timing else None
        #: (session_id, note) of every appended note whose note-on was sent (session -1: a plain Note).
        self.played: list[tuple[int, Note]] = []
        self._played_at: list[float] = []  # clock time each of ``played`` was sent
        #: clock time at which the first appended note's note-on was sent (None before).
        self.first_streamed_note_time: float | None = None
        self.late_shift_s = 0.0  # total time the stream stalled for late notes

        self._output: Output = output
        self._cond = threading.Condition()
        output.add_failure_listener(self._output_died)
        self._events: list[tl.Event] = []
        self._idx = 0
        self._state = STOPPED
        self._origin = 0.0
        self._cursor_tick = 0  # tick of the last dispatched event (or of the last jump)
        self._pos_tick = 0  # position while paused or stopped
        self._tmap = TempoMap([], 480)
        self._timeline = tl.Timeline(self._tmap)
        self._setup: list[mido.Message] = []
        self._channels: set[int] = set()
        self._loop_ticks: tuple[int, int] | None = None
        self._loop: tuple[int, int, float, float] | None = None
        self._stream_open = False
        self._cancelled: set[int] = set()
        self._sounding: dict[tuple[int, int], int] = {}
        self._fast = False
        self._finished = threading.Event()
        self._finished.set()
        self._quit = False
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="musicgen-scheduler", daemon=True)
            self._thread.start()

    # -- public API (any thread) ----------------------------------------------------------------
    @property
    def output(self) -> Output:
        """The output messages currently go to."""
        return self._output

    @property
    def state(self) -> str:
        """``stopped``, ``playing`` or ``paused``."""
        return self._state

    @property
    def sounding(self) -> set[tuple[int, int]]:
        """(channel, pitch) of every note the scheduler has started and not yet ended."""
        with self._cond:
            return set(self._sounding)

    @property
    def origin_time(self) -> float:
        """Clock time at which tick 0 sounds (or would have sounded) in the current run."""
        with self._cond:
            return self._origin

    @property
    def position_tick(self) -> int:
        """The playhead in ticks (read it from a GUI timer)."""
        with self._cond:
            if self._state == PLAYING:
                return max(0, round(self._tmap.seconds_to_tick(max(0.0, self.clock() - self._origin))))
            return self._pos_tick

    def play(
        self,
        song: Song,
        start_tick: int = 0,
        *,
        streaming: bool = False,
        include_song: bool = True,
        at_time: float | None = None,
    ) -> None:
        """Start playing ``song`` from ``start_tick`` (stopping whatever played).

        ``streaming=True`` keeps playing after the last event until :meth:`end_stream`, for notes
        appended while it plays. ``include_song=False`` plays only appended notes (the song gives
        the tempo map and the instruments). ``at_time``: the clock time ``start_tick`` is at
        (default now); a caller in another process passes its own ``perf_counter`` time, so the
        delay of the command does not shift the music.
        """
        with self._cond:
            if self._state != STOPPED:
                self._silence()
            self._tmap = song.tempo_map()
            self._timeline = tl.Timeline(self._tmap)
            self._events = self._timeline.song_events(song) if include_song else []
            self._setup = tl.setup_messages(song)
            self._channels = tl.song_channels(song) if include_song else {m.channel for m in self._setup}
            self._sounding.clear()
            self.played.clear()
            self._played_at.clear()
            self.first_streamed_note_time = None
            self.late_shift_s = 0.0
            self._stream_open = streaming
            self._update_loop()
            self._finished.clear()
            self._enter_fast()
            self._state = PLAYING
            self._jump(start_tick, self.clock() if at_time is None else at_time)
            self._cond.notify_all()

    def append_notes(self, items: Iterable[Any]) -> int:
        """Schedule notes while playing: :class:`Note` objects or events with ``.note`` and ``.session_id``.

        Events of a cancelled session are dropped. Returns how many notes were scheduled. A note
        whose time has already passed stalls the stream (shifts the timeline) by the delay when
        ``stall_late_notes`` is on, so the rhythm of what follows is kept; else it sounds at once.
        """
        count = 0
        with self._cond:
            for item in items:
                note = getattr(item, "note", item)
                sid = int(getattr(item, "session_id", -1) or -1)
                if sid and sid in self._cancelled:
                    continue
                if not isinstance(note, Note):
                    continue
                on, off = self._timeline.note_events(note, sid)
                self._channels.add(on[4].channel)
                if self._state == PLAYING and self.stall_late_notes:
                    late = self.clock() - (self._origin + on[3])
                    if late > 0:
                        self._origin += late
                        self.late_shift_s += late
                for ev in (on, off):
                    pos = bisect.bisect_right(self._events, ev)
                    self._events.insert(max(pos, self._idx), ev)
                count += 1
            if count:
                self._cond.notify_all()
        return count

    def end_stream(self) -> None:
        """No more notes will be appended: playback ends after the last one."""
        with self._cond:
            self._stream_open = False
            self._cond.notify_all()

    def cancel_session(self, session_id: int) -> None:
        """Drop every pending note of a session and silence what sounds; later events of it are ignored."""
        with self._cond:
            self._cancelled.add(session_id)
            rest = [e for e in self._events[self._idx :] if e[5] != session_id]
            self._events[self._idx :] = rest
            self._silence()
            self._cond.notify_all()

    def stop(self) -> None:
        """Stop and silence everything."""
        with self._cond:
            if self._state == STOPPED:
                return
            self._pos_tick = self._current_tick()
            self._silence()
            if self._state != STOPPED:  # else the silencing found the output dead and ended the run
                self._finish("stopped")

    def pause(self) -> None:
        """Stop sounding, remember the position; :meth:`resume` goes on from there."""
        with self._cond:
            if self._state != PLAYING:
                return
            self._pos_tick = self._current_tick()
            self._silence()
            if self._state == PLAYING:  # else the output failed while silencing and the run ended
                self._state = PAUSED
            self._cond.notify_all()

    def resume(self) -> None:
        """Continue after :meth:`pause` (or after :meth:`stop`, from where it stopped)."""
        with self._cond:
            if self._state == PLAYING:
                return
            if self._state == STOPPED:
                self._finished.clear()
                self._enter_fast()
            self._state = PLAYING
            self._jump(self._pos_tick, self.clock())
            self._cond.notify_all()

    def seek(self, tick: int) -> None:
        """Move the playhead to ``tick`` (silencing what sounds); keeps playing if it was."""
        with self._cond:
            tick = max(0, int(tick))
            self._silence()
            if self._state == PLAYING:
                self._jump(tick, self.clock())
            else:
                self._pos_tick = tick
            self._cond.notify_all()

    def set_loop(self, start_tick: int | None, end_tick: int | None = None) -> None:
        """Loop between two ticks (``set_loop(None)`` ends looping)."""
        with self._cond:
            if start_tick is None or end_tick is None:
                self._loop_ticks = None
            else:
                if end_tick <= start_tick:
                    raise ValueError("the loop must end after it starts")
                self._loop_ticks = (int(start_tick), int(end_tick))
            self._update_loop()
            self._cond.notify_all()

    def set_output(self, output: Output) -> None:
        """Send from now on to ``output``: silences the old one, sets up instruments on the new one."""
        with self._cond:
            if getattr(self._output, "closed", False):  # its owner closed it first: nothing to silence
                self._sounding.clear()
            else:
                self._silence()
            self._output.remove_failure_listener(self._output_died)
            self._output = output
            output.add_failure_listener(self._output_died)
            if self._state == PLAYING:
                self._send_all(self._setup + tl.chase_messages(self._events, self._cursor_tick))
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until playback has finished or stopped; False on timeout."""
        return self._finished.wait(timeout)

    def pump(self) -> float | None:
        """Send what is due now (for ``threaded=False``); returns the next deadline, or None."""
        with self._cond:
            self._check_output()
            if self._state != PLAYING:
                return None
            nxt = self._dispatch(self.clock())
            if self._state != PLAYING:
                return None
            if nxt is None and not self._stream_open:
                self._finish("end")
            return nxt

    def close(self) -> None:
        """Stop and end the thread. The output stays open (its owner closes it)."""
        self.stop()
        with self._cond:
            self._quit = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals (hold self._cond) ------------------------------------------------------------
    def _try_realtime(self) -> None:
        """Ask the OS for real-time scheduling of this thread only (Linux SCHED_FIFO, low priority).

        On a loaded machine the OS scheduler, not the GIL, is then what delays a deadline most. It
        needs permission (root, an rtprio limit, or the audio group as for JACK); without it nothing
        changes. The thread never busy-waits longer than ``spin_s`` at a time.
        """
        if self.realtime_priority:
            self.realtime = try_realtime(self.realtime_priority, "the player thread")

    def _run(self) -> None:
        self._try_realtime()
        cond = self._cond
        clock = self.clock
        with cond:
            while not self._quit:
                self._check_output()
                if self._state != PLAYING:
                    cond.wait()
                    continue
                nxt = self._dispatch(clock())
                if self._state != PLAYING:
                    continue  # the output failed while sending
                if nxt is None:
                    if self._stream_open:
                        cond.wait(0.05)
                    else:
                        self._finish("end")
                    continue
                remaining = nxt - clock()
                if remaining > self.spin_s:
                    cond.wait(remaining - self.spin_s)
                elif remaining > 0:
                    cond.release()
                    try:
                        while clock() < nxt:
                            pass
                    finally:
                        cond.acquire()

    def _dispatch(self, now: float) -> float | None:
        """Send every event due at ``now``; return the next deadline (None when nothing is pending)."""
        events = self._events
        while True:
            if self._state != PLAYING:
                return None  # the output failed: the run has ended
            i = self._idx
            loop = self._loop
            if (
                loop is not None
                and self._cursor_tick < loop[1]
                and (i >= len(events) or events[i][0] >= loop[1])
            ):
                loop_deadline = self._origin + loop[3]
                if now < loop_deadline:
                    return loop_deadline
                self._silence_notes()
                self._jump(loop[0], loop_deadline)
                continue
            if i >= len(events):
                return None
            ev = events[i]
            deadline = self._origin + ev[3]
            if now < deadline:
                return deadline
            self._idx = i + 1
            self._cursor_tick = ev[0]
            if self.timing is not None:
                self.timing.append((deadline, self.clock()))
            self._deliver(ev)

    def _deliver(self, ev: tl.Event) -> None:
        msg = ev[4]
        prio = ev[1]
        if prio == tl.PRIO_NOTE_ON:
            key = (msg.channel, msg.note)
            count = self._sounding.get(key, 0)
            if count:  # the same key again: end the sounding one first (re-strike)
                self._send(mido.Message("note_off", channel=msg.channel, note=msg.note))
            self._sounding[key] = count + 1
        elif prio == tl.PRIO_NOTE_OFF:
            key = (msg.channel, msg.note)
            count = self._sounding.get(key, 0)
            if count == 0:
                return  # not sounding (started before a seek, or already silenced)
            if count > 1:
                self._sounding[key] = count - 1
                return  # an overlapping note of the same key still sounds
            del self._sounding[key]
        self._send(msg)
        if prio == tl.PRIO_NOTE_ON and ev[5] and self._state == PLAYING:  # sent, not failed
            now = self.clock()
            if self.first_streamed_note_time is None:
                self.first_streamed_note_time = now
            self.played.append((ev[5], ev[6]))  # type: ignore[arg-type]
            self._played_at.append(now)

    def _send(self, msg: mido.Message) -> None:
        try:
            self._output.send(msg)
        except (DeviceError, OSError, ValueError, RuntimeError) as exc:
            self._output_failed(exc)

    def _send_all(self, msgs: Iterable[mido.Message]) -> None:
        for msg in msgs:
            self._send(msg)

    def _output_died(self, _output: Output) -> None:
        """An output's failure listener (any thread): wake the scheduler thread to act on it."""
        with self._cond:
            self._cond.notify_all()

    def _check_output(self) -> None:
        """Act on an output that reported its device dead (between sends)."""
        failure = self._output.failure
        if failure is not None:
            self._output_failed(DeviceError(failure))

    def _output_failed(self, exc: Exception) -> None:
        """Stop playback with a panic where still possible, switch the output off, report it."""
        failed = self._output
        self._output = NullOutput()
        failed.remove_failure_listener(self._output_died)
        self._sounding.clear()
        if failed.failure is None:  # a send failed but the device may still take a panic
            with contextlib.suppress(DeviceError, OSError, ValueError, RuntimeError):
                failed.panic(self._channels or range(16))
        lost = 0
        if failed.failed_at is not None:  # notes sent into the dead device were never heard
            heard = bisect.bisect_right(self._played_at, failed.failed_at)
            lost = len(self.played) - heard
            del self.played[heard:], self._played_at[heard:]
        message = failed.failure or f"{failed.name} stopped working: {exc}"
        message += "; playback stopped"
        logger.info("%s", message)  # the report goes to the user (status, on_error)
        report = OutputFailed(message, failed.name, failed.failed_at, len(self.played), lost)
        self.status.put(report)
        if self.on_error is not None:
            self.on_error(report)
        if self._state != STOPPED:
            self._pos_tick = self._current_tick()
            self._finish("failed")

    def _silence_notes(self) -> None:
        for ch, pitch in list(self._sounding):
            self._send(mido.Message("note_off", channel=ch, note=pitch))
        self._sounding.clear()

    def _silence(self) -> None:
        """Note-offs for every sounding note, then the output's panic on the channels in use."""
        self._silence_notes()
        try:
            self._output.panic(sorted(self._channels) or range(16))
        except (DeviceError, OSError, ValueError, RuntimeError) as exc:
            self._output_failed(exc)

    def _jump(self, tick: int, at_time: float) -> None:
        """Make ``tick`` sound at clock time ``at_time``: move the index, re-send programs and controls."""
        self._idx = bisect.bisect_left(self._events, (tick,))
        self._cursor_tick = tick
        self._origin = at_time - self._tmap.tick_to_seconds(tick)
        self._send_all(self._setup + tl.chase_messages(self._events, tick))

    def _current_tick(self) -> int:
        if self._state == PLAYING:
            return max(0, round(self._tmap.seconds_to_tick(max(0.0, self.clock() - self._origin))))
        return self._pos_tick

    def _update_loop(self) -> None:
        if self._loop_ticks is None:
            self._loop = None
            return
        a, b = self._loop_ticks
        self._loop = (a, b, self._tmap.tick_to_seconds(a), self._tmap.tick_to_seconds(b))

    def _finish(self, reason: str) -> None:
        if reason == "end":
            self._pos_tick = self._cursor_tick
            self._silence_notes()
        self._state = STOPPED
        self._leave_fast()
        report = PlaybackFinished(reason, self._pos_tick)
        self.status.put(report)
        self._finished.set()
        self._cond.notify_all()
        if self.on_finished is not None:
            self.on_finished(report)

    def _enter_fast(self) -> None:
        if self.switch_interval_s and not self._fast:
            _acquire_fast_switching(self.switch_interval_s)
            self._fast = True

    def _leave_fast(self) -> None:
        if self._fast:
            _release_fast_switching()
            self._fast = False
