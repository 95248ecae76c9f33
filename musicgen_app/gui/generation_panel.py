"""The generation panel: model chooser with its card, sampling settings, Continue and the takes."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from musicgen_app.gui.model_cards import details_html, summary_html
from musicgen_app.ml.keys import MODES

logger = logging.getLogger(__name__)

KEYS = [
    "C", "G", "D", "A", "E", "B", "F#", "Db", "Ab", "Eb", "Bb", "F",
    "Am", "Em", "Bm", "F#m", "C#m", "G#m", "Ebm", "Bbm", "Fm", "Cm", "Gm", "Dm",
]  # fmt: skip
# Tonics of the church modes in the key lock, in the order of KEYS' major keys.
MODE_TONICS = ["C", "G", "D", "A", "E", "B", "F#", "Db", "Ab", "Eb", "Bb", "F"]
CARD_HEIGHT = 150  # the card scrolls inside this height, so the buttons below never move


def key_lock_choices() -> list[tuple[str, str]]:
    """``(label, value)`` of every key lock: auto, off, the 24 major/minor keys, then each tonic in
    every other mode the CLI's ``--key`` accepts (ml.keys.MODES: dorian, mixolydian...). ``free``
    is off with the tonal prior off too (ml.sampling.FREE_KEY)."""
    out = [("auto (from the sketch)", "auto"), ("off", "off"), ("free", "free")]
    out += [(f"{k[:-1]} minor" if k.endswith("m") else f"{k} major", k) for k in KEYS]
    for mode in MODES:
        if mode not in ("major", "minor"):
            out += [(f"{t} {mode}", f"{t} {mode}") for t in MODE_TONICS]
    return out


def card_text(info: Any) -> str:
    """The whole card as HTML: the musician's summary, then the technical details."""
    details = details_html(info)
    return summary_html(info) + (f"<br><br>{details}" if details else "")


class GenerationPanel(QWidget):
    """Settings for Continue plus the buttons and the takes list; emits what the user asks for."""

    continue_requested = Signal()
    stop_requested = Signal()
    accept_requested = Signal()
    reject_requested = Signal()
    regenerate_requested = Signal()
    load_checkpoint_requested = Signal()
    temperature_changed = Signal(float)
    take_selected = Signal(int)
    model_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._infos: dict[str, Any] = {}
        self.model_combo = QComboBox()
        self.model_combo.setObjectName("model_combo")
        self.model_combo.currentIndexChanged.connect(self._model_chosen)
        self.load_button = QPushButton("Load checkpoint…")
        self.load_button.clicked.connect(self.load_checkpoint_requested)
        self.card = QLabel()
        self.card.setObjectName("model_card")
        self.card.setWordWrap(True)
        self.card.setTextFormat(Qt.TextFormat.RichText)
        self.card.setMinimumWidth(200)
        self.details_button = QToolButton()
        self.details_button.setText("Details ▸")
        self.details_button.setCheckable(True)
        self.details_button.setAutoRaise(True)
        self.details_button.toggled.connect(self._fold_details)
        self.card_details = QLabel()
        self.card_details.setObjectName("model_card_details")
        self.card_details.setWordWrap(True)
        self.card_details.setTextFormat(Qt.TextFormat.RichText)
        self.card_details.setVisible(False)
        self.card_details.setStyleSheet("color: #445; font-size: 8pt;")
        card_box = QWidget()
        card_lay = QVBoxLayout(card_box)
        card_lay.setContentsMargins(2, 2, 2, 2)
        card_lay.addWidget(self.card)
        card_lay.addWidget(self.details_button, 0, Qt.AlignmentFlag.AlignLeft)
        card_lay.addWidget(self.card_details)
        card_lay.addStretch(1)
        self.card_area = QScrollArea()
        self.card_area.setObjectName("model_card_area")
        self.card_area.setWidgetResizable(True)
        self.card_area.setFrameShape(QFrame.Shape.NoFrame)
        self.card_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.card_area.setWidget(card_box)
        self.card_area.setFixedHeight(CARD_HEIGHT)

        self.temperature = QSlider(Qt.Orientation.Horizontal)
        self.temperature.setRange(10, 200)  # hundredths
        self.temperature.setValue(100)
        self.temperature_label = QLabel("1.00")
        self.temperature.valueChanged.connect(self._temperature_moved)
        self.bars = QSpinBox()
        self.bars.setRange(1, 64)
        self.bars.setValue(4)
        self.bars.setSuffix(" bars")
        self.variations = QSpinBox()
        self.variations.setRange(1, 8)
        self.variations.setValue(1)
        self.random_seed = QCheckBox("random")
        self.random_seed.setChecked(True)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setEnabled(False)
        self.random_seed.toggled.connect(lambda on: self.seed.setEnabled(not on))
        self.key_lock = QComboBox()
        self.key_lock.setMaxVisibleItems(26)
        for label, value in key_lock_choices():
            self.key_lock.addItem(label, value)
        self.voices = QComboBox()
        self.voices.setObjectName("voices_combo")
        self.voices.addItem("as sketched", "sketch")
        self.voices.addItem("add harmony", "harmony")

        self.continue_button = QPushButton("Continue  (Ctrl+Return)")
        self.continue_button.setObjectName("continue_button")
        self.continue_button.clicked.connect(self.continue_requested)
        self.stop_button = QPushButton("Stop (Esc)")
        self.stop_button.clicked.connect(self.stop_requested)
        self.accept_button = QPushButton("Accept (Return)")
        self.accept_button.clicked.connect(self.accept_requested)
        self.reject_button = QPushButton("Reject (Backspace)")
        self.reject_button.clicked.connect(self.reject_requested)
        self.regen_button = QPushButton("Again (R)")
        self.regen_button.clicked.connect(self.regenerate_requested)
        self.takes = QListWidget()
        self.takes.setObjectName("takes_list")
        self.takes.currentRowChanged.connect(self._take_row)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.model_combo, 1)
        form.addRow("Model", row)
        form.addRow("", self.load_button)
        form.addRow(self.card_area)
        trow = QHBoxLayout()
        trow.addWidget(self.temperature, 1)
        trow.addWidget(self.temperature_label)
        form.addRow("Temperature", trow)
        form.addRow("Length", self.bars)
        form.addRow("Variations", self.variations)
        srow = QHBoxLayout()
        srow.addWidget(self.seed, 1)
        srow.addWidget(self.random_seed)
        form.addRow("Seed", srow)
        form.addRow("Key lock", self.key_lock)
        form.addRow("Voices", self.voices)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.continue_button)
        brow = QHBoxLayout()
        brow.addWidget(self.stop_button)
        brow.addWidget(self.regen_button)
        lay.addLayout(brow)
        arow = QHBoxLayout()
        arow.addWidget(self.accept_button)
        arow.addWidget(self.reject_button)
        lay.addLayout(arow)
        lay.addWidget(QLabel("Takes"))
        lay.addWidget(self.takes, 1)
        lay.addWidget(self.status)
        self.set_running(False)
        self.set_has_take(False)
        self._show_card(None)
        self._set_tooltips()

    def _set_tooltips(self) -> None:
        tips = {
            self.model_combo: "The model that continues your sketch (its card is below)",
            self.load_button: "Use a checkpoint file trained elsewhere (.safetensors with its .json card)",
            self.details_button: "Show the technical card: paper, architecture, data and test figures",
            self.temperature: "Temperature: below 1 plays it safe and repeats more, above 1 takes more risks",
            self.temperature_label: "The temperature chosen",
            self.bars: "How many bars to write after the end of the sketch (or of the loop)",
            self.variations: "How many takes to write in one go; pick one in the list below",
            self.seed: "The random seed: the same seed and settings give the same take again",
            self.random_seed: "A new random seed for every take",
            self.key_lock: "Keep the notes in a key: from the sketch (auto), none (off: the models "
            "still lean toward the sketch's key), none at all (free), or the one chosen",
            self.voices: "Texture: as sketched (a single line stays a line) or add harmony (the "
            "polyphonic models may write chords)",
            self.continue_button: "Continue the active track from its end (Ctrl+Return)",
            self.stop_button: "Stop generating and playing (Esc)",
            self.accept_button: "Keep the shown take in the track (Return)",
            self.reject_button: "Drop the shown take (Backspace)",
            self.regen_button: "Drop the takes and write new ones (R)",
            self.takes: "The takes of the last Continue: click one to hear it",
            self.card: "What the model is good at, what it learnt from, how it did on music it never saw",
            self.status: "What the generator is doing",
        }
        for widget, tip in tips.items():
            widget.setToolTip(tip)

    def _fold_details(self, shown: bool) -> None:
        self.card_details.setVisible(shown)
        self.details_button.setText("Details ▾" if shown else "Details ▸")

    def _show_card(self, info: Any) -> None:
        self.card.setText(summary_html(info))
        details = details_html(info)
        self.card_details.setText(details)
        self.details_button.setVisible(bool(details))

    # -- models -------------------------------------------------------------------------------
    def set_models(self, infos: list[Any], preferred: str = "") -> None:
        """Fill the chooser from registry entries (keeps checkpoints loaded by path)."""
        current = preferred or self.model_name()
        self.model_combo.blockSignals(True)
        try:
            for info in infos:
                name = str(getattr(info, "name", info))
                if name not in self._infos:
                    self.model_combo.addItem(name, name)
                self._infos[name] = info
            i = self.model_combo.findData(current) if current else -1
            self.model_combo.setCurrentIndex(i if i >= 0 else (0 if self.model_combo.count() else -1))
        finally:
            self.model_combo.blockSignals(False)
        self._model_chosen()

    def add_checkpoint(self, path: str, info: Any = None) -> None:
        """Add a checkpoint loaded from a file and select it."""
        if self.model_combo.findData(path) < 0:
            self.model_combo.addItem(f"{info.name if info is not None else path} (file)", path)
        self._infos[path] = info
        self.model_combo.setCurrentIndex(self.model_combo.findData(path))

    def model_info(self, name: str) -> Any:
        """The registry entry of model ``name`` (None when unknown)."""
        return self._infos.get(name)

    def model_infos(self) -> list[Any]:
        """Every model offered."""
        return [i for i in self._infos.values() if i is not None]

    def model_name(self) -> str:
        """The chosen model (a registry name or a checkpoint path)."""
        return str(self.model_combo.currentData() or "")

    def _model_chosen(self, *_: object) -> None:
        name = self.model_name()
        self._show_card(self._infos.get(name))
        self.continue_button.setEnabled(bool(name))
        if name:
            self.model_changed.emit(name)

    # -- settings -----------------------------------------------------------------------------
    def temperature_value(self) -> float:
        """The temperature chosen."""
        return self.temperature.value() / 100

    def _temperature_moved(self, v: int) -> None:
        self.temperature_label.setText(f"{v / 100:.2f}")
        self.temperature_changed.emit(v / 100)

    def seed_value(self) -> int | None:
        """The fixed seed, or None for random."""
        return None if self.random_seed.isChecked() else self.seed.value()

    def key_lock_value(self) -> str | None:
        """``auto``, ``free``, a key name, or None (off)."""
        v = self.key_lock.currentData()
        return None if v == "off" else str(v)

    def voices_value(self) -> str:
        """``sketch`` (keep the sketch's texture) or ``harmony`` (add voices)."""
        return str(self.voices.currentData())

    def set_voices(self, value: str) -> None:
        """Select the texture by its stored value (``sketch`` or ``harmony``; others are ignored)."""
        i = self.voices.findData(value)
        if i >= 0:
            self.voices.setCurrentIndex(i)

    def set_key_lock(self, value: str) -> None:
        """Select a key lock by its stored value."""
        i = self.key_lock.findData(value)
        if i >= 0:
            self.key_lock.setCurrentIndex(i)

    # -- state --------------------------------------------------------------------------------
    def set_running(self, running: bool) -> None:
        """Enable the buttons that make sense while generating (or not)."""
        self.stop_button.setEnabled(running)

    def set_has_take(self, has: bool) -> None:
        """Enable accept/reject when a take is shown."""
        self.accept_button.setEnabled(has)
        self.reject_button.setEnabled(has)

    def show_takes(self, labels: list[str], current: int) -> None:
        """Refresh the takes list."""
        self.takes.blockSignals(True)
        try:
            self.takes.clear()
            self.takes.addItems(labels)
            if 0 <= current < len(labels):
                self.takes.setCurrentRow(current)
        finally:
            self.takes.blockSignals(False)

    def _take_row(self, row: int) -> None:
        if row >= 0:
            self.take_selected.emit(row)
