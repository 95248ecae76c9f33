"""Recording from a MIDI keyboard (a virtual port on a private JACK server) into the active
track: notes are drawn while they are played and land in the song as one undo step."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from musicgen_app.core.song import Song, Track
from musicgen_app.gui.document import Document

pytestmark = [pytest.mark.gui, pytest.mark.jack, pytest.mark.slow]


@pytest.fixture
def jack(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    jackd, waiter = shutil.which("jackd"), shutil.which("jack_wait")
    if jackd is None or waiter is None:
        pytest.skip("jackd is not installed (scripts/setup.sh installs jackd2)")
    name = f"musicgen-gui-rec-{os.getpid()}"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    monkeypatch.setenv("JACK_NO_AUDIO_RESERVATION", "1")
    monkeypatch.delenv("MUSICGEN_MIDI_API", raising=False)
    proc = subprocess.Popen(
        [jackd, "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        subprocess.run([waiter, "-s", name, "-w", "-t", "10"], capture_output=True, timeout=20)
        yield name
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_record_from_keyboard_draws_and_adds_one_step(window, qtbot, jack, recording) -> None:
    import rtmidi

    kb = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "gui-keyboard")
    kb.open_virtual_port("out")
    try:
        window.set_document(Document(Song(tracks=[Track(name="Melody")])))
        window.settings.input_port = "gui-keyboard"
        window.settings.thru = True
        window.act_record.trigger()
        assert window.act_record.isChecked() and window.playback.playing
        qtbot.wait(200)
        kb.send_message([0x90, 60, 100])
        qtbot.waitUntil(lambda: [n.pitch for n in window.canvas.record_notes] == [60], timeout=3000)
        qtbot.wait(300)
        kb.send_message([0x80, 60, 0])
        kb.send_message([0x90, 67, 80])
        qtbot.wait(300)
        kb.send_message([0x80, 67, 0])
        qtbot.waitUntil(lambda: len(window.canvas.record_notes) == 2, timeout=3000)
        time.sleep(0.1)
        window.act_record.trigger()  # stop recording
        assert not window.act_record.isChecked()
        notes = window.doc.notes
        assert [n.pitch for n in notes] == [60, 67]
        assert [n.velocity for n in notes] == [100, 80]
        assert notes[0].start_tick < notes[0].end_tick <= notes[1].start_tick + 5
        assert window.doc.undo_stack.count() == 1
        assert [m.note for m in recording.of_type("note_on") if m.velocity > 0][:2] == [60, 67]  # thru
        window.act_undo.trigger()
        assert window.doc.notes == []
    finally:
        kb.close_port()
        kb.delete()
