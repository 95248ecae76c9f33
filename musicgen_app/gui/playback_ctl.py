"""The Qt adapter over ``playback``: owns the output and the scheduler, turns their state into
signals (Frescobaldi's three layers: pure player, thin adapter, widgets that only listen).

The app plays through a :class:`~musicgen_app.playback.player_process.PlayerProcess`: the output
and the scheduler live in a child process with an interpreter lock of their own, so neither the
model writing a continuation nor the piano roll painting can delay a note. Commands are queued to
it (nothing waits on the child, not even while it opens its device); until it is started, notes
go to a silent in-process output. The child pushes the playhead while it plays; a GUI timer reads
the latest report and the status queue (no round trip).
An output object handed in (tests, embedding) is driven in-process by a
:class:`~musicgen_app.playback.scheduler.Scheduler` thread instead; so is the ``recording`` spec.
If the child dies, the next poll reports it and starts a new one. When the output dies under it
(:class:`~musicgen_app.playback.scheduler.OutputFailed`) playback has stopped; :attr:`output_failed`
says so, and the next :meth:`open_output` (Reconnect) starts a fresh player process.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import mido
from PySide6.QtCore import QObject, QTimer, Signal

from musicgen_app.core.song import Song
from musicgen_app.gui.settings import AppSettings
from musicgen_app.gui.tasks import TaskRunner
from musicgen_app.playback.metronome import metronome_track
from musicgen_app.playback.mix import audible_song
from musicgen_app.playback.transport import Transport

if TYPE_CHECKING:
    from musicgen_app.playback.player_process import PlayerProcess

logger = logging.getLogger(__name__)

POLL_MS = 30
DEVICES_HINT = " (In the app: choose another output in Settings > Devices.)"
MAX_RESTARTS = 3  # player processes started again after a crash, per app run
PREVIEW_MS = 350


def open_configured_output(settings: AppSettings) -> Any:
    """Open the output the settings name (runs on a task thread; raises DeviceError)."""
    from musicgen_app.playback import outputs

    spec = (settings.effective_output() or "fluidsynth").strip()
    if spec.lower() in ("none", "off", "silent"):
        return outputs.NullOutput()
    if spec.lower() == "recording":
        return outputs.RecordingOutput()
    if spec.lower() in ("fluidsynth", "synth", ""):
        return outputs.FluidSynthOutput(
            soundfont=settings.soundfont or None,
            driver=settings.audio_driver or None,
            buffer_size=settings.buffer_size,
        )
    return outputs.open_output(spec)


class PlaybackController(QObject):
    """Play, stop, stream and preview notes through one output."""

    position_changed = Signal(float)
    state_changed = Signal(str)  # "playing" / "stopped"
    output_changed = Signal(str)  # the output's name
    error = Signal(str)
    #: the output died while in use (one line); playback has stopped (see gui.output_failure)
    output_failed = Signal(str)
    #: batches of (time.perf_counter() time, mido.Message) from the MIDI keyboard
    keyboard_events = Signal(list)
    keyboard_changed = Signal(str)  # the open keyboard's port name ("" when none)
    #: ``time.perf_counter`` time the player sent the first streamed note of a play_stream
    first_note_sent = Signal(float)

    def __init__(self, tasks: TaskRunner, output: Any = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from musicgen_app.playback.outputs import NullOutput
        from musicgen_app.playback.scheduler import Scheduler

        self._tasks = tasks
        self._output = output if output is not None else NullOutput()
        self._owns_output = output is None
        self._in_process_only = output is not None
        self._local_scheduler = Scheduler(self._output)
        #: what plays: the player process once started, else the in-process scheduler
        self.scheduler: Transport = self._local_scheduler
        self._player: PlayerProcess | None = None
        self._player_name = ""
        self._settings: AppSettings | None = None
        self._restarts = 0
        self._play_seq = 0
        self._play_anchor: tuple[int, float] = (0, time.perf_counter())  # (tick, when) of the last play
        #: ask the player process for (deadline, sent) of every event (benchmarks)
        self.record_timing = False
        self._keyboard: tuple[str, bool] | None = None  # (port, thru) asked for
        self._keyboard_port = ""  # the port actually open
        self._local_input: Any = None  # a MidiInput here, when playing in-process
        #: callables handed every keyboard message on the thread it arrives on (add_keyboard_tap);
        #: the one list is shared with the player's and the local input's queues
        self._taps: list[Callable[[tuple[float, Any]], None]] = []
        self._kb_ticket = 0
        self.metronome = False
        self.loop_enabled = False
        self._playing = False
        self._await_first = False  # a play_stream whose first note has not been reported yet
        self._preview_off: dict[int, QTimer] = {}
        self._opening = 0
        self._output_died = False
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._timer.start()

    # -- output -------------------------------------------------------------------------------
    @property
    def output(self) -> Any:
        """The current output."""
        return self._output

    @property
    def output_name(self) -> str:
        """A readable name of the current output."""
        return str(getattr(self._output, "name", type(self._output).__name__))

    @property
    def player(self) -> Any:
        """The PlayerProcess the app plays through (None when playing in-process)."""
        return self._player

    def open_output(self, settings: AppSettings) -> None:
        """Open the configured output in the background and switch to it when ready."""
        spec = (settings.effective_output() or "fluidsynth").strip()
        if not self._in_process_only and spec.lower() != "recording":
            self._open_in_player(spec, settings)
            return
        self._opening += 1
        ticket = self._opening
        self._tasks.submit(
            lambda: open_configured_output(settings),
            lambda out: self._opened(ticket, out),
            lambda exc: self._open_failed(ticket, exc),
            name="musicgen-open-output",
        )

    def _opened(self, ticket: int, out: Any) -> None:
        if ticket != self._opening:  # a newer request won
            out.close()
            return
        self.set_output(out, owned=True)

    def _open_failed(self, ticket: int, exc: BaseException) -> None:
        if ticket == self._opening:
            self.error.emit(f"No sound output: {exc}{DEVICES_HINT}")
            self.output_changed.emit("no output")

    def _open_in_player(self, spec: str, settings: AppSettings) -> None:
        from musicgen_app.playback.player_process import PlayerOutput, PlayerProcess

        self._settings = settings
        opts: dict[str, Any] = {
            "soundfont": settings.soundfont or None,
            "driver": settings.audio_driver or None,
            "buffer_size": settings.buffer_size,
        }
        if self._player is not None and self._player.alive and not self._output_died:
            self._player.set_output(spec, **opts)  # the child switches; a failure keeps the old one
            return
        self._output_died = False  # after a dead output (a JACK server gone): a fresh process
        old_player = self._player
        if self.playing:
            self.stop()
        self._player = PlayerProcess(spec, background=True, record_timing=self.record_timing, **opts)
        self._player.input_events.taps = self._taps
        if self._local_input is not None:  # the keyboard moves into the player
            self._local_input.close()
            self._local_input = None
        if self._keyboard is not None:
            self._player.open_input(self._keyboard[0], thru=self._keyboard[1])
        self._player_name = ""
        self.scheduler = self._player
        old, old_owned = self._output, self._owns_output
        self._output, self._owns_output = PlayerOutput(self._player), False
        if old_owned:
            old.close()
        if old_player is not None:
            old_player.close()
        logger.info("player process started for output %r", spec)

    def set_output(self, out: Any, *, owned: bool = False) -> None:
        """Switch to ``out`` (closing the previous output if this controller opened it)."""
        old, old_owned = self._output, self._owns_output
        self._local_scheduler.set_output(out)  # an output object plays in-process
        self._output, self._owns_output = out, owned
        if self._local_input is not None and self._keyboard is not None and self._keyboard[1]:
            self._local_input.set_thru(out)
        if old_owned and old is not out:
            old.close()
        self.output_changed.emit(self.output_name)

    # -- MIDI keyboard ------------------------------------------------------------------------
    @property
    def keyboard_port(self) -> str:
        """The MIDI keyboard's port name while it is open, else ""."""
        return self._keyboard_port

    def open_keyboard(self, port: str, thru: bool = True) -> None:
        """Open the MIDI keyboard ``port`` (in the background), thru to the output when ``thru``.

        With a player process the keyboard is opened there, so thru never waits on this process.
        Its messages arrive as :attr:`keyboard_events`; news as :attr:`error` messages.
        """
        self.close_keyboard()
        if not port:
            return
        self._keyboard = (port, thru)
        if self._player is not None:
            self._player.open_input(port, thru=thru)
            return
        from musicgen_app.playback.midi_input import MidiInput

        self._kb_ticket += 1
        ticket, out = self._kb_ticket, self._output if thru else None
        self._tasks.submit(
            lambda: MidiInput(port, thru=out),
            lambda inp: self._local_input_opened(ticket, inp),
            lambda exc: self._keyboard_failed(port, str(exc)) if ticket == self._kb_ticket else None,
            name="musicgen-open-keyboard",
        )

    def add_keyboard_tap(self, tap: Callable[[tuple[float, Any]], None]) -> None:
        """Hand every keyboard message ``(time, msg)`` to ``tap`` as it arrives, on the thread it
        arrives on (not the UI thread: a jam hears a key at once, whatever the window is doing).
        The messages still come as :attr:`keyboard_events` too. ``tap`` must be quick."""
        if tap not in self._taps:
            self._taps.append(tap)

    def remove_keyboard_tap(self, tap: Callable[[tuple[float, Any]], None]) -> None:
        """Stop handing keyboard messages to ``tap``."""
        if tap in self._taps:
            self._taps.remove(tap)

    def set_thru(self, thru: bool) -> None:
        """Play the keyboard through the output, or not."""
        if self._keyboard is not None:
            self._keyboard = (self._keyboard[0], thru)
        if self._player is not None:
            self._player.set_thru(thru)
        elif self._local_input is not None:
            self._local_input.set_thru(self._output if thru else None)

    def close_keyboard(self) -> None:
        """Close the MIDI keyboard."""
        self._keyboard = None
        self._kb_ticket += 1
        if self._player is not None:
            self._player.close_input()
        if self._local_input is not None:
            self._local_input.close()
            self._local_input = None
        if self._keyboard_port:
            self._keyboard_port = ""
            self.keyboard_changed.emit("")

    def drain_keyboard(self) -> list[tuple[float, Any]]:
        """The keyboard messages that arrived since the last call (also emitted on a timer)."""
        source = self._player.input_events if self._player is not None else None
        if source is None and self._local_input is not None:
            source = self._local_input.queue
        batch: list[tuple[float, Any]] = []
        while source is not None:
            try:
                batch.append(source.get_nowait())
            except queue.Empty:
                break
        return batch

    def _local_input_opened(self, ticket: int, inp: Any) -> None:
        if ticket != self._kb_ticket:  # closed or replaced meanwhile
            inp.close()
            return
        self._local_input = inp
        inp.queue.taps = self._taps
        self._keyboard_opened(inp.port_name)

    def _keyboard_opened(self, port: str) -> None:
        self._keyboard_port = port
        self.keyboard_changed.emit(port)
        logger.info("MIDI keyboard %s open", port)

    def _keyboard_failed(self, port: str, message: str) -> None:
        self._keyboard_port = ""
        self.keyboard_changed.emit("")
        self.error.emit(f"Cannot open the MIDI keyboard {port!r}: {message}{DEVICES_HINT}")

    def _keyboard_news(self, kind: str, port: str, message: str) -> None:
        if kind == "opened":
            self._keyboard_opened(port)
        elif kind == "failed":
            self._keyboard_failed(port, message)
        else:  # disconnected, reconnected, thru-error
            self.error.emit(message)

    # -- transport ----------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        """Whether the scheduler is playing."""
        return self._playing

    def position_sample(self) -> tuple[int, float]:
        """(playhead tick, ``time.perf_counter()`` when it was there).

        With a player process: its latest report, or, until one about the current run has come
        back, where and when the run was started.
        """
        if self._player is not None:
            pos = self._player.last_position
            if pos.seq >= self._play_seq:
                return int(pos.tick), float(pos.time)
            return self._play_anchor
        return int(self.scheduler.position_tick), time.perf_counter()

    def _started(self, start_tick: int) -> None:
        self._await_first = False
        self._set_playing(True)
        self._play_anchor = (int(start_tick), time.perf_counter())
        if self._player is not None:
            self._play_seq = self._player.commands_sent

    def _with_metronome(self, song: Song, end_tick: int) -> Song:
        song = audible_song(song)  # the track headers' mute, solo and volume
        if not self.metronome:
            return song
        song.tracks = [*song.tracks, metronome_track(song, end_tick)]
        return song

    def play(self, song: Song, start_tick: int = 0) -> None:
        """Play ``song`` (a snapshot) from ``start_tick``, looping when the loop is on."""
        loop_end = song.loop[1] if song.loop else 0
        click_end = max(song.end_tick, loop_end, int(start_tick)) + song.ticks_per_bar()
        song = self._with_metronome(song, click_end)
        if self.loop_enabled and song.loop:
            self.scheduler.set_loop(*song.loop)
            if not song.loop[0] <= start_tick < song.loop[1]:
                start_tick = song.loop[0]
        else:
            self.scheduler.set_loop(None)
        self.scheduler.play(song, int(start_tick))
        self._started(int(start_tick))

    def play_stream(self, song: Song, start_tick: int, end_tick: int, lead_in_ticks: int = 0) -> None:
        """Play ``song`` from ``start_tick - lead_in`` and keep going for streamed notes."""
        song = self._with_metronome(song, end_tick)
        self.scheduler.set_loop(None)
        first = max(0, int(start_tick - lead_in_ticks))
        self.scheduler.play(song, first, streaming=True)
        self._started(first)
        self._await_first = True

    def append(self, events: Iterable[Any]) -> int:
        """Schedule streamed notes (NoteEvents of a session)."""
        return self.scheduler.append_notes(events)

    def end_stream(self) -> None:
        """No more streamed notes: stop after the last."""
        self.scheduler.end_stream()

    def cancel_session(self, session_id: int) -> None:
        """Drop and silence a session's notes."""
        self.scheduler.cancel_session(session_id)

    def stop(self) -> None:
        """Stop and silence everything (panic)."""
        self.scheduler.stop()
        self._await_first = False
        self._set_playing(False)

    def seek(self, tick: int) -> None:
        """Move the playhead."""
        self.scheduler.seek(tick)
        if self._player is not None:
            self._play_seq = self._player.commands_sent  # older position reports are stale
            self._play_anchor = (int(tick), time.perf_counter())
        self.position_changed.emit(float(tick))

    def set_loop(self, loop: tuple[int, int] | None) -> None:
        """Loop region changed (applies at once when playing with loop on)."""
        if self.loop_enabled and loop:
            self.scheduler.set_loop(*loop)
        else:
            self.scheduler.set_loop(None)

    def preview_note(self, pitch: int, velocity: int = 100, channel: int = 0) -> None:
        """Sound ``pitch`` briefly (a key click): note-on now, note-off after a moment."""
        try:
            self._output.send(mido.Message("note_on", channel=channel, note=pitch, velocity=velocity))
        except Exception as exc:  # an output failure is a message, never a crash
            self.error.emit(f"Cannot sound the note: {exc}")
            return
        old = self._preview_off.pop(pitch, None)
        if old is not None:
            old.stop()
        t = QTimer(self)
        t.setSingleShot(True)
        t.timeout.connect(lambda: self.release_note(pitch, channel))
        t.start(PREVIEW_MS)
        self._preview_off[pitch] = t

    def release_note(self, pitch: int, channel: int = 0) -> None:
        """End a previewed note."""
        self._preview_off.pop(pitch, None)
        try:
            self._output.send(mido.Message("note_off", channel=channel, note=pitch, velocity=0))
        except Exception as exc:
            logger.debug("note-off failed: %s", exc)

    def _set_playing(self, playing: bool) -> None:
        if playing != self._playing:
            self._playing = playing
            self.state_changed.emit("playing" if playing else "stopped")

    def _poll(self) -> None:
        from musicgen_app.playback.player_process import InputReport, OutputOpenError, OutputSwitched
        from musicgen_app.playback.scheduler import OutputFailed, PlaybackError, PlaybackFinished

        while True:
            try:
                item = self.scheduler.status.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, InputReport):
                self._keyboard_news(item.kind, item.port, item.message)
            elif isinstance(item, OutputOpenError):
                self.error.emit(f"No sound output: {item.message}{DEVICES_HINT}")
                if self._player is not None and not self._player.ready:
                    self.output_changed.emit("no output")
                elif self._player is not None:  # a switch failed: the old output plays on
                    self.output_changed.emit(self._player.name)
            elif isinstance(item, OutputSwitched):
                self._player_name = item.name
                self.output_changed.emit(item.name)
            elif isinstance(item, OutputFailed):
                self._output_died = True  # the next open_output starts a fresh player process
                self._set_playing(False)
                self.output_failed.emit(item.message)
            elif isinstance(item, PlaybackError):
                self.error.emit(f"{item.message}{DEVICES_HINT}")
            elif isinstance(item, PlaybackFinished):
                self._set_playing(False)
        if self._local_input is not None:
            while True:
                try:
                    news = self._local_input.status.get_nowait()
                except queue.Empty:
                    break
                self._keyboard_news(news.kind, news.port, news.message)
        batch = self.drain_keyboard()
        if batch:
            self.keyboard_events.emit(batch)
        if self._await_first and self.scheduler.first_streamed_note_time is not None:
            self._await_first = False
            self.first_note_sent.emit(float(self.scheduler.first_streamed_note_time))
        if self._player is not None:
            self._poll_player(self._player)
        elif self._playing:
            if self.scheduler.state == "stopped":
                self._set_playing(False)
            self.position_changed.emit(float(self.scheduler.position_tick))

    def _poll_player(self, player: PlayerProcess) -> None:
        if player.ready and player.name != self._player_name:
            self._player_name = player.name
            self.output_changed.emit(player.name)
        if not player.alive and player.ready:  # it had opened its output, then died
            self._player_died(player)
            return
        if self._playing:
            pos = player.last_position  # pushed by the player while it plays
            if pos.seq >= self._play_seq:  # reported after the last play/seek reached the player
                if pos.state == "stopped":
                    self._set_playing(False)
                self.position_changed.emit(float(pos.tick))

    def _player_died(self, player: PlayerProcess) -> None:
        self._set_playing(False)
        settings = self._settings
        if self._restarts >= MAX_RESTARTS or settings is None:
            self.error.emit("The player process stopped; playback is off until the output is chosen again.")
            player.close()
            self._player = None
            self.scheduler = self._local_scheduler
            self._output, self._owns_output = self._local_scheduler.output, False
            self.output_changed.emit("no output")
            return
        self._restarts += 1
        self.error.emit("The player process stopped unexpectedly; starting it again.")
        logger.warning("player process died (exit code %s); restarting", player.exitcode)
        self._open_in_player((settings.effective_output() or "fluidsynth").strip(), settings)

    def close(self) -> None:
        """Stop, end the scheduler thread and close the output we opened."""
        self._timer.stop()
        for t in self._preview_off.values():
            t.stop()
        self._preview_off.clear()
        if self._local_input is not None:
            self._local_input.close()
            self._local_input = None
        if self._player is not None:
            self._player.close()
        self._local_scheduler.close()
        if self._owns_output:
            self._output.close()
