"""Files through the real window: save and reload a project, open MIDI, drop a file, export the
selection, drag-out clip, autosave and the recovery files' lifetime."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog, QPushButton

from musicgen_app.core.edits import add_notes
from musicgen_app.core.midi_io import read_midi, write_midi
from musicgen_app.core.song import Note
from musicgen_app.gui.document import Document


def _save_dialog(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))


def test_save_then_reload_project(window, qtbot, sketch, tmp_path, monkeypatch) -> None:
    window.set_document(Document(sketch(2)))
    window.doc.apply(add_notes(0, [Note(3840, 72, 4320, 77)]), "Draw note")
    window.tempo_spin.setValue(96)
    window.set_loop((1920, 3840))
    window.doc.state["takes"] = []
    assert window.isWindowModified()
    target = tmp_path / "song.mgproj"
    _save_dialog(monkeypatch, target)
    with qtbot.waitSignal(window.saved, timeout=10_000):
        window.act_save.trigger()
    assert target.exists()
    assert not window.isWindowModified()
    assert window.windowTitle().startswith("song.mgproj")
    assert str(target.resolve()) == window.settings.recent_files[0]
    saved_notes = list(window.doc.notes)

    window.set_document(Document())
    with qtbot.waitSignal(window.document_loaded, timeout=10_000):
        window.open_path(target)
    doc = window.doc
    assert doc.notes == saved_notes
    assert doc.song.tempos[0].bpm == pytest.approx(96, abs=0.01)
    assert doc.song.loop == (1920, 3840)
    assert doc.path == target and not doc.is_dirty
    assert window.tempo_spin.value() == 96


def test_open_midi_and_drop_a_file(window, qtbot, sketch, tmp_path) -> None:
    mid = tmp_path / "tune.mid"
    write_midi(sketch(2), mid)
    with qtbot.waitSignal(window.document_loaded, timeout=10_000):
        window.open_path(mid)
    assert [n.pitch for n in window.doc.notes] == [n.pitch for n in sketch(2).tracks[0].notes]
    assert "tune.mid" in window.windowTitle() and not window.isWindowModified()
    window.doc.apply(add_notes(0, [Note(0, 50, 240, 90)]), "Draw note")
    assert window.windowTitle().startswith("tune.mid") and window.isWindowModified()

    other = tmp_path / "other.mid"
    song = sketch(1)
    write_midi(song, other)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other))])
    drop = QDropEvent(
        QPointF(50, 50),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    # Qt only routes a drop from a real drag-and-drop session; hand it to the window's handlers.
    window.dragEnterEvent(drop)
    assert drop.isAccepted()
    with qtbot.waitSignal(window.document_loaded, timeout=10_000):
        window.dropEvent(drop)
    assert len(window.doc.notes) == 4


def test_open_a_broken_file_is_a_message_not_a_crash(window, qtbot, tmp_path) -> None:
    bad = tmp_path / "broken.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    window.open_path(bad)
    qtbot.waitUntil(lambda: "Cannot open broken.mid" in window.statusBar().currentMessage(), timeout=10_000)


def test_export_selection_and_drag_clip(window, qtbot, sketch, tmp_path, monkeypatch) -> None:
    window.set_document(Document(sketch(2)))
    chosen = window.doc.notes[2:5]
    window.doc.set_selection(chosen)
    out = tmp_path / "sel.mid"
    _save_dialog(monkeypatch, out)
    window.act_export_sel.trigger()
    qtbot.waitUntil(out.exists, timeout=10_000)
    qtbot.waitUntil(lambda: "Exported" in window.statusBar().currentMessage(), timeout=10_000)
    got = read_midi(out).song
    assert [(n.start_tick, n.pitch) for n in got.tracks[0].notes] == [(n.start_tick, n.pitch) for n in chosen]
    clip = window.write_clip()
    assert clip is not None and clip.suffix == ".mid"
    assert len(read_midi(clip).song.tracks[0].notes) == 3
    # the folder of a drag from two days ago goes at the next drag; this one stays
    import os
    import time

    old = window.write_clip()
    assert old is not None
    two_days_ago = time.time() - 2 * 86400
    os.utime(old.parent, (two_days_ago, two_days_ago))
    newest = window.write_clip()
    assert newest is not None and newest.exists() and clip.exists()
    assert not old.parent.exists()


def test_autosave_writes_recovery_and_save_deletes_it(window, qtbot, sketch, tmp_path, monkeypatch) -> None:
    store = window.files.store
    window.set_document(Document(sketch(1)))
    window.autosave()  # not dirty: nothing written
    qtbot.wait(50)
    assert store.list_recoverable() == []
    window.doc.apply(add_notes(0, [Note(1920, 70, 2400, 90)]), "Draw note")
    with qtbot.waitSignal(window.autosaved, timeout=10_000):
        window.autosave()
    (entry,) = store.list_recoverable()
    assert entry.doc_id == window.doc.doc_id
    assert Note(1920, 70, 2400, 90) in store.load(entry.doc_id).song.tracks[0].notes
    _save_dialog(monkeypatch, tmp_path / "kept.mgproj")
    with qtbot.waitSignal(window.saved, timeout=10_000):
        window.act_save.trigger()
    qtbot.waitUntil(lambda: store.list_recoverable() == [], timeout=10_000)


def test_unexpected_error_becomes_a_message(window, qtbot, monkeypatch) -> None:
    from musicgen_app.gui import app

    monkeypatch.setattr(app, "_windows", [window])
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored afterwards
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    app.install_excepthook()
    try:
        raise RuntimeError("boom in a slot")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    assert "boom in a slot" in window.statusBar().currentMessage()
    assert app.crash_log_path().exists()


def test_an_exception_inside_a_qt_callback_keeps_the_window(window, qtbot, monkeypatch) -> None:
    from PySide6.QtCore import QTimer

    from musicgen_app.gui import app

    monkeypatch.setattr(app, "_windows", [window])
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    app.install_excepthook()

    def broken() -> None:
        raise ValueError("broken callback")

    QTimer.singleShot(0, broken)
    qtbot.waitUntil(lambda: "broken callback" in window.statusBar().currentMessage(), timeout=5000)
    assert window.isVisible()
    window.act_select_all.trigger()  # still working


def test_quit_during_generation_and_playback_is_clean(window, qtbot, sketch) -> None:
    from musicgen_app.ml.registry import list_models

    if not list_models():
        pytest.skip("no trained model in models/")
    qtbot.waitUntil(lambda: window.panel.model_combo.count() > 0, timeout=10_000)
    window.set_document(Document(sketch(2)))
    window.panel.bars.setValue(16)
    window.act_continue.trigger()
    qtbot.waitUntil(lambda: len(window.canvas.take_notes) > 0, timeout=60_000)
    thread = window.gen._thread
    window.close()
    assert thread is not None and not thread.is_alive()
    assert not window.playback.scheduler._thread.is_alive()


def _render_dialog(monkeypatch: pytest.MonkeyPatch, path: Path, restyle: bool = False) -> None:
    """The Export WAV dialog answers with ``path`` (through its Browse button) and ``restyle``."""
    from musicgen_app.gui.render_dialog import RenderDialog

    _save_dialog(monkeypatch, path)

    def answer(dialog: RenderDialog) -> int:
        dialog.findChild(QPushButton).click()  # Browse…: the (patched) save dialog
        dialog.restyle_box.setChecked(restyle)
        return RenderDialog.DialogCode.Accepted

    monkeypatch.setattr(RenderDialog, "exec", answer)


def test_export_wav_renders_in_the_background(window, qtbot, sketch, tmp_path, monkeypatch) -> None:
    import wave

    window.set_document(Document(sketch(1)))
    out = tmp_path / "song.wav"
    _render_dialog(monkeypatch, out)
    window.act_export_wav.trigger()
    qtbot.waitUntil(lambda: "Rendered song.wav" in window.statusBar().currentMessage(), timeout=60_000)
    with wave.open(str(out)) as w:
        assert w.getnframes() / w.getframerate() >= 2.0  # one bar at 120 BPM, plus the tail


def test_export_wav_restyled_toward_piano(window, qtbot, sketch, tmp_path, monkeypatch) -> None:
    import wave

    from musicgen_app.gui.render_dialog import restyle_available

    if not restyle_available():
        pytest.skip("the restyle model is not trained")
    window.set_document(Document(sketch(2)))
    out = tmp_path / "piano.wav"
    _render_dialog(monkeypatch, out, restyle=True)
    window.act_export_wav.trigger()
    qtbot.waitUntil(lambda: "Rendered piano.wav" in window.statusBar().currentMessage(), timeout=60_000)
    with wave.open(str(out)) as w:  # the restyler's output: mono at its 16 kHz
        assert (w.getnchannels(), w.getframerate()) == (1, 16000)
        assert w.getnframes() / w.getframerate() >= 4.0


def test_recovers_a_never_saved_document(window, qtbot, tmp_path) -> None:
    from musicgen_app.gui import app

    window.doc.apply(add_notes(0, [Note(0, 65, 480, 90)]), "Draw note")
    assert window.doc.path is None
    with qtbot.waitSignal(window.autosaved, timeout=10_000):
        window.autosave()
    other = app.new_window(store=window.files.store, output=None, open_output=False)
    qtbot.addWidget(other)
    try:
        docs = app.recover_documents(other, other.files.store, lambda _w, entries: "recover")
        assert len(docs) == 1 and other.doc.notes == [Note(0, 65, 480, 90)]
        assert other.doc.path is None and other.isWindowModified()
    finally:
        other.shutdown()


def test_import_midi_adds_tracks_in_one_step(window, qtbot, sketch, tmp_path) -> None:
    from musicgen_app.core.song import Song, Track

    window.set_document(Document(sketch(1)))
    other = Song(
        resolution=96,
        tracks=[Track(name="Bass", channel=1, notes=[Note(0, 40, 96, 80), Note(96, 43, 144, 80)])],
    )
    path = tmp_path / "bass.mid"
    write_midi(other, path)
    window.import_path(path)
    qtbot.waitUntil(lambda: len(window.doc.song.tracks) == 2, timeout=10_000)
    bass = window.doc.song.tracks[1]
    assert bass.name == "Bass" and [(n.start_tick, n.end_tick) for n in bass.notes] == [(0, 480), (480, 720)]
    assert window.doc.active_track == 1
    assert window.doc.undo_stack.count() == 1
    window.act_undo.trigger()
    assert len(window.doc.song.tracks) == 1 and window.doc.active_track == 0


def test_quitting_right_after_save_still_removes_the_recovery_copy(window, qtbot, sketch, tmp_path) -> None:
    store = window.files.store
    window.set_document(Document(sketch(1)))
    window.doc.apply(add_notes(0, [Note(1920, 70, 2400, 90)]), "Draw note")
    with qtbot.waitSignal(window.autosaved, timeout=10_000):
        window.autosave()
    assert store.list_recoverable()
    window.files.save_to(tmp_path / "quick.mgproj")  # in the background...
    window.shutdown()  # ...and quit at once
    assert (tmp_path / "quick.mgproj").exists()
    assert store.list_recoverable() == []


def test_every_unsaved_document_is_offered_and_opens_in_its_own_window(window, qtbot, tmp_path) -> None:
    from musicgen_app.core.project import Project
    from musicgen_app.core.song import Song, Track
    from musicgen_app.gui import app

    store = window.files.store
    ids = []
    for pitch, source in ((60, None), (67, str(tmp_path / "b.mid"))):
        did = store.new_doc_id()
        song = Song(tracks=[Track(notes=[Note(0, pitch, 480, 90)])])
        store.write(did, Project(song=song), source_path=source, title="a" if source is None else "b.mid")
        ids.append(did)
    before = list(app._windows)
    docs = app.recover_documents(window, store, lambda _w, entries: "recover")
    new_windows = [w for w in app._windows if w not in before]
    try:
        assert sorted(d.doc_id for d in docs) == sorted(ids)
        assert len(new_windows) == 1  # the first goes into this window, the other opens a new one
        shown = sorted(w.doc.notes[0].pitch for w in (window, *new_windows))
        assert shown == [60, 67]
        assert {w.doc.display_name for w in (window, *new_windows)} == {"Untitled", "b.mid"}
        assert len(store.list_recoverable()) == 2  # kept until saved or discarded
        app.recover_documents(window, store, lambda _w, entries: "discard")
        assert store.list_recoverable() == []
    finally:
        for w in new_windows:
            w.shutdown()
            w.close()
