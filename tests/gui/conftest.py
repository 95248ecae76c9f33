"""Fixtures for the GUI tests: a real main window on the offscreen platform, sounding into a
RecordingOutput, with its autosave store in the test's own data directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from musicgen_app.core.autosave import AutosaveStore
from musicgen_app.core.song import Note, Song, Track
from musicgen_app.gui.settings import AppSettings
from musicgen_app.playback.outputs import RecordingOutput

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def _no_modal_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICGEN_NO_DIALOGS", "1")


@pytest.fixture(autouse=True)
def _own_window_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows a test opens through gui.app are forgotten after it."""
    from musicgen_app.gui import app

    monkeypatch.setattr(app, "_windows", [])


@pytest.fixture
def recording() -> RecordingOutput:
    return RecordingOutput()


@pytest.fixture
def window(qtbot, recording: RecordingOutput, tmp_path: Path) -> Iterator:
    from musicgen_app.gui.main_window import MainWindow

    win = MainWindow(
        output=recording, settings=AppSettings(), autosave_store=AutosaveStore(tmp_path / "autosave")
    )
    qtbot.addWidget(win)
    win.resize(1200, 700)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.shutdown()


@pytest.fixture
def sketch():
    """A factory of short sketches."""
    return sketch_song


def sketch_song(bars: int = 2) -> Song:
    """A short C-major melody (quarter notes) in 4/4 at 480 ticks per quarter."""
    pitches = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64, 62, 60]
    notes = [Note(i * 480, p, i * 480 + 440, 90) for i, p in enumerate(pitches[: bars * 4])]
    return Song(tracks=[Track(name="Melody", notes=notes)])
