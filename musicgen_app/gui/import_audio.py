"""File ▸ Import Audio…: a recording (sung, hummed or played) becomes notes in the roll.

The recording is read and transcribed on a task thread (:class:`~musicgen_app.gui.tasks.TaskRunner`)
by :mod:`musicgen_app.ml.audio.transcribe`; the UI thread only asks for the file, shows progress in
the status bar and applies the result as one undo step. The notes are placed on the song's time
line at its tempo; when the user asks for it (and Snap is not off) they are snapped to the Snap
grid. They fill the active track when it is empty (a fresh sketch), else a new track. A newer
import, a new document or closing the window cancels a running one.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox

from musicgen_app.core.edits import add_notes
from musicgen_app.core.song import DRUM_CHANNEL, Note, Song, Track

if TYPE_CHECKING:
    from musicgen_app.gui.main_window import MainWindow

logger = logging.getLogger(__name__)

PROGRESS_MS = 250
FILE_FILTER = "WAV audio (*.wav *.wave);;All files (*)"


@dataclass
class Transcribed:
    """What the task thread hands back: the notes on the song's time line and the recording's length."""

    notes: list[Note]
    duration_s: float


def transcribe_for_song(
    path: Path, song: Song, grid_ticks: int | None, channel: int, cancel: threading.Event, progress: Any
) -> Transcribed:
    """Read and transcribe ``path`` (task thread): notes at ``song``'s tempo, snapped when asked."""
    from musicgen_app.ml.audio.audio_file import read_audio
    from musicgen_app.ml.audio.transcribe import events_to_notes, load_model, transcribe_audio

    audio = read_audio(path)
    load_model()
    events = transcribe_audio(audio, cancel=cancel, progress=progress)
    notes = events_to_notes(events, song, grid_ticks=grid_ticks, channel=channel)
    return Transcribed(notes, audio.duration_s)


def _free_channel(song: Song) -> int:
    used = {t.channel for t in song.tracks}
    return next((c for c in range(16) if c != DRUM_CHANNEL and c not in used), 0)


class AudioImporter(QObject):
    """The Import Audio action of a window and the one transcription it may be running."""

    finished = Signal(str)  # the status line once an import ends (done, nothing heard, or failed)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.win = window
        self.action = QAction("Import Audio…", window)
        self.action.setObjectName("import_audio")
        self.action.setStatusTip("Turn a recording (sung, hummed or played; WAV) into notes")
        self.action.triggered.connect(self.dialog)
        window.addAction(self.action)
        self._cancel: threading.Event | None = None
        self._progress = 0.0  # written by the task thread, read by the timer (a float: atomic)
        self._name = ""
        self._timer = QTimer(self)
        self._timer.setInterval(PROGRESS_MS)
        self._timer.timeout.connect(self._show_progress)

    # -- UI thread ----------------------------------------------------------------------------
    def dialog(self) -> None:
        """Ask for a recording, then whether to snap it to the grid; start the import."""
        path, _ = QFileDialog.getOpenFileName(
            self.win, "Import Audio", self.win.files.last_dir(), FILE_FILTER
        )
        if not path:
            return
        snap_name = self.win.snap_combo.currentText()
        snap = False
        if snap_name != "off" and not os.environ.get("MUSICGEN_NO_DIALOGS"):
            box = QMessageBox(self.win)
            box.setWindowTitle("Import Audio")
            box.setText(f"Snap the notes of {Path(path).name} to the {snap_name} grid?")
            snap_button = box.addButton(f"Snap to {snap_name}", QMessageBox.ButtonRole.AcceptRole)
            box.addButton("As Played", QMessageBox.ButtonRole.RejectRole)
            box.exec()
            snap = box.clickedButton() is snap_button
        self.import_path(path, snap=snap)

    def import_path(self, path: str | Path, *, snap: bool = False) -> None:
        """Transcribe ``path`` in the background and put its notes in the roll (one undo step)."""
        self.cancel()
        p = Path(path)
        win = self.win
        doc = win.doc
        song = doc.snapshot()
        grid = win.canvas.snap_step() if snap else None
        grid = grid if grid and grid > 1 else None
        active = doc.song.tracks[doc.active_track] if doc.song.tracks else None
        fill = active is not None and not active.notes and not active.is_drum
        channel = active.channel if fill and active is not None else _free_channel(song)
        cancel = threading.Event()
        self._cancel = cancel
        self._progress = 0.0
        self._name = p.name
        self._timer.start()
        self._show_progress()

        def progress(fraction: float) -> None:
            self._progress = fraction

        def done(result: Transcribed) -> None:
            if cancel.is_set():  # a newer import took over, or the window is closing
                return
            self._end()
            if doc is not win.doc:
                return
            if not result.notes:
                self._report(f"No notes were heard in {p.name} (is it silent, or very quiet?)")
                return
            how = f", snapped to {win.snap_combo.currentText()}" if grid else ""
            text = f"Import audio {p.name}"
            if fill:
                track = doc.active_track
                win.apply_edit(add_notes(track, result.notes), text)
            else:
                new = Track(name=p.stem, program=0, channel=channel, notes=result.notes)
                doc.set_song_attr("tracks", [*doc.song.tracks, new], text)
                doc.set_active_track(len(doc.song.tracks) - 1)
            win.files.autosave_soon()
            n = len(result.notes)
            length = f"{result.duration_s:.1f} s"
            self._report(f"Imported {n} note{'' if n == 1 else 's'} from {p.name} ({length}){how}")

        def failed(exc: BaseException) -> None:
            from musicgen_app.ml.audio.transcribe import TranscriptionCancelledError

            if cancel.is_set() or isinstance(exc, TranscriptionCancelledError):
                return
            self._end()
            if doc is not win.doc:
                return
            win.show_error("Import Audio", f"Cannot import {p.name}: {exc}")
            self.finished.emit(f"Cannot import {p.name}: {exc}")

        win.tasks.submit(
            lambda: transcribe_for_song(p, song, grid, channel, cancel, progress),
            done,
            failed,
            name="musicgen-import-audio",
        )

    def cancel(self) -> None:
        """Stop the running import, if any (its result is dropped)."""
        if self._cancel is not None:
            self._cancel.set()
            self._cancel = None
        self._timer.stop()

    def busy(self) -> bool:
        """Whether an import is running."""
        return self._cancel is not None

    def _end(self) -> None:
        self._cancel = None
        self._timer.stop()

    def _report(self, text: str) -> None:
        self.win.show_message(text, 10000)
        self.finished.emit(text)

    def _show_progress(self) -> None:
        self.win.show_message(f"Transcribing {self._name}… {self._progress:.0%}", 2000)
