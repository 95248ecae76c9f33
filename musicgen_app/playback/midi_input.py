"""A MIDI keyboard: messages time-stamped on a queue, played through to an output at once.

:class:`MidiInput` opens an input port by name (exact, else a case-insensitive substring). A reader
thread takes messages from RtMidi's own queue every ``read_interval_s`` (1 ms), sends each channel
message to the ``thru`` output at once, then puts it on :attr:`MidiInput.queue` as
``(time_sec, msg)`` for the app to record into the sketch. Times come from RtMidi's deltas (the
driver's time stamps), anchored to the clock when the message is read.

Why no Python callback: python-rtmidi would call it from JACK's process thread, which would then
wait for the interpreter lock while any other thread of ours runs Python; that stalls the whole JACK
graph (audio included) and, when the wait outlasts JACK's client timeout, loses the cycle's events
(a lost note-off is a stuck note). RtMidi's queue is filled in C++ and never waits for us.

A watcher thread refreshes the port list every ``poll_s`` seconds: when the port disappears that is
reported on :attr:`MidiInput.status`, and the port is reopened by name when it comes back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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
        self.queue: queue.Queue[tuple[float, mido.Message]] = queue.Queue()
        #: InputStatus reports (port gone, port back, thru output failed).
        self.status: queue.Queue[InputStatus] = queue.Queue()
        self._thru = thru
        self._lock = threading.Lock()
        self._rtmidi = midi_ports._rtmidi()
        self._client_name = client_name
        self._client = self._new_client()
        self._probe = midi_ports.open_client("in", self.api, client_name + "-watch")
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

    def __enter__(self) -> MidiInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------
    def _new_client(self):
        client = midi_ports.open_client("in", self.api, self._client_name)
        client.ignore_types(sysex=True, timing=True, active_sense=True)
        return client

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
                with self._lock:
                    present = self.port_name in self._probe.get_ports()
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
            now = self.clock()
            # the last message arrived about now; earlier ones by RtMidi's deltas before it
            times = [now] * len(batch)
            for i in range(len(batch) - 2, -1, -1):
                times[i] = times[i + 1] - batch[i + 1][1]
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
