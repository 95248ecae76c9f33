"""The scheduler in a process of its own, so Python work here (a model generating) cannot delay it.

A thread that runs Python holds the interpreter lock (GIL); when the OS preempts it, every other
thread of the process waits too, whatever their priority. On a busy machine that costs the timing
thread several milliseconds. :class:`PlayerProcess` runs the output and a :class:`Scheduler` in a
child process (``spawn``: nothing of the parent is inherited) with its own interpreter lock; this
process only sends it commands and notes through a pipe. ``time.perf_counter`` is a system-wide
monotonic clock, so times reported by the child compare with times taken here.

It offers the scheduler's methods (``play``, ``append_notes``, ``end_stream``, ``stop``, ``pause``,
``resume``, ``seek``, ``set_loop``, ``cancel_session``, ``wait``, ``close``) and, once a run has
finished, its results (``played``, ``first_streamed_note_time``, ``late_shift_s``, ``timing``), so
:func:`musicgen_app.playback.live.play_session` accepts it as its ``scheduler``. The output is named
by a spec (``"fluidsynth"`` or a port name), because device handles cannot cross processes.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import queue
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from musicgen_app.core.song import Note, Song
from musicgen_app.errors import DeviceError
from musicgen_app.playback.scheduler import PlaybackError, PlaybackFinished

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0


def _serve(conn: Connection, spec: str, options: dict[str, Any]) -> None:
    """The child process: open the output, run a scheduler, obey commands until ``close``."""
    from musicgen_app.playback.outputs import open_output
    from musicgen_app.playback.scheduler import Scheduler

    send_lock = threading.Lock()

    def send(msg: tuple) -> None:
        # when the parent has gone, sending fails and the command loop ends on its own
        with send_lock, contextlib.suppress(OSError, EOFError):
            conn.send(msg)

    try:
        out = open_output(
            spec,
            soundfont=options.get("soundfont"),
            midi_api=options.get("midi_api"),
            driver=options.get("driver"),
        )
    except DeviceError as exc:
        send(("failed", str(exc)))
        return
    sched: Scheduler | None = None
    run = [0]  # the id of the run the parent started last (play/resume carry it)

    def finished(report: PlaybackFinished) -> None:
        assert sched is not None
        send(
            (
                "finished",
                run[0],
                report.reason,
                report.position_tick,
                list(sched.played),
                sched.first_streamed_note_time,
                sched.late_shift_s,
                list(sched.timing) if sched.timing is not None else None,
            )
        )

    def failed(report: PlaybackError) -> None:
        send(("output-error", report.message, report.output_name))

    sched = Scheduler(
        out, record_timing=bool(options.get("record_timing")), on_error=failed, on_finished=finished
    )
    send(("ready", out.name, sched.realtime))
    try:
        while True:
            try:
                cmd = conn.recv()
            except (EOFError, OSError):
                break
            op, args, kwargs = cmd
            if op == "close":
                break
            if op == "position":
                send(("position", sched.position_tick, sched.state))
                continue
            if op == "switch_output":
                spec, opts = args
                try:
                    new = open_output(
                        spec,
                        soundfont=opts.get("soundfont"),
                        midi_api=opts.get("midi_api"),
                        driver=opts.get("driver"),
                    )
                except DeviceError as exc:
                    send(("output-error", str(exc), spec))
                    continue
                old, out = out, new
                sched.set_output(new)
                old.close()
                send(("output", new.name))
                continue
            if op in ("play", "resume"):
                run[0], args = args[0], args[1:]
            try:
                getattr(sched, op)(*args, **kwargs)
            except Exception as exc:  # a bad command must not kill the player; it is reported
                logger.exception("player process: %s failed", op)
                send(("output-error", f"the player could not {op}: {exc}", "player process"))
    finally:
        sched.close()
        out.close()
        send(("closed",))


class PlayerProcess:
    """A scheduler and its output in a child process (see the module docstring)."""

    def __init__(
        self,
        output: str = "fluidsynth",
        *,
        soundfont: str | Path | None = None,
        midi_api: str | None = None,
        driver: str | None = None,
        record_timing: bool = False,
    ) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        options = {
            "soundfont": str(soundfont) if soundfont else None,
            "midi_api": midi_api,
            "driver": driver,
            "record_timing": record_timing,
        }
        self._proc = ctx.Process(
            target=_serve, args=(child, output, options), name="musicgen-player", daemon=True
        )
        self._proc.start()
        child.close()
        self._send_lock = threading.Lock()
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._finished.set()
        self._failure: str | None = None
        self._position: queue.Queue[tuple[int, str]] = queue.Queue()
        self.status: queue.Queue[PlaybackError | PlaybackFinished] = queue.Queue()
        self.name = output
        self.realtime = False
        self.played: list[tuple[int, Note]] = []
        self.first_streamed_note_time: float | None = None
        self.late_shift_s = 0.0
        self.timing: list[tuple[float, float]] | None = None
        self._closed = False
        self._run = 0
        self._reader = threading.Thread(target=self._read, name="musicgen-player-reader", daemon=True)
        self._reader.start()

    # -- lifecycle ------------------------------------------------------------------------------
    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Block until the child has opened its output; DeviceError when it could not."""
        if not self._ready.wait(timeout):
            raise DeviceError(f"the player process did not start within {timeout:.0f} s")
        if self._failure is not None:
            raise DeviceError(self._failure)

    def close(self) -> None:
        """Stop, close the output and end the child process. Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._cmd("close", check=False)
        self._proc.join(timeout=5.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=2.0)
        self._conn.close()

    def __enter__(self) -> PlayerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the scheduler's methods ----------------------------------------------------------------
    def play(
        self, song: Song, start_tick: int = 0, *, streaming: bool = False, include_song: bool = True
    ) -> None:
        """As :meth:`Scheduler.play`."""
        self._run += 1
        self._finished.clear()
        self._cmd("play", self._run, song, start_tick, streaming=streaming, include_song=include_song)

    def append_notes(self, items: Any) -> int:
        """As :meth:`Scheduler.append_notes`; returns how many notes were sent to the player."""
        batch = [it for it in items if isinstance(getattr(it, "note", it), Note)]
        if batch:
            self._cmd("append_notes", batch)
        return len(batch)

    def end_stream(self) -> None:
        """As :meth:`Scheduler.end_stream`."""
        self._cmd("end_stream")

    def cancel_session(self, session_id: int) -> None:
        """As :meth:`Scheduler.cancel_session`."""
        self._cmd("cancel_session", session_id)

    def stop(self) -> None:
        """As :meth:`Scheduler.stop`."""
        self._cmd("stop", check=False)

    def pause(self) -> None:
        """As :meth:`Scheduler.pause`."""
        self._cmd("pause")

    def resume(self) -> None:
        """As :meth:`Scheduler.resume`."""
        self._run += 1
        self._finished.clear()
        self._cmd("resume", self._run)

    def seek(self, tick: int) -> None:
        """As :meth:`Scheduler.seek`."""
        self._cmd("seek", tick)

    def set_loop(self, start_tick: int | None, end_tick: int | None = None) -> None:
        """As :meth:`Scheduler.set_loop`."""
        self._cmd("set_loop", start_tick, end_tick)

    def set_output(
        self,
        spec: str,
        *,
        soundfont: str | Path | None = None,
        midi_api: str | None = None,
        driver: str | None = None,
    ) -> None:
        """Switch the child to the output ``spec`` (the old one is silenced and closed).

        A failure to open it is reported on :attr:`status` as a PlaybackError; the old output stays.
        """
        opts = {"soundfont": str(soundfont) if soundfont else None, "midi_api": midi_api, "driver": driver}
        self._cmd("switch_output", spec, opts)

    @property
    def position_tick(self) -> int:
        """The playhead in ticks (asks the child; for a GUI timer)."""
        return self.position()[0]

    @property
    def state(self) -> str:
        """``stopped``, ``playing`` or ``paused`` (asks the child)."""
        return self.position()[1]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has finished or stopped (and its results arrived); False on timeout."""
        return self._finished.wait(timeout)

    def position(self, timeout: float = 1.0) -> tuple[int, str]:
        """(position_tick, state) asked of the child."""
        self._cmd("position")
        try:
            return self._position.get(timeout=timeout)
        except queue.Empty as exc:
            raise DeviceError("the player process does not answer") from exc

    # -- internals ------------------------------------------------------------------------------
    def _cmd(self, op: str, *args: Any, check: bool = True, **kwargs: Any) -> None:
        if check:
            self.wait_ready()
        elif not self._ready.is_set() or self._failure is not None:
            return
        with self._send_lock:
            try:
                self._conn.send((op, args, kwargs))
            except (OSError, EOFError) as exc:
                if check:
                    raise DeviceError(f"the player process has stopped: {exc}") from exc

    def _read(self) -> None:
        while True:
            try:
                msg = self._conn.recv()
            except (EOFError, OSError):
                break
            kind = msg[0]
            if kind == "ready":
                self.name, self.realtime = msg[1], msg[2]
                self._ready.set()
            elif kind == "failed":
                self._failure = msg[1]
                self._ready.set()
                break
            elif kind == "finished":
                _, run, reason, pos, played, first, shift, timing = msg
                if run != self._run:
                    continue  # the end of an earlier run, overtaken by a newer play()
                self.played = played
                self.first_streamed_note_time = first
                self.late_shift_s = shift
                self.timing = timing
                self.status.put(PlaybackFinished(reason, pos))
                self._finished.set()
            elif kind == "output-error":
                self.status.put(PlaybackError(msg[1], msg[2]))
            elif kind == "position":
                self._position.put((msg[1], msg[2]))
            elif kind == "output":
                self.name = msg[1]
            elif kind == "closed":
                break
        if not self._ready.is_set():
            self._failure = "the player process ended before opening its output"
            self._ready.set()
        self._finished.set()  # nobody waits forever on a process that is gone
