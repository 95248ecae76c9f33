"""File ▸ Import Audio… through the real window: a FluidSynth render of a melody is transcribed by
the real model on a task thread and lands in the roll (snapped on request), as one undo step; a bad
file is one message and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from musicgen_app.core.midi_io import read_midi, write_midi
from musicgen_app.playback.render import normalize_peak, render_song, write_wav

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
pytestmark = [pytest.mark.gui, pytest.mark.fluidsynth]


@pytest.fixture(scope="module")
def folk(tmp_path_factory: pytest.TempPathFactory):
    """The shipped folk tune (flute, 180 BPM) rendered to a WAV file, and the song."""
    song = read_midi(EXAMPLES / "folk_tune.mid").song
    path = tmp_path_factory.mktemp("import_audio") / "folk.wav"
    write_wav(normalize_peak(render_song(song)), path)
    return path, song


def _import(window, qtbot, path: Path, *, snap: bool) -> str:
    with qtbot.waitSignal(window.audio_import.finished, timeout=60_000) as sig:
        window.audio_import.import_path(path, snap=snap)
        # the UI thread does not wait for the model: the call returns while the task runs
        assert window.audio_import.busy()
        assert not window.doc.notes
    return str(sig.args[0])


def test_import_audio_fills_the_empty_track_snapped(window, qtbot, folk) -> None:
    path, song = folk
    window.tempo_spin.setValue(180)
    window.snap_combo.setCurrentText("1/16")
    assert window.audio_import.action in window.menuBar().actions()[0].menu().actions()
    tracks_before = len(window.doc.song.tracks)
    message = _import(window, qtbot, path, snap=True)
    assert message.startswith("Imported ") and "folk.wav" in message and "snapped to 1/16" in message
    notes = window.doc.notes
    assert len(window.doc.song.tracks) == tracks_before
    assert notes and all(n.start_tick % 120 == 0 and n.end_tick % 120 == 0 for n in notes)
    written = {(n.start_tick, n.pitch) for n in song.tracks[0].notes}
    assert len(written & {(n.start_tick, n.pitch) for n in notes}) / len(written) >= 0.9
    assert window.statusBar().currentMessage() == message
    window.doc.undo_stack.undo()  # one undo step
    assert not window.doc.notes


def test_import_audio_as_played_into_a_new_track(window, qtbot, folk, sketch) -> None:
    from musicgen_app.gui.document import Document

    path, song = folk
    window.set_document(Document(sketch(2)))
    before = list(window.doc.song.tracks[0].notes)
    window.tempo_spin.setValue(180)
    with qtbot.waitSignal(window.audio_import.finished, timeout=60_000) as sig:
        window.audio_import.import_path(path, snap=False)
    assert str(sig.args[0]).startswith("Imported ") and "snapped" not in str(sig.args[0])
    tracks = window.doc.song.tracks
    assert len(tracks) == 2 and tracks[0].notes == before
    new = tracks[1]
    assert new.name == "folk" and new.channel != tracks[0].channel
    assert window.doc.active_track == 1
    assert any(n.start_tick % 120 for n in new.notes)  # as played: not all on the grid
    near = sum(  # 72 ticks at 180 BPM: 50 ms
        any(m.pitch == n.pitch and abs(m.start_tick - n.start_tick) <= 72 for m in new.notes)
        for n in song.tracks[0].notes
    )
    assert near / len(song.tracks[0].notes) >= 0.85


def test_import_audio_through_the_menu_action(window, qtbot, folk, monkeypatch) -> None:
    path, _ = folk
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    with qtbot.waitSignal(window.audio_import.finished, timeout=60_000):
        window.audio_import.action.trigger()
    assert len(window.doc.notes) >= 30


def test_a_bad_recording_is_one_message(window, qtbot, tmp_path, sketch) -> None:
    fake = tmp_path / "take.wav"
    write_midi(sketch(1), fake)  # a MIDI file with a .wav name
    with qtbot.waitSignal(window.audio_import.finished, timeout=20_000) as sig:
        window.audio_import.import_path(fake)
    text = str(sig.args[0])
    assert "take.wav" in text and "is a MIDI file" in text and "\n" not in text
    assert "Import Audio" in window.statusBar().currentMessage()
    assert not window.doc.notes and not window.doc.is_dirty
    assert not window.audio_import.busy()


def test_a_newer_import_replaces_a_running_one(window, qtbot, folk, tmp_path) -> None:
    path, _ = folk
    window.snap_combo.setCurrentText("1/8")
    window.audio_import.import_path(path)
    with qtbot.waitSignal(window.audio_import.finished, timeout=60_000) as sig:
        window.audio_import.import_path(path, snap=True)  # the first is cancelled, its result dropped
    assert "snapped" in str(sig.args[0])
    qtbot.wait(500)
    assert not window.audio_import.busy()
    assert len(window.doc.song.tracks) == 1  # one import landed, into the empty track
