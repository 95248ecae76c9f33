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

The app drives it with ``background=True``: every command is queued and a writer thread sends it,
so no call waits on the child (not even while it is still opening its output); the playhead is
asked for with :meth:`PlayerProcess.request_position` and read from
:attr:`PlayerProcess.last_position`; single messages (a key preview, MIDI thru) go through
:class:`PlayerOutput`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import mido

from musicgen_app.core.song import Note, Song
from musicgen_app.errors import DeviceError
from musicgen_app.playback.scheduler import OutputFailed, PlaybackError, PlaybackFinished

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
_CLOSE = object()  # the writer thread's last item


@dataclass(frozen=True, slots=True)
class InputReport:
    """News of the player's MIDI keyboard: ``opened``, ``failed``, ``disconnected``, ``reconnected``
    or ``thru-error``."""

    kind: str
    port: str
    message: str


@dataclass(frozen=True, slots=True)
class OutputSwitched:
    """The player now sounds through ``name``: after :meth:`PlayerProcess.set_output`, or when a
    failing output was switched off (silent)."""

    name: str


@dataclass(frozen=True, slots=True)
class OutputOpenError(PlaybackError):
    """An output could not be opened (at start, or when switching); ``output_name`` is its spec."""


def _open(spec: str, options: dict[str, Any]) -> Any:
    from musicgen_app.playback import synth
    from musicgen_app.playback.outputs import open_output

    return open_output(
        spec,
        soundfont=options.get("soundfont"),
        midi_api=options.get("midi_api"),
        driver=options.get("driver"),
        buffer_size=options.get("buffer_size") or synth.DEFAULT_PERIOD_SIZE,
    )


def _current_output(sched: Any) -> Any:
    """An Output that sends through the scheduler's output of the moment (MIDI thru follows
    output switches and failures)."""
    from musicgen_app.playback.outputs import Output

    class CurrentOutput(Output):
        def _send(self, msg: mido.Message) -> None:
            out = sched.output
            self.name = out.name  # for messages about a failing thru
            out.send(msg)

    return CurrentOutput()


class _ChildKeyboard:
    """The child's MIDI keyboard: thru straight to the output here, every message forwarded."""

    def __init__(self, send: Any, sched: Any) -> None:
        self._send = send
        self._sched = sched
        self._input: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self, port: str, api: str | None, thru: bool) -> None:
        from musicgen_app.playback.midi_input import MidiInput

        self.close()
        try:
            inp = MidiInput(port, api, thru=_current_output(self._sched) if thru else None)
        except DeviceError as exc:
            self._send(("input", "failed", port, str(exc)))
            return
        self._input, self._stop = inp, threading.Event()
        self._thread = threading.Thread(
            target=self._forward, args=(inp, self._stop), name="musicgen-keyboard-forward", daemon=True
        )
        self._thread.start()
        self._send(("input", "opened", inp.port_name, f"MIDI keyboard: {inp.port_name}"))

    def set_thru(self, thru: bool) -> None:
        if self._input is not None:
            self._input.set_thru(_current_output(self._sched) if thru else None)

    def close(self) -> None:
        if self._input is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._input.close()
        self._input = None

    def _forward(self, inp: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            item = inp.get(timeout=0.05)
            if item is not None:
                self._send(("key", item[0], item[1]))
            while True:
                try:
                    st = inp.status.get_nowait()
                except queue.Empty:
                    break
                self._send(("input", st.kind, st.port, st.message))


def _serve(conn: Connection, spec: str, options: dict[str, Any]) -> None:
    """The child process: open the output, run a scheduler, obey commands until ``close``."""
    from musicgen_app.playback.scheduler import Scheduler

    send_lock = threading.Lock()

    def send(msg: tuple) -> None:
        # when the parent has gone, sending fails and the command loop ends on its own
        with send_lock, contextlib.suppress(OSError, EOFError):
            conn.send(msg)

    try:
        out = _open(spec, options)
    except DeviceError as exc:
        send(("failed", str(exc), spec))
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

    def failed(report: OutputFailed) -> None:
        send(("output-failed", report))  # the typed report itself: playback stopped, what was heard
        if sched is not None:  # the scheduler has switched to a silent output: say so
            send(("output", sched.output.name))

    sched = Scheduler(
        out, record_timing=bool(options.get("record_timing")), on_error=failed, on_finished=finished
    )
    keyboard = _ChildKeyboard(send, sched)
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
                send(
                    (
                        "position",
                        args[0] if args else 0,
                        sched.position_tick,
                        sched.state,
                        time.perf_counter(),
                    )
                )
                continue
            if op == "open_input":
                keyboard.open(*args)
                continue
            if op == "set_thru":
                keyboard.set_thru(*args)
                continue
            if op == "close_input":
                keyboard.close()
                continue
            if op in ("send", "panic"):
                try:
                    getattr(sched.output, op)(*args)  # silent once a failed output was switched off
                except Exception as exc:  # a failing device is switched off and reported, as in play
                    from musicgen_app.playback.outputs import NullOutput

                    name = sched.output.name
                    sched.set_output(NullOutput())
                    send(("output-error", f"{name} stopped working and was switched off: {exc}", name))
                    send(("output", sched.output.name))
                continue
            if op == "switch_output":
                spec, opts = args
                try:
                    new = _open(spec, opts)
                except DeviceError as exc:
                    send(("open-failed", str(exc), spec))
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
        keyboard.close()
        sched.close()
        out.close()
        send(("closed",))
        _exit_if_jack_died()


def _exit_if_jack_died() -> None:
    """After a JACK server died under this process, libjack's threads can keep the interpreter
    from exiting: leave at once (everything has been sent and closed)."""
    from musicgen_app.playback import jack_watch

    if jack_watch.server_died():
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        os._exit(0)


class PlayerOutput:
    """The output of a :class:`PlayerProcess` seen as an Output (send, panic, close, name).

    Messages travel to the child and are sent there; closing is the player's owner's business.
    """

    def __init__(self, player: PlayerProcess) -> None:
        self.player = player

    @property
    def name(self) -> str:
        """The child's output name."""
        return self.player.name

    def send(self, msg: mido.Message) -> None:
        """Send ``msg`` through the child's output."""
        self.player.send_message(msg)

    def panic(self, channels: Any = None) -> None:
        """Silence the child's output."""
        self.player.panic()

    def close(self) -> None:
        """Nothing: the player's owner closes it."""


class PlayerProcess:
    """A scheduler and its output in a child process (see the module docstring)."""

    def __init__(
        self,
        output: str = "fluidsynth",
        *,
        soundfont: str | Path | None = None,
        midi_api: str | None = None,
        driver: str | None = None,
        buffer_size: int | None = None,
        record_timing: bool = False,
        background: bool = False,
    ) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        options = {
            "soundfont": str(soundfont) if soundfont else None,
            "midi_api": midi_api,
            "driver": driver,
            "buffer_size": buffer_size,
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
        self.status: queue.Queue[PlaybackError | PlaybackFinished | InputReport | OutputSwitched] = (
            queue.Queue()
        )
        self.name = output
        self.realtime = False
        self.played: list[tuple[int, Note]] = []
        self.first_streamed_note_time: float | None = None
        self.late_shift_s = 0.0
        self.timing: list[tuple[float, float]] | None = None
        self._closed = False
        self._run = 0
        #: commands issued so far; :meth:`request_position` tags its question with it
        self.commands_sent = 0
        #: (commands_sent when asked, position_tick, state) of the latest answer (background mode)
        self.last_position: tuple[int, int, str] = (0, 0, "stopped")
        #: when (``time.perf_counter``, system-wide) the child measured :attr:`last_position`
        self.last_position_time = 0.0
        #: (time.perf_counter() time, mido.Message) of every message from the keyboard (open_input)
        self.input_events: queue.Queue[tuple[float, mido.Message]] = queue.Queue()
        self._background = background
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, name="musicgen-player-reader", daemon=True)
        self._reader.start()
        self._writer: threading.Thread | None = None
        if background:
            self._writer = threading.Thread(target=self._write, name="musicgen-player-writer", daemon=True)
            self._writer.start()

    # -- lifecycle ------------------------------------------------------------------------------
    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Block until the child has opened its output; DeviceError when it could not."""
        if not self._ready.wait(timeout):
            raise DeviceError(f"the player process did not start within {timeout:.0f} s")
        if self._failure is not None:
            raise DeviceError(self._failure)

    @property
    def alive(self) -> bool:
        """Whether the child process is running (False after a crash or a failed start)."""
        return self._proc.is_alive()

    @property
    def exitcode(self) -> int | None:
        """The child's exit code (None while it runs)."""
        return self._proc.exitcode

    @property
    def ready(self) -> bool:
        """Whether the child has opened its output."""
        return self._ready.is_set() and self._failure is None

    def close(self) -> None:
        """Stop, close the output and end the child process. Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._outbox.put(_CLOSE)
            if not self._ready.is_set():  # still opening its device: nothing to close gracefully
                self._proc.terminate()
            self._writer.join(timeout=2.0)
        else:
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
        self,
        song: Song,
        start_tick: int = 0,
        *,
        streaming: bool = False,
        include_song: bool = True,
        at_time: float | None = None,
    ) -> None:
        """As :meth:`Scheduler.play` (``at_time``: a ``perf_counter`` time of this process)."""
        self._run += 1
        self._finished.clear()
        extra: dict[str, Any] = {} if at_time is None else {"at_time": at_time}
        self._cmd(
            "play", self._run, song, start_tick, streaming=streaming, include_song=include_song, **extra
        )

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
        buffer_size: int | None = None,
    ) -> None:
        """Switch the child to the output ``spec`` (the old one is silenced and closed).

        The switch is reported on :attr:`status` as an :class:`OutputSwitched`; a failure to open
        it as an :class:`OutputOpenError`, and the old output stays.
        """
        opts = {
            "soundfont": str(soundfont) if soundfont else None,
            "midi_api": midi_api,
            "driver": driver,
            "buffer_size": buffer_size,
        }
        self._cmd("switch_output", spec, opts)

    def open_input(self, port: str, *, midi_api: str | None = None, thru: bool = True) -> None:
        """Open the MIDI keyboard ``port`` in the child: with ``thru`` it plays straight through the
        output there (no trip through this process); every message also lands on
        :attr:`input_events`, and news (opened, failed, gone, back) on :attr:`status` as InputReport."""
        self._cmd("open_input", port, midi_api, thru, check=False)

    def set_thru(self, thru: bool) -> None:
        """Play the keyboard through the output, or not."""
        self._cmd("set_thru", thru, check=False)

    def close_input(self) -> None:
        """Close the keyboard."""
        self._cmd("close_input", check=False)

    def send_message(self, msg: mido.Message) -> None:
        """Send one message to the output now (a key preview, MIDI thru)."""
        self._cmd("send", msg, check=False)

    def panic(self) -> None:
        """Silence the output (all notes and sounds off)."""
        self._cmd("panic", check=False)

    @property
    def position_tick(self) -> int:
        """The playhead in ticks (asks the child; background mode: the latest answer)."""
        if self._background:
            return self.last_position[1]
        return self.position()[0]

    @property
    def state(self) -> str:
        """``stopped``, ``playing`` or ``paused`` (asks the child; background mode: latest answer)."""
        if self._background:
            return self.last_position[2]
        return self.position()[1]

    def request_position(self) -> None:
        """Ask for the playhead without waiting; the answer lands in :attr:`last_position`."""
        self._cmd("position", self.commands_sent, check=False)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has finished or stopped (and its results arrived); False on timeout."""
        return self._finished.wait(timeout)

    def position(self, timeout: float = 1.0) -> tuple[int, str]:
        """(position_tick, state) asked of the child (blocking; not in background mode)."""
        self._cmd("position", self.commands_sent)
        try:
            return self._position.get(timeout=timeout)
        except queue.Empty as exc:
            raise DeviceError("the player process does not answer") from exc

    # -- internals ------------------------------------------------------------------------------
    def _cmd(self, op: str, *args: Any, check: bool = True, **kwargs: Any) -> None:
        if op != "position":
            self.commands_sent += 1
        if self._background:
            if not self._closed:
                self._outbox.put((op, args, kwargs))
            return
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

    def _write(self) -> None:
        """Background mode: send queued commands once the child is ready (drop them if it failed)."""
        while True:
            item = self._outbox.get()
            if item is _CLOSE:
                if self._ready.is_set() and self._failure is None:
                    with contextlib.suppress(OSError, EOFError):
                        self._conn.send(("close", (), {}))
                return
            self._ready.wait()
            if self._failure is not None:
                continue
            try:
                self._conn.send(item)
            except (OSError, EOFError) as exc:
                logger.debug("player process gone, %s not sent: %s", item[0], exc)

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
                self.status.put(OutputOpenError(msg[1], msg[2]))
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
            elif kind == "output-failed":
                self.status.put(msg[1])  # an OutputFailed
            elif kind == "key":
                self.input_events.put((msg[1], msg[2]))
            elif kind == "input":
                self.status.put(InputReport(msg[1], msg[2], msg[3]))
            elif kind == "open-failed":
                self.status.put(OutputOpenError(msg[1], msg[2]))
            elif kind == "position":
                self.last_position = (msg[1], msg[2], msg[3])
                self.last_position_time = msg[4]
                if not self._background:
                    self._position.put((msg[2], msg[3]))
            elif kind == "output":
                self.name = msg[1]
                self.status.put(OutputSwitched(msg[1]))
            elif kind == "closed":
                break
        if not self._ready.is_set():
            self._failure = "the player process ended before opening its output"
            self._ready.set()
        self._finished.set()  # nobody waits forever on a process that is gone
