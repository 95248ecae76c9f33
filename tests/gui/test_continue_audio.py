"""Continue ▸ Continue as Audio through the real window: the sketch is rendered by FluidSynth, the
shipped raw-audio WaveNet continues it on a task thread, the samples play through a JACK audio
port of a private server while the UI thread stays free, the take is kept and can be saved;
cancel is prompt; with no JACK server the take is still kept and the user gets one line."""

from __future__ import annotations

import threading
import time
import wave
from pathlib import Path

import pytest

from musicgen_app.gui.document import Document

pytestmark = [pytest.mark.gui, pytest.mark.fluidsynth]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICGEN_CACHE_DIR", str(tmp_path / "cache"))


def _job_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "musicgen-continue-audio"]


@pytest.mark.jack
def test_continue_as_audio_plays_through_jack_and_keeps_the_take(
    window, qtbot, sketch, jack_server, tmp_path: Path
) -> None:
    window.set_document(Document(sketch(2)))
    ac = window.audio_continue
    menus = {a.text(): a.menu() for a in window.menuBar().actions()}
    assert ac.action in menus["&Continue"].actions() and ac.save_action in menus["&File"].actions()
    assert not ac.save_action.isEnabled()
    with qtbot.waitSignal(ac.finished, timeout=120_000) as sig:
        t0 = time.perf_counter()
        ac.start(seconds=1.0)
        assert time.perf_counter() - t0 < 0.5  # the UI thread does not wait for the model
        assert ac.busy() and ac.action.text() == "Cancel Audio Continuation"
    message = str(sig.args[0])
    take = ac.last_take
    assert take is not None, message
    assert message.startswith("Audio continuation: 1.0 s") and take.path.name in message
    assert "musicgen-audio:out -> system:playback_1, system:playback_2" in message
    # the output's consumed-sample counter went through the whole take, at the dummy driver's pace
    assert take.started_after_s is not None and abs(take.played_s - 1.0) < 0.01, take
    assert not ac.busy() and ac.action.text() == "Continue as Audio"
    with wave.open(str(take.path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (8000, 1, 8000)
        assert any(w.readframes(8000))  # not silence
    assert window.statusBar().currentMessage() == message
    assert ac.save_action.isEnabled()
    dest = tmp_path / "mine.wav"
    with qtbot.waitSignal(ac.finished, timeout=10_000):
        ac.save_take(dest)
    assert dest.read_bytes() == take.path.read_bytes()


@pytest.mark.jack
def test_cancel_is_prompt_and_silences(window, qtbot, sketch, jack_server) -> None:
    window.set_document(Document(sketch(2)))
    ac = window.audio_continue
    ac.start(seconds=20.0)
    qtbot.waitUntil(lambda: ac.state.generated_s > 0.1, timeout=120_000)
    assert ac.busy()
    with qtbot.waitSignal(ac.finished, timeout=1000) as sig:
        ac.action.trigger()  # the same action cancels
    assert sig.args[0] == "Audio continuation cancelled"
    assert not ac.busy()
    t0 = time.perf_counter()
    while _job_threads() and time.perf_counter() - t0 < 5:
        qtbot.wait(10)
    # one block (50 ms of audio) at a real-time factor of a few, under load: well within 2 s
    assert not _job_threads() and time.perf_counter() - t0 < 2.0
    assert ac.last_take is None  # a cancelled take is not offered


def test_without_jack_the_take_is_kept_with_one_line(window, qtbot, sketch, no_midi_system) -> None:
    window.set_document(Document(sketch(2)))
    ac = window.audio_continue
    with qtbot.waitSignal(ac.finished, timeout=120_000) as sig:
        ac.start(seconds=0.25)
    message = str(sig.args[0])
    assert "not played (no audio output: the JACK server is not running)" in message
    assert "\n" not in message
    take = ac.last_take
    assert take is not None and take.path.is_file() and take.started_after_s is None


def test_playback_waits_only_as_long_as_generation_needs() -> None:
    from musicgen_app.gui.audio_continue import PREBUFFER_S, start_point

    assert start_point(4.0, 0.5) == PREBUFFER_S  # faster than real time: stream at once
    assert start_point(4.0, 100.0) == 4.0  # far slower: play once all is there
    part = start_point(4.0, 2.0)  # twice real time: about half first, then the rest keeps ahead
    assert 2.0 < part < 4.0


def test_an_empty_sketch_is_one_line(window, qtbot) -> None:
    ac = window.audio_continue
    with qtbot.waitSignal(ac.finished, timeout=1000) as sig:
        ac.start()
    assert sig.args[0] == "Continue as Audio: the sketch has no notes to continue"
    assert not ac.busy()
