"""Settings ▸ Devices: sound output (FluidSynth with a SoundFont, or a MIDI port), MIDI keyboard
input, thru, and the synth's buffer (latency). Port lists are read on a task thread."""

from __future__ import annotations

import logging
import threading
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from musicgen_app.gui.settings import AppSettings
from musicgen_app.playback.jam import SILENCE_MS_RANGE

logger = logging.getLogger(__name__)


def list_ports() -> tuple[list[str], list[str]]:
    """MIDI output and input port names (empty lists when MIDI is unavailable)."""
    outs: list[str] = []
    ins: list[str] = []
    try:
        from musicgen_app.playback import midi_ports

        outs = list(midi_ports.list_output_ports())
        ins = list(midi_ports.list_ports("input"))
    except Exception as exc:
        logger.info("cannot list MIDI ports: %s", exc)
    return outs, ins


class DevicesDialog(QDialog):
    """Choose where sound goes and where notes come from."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Devices")
        self.output = QComboBox()
        self.output.addItem("FluidSynth (software synth)", "fluidsynth")
        self.output.addItem("No sound", "none")
        self.soundfont = QLineEdit(settings.soundfont)
        self.soundfont.setPlaceholderText("default SoundFont")
        browse = QPushButton("…")
        browse.clicked.connect(self._browse)
        self.buffer = QSpinBox()
        self.buffer.setRange(64, 4096)
        self.buffer.setSingleStep(64)
        self.buffer.setValue(settings.buffer_size)
        self.buffer.setSuffix(" frames")
        self.input = QComboBox()
        self.input.addItem("(none)", "")
        self.thru = QCheckBox("Play what the keyboard sends through the output (thru)")
        self.thru.setChecked(settings.thru)
        self.jam_silence = QSpinBox()
        self.jam_silence.setRange(*SILENCE_MS_RANGE)
        self.jam_silence.setSingleStep(50)
        self.jam_silence.setSuffix(" ms")
        self.jam_silence.setValue(settings.jam_silence_ms)
        self.jam_silence.setToolTip("Jam (Ctrl+J) answers when you have not played for this long")
        sf_row = QHBoxLayout()
        sf_row.addWidget(self.soundfont, 1)
        sf_row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("Output", self.output)
        form.addRow("SoundFont", sf_row)
        form.addRow("Buffer (latency)", self.buffer)
        form.addRow("MIDI keyboard", self.input)
        form.addRow("", self.thru)
        form.addRow("Jam answers after a pause of", self.jam_silence)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._settings = settings
        self._select(self.output, settings.output)
        self._ports: list[tuple[list[str], list[str]]] = []  # filled by a thread that holds no Qt object
        ports = self._ports
        threading.Thread(
            target=lambda: ports.append(list_ports()), name="musicgen-ports", daemon=True
        ).start()
        self._poll = QTimer(self)
        self._poll.timeout.connect(self._ports_ready)
        self._poll.start(50)

    def _ports_ready(self) -> None:
        if not self._ports:
            return
        self._poll.stop()
        outs, ins = self._ports[0]
        for name in outs:
            self.output.addItem(f"MIDI port: {name}", name)
        for name in ins:
            self.input.addItem(name, name)
        self._select(self.output, self._settings.output)
        self._select(self.input, self._settings.input_port)

    @staticmethod
    def _select(combo: QComboBox, value: Any) -> None:
        i = combo.findData(value)
        if i >= 0:
            combo.setCurrentIndex(i)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "SoundFont", "", "SoundFonts (*.sf2 *.sf3);;All files (*)"
        )
        if path:
            self.soundfont.setText(path)

    def apply_to(self, settings: AppSettings) -> None:
        """Copy the choices into ``settings``."""
        settings.output = str(self.output.currentData() or "fluidsynth")
        settings.soundfont = self.soundfont.text().strip()
        settings.buffer_size = self.buffer.value()
        settings.input_port = str(self.input.currentData() or "")
        settings.thru = self.thru.isChecked()
        settings.jam_silence_ms = self.jam_silence.value()
