"""The Export WAV dialog: where to write, and whether to restyle the render toward piano (paper 002).

The dialog only asks; :func:`render_job` is the plain function the window runs on a worker thread
(through its TaskRunner): render with FluidSynth, and with ``restyle`` pass the render through
the shipped style autoencoder (mono, at the model's 16 kHz) before writing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from musicgen_app.core import paths
from musicgen_app.core.song import Song

logger = logging.getLogger(__name__)

RESTYLE_MODEL = "hilbert-ae-res"  # as `musicgen audio restyle`'s default


def restyle_available(model: str = RESTYLE_MODEL) -> bool:
    """Whether the restyling model is shipped (its weights and card are in the models folder)."""
    base = paths.models_dir() / model
    return base.with_suffix(".safetensors").is_file() and base.with_suffix(".json").is_file()


class RenderDialog(QDialog):
    """Export WAV: a file name and a "Restyle toward piano" choice."""

    def __init__(self, parent: QWidget | None, path: str) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export WAV")
        self.path_edit = QLineEdit(path)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        self.restyle_box = QCheckBox("Restyle toward piano (paper 002's autoencoder; mono, 16 kHz)")
        if not restyle_available():
            self.restyle_box.setEnabled(False)
            self.restyle_box.setToolTip(f"the model {RESTYLE_MODEL} is not in {paths.models_dir()}")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Render the song through FluidSynth to:"))
        lay.addLayout(row)
        lay.addWidget(self.restyle_box)
        lay.addWidget(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export WAV", self.path_edit.text(), "WAV audio (*.wav)")
        if path:
            self.path_edit.setText(path)

    def choice(self) -> tuple[str, bool]:
        """``(path, restyle)`` as chosen."""
        return self.path_edit.text().strip(), self.restyle_box.isEnabled() and self.restyle_box.isChecked()


def render_job(song: Song, path: str | Path, soundfont: str | None = None, restyle: bool = False) -> Path:
    """Render ``song`` to the WAV ``path`` (worker thread); with ``restyle``, toward piano first."""
    from musicgen_app.gui import fileio

    if not restyle:
        return fileio.export_wav(song, path, soundfont)
    from musicgen_app.core.safe_io import check_writable_target
    from musicgen_app.errors import DeviceError
    from musicgen_app.ml.audio.restyle import as_restyler
    from musicgen_app.ml.registry import load_model
    from musicgen_app.playback.render import normalize_peak, render_song, write_wav

    p = Path(path)
    check_writable_target(p, DeviceError)
    model = as_restyler(load_model(RESTYLE_MODEL), RESTYLE_MODEL)
    audio = render_song(song, soundfont=soundfont or None, sample_rate=model.sample_rate).mean(axis=1)
    write_wav(model.restyle(normalize_peak(audio)), p, model.sample_rate)
    return p
