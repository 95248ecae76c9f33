"""Help ▸ Keyboard shortcuts lists every shortcut of the window from its QActions; every control
of the generation panel has a tooltip."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QListWidget,
    QScrollBar,
)

from musicgen_app.gui.editor_setup import open_shortcuts
from musicgen_app.gui.help import CANVAS_KEYS, ShortcutsDialog, shortcut_rows


def _native(text: str) -> str:
    return QKeySequence(text).toString(QKeySequence.SequenceFormat.NativeText)


def test_every_action_shortcut_is_listed(window, qtbot) -> None:
    rows = shortcut_rows(window)
    listed = {keys for _, _, keys in rows}
    listed_each = {k.strip() for keys in listed for k in keys.split(", ")}
    for action in window.findChildren(QAction):
        for seq in action.shortcuts():
            text = seq.toString(QKeySequence.SequenceFormat.NativeText)
            if text:
                assert text in listed_each, f"{action.text()!r} ({text}) is missing"
    for key in ("Space", "Ctrl+Return", "Ctrl+Y", "Ctrl+Shift+Z", "Esc", "F1"):
        assert _native(key) in listed_each, key
    commands = {(where, what) for where, what, _ in rows}
    assert ("Continue", "Continue") in commands and ("Transport", "Play/Stop") in commands
    assert all(("Piano roll", what) in commands for what, _ in CANVAS_KEYS)


def test_a_new_shortcut_shows_without_editing_a_list(window, qtbot) -> None:
    window.act_fit.setShortcuts([QKeySequence("Ctrl+0"), QKeySequence("Shift+F")])
    rows = {what: keys for _, what, keys in shortcut_rows(window)}
    assert _native("Shift+F") in rows["Show Whole Song"]


def test_the_dialog_opens_from_the_help_menu(window, qtbot) -> None:
    titles = [a.text() for a in window.help_menu.actions()]
    assert "Keyboard Shortcuts…" in titles
    dlg = open_shortcuts(window)
    qtbot.waitExposed(dlg)
    assert isinstance(dlg, ShortcutsDialog)
    assert dlg.rows() == shortcut_rows(window) and dlg.table.rowCount() > 30
    dlg.close()


def test_every_panel_control_has_a_tooltip(window) -> None:
    panel = window.panel
    kinds = (QAbstractButton, QComboBox, QAbstractSpinBox, QAbstractSlider, QListWidget)
    controls = [w for kind in kinds for w in panel.findChildren(kind)]
    # the scroll bars of the card area and of the takes list belong to them, they are not controls
    controls = [w for w in controls if not isinstance(w, QScrollBar)]
    assert len(controls) >= 14
    missing = [f"{type(w).__name__} {w.objectName()}" for w in controls if not w.toolTip()]
    assert not missing, missing
