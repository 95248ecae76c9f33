"""The piano roll widgets: note canvas, keyboard strip, ruler, velocity lane, and the view that
ties them to one :class:`RollGeometry` and the scroll bars.

The canvas caches grid + notes in a pixmap keyed by everything that changes them (geometry,
document version, selection, snap); the playhead, the streaming take and tool ghosts are
drawn on top, so moving the playhead repaints two thin strips only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollBar, QSizePolicy, QVBoxLayout, QWidget

from musicgen_app.core.edits import set_velocity
from musicgen_app.core.gm import is_drum_track
from musicgen_app.core.song import Note
from musicgen_app.errors import EditError
from musicgen_app.gui.document import Document
from musicgen_app.gui.drums import DRUM_KEYBOARD_WIDTH, paint_drum_keys
from musicgen_app.gui.piano_roll import render
from musicgen_app.gui.piano_roll.chord_lane import ChordLane
from musicgen_app.gui.piano_roll.geometry import PITCHES, RollGeometry, snap_ticks
from musicgen_app.gui.piano_roll.tools import TOOLS, Tool
from musicgen_app.gui.track_header import track_colour

logger = logging.getLogger(__name__)

KEYBOARD_WIDTH = 56
RULER_HEIGHT = 24
VELOCITY_HEIGHT = 64
NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]

COLORS = {
    "row_light": QColor(250, 250, 252),
    "row_dark": QColor(232, 234, 240),
    "c_line": QColor(200, 204, 214),
    "bar": QColor(120, 124, 140),
    "beat": QColor(190, 194, 206),
    "sub": QColor(222, 224, 232),
    "note": QColor(66, 133, 214),
    "note_border": QColor(30, 70, 130),
    "selected": QColor(240, 150, 40),
    "faded": QColor(150, 160, 180, 110),
    "take": QColor(46, 170, 100),
    "take_border": QColor(20, 100, 55),
    "ghost": QColor(240, 150, 40, 120),
    "hidden": QColor(220, 60, 60, 120),
    "record": QColor(210, 50, 50),
    "playhead": QColor(220, 40, 40),
    "loop": QColor(60, 160, 230, 40),
    "loop_edge": QColor(30, 120, 200),
    "loop_off": QColor(140, 140, 150),
    "band": QColor(60, 120, 220, 50),
}


def pitch_name(pitch: int) -> str:
    """Scientific pitch name, C4 = 60."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def paint_loop(
    p: QPainter,
    g: RollGeometry,
    loop: tuple[int, int],
    top: float,
    height: float,
    on: bool,
    *,
    in_ruler: bool,
) -> None:
    """The loop region: filled blue with solid edges while Loop is on, dashed grey edges when off."""
    x0, x1 = g.tick_to_x(loop[0]), g.tick_to_x(loop[1])
    if on:
        p.fillRect(QRectF(x0, top, x1 - x0, height), QColor(60, 160, 230, 150 if in_ruler else 40))
        edge = QPen(COLORS["loop_edge"], 2)
    else:
        if in_ruler:
            p.fillRect(QRectF(x0, top, x1 - x0, height), QColor(150, 150, 160, 60))
        edge = QPen(COLORS["loop_off"], 1, Qt.PenStyle.DashLine)
    p.setPen(edge)
    for x in (x0, x1):
        p.drawLine(QPointF(x, top), QPointF(x, top + height))


class PianoRollCanvas(QWidget):
    """The grid and the notes: painting, hit testing, tools, keyboard editing."""

    geometry_changed = Signal()
    message = Signal(str)
    note_audition = Signal(int, int)  # pitch, velocity: sound a note the user touched

    def __init__(self, doc: Document, geometry: RollGeometry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.geom = geometry
        self.snap_name = "1/16"
        self.default_velocity = 100
        self.show_other_tracks = True
        self.playhead_tick: float = 0.0
        self.follow_playhead = False
        self.loop_enabled = False  # the Loop switch: the region is drawn bright when on, dim when off
        self.take_notes: list[Note] = []  # the streaming/auditioned take, drawn in its own colour
        self.take_reveal_tick: float | None = None  # draw take notes only up to here (None: all)
        self.record_notes: list[Note] = []
        self.last_sounded: int | None = None
        self.last_paint_visible = 0
        self._arrays = render.ArrayCache()
        self._bars = render.BarGrid()
        self._layer: QPixmap | None = None
        self._layer_key: tuple | None = None
        self._tool: Tool = TOOLS["draw"](self)
        self._pressed = False
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 120)
        doc.changed.connect(self.update)
        doc.selection_changed.connect(self.update)

    def set_document(self, doc: Document) -> None:
        """Show another document."""
        self.doc = doc
        doc.changed.connect(self.update)
        doc.selection_changed.connect(self.update)
        self.take_notes = []
        self._layer_key = None
        self.update()

    # -- tools and snap -----------------------------------------------------------------------
    @property
    def tool(self) -> Tool:
        """The current tool."""
        return self._tool

    def set_tool(self, name: str) -> None:
        """Switch tool by name (``select``, ``draw``, ``erase``)."""
        if name != self._tool.name:
            self._tool = TOOLS[name](self)
            self.setCursor(self._tool.cursor)

    def snap_step(self) -> int:
        """The snap grid in ticks (1 when snapping is off)."""
        return snap_ticks(self.snap_name, self.doc.song.resolution, self.doc.song.ticks_per_bar())

    def set_snap(self, name: str) -> None:
        """Choose the snap grid (a key of geometry.SNAP_CHOICES)."""
        self.snap_name = name
        self.update()

    def sound_note(self, pitch: int, velocity: int) -> None:
        """Ask the window to sound ``pitch`` (a key click, a note drawn or dragged)."""
        self.last_sounded = pitch
        self.note_audition.emit(pitch, velocity)

    # -- hit testing --------------------------------------------------------------------------
    def arrays(self) -> list[render.NoteArrays]:
        """Note arrays of every track for the current document version."""
        return self._arrays.get(self.doc.song, self.doc.version)

    def bar_grid(self) -> render.BarGrid:
        """Bar lines of the song, at least up to the right edge of the view."""
        return self._bars.get(self.doc.song, self.geom.visible_ticks()[1])

    def note_at(self, pos: QPointF) -> Note | None:
        """The active track's note under ``pos`` (the last drawn one when several overlap)."""
        g = self.geom
        arrs = self.arrays()
        if self.doc.active_track >= len(arrs):
            return None
        arr = arrs[self.doc.active_track]
        pitch = g.y_to_pitch(pos.y())
        slack = 2.0 / g.px_per_tick
        tick = g.x_to_tick(pos.x())
        idx = arr.visible(tick - slack, tick + slack, pitch, pitch)
        best = None
        for i in idx.tolist():
            n = arr.notes[i]
            if n.start_tick - slack <= tick < n.end_tick + slack:
                best = n
        return best

    def notes_in_rect(self, rect: QRectF) -> list[Note]:
        """Notes of the active track that intersect ``rect`` (pixels)."""
        g = self.geom
        arr = self.arrays()[self.doc.active_track]
        t0, t1 = g.x_to_tick(rect.left()), g.x_to_tick(rect.right())
        p_hi, p_lo = g.y_to_pitch(rect.top()), g.y_to_pitch(rect.bottom())
        return [arr.notes[i] for i in arr.visible(t0, t1, p_lo, p_hi).tolist()]

    # -- painting -----------------------------------------------------------------------------
    def _key(self) -> tuple:
        g = self.geom
        return (
            g.px_per_tick,
            g.key_height,
            g.scroll_tick,
            g.scroll_y,
            g.width,
            g.height,
            id(self.doc),
            self.doc.version,
            self.doc.selection_version,
            self.doc.active_track,
            self.snap_name,
            self.show_other_tracks,
        )

    def invalidate(self) -> None:
        """Drop the cached layer (colours or options changed)."""
        self._layer_key = None
        self.update()

    def render_layer(self) -> QPixmap:
        """Grid and notes for the current state (cached)."""
        key = self._key()
        if self._layer is not None and key == self._layer_key:
            return self._layer
        g = self.geom
        pm = QPixmap(max(1, g.width), max(1, g.height))
        p = QPainter(pm)
        try:
            render.paint_rows(p, g, COLORS["row_light"], COLORS["row_dark"], COLORS["c_line"])
            render.paint_grid(p, self.bar_grid(), g, self.snap_step(), COLORS)
            arrs = self.arrays()
            song = self.doc.song
            visible = 0
            if self.show_other_tracks:
                for i, arr in enumerate(arrs):
                    if i != self.doc.active_track:  # each in its own colour, pale and borderless
                        faded = track_colour(song, i)
                        faded.setAlpha(COLORS["faded"].alpha())
                        render.paint_notes(p, arr, g, faded, None)
            if self.doc.active_track < len(arrs):
                colour = track_colour(song, self.doc.active_track)
                visible = render.paint_notes(
                    p,
                    arrs[self.doc.active_track],
                    g,
                    colour,
                    colour.darker(220),
                    selected=self.doc.selection,
                    selected_fill=COLORS["selected"],
                    shade=True,
                )
            self.last_paint_visible = visible
        finally:
            p.end()
        self._layer, self._layer_key = pm, key
        return pm

    def _paint_overlay_notes(
        self, p: QPainter, notes: Sequence[Note], fill: QColor, border: QColor | None
    ) -> None:
        if not notes:
            return
        g = self.geom
        t0, t1 = g.visible_ticks()
        rects = []
        h = max(1.0, g.key_height - (1 if g.key_height >= 4 else 0))
        for n in notes:
            if n.end_tick < t0 or n.start_tick > t1:
                continue
            x0 = g.tick_to_x(n.start_tick)
            rects.append(QRectF(x0, g.pitch_to_y(n.pitch), max(1.0, n.duration_ticks * g.px_per_tick), h))
        if rects:
            p.setPen(QPen(border, 1) if border is not None else Qt.PenStyle.NoPen)
            p.setBrush(fill)
            p.drawRects(rects)

    # -- overlays: what the takes controller and the recorder ask the roll to draw --------------
    def show_take(self, notes: Iterable[Note], *, reveal_from: float | None = None) -> None:
        """Draw ``notes`` as the take, in its own colour. With ``reveal_from`` a note shows once
        the playhead reaches it (a take streaming while it plays), from that tick on."""
        self.take_notes = list(notes)
        self.take_reveal_tick = reveal_from
        self.update()

    def update_take(self, notes: Iterable[Note]) -> None:
        """New notes of the take shown (keeps how far it is revealed)."""
        self.take_notes = list(notes)
        self.update()

    def reveal_take_to(self, tick: float) -> None:
        """The playhead moved: a revealing take shows its notes up to ``tick``."""
        if self.take_reveal_tick is not None:
            self.take_reveal_tick = tick

    def reveal_whole_take(self) -> None:
        """Show all of the take (playback stopped, or another take was chosen)."""
        if self.take_reveal_tick is not None:
            self.take_reveal_tick = None
            self.update()

    def clear_take(self) -> None:
        """Draw no take."""
        self.show_take([])

    def show_recording(self, notes: Iterable[Note]) -> None:
        """Draw the notes being recorded (held ones grow with the playhead)."""
        self.record_notes = list(notes)
        self.update()

    def visible_take_notes(self) -> list[Note]:
        """The take's notes that are revealed (sounding or already played)."""
        if self.take_reveal_tick is None:
            return self.take_notes
        return [n for n in self.take_notes if n.start_tick <= self.take_reveal_tick]

    def paintEvent(self, event: QPaintEvent) -> None:
        g = self.geom
        p = QPainter(self)
        try:
            p.drawPixmap(0, 0, self.render_layer())
            loop = self.doc.song.loop
            if loop:
                paint_loop(p, g, loop, 0, g.height, self.loop_enabled, in_ruler=False)
            self._paint_overlay_notes(p, self.visible_take_notes(), COLORS["take"], COLORS["take_border"])
            self._paint_overlay_notes(p, self.record_notes, COLORS["record"], None)
            self._paint_overlay_notes(p, list(self._tool.hidden()), COLORS["hidden"], None)
            self._paint_overlay_notes(p, self._tool.preview(), COLORS["ghost"], COLORS["note_border"])
            band = self._tool.band()
            if band is not None:
                p.setPen(QPen(COLORS["note_border"], 1, Qt.PenStyle.DashLine))
                p.setBrush(COLORS["band"])
                p.drawRect(band)
            x = g.tick_to_x(self.playhead_tick)
            if -2 <= x <= g.width + 2:
                p.fillRect(QRectF(x, 0, 2, g.height), COLORS["playhead"])
        finally:
            p.end()

    # -- playhead -----------------------------------------------------------------------------
    def set_playhead(self, tick: float) -> None:
        """Move the playhead, repainting only the strips it leaves and enters."""
        g = self.geom
        old_x = g.tick_to_x(self.playhead_tick)
        self.playhead_tick = tick
        new_x = g.tick_to_x(tick)
        if self.follow_playhead and (new_x > g.width * 0.92 or new_x < 0):
            g.scroll_tick = max(0.0, tick - g.width * 0.05 / g.px_per_tick)
            self.geometry_changed.emit()
            self.update()
            return
        if self.take_notes and self.take_reveal_tick is not None:
            self.update()
            return
        h = self.height()
        self.update(QRect(int(old_x) - 2, 0, 6, h))
        self.update(QRect(int(new_x) - 2, 0, 6, h))

    # -- events -------------------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        self.geom.width = max(1, event.size().width())
        self.geom.height = max(1, event.size().height())
        self.geom.clamp_scroll()
        self.geometry_changed.emit()
        super().resizeEvent(event)

    def sizeHint(self) -> QSize:
        return QSize(900, 500)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        logger.debug("canvas press %s at %s", event.button(), event.position())
        if event.button() != Qt.MouseButton.LeftButton:
            return
        self.setFocus()
        self._pressed = True
        self._tool.press(event.position(), event.modifiers())
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pressed:
            self._tool.move(event.position(), event.modifiers())
        else:
            self.setCursor(self._tool.hover_cursor(event.position()))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or not self._pressed:
            return
        self._pressed = False
        self._tool.release(event.position(), event.modifiers())
        self.last_sounded = None
        self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:
        g = self.geom
        delta = event.angleDelta().y() or event.angleDelta().x()
        mods = event.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            factor = 1.25 if delta > 0 else 0.8
            pos = event.position()
            if mods & Qt.KeyboardModifier.ShiftModifier:
                g.zoom_y(factor, pos.y())
            else:
                g.zoom_x(factor, pos.x())
                if not mods & Qt.KeyboardModifier.AltModifier:
                    g.zoom_y(factor, pos.y())
        elif mods & Qt.KeyboardModifier.ShiftModifier or event.angleDelta().x():
            g.scroll_tick = max(0.0, g.scroll_tick - delta / 120 * g.width * 0.1 / g.px_per_tick)
        else:
            g.scroll_y -= delta / 120 * g.key_height * 3
            g.clamp_scroll()
        self.geometry_changed.emit()
        self.update()
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down) and self.doc.selection:
            step = self.snap_step() if self.snap_step() > 1 else self.doc.song.resolution // 4
            dt = -step if key == Qt.Key.Key_Left else step if key == Qt.Key.Key_Right else 0
            dp = (1 if key == Qt.Key.Key_Up else -1 if key == Qt.Key.Key_Down else 0) * (12 if shift else 1)
            self.move_selection(dt, dp)
            event.accept()
            return
        super().keyPressEvent(event)

    def move_selection(self, delta_ticks: int, delta_pitch: int) -> None:
        """Move the selected notes (one undo step)."""
        from musicgen_app.core.edits import move_notes

        notes = self.doc.selected_notes()
        if not notes:
            return
        edit = move_notes(self.doc.active_track, notes, delta_ticks, delta_pitch)
        if edit.old == edit.new:
            return
        try:
            self.doc.apply(edit, "Transpose notes" if delta_pitch and not delta_ticks else "Move notes")
        except EditError as exc:
            self.message.emit(str(exc))
        if delta_pitch:
            self.sound_note(edit.new[0].pitch, edit.new[0].velocity)


class KeyboardStrip(QWidget):
    """Piano keys on the left; pressing one sounds it. Keys held on the MIDI keyboard light up."""

    key_pressed = Signal(int)
    key_released = Signal(int)

    def __init__(self, geometry: RollGeometry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.geom = geometry
        self._down: int | None = None
        #: pitches held on the MIDI keyboard (lit like a clicked key)
        self.held: set[int] = set()
        #: a drum track is active: the keys are named by the GM percussion map
        self.drums = False
        self.setFixedWidth(KEYBOARD_WIDTH)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)

    def set_drums(self, drums: bool) -> None:
        """Name the keys as drums (Kick, Snare, Closed Hat…) or as pitches."""
        if drums != self.drums:
            self.drums = drums
            self.setFixedWidth(DRUM_KEYBOARD_WIDTH if drums else KEYBOARD_WIDTH)
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        g = self.geom
        p = QPainter(self)
        if self.drums:
            try:
                lit = self.held | ({self._down} if self._down is not None else set())
                paint_drum_keys(p, g, self.width(), lit)
            finally:
                p.end()
            return
        try:
            p.fillRect(self.rect(), QColor(255, 255, 255))
            lo, hi = g.visible_pitches()
            font = QFont(p.font())
            font.setPointSizeF(max(6.0, min(9.0, g.key_height * 0.7)))
            p.setFont(font)
            for pitch in range(lo, hi + 1):
                y = g.pitch_to_y(pitch)
                black = pitch % 12 in render.BLACK_KEYS
                rect = QRectF(0, y, self.width() * (0.62 if black else 1.0), g.key_height)
                colour = QColor(40, 40, 48) if black else QColor(255, 255, 255)
                if pitch == self._down or pitch in self.held:
                    colour = COLORS["selected"]
                p.fillRect(rect, colour)
                p.setPen(QColor(180, 180, 190))
                p.drawLine(QPointF(0, y + g.key_height), QPointF(self.width(), y + g.key_height))
                if pitch % 12 == 0 and g.key_height >= 7:
                    p.setPen(QColor(60, 60, 70))
                    p.drawText(
                        QRectF(0, y, self.width() - 3, g.key_height),
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                        pitch_name(pitch),
                    )
        finally:
            p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._down = self.geom.y_to_pitch(event.position().y())
        self.key_pressed.emit(self._down)
        self.update()

    def show_midi(self, messages: list) -> None:
        """Light the keys of note-ons and put them out at note-offs (from the MIDI keyboard)."""
        before = set(self.held)
        for msg in messages:
            if msg.type == "note_on" and msg.velocity > 0:
                self.held.add(msg.note)
            elif msg.type in ("note_on", "note_off"):
                self.held.discard(msg.note)
            elif msg.type == "control_change" and msg.control in (120, 123):
                self.held.clear()
        if self.held != before:
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._down is not None:
            self.key_released.emit(self._down)
        self._down = None
        self.update()


class Ruler(QWidget):
    """Bar numbers and beats; click moves the playhead, drag sets the loop region."""

    seek_requested = Signal(int)
    loop_requested = Signal(object)  # (start_tick, end_tick) or None

    def __init__(self, canvas: PianoRollCanvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.geom = canvas.geom
        self.playhead_tick = 0.0
        self._press_x: float | None = None
        self._drag: tuple[int, int] | None = None
        self.setFixedHeight(RULER_HEIGHT)

    @property
    def doc(self) -> Document:
        """The document of the canvas."""
        return self.canvas.doc

    def _beat_snap(self, x: float) -> int:
        beat = self.doc.song.resolution
        return self.geom.snap(self.geom.x_to_tick(x), beat)

    def paintEvent(self, event: QPaintEvent) -> None:
        g = self.geom
        song = self.doc.song
        p = QPainter(self)
        try:
            p.fillRect(self.rect(), QColor(236, 238, 244))
            loop = self._drag or song.loop
            if loop:
                on = self.canvas.loop_enabled or self._drag is not None
                paint_loop(p, g, loop, 0, self.height(), on, in_ruler=True)
            grid = self.canvas.bar_grid()
            bars, beats, _ = render.grid_lines(grid, g, 1)
            p.setPen(QColor(150, 150, 165))
            for x in beats:
                p.drawLine(QPointF(x, self.height() * 0.65), QPointF(x, self.height()))
            p.setPen(QColor(60, 60, 70))
            last_label = -1e9
            for x in bars:
                p.drawLine(QPointF(x, self.height() * 0.35), QPointF(x, self.height()))
                bar_number = grid.index_at(g.x_to_tick(x) + 0.5) + 1
                if x - last_label >= 8 * len(str(bar_number)) + 10:
                    p.drawText(QPointF(x + 3, 12), str(bar_number))
                    last_label = x
            x = g.tick_to_x(self.playhead_tick)
            p.fillRect(QRectF(x - 1, 0, 3, self.height()), COLORS["playhead"])
        finally:
            p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            self.loop_requested.emit(None)
            return
        self._press_x = event.position().x()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._press_x is None:
            return
        if abs(event.position().x() - self._press_x) >= 4:
            a, b = sorted((self._beat_snap(self._press_x), self._beat_snap(event.position().x())))
            self._drag = (a, b) if b > a else None
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._press_x is None:
            return
        if self._drag is not None:
            self.loop_requested.emit(self._drag)
        else:
            self.seek_requested.emit(max(0, round(self.geom.x_to_tick(self._press_x))))
        self._press_x = None
        self._drag = None
        self.update()


class VelocityLabel(QLabel):
    """Left of the velocity lane: its name and the value under the pointer, dragged or selected."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Velocity", parent)
        self.setObjectName("velocity_label")
        self.setFixedSize(KEYBOARD_WIDTH, VELOCITY_HEIGHT)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setToolTip("Note velocity (loudness, 1-127): drag a bar up or down to change it")
        self.setStyleSheet("font-size: 8pt; color: #404050; background: #eceef4;")

    def show_value(self, value: str) -> None:
        """Show ``value`` under the lane's name."""
        text = f"Velocity\n{value}" if value else "Velocity"
        if text != self.text():
            self.setText(text)


class VelocityLane(QWidget):
    """Velocity bars of the active track; drag vertically on a bar to set velocities (one step)."""

    def __init__(self, canvas: PianoRollCanvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self._targets: list[Note] = []
        self._value: int | None = None
        self._hover: int | None = None
        self.label: VelocityLabel | None = None
        self.setFixedHeight(VELOCITY_HEIGHT)
        self.setMouseTracking(True)
        self.setToolTip("Velocity: drag a bar up or down (the selected notes move together)")

    def readout(self) -> str:
        """The value to show: being dragged, under the pointer, or of the selection (a range)."""
        if self._targets and self._value is not None:
            return str(self._value)
        if self._hover is not None:
            return str(self._hover)
        vels = sorted({n.velocity for n in self.canvas.doc.selection})
        if not vels:
            return ""
        return str(vels[0]) if len(vels) == 1 else f"{vels[0]}–{vels[-1]}"

    def _near(self, x: float) -> list[Note]:
        g = self.canvas.geom
        arr, idx = self._visible()
        return [arr.notes[i] for i in idx if abs(g.tick_to_x(arr.notes[i].start_tick) - x) <= 4]

    def _visible(self) -> tuple[render.NoteArrays, list[int]]:
        g = self.canvas.geom
        arr = self.canvas.arrays()[self.canvas.doc.active_track]
        t0, t1 = g.visible_ticks()
        return arr, arr.visible(t0, t1).tolist()

    def _value_at(self, y: float) -> int:
        return max(1, min(127, round((1 - y / max(1, self.height() - 2)) * 127)))

    def paintEvent(self, event: QPaintEvent) -> None:
        g = self.canvas.geom
        if self.label is not None:
            self.label.show_value(self.readout())
        p = QPainter(self)
        try:
            p.fillRect(self.rect(), QColor(246, 247, 250))
            arr, idx = self._visible()
            sel = self.canvas.doc.selection
            h = self.height() - 2
            rects: list[QRectF] = []
            sel_rects: list[QRectF] = []
            if len(idx) > render.RECT_LIMIT:
                # Zoomed out: the loudest note of each pixel column.
                ii = np.asarray(idx)
                cols = np.clip(
                    ((arr.start[ii] - g.scroll_tick) * g.px_per_tick).astype(np.int64), 0, g.width - 1
                )
                vmax = np.zeros(g.width, dtype=np.int64)
                np.maximum.at(vmax, cols, arr.velocity[ii])
                for x in np.nonzero(vmax)[0].tolist():
                    bh = h * int(vmax[x]) / 127
                    rects.append(QRectF(x, h - bh + 1, 1, bh))
                idx = []
            targets = set(self._targets)
            for i in idx:
                n = arr.notes[i]
                v = self._value if (self._value is not None and n in targets) else n.velocity
                bh = h * v / 127
                r = QRectF(g.tick_to_x(n.start_tick), h - bh + 1, 3, bh)
                (sel_rects if n in sel else rects).append(r)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(COLORS["note"])
            if rects:
                p.drawRects(rects)
            p.setBrush(COLORS["selected"])
            if sel_rects:
                p.drawRects(sel_rects)
        finally:
            p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        near = self._near(event.position().x())
        sel = self.canvas.doc.selection
        if any(n in sel for n in near):
            near = sorted(sel)
        self._targets = near
        self._value = self._value_at(event.position().y()) if near else None
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._targets:
            self._value = self._value_at(event.position().y())
            self.update()
            return
        near = self._near(event.position().x())
        hover = max(n.velocity for n in near) if near else None
        if hover != self._hover:
            self._hover = hover
            self.update()

    def leaveEvent(self, event: Any) -> None:
        self._hover = None
        self.update()
        super().leaveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        targets, value = self._targets, self._value
        self._targets, self._value = [], None
        if targets and value is not None:
            try:
                self.canvas.doc.apply(
                    set_velocity(self.canvas.doc.active_track, targets, value), "Set velocity"
                )
            except EditError as exc:
                self.canvas.message.emit(str(exc))
        self.update()


class PianoRollView(QWidget):
    """Chord lane, ruler, keyboard, canvas, velocity lane and scroll bars sharing one geometry."""

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.geometry_model = RollGeometry()
        g = self.geometry_model
        self.canvas = PianoRollCanvas(doc, g, self)
        self.keyboard = KeyboardStrip(g, self)
        self.ruler = Ruler(self.canvas, self)
        self.chord_lane = ChordLane(self.canvas, self)
        self.velocity = VelocityLane(self.canvas, self)
        self.velocity_label = VelocityLabel(self)
        self.velocity.label = self.velocity_label
        self.hbar = QScrollBar(Qt.Orientation.Horizontal, self)
        self.vbar = QScrollBar(Qt.Orientation.Vertical, self)
        lay = QGridLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        top = QWidget(self)  # the chord lane above the ruler
        top_lay = QVBoxLayout(top)
        top_lay.setContentsMargins(0, 0, 0, 0)
        top_lay.setSpacing(0)
        top_lay.addWidget(self.chord_lane)
        top_lay.addWidget(self.ruler)
        lay.addWidget(top, 0, 1)
        lay.addWidget(self.keyboard, 1, 0)
        lay.addWidget(self.canvas, 1, 1)
        lay.addWidget(self.vbar, 1, 2)
        lay.addWidget(self.velocity_label, 2, 0)
        lay.addWidget(self.velocity, 2, 1)
        lay.addWidget(self.hbar, 3, 1)
        self.canvas.geometry_changed.connect(self._sync)
        self.hbar.valueChanged.connect(self._h_scrolled)
        self.vbar.valueChanged.connect(self._v_scrolled)
        doc.changed.connect(self._doc_changed)
        doc.selection_changed.connect(self.velocity.update)
        doc.active_track_changed.connect(self._track_changed)
        self._syncing = False
        self._logged_geometry: tuple = ()
        g.key_height = 10
        g.center_pitch(66)
        self._track_changed()

    @property
    def doc(self) -> Document:
        """The document shown."""
        return self.canvas.doc

    def set_document(self, doc: Document) -> None:
        """Show another document."""
        self.canvas.set_document(doc)
        doc.changed.connect(self._doc_changed)
        doc.selection_changed.connect(self.velocity.update)
        doc.active_track_changed.connect(self._track_changed)
        self._track_changed()
        self.fit_song()

    def _track_changed(self, *_: object) -> None:
        doc = self.doc
        self.keyboard.set_drums(is_drum_track(doc.song.tracks[doc.active_track]))

    def _doc_changed(self) -> None:
        self._track_changed()
        self.ruler.update()
        self.velocity.update()
        self._sync()

    def _content_end_tick(self) -> int:
        song = self.doc.song
        return max(song.end_tick, song.ticks_per_bar() * 8) + song.ticks_per_bar() * 4

    def _sync(self) -> None:
        g = self.geometry_model
        self._syncing = True
        try:
            visible = int(g.width / g.px_per_tick)
            self.hbar.setRange(0, max(0, self._content_end_tick() - visible // 2))
            self.hbar.setPageStep(max(1, visible))
            self.hbar.setSingleStep(max(1, visible // 20))
            self.hbar.setValue(int(g.scroll_tick))
            self.vbar.setRange(0, max(0, int(g.content_height - g.height)))
            self.vbar.setPageStep(max(1, g.height))
            self.vbar.setSingleStep(max(1, int(g.key_height)))
            self.vbar.setValue(int(g.scroll_y))
        finally:
            self._syncing = False
        for w in (self.ruler, self.chord_lane, self.keyboard, self.velocity, self.canvas):
            w.update()
        self.log_geometry()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        QTimer.singleShot(200, self.log_geometry)  # once the window is placed on the screen

    def log_geometry(self) -> None:
        """Log (DEBUG, when it changed) where the canvas and the velocity lane are on the screen
        and the zoom and scroll: what turns a note into a mouse position for the session test."""
        if not logger.isEnabledFor(logging.DEBUG) or not self.isVisible():
            return
        g = self.geometry_model

        def rect(w: QWidget) -> tuple[int, int, int, int]:
            at = w.mapToGlobal(QPoint(0, 0))
            return at.x(), at.y(), w.width(), w.height()

        key = (
            rect(self.canvas),
            rect(self.velocity),
            (g.px_per_tick, g.scroll_tick, g.key_height, g.scroll_y),
            rect(self.ruler),
            rect(self.chord_lane),
        )
        if key != self._logged_geometry:
            self._logged_geometry = key
            canvas, lane, (ppt, st, kh, sy), ruler, chords = key
            logger.debug(
                "roll geometry: canvas=%s lane=%s px_per_tick=%r scroll_tick=%r key_height=%r scroll_y=%r "
                "ruler=%s chords=%s",
                *(",".join(map(str, r)) for r in (canvas, lane)),
                ppt,
                st,
                kh,
                sy,
                *(",".join(map(str, r)) for r in (ruler, chords)),
            )

    def _h_scrolled(self, value: int) -> None:
        if not self._syncing:
            self.geometry_model.scroll_tick = float(value)
            self._sync()

    def _v_scrolled(self, value: int) -> None:
        if not self._syncing:
            self.geometry_model.scroll_y = float(value)
            self.geometry_model.clamp_scroll()
            self._sync()

    def set_playhead(self, tick: float) -> None:
        """Move the playhead in the canvas and the ruler."""
        old = self.geometry_model.scroll_tick
        self.canvas.set_playhead(tick)
        self.ruler.playhead_tick = tick
        self.ruler.update()
        if self.geometry_model.scroll_tick != old:
            self._sync()

    def zoom(self, fx: float, fy: float = 1.0) -> None:
        """Zoom around the middle of the view."""
        self.geometry_model.zoom_x(fx)
        if fy != 1.0:
            self.geometry_model.zoom_y(fy)
        self._sync()

    def fit_song(self) -> None:
        """Zoom to show every note of the song (or 8 bars of an empty one)."""
        g = self.geometry_model
        song = self.doc.song
        end = max(song.end_tick, song.ticks_per_bar() * 8)
        g.show_ticks(0, end * 1.02)
        pitches = [n.pitch for t in song.tracks for n in t.notes]
        if pitches:
            g.show_pitches(max(0, min(pitches) - 2), min(PITCHES - 1, max(pitches) + 2))
            if g.key_height > 14:
                g.key_height = 14
                g.center_pitch((min(pitches) + max(pitches)) // 2)
        self._sync()

    def show_bars(self, first_bar: int, count: int) -> None:
        """Zoom to ``count`` bars from ``first_bar`` (0-based)."""
        song = self.doc.song
        starts = song.bar_starts(song.ticks_per_bar() * (first_bar + count + 1))
        a = starts[min(first_bar, len(starts) - 1)]
        self.geometry_model.show_ticks(a, a + song.ticks_per_bar(a) * count)
        self._sync()
