"""The main window: piano roll in the middle, generation panel on the right, transport on top.

The window only wires things together: the document (song + undo stack), the playback adapter,
the generation controller, autosave and the file operations (on task threads). Every user error
becomes a status message or a message box.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QMimeData, QPoint, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDrag,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QMouseEvent,
    QUndoGroup,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSpinBox,
    QToolBar,
    QToolButton,
)

from musicgen_app.core.edits import (
    CompoundEdit,
    add_controls,
    add_notes,
    delete_notes,
    quantize_notes,
    transpose_notes,
)
from musicgen_app.core.song import Note, Song, TempoChange, TimeSignature, Track
from musicgen_app.errors import EditError, MusicgenError
from musicgen_app.gui import editor_setup, fileio
from musicgen_app.gui.document import Document
from musicgen_app.gui.generation import ContinueRequest, GenerationController, ModelCache
from musicgen_app.gui.generation_panel import GenerationPanel
from musicgen_app.gui.piano_roll.geometry import SNAP_CHOICES
from musicgen_app.gui.piano_roll.widget import PianoRollView
from musicgen_app.gui.playback_ctl import PlaybackController
from musicgen_app.gui.settings import AppSettings
from musicgen_app.gui.tasks import TaskRunner
from musicgen_app.ml import DEFAULT_MODEL

logger = logging.getLogger(__name__)

APP_TITLE = "musicgen"
DEFAULT_AUTOSAVE_S = 60.0
AUTOSAVE_AFTER_BIG_CHANGE_MS = 1500


def autosave_interval_s() -> float:
    """Seconds between autosaves (``MUSICGEN_AUTOSAVE_SECONDS`` overrides the minute)."""
    try:
        return max(0.2, float(os.environ.get("MUSICGEN_AUTOSAVE_SECONDS", DEFAULT_AUTOSAVE_S)))
    except ValueError:
        return DEFAULT_AUTOSAVE_S


def settle_memory() -> None:
    """Collect the young generations and freeze what survives (Python's ``gc.freeze``).

    Torch, numpy and a model leave some 200,000 long-lived objects; without this every full
    collection walks them all, a pause of 50-170 ms on the UI thread at a random moment (while a
    take streams, say). Frozen, they are never scanned again. Called after a model has loaded.
    A full ``gc.collect()`` first would itself pause the UI for about 130 ms; collecting only the
    young generations takes a few ms, and the old garbage it leaves frozen is a few stray cycles.
    """
    t0 = time.perf_counter()
    gc.collect(1)
    gc.freeze()
    logger.debug(
        "gc: collected and froze %d objects in %.0f ms",
        gc.get_freeze_count(),
        (time.perf_counter() - t0) * 1000,
    )


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
    """The registry's models (a task: reads the model cards)."""
    from musicgen_app.ml.registry import list_models

    return list(list_models())


class DragMidiButton(QToolButton):
    """Drag this button onto a DAW or a file manager: drops the selection (or track) as a .mid."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self._press: QPoint | None = None
        self.setText("Drag MIDI")
        self.setToolTip("Drag onto a DAW or a folder: the selection (or the active track) as a .mid file")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        # where it is on the screen, once laid out (the drag-out test drives the pointer there)
        QTimer.singleShot(200, self._log_geometry)

    def _log_geometry(self) -> None:
        top_left = self.mapToGlobal(QPoint(0, 0))
        logger.debug(
            "drag button at %d,%d size %dx%d", top_left.x(), top_left.y(), self.width(), self.height()
        )

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._press is None or (event.position().toPoint() - self._press).manhattanLength() < 6:
            return
        self._press = None
        path = self._window.write_clip()
        if path is None:
            return
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.CopyAction)
        self.setDown(False)


class MainWindow(QMainWindow):
    """One document in a window."""

    document_loaded = Signal()
    saved = Signal(str)
    autosaved = Signal(str)
    model_ready = Signal(str)  # a model finished loading

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
        self.gen.on_stream = self._streamed
        self.gen.on_cancel_session = self.playback.cancel_session
        self.panel = GenerationPanel(self)
        right = Qt.DockWidgetArea.RightDockWidgetArea
        editor_setup.add_dock(self, "Continue", "generation_dock", self.panel, right)
        self._store = autosave_store
        self._autosaved_version = -1
        self._closing = False
        self._stream_start: int | None = None
        self._record: Any = None
        self._wanted_model = ""  # a project's model, chosen once the models are listed
        self._build_actions()
        self._build_toolbars()
        self._build_menus()
        self._build_status()
        self._connect()
        editor_setup.install(self)  # track headers, Help menu, icons, Ctrl+Y
        self._apply_settings()
        self._attach_document(self.doc)
        self.setAcceptDrops(True)
        self.resize(1280, 760)
        self._restore_window()
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(int(autosave_interval_s() * 1000))
        self._autosave_timer.timeout.connect(self.autosave)
        self._autosave_timer.start()
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

    def _build_actions(self) -> None:
        A = self._action
        K = QKeySequence.StandardKey
        self.act_new = A("New", self.new_document, K.New, "new")
        self.act_open = A("Open…", self.open_dialog, K.Open, "open")
        self.act_save = A("Save", self.save, K.Save, "save")
        self.act_save_as = A("Save As…", self.save_as, K.SaveAs, "save_as")
        self.act_import = A("Import MIDI as New Tracks…", self.import_dialog, "Ctrl+I", "import_midi")
        self.act_export_all = A(
            "Export MIDI: all tracks…", lambda: self.export_midi("all"), None, "export_all"
        )
        self.act_export_track = A(
            "Export MIDI: active track…", lambda: self.export_midi("track"), None, "export_track"
        )
        self.act_export_sel = A(
            "Export MIDI: selection…", lambda: self.export_midi("selection"), None, "export_sel"
        )
        self.act_export_wav = A("Export WAV…", self.export_wav, None, "export_wav")
        self.act_quit = A("Quit", self.close, K.Quit, "quit")
        self.undo_group = QUndoGroup(self)
        self.undo_group.addStack(self.doc.undo_stack)
        self.undo_group.setActiveStack(self.doc.undo_stack)
        self.act_undo = self.undo_group.createUndoAction(self, "Undo")
        self.act_undo.setShortcut(QKeySequence(K.Undo))
        self.act_undo.setObjectName("undo")
        self.act_redo = self.undo_group.createRedoAction(self, "Redo")
        self.act_redo.setShortcut(QKeySequence(K.Redo))
        self.act_redo.setObjectName("redo")
        self.addActions([self.act_undo, self.act_redo])
        self.act_copy = A("Copy", self.copy, K.Copy, "copy")
        self.act_cut = A("Cut", self.cut, K.Cut, "cut")
        self.act_paste = A("Paste", self.paste, K.Paste, "paste")
        self.act_duplicate = A("Duplicate", self.duplicate, "Ctrl+D", "duplicate")
        self.act_delete = A("Delete", self.delete_selection, K.Delete, "delete")
        self.act_select_all = A("Select All", self.select_all, K.SelectAll, "select_all")
        self.act_quantize = A("Quantize", self.quantize, "Q", "quantize")
        self.act_up = A("Transpose +1", lambda: self.transpose(1), "Ctrl+Up", "transpose_up")
        self.act_down = A("Transpose −1", lambda: self.transpose(-1), "Ctrl+Down", "transpose_down")
        self.act_oct_up = A("Transpose +12", lambda: self.transpose(12), "Ctrl+Shift+Up", "octave_up")
        self.act_oct_down = A("Transpose −12", lambda: self.transpose(-12), "Ctrl+Shift+Down", "octave_down")
        self.act_zoom_in = A("Zoom In", lambda: self.roll.zoom(1.25), K.ZoomIn, "zoom_in")
        self.act_zoom_out = A("Zoom Out", lambda: self.roll.zoom(0.8), K.ZoomOut, "zoom_out")
        self.act_fit = A("Show Whole Song", self.roll.fit_song, "Ctrl+0", "fit")
        self.act_others = A("Show Other Tracks", self._toggle_others, None, "show_others", True)
        self.act_others.setChecked(True)
        self.act_follow = A("Follow Playhead", self._toggle_follow, None, "follow", True)
        self.act_follow.setChecked(True)
        self.canvas.follow_playhead = True
        self.act_play = A("Play/Stop", self.toggle_play, "Space", "play")
        self.act_home = A("Go to Start", lambda: self.seek(0), "Home", "home")
        self.act_loop = A("Loop", self._toggle_loop, "L", "loop", True)
        self.act_metronome = A("Metronome", self._toggle_metronome, "M", "metronome", True)
        self.act_record = A("Record from MIDI Keyboard", self.toggle_record, "Ctrl+Shift+R", "record", True)
        self.act_continue = A("Continue", self.continue_, "Ctrl+Return", "continue")
        self.act_continue.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.act_stop = A("Stop", self.stop_all, "Esc", "stop")
        self.act_accept = A("Accept Take", self.accept_take, "Return", "accept")
        self.act_accept.setShortcuts([QKeySequence("Return"), QKeySequence("Enter")])
        self.act_reject = A("Reject Take", self.reject_take, "Backspace", "reject")
        self.act_regen = A("Generate Again", self.regenerate, "R", "regenerate")
        self.act_devices = A("Devices…", self.devices_dialog, None, "devices")
        self.act_add_track = A("Add Track", self.add_track, None, "add_track")
        self.tool_group = QActionGroup(self)
        self.tool_actions: dict[str, QAction] = {}
        for name, key in (("select", "S"), ("draw", "D"), ("erase", "E")):
            a = A(name.capitalize(), lambda _=False, n=name: self.set_tool(n), key, f"tool_{name}", True)
            self.tool_group.addAction(a)
            self.tool_actions[name] = a
        self.tool_actions["draw"].setChecked(True)

    def _build_toolbars(self) -> None:
        tb = QToolBar("Tools", self)
        tb.setObjectName("tools_toolbar")
        self.addToolBar(tb)
        for a in self.tool_actions.values():
            tb.addAction(a)
        tb.addSeparator()
        tb.addWidget(QLabel(" Snap "))
        self.snap_combo = QComboBox()
        self.snap_combo.addItems(list(SNAP_CHOICES))
        self.snap_combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        tb.addWidget(self.snap_combo)
        tb.addWidget(QLabel(" Track "))
        self.track_combo = QComboBox()
        self.track_combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.track_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.track_combo.setMinimumContentsLength(10)
        tb.addWidget(self.track_combo)
        tb.addAction(self.act_add_track)
        tb.addSeparator()
        tb.addWidget(DragMidiButton(self))

        tt = QToolBar("Transport", self)
        tt.setObjectName("transport_toolbar")
        self.addToolBar(tt)
        tt.addAction(self.act_play)
        tt.addAction(self.act_loop)
        tt.addAction(self.act_metronome)
        tt.addAction(self.act_record)
        tt.addWidget(QLabel(" Tempo "))
        self.tempo_spin = QSpinBox()
        self.tempo_spin.setRange(20, 300)
        self.tempo_spin.setSuffix(" BPM")
        self.tempo_spin.setKeyboardTracking(False)
        tt.addWidget(self.tempo_spin)
        tt.addWidget(QLabel(" Meter "))
        self.meter_num = QSpinBox()
        self.meter_num.setRange(1, 16)
        self.meter_num.setKeyboardTracking(False)
        tt.addWidget(self.meter_num)
        tt.addWidget(QLabel("/"))
        self.meter_den = QComboBox()
        self.meter_den.addItems(["2", "4", "8", "16"])
        self.meter_den.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        tt.addWidget(self.meter_den)
        tt.addSeparator()
        tt.addAction(self.act_continue)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        f.addActions([self.act_new, self.act_open])
        self.recent_menu = f.addMenu("Open Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        f.addActions([self.act_save, self.act_save_as])
        f.addSeparator()
        f.addAction(self.act_import)
        f.addActions([self.act_export_all, self.act_export_track, self.act_export_sel, self.act_export_wav])
        f.addSeparator()
        f.addAction(self.act_quit)
        e = mb.addMenu("&Edit")
        e.addActions([self.act_undo, self.act_redo])
        e.addSeparator()
        e.addActions([self.act_cut, self.act_copy, self.act_paste, self.act_duplicate, self.act_delete])
        e.addAction(self.act_select_all)
        e.addSeparator()
        e.addAction(self.act_quantize)
        t = e.addMenu("Transpose")
        t.addActions([self.act_up, self.act_down, self.act_oct_up, self.act_oct_down])
        e.addSeparator()
        e.addActions(list(self.tool_actions.values()))
        v = mb.addMenu("&View")
        v.addActions([self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_others, self.act_follow])
        tr = mb.addMenu("&Transport")
        tr.addActions([self.act_play, self.act_home, self.act_loop, self.act_metronome, self.act_record])
        g = mb.addMenu("&Continue")
        g.addActions([self.act_continue, self.act_stop, self.act_accept, self.act_reject, self.act_regen])
        s = mb.addMenu("&Settings")
        s.addAction(self.act_devices)

    def _build_status(self) -> None:
        sb = self.statusBar()
        self._model_label = QLabel("Model: –")
        self._output_label = QLabel("Output: opening…")
        self._ttfn_label = QLabel("First note: –")
        self._pos_label = QLabel("1.1")
        for w in (self._pos_label, self._model_label, self._output_label, self._ttfn_label):
            sb.addPermanentWidget(w)

    def _connect(self) -> None:
        self.canvas.message.connect(self.show_message)
        self.canvas.note_audition.connect(lambda p, v: self.playback.preview_note(p, v, self._channel()))
        self.roll.keyboard.key_pressed.connect(lambda p: self.playback.preview_note(p, 100, self._channel()))
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
        self.playback.keyboard_events.connect(self._keyboard_events)
        self.playback.keyboard_changed.connect(
            lambda port: self._output_label.setToolTip(f"MIDI keyboard: {port or 'none'}")
        )
        self.gen.take_started.connect(self._takes_changed)
        self.gen.take_updated.connect(self._take_updated)
        self.gen.take_finished.connect(self._takes_changed)
        self.gen.run_finished.connect(self._run_finished)
        self.gen.first_note.connect(lambda ms: self._ttfn_label.setText(f"First note: {ms:.0f} ms"))
        self.gen.error.connect(lambda msg: self.show_error("Continue failed", msg))
        self.gen.running_changed.connect(self.panel.set_running)
        p = self.panel
        p.continue_requested.connect(self.continue_)
        p.stop_requested.connect(self.stop_all)
        p.accept_requested.connect(self.accept_take)
        p.reject_requested.connect(self.reject_take)
        p.regenerate_requested.connect(self.regenerate)
        p.temperature_changed.connect(self.gen.set_temperature)
        p.take_selected.connect(self.select_take)
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
        self._autosaved_version = -1
        if doc.doc_id is None and self._store is not None:
            doc.doc_id = self._store.new_doc_id()
        self._refresh_tracks()
        self._refresh_conductor()
        self._update_title()
        self.canvas.take_notes = []
        self.gen.takes = []
        self.panel.show_takes([], -1)
        self.panel.set_has_take(False)

    def set_document(self, doc: Document) -> None:
        """Show ``doc`` in this window (the old one is dropped)."""
        self.stop_all()
        if self._store is not None and self.doc.doc_id and not self.doc.is_dirty:
            self._discard_autosave(self.doc)
        self._attach_document(doc)
        self.seek(0)  # a file opens at its start (Space must not start past its end)
        self._restore_state(doc.state)
        self.roll.fit_song()
        self.document_loaded.emit()

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.doc.display_name}[*] — {APP_TITLE}")
        self.setWindowModified(self.doc.is_dirty)

    def _song_changed(self) -> None:
        self._refresh_tracks()
        self._refresh_conductor()

    def _refresh_tracks(self) -> None:
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

    def _channel(self) -> int:
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
    def _apply(self, edit: Any, text: str) -> bool:
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
        if notes:
            self._apply(delete_notes(self.doc.active_track, notes), "Delete notes")

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
        self._apply(add_notes(self.doc.active_track, notes), "Paste notes")

    def duplicate(self) -> None:
        """Copy the selection right after itself."""
        notes = self.doc.selected_notes()
        if not notes:
            return
        first = min(n.start_tick for n in notes)
        last = max(n.end_tick for n in notes)
        step = max(1, self.canvas.snap_step())
        span = -(-(last - first) // step) * step
        self._apply(add_notes(self.doc.active_track, [n.moved(span) for n in notes]), "Duplicate notes")

    def quantize(self) -> None:
        """Quantize the selection (or the whole track) to the snap grid."""
        notes = self.doc.selected_notes() or list(self.doc.notes)
        step = self.canvas.snap_step()
        if not notes or step <= 1:
            self.show_message("Choose a snap grid to quantize to")
            return
        edit = quantize_notes(self.doc.active_track, notes, step)
        if edit.old != edit.new:
            self._apply(edit, "Quantize")

    def transpose(self, semitones: int) -> None:
        """Transpose the selection."""
        notes = self.doc.selected_notes()
        if notes:
            edit = transpose_notes(self.doc.active_track, notes, semitones)
            if edit.old != edit.new:
                self._apply(edit, "Transpose")

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
        self.canvas.take_reveal_tick = None
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
        was_playing = self.playback.playing
        self.playback.stop()
        self.canvas.take_reveal_tick = None
        if self._record is not None:
            self.toggle_record()
        if was_running or was_playing:
            logger.info("stopped (generation %s, playback %s)", was_running, was_playing)
        self.canvas.update()

    def seek(self, tick: int) -> None:
        """Move the playhead."""
        self.playback.seek(tick)
        self.roll.set_playhead(tick)

    def _position(self, tick: float) -> None:
        if self.canvas.take_reveal_tick is not None:
            self.canvas.take_reveal_tick = tick
        self.roll.set_playhead(tick)
        grid = self.canvas.bar_grid()
        bar = grid.index_at(tick)
        beat = int((tick - grid.ticks[bar]) // max(1, int(grid.beat_len[bar]))) if len(grid.ticks) else 0
        self._pos_label.setText(f"{bar + 1}.{beat + 1}")
        if self._record is not None:
            self._record_poll(tick)

    def _play_state(self, state: str) -> None:
        self.act_play.setText("Stop" if state == "playing" else "Play")
        if state != "playing":
            self.canvas.take_reveal_tick = None
            self.canvas.update()
            logger.info("playback stopped")

    def _toggle_loop(self) -> None:
        self.playback.loop_enabled = self.act_loop.isChecked()
        self.playback.set_loop(self.doc.song.loop)

    def _toggle_metronome(self) -> None:
        self.playback.metronome = self.act_metronome.isChecked()

    # -- recording ----------------------------------------------------------------------------
    def toggle_record(self) -> None:
        """Record from the MIDI keyboard into the active track while playing."""
        if self._record is not None:
            rec, self._record = self._record, None
            notes = rec.finish(self.playback.drain_keyboard(), *self.playback.position_sample())
            controls = rec.collector.controls
            self.canvas.record_notes = []
            self.act_record.setChecked(False)
            self.playback.stop()
            track = self.doc.active_track
            edit: Any = add_notes(track, notes)
            if controls:  # the pedal and controllers as played, in the same undo step
                edit = CompoundEdit((edit, add_controls(track, controls)))
            if (notes or controls) and self._apply(edit, "Record notes"):
                self.autosave_soon()
            return
        port = self.settings.input_port
        if not port:
            self.act_record.setChecked(False)
            self.show_error("Record", "Choose a MIDI keyboard in Settings ▸ Devices first.")
            return
        if not self.playback.keyboard_port:  # not open (yet, or any more): try (again)
            self.playback.open_keyboard(port, self.settings.thru)
        from musicgen_app.gui.recording import Recorder

        self.playback.drain_keyboard()  # what was played before Record is not recorded
        self._record = Recorder(self._channel(), self.doc.song.tempo_map())
        self.act_record.setChecked(True)
        # The transport runs on (past the song's end) until recording stops.
        self.canvas.take_reveal_tick = None
        song = self.doc.snapshot()
        start = int(self.canvas.playhead_tick)
        self.playback.play_stream(song, start, start + 64 * song.ticks_per_bar(start))
        logger.info("recording from %s at tick %d", port, start)

    def _keyboard_events(self, batch: list[Any]) -> None:
        self.roll.keyboard.show_midi([msg for _, msg in batch])
        rec = self._record
        if rec is not None:
            self.canvas.record_notes = rec.feed(batch, *self.playback.position_sample())
            self.canvas.update()

    def _record_poll(self, tick: float) -> None:
        rec = self._record
        if rec is not None:  # held notes grow with the playhead
            self.canvas.record_notes = rec.feed([], *self.playback.position_sample())
            self.canvas.update()

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

    def _model_failed(self, name: str, exc: BaseException) -> None:
        self._model_label.setText("Model: failed to load")
        self.show_error("Model", f"Cannot load {name}: {exc}")

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

    def continue_(self, again: bool = False) -> None:
        """Ctrl+Return: continue the active track from its end (or from the end of the loop).

        With ``again`` (R) while takes are listed: one more take of the same continuation (same
        sketch, same start), added to the list."""
        model = self.panel.model_name()
        if not model:
            self.show_error("Continue", "There is no model to continue with. Train one or load a checkpoint.")
            return
        if editor_setup.continue_blocked(self):  # a drum track, and no model plays drums
            return
        self.stop_all()
        prev = self.gen.request
        again = again and bool(self.gen.takes) and prev is not None
        song = self.doc.snapshot()
        track = self.doc.active_track
        if again and prev is not None:
            song, track, start = prev.song, prev.track, prev.start_tick
        elif song.loop:
            start = song.loop[1]
        else:  # the end of the sketch, on the next sixteenth
            step = max(1, song.resolution // 4)
            start = -(-song.tracks[track].end_tick // step) * step
        bars = self.panel.bars.value()
        seed = self.panel.seed_value()
        if again and seed is not None:  # a fixed seed: the next one, so the take differs
            seed = max([seed - 1, *(t.seed for t in self.gen.takes)]) + 1
        req = ContinueRequest(
            model=model,
            song=song,
            track=track,
            start_tick=int(start),
            bars=bars,
            temperature=self.panel.temperature_value(),
            variations=1 if again else self.panel.variations.value(),
            seed=seed,
            key_lock=self.panel.key_lock_value(),
        )
        self.gen.start(req, keep_takes=again)
        self._stream_start = int(start)
        lead = min(int(start), song.ticks_per_bar(int(start)))
        end = int(start) + bars * song.ticks_per_bar(int(start))
        self.playback.play_stream(self.doc.snapshot(), int(start), end, lead_in_ticks=lead)
        self.canvas.take_notes = []
        self.canvas.take_reveal_tick = float(start - lead)
        self._takes_changed()
        logger.info("continue: model %s from tick %d, %d bars", model, start, bars)

    def _streamed(self, events: list[Any]) -> None:
        live = self.gen.run_base  # the run's first take streams (later variations do not)
        if self.gen.current == live and self.playback.playing:
            self.playback.append(events)
        if self.gen.current == live and live < len(self.gen.takes):
            self.canvas.take_notes = list(self.gen.takes[live].notes)
            self.canvas.update()

    def _take_updated(self, idx: int) -> None:
        if idx == self.gen.current and 0 <= idx < len(self.gen.takes):
            self.canvas.take_notes = list(self.gen.takes[idx].notes)
            self.canvas.update()
        self._takes_changed()

    def _takes_changed(self, *_: object) -> None:
        self.panel.show_takes([t.label() for t in self.gen.takes], self.gen.current)
        self.panel.set_has_take(self.gen.current_take() is not None or self.gen.running)

    def _run_finished(self) -> None:
        self.playback.end_stream()
        self._takes_changed()
        live = self.gen.run_base
        take = self.gen.takes[live] if live < len(self.gen.takes) else None
        if take is not None:
            logger.info("continue: take %d has %d notes (%s)", live + 1, len(take.notes), take.status)
        self._record_takes_state()

    def _record_takes_state(self) -> None:
        state = self.doc.state
        state["takes"] = [t.to_state() for t in self.gen.takes]
        state["current_take"] = self.gen.current if self.gen.takes else -1
        req = self.gen.request
        state["takes_track"] = req.track if req is not None else self.doc.active_track
        state["model"] = self.panel.model_name()
        state["temperature"] = self.panel.temperature_value()
        state["key_lock"] = str(self.panel.key_lock.currentData())
        state["bars"] = self.panel.bars.value()
        state["variations"] = self.panel.variations.value()

    def _restore_state(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`_record_takes_state` saved with the project: the takes list as it
        was, the model, temperature, key lock, length and variations. Another file without them
        resets the key lock (the key of one tune says nothing about the next)."""
        from musicgen_app.gui.generation import Take

        p = self.panel
        p.set_key_lock(str(state.get("key_lock") or "auto"))
        try:
            if "temperature" in state:
                p.temperature.setValue(round(float(state["temperature"]) * 100))
            if "bars" in state:
                p.bars.setValue(int(state["bars"]))
            if "variations" in state:
                p.variations.setValue(int(state["variations"]))
        except (TypeError, ValueError) as exc:
            self.show_message(f"Some Continue settings of this project could not be read: {exc}")
        model = str(state.get("model") or "")
        if model:
            self._choose_model(model)
        takes: list[Take] = []
        for data in state.get("takes") or []:
            try:
                takes.append(Take.from_state(len(takes), data))
            except ValueError as exc:
                self.show_message(f"A take of this project is damaged and was left out: {exc}")
        if not takes:
            return
        track = state.get("takes_track")
        if isinstance(track, int) and 0 <= track < len(self.doc.song.tracks):
            self.doc.set_active_track(track)
            self._refresh_tracks()
        self.gen.takes = takes
        current = state.get("current_take", 0)
        self.gen.current = current if isinstance(current, int) and -1 <= current < len(takes) else 0
        shown = self.gen.current_take()
        self.canvas.take_notes = list(shown.notes) if shown is not None else []
        self.canvas.take_reveal_tick = None
        self._takes_changed()
        logger.info("restored %d takes", len(takes))

    def _choose_model(self, model: str) -> None:
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

    def select_take(self, index: int) -> None:
        """Show (and audition) another take."""
        if not 0 <= index < len(self.gen.takes) or index == self.gen.current:
            return
        self.gen.current = index
        take = self.gen.takes[index]
        self.canvas.take_notes = list(take.notes)
        self.canvas.take_reveal_tick = None
        self.canvas.update()
        self.panel.set_has_take(True)
        if not self.gen.running and take.notes:
            song = self.doc.snapshot()
            lead = min(take.start_tick, song.ticks_per_bar(take.start_tick))
            end = take.start_tick + self.panel.bars.value() * song.ticks_per_bar(take.start_tick)
            self.playback.play_stream(song, take.start_tick, end, lead_in_ticks=lead)
            self.playback.append(take.notes)
            self.playback.end_stream()

    def accept_take(self) -> None:
        """Return: put the shown take into the track it continues (one undo step).

        The other takes stay listed (click one to audition it, Return to accept it too) until the
        next Continue, as in Magenta Studio."""
        take = self.gen.current_take()
        if take is None:
            return
        if self.gen.running:
            self.gen.cancel()
        req = self.gen.request
        track = self.doc.active_track
        if req is not None and req.track < len(self.doc.song.tracks):
            track = req.track
        notes = list(take.notes)
        if notes:
            channel = self.doc.song.tracks[track].channel
            notes = [replace(n, channel=channel) for n in notes]
            if self._apply(add_notes(track, notes), "Accept take"):
                accepted = self.doc.state.setdefault("accepted_takes", [])
                accepted.append(take.to_state())
                self.show_message(f"Accepted take {take.index + 1}: {len(notes)} notes (seed {take.seed})")
                logger.info("accepted take %d with %d notes", take.index + 1, len(notes))
                self.autosave_soon()
        self.gen.discard_current()
        self.gen.current = -1  # none shown until the user picks one of the others
        self.canvas.take_notes = []
        self.canvas.take_reveal_tick = None
        self._takes_changed()
        self.canvas.update()

    def reject_take(self) -> None:
        """Backspace: drop the shown take."""
        if self.gen.current_take() is None:
            return
        self.stop_all()
        self.gen.discard_current()
        take = self.gen.current_take()
        self.canvas.take_notes = list(take.notes) if take is not None else []
        self._takes_changed()
        self.canvas.update()

    def regenerate(self) -> None:
        """R (Again): one more take of the same continuation, added to the list."""
        self.continue_(again=True)

    def _may_drop_takes(self) -> bool:
        """Before another file replaces this one: ask whether takes not accepted may go."""
        n = len(self.gen.takes)
        if not n or os.environ.get("MUSICGEN_NO_DIALOGS"):
            return True
        answer = QMessageBox.question(
            self,
            "Takes not accepted",
            f"{n} take{'s' if n > 1 else ''} of Continue {'are' if n > 1 else 'is'} not accepted. "
            "Drop them and open another file?",
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Discard

    def _may_replace_document(self) -> bool:
        """Takes not accepted and unsaved changes: ask about both; False when the user cancels."""
        return self._may_drop_takes() and self.maybe_save()

    # -- files --------------------------------------------------------------------------------
    def new_document(self) -> None:
        """Start an empty song (asks to save changes first)."""
        if self._may_replace_document():
            self.set_document(Document())

    def open_dialog(self) -> None:
        """Ask for a MIDI or project file and open it."""
        if not self._may_replace_document():
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Open", self._last_dir(), "Songs (*.mgproj *.mid *.midi);;All files (*)"
        )
        if path:
            self.open_path(path)

    def _last_dir(self) -> str:
        if self.settings.recent_files:
            return str(Path(self.settings.recent_files[0]).parent)
        return str(Path.home())

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.settings.recent_files:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, path=p: self._open_recent(path))
        if not self.settings.recent_files:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _open_recent(self, path: str) -> None:
        if self._may_replace_document():
            self.open_path(path)

    def open_path(self, path: str | Path) -> None:
        """Open a file in the background; the document replaces the current one when read."""
        p = Path(path)
        self.show_message(f"Opening {p.name}…")
        self.tasks.submit(
            lambda: fileio.load_file(p),
            self._opened,
            lambda exc: self._open_failed(p, exc),
            name="musicgen-open",
        )

    def _opened(self, loaded: fileio.Loaded) -> None:
        doc = Document(loaded.song, loaded.path if loaded.is_project else None)
        doc.state = loaded.state
        if not loaded.is_project and loaded.path is not None:
            doc.song.title = doc.song.title or loaded.path.stem
            doc.source_path = loaded.path
        self.set_document(doc)
        if loaded.path is not None:
            self.settings.add_recent(loaded.path)
            self.settings.save()
        msg = f"Opened {loaded.path.name if loaded.path else 'file'}: {doc.song.note_count} notes"
        if loaded.repairs:
            msg += " — " + "; ".join(loaded.repairs)
        self.show_message(msg, 12000)

    def _open_failed(self, path: Path, exc: BaseException) -> None:
        self.show_error("Open", f"Cannot open {path.name}: {exc}")

    def import_dialog(self) -> None:
        """Ask for a MIDI file and add its tracks to this song."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Import MIDI", self._last_dir(), "MIDI (*.mid *.midi);;All (*)"
        )
        if path:
            self.import_path(path)

    def import_path(self, path: str | Path) -> None:
        """Add the tracks of a MIDI (or project) file to this song (one undo step), in the background."""
        p = Path(path)
        resolution = self.doc.song.resolution
        doc = self.doc

        def done(tracks: list[Track]) -> None:
            if doc is not self.doc or not tracks:
                return
            used = {t.channel for t in self.doc.song.tracks}
            self.doc.set_song_attr("tracks", [*self.doc.song.tracks, *tracks], f"Import {p.name}")
            self.doc.set_active_track(len(self.doc.song.tracks) - len(tracks))
            clash = sorted({t.channel + 1 for t in tracks} & {c + 1 for c in used})
            note = f" (shares MIDI channel {', '.join(map(str, clash))})" if clash else ""
            self.show_message(f"Imported {len(tracks)} track(s) from {p.name}{note}")
            self.autosave_soon()

        self.tasks.submit(
            lambda: fileio.tracks_for(fileio.load_file(p).song, resolution),
            done,
            lambda exc: self.show_error("Import", f"Cannot import {p.name}: {exc}"),
            name="musicgen-import",
        )

    def save(self) -> bool:
        """Save to the project file (asks for a name the first time)."""
        if self.doc.path is None or self.doc.path.suffix.lower() != fileio.PROJECT_SUFFIX:
            return self.save_as()
        self._save_to(self.doc.path)
        return True

    def save_as(self) -> bool:
        """Save under a new name."""
        start = str(self.doc.path or Path(self._last_dir()) / f"{self.doc.song.title or 'untitled'}.mgproj")
        path, _ = QFileDialog.getSaveFileName(self, "Save project", start, "musicgen project (*.mgproj)")
        if not path:
            return False
        p = Path(path)
        if p.suffix.lower() != fileio.PROJECT_SUFFIX:
            p = p.with_suffix(fileio.PROJECT_SUFFIX)
        self._save_to(p)
        return True

    def _save_to(self, path: Path, *, wait: bool = False) -> None:
        self._record_takes_state()
        song, state = self.doc.snapshot(), dict(self.doc.state)
        index = self.doc.undo_stack.index()
        doc = self.doc

        def done(p: Path) -> None:
            if doc is not self.doc:
                return
            if self.doc.undo_stack.index() == index:
                self.doc.mark_saved(p)
            else:
                self.doc.path = p
            self._discard_autosave(doc)
            self.settings.add_recent(p)
            self.settings.save()
            self.show_message(f"Saved {p.name}")
            self.saved.emit(str(p))

        def failed(exc: BaseException) -> None:
            self.show_error("Save", f"Could not save {path.name}: {exc}")

        if wait:
            try:
                done(fileio.save_file(song, state, path))
            except MusicgenError as exc:
                failed(exc)
            return
        self.tasks.submit(lambda: fileio.save_file(song, state, path), done, failed, name="musicgen-save")

    def _export_song(self, which: str) -> Song | None:
        song = self.doc.snapshot()
        if which == "selection":
            notes = self.doc.selected_notes()
            if not notes:
                self.show_message("Select some notes to export")
                return None
            return fileio.sub_song(song, notes=notes, track=self.doc.active_track)
        if which == "track":
            return fileio.sub_song(song, tracks=[self.doc.active_track])
        return song

    def export_midi(self, which: str = "all") -> None:
        """Export all tracks, the active track or the selection as a MIDI file."""
        song = self._export_song(which)
        if song is None:
            return
        base = self.doc.path.stem if self.doc.path else (self.doc.song.title or "untitled")
        path, _ = QFileDialog.getSaveFileName(
            self, "Export MIDI", str(Path(self._last_dir()) / f"{base}.mid"), "MIDI (*.mid)"
        )
        if path:
            self.tasks.submit(
                lambda: fileio.export_midi(song, path),
                lambda p: self.show_message(f"Exported {Path(p).name}"),
                lambda exc: self.show_error("Export MIDI", str(exc)),
            )

    def export_wav(self) -> None:
        """Render the song to WAV (in the background)."""
        song = self.doc.snapshot()
        base = self.doc.path.stem if self.doc.path else "untitled"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export WAV", str(Path(self._last_dir()) / f"{base}.wav"), "WAV audio (*.wav)"
        )
        if path:
            self.show_message("Rendering…")
            soundfont = self.settings.soundfont
            self.tasks.submit(
                lambda: fileio.export_wav(song, path, soundfont),
                lambda p: self.show_message(f"Rendered {Path(p).name}"),
                lambda exc: self.show_error("Export WAV", str(exc)),
                name="musicgen-render",
            )

    def write_clip(self) -> Path | None:
        """The selection (or the active track) as a temporary .mid for dragging out."""
        which = "selection" if self.doc.selection else "track"
        song = self._export_song(which)
        if song is None:
            return None
        try:
            return fileio.clip_file(song, self.doc.song.title or "musicgen clip")
        except (MusicgenError, OSError) as exc:
            self.show_error("Drag MIDI", str(exc))
            return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if any(u.toLocalFile().lower().endswith(fileio.OPENABLE) for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for u in event.mimeData().urls():
            path = u.toLocalFile()
            if path.lower().endswith(fileio.OPENABLE):
                event.acceptProposedAction()
                if self._may_replace_document():
                    self.open_path(path)
                return

    # -- autosave -----------------------------------------------------------------------------
    def autosave(self) -> None:
        """Write a recovery copy if the document changed since the last one (background)."""
        store = self._store
        doc = self.doc
        if self._closing or store is None or not doc.is_dirty or doc.version == self._autosaved_version:
            return
        if doc.doc_id is None:
            doc.doc_id = store.new_doc_id()
        self._record_takes_state()
        song, state = doc.snapshot(), dict(doc.state)
        version = doc.version
        source = str(doc.path or doc.source_path or "") or None
        title = doc.display_name if (doc.path or doc.source_path) else (doc.song.title or "Untitled")
        doc_id = doc.doc_id

        def write() -> str:
            from musicgen_app.core.project import Project

            store.write(doc_id, Project(song=song, state=state), source_path=source, title=title)
            return doc_id

        def done(did: str) -> None:
            self._autosaved_version = version
            logger.info("autosaved %s (%s)", title, did)
            self.autosaved.emit(did)

        self.tasks.submit(
            write, done, lambda exc: self.show_message(f"Autosave failed: {exc}"), "musicgen-autosave"
        )

    def autosave_soon(self) -> None:
        """Autosave shortly after a big change (an accepted take, a recording, an import)."""
        QTimer.singleShot(AUTOSAVE_AFTER_BIG_CHANGE_MS, self, self.autosave)

    def _discard_autosave(self, doc: Document) -> None:
        if self._store is None or doc.doc_id is None:
            return
        store, did = self._store, doc.doc_id
        self.tasks.submit(lambda: store.discard(did), None, None, "musicgen-discard")

    # -- closing ------------------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """Ask to save unsaved changes; False when the user cancels."""
        if not self.doc.is_dirty or os.environ.get("MUSICGEN_NO_DIALOGS"):
            return True
        answer = QMessageBox.question(
            self,
            "Unsaved changes",
            f"Save the changes to {self.doc.display_name}?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer == QMessageBox.StandardButton.Save:
            if self.doc.path is None or self.doc.path.suffix.lower() != fileio.PROJECT_SUFFIX:
                start = str(Path(self._last_dir()) / f"{self.doc.song.title or 'untitled'}.mgproj")
                path, _ = QFileDialog.getSaveFileName(
                    self, "Save project", start, "musicgen project (*.mgproj)"
                )
                if not path:
                    return False
                self._save_to(Path(path).with_suffix(fileio.PROJECT_SUFFIX), wait=True)
            else:
                self._save_to(self.doc.path, wait=True)
            return not self.doc.is_dirty
        # Discard: the recovery copy goes too.
        self._discard_autosave(self.doc)
        self.doc.mark_saved(self.doc.path) if self.doc.path else self.doc.undo_stack.setClean()
        return True

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closing and not self.maybe_save():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Cancel generation, stop playback, join every thread (idempotent)."""
        if self._closing:
            return
        self._closing = True
        self._autosave_timer.stop()
        self._record = None
        self._store_settings()
        self.gen.shutdown()
        self.playback.close()
        self.tasks.drain()
        self.tasks.shutdown()

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
