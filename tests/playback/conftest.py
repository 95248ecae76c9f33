"""A private JACK server (dummy backend, 48 kHz, 64-frame periods) and a JACK MIDI receiver."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

_count = itertools.count()


@dataclass
class JackServer:
    name: str
    process: subprocess.Popen


def _wait_for_server(deadline_s: float) -> bool:
    from musicgen_app.playback.midi_ports import jack_server_running

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if jack_server_running():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def jack_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[JackServer]:
    """Start ``jackd -d dummy -r 48000 -p 64`` under a unique name; stop it afterwards."""
    jackd = shutil.which("jackd")
    if jackd is None:
        pytest.fail("jackd is not installed: run scripts/setup.sh (apt package jackd2)")
    name = f"musicgen-test-{os.getpid()}-{next(_count)}"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    monkeypatch.setenv("JACK_NO_AUDIO_RESERVATION", "1")
    monkeypatch.delenv("MUSICGEN_MIDI_API", raising=False)
    proc = subprocess.Popen(
        [jackd, "-n", name, "-d", "dummy", "-r", "48000", "-p", "64"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if not _wait_for_server(10.0):
            proc.terminate()
            err = proc.communicate(timeout=5)[1].decode(errors="replace")
            pytest.fail(f"jackd did not start: {err[-500:]}")
        yield JackServer(name, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def no_midi_system(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has no /dev/snd/seq; point JACK at a server that does not exist."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"musicgen-absent-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    monkeypatch.delenv("MUSICGEN_MIDI_API", raising=False)
    if os.path.exists("/dev/snd/seq"):
        pytest.skip("this machine has an ALSA sequencer")


@dataclass
class Receiver:
    """A JACK MIDI input port that timestamps (perf_counter) every message it gets."""

    client: object
    port: str
    messages: list[tuple[float, list[int]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_events(self) -> list[tuple[float, str, int, int]]:
        """(time, 'on'/'off', channel, pitch) of every note message received."""
        out = []
        with self.lock:
            msgs = list(self.messages)
        for t, data in msgs:
            status = data[0] & 0xF0
            if status == 0x90 and data[2] > 0:
                out.append((t, "on", data[0] & 15, data[1]))
            elif status in (0x80, 0x90):
                out.append((t, "off", data[0] & 15, data[1]))
        return out

    def close(self) -> None:
        self.client.close_port()
        self.client.delete()


@pytest.fixture
def jack_receiver(jack_server: JackServer) -> Iterator[Receiver]:
    import rtmidi

    client = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, "receiver")
    client.ignore_types(sysex=False, timing=False, active_sense=False)
    client.open_virtual_port("in")
    rx = Receiver(client, "receiver:in")

    def _cb(event: tuple[list[int], float], _data: object) -> None:
        t = time.perf_counter()
        with rx.lock:
            rx.messages.append((t, event[0]))

    client.set_callback(_cb)
    yield rx
    rx.close()
