"""Help ▸ Keyboard shortcuts: every shortcut of the window, read from its actual QActions.

The table is built each time the dialog opens from the menus (so it names the menu a command is
in) and from any action with a shortcut that no menu holds; a shortcut changed in the code shows
here without anyone editing a list. The piano roll's own keys (arrows on a selection), which are
not actions, follow under "Piano roll".
"""

from __future__ import annotations

import logging

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

logger = logging.getLogger(__name__)

# Keys the piano roll canvas handles itself (PianoRollCanvas.keyPressEvent), not QActions.
CANVAS_KEYS = (
    ("Move the selected notes earlier / later by one grid step", "Left, Right"),
    ("Move the selected notes up / down a semitone", "Up, Down"),
    ("Move the selected notes up / down an octave", "Shift+Up, Shift+Down"),
    ("Zoom around the pointer (Shift: pitch only)", "Ctrl+wheel"),
)


def _label(action: QAction) -> str:
    return action.text().replace("&", "").rstrip(".…").strip()


def _keys(action: QAction) -> str:
    seqs = [s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts()]
    return ", ".join(s for s in seqs if s)


def _menu_rows(menu: QMenu, path: str, seen: set[int], rows: list[tuple[str, str, str]]) -> None:
    for action in menu.actions():
        sub = action.menu()
        if isinstance(sub, QMenu):
            _menu_rows(sub, f"{path} ▸ {_label(action)}", seen, rows)
            continue
        keys = _keys(action)
        if keys and id(action) not in seen:
            seen.add(id(action))
            rows.append((path, _label(action), keys))


def shortcut_rows(window: QMainWindow) -> list[tuple[str, str, str]]:
    """``(where, command, keys)`` for every action of ``window`` that has a shortcut."""
    rows: list[tuple[str, str, str]] = []
    seen: set[int] = set()
    for top in window.menuBar().actions():
        menu = top.menu()
        if isinstance(menu, QMenu):
            _menu_rows(menu, _label(top), seen, rows)
    for action in window.findChildren(QAction):
        keys = _keys(action)
        if keys and id(action) not in seen and _label(action):
            seen.add(id(action))
            rows.append(("Window", _label(action), keys))
    rows += [("Piano roll", what, keys) for what, keys in CANVAS_KEYS]
    return rows


class ShortcutsDialog(QDialog):
    """A table of every keyboard shortcut."""

    def __init__(self, window: QMainWindow, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.setWindowTitle("Keyboard shortcuts")
        self.setObjectName("shortcuts_dialog")
        rows = shortcut_rows(window)
        self.table = QTableWidget(len(rows), 3, self)
        self.table.setHorizontalHeaderLabels(["Menu", "Command", "Keys"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Every shortcut of the window (Space plays, Ctrl+Return continues):"))
        lay.addWidget(self.table, 1)
        lay.addWidget(buttons)
        self.resize(620, 560)

    def rows(self) -> list[tuple[str, str, str]]:
        """The table's rows as text."""
        out = []
        for r in range(self.table.rowCount()):
            cells = [self.table.item(r, c) for c in range(3)]
            texts = [cell.text() if cell is not None else "" for cell in cells]
            out.append((texts[0], texts[1], texts[2]))
        return out
