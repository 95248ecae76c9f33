"""The scheduler in a process of its own, so Python work here (a model generating) cannot delay it.

A thread that runs Python holds the interpreter lock (GIL); when the OS preempts it, every other
thread of the process waits too, whatever their priority. On a busy machine that costs the timing
thread several milliseconds. :class:`PlayerProcess` runs the output and a :class:`Scheduler` in a
child process (``spawn``: nothing of the parent is inherited) with its own interpreter lock; this
process only sends it commands and notes through a pipe. ``time.perf_counter`` is a system-wide
monotonic clock, so times reported by the child compare with times taken here.

It implements :class:`~musicgen_app.playback.transport.Transport` (``play``, ``append_notes``,
``end_stream``, ``stop``, ``pause``, ``resume``, ``seek``, ``set_loop``, ``cancel_session``,
``wait``, ``close``, and once a run has finished ``played``, ``first_streamed_note_time``,
``late_shift_s``, ``timing``), as the in-process :class:`Scheduler` does. The output is named by a
spec (``"fluidsynth"`` or a port name), because device handles cannot cross processes.

The two processes speak typed messages (frozen dataclasses): a *command* class per request
(:class:`Play`, :class:`AppendNotes`, ...), a *report* class per piece of news (:class:`Ready`,
:class:`Position`, :class:`Finished`, ...). The child looks the handler of a command up by its
class (``_Child.handlers``), the parent the handler of a report (``PlayerProcess._on_report``),
falling back to the nearest base class; a new message is a dataclass and one entry in that table.

The app drives it with ``background=True``: every command is queued and a writer thread sends it,
so no call waits on the child (not even while it is still opening its output); ``append_notes``
may be called from any thread (the generation thread sends its notes straight here). While it
plays, the child pushes the playhead (:class:`Position`, every ``POSITION_PUSH_S``) and the time
its first streamed note went out; the parent reads the latest in :attr:`PlayerProcess.last_position`.
Single messages (a key preview, MIDI thru) go through :class:`PlayerOutput`.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import mido

from musicgen_app.core.song import Note, Song
from musicgen_app.errors import DeviceError
from musicgen_app.playback.midi_input import KeyboardQueue
from musicgen_app.playback.scheduler import PlaybackError, PlaybackFinished, try_realtime

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
HELPER_PRIORITY = 3  # SCHED_FIFO priority of the child's other Python threads (the timing thread: 5)
POSITION_PUSH_S = 0.02  # while playing, the child reports the playhead this often
THREAD_JOIN_S = 2.0  # close(): how long the writer and reader threads may take to end
_CLOSE = object()  # the writer thread's last item


# -- commands (parent -> child) ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Play:
    """Play ``song`` from ``start_tick`` (run ``run``; see :meth:`Scheduler.play`)."""

    run: int
    song: Song
    start_tick: int = 0
    streaming: bool = False
    include_song: bool = True
    at_time: float | None = None  # the clock time start_tick sounds at (None: now)


@dataclass(frozen=True, slots=True)
class AppendNotes:
    """Schedule notes while playing (``Note`` objects or events with ``.note`` and ``.session_id``)."""

    items: list[Any]


@dataclass(frozen=True, slots=True)
class EndStream:
    """No more notes will be appended."""


@dataclass(frozen=True, slots=True)
class CancelSession:
    """Drop and silence a session's notes."""

    session_id: int


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop and silence everything."""


@dataclass(frozen=True, slots=True)
class Pause:
    """Stop sounding, keep the position."""


@dataclass(frozen=True, slots=True)
class Resume:
    """Go on from the paused position (run ``run``)."""

    run: int


@dataclass(frozen=True, slots=True)
class Seek:
    """Move the playhead."""

    tick: int


@dataclass(frozen=True, slots=True)
class SetLoop:
    """Loop between two ticks (None: no loop)."""

    start_tick: int | None
    end_tick: int | None = None


@dataclass(frozen=True, slots=True)
class AskPosition:
    """Answer with a :class:`Position` now (a blocking :meth:`PlayerProcess.position`)."""


@dataclass(frozen=True, slots=True)
class OpenInput:
    """Open the MIDI keyboard ``port`` in the child, thru to the output when ``thru``."""

    port: str
    midi_api: str | None
    thru: bool


@dataclass(frozen=True, slots=True)
class SetThru:
    """Play the keyboard through the output, or not."""

    thru: bool


@dataclass(frozen=True, slots=True)
class CloseInput:
    """Close the MIDI keyboard."""


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Send one MIDI message to the output now."""

    msg: mido.Message


@dataclass(frozen=True, slots=True)
class Panic:
    """All notes and sounds off."""


@dataclass(frozen=True, slots=True)
class SwitchOutput:
    """Open the output ``spec`` and play through it from now on."""

    spec: str
    options: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Close:
    """Stop, close the output and end the child."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Several commands in one message, obeyed in order: the writer thread sends what queued up
    while it was busy together, so the child wakes once (a Continue queues four at once)."""

    commands: list[Any]


# -- reports (child -> parent) ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ready:
    """The child opened its output ``name``; ``realtime``: its timing thread got SCHED_FIFO."""

    name: str
    realtime: bool


@dataclass(frozen=True, slots=True)
class StartFailed:
    """The child could not open its output ``spec`` and has ended."""

    message: str
    spec: str


@dataclass(frozen=True, slots=True)
class Position:
    """The playhead, pushed while playing (and the answer to :class:`AskPosition`).

    ``seq``: how many commands (AskPosition aside) the child had obeyed, so the parent tells a
    report older than its last play or seek; ``time``: when it was measured (``perf_counter``);
    ``first_note_time``: when run ``run`` sent its first streamed note-on (None before).
    """

    seq: int
    tick: int
    state: str
    time: float
    run: int = 0
    first_note_time: float | None = None
    asked: bool = False  # the answer to an AskPosition (not a pushed report)


@dataclass(frozen=True, slots=True)
class Finished:
    """Run ``run`` ended (``reason`` ``end`` or ``stopped``), with what it played and how."""

    run: int
    reason: str
    position_tick: int
    played: list[tuple[int, Note]]
    first_note_time: float | None
    late_shift_s: float
    timing: list[tuple[float, float]] | None


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """A message from the MIDI keyboard, received at ``time`` (``perf_counter``)."""

    time: float
    msg: mido.Message


@dataclass(frozen=True, slots=True)
class Closed:
    """The child has closed its output and ends."""


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


#: what the parent's status queue carries
StatusItem = PlaybackError | PlaybackFinished | InputReport | OutputSwitched


def _handler(table: Mapping[type, Callable[[Any], object]], message: Any) -> Callable[[Any], object] | None:
    """The handler of ``message``: its class's entry, else its nearest base class's (a report
    that refines another, as OutputFailed a PlaybackError, is handled as that one until it has
    an entry of its own)."""
    for cls in type(message).__mro__:
        handler = table.get(cls)
        if handler is not None:
            return handler
    return None


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
            self._send(InputReport("failed", port, str(exc)))
            return
        self._input, self._stop = inp, threading.Event()
        self._thread = threading.Thread(
            target=self._forward, args=(inp, self._stop), name="musicgen-keyboard-forward", daemon=True
        )
        self._thread.start()
        self._send(InputReport("opened", inp.port_name, f"MIDI keyboard: {inp.port_name}"))

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
                self._send(KeyEvent(item[0], item[1]))
            while True:
                try:
                    st = inp.status.get_nowait()
                except queue.Empty:
                    break
                self._send(InputReport(st.kind, st.port, st.message))


class _Child:
    """The child process's side: a scheduler on the output, a command per message, the playhead
    pushed while playing."""

    def __init__(self, conn: Connection, out: Any, options: dict[str, Any]) -> None:
        from musicgen_app.playback.scheduler import Scheduler

        self.conn = conn
        self.out = out
        self._send_lock = threading.Lock()
        self.run = 0  # the id of the run the parent started last (Play and Resume carry it)
        self.seq = 0  # commands obeyed (AskPosition aside): Position reports carry it
        self.sched = Scheduler(
            out,
            record_timing=bool(options.get("record_timing")),
            on_error=self._failed,
            on_finished=self._finished,
        )
        self.keyboard = _ChildKeyboard(self.send, self.sched)
        self._wake = threading.Event()  # play / resume / seek: push the playhead at once
        self._quit = threading.Event()
        self._pusher = threading.Thread(target=self._push, name="musicgen-position-push", daemon=True)
        self.handlers: dict[type, Callable[[Any], object]] = {
            Play: self._play,
            AppendNotes: lambda c: self.sched.append_notes(c.items),
            EndStream: lambda c: self.sched.end_stream(),
            CancelSession: lambda c: self.sched.cancel_session(c.session_id),
            Stop: lambda c: self.sched.stop(),
            Pause: lambda c: self.sched.pause(),
            Resume: self._resume,
            Seek: self._seek,
            SetLoop: lambda c: self.sched.set_loop(c.start_tick, c.end_tick),
            OpenInput: lambda c: self.keyboard.open(c.port, c.midi_api, c.thru),
            SetThru: lambda c: self.keyboard.set_thru(c.thru),
            CloseInput: lambda c: self.keyboard.close(),
            SendMessage: lambda c: self._direct(lambda: self.sched.output.send(c.msg)),
            Panic: lambda c: self._direct(self.sched.output.panic),
            SwitchOutput: self._switch,
        }

    def send(self, report: Any) -> None:
        """Send a report; when the parent has gone the command loop ends on its own."""
        with self._send_lock, contextlib.suppress(OSError, EOFError):
            self.conn.send(report)

    def serve(self) -> None:
        """Obey commands until :class:`Close` (or the parent is gone).

        The child's other threads that run Python (this one, the playhead pusher) ask for
        real-time scheduling too, below the timing thread: a thread the OS preempts while it holds
        the interpreter lock makes the timing thread wait until the OS runs it again (priority
        inversion), milliseconds on a loaded machine.
        """
        try_realtime(HELPER_PRIORITY, "the player's command thread")
        self.send(Ready(self.out.name, self.sched.realtime))
        self._pusher.start()
        try:
            while True:
                try:
                    msg = self.conn.recv()
                except (EOFError, OSError):
                    break
                commands = msg.commands if isinstance(msg, Batch) else [msg]
                if not all(self._obey(cmd) for cmd in commands):
                    break
        finally:
            self._quit.set()
            self._wake.set()
            self.keyboard.close()
            self.sched.close()
            self.out.close()
            self.send(Closed())

    def _obey(self, cmd: Any) -> bool:
        """Carry out one command; False for :class:`Close`."""
        if isinstance(cmd, Close):
            return False
        if isinstance(cmd, AskPosition):
            self.send(self._position(asked=True))
            return True
        self.seq += 1
        handler = _handler(self.handlers, cmd)
        if handler is None:
            logger.error("player process: unknown command %r", cmd)
            return True
        try:
            handler(cmd)
        except Exception as exc:  # a bad command must not kill the player; it is reported
            logger.exception("player process: %s failed", type(cmd).__name__)
            name = type(cmd).__name__.lower()
            self.send(PlaybackError(f"the player could not {name}: {exc}", "player process"))
        return True

    def _position(self, *, asked: bool = False) -> Position:
        s = self.sched
        first = s.first_streamed_note_time
        return Position(self.seq, s.position_tick, s.state, time.perf_counter(), self.run, first, asked)

    def _push(self) -> None:
        """While playing, report the playhead every POSITION_PUSH_S (sleeping, never spinning)."""
        try_realtime(HELPER_PRIORITY, "the player's playhead thread")
        while not self._quit.is_set():
            if self.sched.state == "playing":
                self.send(self._position())
                self._wake.wait(POSITION_PUSH_S)
            else:
                self._wake.wait(1.0)
            self._wake.clear()

    def _play(self, c: Play) -> None:
        self.run = c.run
        self.sched.play(
            c.song, c.start_tick, streaming=c.streaming, include_song=c.include_song, at_time=c.at_time
        )
        self._wake.set()

    def _resume(self, c: Resume) -> None:
        self.run = c.run
        self.sched.resume()
        self._wake.set()

    def _seek(self, c: Seek) -> None:
        self.sched.seek(c.tick)
        self._wake.set()

    def _direct(self, call: Callable[[], Any]) -> None:
        """A message sent now (silent once a failed output was switched off); a failing device is
        switched off and reported, as while playing."""
        try:
            call()
        except Exception as exc:
            from musicgen_app.playback.outputs import NullOutput

            name = self.sched.output.name
            self.sched.set_output(NullOutput())
            self.send(PlaybackError(f"{name} stopped working and was switched off: {exc}", name))
            self.send(OutputSwitched(self.sched.output.name))

    def _switch(self, c: SwitchOutput) -> None:
        try:
            new = _open(c.spec, c.options)
        except DeviceError as exc:
            self.send(OutputOpenError(str(exc), c.spec))
            return
        old, self.out = self.out, new
        self.sched.set_output(new)
        old.close()
        self.send(OutputSwitched(new.name))

    def _finished(self, report: PlaybackFinished) -> None:
        s = self.sched
        self.send(
            Finished(
                self.run,
                report.reason,
                report.position_tick,
                list(s.played),
                s.first_streamed_note_time,
                s.late_shift_s,
                list(s.timing) if s.timing is not None else None,
            )
        )

    def _failed(self, report: PlaybackError) -> None:
        self.send(report)
        if getattr(self, "sched", None) is not None:  # switched to a silent output: say so
            self.send(OutputSwitched(self.sched.output.name))


def _serve(conn: Connection, spec: str, options: dict[str, Any]) -> None:
    """The child process: open the output, run a scheduler, obey commands until :class:`Close`."""
    try:
        out = _open(spec, options)
    except DeviceError as exc:
        with contextlib.suppress(OSError, EOFError):
            conn.send(StartFailed(str(exc), spec))
        return
    try:
        _Child(conn, out, options).serve()
    finally:
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
    """A scheduler and its output in a child process (see the module docstring); a
    :class:`~musicgen_app.playback.transport.Transport`."""

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
        self._answers: queue.Queue[Position] = queue.Queue()
        self.status: queue.Queue[Any] = queue.Queue()  # StatusItem
        self.name = output
        self.realtime = False
        self.played: list[tuple[int, Note]] = []
        self.first_streamed_note_time: float | None = None
        self.late_shift_s = 0.0
        self.timing: list[tuple[float, float]] | None = None
        self._closed = False
        self._run = 0
        self._count_lock = threading.Lock()
        #: commands issued so far (AskPosition aside); Position reports carry the child's count
        self.commands_sent = 0
        #: the latest playhead the child reported (pushed while playing)
        self.last_position = Position(0, 0, "stopped", 0.0)
        #: (time.perf_counter() time, mido.Message) of every message from the keyboard (open_input)
        self.input_events = KeyboardQueue()
        self._background = background
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._on_report: dict[type, Callable[[Any], None]] = {
            Ready: self._got_ready,
            StartFailed: self._got_start_failed,
            Finished: self._got_finished,
            Position: self._got_position,
            KeyEvent: lambda r: self.input_events.put((r.time, r.msg)),
            InputReport: self.status.put,
            PlaybackError: self.status.put,
            OutputOpenError: self.status.put,
            OutputSwitched: self._got_switched,
        }
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

    @property
    def run_id(self) -> int:
        """The number of the latest run (each play or resume starts one)."""
        return self._run

    def close(self) -> None:
        """Stop, close the output and end the child process. Calling it again does nothing.

        Returns once the reader (and writer) threads have ended, with every report the child sent
        before it ended handled; only then is the pipe closed.
        """
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._outbox.put(_CLOSE)
            if not self._ready.is_set():  # still opening its device: nothing to close gracefully
                self._proc.terminate()
            self._writer.join(timeout=THREAD_JOIN_S)
        else:
            self._cmd(Close(), check=False)
        self._proc.join(timeout=5.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=2.0)
        # The reader may still be taking the child's last reports out of the pipe (it sleeps in a
        # read that outlives a close() of the handle, then reads on with the handle gone: a
        # TypeError in its thread). The child has ended, so the reader meets Closed or the end of
        # the pipe at once; the pipe is closed after it, never under it.
        busy = []
        for thread in (self._writer, self._reader):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=THREAD_JOIN_S)
            if thread is not None and thread.is_alive():
                busy.append(thread.name)
        if busy:  # left open for the thread still using it (a daemon thread: ends with the app)
            logger.warning("player process: %s still running after close; the pipe stays open", busy)
            return
        self._conn.close()

    def __enter__(self) -> PlayerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the transport --------------------------------------------------------------------------
    def play(
        self,
        song: Song,
        start_tick: int = 0,
        *,
        streaming: bool = False,
        include_song: bool = True,
        at_time: float | None = None,
    ) -> None:
        """As :meth:`Scheduler.play` (``at_time`` on the shared ``time.perf_counter`` clock)."""
        self._run += 1
        self._finished.clear()
        self.first_streamed_note_time = None
        self._cmd(Play(self._run, song, int(start_tick), streaming, include_song, at_time))

    def append_notes(self, items: Any) -> int:
        """As :meth:`Scheduler.append_notes` (any thread); returns how many notes were sent."""
        batch = [it for it in items if isinstance(getattr(it, "note", it), Note)]
        if batch:
            self._cmd(AppendNotes(batch))
        return len(batch)

    def end_stream(self) -> None:
        """As :meth:`Scheduler.end_stream`."""
        self._cmd(EndStream())

    def cancel_session(self, session_id: int) -> None:
        """As :meth:`Scheduler.cancel_session`."""
        self._cmd(CancelSession(session_id))

    def stop(self) -> None:
        """As :meth:`Scheduler.stop`."""
        self._cmd(Stop(), check=False)

    def pause(self) -> None:
        """As :meth:`Scheduler.pause`."""
        self._cmd(Pause())

    def resume(self) -> None:
        """As :meth:`Scheduler.resume`."""
        self._run += 1
        self._finished.clear()
        self._cmd(Resume(self._run))

    def seek(self, tick: int) -> None:
        """As :meth:`Scheduler.seek`."""
        self._cmd(Seek(int(tick)))

    def set_loop(self, start_tick: int | None, end_tick: int | None = None) -> None:
        """As :meth:`Scheduler.set_loop`."""
        self._cmd(SetLoop(start_tick, end_tick))

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
        self._cmd(SwitchOutput(spec, opts))

    def open_input(self, port: str, *, midi_api: str | None = None, thru: bool = True) -> None:
        """Open the MIDI keyboard ``port`` in the child: with ``thru`` it plays straight through the
        output there (no trip through this process); every message also lands on
        :attr:`input_events`, and news (opened, failed, gone, back) on :attr:`status` as InputReport."""
        self._cmd(OpenInput(port, midi_api, thru), check=False)

    def set_thru(self, thru: bool) -> None:
        """Play the keyboard through the output, or not."""
        self._cmd(SetThru(thru), check=False)

    def close_input(self) -> None:
        """Close the keyboard."""
        self._cmd(CloseInput(), check=False)

    def send_message(self, msg: mido.Message) -> None:
        """Send one message to the output now (a key preview, MIDI thru)."""
        self._cmd(SendMessage(msg), check=False)

    def panic(self) -> None:
        """Silence the output (all notes and sounds off)."""
        self._cmd(Panic(), check=False)

    @property
    def position_tick(self) -> int:
        """The playhead in ticks (asks the child; background mode: the latest report)."""
        if self._background:
            return self.last_position.tick
        return self.position()[0]

    @property
    def state(self) -> str:
        """``stopped``, ``playing`` or ``paused`` (asks the child; background mode: latest report)."""
        if self._background:
            return self.last_position.state
        return self.position()[1]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has finished or stopped (and its results arrived); False on timeout."""
        return self._finished.wait(timeout)

    def position(self, timeout: float = 1.0) -> tuple[int, str]:
        """(position_tick, state) asked of the child (blocking; not in background mode)."""
        self._cmd(AskPosition())
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty as exc:
            raise DeviceError("the player process does not answer") from exc
        return answer.tick, answer.state

    # -- internals ------------------------------------------------------------------------------
    def _cmd(self, cmd: Any, *, check: bool = True) -> None:
        if self._background:
            # counted and queued together, so the count matches the child's order of arrival
            with self._count_lock:
                if not isinstance(cmd, AskPosition):
                    self.commands_sent += 1
                if not self._closed:
                    self._outbox.put(cmd)
            return
        if check:
            self.wait_ready()
        elif not self._ready.is_set() or self._failure is not None:
            return
        with self._send_lock:
            if not isinstance(cmd, AskPosition):
                self.commands_sent += 1
            try:
                self._conn.send(cmd)
            except (OSError, EOFError) as exc:
                if check:
                    raise DeviceError(f"the player process has stopped: {exc}") from exc

    def _write(self) -> None:
        """Background mode: send queued commands once the child is ready (drop them if it failed)."""
        while True:
            items = [self._outbox.get()]
            while True:  # whatever queued up meanwhile goes in the same message
                try:
                    items.append(self._outbox.get_nowait())
                except queue.Empty:
                    break
            closing = _CLOSE in items
            if closing:
                items = [*items[: items.index(_CLOSE)], Close()]
                if not self._ready.is_set() or self._failure is not None:
                    return
            self._ready.wait()
            if self._failure is not None:
                continue
            try:
                self._conn.send(items[0] if len(items) == 1 else Batch(items))
            except (OSError, EOFError) as exc:
                logger.debug("player process gone, %d commands not sent: %s", len(items), exc)
            if closing:
                return

    def _got_ready(self, r: Ready) -> None:
        self.name, self.realtime = r.name, r.realtime
        self._ready.set()

    def _got_start_failed(self, r: StartFailed) -> None:
        self._failure = r.message
        self.status.put(OutputOpenError(r.message, r.spec))
        self._ready.set()

    def _got_finished(self, r: Finished) -> None:
        if r.run != self._run:
            return  # the end of an earlier run, overtaken by a newer play()
        self.played = r.played
        self.first_streamed_note_time = r.first_note_time
        self.late_shift_s = r.late_shift_s
        self.timing = r.timing
        self.status.put(PlaybackFinished(r.reason, r.position_tick))
        self._finished.set()

    def _got_position(self, r: Position) -> None:
        self.last_position = r
        if r.run == self._run and r.first_note_time is not None:
            self.first_streamed_note_time = r.first_note_time
        if r.asked:
            self._answers.put(r)

    def _got_switched(self, r: OutputSwitched) -> None:
        self.name = r.name
        self.status.put(r)

    def _read(self) -> None:
        while True:
            try:
                report = self._conn.recv()
            except (EOFError, OSError):
                break
            if isinstance(report, Closed):
                break
            handler = _handler(self._on_report, report)
            if handler is None:
                logger.warning("player process: unknown report %r", report)
            else:
                handler(report)
            if isinstance(report, StartFailed):
                break
        if not self._ready.is_set():
            self._failure = "the player process ended before opening its output"
            self._ready.set()
        self._finished.set()  # nobody waits forever on a process that is gone
