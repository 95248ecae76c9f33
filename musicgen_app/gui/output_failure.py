"""The message bar shown when the sound output dies while in use (the JACK server killed, the
synth's port gone): what happened, and two ways on: **Reconnect** (open the same output again,
in a fresh player process) or **Choose output…** (the Devices dialog).

It only listens: ``PlaybackController.output_failed`` shows it, a working output
(``output_changed`` with a real name) hides it, and a failed reconnect (``error``) updates its
text. :func:`install` adds it to the main window above the piano roll, once.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

logger = logging.getLogger(__name__)

NO_OUTPUT = "no output"


class OutputFailureBar(QFrame):
    """A one-line warning with Reconnect and Choose output… buttons (hidden until needed)."""

    reconnect_requested = Signal()
    choose_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("output_failure_bar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#output_failure_bar { background: #fff1c2; color: #3a2a00; }")
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reconnect_button = QPushButton("Reconnect")
        self.reconnect_button.setObjectName("output_reconnect")
        self.reconnect_button.setToolTip("Open the same output again (after restarting JACK or the synth)")
        self.choose_button = QPushButton("Choose output…")
        self.choose_button.setObjectName("output_choose")
        self.close_button = QPushButton("×")
        self.close_button.setObjectName("output_failure_close")
        self.close_button.setFlat(True)
        self.close_button.setToolTip("Hide this message")
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.label, 1)
        for button in (self.reconnect_button, self.choose_button, self.close_button):
            row.addWidget(button)
        self.reconnect_button.clicked.connect(self._reconnect)
        self.choose_button.clicked.connect(self.choose_requested)
        self.close_button.clicked.connect(self.dismiss)
        self._reconnecting = False
        self.failed = False  # shown for a failure that no working output has cleared yet

    @property
    def text(self) -> str:
        """The message shown."""
        return self.label.text()

    def show_failure(self, message: str) -> None:
        """Say that the output died and playback stopped."""
        self._reconnecting = False
        self.failed = True
        self.label.setText(f"Sound output lost: {message}. Nothing is playing.")
        self.reconnect_button.setEnabled(True)
        self._set_shown(True)
        logger.warning("output failed: %s", message)

    def output_changed(self, name: str) -> None:
        """A working output hides the bar; ``no output`` after a reconnect says it did not work."""
        if not self.failed:
            return
        if name and name != NO_OUTPUT and not name.endswith("…"):
            self.dismiss()
        elif self._reconnecting and name == NO_OUTPUT:
            self._reconnecting = False
            self.reconnect_button.setEnabled(True)

    def open_error(self, message: str) -> None:
        """The reconnect failed (e.g. the server is still down): show why, offer it again."""
        if self.failed and self._reconnecting:
            self._reconnecting = False
            self.label.setText(f"Reconnect failed: {message}")
            self.reconnect_button.setEnabled(True)

    def dismiss(self) -> None:
        """Hide the bar."""
        self.failed = False
        self._reconnecting = False
        self._set_shown(False)

    def _reconnect(self) -> None:
        self._reconnecting = True
        self.reconnect_button.setEnabled(False)
        self.label.setText("Reconnecting…")
        self.reconnect_requested.emit()

    def _set_shown(self, shown: bool) -> None:
        self.setVisible(shown)


def install(window: Any) -> OutputFailureBar:
    """Put the bar above ``window``'s central widget (the piano roll; not a toolbar, so no saved
    window state brings it back) and wire it to the window's playback."""
    central = window.takeCentralWidget()
    holder = QWidget(window)
    column = QVBoxLayout(holder)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(0)
    bar = OutputFailureBar(holder)
    bar.setVisible(False)
    column.addWidget(bar)
    column.addWidget(central, 1)
    window.setCentralWidget(holder)
    playback = window.playback
    playback.output_failed.connect(bar.show_failure)
    playback.output_changed.connect(bar.output_changed)
    playback.error.connect(bar.open_error)
    bar.reconnect_requested.connect(lambda: playback.open_output(window.settings))
    bar.choose_requested.connect(lambda: window.devices_dialog())
    window.output_failure_bar = bar
    return bar
