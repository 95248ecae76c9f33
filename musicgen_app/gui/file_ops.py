"""File operations of a window: new, open, import, save, export, drag-out and autosave, every
read and write on a task thread (the UI thread never waits on a file); errors become messages."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from musicgen_app.core.song import Song, Track
from musicgen_app.errors import MusicgenError
from musicgen_app.gui import fileio
from musicgen_app.gui.document import Document

if TYPE_CHECKING:
    from musicgen_app.gui.main_window import MainWindow

logger = logging.getLogger(__name__)

DEFAULT_AUTOSAVE_S = 60.0
AUTOSAVE_AFTER_BIG_CHANGE_MS = 1500


def autosave_interval_s() -> float:
    """Seconds between autosaves (``MUSICGEN_AUTOSAVE_SECONDS`` overrides the minute)."""
    try:
        return max(0.2, float(os.environ.get("MUSICGEN_AUTOSAVE_SECONDS", DEFAULT_AUTOSAVE_S)))
    except ValueError:
        return DEFAULT_AUTOSAVE_S


class FileOps(QObject):
    """Opens, saves, exports and autosaves the window's document (see the module docstring)."""

    def __init__(self, win: MainWindow, store: Any = None) -> None:
        super().__init__(win)
        self.win = win
        #: the autosave store (recovery copies); None: no autosave
        self.store = store
        self._autosaved_version = -1
        self._closed = False
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(int(autosave_interval_s() * 1000))
        self._autosave_timer.timeout.connect(self.autosave)
        self._autosave_timer.start()

    def close(self) -> None:
        """No more autosaves (the window closes)."""
        self._closed = True
        self._autosave_timer.stop()

    def document_attached(self, doc: Document) -> None:
        """A document was attached to the window: it gets a recovery id, autosaved afresh."""
        self._autosaved_version = -1
        if doc.doc_id is None and self.store is not None:
            doc.doc_id = self.store.new_doc_id()

    def new_document(self) -> None:
        """Start an empty song (asks to save changes first)."""
        if self.may_replace_document():
            self.win.set_document(Document())

    def open_dialog(self) -> None:
        """Ask for a MIDI or project file and open it."""
        if not self.may_replace_document():
            return
        path, _ = QFileDialog.getOpenFileName(
            self.win, "Open", self.last_dir(), "Songs (*.mgproj *.mid *.midi);;All files (*)"
        )
        if path:
            self.open_path(path)

    def last_dir(self) -> str:
        """The folder of the most recent file (the home folder when there is none)."""
        if self.win.settings.recent_files:
            return str(Path(self.win.settings.recent_files[0]).parent)
        return str(Path.home())

    def _fill_recent(self) -> None:
        self.win.recent_menu.clear()
        for p in self.win.settings.recent_files:
            a = self.win.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, path=p: self._open_recent(path))
        if not self.win.settings.recent_files:
            self.win.recent_menu.addAction("(none)").setEnabled(False)

    def _open_recent(self, path: str) -> None:
        if self.may_replace_document():
            self.open_path(path)

    def open_path(self, path: str | Path) -> None:
        """Open a file in the background; the document replaces the current one when read."""
        p = Path(path)
        self.win.show_message(f"Opening {p.name}…")
        self.win.tasks.submit(
            lambda: fileio.load_file(p),
            self._opened,
            lambda exc: self._open_failed(p, exc),
            name="musicgen-open",
        )

    def _opened(self, loaded: fileio.Loaded) -> None:
        doc = Document(loaded.song, loaded.path if loaded.is_project else None)
        doc.state = loaded.state
        if not loaded.is_project and loaded.path is not None:
            doc.song.title = doc.song.title or loaded.path.stem
            doc.source_path = loaded.path
        self.win.set_document(doc)
        if loaded.path is not None:
            self.win.settings.add_recent(loaded.path)
            self.win.settings.save()
        msg = f"Opened {loaded.path.name if loaded.path else 'file'}: {doc.song.note_count} notes"
        if loaded.repairs:
            msg += " — " + "; ".join(loaded.repairs)
        self.win.show_message(msg, 12000)

    def _open_failed(self, path: Path, exc: BaseException) -> None:
        self.win.show_error("Open", f"Cannot open {path.name}: {exc}")

    def import_dialog(self) -> None:
        """Ask for a MIDI file and add its tracks to this song."""
        path, _ = QFileDialog.getOpenFileName(
            self.win, "Import MIDI", self.last_dir(), "MIDI (*.mid *.midi);;All (*)"
        )
        if path:
            self.import_path(path)

    def import_path(self, path: str | Path) -> None:
        """Add the tracks of a MIDI (or project) file to this song (one undo step), in the background."""
        p = Path(path)
        resolution = self.win.doc.song.resolution
        doc = self.win.doc

        def done(tracks: list[Track]) -> None:
            if doc is not self.win.doc or not tracks:
                return
            used = {t.channel for t in self.win.doc.song.tracks}
            self.win.doc.set_song_attr("tracks", [*self.win.doc.song.tracks, *tracks], f"Import {p.name}")
            self.win.doc.set_active_track(len(self.win.doc.song.tracks) - len(tracks))
            clash = sorted({t.channel + 1 for t in tracks} & {c + 1 for c in used})
            note = f" (shares MIDI channel {', '.join(map(str, clash))})" if clash else ""
            self.win.show_message(f"Imported {len(tracks)} track(s) from {p.name}{note}")
            self.autosave_soon()

        self.win.tasks.submit(
            lambda: fileio.tracks_for(fileio.load_file(p).song, resolution),
            done,
            lambda exc: self.win.show_error("Import", f"Cannot import {p.name}: {exc}"),
            name="musicgen-import",
        )

    def save(self) -> bool:
        """Save to the project file (asks for a name the first time)."""
        if self.win.doc.path is None or self.win.doc.path.suffix.lower() != fileio.PROJECT_SUFFIX:
            return self.save_as()
        self.save_to(self.win.doc.path)
        return True

    def save_as(self) -> bool:
        """Save under a new name."""
        start = str(
            self.win.doc.path or Path(self.last_dir()) / f"{self.win.doc.song.title or 'untitled'}.mgproj"
        )
        path, _ = QFileDialog.getSaveFileName(self.win, "Save project", start, "musicgen project (*.mgproj)")
        if not path:
            return False
        p = Path(path)
        if p.suffix.lower() != fileio.PROJECT_SUFFIX:
            p = p.with_suffix(fileio.PROJECT_SUFFIX)
        self.save_to(p)
        return True

    def save_to(self, path: Path, *, wait: bool = False) -> None:
        self.win.takes.record_state()
        song, state = self.win.doc.snapshot(), dict(self.win.doc.state)
        index = self.win.doc.undo_stack.index()
        doc = self.win.doc

        def done(p: Path) -> None:
            if doc is not self.win.doc:
                return
            if self.win.doc.undo_stack.index() == index:
                self.win.doc.mark_saved(p)
            else:
                self.win.doc.path = p
            self.discard_autosave(doc)
            self.win.settings.add_recent(p)
            self.win.settings.save()
            self.win.show_message(f"Saved {p.name}")
            self.win.saved.emit(str(p))

        def failed(exc: BaseException) -> None:
            self.win.show_error("Save", f"Could not save {path.name}: {exc}")

        if wait:
            try:
                done(fileio.save_file(song, state, path))
            except MusicgenError as exc:
                failed(exc)
            return
        self.win.tasks.submit(lambda: fileio.save_file(song, state, path), done, failed, name="musicgen-save")

    def _export_song(self, which: str) -> Song | None:
        song = self.win.doc.snapshot()
        if which == "selection":
            notes = self.win.doc.selected_notes()
            if not notes:
                self.win.show_message("Select some notes to export")
                return None
            return fileio.sub_song(song, notes=notes, track=self.win.doc.active_track)
        if which == "track":
            return fileio.sub_song(song, tracks=[self.win.doc.active_track])
        return song

    def export_midi(self, which: str = "all") -> None:
        """Export all tracks, the active track or the selection as a MIDI file."""
        song = self._export_song(which)
        if song is None:
            return
        base = self.win.doc.path.stem if self.win.doc.path else (self.win.doc.song.title or "untitled")
        path, _ = QFileDialog.getSaveFileName(
            self.win, "Export MIDI", str(Path(self.last_dir()) / f"{base}.mid"), "MIDI (*.mid)"
        )
        if path:
            self.win.tasks.submit(
                lambda: fileio.export_midi(song, path),
                lambda p: self.win.show_message(f"Exported {Path(p).name}"),
                lambda exc: self.win.show_error("Export MIDI", str(exc)),
            )

    def export_wav(self) -> None:
        """Render the song to WAV (in the background), restyled toward piano if asked."""
        from musicgen_app.gui.render_dialog import RenderDialog, render_job

        song = self.win.doc.snapshot()
        base = self.win.doc.path.stem if self.win.doc.path else "untitled"
        dialog = RenderDialog(self.win, str(Path(self.last_dir()) / f"{base}.wav"))
        if dialog.exec() != RenderDialog.DialogCode.Accepted:
            return
        path, restyle = dialog.choice()
        if path:
            self.win.show_message("Rendering and restyling…" if restyle else "Rendering…")
            soundfont = self.win.settings.soundfont
            self.win.tasks.submit(
                lambda: render_job(song, path, soundfont, restyle),
                lambda p: self.win.show_message(f"Rendered {Path(p).name}"),
                lambda exc: self.win.show_error("Export WAV", str(exc)),
                name="musicgen-render",
            )

    def write_clip(self) -> Path | None:
        """The selection (or the active track) as a temporary .mid for dragging out."""
        which = "selection" if self.win.doc.selection else "track"
        song = self._export_song(which)
        if song is None:
            return None
        try:
            return fileio.clip_file(song, self.win.doc.song.title or "musicgen clip")
        except (MusicgenError, OSError) as exc:
            self.win.show_error("Drag MIDI", str(exc))
            return None

    def autosave(self) -> None:
        """Write a recovery copy if the document changed since the last one (background)."""
        store = self.store
        doc = self.win.doc
        if self._closed or store is None or not doc.is_dirty or doc.version == self._autosaved_version:
            return
        if doc.doc_id is None:
            doc.doc_id = store.new_doc_id()
        self.win.takes.record_state()
        song, state = doc.snapshot(), dict(doc.state)
        version = doc.version
        source = str(doc.path or doc.source_path or "") or None
        title = doc.display_name if (doc.path or doc.source_path) else (doc.song.title or "Untitled")
        doc_id = doc.doc_id

        def write() -> str:
            from musicgen_app.core.project import Project

            store.write(doc_id, Project(song=song, state=state), source_path=source, title=title)
            return doc_id

        def done(did: str) -> None:
            self._autosaved_version = version
            logger.info("autosaved %s (%s)", title, did)
            self.win.autosaved.emit(did)

        self.win.tasks.submit(
            write, done, lambda exc: self.win.show_message(f"Autosave failed: {exc}"), "musicgen-autosave"
        )

    def autosave_soon(self) -> None:
        """Autosave shortly after a big change (an accepted take, a recording, an import)."""
        QTimer.singleShot(AUTOSAVE_AFTER_BIG_CHANGE_MS, self, self.autosave)

    def discard_autosave(self, doc: Document) -> None:
        if self.store is None or doc.doc_id is None:
            return
        store, did = self.store, doc.doc_id
        self.win.tasks.submit(lambda: store.discard(did), None, None, "musicgen-discard")

    def maybe_save(self) -> bool:
        """Ask to save unsaved changes; False when the user cancels."""
        if not self.win.doc.is_dirty or os.environ.get("MUSICGEN_NO_DIALOGS"):
            return True
        answer = QMessageBox.question(
            self.win,
            "Unsaved changes",
            f"Save the changes to {self.win.doc.display_name}?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer == QMessageBox.StandardButton.Save:
            if self.win.doc.path is None or self.win.doc.path.suffix.lower() != fileio.PROJECT_SUFFIX:
                start = str(Path(self.last_dir()) / f"{self.win.doc.song.title or 'untitled'}.mgproj")
                path, _ = QFileDialog.getSaveFileName(
                    self.win, "Save project", start, "musicgen project (*.mgproj)"
                )
                if not path:
                    return False
                self.save_to(Path(path).with_suffix(fileio.PROJECT_SUFFIX), wait=True)
            else:
                self.save_to(self.win.doc.path, wait=True)
            return not self.win.doc.is_dirty
        # Discard: the recovery copy goes too.
        self.discard_autosave(self.win.doc)
        self.win.doc.mark_saved(
            self.win.doc.path
        ) if self.win.doc.path else self.win.doc.undo_stack.setClean()
        return True

    def may_replace_document(self) -> bool:
        """Takes not accepted and unsaved changes: ask about both; False when the user cancels."""
        return self.win.takes.may_drop_takes() and self.maybe_save()
