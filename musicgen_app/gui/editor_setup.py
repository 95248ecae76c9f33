"""The editor basics added to the main window in one place: the Tracks dock (track headers),
Help menu (shortcuts, examples, welcome screen), icons, Ctrl+Y, the loop switch's look, and the
drum-track check before Continue. :func:`install` is called once from ``MainWindow.__init__``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QKeySequence
from PySide6.QtWidgets import QDockWidget

from musicgen_app.core.paths import resources_dir
from musicgen_app.gui.drums import continue_refusal
from musicgen_app.gui.first_launch import example_paths, example_title, show_welcome
from musicgen_app.gui.help import ShortcutsDialog
from musicgen_app.gui.track_header import TrackList

logger = logging.getLogger(__name__)

# action attribute of the window -> icon file (resources/icons/<name>.svg)
ACTION_ICONS = {
    "act_play": "play",
    "act_stop": "stop",
    "act_record": "record",
    "act_continue": "continue",
    "act_loop": "loop",
    "act_metronome": "metronome",
    "act_accept": "accept",
    "act_reject": "reject",
    "act_regen": "again",
    "act_add_track": "add-track",
}
PANEL_ICONS = {
    "continue_button": "continue",
    "stop_button": "stop",
    "accept_button": "accept",
    "reject_button": "reject",
    "regen_button": "again",
}


def icon(name: str) -> QIcon:
    """A shipped icon by name (an empty icon when the file is missing)."""
    path = resources_dir() / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()


def add_dock(win: Any, title: str, name: str, widget: Any, area: Qt.DockWidgetArea) -> QDockWidget:
    """Put ``widget`` in a movable (not closable) dock of ``win`` named ``name`` (kept in saveState)."""
    dock = QDockWidget(title, win)
    dock.setObjectName(name)
    dock.setWidget(widget)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
    win.addDockWidget(area, dock)
    return dock


def install(win: Any) -> None:
    """Add the track headers, the Help menu, icons and the editing shortcuts to ``win``."""
    win.track_list = TrackList(win.doc, win.apply_edit, win)
    left = Qt.DockWidgetArea.LeftDockWidgetArea
    win.tracks_dock = add_dock(win, "Tracks", "tracks_dock", win.track_list, left)
    win.document_loaded.connect(lambda: win.track_list.set_document(win.doc))
    win.track_list.add_track_requested.connect(win.add_track)
    win.track_list.mix_changed.connect(lambda: replay_for_mix(win))

    # Redo: Ctrl+Shift+Z (the platform's) and Ctrl+Y (what Windows users reach for).
    win.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])

    # The loop region is bright while Loop is on and dashed grey when off.
    win.act_loop.toggled.connect(lambda on: show_loop_state(win, on))
    show_loop_state(win, win.act_loop.isChecked())

    win.setWindowIcon(icon("app"))
    for attr, name in ACTION_ICONS.items():
        getattr(win, attr).setIcon(icon(name))
    for name, action in win.tool_actions.items():
        action.setIcon(icon(name))
    for attr, name in PANEL_ICONS.items():
        getattr(win.panel, attr).setIcon(icon(name))
    win.playback.state_changed.connect(
        lambda state: win.act_play.setIcon(icon("stop" if state == "playing" else "play"))
    )
    _build_help_menu(win)


def _build_help_menu(win: Any) -> None:
    menu = win.menuBar().addMenu("&Help")
    win.act_shortcuts = win._action("Keyboard Shortcuts…", lambda: open_shortcuts(win), "F1", "shortcuts")
    menu.addAction(win.act_shortcuts)
    examples = menu.addMenu("Examples")
    for path in example_paths():
        a = examples.addAction(example_title(path))
        a.setObjectName(f"example_{path.stem}")
        a.triggered.connect(lambda _=False, p=path: open_example(win, p))
    if examples.isEmpty():
        examples.addAction("(none installed)").setEnabled(False)
    win.act_welcome = win._action("Welcome Screen…", lambda: show_welcome(win), None, "welcome")
    menu.addAction(win.act_welcome)
    win.help_menu = menu


def open_shortcuts(win: Any) -> ShortcutsDialog:
    """Help ▸ Keyboard Shortcuts (non-blocking)."""
    dlg = ShortcutsDialog(win)
    dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dlg.open()
    return dlg


def open_example(win: Any, path: Path) -> None:
    """Help ▸ Examples: open a sketch (asks to save changes first)."""
    if win.maybe_save():
        win.open_path(path)


def show_loop_state(win: Any, on: bool) -> None:
    """Draw the loop region as on or off."""
    win.canvas.loop_enabled = on
    win.canvas.update()
    win.roll.ruler.update()


def replay_for_mix(win: Any) -> None:
    """Mute, solo or volume changed while playing: go on playing from here with the new mix."""
    if win.playback.playing and not win.gen.running and not win.recorder.active:
        win.play()


def continue_blocked(win: Any) -> bool:
    """Say why Continue cannot run on the active track with the chosen model (True: it cannot)."""
    track = win.doc.song.tracks[win.doc.active_track]
    name = win.panel.model_name()
    reason = continue_refusal(track, name, win.panel.model_info(name), win.panel.model_infos())
    if reason is None:
        return False
    win.show_error("Continue", reason)
    return True
