"""The first-launch screen: what the app does in two lines, and the example sketches of
``resources/examples/`` to open with one click (also under Help ▸ Examples later on).

It shows once per user (``AppSettings.welcome_shown``), never when files are given on the
command line or documents are recovered, and never when ``MUSICGEN_NO_WELCOME`` or
``MUSICGEN_NO_DIALOGS`` is set (tests and scripted sessions that drive the window by keys).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from musicgen_app.core.paths import resources_dir

logger = logging.getLogger(__name__)

# file name -> (title, what it is); files not listed here show under their own name.
EXAMPLE_INFO = {
    "folk_tune.mid": ("Folk tune", "A jig in D major, 6/8, flute: continue it with melody-lstm"),
    "pop_hook.mid": ("Pop hook", "Four bars in A minor: hook, keys and bass"),
    "chorale_opening.mid": ("Chorale opening", "A four-voice phrase in G major: try a chorale model"),
    "drum_groove.mid": ("Drum groove", "Two bars of rock drums on channel 10"),
}


def examples_dir() -> Path:
    """Where the shipped example sketches are."""
    return resources_dir() / "examples"


def example_paths() -> list[Path]:
    """The example sketches, the described ones first in their listed order."""
    folder = examples_dir()
    found = sorted(folder.glob("*.mid")) if folder.is_dir() else []
    order = list(EXAMPLE_INFO)
    return sorted(found, key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))


def example_title(path: Path) -> str:
    """A sketch's title for a menu or a button."""
    return EXAMPLE_INFO.get(path.name, (path.stem.replace("_", " ").capitalize(), ""))[0]


def welcome_disabled() -> bool:
    """Whether the environment turns the first-launch screen off."""
    return bool(os.environ.get("MUSICGEN_NO_WELCOME") or os.environ.get("MUSICGEN_NO_DIALOGS"))


class WelcomeDialog(QDialog):
    """Offers the example sketches, an empty sketch, or a file of one's own."""

    def __init__(self, window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self._window = window
        self.chosen: Path | None = None
        self.setObjectName("welcome_dialog")
        self.setWindowTitle("Welcome to musicgen")
        intro = QLabel(
            "<h3>Sketch a few bars, let a model continue them</h3>"
            "Draw notes in the piano roll (or play them on a MIDI keyboard), press "
            "<b>Ctrl+Return</b> and a model continues the active track while you listen. "
            "<b>Return</b> keeps the take, <b>Backspace</b> drops it, <b>R</b> tries again.<br><br>"
            "Start from one of these sketches:"
        )
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        self.example_buttons: dict[str, QPushButton] = {}
        for path in example_paths():
            title = example_title(path)
            blurb = EXAMPLE_INFO.get(path.name, ("", ""))[1]
            b = QPushButton(f"{title}  —  {blurb}" if blurb else title)
            b.setObjectName(f"example_{path.stem}")
            b.setToolTip(str(path))
            b.setStyleSheet("text-align: left; padding: 6px;")
            b.clicked.connect(lambda _=False, p=path: self.open_example(p))
            lay.addWidget(b)
            self.example_buttons[path.name] = b
        if not self.example_buttons:
            lay.addWidget(QLabel(f"(No example sketches in {examples_dir()})"))
        row = QHBoxLayout()
        self.empty_button = QPushButton("Start with an empty sketch")
        self.empty_button.clicked.connect(self.accept)
        self.open_button = QPushButton("Open a file…")
        self.open_button.clicked.connect(self._open_file)
        row.addWidget(self.empty_button)
        row.addWidget(self.open_button)
        lay.addLayout(row)
        self.show_again = QCheckBox("Show this screen at start")
        self.show_again.setToolTip("It can always be opened again from Help ▸ Welcome screen")
        lay.addWidget(self.show_again)
        self.finished.connect(self._remember)

    def open_example(self, path: Path) -> None:
        """Open ``path`` in the window and close the screen."""
        self.chosen = path
        self.accept()
        self._window.open_path(path)

    def _open_file(self) -> None:
        self.accept()
        self._window.open_dialog()

    def _remember(self, *_: object) -> None:
        settings = self._window.settings
        settings.welcome_shown = not self.show_again.isChecked()
        settings.save()


def maybe_show_welcome(window: Any) -> WelcomeDialog | None:
    """Show the first-launch screen (without blocking) unless it was shown before or is off."""
    if window.settings.welcome_shown or welcome_disabled():
        return None
    return show_welcome(window)


def show_welcome(window: Any) -> WelcomeDialog:
    """Open the welcome screen now (Help ▸ Welcome screen)."""
    dlg = WelcomeDialog(window)
    dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dlg.open()
    logger.info("welcome screen shown with %d examples", len(dlg.example_buttons))
    return dlg
