"""A dead output fails loudly: kill the JACK server (or the port) in the middle of playback.

Real JACK (a private ``jackd -S`` killed with SIGKILL, as a crash would), real FluidSynth, real
JACK MIDI ports, the real `musicgen` command in a process of its own. Each run must end within
1 s of the kill with exit status 2 and one line on stderr (no traceback); `continue --play` says
how many notes were heard and how many not, and the count agrees with what the receiver got.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jack_support import KillableJack, Receiver

from musicgen_app.core.midi_io import read_midi, write_midi
from musicgen_app.core.song import Note, Song, TempoChange, Track
from musicgen_app.playback.jack_watch import watch
from musicgen_app.playback.outputs import FluidSynthOutput

from .helpers import two_track_song, wait_until

pytestmark = [pytest.mark.jack, pytest.mark.slow]

EXIT_WITHIN_S = 1.0  # the promise; measured about 0.1 s on two loaded cores


def _long_song() -> Song:
    """20 s of quarter notes at 120 BPM: still playing when the server is killed."""
    r = 480
    notes = [Note(i * r, 60 + (i * 5) % 12, (i + 1) * r - 20, 90) for i in range(40)]
    return Song(resolution=r, tracks=[Track("melody", notes=notes)], tempos=[TempoChange(0, 500_000)])


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "musicgen_app.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
    )


def _ends_loudly(proc: subprocess.Popen, killed_at: float, what: str) -> str:
    """Wait for the command; check exit 2 within EXIT_WITHIN_S of the kill and one error line."""
    try:
        rc = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler (PYTHONFAULTHANDLER) prints every thread
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        pytest.fail(f"{what}: still running 15 s after the output died; stderr:\n{(err or '')[-4000:]}")
    took = time.perf_counter() - killed_at
    err = proc.stderr.read() if proc.stderr else ""
    print(f"\n{what}: exit {rc} {took * 1000:.0f} ms after the kill: {err.strip()}")
    assert rc == 2, err
    assert took < EXIT_WITHIN_S, f"{what} took {took:.2f} s to notice"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("device", ["fluidsynth", "receiver", "virtual"])
def test_play_exits_2_within_a_second_when_the_jack_server_dies(
    killable_jack_server: KillableJack, device: str, tmp_path: Path
) -> None:
    path = tmp_path / "long.mid"
    write_midi(_long_song(), path)
    receiver = Receiver() if device == "receiver" else None
    try:
        extra = ["--audio-driver", "jack"] if device == "fluidsynth" else ["--midi-api", "jack"]
        proc = _start("play", str(path), "--device", device, *extra)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("playing "), first + (proc.stderr.read() if proc.stderr else "")
        if receiver is not None:  # really playing: notes arrive
            assert wait_until(lambda: len(receiver.note_events()) >= 2, 5.0)
        else:
            time.sleep(0.8)
        killed_at = killable_jack_server.kill()
        line = _ends_loudly(proc, killed_at, f"play --device {device}")
    finally:
        if receiver is not None:
            receiver.close()
    # the JACK watcher or FluidSynth's own log line, whichever is first
    assert re.search(r"stopped working: (the JACK server stopped|.*Lost the connection to the JACK)", line)
    assert "playback stopped at 0:0" in line


def test_play_exits_2_when_the_port_it_plays_to_vanishes(
    killable_jack_server: KillableJack, tmp_path
) -> None:
    path = tmp_path / "long.mid"
    write_midi(_long_song(), path)
    receiver = Receiver()
    proc = _start("play", str(path), "--device", "receiver", "--midi-api", "jack")
    assert wait_until(lambda: len(receiver.note_events()) >= 2, 10.0)
    receiver.proc.kill()  # the synth at the other end crashes; the server lives on
    killed_at = time.perf_counter()
    receiver.proc.wait()
    line = _ends_loudly(proc, killed_at, "play, port vanished")
    assert "the JACK port receiver:in has gone" in line


def test_continue_play_exits_2_and_says_what_was_heard(killable_jack_server: KillableJack, tmp_path) -> None:
    seed, out = tmp_path / "seed.mid", tmp_path / "out.mid"
    song = two_track_song()
    write_midi(song, seed)
    receiver = Receiver()
    try:
        proc = _start(
            "continue", str(seed), "-o", str(out), "--bars", "16", "--seed", "3",
            "--play", "--device", "receiver", "--midi-api", "jack",
        )  # fmt: skip
        # the model, loaded in a few seconds, plays 16 bars at 240 BPM (16 s): kill it early on
        assert wait_until(lambda: sum(k == "on" for _, k, _, _ in receiver.note_events()) >= 4, 60.0)
        killed_at = killable_jack_server.kill()
        line = _ends_loudly(proc, killed_at, "continue --play")
        received = sum(k == "on" for _, k, _, _ in receiver.note_events())
    finally:
        receiver.close()
    m = re.search(r"(\d+) notes heard, (\d+) generated notes not heard", line)
    assert m, line
    heard, not_heard = int(m[1]), int(m[2])
    # notes sent in the few ms between the kill and its detection count as heard but are lost
    assert received <= heard <= received + 2, (received, line)
    assert not_heard > 0  # the model had written ahead of playback
    melody = max(read_midi(out).song.tracks, key=lambda t: len(t.notes))
    assert len(melody.notes) == 8 + heard  # the seed's melody and the heard notes, nothing else


def test_fluidsynth_on_jack_connects_to_the_system_playback_ports(killable_jack_server) -> None:
    """As Qsynth does: a JACK user hears FluidSynth without a patchbay."""
    synth = FluidSynthOutput(driver="jack")
    try:
        lsp = subprocess.run(["jack_lsp", "-c"], capture_output=True, text=True, timeout=10).stdout
    finally:
        synth.close()
    connections: dict[str, list[str]] = {}
    port = ""
    for raw in lsp.splitlines():
        if raw.startswith(" "):
            connections[port].append(raw.strip())
        else:
            port = raw.strip()
            connections[port] = []
    outs = sorted(p for p in connections if p.startswith("fluidsynth:"))
    assert len(outs) == 2, lsp
    assert sorted(c for p in outs for c in connections[p]) == ["system:playback_1", "system:playback_2"]


def test_the_watch_reports_a_dead_server_within_milliseconds(killable_jack_server: KillableJack) -> None:
    """The detection itself: libjack's shutdown callback reaches the subscriber at once."""
    told: list[tuple[str, float]] = []
    sub = watch(lambda reason, when: told.append((reason, time.perf_counter())))
    killed_at = killable_jack_server.kill()
    assert wait_until(lambda: bool(told), 2.0)
    sub.cancel()
    latency_ms = (told[0][1] - killed_at) * 1000
    print(f"\nJACK server death noticed {latency_ms:.1f} ms after SIGKILL")
    assert "the JACK server stopped" in told[0][0]
    assert latency_ms < 500


def test_fluidsynth_reports_its_driver_dying_without_the_jack_watcher(
    killable_jack_server: KillableJack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FluidSynth's own error line marks the output dead: the path that also catches a client JACK
    dropped while the server lives, and a PulseAudio or ALSA device that died under the synth."""
    from musicgen_app.playback import outputs

    monkeypatch.setattr(outputs, "_watch_jack", lambda output, port=None: None)  # the other path off
    synth = FluidSynthOutput(driver="jack")
    try:
        killed_at = killable_jack_server.kill()
        assert wait_until(lambda: synth.failure is not None, 3.0)
        print(
            f"\nFluidSynth's driver death noticed {(synth.failed_at - killed_at) * 1000:.1f} ms after SIGKILL"
        )
    finally:
        synth.close()
    assert "its jack audio driver died (Help! Lost the connection to the JACK server)" in str(synth.failure)
