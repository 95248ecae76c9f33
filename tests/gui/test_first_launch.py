"""The first-launch screen offers the example sketches of resources/examples/ and opens one;
it shows once, and never when tests or scripts turn it off. The examples are what
scripts/make_examples.py writes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from musicgen_app.core.midi_io import read_midi
from musicgen_app.core.paths import REPO_ROOT
from musicgen_app.gui.first_launch import (
    EXAMPLE_INFO,
    WelcomeDialog,
    example_paths,
    maybe_show_welcome,
)
from musicgen_app.gui.settings import AppSettings


@pytest.fixture
def first_run(window, monkeypatch, tmp_path: Path):
    """The window as on a first launch: fresh settings in a config folder of the test's own."""
    monkeypatch.delenv("MUSICGEN_NO_DIALOGS", raising=False)
    monkeypatch.delenv("MUSICGEN_NO_WELCOME", raising=False)
    monkeypatch.setenv("MUSICGEN_CONFIG_DIR", str(tmp_path / "config"))
    window.settings = AppSettings()
    return window


def test_the_examples_are_the_four_sketches() -> None:
    names = [p.name for p in example_paths()]
    assert names == list(EXAMPLE_INFO)  # folk tune, pop hook, chorale opening, drum groove
    for path in example_paths():
        song = read_midi(path).song
        assert song.note_count >= 20 and song.duration_seconds < 30, path.name


def test_the_examples_are_what_the_script_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_examples", REPO_ROOT / "scripts" / "make_examples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for path in example_paths():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), (
            f"run scripts/make_examples.py ({path.name})"
        )


def test_first_launch_opens_an_example(first_run, qtbot) -> None:
    win = first_run
    dlg = maybe_show_welcome(win)
    assert isinstance(dlg, WelcomeDialog)
    qtbot.waitExposed(dlg)
    assert set(dlg.example_buttons) == set(EXAMPLE_INFO)
    dlg.example_buttons["folk_tune.mid"].click()
    qtbot.waitUntil(lambda: win.doc.song.note_count > 0, timeout=10_000)
    assert win.doc.source_path is not None and win.doc.source_path.name == "folk_tune.mid"
    assert win.doc.song.time_signature_at(0).numerator == 6  # the jig in 6/8
    assert [t.name for t in win.doc.song.tracks] == ["Flute"]
    assert AppSettings.load().welcome_shown  # remembered
    assert maybe_show_welcome(win) is None  # once


def test_the_screen_can_stay_on(first_run, qtbot) -> None:
    dlg = maybe_show_welcome(first_run)
    assert dlg is not None
    dlg.show_again.setChecked(True)
    dlg.empty_button.click()
    assert not AppSettings.load().welcome_shown
    assert first_run.doc.song.note_count == 0  # an empty sketch


@pytest.mark.parametrize("var", ["MUSICGEN_NO_WELCOME", "MUSICGEN_NO_DIALOGS"])
def test_scripted_sessions_turn_it_off(first_run, monkeypatch, var: str) -> None:
    monkeypatch.setenv(var, "1")
    assert maybe_show_welcome(first_run) is None


def test_help_menu_opens_every_example(window, qtbot) -> None:
    examples = next(a.menu() for a in window.help_menu.actions() if a.text() == "Examples")
    titles = [a.text() for a in examples.actions()]
    assert titles == [t for t, _ in EXAMPLE_INFO.values()]
    next(a for a in examples.actions() if a.text() == "Pop hook").trigger()
    qtbot.waitUntil(lambda: len(window.doc.song.tracks) == 3, timeout=10_000)
    assert [t.program for t in window.doc.song.tracks] == [80, 4, 33]
    assert len(window.track_list.headers) == 3
