"""The window's actions, toolbars, menus and status bar: what the user can do and where it is.

Each ``build_*`` function is called once from ``MainWindow.__init__``; the actions' slots are the
window's methods or those of its parts (``win.files``, ``win.takes``, ``win.recorder``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QMimeData, QPoint, Qt, QTimer, QUrl
from PySide6.QtGui import QActionGroup, QDrag, QKeySequence, QMouseEvent, QUndoGroup
from PySide6.QtWidgets import QComboBox, QLabel, QSpinBox, QToolBar, QToolButton

from musicgen_app.gui import accompany_action, chord_actions, fill_action, train_dialog
from musicgen_app.gui.piano_roll.geometry import SNAP_CHOICES

if TYPE_CHECKING:
    from musicgen_app.gui.main_window import MainWindow

logger = logging.getLogger(__name__)


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
        logger.debug("drag out of %s started", path.name)
        action = drag.exec(Qt.DropAction.CopyAction)
        logger.debug("drag out of %s ended: %s", path.name, action.name)
        self.setDown(False)


def build_actions(win: MainWindow) -> None:
    A = win._action
    K = QKeySequence.StandardKey
    win.act_new = A("New", win.files.new_document, K.New, "new")
    win.act_open = A("Open…", win.files.open_dialog, K.Open, "open")
    win.act_save = A("Save", win.files.save, K.Save, "save")
    win.act_save_as = A("Save As…", win.files.save_as, K.SaveAs, "save_as")
    win.act_import = A("Import MIDI as New Tracks…", win.files.import_dialog, "Ctrl+I", "import_midi")
    win.act_export_all = A(
        "Export MIDI: all tracks…", lambda: win.files.export_midi("all"), "Ctrl+E", "export_all"
    )
    win.act_export_track = A(
        "Export MIDI: active track…", lambda: win.files.export_midi("track"), None, "export_track"
    )
    win.act_export_sel = A(
        "Export MIDI: selection…", lambda: win.files.export_midi("selection"), None, "export_sel"
    )
    win.act_export_wav = A("Export WAV…", win.files.export_wav, None, "export_wav")
    win.act_quit = A("Quit", win.close, K.Quit, "quit")
    win.undo_group = QUndoGroup(win)
    win.undo_group.addStack(win.doc.undo_stack)
    win.undo_group.setActiveStack(win.doc.undo_stack)
    win.act_undo = win.undo_group.createUndoAction(win, "Undo")
    win.act_undo.setShortcut(QKeySequence(K.Undo))
    win.act_undo.setObjectName("undo")
    win.act_redo = win.undo_group.createRedoAction(win, "Redo")
    win.act_redo.setShortcut(QKeySequence(K.Redo))
    win.act_redo.setObjectName("redo")
    win.addActions([win.act_undo, win.act_redo])
    win.act_copy = A("Copy", win.copy, K.Copy, "copy")
    win.act_cut = A("Cut", win.cut, K.Cut, "cut")
    win.act_paste = A("Paste", win.paste, K.Paste, "paste")
    win.act_duplicate = A("Duplicate", win.duplicate, "Ctrl+D", "duplicate")
    win.act_delete = A("Delete", win.delete_selection, K.Delete, "delete")
    win.act_select_all = A("Select All", win.select_all, K.SelectAll, "select_all")
    win.act_quantize = A("Quantize", win.quantize, "Q", "quantize")
    win.act_up = A("Transpose +1", lambda: win.transpose(1), "Ctrl+Up", "transpose_up")
    win.act_down = A("Transpose −1", lambda: win.transpose(-1), "Ctrl+Down", "transpose_down")
    win.act_oct_up = A("Transpose +12", lambda: win.transpose(12), "Ctrl+Shift+Up", "octave_up")
    win.act_oct_down = A("Transpose −12", lambda: win.transpose(-12), "Ctrl+Shift+Down", "octave_down")
    win.act_zoom_in = A("Zoom In", lambda: win.roll.zoom(1.25), K.ZoomIn, "zoom_in")
    win.act_zoom_out = A("Zoom Out", lambda: win.roll.zoom(0.8), K.ZoomOut, "zoom_out")
    win.act_fit = A("Show Whole Song", win.roll.fit_song, "Ctrl+0", "fit")
    win.act_others = A("Show Other Tracks", win._toggle_others, None, "show_others", True)
    win.act_others.setChecked(True)
    win.act_follow = A("Follow Playhead", win._toggle_follow, None, "follow", True)
    win.act_follow.setChecked(True)
    win.canvas.follow_playhead = True
    win.act_play = A("Play/Stop", win.toggle_play, "Space", "play")
    win.act_home = A("Go to Start", lambda: win.seek(0), "Home", "home")
    win.act_loop = A("Loop", win._toggle_loop, "L", "loop", True)
    win.act_metronome = A("Metronome", win._toggle_metronome, "M", "metronome", True)
    win.act_record = A(
        "Record from MIDI Keyboard", win.recorder.toggle_record, "Ctrl+Shift+R", "record", True
    )
    win.act_continue = A("Continue", win.takes.continue_, "Ctrl+Return", "continue")
    win.act_continue.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
    win.act_fill = A("Fill Selection", lambda: fill_action.start_fill(win), "Ctrl+Shift+Return", "fill")
    win.act_accompany = A(
        "Accompany Track", lambda: accompany_action.start_accompany(win), "Ctrl+Shift+A", "accompany"
    )
    win.accompany_style = accompany_action.DEFAULT_STYLE
    win.accompany_group = QActionGroup(win)
    win.accompany_style_actions = {}
    for style, text in (
        ("piano", "Piano"),
        ("chords", "Block Chords"),
        ("bass", "Bass Line"),
        ("satb", "Chorale (ATB)"),
    ):
        a = A(
            text,
            lambda _=False, s=style: accompany_action.set_style(win, s),
            None,
            f"accompany_{style}",
            True,
        )
        win.accompany_group.addAction(a)
        win.accompany_style_actions[style] = a
    win.accompany_style_actions[win.accompany_style].setChecked(True)
    win.act_jam = A("Jam (Call and Response)", win.jam_mode.toggle, "Ctrl+J", "jam", True)
    win.act_stop = A("Stop", win.stop_all, "Esc", "stop")
    win.act_accept = A("Accept Take", win.takes.accept_take, "Return", "accept")
    win.act_accept.setShortcuts([QKeySequence("Return"), QKeySequence("Enter")])
    win.act_reject = A("Reject Take", win.takes.reject_take, "Backspace", "reject")
    win.act_regen = A("Generate Again", win.takes.regenerate, "R", "regenerate")
    win.act_devices = A("Devices…", win.devices_dialog, None, "devices")
    win.act_add_track = A("Add Track", win.add_track, None, "add_track")
    win.act_type_chord = A(
        "Type Chord at Playhead", lambda: chord_actions.type_chord_at_playhead(win), "Ctrl+K", "type_chord"
    )
    win.act_estimate_chords = A(
        "Estimate Chords per Bar", lambda: chord_actions.estimate_lane(win, "bar"), None, "estimate_chords"
    )
    win.act_estimate_chords_beat = A(
        "Estimate Chords per Beat",
        lambda: chord_actions.estimate_lane(win, "beat"),
        None,
        "estimate_chords_beat",
    )
    win.roll.chord_lane.message.connect(win.show_message)
    win.act_train = A(
        "Train on My Music…", lambda: train_dialog.show_train_dialog(win), None, "train_on_my_music"
    )
    win.act_train.setStatusTip("Fine-tune a model on a folder of your own MIDI files")
    win.tool_group = QActionGroup(win)
    win.tool_actions = {}
    for name, key in (("select", "S"), ("draw", "D"), ("erase", "E")):
        a = A(name.capitalize(), lambda _=False, n=name: win.set_tool(n), key, f"tool_{name}", True)
        win.tool_group.addAction(a)
        win.tool_actions[name] = a
    win.tool_actions["draw"].setChecked(True)
    win.lead_in_group = QActionGroup(win)
    win.lead_in_actions = {}
    for bars, text in ((0, "No Lead-in"), (1, "Lead-in: 1 Bar"), (2, "Lead-in: 2 Bars")):
        a = A(text, lambda _=False, b=bars: win.takes.set_lead_in(b), None, f"lead_in_{bars}", True)
        win.lead_in_group.addAction(a)
        win.lead_in_actions[bars] = a


def build_toolbars(win: MainWindow) -> None:
    tb = QToolBar("Tools", win)
    tb.setObjectName("tools_toolbar")
    win.addToolBar(tb)
    for a in win.tool_actions.values():
        tb.addAction(a)
    tb.addSeparator()
    tb.addWidget(QLabel(" Snap "))
    win.snap_combo = QComboBox()
    win.snap_combo.addItems(list(SNAP_CHOICES))
    win.snap_combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    tb.addWidget(win.snap_combo)
    tb.addWidget(QLabel(" Track "))
    win.track_combo = QComboBox()
    win.track_combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    win.track_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    win.track_combo.setMinimumContentsLength(10)
    tb.addWidget(win.track_combo)
    tb.addAction(win.act_add_track)
    tb.addSeparator()
    tb.addWidget(DragMidiButton(win))

    tt = QToolBar("Transport", win)
    tt.setObjectName("transport_toolbar")
    win.addToolBar(tt)
    tt.addAction(win.act_play)
    tt.addAction(win.act_loop)
    tt.addAction(win.act_metronome)
    tt.addAction(win.act_record)
    tt.addWidget(QLabel(" Tempo "))
    win.tempo_spin = QSpinBox()
    win.tempo_spin.setRange(20, 300)
    win.tempo_spin.setSuffix(" BPM")
    win.tempo_spin.setKeyboardTracking(False)
    tt.addWidget(win.tempo_spin)
    tt.addWidget(QLabel(" Meter "))
    win.meter_num = QSpinBox()
    win.meter_num.setRange(1, 16)
    win.meter_num.setKeyboardTracking(False)
    tt.addWidget(win.meter_num)
    tt.addWidget(QLabel("/"))
    win.meter_den = QComboBox()
    win.meter_den.addItems(["2", "4", "8", "16"])
    win.meter_den.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    tt.addWidget(win.meter_den)
    tt.addSeparator()
    tt.addAction(win.act_continue)


def build_menus(win: MainWindow) -> None:
    mb = win.menuBar()
    f = mb.addMenu("&File")
    f.addActions([win.act_new, win.act_open])
    win.recent_menu = f.addMenu("Open Recent")
    win.recent_menu.aboutToShow.connect(win.files._fill_recent)
    f.addActions([win.act_save, win.act_save_as])
    f.addSeparator()
    f.addAction(win.act_import)
    f.addAction(win.audio_import.action)
    f.addAction(win.audio_continue.save_action)
    f.addActions([win.act_export_all, win.act_export_track, win.act_export_sel, win.act_export_wav])
    f.addSeparator()
    f.addAction(win.act_quit)
    e = mb.addMenu("&Edit")
    e.addActions([win.act_undo, win.act_redo])
    e.addSeparator()
    e.addActions([win.act_cut, win.act_copy, win.act_paste, win.act_duplicate, win.act_delete])
    e.addAction(win.act_select_all)
    e.addSeparator()
    e.addAction(win.act_quantize)
    t = e.addMenu("Transpose")
    t.addActions([win.act_up, win.act_down, win.act_oct_up, win.act_oct_down])
    c = e.addMenu("Chords")
    c.addActions([win.act_type_chord, win.act_estimate_chords, win.act_estimate_chords_beat])
    e.addSeparator()
    e.addActions(list(win.tool_actions.values()))
    v = mb.addMenu("&View")
    v.addActions([win.act_zoom_in, win.act_zoom_out, win.act_fit, win.act_others, win.act_follow])
    tr = mb.addMenu("&Transport")
    tr.addActions([win.act_play, win.act_home, win.act_loop, win.act_metronome, win.act_record])
    g = mb.addMenu("&Continue")
    g.addActions(
        [
            win.act_continue,
            win.audio_continue.action,
            win.act_fill,
            win.act_accompany,
            win.act_jam,
            win.act_stop,
            win.act_accept,
            win.act_reject,
            win.act_regen,
        ]
    )
    g.addSeparator()
    g.addMenu("Accompany Style").addActions(list(win.accompany_style_actions.values()))
    g.addSeparator()
    g.addActions(list(win.lead_in_actions.values()))
    m = mb.addMenu("&Model")
    m.addAction(win.act_train)
    s = mb.addMenu("&Settings")
    s.addAction(win.act_devices)


def build_status(win: MainWindow) -> None:
    sb = win.statusBar()
    win._model_label = QLabel("Model: –")
    win._output_label = QLabel("Output: opening…")
    win._ttfn_label = QLabel("First note: –")
    win._pos_label = QLabel("1.1")
    for w in (win._pos_label, win._model_label, win._output_label, win._ttfn_label):
        sb.addPermanentWidget(w)
