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
