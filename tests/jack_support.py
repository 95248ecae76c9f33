"""JACK for the tests: a private server (dummy backend, 48 kHz, 64-frame periods, synchronous)
and a JACK MIDI receiver; tests/conftest.py makes the fixtures available to every folder."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

_count = itertools.count()


@dataclass
class JackServer:
    name: str
    env: dict[str, str]


@contextlib.contextmanager
def private_jack(tag: str, period: int = 64) -> Iterator[dict[str, str] | None]:
    """``jackd -S -d dummy -r 48000 -p PERIOD`` under a unique name (no sound card needed).

    Yields the environment variables that point a client at it, or None when ``jackd`` and
    ``jack_wait`` are not installed or the server does not start.

    ``-S`` (synchronous mode): each cycle waits for every client to finish. In JACK2's default
    asynchronous mode a client the OS descheduled past its cycle (no real-time priority here, two
    shared cores) is skipped ("client = receiver was not finished"), and the MIDI events of that
    cycle are lost: about one message in 4000 under load, seen as a note missing at the receiver.
    """
    with killable_jack(tag, period) as server:
        yield server.env if server is not None else None


@dataclass
class KillableJack:
    """A private JACK server a test may kill (as a crash would) and start again under its name.

    A killed ``jackd`` leaves its slot in JACK's shared registry (8 slots per machine, reclaimed
    only by a server of the same name): :meth:`stop` starts it again and ends it cleanly, so
    killing never leaks a slot.
    """

    name: str
    env: dict[str, str]
    period: int
    proc: subprocess.Popen | None = None
    killed: bool = False

    def start(self) -> bool:
        """Start ``jackd`` (again) and wait until it answers; False when it did not start."""
        self.killed = False
        jackd, waiter = shutil.which("jackd"), shutil.which("jack_wait")
        assert jackd is not None and waiter is not None
        self.proc = subprocess.Popen(
            [jackd, "-S", "-n", self.name, "-d", "dummy", "-r", "48000", "-p", str(self.period)],
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        subprocess.run(
            [waiter, "-s", self.name, "-w", "-t", "10"], env={**os.environ, **self.env}, capture_output=True
        )
        return self.proc.poll() is None

    def kill(self) -> float:
        """SIGKILL the server (no goodbye to its clients); returns ``time.perf_counter()`` just before."""
        assert self.proc is not None
        when = time.perf_counter()
        self.proc.kill()
        self.proc.wait()
        self.killed = True
        return when

    def stop(self) -> None:
        """End the server cleanly (after a kill: start it again to free its registry slot)."""
        if self.killed and (self.proc is None or self.proc.poll() is not None):
            self.start()
        self.killed = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            _end(self.proc, 10.0)


def _end(proc: subprocess.Popen, timeout: float) -> None:
    """Wait for ``proc``, asked to end, to do so; kill it after ``timeout`` seconds."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def killable_jack(tag: str, period: int = 64) -> Iterator[KillableJack | None]:
    """As :func:`private_jack`, yielding the :class:`KillableJack` (None when jackd is missing or
    does not start)."""
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        yield None
        return
    name = f"musicgen-{tag}-{os.getpid()}-{next(_count)}"
    env = {"JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1", "JACK_NO_AUDIO_RESERVATION": "1"}
    server = KillableJack(name, env, period)
    try:
        yield server if server.start() else None
    finally:
        server.stop()


@pytest.fixture
def jack_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[JackServer]:
    """A private JACK server (64-frame periods) this test's clients talk to."""
    with private_jack("test") as env:
        if env is None:
            pytest.fail("jackd did not start: run scripts/setup.sh (apt package jackd2)")
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("MUSICGEN_MIDI_API", raising=False)
        yield JackServer(env["JACK_DEFAULT_SERVER"], env)


@pytest.fixture
def killable_jack_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[KillableJack]:
    """A private JACK server (64-frame periods) the test may kill and start again."""
    with killable_jack("kill") as server:
        if server is None:
            pytest.fail("jackd did not start: run scripts/setup.sh (apt package jackd2)")
        for k, v in server.env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("MUSICGEN_MIDI_API", raising=False)
        yield server


@pytest.fixture
def no_midi_system(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has no /dev/snd/seq; point JACK at a server that does not exist."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"musicgen-absent-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    monkeypatch.delenv("MUSICGEN_MIDI_API", raising=False)
    if os.path.exists("/dev/snd/seq"):
        pytest.skip("this machine has an ALSA sequencer")


# The receiver runs in a process of its own and reads RtMidi's queue from a Python thread (no
# Python callback in JACK's process thread): a JACK client that is late for its cycle makes JACK
# drop MIDI events, and a client that waits for an interpreter lock can be late.
_RECEIVER_CODE = r"""
import json, sys, threading, time
import rtmidi
got = []
lock = threading.Lock()
rx = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, "receiver")
rx.ignore_types(sysex=False, timing=False, active_sense=False)
rx.open_virtual_port("in")
stop = threading.Event()

def poll():
    # RtMidi queues in C++ (no Python in JACK's thread); times: the last message of a batch is
    # "now", earlier ones by RtMidi's deltas (JACK frame times) before it
    while not stop.is_set():
        batch = []
        while (item := rx.get_message()) is not None:
            batch.append(item)
        if not batch:
            time.sleep(0.0002)
            continue
        now = time.perf_counter()
        times = [now] * len(batch)
        for i in range(len(batch) - 2, -1, -1):
            times[i] = times[i + 1] - batch[i + 1][1]
        with lock:
            got.extend((t, data) for (data, _), t in zip(batch, times))

threading.Thread(target=poll, daemon=True).start()
print("ready", flush=True)
sent = 0
for line in sys.stdin:
    if line.strip() != "get":
        break
    with lock:
        new = got[sent:]
    sent += len(new)
    print(json.dumps(new), flush=True)
stop.set()
rx.close_port()
rx.delete()
"""


class Receiver:
    """A JACK MIDI input port ``receiver:in`` (in a child process) that timestamps every message."""

    port = "receiver:in"

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _RECEIVER_CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
        self._messages: list[tuple[float, list[int]]] = []

    @property
    def messages(self) -> list[tuple[float, list[int]]]:
        """(perf_counter time, bytes) of every message received so far."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("get\n")
        self.proc.stdin.flush()
        self._messages += [(t, list(d)) for t, d in json.loads(self.proc.stdout.readline())]
        return list(self._messages)

    def note_events(self) -> list[tuple[float, str, int, int]]:
        """(time, 'on'/'off', channel, pitch) of every note message received."""
        out = []
        for t, data in self.messages:
            status = data[0] & 0xF0
            if status == 0x90 and data[2] > 0:
                out.append((t, "on", data[0] & 15, data[1]))
            elif status in (0x80, 0x90):
                out.append((t, "off", data[0] & 15, data[1]))
        return out

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        _end(self.proc, 5.0)


@pytest.fixture
def jack_receiver(jack_server: JackServer) -> Iterator[Receiver]:
    rx = Receiver()
    yield rx
    rx.close()
