"""The chord lane: the song's chord symbols in a strip above the ruler, typed and edited in place.

Double-click a beat (or press Ctrl+K for the beat at the playhead) to type a chord there (``C``,
``Am7``, ``F/A``, ``N.C.``); Enter puts it on the lane as one undo step, Escape cancels, an empty
entry removes the chord at that beat. A symbol that cannot be read is said in one line (the
``message`` signal, shown in the status bar) and the entry stays open with the text, so nothing
typed is lost; clicking elsewhere commits a changed entry (or closes an unchanged one). Click a
chord to select it, Delete removes it; a right-click removes the chord under the pointer. Painting
reads only the changes in the visible range (two bisects on the sorted lane), so the cost does not
grow with the song.
"""

from __future__ import annotations

import bisect
import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFocusEvent, QHelpEvent, QKeyEvent, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QLineEdit, QToolTip, QWidget

from musicgen_app.core.chords import ChordChange, ChordError, parse_chord
from musicgen_app.core.edits import delete_chords, set_chord
from musicgen_app.errors import EditError

if TYPE_CHECKING:
    from musicgen_app.gui.document import Document
    from musicgen_app.gui.piano_roll.widget import PianoRollCanvas

logger = logging.getLogger(__name__)

CHORD_LANE_HEIGHT = 20


def _tick(change: ChordChange) -> float:
    return change.tick


_ENTRY_KEYS = (
    Qt.Key.Key_Return,
    Qt.Key.Key_Enter,
    Qt.Key.Key_Escape,
    Qt.Key.Key_Delete,
    Qt.Key.Key_Backspace,
)


class _ChordEntry(QLineEdit):
    """The inline entry: Enter commits, Escape cancels (the lane decides what happens). It keeps
    Return, Escape, Delete and Backspace from the window's shortcuts (Accept Take, Stop, Delete)."""

    cancelled = Signal()
    focus_lost = Signal()

    def event(self, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and event.key() in _ENTRY_KEYS
        ):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.cancelled.emit()
            return
        super().keyPressEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        if event.reason() != Qt.FocusReason.PopupFocusReason:
            self.focus_lost.emit()


def symbol_fits(text_width: float, box_width: float) -> bool:
    """Whether a symbol ``text_width`` pixels wide is drawn in its chord's box: only whole (zoomed
    out, clipped letters of neighbouring chords ran together into an unreadable row; the box
    stays, and its tooltip names the chord)."""
    return text_width + 4 <= box_width


class ChordLane(QWidget):
    """Chord symbols at their positions, sharing the roll's geometry (see the module docstring)."""

    message = Signal(str)  # one line for the status bar

    def __init__(self, canvas: PianoRollCanvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.geom = canvas.geom
        self.selected: ChordChange | None = None
        self.entry = _ChordEntry(self)
        self.entry.hide()
        self.entry.returnPressed.connect(self._commit_entry)
        self.entry.cancelled.connect(self.close_entry)
        self.entry.focus_lost.connect(self._entry_left)
        self.entry_tick: int | None = None
        self._entry_text = ""  # what the entry held when it opened
        self.setFixedHeight(CHORD_LANE_HEIGHT)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setToolTip("Chords: double-click a beat to type one (C, Am7, F/A); Delete removes the selected")

    @property
    def doc(self) -> Document:
        """The document of the canvas."""
        return self.canvas.doc

    # -- what is where ----------------------------------------------------------------------------
    def beat_at(self, x: float) -> int:
        """The start of the beat under ``x`` (never before the song's start)."""
        return max(0, self.geom.snap(self.geom.x_to_tick(x), self.doc.song.resolution, mode="floor"))

    def visible_changes(self) -> list[tuple[ChordChange, float]]:
        """(change, end tick) of the chords that sound in the visible range (the one sounding at
        the left edge included); the last one ends at the right edge."""
        lane = self.doc.song.chords
        lo, hi = self.geom.visible_ticks()
        # Song.chords is sorted by tick: two bisects, whatever the length of the song
        first = max(0, bisect.bisect_right(lane, lo, key=_tick) - 1)
        last = bisect.bisect_right(lane, hi, key=_tick)
        out = []
        for i in range(first, last):
            end = lane[i + 1].tick if i + 1 < len(lane) else hi
            out.append((lane[i], float(end)))
        return out

    def change_at(self, x: float) -> ChordChange | None:
        """The chord change whose box is under ``x``."""
        tick = self.geom.x_to_tick(x)
        for change, end in self.visible_changes():
            if change.tick <= tick < end:
                return change
        return None

    # -- editing -----------------------------------------------------------------------------------
    def open_entry(self, tick: int) -> None:
        """Open the inline entry at ``tick``, holding the symbol of the chord there (if any)."""
        tick = max(0, int(tick))
        self.entry_tick = tick
        here = next((c for c in self.doc.song.chords if c.tick == tick), None)
        x = int(self.geom.tick_to_x(tick))
        self.entry.setGeometry(max(0, x), 0, 90, self.height())
        self._entry_text = here.symbol if here else ""
        self.entry.setText(self._entry_text)
        self.entry.selectAll()
        self.entry.show()
        self.entry.setFocus()

    def close_entry(self) -> None:
        """Close the entry without changing anything; the keyboard goes back to the roll (hiding a
        focused entry would hand the focus to the next widget in the chain, a track's name field,
        which would then take Ctrl+Z, Delete and the arrows for itself)."""
        self.entry_tick = None  # first: hiding the entry takes its focus away
        if self.entry.hasFocus():
            self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)
        self.entry.hide()
        self.update()

    def _entry_left(self) -> None:
        """Clicked elsewhere: an unchanged entry closes, a changed one is committed (an unreadable
        symbol keeps it open, with its one-line message)."""
        if self.entry_tick is None:
            return
        if self.entry.text().strip() == self._entry_text:
            self.close_entry()
        else:
            self._commit_entry()

    def _commit_entry(self) -> None:
        if self.entry_tick is not None and self.enter_chord(self.entry_tick, self.entry.text()):
            self.close_entry()

    def enter_chord(self, tick: int, text: str) -> bool:
        """Put the chord ``text`` at ``tick`` as one undo step (empty: remove the chord there).
        Returns False, with one line on ``message``, when the symbol cannot be read."""
        song = self.doc.song
        text = text.strip()
        try:
            if not text:
                here = [c for c in song.chords if c.tick == tick]
                if here:
                    self.doc.apply(delete_chords(here), "Delete Chord")
                return True
            chord = parse_chord(text)
            change = ChordChange(tick, chord)
            self.doc.apply(set_chord(song, tick, chord), f"Chord {change.symbol}")
        except (ChordError, EditError) as exc:
            self.message.emit(f"Chord: {exc}")
            return False
        self.selected = change
        self.update()
        return True

    def delete_selected(self) -> None:
        """Remove the selected chord (one undo step)."""
        change = self.selected
        self.selected = None
        if change is not None and change in self.doc.song.chords:
            self.doc.apply(delete_chords([change]), "Delete Chord")
        self.update()

    # -- Qt ----------------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        g = self.geom
        p = QPainter(self)
        try:
            p.fillRect(self.rect(), QColor(246, 244, 236))
            h = self.height()
            metrics = p.fontMetrics()
            for change, end in self.visible_changes():
                x0, x1 = g.tick_to_x(change.tick), g.tick_to_x(end)
                box = QRectF(x0, 1, max(2.0, x1 - x0 - 1), h - 2)
                chosen = change == self.selected
                p.fillRect(box, QColor(255, 226, 160) if chosen else QColor(232, 228, 212))
                p.setPen(QColor(120, 110, 80))
                p.drawLine(QPointF(x0, 0), QPointF(x0, h))
                if symbol_fits(metrics.horizontalAdvance(change.symbol), box.width()):
                    p.setPen(QColor(40, 36, 30))
                    p.drawText(box.adjusted(3, 0, 0, 0), int(Qt.AlignmentFlag.AlignVCenter), change.symbol)
        finally:
            p.end()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.open_entry(self.beat_at(event.position().x()))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        change = self.change_at(event.position().x())
        if event.button() == Qt.MouseButton.RightButton:
            self.selected = change
            self.delete_selected()
            return
        self.selected = change
        self.update()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            change = self.change_at(event.pos().x())  # the chord under the pointer, by name
            QToolTip.showText(event.globalPos(), change.symbol if change else self.toolTip(), self)
            return True
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)
            and self.selected is not None
        ):
            event.accept()  # Delete removes the selected chord, not the selected notes
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selected is not None:
            self.delete_selected()
            return
        super().keyPressEvent(event)
