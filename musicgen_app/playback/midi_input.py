"""A MIDI keyboard: messages time-stamped on a queue, played through to an output at once.

:class:`MidiInput` opens an input port by name (exact, else a case-insensitive substring). A reader
thread takes messages from RtMidi's own queue every ``read_interval_s`` (1 ms), sends each channel
message to the ``thru`` output at once, then puts it on :attr:`MidiInput.queue` as
``(time_sec, msg)`` for the app to record into the sketch. Times come from RtMidi's deltas (the
MIDI system's own time stamps: JACK's and ALSA's clocks are the monotonic clock ``perf_counter``
reads), each message's time the previous one's plus its delta, so a read that comes late (the
reader waiting for the interpreter while another thread works, as when an answer is being stopped)
does not move the note. The chain is never later than the clock when the message is read (there it
is re-anchored), and is dropped for the clock's reading when it is implausibly old (a first
message, a reopened port: RtMidi's delta is 0 there).

Why no Python callback: python-rtmidi would call it from JACK's process thread, which would then
wait for the interpreter lock while any other thread of ours runs Python; that stalls the whole JACK
graph (audio included) and, when the wait outlasts JACK's client timeout, loses the cycle's events
(a lost note-off is a stuck note). RtMidi's queue is filled in C++ and never waits for us.

A watcher thread refreshes the port list every ``poll_s`` seconds: when the port disappears that is
reported on :attr:`MidiInput.status`, and the port is reopened by name when it comes back. On JACK
it asks through :mod:`~musicgen_app.playback.jack_watch`'s client (ctypes, which releases the
interpreter lock): python-rtmidi's ``get_ports`` holds the lock for a round trip to the server,
which made a note due meanwhile late in a player's timing thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mido

from musicgen_app.errors import DeviceError
from musicgen_app.playback import midi_ports
from musicgen_app.playback.outputs import Output

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InputStatus:
    """Something happened to the input port: ``disconnected``, ``reconnected`` or ``thru-error``."""

    kind: str
    port: str
    message: str


def _jack_watch(api: int, rtmidi: Any) -> Any:
    """On JACK, a subscription to the process's JACK watcher (:func:`musicgen_app.playback.jack_watch.watch`),
    whose client asks the server for a port without the interpreter lock; None elsewhere, or when
    libjack will not give one (the watcher then lists ports through rtmidi)."""
    if api != rtmidi.API_UNIX_JACK:
        return None
    from musicgen_app.playback import jack_watch

    try:
        return jack_watch.watch(lambda _reason, _when: None)  # the port itself is probed in _watch
    except DeviceError as exc:
        logger.info("keyboard port watch through rtmidi: %s", exc)
        return None


KeyboardItem = tuple[float, mido.Message]


MAX_READ_LAG_S = 0.25  # a chain of deltas ending further back than this is not believed


def message_times(last_time: float, deltas: list[float], now: float) -> list[float]:
    """The times of a batch of messages read at ``now``, from RtMidi's ``deltas`` (seconds since
    the message before) and ``last_time``, the time given to the message before the batch.

    Chained from ``last_time`` when that ends within :data:`MAX_READ_LAG_S` before ``now`` (a read
    that came late keeps the notes where they were played); the chain is shifted back when it
    would put the last message after ``now``; otherwise (a first message, a reopened port) the last
    message is put at ``now`` and the others by their deltas before it."""
    chain, t = [], last_time
    for d in deltas:
        t += max(0.0, d)
        chain.append(t)
    if now - MAX_READ_LAG_S <= chain[-1] <= now:
        return chain
    times = [now] * len(deltas)
    for i in range(len(deltas) - 2, -1, -1):
        times[i] = times[i + 1] - max(0.0, deltas[i + 1])
    return times


class KeyboardQueue(queue.Queue[KeyboardItem]):
    """The ``(time_sec, msg)`` queue of a keyboard, which also hands each item, as it is put, to
    the callables in :attr:`taps` (on the thread that puts it). The window drains the queue on a
    timer to record; a jam taps it, so that a key reaches the jam at once and the UI thread is not
    on the path from the keyboard to the answer. A tap must be quick and must not raise."""

    def __init__(self) -> None:
        super().__init__()
        #: called with every item put; a list shared with whoever manages the taps
        self.taps: list[Callable[[KeyboardItem], None]] = []

    def put(self, item: KeyboardItem, block: bool = True, timeout: float | None = None) -> None:
        """Queue ``item`` and hand it to every tap."""
        super().put(item, block, timeout)
        for tap in tuple(self.taps):
            try:
                tap(item)
            except Exception:  # a tap's failure must not cost the keyboard its next message
                logger.exception("a keyboard tap failed")


def list_input_ports(api: str | int | None = None) -> list[str]:
    """Names of the MIDI input ports (keyboards, controllers); DeviceError when there is no MIDI system."""
    return midi_ports.list_ports("in", api)


class MidiInput:
    """An open MIDI input port (see the module docstring)."""

    def __init__(
        self,
        port_name: str,
        api: str | int | None = None,
        thru: Output | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
        poll_s: float = 1.0,
        read_interval_s: float = 0.001,
        client_name: str = midi_ports.APP_CLIENT_NAME + "-in",
    ) -> None:
        self.requested_name = port_name
        self.api = api if isinstance(api, int) else midi_ports.resolve_midi_api(api)
        self.clock = clock
        self.poll_s = poll_s
        self.read_interval_s = read_interval_s
        #: (time_sec, mido.Message) for every message received.
        self.queue = KeyboardQueue()
        #: InputStatus reports (port gone, port back, thru output failed).
        self.status: queue.Queue[InputStatus] = queue.Queue()
        self._thru = thru
        self._last_time = -1e9  # the time given to the last message read (none yet)
        self._lock = threading.Lock()
        self._rtmidi = midi_ports._rtmidi()
        self._client_name = client_name
        self._client = self._new_client()
        self._probe = midi_ports.open_client("in", self.api, client_name + "-watch")
        self._jack = _jack_watch(self.api, self._rtmidi)
        self.port_name = ""
        self.connected = False
        try:
            if not self._open():
                ports = self.list_ports()
                raise DeviceError(
                    f"no MIDI input port called {port_name!r} (inputs: {', '.join(ports) or 'none'}); "
                    "see `musicgen devices`"
                )
        except DeviceError:
            self._client.delete()
            self._probe.delete()
            if self._jack is not None:
                self._jack.cancel()
            raise
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="musicgen-midi-watch", daemon=True)
        self._watcher.start()
        self._reader = threading.Thread(target=self._read, name="musicgen-midi-input", daemon=True)
        self._reader.start()

    # -- public ---------------------------------------------------------------------------------
    def set_thru(self, output: Output | None) -> None:
        """Play incoming messages through ``output`` (None: no thru)."""
        with self._lock:
            self._thru = output

    def list_ports(self) -> list[str]:
        """A fresh list of the input ports."""
        with self._lock:
            return [p for p in self._probe.get_ports() if not p.startswith(self._own_prefix())]

    def get(self, timeout: float | None = None) -> tuple[float, mido.Message] | None:
        """The next ``(time_sec, msg)``, or None after ``timeout``."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Close the port and stop watching. Calling it again does nothing."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._watcher.join(timeout=2.0)
        self._reader.join(timeout=2.0)
        with self._lock:
            self._client.close_port()
            self._client.delete()
            self._probe.delete()
            self.connected = False
        if self._jack is not None:
            self._jack.cancel()

    def __enter__(self) -> MidiInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------
    def _new_client(self):
        client = midi_ports.open_client("in", self.api, self._client_name)
        client.ignore_types(sysex=True, timing=True, active_sense=True)
        return client

    def _port_present(self) -> bool:
        """Whether our port is there now (for the watcher). On JACK through the JACK watcher's
        ctypes client, which releases the interpreter lock while the server answers: python-rtmidi's
        ``get_ports`` holds it for that round trip, and a player's timing thread waited (a note
        8-10 ms late at a JACK port, once in a while, with a keyboard open)."""
        jack = self._jack
        if jack is not None and not jack.watch.dead:
            return bool(self.port_name) and jack.watch.port_exists(self.port_name)
        with self._lock:
            return self.port_name in self._probe.get_ports()

    def _own_prefix(self) -> str:
        return midi_ports.APP_CLIENT_NAME + "-in"

    def _open(self) -> bool:
        with self._lock:
            ports = [p for p in self._probe.get_ports() if not p.startswith(self._own_prefix())]
            idx = midi_ports.find_port(self.requested_name, ports)
            if idx is None:
                return False
            # rtmidi numbers ports per client: find the same name in the client's own list
            own = list(self._client.get_ports())
            if ports[idx] not in own:
                return False
            try:
                self._client.open_port(own.index(ports[idx]), "in")
            except (self._rtmidi.RtMidiError, OSError) as exc:
                logger.info("cannot open %s: %s", ports[idx], exc)
                return False
            self.port_name = ports[idx]
            self.connected = True
            return True

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                present = self._port_present()
                if self.connected and not present:
                    with self._lock:
                        # a fresh client reconnects reliably (JACK drops the old connection)
                        self._client.close_port()
                        self._client.delete()
                        self._client = self._new_client()
                        self.connected = False
                    msg = f"MIDI input {self.port_name} disappeared; it will be reopened when it returns"
                    logger.warning("%s", msg)
                    self.status.put(InputStatus("disconnected", self.port_name, msg))
                elif not self.connected and self._open():
                    msg = f"MIDI input {self.port_name} is back"
                    logger.info("%s", msg)
                    self.status.put(InputStatus("reconnected", self.port_name, msg))
            except (self._rtmidi.RtMidiError, OSError) as exc:
                logger.warning("MIDI input watcher: %s", exc)

    def _read(self) -> None:
        """Drain RtMidi's queue every ``read_interval_s``: thru first, then the time-stamped queue."""
        while not self._stop.is_set():
            batch: list[tuple[list[int], float]] = []
            with self._lock:
                while True:
                    item = self._client.get_message()
                    if item is None:
                        break
                    batch.append(item)
            if not batch:
                time.sleep(self.read_interval_s)
                continue
            times = message_times(self._last_time, [delta for _, delta in batch], self.clock())
            self._last_time = times[-1]
            for (data, _delta), t in zip(batch, times, strict=True):
                self._handle(data, t)

    def _handle(self, data: list[int], t: float) -> None:
        try:
            msg = mido.Message.from_bytes(data)
        except (ValueError, TypeError):
            return
        thru = self._thru
        if thru is not None and msg.type != "sysex":
            try:
                thru.send(msg)
            except DeviceError as exc:
                self._thru = None
                self.status.put(InputStatus("thru-error", self.port_name, f"thru output switched off: {exc}"))
        self.queue.put((t, msg))
