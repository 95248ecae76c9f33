"""One open document: the song, its undo stack, the selection and where it is saved.

Every change goes through :meth:`Document.apply` (note edits from ``core.edits``) or
:meth:`Document.set_song_attr` (tempo, meter, loop), each pushing one :class:`QUndoCommand`, so a
gesture is one undo step. Edits are applied once *before* the command is pushed so that an
:class:`~musicgen_app.errors.EditError` reaches the caller instead of vanishing inside Qt.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from musicgen_app.core.edits import (
    TRACK_EDITS,
    AddNotes,
    CompoundEdit,
    Edit,
    RemoveNotes,
    ReplaceChords,
    ReplaceNotes,
    apply_edit,
    track_index_after,
)
from musicgen_app.core.song import Note, Song, Track

logger = logging.getLogger(__name__)


def resulting_notes(edit: Edit, track: int) -> list[Note]:
    """The notes of ``track`` that ``edit`` leaves in place (what a gesture should select)."""
    if isinstance(edit, CompoundEdit):
        out: list[Note] = []
        for e in edit.edits:
            if isinstance(e, RemoveNotes) and e.track == track:
                gone = set(e.notes)
                out = [n for n in out if n not in gone]
            else:
                out += resulting_notes(e, track)
        return out
    if isinstance(edit, ReplaceChords) or edit.track != track:
        return []
    if isinstance(edit, AddNotes):
        return list(edit.notes)
    if isinstance(edit, ReplaceNotes):
        return list(edit.new)
    return []


class EditCommand(QUndoCommand):
    """An undo step for one already-applied edit (its inverse is kept for undo)."""

    def __init__(self, doc: Document, edit: Edit, inverse: Edit, text: str) -> None:
        super().__init__(text)
        self._doc = doc
        self._edit = edit
        self._inverse = inverse
        self._first = True

    def redo(self) -> None:
        if self._first:  # applied by Document.apply before the push
            self._first = False
        else:
            self._inverse = apply_edit(self._doc.song, self._edit)
        self._doc._after_edit(self._edit)

    def undo(self) -> None:
        self._edit = apply_edit(self._doc.song, self._inverse)
        self._doc._after_edit(self._inverse)


class SongAttrCommand(QUndoCommand):
    """An undo step setting one attribute of the song (tempos, time_signatures, loop...)."""

    def __init__(self, doc: Document, attr: str, value: Any, text: str) -> None:
        super().__init__(text)
        self._doc = doc
        self._attr = attr
        self._new = value
        self._old = copy.copy(getattr(doc.song, attr))

    def redo(self) -> None:
        setattr(self._doc.song, self._attr, copy.copy(self._new))
        self._doc._touch()

    def undo(self) -> None:
        setattr(self._doc.song, self._attr, copy.copy(self._old))
        self._doc._touch()


class Document(QObject):
    """The song being edited plus its undo history, selection and file."""

    changed = Signal()  # the song changed (notes, tempo, meter, loop)
    selection_changed = Signal()
    active_track_changed = Signal(int)
    title_changed = Signal()

    def __init__(
        self, song: Song | None = None, path: str | Path | None = None, parent: QObject | None = None
    ):
        super().__init__(parent)
        self.song = song if song is not None else new_song()
        if not self.song.tracks:
            self.song.tracks.append(Track(name="Melody"))
        self.song.sort()
        self.path: Path | None = Path(path) if path else None
        self.source_path: Path | None = None  # the MIDI file it was imported from, if any
        self.state: dict[str, Any] = {}
        self.doc_id: str | None = None  # autosave id, given by the window
        self.version = 0
        self.selection_version = 0
        self._active = 0
        self._selection: set[Note] = set()
        self._recovered_dirty = False
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._clean_changed)

    def _clean_changed(self, _clean: bool) -> None:
        self.title_changed.emit()

    # -- identity -----------------------------------------------------------------------------
    @property
    def display_name(self) -> str:
        """The project's file name, else the imported file's name, else "Untitled"."""
        if self.path:
            return self.path.name
        return self.source_path.name if self.source_path else "Untitled"

    @property
    def is_dirty(self) -> bool:
        """Whether there are changes not saved to ``path``."""
        return self._recovered_dirty or not self.undo_stack.isClean()

    def mark_saved(self, path: str | Path) -> None:
        """Record a successful save to ``path``."""
        self.path = Path(path)
        self._recovered_dirty = False
        self.undo_stack.setClean()
        self.title_changed.emit()

    def mark_dirty(self) -> None:
        """Flag the document as unsaved (a recovered document, an imported file)."""
        self._recovered_dirty = True
        self.title_changed.emit()

    # -- tracks and selection -----------------------------------------------------------------
    @property
    def active_track(self) -> int:
        """Index of the track being edited."""
        return self._active

    def set_active_track(self, index: int) -> None:
        """Choose the track being edited (clears the selection)."""
        index = max(0, min(index, len(self.song.tracks) - 1))
        if index != self._active:
            self._active = index
            self.set_selection(())
            self.active_track_changed.emit(index)
            self._touch()

    @property
    def notes(self) -> list[Note]:
        """The notes of the active track (sorted)."""
        return self.song.tracks[self._active].notes

    @property
    def selection(self) -> set[Note]:
        """Selected notes of the active track."""
        return self._selection

    def selected_notes(self) -> list[Note]:
        """The selected notes, sorted."""
        return sorted(self._selection)

    def set_selection(self, notes: Iterable[Note]) -> None:
        """Replace the selection."""
        new = set(notes)
        if new != self._selection:
            self._selection = new
            self.selection_version += 1
            self.selection_changed.emit()

    # -- edits --------------------------------------------------------------------------------
    def apply(self, edit: Edit, text: str) -> None:
        """Apply ``edit`` as one undo step (raises EditError and changes nothing if it does not apply)."""
        inverse = apply_edit(self.song, edit)
        self.undo_stack.push(EditCommand(self, edit, inverse, text))

    def set_song_attr(self, attr: str, value: Any, text: str) -> None:
        """Set a song attribute (``tempos``, ``time_signatures``, ``loop``...) as one undo step."""
        if getattr(self.song, attr) == value:
            return
        self.undo_stack.push(SongAttrCommand(self, attr, value, text))

    def _after_edit(self, edit: Edit) -> None:
        active = track_index_after(edit, self._active)
        if active != self._active:  # a track was inserted, removed or moved: follow the active one
            self._active = max(0, min(self._active if active is None else active, len(self.song.tracks) - 1))
            self._selection = set()
            self.selection_version += 1
            self.active_track_changed.emit(self._active)
        elif not isinstance(edit, (*TRACK_EDITS, ReplaceChords)):  # a header or chord change keeps it
            self.set_selection(resulting_notes(edit, self._active))
        self._touch()

    def _touch(self) -> None:
        self.version += 1
        if self._active >= len(self.song.tracks):  # the active track was removed (undo of "Add track")
            self._active = max(0, len(self.song.tracks) - 1)
            self._selection = set()
            self.selection_version += 1
            self.active_track_changed.emit(self._active)
        self.changed.emit()

    def snapshot(self) -> Song:
        """A copy of the song safe to hand to another thread (notes are immutable values)."""
        return self.song.copy()


def new_song() -> Song:
    """An empty song with one melody track at 120 BPM in 4/4."""
    return Song(tracks=[Track(name="Melody")])
