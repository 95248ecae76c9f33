"""Track headers: one row per track with its colour, name, instrument, mute, solo, volume,
reorder and delete. Every change is one undoable edit (``core.edits`` track edits through
:meth:`Document.apply`); mute, solo and volume reach the sound through ``playback.mix``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent
from PySide6.QtWidgets import (
    QColorDialog,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from musicgen_app.core.edits import Edit, InsertTrack, MoveTrack, RemoveTrack, set_track
from musicgen_app.core.gm import GM_PROGRAM_NAMES, is_drum_track, program_name
from musicgen_app.core.song import DRUM_CHANNEL, Song, Track
from musicgen_app.gui.document import Document

logger = logging.getLogger(__name__)

# Distinct, readable on the light roll; the first is the roll's historical note blue.
PALETTE = (
    "#4285d6", "#d9622b", "#2e9e5b", "#9b4fc4", "#c9a227", "#d64280", "#2aa3a8", "#7a6a58",
)  # fmt: skip
HEADER_WIDTH = 250

ApplyFn = Callable[[Edit, str], bool]


def track_colour(song: Song, index: int) -> QColor:
    """The colour of track ``index``: its own, else the palette colour of its position."""
    track = song.tracks[index]
    return QColor(track.colour or PALETTE[index % len(PALETTE)])


def _small_button(text: str, tip: str, checkable: bool = False) -> QToolButton:
    b = QToolButton()
    b.setText(text)
    b.setToolTip(tip)
    b.setCheckable(checkable)
    b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    b.setAutoRaise(True)
    return b


class NameEdit(QLineEdit):
    """The track name field: while it has the focus, typing goes to it, not to the window's
    one-key shortcuts (R, S, D, Space, Return, Backspace...); Return or Esc hands the keys back."""

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            mods = event.modifiers() & ~(
                Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier
            )
            if mods == Qt.KeyboardModifier.NoModifier:
                event.accept()
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        super().keyPressEvent(event)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape):
            if event.key() == Qt.Key.Key_Escape:
                self.undo()
            self.clearFocus()
            self.setCursorPosition(0)


class TrackHeader(QFrame):
    """The header of one track; clicking it makes the track the one being edited."""

    activated = Signal(int)

    def __init__(self, index: int, apply: ApplyFn, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self._apply = apply
        self._doc: Document | None = None
        self.setObjectName(f"track_header_{index}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.colour_button = _small_button("", "Track colour (click to choose)")
        self.colour_button.setFixedSize(16, 36)
        self.colour_button.clicked.connect(self._choose_colour)
        self.name_edit = NameEdit()
        self.name_edit.setToolTip("Track name (type to rename)")
        self.name_edit.editingFinished.connect(self._renamed)
        self.mute_button = _small_button("M", "Mute: silence this track", True)
        self.mute_button.toggled.connect(lambda on: self._set("mute", on, "Mute" if on else "Unmute"))
        self.solo_button = _small_button("S", "Solo: hear only the soloed tracks", True)
        self.solo_button.toggled.connect(lambda on: self._set("solo", on, "Solo" if on else "Unsolo"))
        self.up_button = _small_button("▲", "Move the track up")
        self.up_button.clicked.connect(lambda: self._move(-1))
        self.down_button = _small_button("▼", "Move the track down")
        self.down_button.clicked.connect(lambda: self._move(1))
        self.delete_button = _small_button("✕", "Delete the track (Undo brings it back)")
        self.delete_button.clicked.connect(self._delete)
        self.instrument = QComboBox()
        self.instrument.setToolTip("Instrument (General MIDI program)")
        self.instrument.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.instrument.setMaxVisibleItems(24)
        self.instrument.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.instrument.setMinimumContentsLength(8)
        for program in range(len(GM_PROGRAM_NAMES)):
            self.instrument.addItem(program_name(program), program)
        self.instrument.currentIndexChanged.connect(self._instrument_chosen)
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 127)
        self.volume.setToolTip("Volume (100 plays the track as written)")
        self.volume.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.volume.setFixedWidth(60)
        self.volume.valueChanged.connect(self._volume_moved)
        self.volume.sliderReleased.connect(lambda: self._set("volume", self.volume.value(), "Change volume"))
        self.volume_label = QLabel("100")
        self.volume_label.setFixedWidth(22)
        self.volume_label.setToolTip("Volume")

        top = QHBoxLayout()
        top.setSpacing(1)
        top.addWidget(self.name_edit, 1)
        for b in (self.mute_button, self.solo_button, self.up_button, self.down_button, self.delete_button):
            top.addWidget(b)
        bottom = QHBoxLayout()
        bottom.setSpacing(2)
        bottom.addWidget(self.instrument, 1)
        bottom.addWidget(self.volume)
        bottom.addWidget(self.volume_label)
        rows = QVBoxLayout()
        rows.setSpacing(1)
        rows.addLayout(top)
        rows.addLayout(bottom)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(3)
        lay.addWidget(self.colour_button)
        lay.addLayout(rows, 1)

    # -- showing ------------------------------------------------------------------------------
    def show_track(self, doc: Document, active: bool) -> None:
        """Show the track's current state without emitting edits."""
        new_doc = doc is not self._doc
        self._doc = doc
        song = doc.song
        track = song.tracks[self.index]
        widgets: list[Any] = [
            self.name_edit,
            self.mute_button,
            self.solo_button,
            self.instrument,
            self.volume,
        ]
        for w in widgets:
            w.blockSignals(True)
        try:
            if new_doc or not self.name_edit.hasFocus():  # not while the user types a name
                self.name_edit.setText(track.name)
                self.name_edit.setCursorPosition(0)  # a long name shows its start, not its end
                self.name_edit.setToolTip(track.name)
            self.mute_button.setChecked(track.mute)
            self.solo_button.setChecked(track.solo)
            drums = is_drum_track(track)
            self.instrument.setEnabled(not drums)
            if drums:
                self.instrument.setToolTip("Drums (channel 10): General MIDI percussion")
                if self.instrument.itemData(self.instrument.count() - 1) != -1:
                    self.instrument.addItem("Drums (channel 10)", -1)
                self.instrument.setCurrentIndex(self.instrument.count() - 1)
            else:
                self.instrument.setCurrentIndex(track.program)
            if not self.volume.isSliderDown():
                self.volume.setValue(track.volume)
            self.volume_label.setText(str(track.volume))
        finally:
            for w in widgets:
                w.blockSignals(False)
        colour = track_colour(song, self.index)
        self.colour_button.setStyleSheet(f"background-color: {colour.name()}; border: none;")
        self.up_button.setEnabled(self.index > 0)
        self.down_button.setEnabled(self.index < len(song.tracks) - 1)
        self.delete_button.setEnabled(len(song.tracks) > 1)
        self.setStyleSheet(
            f"TrackHeader {{ border: 2px solid {colour.name()}; background: {colour.lighter(185).name()}; }}"
            if active
            else ""
        )

    # -- edits --------------------------------------------------------------------------------
    def _set(self, attr: str, value: Any, text: str) -> None:
        doc = self._doc
        if doc is None or self.index >= len(doc.song.tracks):  # a header being dropped (focus out)
            return
        if getattr(doc.song.tracks[self.index], attr) == value:
            return
        self._apply(set_track(self.index, **{attr: value}), f"{text} track {self.index + 1}")

    def _renamed(self) -> None:
        self._set("name", self.name_edit.text().strip(), "Rename")

    def _instrument_chosen(self, row: int) -> None:
        program = self.instrument.itemData(row)
        if isinstance(program, int) and program >= 0:
            self._set("program", program, "Change instrument of")

    def _volume_moved(self, value: int) -> None:
        self.volume_label.setText(str(value))
        if not self.volume.isSliderDown():  # the keyboard or a click on the groove: one step
            self._set("volume", value, "Change volume")

    def _choose_colour(self) -> None:
        if self._doc is None:
            return
        colour = QColorDialog.getColor(track_colour(self._doc.song, self.index), self, "Track colour")
        if colour.isValid():
            self.set_colour(colour)

    def set_colour(self, colour: QColor) -> None:
        """Give the track ``colour`` (one undo step)."""
        self._set("colour", colour.name(), "Colour")

    def _move(self, step: int) -> None:
        if self._doc is None:
            return
        to = self.index + step
        if 0 <= to < len(self._doc.song.tracks):
            self._apply(MoveTrack(self.index, to), f"Move track {self.index + 1}")

    def _delete(self) -> None:
        self._apply(RemoveTrack(self.index), f"Delete track {self.index + 1}")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.activated.emit(self.index)
        super().mousePressEvent(event)


class TrackList(QWidget):
    """The headers of every track, in a scroll area, with buttons to add tracks."""

    add_track_requested = Signal()
    mix_changed = Signal()  # mute, solo or volume changed: what is heard is different

    def __init__(self, doc: Document, apply: ApplyFn, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self._apply_fn = apply
        self.headers: list[TrackHeader] = []
        self._mix: list[tuple[bool, bool, int]] = []
        self._inner = QWidget()
        self._rows = QVBoxLayout(self._inner)
        self._rows.setContentsMargins(0, 0, 0, 0)
        self._rows.setSpacing(2)
        self._rows.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self._inner)
        self.add_button = QPushButton("+ Track")
        self.add_button.setToolTip("Add an empty instrument track")
        self.add_button.clicked.connect(self.add_track_requested)
        self.add_drums_button = QPushButton("+ Drums")
        self.add_drums_button.setToolTip("Add a drum track (General MIDI percussion on channel 10)")
        self.add_drums_button.clicked.connect(self.add_drum_track)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.add_drums_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(scroll, 1)
        lay.addLayout(buttons)
        self.setMinimumWidth(HEADER_WIDTH)
        self.set_document(doc)

    def set_document(self, doc: Document) -> None:
        """Show the tracks of ``doc``."""
        self.doc = doc
        doc.changed.connect(self.refresh)
        doc.active_track_changed.connect(self.refresh)
        self._mix = self._mix_state()
        self.refresh()

    def _apply(self, edit: Edit, text: str) -> bool:
        return self._apply_fn(edit, text)

    def _mix_state(self) -> list[tuple[bool, bool, int]]:
        return [(t.mute, t.solo, t.volume) for t in self.doc.song.tracks]

    def refresh(self, *_: object) -> None:
        """Bring the headers in line with the song (adds or drops rows as tracks come and go)."""
        tracks = self.doc.song.tracks
        while len(self.headers) < len(tracks):
            header = TrackHeader(len(self.headers), self._apply, self._inner)
            header.activated.connect(self.doc_set_active)
            self._rows.insertWidget(len(self.headers), header)
            self.headers.append(header)
        while len(self.headers) > len(tracks):
            header = self.headers.pop()
            header._doc = None  # its last signals (a name edit losing focus) change nothing
            header.setParent(None)
            header.deleteLater()
        for i, header in enumerate(self.headers):
            header.show_track(self.doc, i == self.doc.active_track)
        mix = self._mix_state()
        if mix != self._mix:
            self._mix = mix
            self.mix_changed.emit()

    def doc_set_active(self, index: int) -> None:
        """Make track ``index`` the one being edited."""
        self.doc.set_active_track(index)

    def add_drum_track(self) -> None:
        """Append a drum track on channel 10 and make it active (one undo step)."""
        tracks = self.doc.song.tracks
        track = Track(name="Drums", channel=DRUM_CHANNEL, is_drum=True)
        if self._apply(InsertTrack(len(tracks), track), "Add drum track"):
            self.doc.set_active_track(len(tracks) - 1)
