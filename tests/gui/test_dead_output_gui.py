"""The window when its sound output dies: a message bar says so at once (playback stopped), and
Reconnect opens the output again once the JACK server is back (a fresh player process)."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jack_support import KillableJack
from PySide6.QtCore import Qt

from musicgen_app.core.autosave import AutosaveStore
from musicgen_app.gui.document import Document
from musicgen_app.gui.settings import AppSettings

pytestmark = [pytest.mark.gui]


def test_a_dead_output_shows_the_bar_and_reconnect_hides_it(window, recording, qtbot, sketch) -> None:
    """In-process (no JACK needed): the output reports its device dead; Reconnect opens the
    configured output again; Choose output… opens the Devices dialog."""
    bar = window.output_failure_bar
    assert not bar.isVisible()
    window.set_document(Document(sketch(4)))
    window.act_play.trigger()
    assert window.playback.playing
    qtbot.wait(200)
    recording.fail("the synth was unplugged")
    qtbot.waitUntil(bar.isVisible, timeout=3000)
    assert "the synth was unplugged" in bar.text and "Nothing is playing" in bar.text
    assert not window.playback.playing
    sent = len(recording.messages)
    qtbot.wait(300)
    assert len(recording.messages) == sent  # nothing more went to the dead device
    chosen: list[bool] = []
    window.devices_dialog = lambda: chosen.append(True)
    qtbot.mouseClick(bar.choose_button, Qt.MouseButton.LeftButton)
    assert chosen == [True]
    window.settings.output = "recording"  # what "the same output, again" opens in-process
    qtbot.mouseClick(bar.reconnect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not bar.isVisible(), timeout=5000)
    assert window.playback.output is not recording and window.playback.output.failure is None
    window.act_play.trigger()
    assert window.playback.playing
    window.act_play.trigger()
    assert not window.playback.playing
    # a device that dies while nothing plays is reported too (the scheduler wakes for it)
    window.playback.output.fail("the cable was pulled")
    qtbot.waitUntil(bar.isVisible, timeout=3000)
    assert "the cable was pulled" in bar.text


@pytest.fixture
def jack_synth_window(qtbot, killable_jack_server: KillableJack, tmp_path: Path) -> Iterator:
    from musicgen_app.gui.main_window import MainWindow

    settings = AppSettings()
    settings.output, settings.audio_driver = "fluidsynth", "jack"
    win = MainWindow(output=None, settings=settings, autosave_store=AutosaveStore(tmp_path / "autosave"))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.playback.player is not None and win.playback.player.ready, timeout=30_000)
    qtbot.waitUntil(lambda: "jack" in win.playback.output_name, timeout=5_000)
    yield win
    win.shutdown()


def _fluidsynth_connections() -> list[str]:
    lsp = subprocess.run(["jack_lsp", "-c"], capture_output=True, text=True, timeout=10).stdout
    out, port = [], ""
    for line in lsp.splitlines():
        if not line.startswith(" "):
            port = line.strip()
        elif port.startswith("fluidsynth:"):
            out.append(f"{port} -> {line.strip()}")
    return sorted(out)


@pytest.mark.jack
@pytest.mark.slow
def test_jack_killed_while_playing_then_reconnect_after_restart(
    jack_synth_window, qtbot, killable_jack_server: KillableJack, sketch
) -> None:
    win = jack_synth_window
    bar = win.output_failure_bar
    first_player = win.playback.player
    win.set_document(Document(sketch(8)))
    win.act_play.trigger()
    assert win.playback.playing
    qtbot.wait(500)
    killed_at = killable_jack_server.kill()
    qtbot.waitUntil(bar.isVisible, timeout=5000)
    shown_ms = (time.perf_counter() - killed_at) * 1000
    print(f"\nmessage bar shown {shown_ms:.0f} ms after the JACK server was killed: {bar.text}")
    # the JACK watcher or FluidSynth's own log line, whichever is first
    assert re.search(r"the JACK server stopped|Lost the connection to the JACK server", bar.text)
    qtbot.waitUntil(lambda: not win.playback.playing, timeout=1000)
    assert bar.reconnect_button.isEnabled() and bar.choose_button.isEnabled()
    # the user restarts JACK and clicks Reconnect: a new player process, sounding on the new server
    assert killable_jack_server.start()
    qtbot.mouseClick(bar.reconnect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not bar.isVisible(), timeout=30_000)
    player = win.playback.player
    assert player is not first_player and player.ready and "jack" in win.playback.output_name
    assert _fluidsynth_connections() == [
        "fluidsynth:left -> system:playback_1",
        "fluidsynth:right -> system:playback_2",
    ]
    win.act_play.trigger()
    assert win.playback.playing
    qtbot.wait(400)
    assert win.playback.playing and not bar.isVisible()  # it plays on: nothing failed this time
    win.act_play.trigger()
