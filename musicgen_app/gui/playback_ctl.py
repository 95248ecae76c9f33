"""The Qt adapter over ``playback``: owns the output and the scheduler, turns their state into
signals (Frescobaldi's three layers: pure player, thin adapter, widgets that only listen).

Opening a device can take a while (FluidSynth loads a SoundFont, a MIDI port may hang), so it
happens on a task thread; until it is ready, notes go to a silent output. A GUI timer reads the
scheduler's position and status queue; nothing here blocks the UI thread.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterable
from typing import Any

import mido
from PySide6.QtCore import QObject, QTimer, Signal

from musicgen_app.core.song import DRUM_CHANNEL, Note, Song, Track
from musicgen_app.gui.settings import AppSettings
from musicgen_app.gui.tasks import TaskRunner

logger = logging.getLogger(__name__)

POLL_MS = 30
PREVIEW_MS = 350
CLICK_HIGH, CLICK_LOW = 76, 77  # hi / lo wood block on the GM drum channel


def metronome_track(song: Song, end_tick: int) -> Track:
    """A drum track clicking every beat up to ``end_tick`` (accent on the downbeat)."""
    notes: list[Note] = []
    for bar in song.bar_starts(end_tick):
        ts = song.time_signature_at(bar)
        beat = song.resolution * 4 // ts.denominator
        for k in range(ts.numerator):
            t = bar + k * beat
            if t >= end_tick:
                break
            pitch = CLICK_HIGH if k == 0 else CLICK_LOW
            notes.append(Note(t, pitch, t + beat // 4, 110 if k == 0 else 80, DRUM_CHANNEL))
    return Track(name="Metronome", channel=DRUM_CHANNEL, is_drum=True, notes=notes)


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

    def __init__(self, tasks: TaskRunner, output: Any = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from musicgen_app.playback.outputs import NullOutput
        from musicgen_app.playback.scheduler import Scheduler

        self._tasks = tasks
        self._output = output if output is not None else NullOutput()
        self._owns_output = output is None
        self.scheduler = Scheduler(self._output)
        self.metronome = False
        self.loop_enabled = False
        self._playing = False
        self._preview_off: dict[int, QTimer] = {}
        self._opening = 0
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

    def open_output(self, settings: AppSettings) -> None:
        """Open the configured output in the background and switch to it when ready."""
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
            self.error.emit(f"No sound output: {exc}")
            self.output_changed.emit("no output")

    def set_output(self, out: Any, *, owned: bool = False) -> None:
        """Switch to ``out`` (closing the previous output if this controller opened it)."""
        old, old_owned = self._output, self._owns_output
        self.scheduler.set_output(out)
        self._output, self._owns_output = out, owned
        if old_owned and old is not out:
            old.close()
        self.output_changed.emit(self.output_name)

    # -- transport ----------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        """Whether the scheduler is playing."""
        return self._playing

    @property
    def position_tick(self) -> int:
        """Where the playhead is."""
        return int(self.scheduler.position_tick)

    def _with_metronome(self, song: Song, end_tick: int) -> Song:
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
        self._set_playing(True)

    def play_stream(self, song: Song, start_tick: int, end_tick: int, lead_in_ticks: int = 0) -> None:
        """Play ``song`` from ``start_tick - lead_in`` and keep going for streamed notes."""
        song = self._with_metronome(song, end_tick)
        self.scheduler.set_loop(None)
        self.scheduler.play(song, max(0, int(start_tick - lead_in_ticks)), streaming=True)
        self._set_playing(True)

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
        self._set_playing(False)

    def seek(self, tick: int) -> None:
        """Move the playhead."""
        self.scheduler.seek(tick)
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
        from musicgen_app.playback.scheduler import PlaybackError, PlaybackFinished

        while True:
            try:
                item = self.scheduler.status.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, PlaybackError):
                self.error.emit(f"{item.output_name} failed and was switched off: {item.message}")
            elif isinstance(item, PlaybackFinished):
                self._set_playing(False)
        if self._playing:
            if self.scheduler.state == "stopped":
                self._set_playing(False)
            self.position_changed.emit(float(self.scheduler.position_tick))

    def close(self) -> None:
        """Stop, end the scheduler thread and close the output we opened."""
        self._timer.stop()
        for t in self._preview_off.values():
            t.stop()
        self._preview_off.clear()
        self.scheduler.close()
        if self._owns_output:
            self._output.close()
