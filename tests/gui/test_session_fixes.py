"""Bugs a musician met in a working session (issue 9), each driven through the real window:
Settings ▸ Devices while sound runs, a project's takes and Continue settings coming back when it
is reopened, Space past the end, and the takes behaving as in Magenta Studio."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from musicgen_app.core.autosave import AutosaveStore
from musicgen_app.gui.settings import AppSettings

pytestmark = pytest.mark.gui


def _accept_dialog_soon(changes=None) -> None:
    """Press OK in the next modal dialog (after ``changes(dialog)``), as a person would."""

    def press() -> None:
        dlg = QApplication.activeModalWidget()
        if dlg is None:
            QTimer.singleShot(20, press)
            return
        if changes is not None:
            changes(dlg)
        dlg.accept()

    QTimer.singleShot(20, press)


@pytest.fixture
def player_window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """The window as the app runs it: playback in a player process (silent output)."""
    from musicgen_app.gui.main_window import MainWindow

    monkeypatch.delenv("MUSICGEN_OUTPUT", raising=False)
    settings = AppSettings()
    settings.output = "none"
    win = MainWindow(output=None, settings=settings, autosave_store=AutosaveStore(tmp_path / "autosave"))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.playback.player is not None and win.playback.player.ready, timeout=30_000)
    qtbot.waitUntil(lambda: not win._output_label.text().endswith("opening…"), timeout=5_000)
    yield win
    win.shutdown()


def test_devices_ok_while_the_player_runs_switches_the_output(player_window, qtbot) -> None:
    win = player_window
    player = win.playback.player
    errors: list[str] = []
    win.playback.error.connect(errors.append)

    def bigger_buffer(dlg) -> None:
        dlg.buffer.setValue(512)

    _accept_dialog_soon(bigger_buffer)
    win.act_devices.trigger()
    assert win.settings.buffer_size == 512
    assert win._output_label.text() == "Output: opening…"
    # the running player switches (no new process) and the status bar says what plays now
    qtbot.waitUntil(lambda: win._output_label.text() != "Output: opening…", timeout=10_000)
    assert win.playback.player is player and player.alive
    assert win._output_label.text() == f"Output: {player.name}"
    assert not errors


# -- Space past the end, Home ---------------------------------------------------------------------
def _note_ons(recording) -> list[int]:
    return [m.note for m in recording.of_type("note_on") if m.velocity > 0]


def test_space_past_the_end_plays_from_the_start_and_home_returns(window, qtbot, recording, sketch) -> None:
    from PySide6.QtGui import QKeySequence

    from musicgen_app.gui.document import Document

    win = window
    win.set_document(Document(sketch(2)))
    end = win.doc.song.end_tick
    win.seek(end + 4 * 480)  # where the playhead is after a rejected take
    win.act_play.trigger()
    assert win.playback.playing
    assert "from the start" in win.statusBar().currentMessage()
    qtbot.waitUntil(lambda: _note_ons(recording)[:1] == [60], timeout=3000)
    win.act_play.trigger()
    assert not win.playback.playing
    # Home: back to the start
    assert win.act_home.shortcut() == QKeySequence("Home")
    win.seek(1000)
    win.act_home.trigger()
    assert win.canvas.playhead_tick == 0
    # opening another file puts the playhead at its start
    win.seek(end + 960)
    win.set_document(Document(sketch(1)))
    assert win.canvas.playhead_tick == 0
    # an empty song: Space says why nothing plays
    win.set_document(Document())
    win.act_play.trigger()
    assert not win.playback.playing
    assert "Nothing to play" in win.statusBar().currentMessage()


# -- takes: restored with the project; Magenta Studio's behaviour -------------------------------
def _continue_and_wait(win, qtbot, count: int) -> None:
    win.act_continue.trigger()
    qtbot.waitUntil(lambda: len(win.gen.takes) == count and not win.gen.running, timeout=120_000)


@pytest.mark.slow
def test_reopening_a_project_shows_its_takes_and_continue_settings(window, qtbot, sketch, tmp_path) -> None:
    from musicgen_app.gui.document import Document

    from .test_continue import prepare_continue

    win = prepare_continue(window, qtbot, sketch(2), seed=77, bars=1)
    model = win.panel.model_name()
    win.panel.variations.setValue(2)
    win.panel.temperature.setValue(80)
    win.panel.set_key_lock("G")
    win.panel.set_voices("harmony")
    _continue_and_wait(win, qtbot, 2)
    win.panel.takes.setCurrentRow(1)  # the second take is the one shown
    labels = [win.panel.takes.item(i).text() for i in range(win.panel.takes.count())]
    takes = [(t.seed, t.start_tick, t.notes, t.status) for t in win.gen.takes]
    assert [t[0] for t in takes] == [77, 78] and all(t[2] for t in takes)
    path = tmp_path / "tune.mgproj"
    win.files.save_to(path, wait=True)

    # another file resets what belongs to a tune: the takes and the key lock
    win.set_document(Document(sketch(1)))
    win.panel.temperature.setValue(150)
    win.panel.bars.setValue(8)
    win.panel.variations.setValue(1)
    assert win.gen.takes == [] and win.panel.takes.count() == 0
    assert win.panel.key_lock_value() == "auto" and win.panel.voices_value() == "sketch"

    with qtbot.waitSignal(win.document_loaded, timeout=10_000):
        win.open_path(path)
    assert [win.panel.takes.item(i).text() for i in range(win.panel.takes.count())] == labels
    assert [(t.seed, t.start_tick, t.notes, t.status) for t in win.gen.takes] == takes
    assert win.gen.current == 1 and win.panel.takes.currentRow() == 1
    assert win.canvas.take_notes == takes[1][2]
    assert win.panel.model_name() == model
    assert win.panel.temperature_value() == pytest.approx(0.8)
    assert win.panel.key_lock_value() == "G"
    assert win.panel.voices_value() == "harmony"
    assert (win.panel.bars.value(), win.panel.variations.value()) == (1, 2)
    # a restored take is accepted like a fresh one, and saving again keeps the rest
    before = list(win.doc.notes)
    win.act_accept.trigger()
    assert sorted(win.doc.notes) == sorted(before + takes[1][2])
    win.files.save_to(path, wait=True)
    from musicgen_app.core.project import load_project

    state = load_project(path).state
    assert [t["seed"] for t in state["takes"]] == [77]
    assert state["accepted_takes"][-1]["seed"] == 78


@pytest.mark.slow
def test_takes_behave_as_in_magenta_studio(window, qtbot, sketch, tmp_path, monkeypatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    from musicgen_app.core.midi_io import write_midi
    from musicgen_app.gui.document import Document

    from .test_continue import prepare_continue

    win = prepare_continue(window, qtbot, sketch(2), seed=5, bars=1)
    win.panel.set_key_lock("D")
    _continue_and_wait(win, qtbot, 1)
    first = win.gen.takes[0]
    # Again adds a take (the next seed) and keeps the first, same start
    win.act_regen.trigger()
    qtbot.waitUntil(lambda: len(win.gen.takes) == 2 and not win.gen.running, timeout=120_000)
    assert win.gen.takes[0] is first
    assert [t.seed for t in win.gen.takes] == [5, 6]
    assert win.gen.takes[1].start_tick == first.start_tick
    assert win.gen.current == 1 and win.canvas.take_notes == win.gen.takes[1].notes
    win.act_regen.trigger()
    qtbot.waitUntil(lambda: len(win.gen.takes) == 3 and not win.gen.running, timeout=120_000)
    assert win.panel.takes.count() == 3
    # accepting one keeps the others listed; none is shown until one is picked
    accepted = win.gen.takes[2]
    win.act_accept.trigger()
    assert [t.seed for t in win.gen.takes] == [5, 6] and win.panel.takes.count() == 2
    assert win.canvas.take_notes == [] and win.gen.current_take() is None
    assert not win.panel.accept_button.isEnabled()
    n = len(win.doc.notes)
    win.act_accept.trigger()  # nothing shown: Return does nothing
    assert len(win.doc.notes) == n
    win.panel.takes.setCurrentRow(0)
    assert win.canvas.take_notes == first.notes and win.panel.accept_button.isEnabled()
    assert sorted(accepted.notes)[0] in win.doc.notes

    # opening another file with takes pending asks first; Cancel keeps everything
    other = tmp_path / "other.mid"
    write_midi(sketch(1), other)
    monkeypatch.delenv("MUSICGEN_NO_DIALOGS")
    win.doc.mark_saved(tmp_path / "saved.mgproj")  # no unsaved changes: only the takes are asked about
    asked: list[str] = []

    def answer(button: QMessageBox.StandardButton):
        def press() -> None:
            box = QApplication.activeModalWidget()
            if box is None:
                QTimer.singleShot(20, press)
                return
            asked.append(box.windowTitle())
            box.button(button).click()

        QTimer.singleShot(20, press)

    answer(QMessageBox.StandardButton.Cancel)
    assert win.files.may_replace_document() is False
    assert asked == ["Takes not accepted"] and len(win.gen.takes) == 2
    answer(QMessageBox.StandardButton.Discard)
    assert win.files.may_replace_document() is True
    with qtbot.waitSignal(win.document_loaded, timeout=10_000):
        win.open_path(other)
    assert win.gen.takes == [] and win.panel.takes.count() == 0
    assert win.panel.key_lock_value() == "auto"  # the key lock resets with another file
    # the next Continue starts a fresh list
    monkeypatch.setenv("MUSICGEN_NO_DIALOGS", "1")
    win.set_document(Document(sketch(2)))
    _continue_and_wait(win, qtbot, 1)
    assert [t.seed for t in win.gen.takes] == [5]
