"""The main window: piano roll in the middle, generation panel on the right, transport on top.

The window holds the document (song + undo stack) and wires the parts together, each in a module
of its own concern:

* :mod:`~musicgen_app.gui.actions`: the actions, toolbars, menus and status bar;
* :mod:`~musicgen_app.gui.takes`: the take lifecycle (Continue, takes, accept, reject, Again,
  lead-in, "First note"), drawing through the canvas's overlay API;
* :mod:`~musicgen_app.gui.file_ops`: new, open, import, save, export, drag-out, autosave;
* :mod:`~musicgen_app.gui.recording`: recording from the MIDI keyboard;
* :mod:`~musicgen_app.gui.playback_ctl` and :mod:`~musicgen_app.gui.generation`: the player and
  the model, off the UI thread.

What stays here: editing commands, the transport buttons, the model chooser, settings and closing.
Every user error becomes a status message or a message box.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QUndoGroup,
)
from PySide6.QtWidgets import QComboBox, QFileDialog, QLabel, QMainWindow, QMenu, QMessageBox, QSpinBox

from musicgen_app.core.edits import (
    add_notes,
    delete_notes,
    quantize_notes,
    transpose_notes,
)
from musicgen_app.core.song import Note, TempoChange, TimeSignature, Track
from musicgen_app.errors import EditError
from musicgen_app.gui import actions, editor_setup, fileio, jam_mode, output_failure, train_dialog
from musicgen_app.gui.audio_continue import AudioContinuer
from musicgen_app.gui.document import Document
from musicgen_app.gui.file_ops import FileOps
from musicgen_app.gui.generation import GenerationController, ModelCache
from musicgen_app.gui.generation_panel import GenerationPanel
from musicgen_app.gui.import_audio import AudioImporter
from musicgen_app.gui.piano_roll.geometry import SNAP_CHOICES
from musicgen_app.gui.piano_roll.widget import PianoRollView
from musicgen_app.gui.playback_ctl import PlaybackController
from musicgen_app.gui.recording import RecordController
from musicgen_app.gui.settings import AppSettings
from musicgen_app.gui.takes import TakesController
from musicgen_app.gui.tasks import TaskRunner
from musicgen_app.ml import DEFAULT_MODEL

logger = logging.getLogger(__name__)

APP_TITLE = "musicgen"


def settle_memory() -> None:
    """Collect the young generations and freeze what survives (Python's ``gc.freeze``).

    Torch, numpy and a model leave some 200,000 long-lived objects; without this every full
    collection walks them all, a pause of 50-170 ms on the UI thread at a random moment (while a
    take streams, say). Frozen, they are never scanned again. Called after a model has loaded.
    A full ``gc.collect()`` first would itself pause the UI for about 130 ms; collecting only the
    young generations takes a few ms, and the old garbage it leaves frozen is a few stray cycles.
    """
    watch_slow_collections()
    t0 = time.perf_counter()
    gc.collect(1)
    gc.freeze()
    logger.debug(
        "gc: collected and froze %d objects in %.0f ms",
        gc.get_freeze_count(),
        (time.perf_counter() - t0) * 1000,
    )


_gc_started: list[float] = []


def _gc_watch(phase: str, info: dict[str, int]) -> None:
    """A ``gc.callbacks`` hook: log each collection that held the thread for 20 ms or more."""
    if phase == "start":
        _gc_started[:] = [time.perf_counter()]
    elif _gc_started:
        ms = (time.perf_counter() - _gc_started[0]) * 1000
        if ms >= 20:
            logger.debug(
                "gc: generation %d collection took %.0f ms (%d collected)",
                info.get("generation", -1),
                ms,
                info.get("collected", 0),
            )


def watch_slow_collections() -> None:
    """Log every garbage collection that pauses the UI thread 20 ms or more (debug level)."""
    if _gc_watch not in gc.callbacks:
        gc.callbacks.append(_gc_watch)


def checkpoint_info(path: str | Path, load: Callable[[str], Any] | None = None) -> Any:
    """The registry entry (card) of a checkpoint file, once the checkpoint has passed the same
    verification as loading it (card values, weights digest, tensors, no NaN/inf): ``load(path)``
    (the window's model cache, so choosing it afterwards is instant; default: a plain load).
    Raises CheckpointError when it is not a checkpoint or is refused."""
    from musicgen_app.errors import CheckpointError
    from musicgen_app.ml.registry import list_models, load_model

    weights = Path(path).with_suffix(".safetensors")
    if not weights.is_file() or not weights.with_suffix(".json").is_file():
        raise CheckpointError(f"{Path(path).name} is not a model checkpoint (no readable card and weights)")
    (load or load_model)(str(path))
    for info in list_models(weights.parent):
        if Path(info.path).resolve() == weights.resolve():
            return info
    raise CheckpointError(f"{Path(path).name} is not a model checkpoint (no readable card and weights)")


def list_model_infos() -> list[Any]:
    """The registry's models, the musician's own included (a task: reads the model cards)."""
    from musicgen_app.ml.registry import list_models

    return list(list_models(user=True))


class MainWindow(QMainWindow):
    """One document in a window."""

    document_loaded = Signal()
    saved = Signal(str)
    autosaved = Signal(str)
    model_ready = Signal(str)  # a model finished loading

    # built by gui.actions (build_actions, build_toolbars, build_menus, build_status)
    act_accept: QAction
    act_accompany: QAction
    accompany_style: str
    accompany_style_actions: dict[str, QAction]
    act_add_track: QAction
    act_continue: QAction
    act_fill: QAction
    act_jam: QAction
    act_copy: QAction
    act_cut: QAction
    act_delete: QAction
    act_devices: QAction
    act_down: QAction
    act_duplicate: QAction
    act_estimate_chords: QAction
    act_estimate_chords_beat: QAction
    act_export_all: QAction
    act_export_sel: QAction
    act_export_track: QAction
    act_export_wav: QAction
    act_fit: QAction
    act_follow: QAction
    act_home: QAction
    act_import: QAction
    act_loop: QAction
    act_metronome: QAction
    act_new: QAction
    act_oct_down: QAction
    act_oct_up: QAction
    act_open: QAction
    act_others: QAction
    act_paste: QAction
    act_play: QAction
    act_quantize: QAction
    act_quit: QAction
    act_record: QAction
    act_redo: QAction
    act_regen: QAction
    act_reject: QAction
    act_save: QAction
    act_save_as: QAction
    act_select_all: QAction
    act_stop: QAction
    act_type_chord: QAction
    act_train: QAction
    act_undo: QAction
    act_up: QAction
    act_zoom_in: QAction
    act_zoom_out: QAction
    tool_actions: dict[str, QAction]
    tool_group: QActionGroup
    lead_in_actions: dict[int, QAction]
    lead_in_group: QActionGroup
    accompany_group: QActionGroup
    undo_group: QUndoGroup
    recent_menu: QMenu
    snap_combo: QComboBox
    track_combo: QComboBox
    tempo_spin: QSpinBox
    meter_num: QSpinBox
    meter_den: QComboBox
    _model_label: QLabel
    _output_label: QLabel
    _pos_label: QLabel
    _ttfn_label: QLabel

    def __init__(
        self,
        *,
        output: Any = None,
        settings: AppSettings | None = None,
        models: ModelCache | None = None,
        autosave_store: Any = None,
        open_output: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings if settings is not None else AppSettings.load()
        self.tasks = TaskRunner(self)
        self.doc = Document(parent=self)
        self.clipboard: list[Note] = []
        self.roll = PianoRollView(self.doc, self)
        self.canvas = self.roll.canvas
        self.setCentralWidget(self.roll)
        self.playback = PlaybackController(self.tasks, output, self)
        self.playback.metronome = self.settings.metronome
        self.gen = GenerationController(models, self)
        self.panel = GenerationPanel(self)
        right = Qt.DockWidgetArea.RightDockWidgetArea
        editor_setup.add_dock(self, "Continue", "generation_dock", self.panel, right)
        self._closing = False
        self._wanted_model = ""  # a project's model, chosen once the models are listed
        self.files = FileOps(self, autosave_store)
        self.takes = TakesController(self)
        self.recorder = RecordController(self)
        self.audio_import = AudioImporter(self)  # File ▸ Import Audio…
        self.audio_continue = AudioContinuer(self)  # Continue ▸ Continue as Audio
        self.jam_mode = jam_mode.JamMode(self)  # Ctrl+J: call and response with the keyboard
        actions.build_actions(self)
        actions.build_toolbars(self)
        actions.build_menus(self)
        actions.build_status(self)
        self._connect()
        self.takes.connect_signals()
        editor_setup.install(self)  # track headers, Help menu, icons, Ctrl+Y
        output_failure.install(self)  # the bar shown when the sound output dies (Reconnect)
        self._apply_settings()
        self._attach_document(self.doc)
        self.setAcceptDrops(True)
        self.resize(1280, 760)
        self._restore_window()
        self.tasks.submit(list_model_infos, self._models_listed, self._models_failed, name="musicgen-models")
        if output is None and open_output:
            self.playback.open_output(self.settings)
            self.playback.open_keyboard(self.settings.input_port, self.settings.thru)
        else:
            self._output_label.setText(f"Output: {self.playback.output_name}")

    # -- construction -------------------------------------------------------------------------
    def _action(
        self, text: str, slot: Any, shortcut: Any = None, name: str = "", checkable: bool = False
    ) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        a.setObjectName(name or text.lower().replace(" ", "_").strip("._…"))
        a.setCheckable(checkable)
        a.triggered.connect(slot)
        self.addAction(a)
        return a

    def _connect(self) -> None:
        self.canvas.message.connect(self.show_message)
        self.canvas.note_audition.connect(
            lambda p, v: self.playback.preview_note(p, v, self.active_channel())
        )
        self.roll.keyboard.key_pressed.connect(
            lambda p: self.playback.preview_note(p, 100, self.active_channel())
        )
        self.roll.ruler.seek_requested.connect(self.seek)
        self.roll.ruler.loop_requested.connect(self.set_loop)
        self.snap_combo.currentTextChanged.connect(self._snap_changed)
        self.track_combo.currentIndexChanged.connect(self._track_chosen)
        self.tempo_spin.valueChanged.connect(self._tempo_edited)
        self.meter_num.valueChanged.connect(self._meter_edited)
        self.meter_den.currentTextChanged.connect(self._meter_edited)
        self.playback.position_changed.connect(self._position)
        self.playback.state_changed.connect(self._play_state)
        self.playback.output_changed.connect(self._output_changed)
        self.playback.error.connect(self.show_message)
        self.playback.keyboard_events.connect(self.recorder.keyboard_events)
        self.takes.first_note_ms.connect(lambda ms: self._ttfn_label.setText(f"First note: {ms:.0f} ms"))
        self.playback.keyboard_changed.connect(
            lambda port: self._output_label.setToolTip(f"MIDI keyboard: {port or 'none'}")
        )
        self.gen.error.connect(self._generation_failed)
        self.gen.running_changed.connect(self.panel.set_running)
        p = self.panel
        p.stop_requested.connect(self.stop_all)
        p.temperature_changed.connect(self.gen.set_temperature)
        p.load_checkpoint_requested.connect(self.load_checkpoint)
        p.model_changed.connect(self._model_chosen)

    def _apply_settings(self) -> None:
        s = self.settings
        self.snap_combo.setCurrentText(s.snap if s.snap in SNAP_CHOICES else "1/16")
        self.canvas.set_snap(self.snap_combo.currentText())
        self.panel.temperature.setValue(round(s.temperature * 100))
        self.panel.bars.setValue(s.bars)
        self.panel.variations.setValue(s.variations)
        self.panel.seed.setValue(s.seed)
        self.panel.random_seed.setChecked(s.random_seed)
        self.panel.set_key_lock(s.key_lock)
        self.act_metronome.setChecked(s.metronome)
        self.lead_in_actions[s.lead_in_bars].setChecked(True)

    def _restore_window(self) -> None:
        s = self.settings
        if s.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(s.window_geometry.encode()))
        if s.window_state:
            self.restoreState(QByteArray.fromBase64(s.window_state.encode()))

    def _store_settings(self) -> None:
        s = self.settings
        s.window_geometry = bytes(self.saveGeometry().toBase64().data()).decode()
        s.window_state = bytes(self.saveState().toBase64().data()).decode()
        s.snap = self.snap_combo.currentText()
        s.temperature = self.panel.temperature_value()
        s.bars = self.panel.bars.value()
        s.variations = self.panel.variations.value()
        s.seed = self.panel.seed.value()
        s.random_seed = self.panel.random_seed.isChecked()
        s.key_lock = str(self.panel.key_lock.currentData())
        s.model = self.panel.model_name()
        s.metronome = self.act_metronome.isChecked()
        s.save()

    # -- document -----------------------------------------------------------------------------
    def _attach_document(self, doc: Document) -> None:
        old = self.doc
        if old is not doc:
            old.blockSignals(True)
            old.undo_stack.blockSignals(True)
            old.deleteLater()
            self.doc = doc
            doc.setParent(self)
            self.roll.set_document(doc)
            self.undo_group.removeStack(old.undo_stack)
            self.undo_group.addStack(doc.undo_stack)
            self.undo_group.setActiveStack(doc.undo_stack)
        doc.title_changed.connect(self._update_title)
        doc.changed.connect(self._song_changed)
        self.files.document_attached(doc)
        self.refresh_tracks()
        self._refresh_conductor()
        self._update_title()
        self.takes.show_document_takes()

    def set_document(self, doc: Document) -> None:
        """Show ``doc`` in this window (the old one is dropped)."""
        self.stop_all()
        if self.files.store is not None and self.doc.doc_id and not self.doc.is_dirty:
            self.files.discard_autosave(self.doc)
        self._attach_document(doc)
        self.seek(0)  # a file opens at its start (Space must not start past its end)
        self.takes.restore_state(doc.state)
        self.roll.fit_song()
        self.document_loaded.emit()
        self.takes.prepare_soon()

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.doc.display_name}[*] — {APP_TITLE}")
        self.setWindowModified(self.doc.is_dirty)

    def _song_changed(self) -> None:
        self.refresh_tracks()
        self._refresh_conductor()
        self.takes.prepare_soon()

    def refresh_tracks(self) -> None:
        """Fill the track chooser from the song and select the active track."""
        names = [f"{i + 1}: {t.name or 'Track'}" for i, t in enumerate(self.doc.song.tracks)]
        if names != [self.track_combo.itemText(i) for i in range(self.track_combo.count())]:
            self.track_combo.blockSignals(True)
            self.track_combo.clear()
            self.track_combo.addItems(names)
            self.track_combo.blockSignals(False)
        self.track_combo.blockSignals(True)
        self.track_combo.setCurrentIndex(self.doc.active_track)
        self.track_combo.blockSignals(False)

    def _refresh_conductor(self) -> None:
        song = self.doc.song
        for w in (self.tempo_spin, self.meter_num, self.meter_den):
            w.blockSignals(True)
        try:
            self.tempo_spin.setValue(round(60_000_000 / song.tempo_map().us_per_quarter_at(0)))
            ts = song.time_signature_at(0)
            self.meter_num.setValue(ts.numerator)
            self.meter_den.setCurrentText(str(ts.denominator))
        finally:
            for w in (self.tempo_spin, self.meter_num, self.meter_den):
                w.blockSignals(False)

    def _output_changed(self, name: str) -> None:
        self._output_label.setText(f"Output: {name}")
        logger.info("output: %s", name)

    def active_channel(self) -> int:
        """The MIDI channel of the active track."""
        t = self.doc.song.tracks[self.doc.active_track]
        return t.channel

    # -- messages -----------------------------------------------------------------------------
    def show_message(self, text: str, ms: int = 6000) -> None:
        """A status-bar message."""
        logger.info("%s", text)
        self.statusBar().showMessage(text, ms)

    def show_error(self, title: str, text: str) -> None:
        """A message box (non-blocking for the event loop: it is modal but events keep flowing)."""
        logger.warning("%s: %s", title, text)
        self.statusBar().showMessage(f"{title}: {text}", 10000)
        if os.environ.get("MUSICGEN_NO_DIALOGS"):
            return
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # -- editing ------------------------------------------------------------------------------
    def apply_edit(self, edit: Any, text: str) -> bool:
        """Apply ``edit`` as one undo step named ``text``; a refused edit is a status message."""
        try:
            self.doc.apply(edit, text)
        except EditError as exc:
            self.show_message(str(exc))
            return False
        return True

    def set_tool(self, name: str) -> None:
        """Choose the editing tool."""
        self.canvas.set_tool(name)
        self.tool_actions[name].setChecked(True)

    def select_all(self) -> None:
        """Select every note of the active track."""
        self.doc.set_selection(self.doc.notes)

    def delete_selection(self) -> None:
        """Delete the selected notes."""
        notes = self.doc.selected_notes()
        logger.debug("delete: %d selected note(s)", len(notes))
        if notes:
            self.apply_edit(delete_notes(self.doc.active_track, notes), "Delete notes")

    def copy(self) -> None:
        """Copy the selected notes."""
        self.clipboard = self.doc.selected_notes()
        if self.clipboard:
            self.show_message(f"Copied {len(self.clipboard)} notes")

    def cut(self) -> None:
        """Copy and delete the selection."""
        self.copy()
        self.delete_selection()

    def paste(self) -> None:
        """Paste the copied notes at the playhead (snapped to the grid)."""
        if not self.clipboard:
            return
        step = self.canvas.snap_step()
        at = self.roll.geometry_model.snap(self.canvas.playhead_tick, step, mode="floor")
        first = min(n.start_tick for n in self.clipboard)
        notes = [n.moved(at - first) for n in self.clipboard]
        self.apply_edit(add_notes(self.doc.active_track, notes), "Paste notes")

    def duplicate(self) -> None:
        """Copy the selection right after itself."""
        notes = self.doc.selected_notes()
        if not notes:
            return
        first = min(n.start_tick for n in notes)
        last = max(n.end_tick for n in notes)
        step = max(1, self.canvas.snap_step())
        span = -(-(last - first) // step) * step
        self.apply_edit(add_notes(self.doc.active_track, [n.moved(span) for n in notes]), "Duplicate notes")

    def quantize(self) -> None:
        """Quantize the selection (or the whole track) to the snap grid."""
        notes = self.doc.selected_notes() or list(self.doc.notes)
        step = self.canvas.snap_step()
        if not notes or step <= 1:
            self.show_message("Choose a snap grid to quantize to")
            return
        edit = quantize_notes(self.doc.active_track, notes, step)
        if edit.old != edit.new:
            self.apply_edit(edit, "Quantize")

    def transpose(self, semitones: int) -> None:
        """Transpose the selection."""
        notes = self.doc.selected_notes()
        if notes:
            edit = transpose_notes(self.doc.active_track, notes, semitones)
            if edit.old != edit.new:
                self.apply_edit(edit, "Transpose")

    def add_track(self) -> None:
        """Append an empty track and make it active."""
        song = self.doc.song
        used = {t.channel for t in song.tracks}
        channel = next((c for c in range(16) if c not in used and c != 9), 0)
        tracks = [*song.tracks, Track(name=f"Track {len(song.tracks) + 1}", channel=channel)]
        self.doc.set_song_attr("tracks", tracks, "Add track")
        self.doc.set_active_track(len(tracks) - 1)

    def _track_chosen(self, index: int) -> None:
        if index >= 0:
            self.doc.set_active_track(index)

    def _snap_changed(self, name: str) -> None:
        self.canvas.set_snap(name)

    def _tempo_edited(self, bpm: int) -> None:
        song = self.doc.song
        rest = [t for t in song.tempos if t.tick > 0]
        self.doc.set_song_attr("tempos", [TempoChange(0, round(60_000_000 / bpm)), *rest], "Change tempo")

    def _meter_edited(self, *_: object) -> None:
        song = self.doc.song
        rest = [t for t in song.time_signatures if t.tick > 0]
        ts = TimeSignature(0, self.meter_num.value(), int(self.meter_den.currentText()))
        self.doc.set_song_attr("time_signatures", [ts, *rest], "Change meter")

    def _generation_failed(self, message: str) -> None:
        """A take could not be written: one line, titled by what was asked (Continue, Fill, Accompany)."""
        req = self.gen.request
        what = (
            "Accompany"
            if getattr(req, "accompany", None) is not None
            else "Fill"
            if getattr(req, "fill_end", None) is not None
            else "Continue"
        )
        self.show_error(f"{what} failed", message)

    def set_loop(self, loop: tuple[int, int] | None) -> None:
        """Set (or clear) the loop region (one undo step)."""
        self.doc.set_song_attr("loop", tuple(loop) if loop else None, "Set loop" if loop else "Clear loop")
        if loop and not self.act_loop.isChecked():
            self.act_loop.setChecked(True)
            self._toggle_loop()
        self.playback.set_loop(self.doc.song.loop)

    def _toggle_others(self) -> None:
        self.canvas.show_other_tracks = self.act_others.isChecked()
        self.canvas.invalidate()

    def _toggle_follow(self) -> None:
        self.canvas.follow_playhead = self.act_follow.isChecked()

    # -- transport ----------------------------------------------------------------------------
    def toggle_play(self) -> None:
        """Space: play from the playhead, or stop."""
        if self.playback.playing:
            self.stop_all()
        else:
            self.play()

    def play(self) -> None:
        """Play the song from the playhead (from the start when the playhead is past the end)."""
        self.canvas.reveal_whole_take()
        song = self.doc.snapshot()
        take = self.gen.current_take()
        if take is not None and take.notes:
            tr = song.tracks[self.doc.active_track]
            tr.notes = sorted([*tr.notes, *take.notes])
        start = int(self.canvas.playhead_tick)
        looping = self.act_loop.isChecked() and song.loop is not None
        if not looping and start >= song.end_tick:
            if song.end_tick == 0:
                self.show_message("Nothing to play yet: draw some notes, record, or open a file")
                return
            self.show_message("Playing from the start (the playhead was past the last note)")
            start = 0
            self.seek(0)
        self.playback.play(song, start)
        logger.info("playback started at tick %d", start)

    def stop_all(self) -> None:
        """Esc: cancel generation and stop playback at once, silencing every note."""
        was_running = self.gen.running
        self.gen.cancel()
        if self.audio_continue.busy():
            self.audio_continue.toggle()  # cancels, with its one line
        was_playing = self.playback.playing
        self.playback.stop()
        self.canvas.reveal_whole_take()
        self.recorder.stop()
        if was_running or was_playing:
            logger.info("stopped (generation %s, playback %s)", was_running, was_playing)
        self.canvas.update()

    def seek(self, tick: int) -> None:
        """Move the playhead."""
        self.playback.seek(tick)
        self.roll.set_playhead(tick)

    def _position(self, tick: float) -> None:
        self.canvas.reveal_take_to(tick)
        self.roll.set_playhead(tick)
        grid = self.canvas.bar_grid()
        bar = grid.index_at(tick)
        beat = int((tick - grid.ticks[bar]) // max(1, int(grid.beat_len[bar]))) if len(grid.ticks) else 0
        self._pos_label.setText(f"{bar + 1}.{beat + 1}")
        self.recorder.playhead_moved(tick)

    def _play_state(self, state: str) -> None:
        self.act_play.setText("Stop" if state == "playing" else "Play")
        if state != "playing":
            self.canvas.reveal_whole_take()
            logger.info("playback stopped")

    def _toggle_loop(self) -> None:
        self.playback.loop_enabled = self.act_loop.isChecked()
        self.playback.set_loop(self.doc.song.loop)

    def _toggle_metronome(self) -> None:
        self.playback.metronome = self.act_metronome.isChecked()

    # -- generation ---------------------------------------------------------------------------
    def _models_listed(self, infos: list[Any]) -> None:
        names = [getattr(i, "name", "") for i in infos]
        wanted, self._wanted_model = self._wanted_model, ""
        preferred = self.settings.model if self.settings.model in names else ""
        if wanted in names:
            preferred = wanted
        if not preferred and DEFAULT_MODEL in names:
            preferred = DEFAULT_MODEL
        self.panel.set_models(infos, preferred)
        saved = wanted or self.settings.model
        if saved and saved not in names and Path(saved).with_suffix(".safetensors").exists():
            self.add_checkpoint(saved)  # a checkpoint file chosen earlier (or the project's)
        elif wanted and wanted not in names:
            self.show_message(f"This project was continued with {wanted}, which is not available here")
        if not infos:
            self._model_label.setText("Model: none")

    def _models_failed(self, exc: BaseException) -> None:
        self._model_label.setText("Model: none")
        self.show_message(f"No models available: {exc}")

    def _model_chosen(self, name: str) -> None:
        self._model_label.setText(f"Model: {Path(name).name if os.sep in name else name}")
        logger.info("model %s chosen", name)
        models = self.gen.models
        self.tasks.submit(
            lambda: models.get(name),
            lambda _m: self._model_loaded(name),
            lambda exc: self._model_failed(name, exc),
            name="musicgen-load-model",
        )

    def _model_loaded(self, name: str) -> None:
        logger.info("model %s loaded", name)
        settle_memory()
        self.model_ready.emit(name)
        self.takes.prepare_soon()

    def _model_failed(self, name: str, exc: BaseException) -> None:
        self._model_label.setText("Model: failed to load")
        self.show_error("Model", f"Cannot load {name}: {exc}")

    def refresh_models(self, select: str = "") -> None:
        """List the models again in the background, add the new ones to the model box, and choose
        ``select`` (a model just trained) once it is listed."""
        self.tasks.submit(
            list_model_infos,
            lambda infos: self.panel.set_models(infos, select),
            self._models_failed,
            name="musicgen-models",
        )

    def choose_model(self, model: str) -> None:
        """Select ``model`` in the panel (now, or once the models are listed)."""
        combo = self.panel.model_combo
        i = combo.findData(model)
        if i >= 0:
            combo.setCurrentIndex(i)
        elif Path(model).with_suffix(".safetensors").exists():
            self.add_checkpoint(model)
        elif combo.count():
            self.show_message(f"This project was continued with {model}, which is not available here")
        else:
            self._wanted_model = model  # the model list is still being read

    def load_checkpoint(self) -> None:
        """Let the user pick a checkpoint file and add it to the chooser."""
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Load checkpoint",
            str(Path.home()),
            "Checkpoints (*.safetensors *.json *.pt);;All files (*)",
        )
        if path:
            self.add_checkpoint(path)

    def add_checkpoint(self, path: str | Path) -> None:
        """Verify a checkpoint in the background (it is loaded, as choosing it would), then offer it
        in the model chooser; a refused one is a message and is not offered."""
        p = str(path)
        models = self.gen.models
        self.tasks.submit(
            lambda: checkpoint_info(p, models.get),
            lambda info: self.panel.add_checkpoint(p, info),
            lambda exc: self.show_error("Load checkpoint", f"Cannot use {Path(p).name}: {exc}"),
            name="musicgen-checkpoint",
        )

    # -- files --------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if any(u.toLocalFile().lower().endswith(fileio.OPENABLE) for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for u in event.mimeData().urls():
            path = u.toLocalFile()
            if path.lower().endswith(fileio.OPENABLE):
                event.acceptProposedAction()
                if self.files.may_replace_document():
                    self.files.open_path(path)
                return

    # -- closing ------------------------------------------------------------------------------
    def moveEvent(self, event: Any) -> None:
        super().moveEvent(event)
        # the roll's screen position changed without a relayout: log it again (DEBUG) once the
        # move settles, for the session test that turns notes into mouse positions
        QTimer.singleShot(100, self.roll.log_geometry)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closing and not self.files.maybe_save():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Cancel generation, stop playback, join every thread (idempotent)."""
        if self._closing:
            return
        self._closing = True
        self.files.close()
        self.takes.close()
        self.recorder.discard()
        self._store_settings()
        self.audio_import.cancel()
        train_dialog.shutdown(self)
        self.audio_continue.cancel()
        self.jam_mode.stop()
        self.gen.shutdown()
        self.playback.close()
        self.tasks.drain()
        self.tasks.shutdown()

    # -- the window's public operations (tests, the app, other windows) ------------------------
    def open_path(self, path: str | Path) -> None:
        """Open a file in the background (see :meth:`FileOps.open_path`)."""
        self.files.open_path(path)

    def import_path(self, path: str | Path) -> None:
        """Add a file's tracks to this song (see :meth:`FileOps.import_path`)."""
        self.files.import_path(path)

    def maybe_save(self) -> bool:
        """Ask to save unsaved changes; False when the user cancels."""
        return self.files.maybe_save()

    def autosave(self) -> None:
        """Write a recovery copy now if the document changed."""
        self.files.autosave()

    def write_clip(self) -> Path | None:
        """The selection (or the active track) as a temporary .mid for dragging out."""
        return self.files.write_clip()

    def set_lead_in(self, bars: int) -> None:
        """Bars of sketch Continue plays before the take: 0, 1 or 2 (see :class:`TakesController`)."""
        self.takes.set_lead_in(bars)

    # -- devices ------------------------------------------------------------------------------
    def devices_dialog(self) -> None:
        """Choose output, SoundFont, input, thru and buffer size."""
        from musicgen_app.gui.devices_dialog import DevicesDialog

        dlg = DevicesDialog(self.settings, self)
        if dlg.exec():
            dlg.apply_to(self.settings)
            self.settings.save()
            os.environ.pop("MUSICGEN_OUTPUT", None)  # the choice made here wins over --output
            self._output_label.setText("Output: opening…")
            self.playback.open_output(self.settings)
            self.playback.open_keyboard(self.settings.input_port, self.settings.thru)
