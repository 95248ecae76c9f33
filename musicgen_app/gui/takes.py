"""The take lifecycle: Continue, the takes list, audition, accept, reject, Again, and what the
project remembers of them.

:class:`TakesController` owns the live path's UI side: on Continue it starts the player (at the
lead-in, or at the take itself when the lead-in is none) with the first note prepared before the
key press, then starts the generation thread, which sends every further note to the player itself
(:mod:`musicgen_app.gui.generation`). The roll learns what to draw through the canvas's overlay
API (``show_take``, ``update_take``, ``reveal_take_to``, ``clear_take``); "First note" is the time
from the key press to the player sending the take's first note.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QMessageBox

from musicgen_app.core.song import Song
from musicgen_app.gui import accompany_action, editor_setup, fill_action
from musicgen_app.gui.generation import ContinueRequest

if TYPE_CHECKING:
    from musicgen_app.gui.main_window import MainWindow

logger = logging.getLogger(__name__)

PREPARE_AFTER_CHANGE_MS = 300  # the next take is prepared this long after the last change


def lead_in_ticks(song: Song, start_tick: int, bars: int) -> int:
    """Ticks of sketch played before a take starting at ``start_tick``: ``bars`` bars (0: none),
    never before the song's start."""
    return max(0, min(int(start_tick), int(bars) * song.ticks_per_bar(int(start_tick))))


class TakesController(QObject):
    """Continue and the takes of one window (see the module docstring)."""

    #: ms from the Continue key press to the player sending the take's first note
    first_note_ms = Signal(float)

    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.win = win
        self._press_time: float | None = None  # the Continue key press whose first note is awaited
        #: perf_counter time of the last Continue key press (the action handler's start)
        self.last_press_time: float | None = None
        #: ms from the last Continue key press to the player sending the take's first note
        self.last_first_note_ms: float | None = None
        self._closed = False
        self._doc_serial = 0  # which document the window shows (prepared takes name it)
        self._prepare_timer = QTimer(self)
        self._prepare_timer.setSingleShot(True)
        self._prepare_timer.setInterval(PREPARE_AFTER_CHANGE_MS)
        self._prepare_timer.timeout.connect(self._prepare)

    def connect_signals(self) -> None:
        """Follow the generation controller, the player and the Continue panel."""
        w, gen, p = self.win, self.win.gen, self.win.panel
        gen.on_stream = self._streamed
        gen.on_cancel_session = w.playback.cancel_session
        gen.take_started.connect(self._takes_changed)
        gen.take_updated.connect(self._take_updated)
        gen.take_finished.connect(self._takes_changed)
        gen.run_finished.connect(self._run_finished)
        w.playback.first_note_sent.connect(self._first_note_sent)
        p.continue_requested.connect(self.continue_)
        p.accept_requested.connect(self.accept_take)
        p.reject_requested.connect(self.reject_take)
        p.regenerate_requested.connect(self.regenerate)
        p.take_selected.connect(self.select_take)
        for changed in (
            p.temperature_changed,
            p.bars.valueChanged,
            p.seed.valueChanged,
            p.random_seed.toggled,
            p.key_lock.currentIndexChanged,
            p.voices.currentIndexChanged,
        ):
            changed.connect(self.prepare_soon)

    def close(self) -> None:
        """Prepare nothing more (the window closes)."""
        self._closed = True
        self._prepare_timer.stop()

    def show_document_takes(self) -> None:
        """A document was attached: no takes shown, and a take prepared for the old one is gone."""
        self._doc_serial += 1
        self.win.gen.take_prepared(())
        self.win.canvas.clear_take()
        self.win.gen.takes = []
        self.win.panel.show_takes([], -1)
        self.win.panel.set_has_take(False)

    def continue_(self, again: bool = False) -> None:
        """Ctrl+Return: continue the active track from its end (or from the end of the loop).

        With ``again`` (R) while takes are listed: one more take of the same continuation (same
        sketch, same start), added to the list."""
        self._press_time = self.last_press_time = time.perf_counter()  # "First note" counts from here
        model = self.win.panel.model_name()
        if not model:
            self.win.show_error(
                "Continue", "There is no model to continue with. Train one or load a checkpoint."
            )
            return
        if editor_setup.continue_blocked(self.win):  # a drum track, and no model plays drums
            return
        self.win.stop_all()
        again = again and bool(self.win.gen.takes) and self.win.gen.request is not None
        req = self.request(model, again)
        song, start, bars = req.song, req.start_tick, req.bars
        # Sound first: the player starts (at the lead-in, or at the take itself) with the first
        # note when it was prepared before the key press; the generation thread sends it each
        # further note; the roll draws copies.
        prepared = None if again else self.win.gen.take_prepared(self.prepare_key(req))
        lead = lead_in_ticks(song, int(start), self.win.settings.lead_in_bars)
        end = int(start) + bars * song.ticks_per_bar(int(start))
        self.win.playback.play_stream(
            self.win.doc.snapshot() if again else song, int(start), end, lead_in_ticks=lead
        )
        if prepared is not None:
            self.win.playback.append(prepared.notes)
        self.win.gen.start(req, keep_takes=again, live=self.win.playback.scheduler, prepared=prepared)
        self.win.canvas.show_take([], reveal_from=float(start - lead))
        self._takes_changed()
        logger.info("continue: model %s from tick %d, %d bars", model, start, bars)

    def request(self, model: str, again: bool = False) -> ContinueRequest:
        """What Continue would generate now: the active track from its end (next sixteenth) or
        from the end of the loop; with ``again``, the previous request's sketch and start."""
        prev = self.win.gen.request
        song = self.win.doc.snapshot()
        track = self.win.doc.active_track
        if again and prev is not None:
            song, track, start = prev.song, prev.track, prev.start_tick
        elif song.loop:
            start = song.loop[1]
        else:  # the end of the sketch, on the next sixteenth
            step = max(1, song.resolution // 4)
            start = -(-song.tracks[track].end_tick // step) * step
        seed = self.win.panel.seed_value()
        if again and seed is not None:  # a fixed seed: the next one, so the take differs
            seed = max([seed - 1, *(t.seed for t in self.win.gen.takes)]) + 1
        return ContinueRequest(
            model=model,
            song=song,
            track=track,
            start_tick=int(start),
            bars=self.win.panel.bars.value(),
            temperature=self.win.panel.temperature_value(),
            variations=1 if again else self.win.panel.variations.value(),
            seed=seed,
            key_lock=self.win.panel.key_lock_value(),
            voices=self.win.panel.voices_value(),
        )

    def prepare_soon(self, *_: object) -> None:
        """Prepare the first take of the next Continue shortly (the sketch, the model or a
        Continue setting changed): the sketch read into the model, the first note sampled."""
        self._prepare_timer.start()

    def prepare_key(self, req: ContinueRequest) -> tuple:
        """What a prepared take must match: this sketch's version and the Continue settings."""
        settings = (
            req.model,
            req.track,
            req.start_tick,
            req.bars,
            req.temperature,
            req.seed,
            req.key_lock,
            req.voices,
        )
        return (self._doc_serial, self.win.doc.version, *settings)

    def _prepare(self) -> None:
        model = self.win.panel.model_name()
        if self._closed or not model or self.win.gen.running or not self.win.doc.song.tracks:
            return
        if self.win.doc.song.tracks[self.win.doc.active_track].is_drum:
            return
        req = self.request(model)
        self.win.gen.prepare(req, self.prepare_key(req))

    def set_lead_in(self, bars: int) -> None:
        """How many bars of the sketch Continue plays before the take (0, 1 or 2); remembered."""
        from musicgen_app.gui.settings import LEAD_IN_CHOICES

        if bars not in LEAD_IN_CHOICES:
            raise ValueError(f"lead-in must be one of {LEAD_IN_CHOICES} bars")
        self.win.settings.lead_in_bars = bars
        self.win.lead_in_actions[bars].setChecked(True)
        self.win.settings.save()

    def _first_note_sent(self, sent_time: float) -> None:
        """The player sent the take's first note: show how long after the key press."""
        pressed, self._press_time = self._press_time, None
        if pressed is None:
            return  # an audition, not a Continue
        self.last_first_note_ms = (sent_time - pressed) * 1000
        self.first_note_ms.emit(self.last_first_note_ms)
        logger.info("continue: first note %.1f ms after the key press", self.last_first_note_ms)

    def _streamed(self, events: list[Any]) -> None:
        """Notes of the live take reached the UI thread (they went to the player already): draw."""
        live = self.win.gen.run_base  # the run's first take streams (later variations do not)
        if self.win.gen.current == live and live < len(self.win.gen.takes):
            self.win.canvas.update_take(self.win.gen.takes[live].notes)

    def _take_updated(self, idx: int) -> None:
        if idx == self.win.gen.current and 0 <= idx < len(self.win.gen.takes):
            self.win.canvas.update_take(self.win.gen.takes[idx].notes)
        self._takes_changed()

    def refresh_list(self) -> None:
        """Show the takes list and the take buttons as the generation controller has them."""
        self._takes_changed()

    def _takes_changed(self, *_: object) -> None:
        self.win.panel.show_takes([t.label() for t in self.win.gen.takes], self.win.gen.current)
        self.win.panel.set_has_take(self.win.gen.current_take() is not None or self.win.gen.running)

    def _run_finished(self) -> None:
        self.prepare_soon()  # the next Continue's first take
        self.win.playback.end_stream()
        self._takes_changed()
        live = self.win.gen.run_base
        take = self.win.gen.takes[live] if live < len(self.win.gen.takes) else None
        if take is not None:
            logger.info("continue: take %d has %d notes (%s)", live + 1, len(take.notes), take.status)
        self.record_state()

    def record_state(self) -> None:
        state = self.win.doc.state
        state["takes"] = [t.to_state() for t in self.win.gen.takes]
        state["current_take"] = self.win.gen.current if self.win.gen.takes else -1
        req = self.win.gen.request
        state["takes_track"] = req.track if req is not None else self.win.doc.active_track
        state["model"] = self.win.panel.model_name()
        state["temperature"] = self.win.panel.temperature_value()
        state["key_lock"] = str(self.win.panel.key_lock.currentData())
        state["bars"] = self.win.panel.bars.value()
        state["variations"] = self.win.panel.variations.value()
        state["voices"] = self.win.panel.voices_value()

    def restore_state(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`record_state` saved with the project: the takes list as it
        was, the model, temperature, key lock, voices, length and variations. Another file without them
        resets the key lock (the key of one tune says nothing about the next)."""
        from musicgen_app.gui.generation import Take

        p = self.win.panel
        p.set_key_lock(str(state.get("key_lock") or "auto"))
        p.set_voices(str(state.get("voices") or "sketch"))  # like the key lock: per tune
        try:
            if "temperature" in state:
                p.temperature.setValue(round(float(state["temperature"]) * 100))
            if "bars" in state:
                p.bars.setValue(int(state["bars"]))
            if "variations" in state:
                p.variations.setValue(int(state["variations"]))
        except (TypeError, ValueError) as exc:
            self.win.show_message(f"Some Continue settings of this project could not be read: {exc}")
        model = str(state.get("model") or "")
        if model:
            self.win.choose_model(model)
        takes: list[Take] = []
        for data in state.get("takes") or []:
            try:
                takes.append(Take.from_state(len(takes), data))
            except ValueError as exc:
                self.win.show_message(f"A take of this project is damaged and was left out: {exc}")
        if not takes:
            return
        track = state.get("takes_track")
        if isinstance(track, int) and 0 <= track < len(self.win.doc.song.tracks):
            self.win.doc.set_active_track(track)
            self.win.refresh_tracks()
        self.win.gen.takes = takes
        current = state.get("current_take", 0)
        self.win.gen.current = current if isinstance(current, int) and -1 <= current < len(takes) else 0
        shown = self.win.gen.current_take()
        self.win.canvas.show_take(shown.notes if shown is not None else [])
        self._takes_changed()
        logger.info("restored %d takes", len(takes))

    def select_take(self, index: int) -> None:
        """Show (and audition) another take."""
        if not 0 <= index < len(self.win.gen.takes) or index == self.win.gen.current:
            return
        self.win.gen.current = index
        take = self.win.gen.takes[index]
        self.win.canvas.show_take(take.notes)
        self.win.panel.set_has_take(True)
        if not self.win.gen.running and take.notes:
            song = self.win.doc.snapshot()
            lead = lead_in_ticks(song, take.start_tick, self.win.settings.lead_in_bars)
            end = take.start_tick + self.win.panel.bars.value() * song.ticks_per_bar(take.start_tick)
            self.win.playback.play_stream(song, take.start_tick, end, lead_in_ticks=lead)
            self.win.playback.append(take.notes)
            self.win.playback.end_stream()

    def accept_take(self) -> None:
        """Return: put the shown take into the track it continues (one undo step).

        The other takes stay listed (click one to audition it, Return to accept it too) until the
        next Continue, as in Magenta Studio."""
        take = self.win.gen.current_take()
        if take is None:
            return
        if self.win.gen.running:
            self.win.gen.cancel()
        req = self.win.gen.request
        track = self.win.doc.active_track
        if req is not None and req.track < len(self.win.doc.song.tracks):
            track = req.track
        notes = list(take.notes)
        if notes:
            if accompany_action.is_accompany(req):  # a new track under the melody
                edit = accompany_action.take_edit(self.win.doc.song, req, notes)
            else:
                edit = fill_action.take_edit(
                    self.win.doc.song, req, track, notes
                )  # a fill replaces its range
            if self.win.apply_edit(edit, "Accept take"):
                accepted = self.win.doc.state.setdefault("accepted_takes", [])
                accepted.append(take.to_state())
                self.win.show_message(
                    f"Accepted take {take.index + 1}: {len(notes)} notes (seed {take.seed})"
                )
                logger.info("accepted take %d with %d notes", take.index + 1, len(notes))
                self.win.files.autosave_soon()
        self.win.gen.discard_current()
        self.win.gen.current = -1  # none shown until the user picks one of the others
        self.win.canvas.clear_take()
        self._takes_changed()

    def reject_take(self) -> None:
        """Backspace: drop the shown take."""
        if self.win.gen.current_take() is None:
            return
        self.win.stop_all()
        self.win.gen.discard_current()
        take = self.win.gen.current_take()
        self.win.canvas.update_take(take.notes if take is not None else [])
        self._takes_changed()

    def regenerate(self) -> None:
        """R (Again): one more take of the same continuation (or fill), added to the list."""
        if accompany_action.is_accompany(self.win.gen.request):
            accompany_action.start_accompany(self.win, again=True)
            return
        if fill_action.is_fill(self.win.gen.request):
            fill_action.start_fill(self.win, again=True)
            return
        self.continue_(again=True)

    def may_drop_takes(self) -> bool:
        """Before another file replaces this one: ask whether takes not accepted may go."""
        n = len(self.win.gen.takes)
        if not n or os.environ.get("MUSICGEN_NO_DIALOGS"):
            return True
        answer = QMessageBox.question(
            self.win,
            "Takes not accepted",
            f"{n} take{'s' if n > 1 else ''} of Continue {'are' if n > 1 else 'is'} not accepted. "
            "Drop them and open another file?",
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Discard
