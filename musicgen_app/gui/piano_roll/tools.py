"""Editing tools as objects (MidiEditor's idea): each turns mouse events into one undo step.

A tool receives press/move/release in canvas pixels, keeps a preview while the button is held
and, on release, applies exactly one edit to the document. Tools never touch Qt painting
directly except through :meth:`Tool.preview` (notes to draw as a ghost) and :meth:`Tool.band`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt

from musicgen_app.core.edits import add_notes, delete_notes, move_notes, resize_notes
from musicgen_app.core.song import Note
from musicgen_app.errors import EditError

if TYPE_CHECKING:
    from musicgen_app.gui.piano_roll.widget import PianoRollCanvas

logger = logging.getLogger(__name__)

EDGE_PX = 5.0  # how close to a note's edge a press resizes instead of moving
DRAG_PX = 3.0  # how far the mouse must travel before a press becomes a drag


class Tool:
    """Base class: a tool sees mouse events on the canvas and edits the canvas's document."""

    name = "tool"
    cursor = Qt.CursorShape.ArrowCursor

    def __init__(self, canvas: PianoRollCanvas) -> None:
        self.canvas = canvas

    def press(self, pos: QPointF, mods: Qt.KeyboardModifier) -> None:
        """Mouse button pressed at ``pos``."""

    def move(self, pos: QPointF, mods: Qt.KeyboardModifier) -> None:
        """Mouse moved with the button held."""

    def release(self, pos: QPointF, mods: Qt.KeyboardModifier) -> None:
        """Mouse button released: commit the gesture."""

    def preview(self) -> list[Note]:
        """Notes to draw as a ghost while the gesture is in progress."""
        return []

    def hidden(self) -> set[Note]:
        """Notes the gesture is changing (drawn faint while the ghost shows their new place)."""
        return set()

    def band(self) -> QRectF | None:
        """A rubber band rectangle to draw, if any."""
        return None

    def hover_cursor(self, pos: QPointF) -> Qt.CursorShape:
        """The mouse cursor over ``pos`` when no button is held."""
        return self.cursor

    def _apply(self, edit: object, text: str) -> None:
        try:
            self.canvas.doc.apply(edit, text)  # type: ignore[arg-type]
        except EditError as exc:
            self.canvas.message.emit(str(exc))


class _Gesture:
    """A move or a resize in progress."""

    def __init__(self, kind: str, anchor: Note, notes: list[Note], origin: QPointF) -> None:
        self.kind = kind  # "move", "resize_end", "resize_start"
        self.anchor = anchor
        self.notes = notes
        self.origin = origin
        self.delta_ticks = 0
        self.delta_pitch = 0
        self.dragging = False

    def edit(self, track: int) -> object | None:
        if not self.dragging or (self.delta_ticks == 0 and self.delta_pitch == 0):
            return None
        if self.kind == "move":
            return move_notes(track, self.notes, self.delta_ticks, self.delta_pitch)
        return resize_notes(track, self.notes, self.delta_ticks, from_start=self.kind == "resize_start")


class SelectTool(Tool):
    """Click selects, shift-click adds, drag on empty space draws a rubber band, drag a note moves
    the selection, drag a note's edge resizes it."""

    name = "select"

    def __init__(self, canvas: PianoRollCanvas) -> None:
        super().__init__(canvas)
        self._gesture: _Gesture | None = None
        self._band_origin: QPointF | None = None
        self._band_now: QPointF | None = None
        self._band_add = False

    def _edge(self, note: Note, pos: QPointF) -> str:
        g = self.canvas.geom
        x0, x1 = g.tick_to_x(note.start_tick), g.tick_to_x(note.end_tick)
        edge = min(EDGE_PX, (x1 - x0) / 3)
        if x1 - pos.x() <= edge:
            return "resize_end"
        if pos.x() - x0 <= edge:
            return "resize_start"
        return "move"

    def hover_cursor(self, pos: QPointF) -> Qt.CursorShape:
        note = self.canvas.note_at(pos)
        if note is None:
            return Qt.CursorShape.ArrowCursor
        kind = self._edge(note, pos)
        return Qt.CursorShape.SizeHorCursor if kind != "move" else Qt.CursorShape.SizeAllCursor

    def press(self, pos: QPointF, mods: Qt.KeyboardModifier) -> None:
        doc = self.canvas.doc
        note = self.canvas.note_at(pos)
        logger.debug("select press at %.0f,%.0f: %s", pos.x(), pos.y(), note)
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        if note is None:
            self._band_origin = self._band_now = pos
            self._band_add = shift
            if not shift:
                doc.set_selection(())
            return
        if shift:
            sel = set(doc.selection)
            sel ^= {note}
            doc.set_selection(sel)
            if note not in sel:
                return
        elif note not in doc.selection:
            doc.set_selection({note})
        kind = self._edge(note, pos)
        notes = sorted(doc.selection) if kind == "move" else [note]
        if kind != "move" and note in doc.selection and len(doc.selection) > 1:
            notes = sorted(doc.selection)
        self._gesture = _Gesture(kind, note, notes, pos)
        self.canvas.sound_note(note.pitch, note.velocity)

    def move(self, pos: QPointF, mods: Qt.KeyboardModifier) -> None:
        g = self.canvas.geom
        if self._band_origin is not None:
            self._band_now = pos
            self.canvas.update()
            return
        ges = self._gesture
        if ges is None:
            return
        if not ges.dragging and (pos - ges.origin).manhattanLength() < DRAG_PX:
            return
        ges.dragging = True
        step = self.canvas.snap_step()
        raw = (pos.x() - ges.origin.x()) / g.px_per_tick
        if ges.kind == "move":
            target = g.snap(ges.anchor.start_tick + raw, step)
            ges.delta_ticks = max(target - ges.anchor.start_tick, -min(n.start_tick for n in ges.notes))
            new_pitch = g.y_to_pitch(pos.y())
            old_pitch = g.y_to_pitch(ges.origin.y())
            ges.delta_pitch = max(
                -min(n.pitch for n in ges.notes),
                min(127 - max(n.pitch for n in ges.notes), new_pitch - old_pitch),
            )
            if ges.delta_pitch and self.canvas.last_sounded != ges.anchor.pitch + ges.delta_pitch:
                self.canvas.sound_note(ges.anchor.pitch + ges.delta_pitch, ges.anchor.velocity)
        elif ges.kind == "resize_end":
            target = g.snap(ges.anchor.end_tick + raw, step)
            ges.delta_ticks = target - ges.anchor.end_tick
        else:
            target = g.snap(ges.anchor.start_tick + raw, step)
            ges.delta_ticks = target - ges.anchor.start_tick
        self.canvas.update()

    def release(self, pos: QPointF, mods: Qt.KeyboardModifier) -> None:
        doc = self.canvas.doc
        if self._band_origin is not None:
            rect = self.band()
            self._band_origin = self._band_now = None
            if rect is not None and rect.width() + rect.height() > DRAG_PX:
                hits = self.canvas.notes_in_rect(rect)
                doc.set_selection((set(doc.selection) | set(hits)) if self._band_add else hits)
            self.canvas.update()
            return
        ges, self._gesture = self._gesture, None
        if ges is None:
            return
        edit = ges.edit(doc.active_track)
        if edit is not None:
            self._apply(edit, "Move notes" if ges.kind == "move" else "Resize notes")
        self.canvas.update()

    def preview(self) -> list[Note]:
        ges = self._gesture
        if ges is None or not ges.dragging:
            return []
        edit = ges.edit(self.canvas.doc.active_track)
        return list(edit.new) if edit is not None else []  # type: ignore[attr-defined]

    def hidden(self) -> set[Note]:
        ges = self._gesture
        return set(ges.notes) if ges is not None and ges.dragging else set()

    def band(self) -> QRectF | None:
        if self._band_origin is None or self._band_now is None:
            return None
        return QRectF(self._band_origin, self._band_now).normalized()


class DrawTool(SelectTool):
    """Click-drag on empty space draws a note whose length follows the drag; on a note it acts
    like the select tool (move, resize)."""

    name = "draw"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, canvas: PianoRollCanvas) -> None:
        super().__init__(canvas)
        self._new: Note | None = None
        self.last_length: int | None = None

    def hover_cursor(self, pos: QPointF) -> Qt.CursorShape:
        if self.canvas.note_at(pos) is not None:
            return super().hover_cursor(pos)
        return self.cursor

    def _default_length(self) -> int:
        step = self.canvas.snap_step()
        if self.last_length:
            return self.last_length
        return step if step > 1 else self.canvas.doc.song.resolution // 4

    def press(self, pos: QPointF, mods: Qt.KeyboardModifier) -> None:
        if self.canvas.note_at(pos) is not None:
            super().press(pos, mods)
            return
        g = self.canvas.geom
        start = g.snap(g.x_to_tick(pos.x()), self.canvas.snap_step(), mode="floor")
        pitch = g.y_to_pitch(pos.y())
        doc = self.canvas.doc
        channel = doc.song.tracks[doc.active_track].channel  # a drum track's notes sound on channel 10
        self._new = Note(start, pitch, start + self._default_length(), self.canvas.default_velocity, channel)
        self.canvas.doc.set_selection(())
        self.canvas.sound_note(pitch, self._new.velocity)
        self.canvas.update()

    def move(self, pos: QPointF, mods: Qt.KeyboardModifier) -> None:
        if self._new is None:
            super().move(pos, mods)
            return
        g = self.canvas.geom
        step = self.canvas.snap_step()
        min_len = step if step > 1 else 1
        end = g.snap(g.x_to_tick(pos.x()), step)
        self._new = replace(self._new, end_tick=max(self._new.start_tick + min_len, end))
        self.canvas.update()

    def release(self, pos: QPointF, mods: Qt.KeyboardModifier) -> None:
        if self._new is None:
            super().release(pos, mods)
            return
        note, self._new = self._new, None
        self.last_length = note.duration_ticks
        self._apply(add_notes(self.canvas.doc.active_track, [note]), "Draw note")
        self.canvas.update()

    def preview(self) -> list[Note]:
        return [self._new] if self._new is not None else super().preview()


class EraseTool(Tool):
    """Click or drag over notes to delete them (one undo step per drag)."""

    name = "erase"
    cursor = Qt.CursorShape.PointingHandCursor

    def __init__(self, canvas: PianoRollCanvas) -> None:
        super().__init__(canvas)
        self._doomed: list[Note] = []

    def _hit(self, pos: QPointF) -> None:
        note = self.canvas.note_at(pos)
        if note is not None and note not in self._doomed:
            self._doomed.append(note)
            self.canvas.update()

    def press(self, pos: QPointF, mods: Qt.KeyboardModifier) -> None:
        self._doomed = []
        self._hit(pos)

    def move(self, pos: QPointF, mods: Qt.KeyboardModifier) -> None:
        self._hit(pos)

    def release(self, pos: QPointF, mods: Qt.KeyboardModifier) -> None:
        doomed, self._doomed = self._doomed, []
        if doomed:
            self._apply(delete_notes(self.canvas.doc.active_track, doomed), "Erase notes")
        self.canvas.update()

    def hidden(self) -> set[Note]:
        return set(self._doomed)


TOOLS: dict[str, type[Tool]] = {"select": SelectTool, "draw": DrawTool, "erase": EraseTool}
