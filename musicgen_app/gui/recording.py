"""Recording from a MIDI keyboard: its messages (time-stamped where they arrived, in the player
process or a MidiInput) become notes at the playhead, drawn while they are played and added as one
undo step at the end. :class:`RecordController` is the window's Record button."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

from musicgen_app.core.edits import CompoundEdit, add_controls, add_notes
from musicgen_app.core.song import ControlEvent, Note, TempoMap

if TYPE_CHECKING:
    from musicgen_app.gui.main_window import MainWindow

logger = logging.getLogger(__name__)


SUSTAIN = 64


class NoteCollector:
    """Pairs note-ons with note-offs at ticks and keeps the pedal and other channel events, all on
    the track's channel (pure: no port, testable on its own)."""

    def __init__(self, channel: int = 0) -> None:
        self.channel = channel
        self.done: list[Note] = []
        #: sustain pedal, other controllers, pitch bend and aftertouch, as played
        self.controls: list[ControlEvent] = []
        self._open: dict[int, tuple[int, int]] = {}  # pitch -> (start_tick, velocity)
        self._pedal_down = False

    def feed(self, msg: Any, tick: int) -> None:
        """One MIDI message heard at ``tick``."""
        if msg.type == "control_change":
            self.controls.append(ControlEvent(tick, msg.type, msg.control, msg.value, self.channel))
            if msg.control == SUSTAIN:
                self._pedal_down = msg.value >= 64
            return
        if msg.type == "pitchwheel":
            self.controls.append(ControlEvent(tick, msg.type, 0, msg.pitch, self.channel))
            return
        if msg.type == "aftertouch":
            self.controls.append(ControlEvent(tick, msg.type, 0, msg.value, self.channel))
            return
        if msg.type == "polytouch":
            self.controls.append(ControlEvent(tick, msg.type, msg.note, msg.value, self.channel))
            return
        if msg.type == "note_on" and msg.velocity > 0:
            if msg.note in self._open:
                self._close(msg.note, tick)
            self._open[msg.note] = (tick, msg.velocity)
        elif msg.type in ("note_off", "note_on"):
            self._close(msg.note, tick)

    def _close(self, pitch: int, tick: int) -> None:
        start, vel = self._open.pop(pitch, (None, 0))
        if start is not None:
            self.done.append(Note(start, pitch, max(tick, start + 1), max(1, vel), self.channel))

    def notes(self, now_tick: int) -> list[Note]:
        """Finished notes plus the ones still held, drawn up to ``now_tick``."""
        held = [Note(s, p, max(now_tick, s + 1), max(1, v), self.channel) for p, (s, v) in self._open.items()]
        return self.done + held

    def finish(self, now_tick: int) -> list[Note]:
        """Close every held note (and a held pedal) at ``now_tick`` and return all notes."""
        for pitch in list(self._open):
            self._close(pitch, now_tick)
        if self._pedal_down:
            self.controls.append(ControlEvent(now_tick, "control_change", SUSTAIN, 0, self.channel))
            self._pedal_down = False
        self.controls.sort()
        return sorted(self.done)


class Recorder:
    """Keyboard messages (from :attr:`PlaybackController.keyboard_events`) into a NoteCollector.

    The keyboard itself stays open all the time (thru lets the musician play along); a Recorder
    only places what arrives while it records, through the song's tempo map.
    """

    def __init__(self, channel: int, tempo_map: TempoMap | None = None) -> None:
        self.collector = NoteCollector(channel)
        #: the song's tempo map: a message heard s seconds before the playhead's tick is placed
        #: at the tick s seconds earlier (120 BPM at 480 ticks per quarter when not given)
        self.tempo_map = tempo_map if tempo_map is not None else TempoMap([], 480)

    def feed(self, items: list[tuple[float, Any]], now_tick: int, at: float | None = None) -> list[Note]:
        """Place messages ``(time, msg)``; returns what to draw.

        ``now_tick`` is the playhead at ``at`` (``time.perf_counter()``; default: now); a message
        is placed that many seconds before it as it came earlier.
        """
        now = time.perf_counter() if at is None else at
        now_s = self.tempo_map.tick_to_seconds(now_tick)
        for t, msg in items:
            tick = max(0, round(self.tempo_map.seconds_to_tick(now_s - (now - t))))
            self.collector.feed(msg, tick)
        return self.collector.notes(now_tick)

    def finish(self, items: list[tuple[float, Any]], now_tick: int, at: float | None = None) -> list[Note]:
        """Stop recording with the last messages; the recorded notes (held ones end now)."""
        self.feed(items, now_tick, at)
        return self.collector.finish(now_tick)


class RecordController(QObject):
    """Record from the MIDI keyboard into the window's active track while the transport runs."""

    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.win = win
        self._record: Recorder | None = None

    @property
    def active(self) -> bool:
        """Whether a recording is running."""
        return self._record is not None

    def discard(self) -> None:
        """Drop a running recording without adding its notes (the window closes)."""
        self._record = None

    def stop(self) -> None:
        """End a running recording (its notes are added), else nothing."""
        if self._record is not None:
            self.toggle_record()

    def toggle_record(self) -> None:
        """Record from the MIDI keyboard into the active track while playing."""
        if self._record is not None:
            rec, self._record = self._record, None
            notes = rec.finish(self.win.playback.drain_keyboard(), *self.win.playback.position_sample())
            controls = rec.collector.controls
            self.win.canvas.show_recording([])
            self.win.act_record.setChecked(False)
            self.win.playback.stop()
            track = self.win.doc.active_track
            edit: Any = add_notes(track, notes)
            if controls:  # the pedal and controllers as played, in the same undo step
                edit = CompoundEdit((edit, add_controls(track, controls)))
            if (notes or controls) and self.win.apply_edit(edit, "Record notes"):
                self.win.files.autosave_soon()
            return
        port = self.win.settings.input_port
        if not port:
            self.win.act_record.setChecked(False)
            self.win.show_error("Record", "Choose a MIDI keyboard in Settings ▸ Devices first.")
            return
        if not self.win.playback.keyboard_port:  # not open (yet, or any more): try (again)
            self.win.playback.open_keyboard(port, self.win.settings.thru)
        self.win.playback.drain_keyboard()  # what was played before Record is not recorded
        self._record = Recorder(self.win.active_channel(), self.win.doc.song.tempo_map())
        self.win.act_record.setChecked(True)
        # The transport runs on (past the song's end) until recording stops.
        self.win.canvas.reveal_whole_take()
        song = self.win.doc.snapshot()
        start = int(self.win.canvas.playhead_tick)
        self.win.playback.play_stream(song, start, start + 64 * song.ticks_per_bar(start))
        logger.info("recording from %s at tick %d", port, start)

    def keyboard_events(self, batch: list[Any]) -> None:
        self.win.roll.keyboard.show_midi([msg for _, msg in batch])
        rec = self._record
        if rec is not None:
            self.win.canvas.show_recording(rec.feed(batch, *self.win.playback.position_sample()))

    def playhead_moved(self, tick: float) -> None:
        rec = self._record
        if rec is not None:  # held notes grow with the playhead
            self.win.canvas.show_recording(rec.feed([], *self.win.playback.position_sample()))
