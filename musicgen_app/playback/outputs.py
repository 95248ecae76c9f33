"""Where MIDI messages go: one small interface, several implementations.

:class:`Output` is the interface (``send``, ``panic``, ``reset``, ``close``; ``close`` is
idempotent). Implementations: :class:`FluidSynthOutput` (software synth through libfluidsynth),
:class:`MidiPortOutput` (a MIDI port through python-rtmidi, or a virtual port a DAW can record),
:class:`RecordingOutput` (keeps what it got, for tests) and :class:`NullOutput` (what the player
switches to after an output failed). ``open_output("fluidsynth" | PORT)`` picks one.

``send`` raises :class:`~musicgen_app.errors.DeviceError` when the device fails; the scheduler
catches it, stops playback, switches the output off and reports it.

A device can also die between sends (the JACK server killed, the port unplugged): whoever notices
(for JACK outputs the watcher of :mod:`musicgen_app.playback.jack_watch`) calls :meth:`Output.fail`.
From then on :attr:`Output.failure` holds the reason, every ``send`` raises DeviceError, and the
listeners added with :meth:`Output.add_failure_listener` (the scheduler) are told at once, so
playback stops within one period instead of playing on into the void.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import mido

from musicgen_app.errors import DeviceError
from musicgen_app.playback import midi_ports, synth

logger = logging.getLogger(__name__)

ALL_CHANNELS = tuple(range(16))
CC_SUSTAIN = 64
CC_ALL_SOUND_OFF = 120
CC_RESET_CONTROLLERS = 121
CC_ALL_NOTES_OFF = 123


def panic_messages(channels: Iterable[int] = ALL_CHANNELS) -> list[mido.Message]:
    """Sustain off, all notes off and all sound off on each channel, in that order."""
    msgs: list[mido.Message] = []
    for ch in sorted(set(channels)):
        for cc in (CC_SUSTAIN, CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF):
            msgs.append(mido.Message("control_change", channel=ch, control=cc, value=0))
    return msgs


class Output:
    """Base of every output. Subclasses implement ``_send`` and optionally ``_close``."""

    name = "output"

    def __init__(self) -> None:
        self.closed = False
        self._failure: str | None = None
        #: ``time.perf_counter`` time the device died (None while it works)
        self.failed_at: float | None = None
        self._failure_lock = threading.Lock()
        self._failure_listeners: list[Callable[[Output], None]] = []

    @property
    def failure(self) -> str | None:
        """Why the device is dead (one line), or None while it works."""
        return self._failure

    def fail(self, reason: str, when: float | None = None) -> None:
        """Mark the device dead (any thread; the first reason wins): sends raise DeviceError from now
        on and every failure listener is called once, with this output."""
        with self._failure_lock:
            if self._failure is not None:
                return
            self.failed_at = time.perf_counter() if when is None else when
            self._failure = f"{self.name} stopped working: {reason}"
            listeners = list(self._failure_listeners)
        logger.info("%s", self._failure)  # reported by whoever listens (the scheduler)
        for listener in listeners:
            listener(self)

    def add_failure_listener(self, listener: Callable[[Output], None]) -> None:
        """Call ``listener(self)`` when the device dies (at once if it already has)."""
        with self._failure_lock:
            self._failure_listeners.append(listener)
            dead = self._failure is not None
        if dead:
            listener(self)

    def remove_failure_listener(self, listener: Callable[[Output], None]) -> None:
        """Forget a listener added with :meth:`add_failure_listener` (no error when absent)."""
        with self._failure_lock, contextlib.suppress(ValueError):
            self._failure_listeners.remove(listener)

    def send(self, msg: mido.Message) -> None:
        """Send one channel message now. DeviceError when the device failed."""
        if self.closed:
            raise DeviceError(f"{self.name} is closed")
        if self._failure is not None:
            raise DeviceError(self._failure)
        self._send(msg)

    def _send(self, msg: mido.Message) -> None:
        raise NotImplementedError

    def panic(self, channels: Iterable[int] = ALL_CHANNELS) -> None:
        """Silence everything: sustain off, all notes off, all sound off on ``channels``."""
        for msg in panic_messages(channels):
            self.send(msg)

    def reset(self) -> None:
        """Silence, then reset controllers and programs to their defaults on every channel."""
        self.panic()
        for ch in ALL_CHANNELS:
            self.send(mido.Message("control_change", channel=ch, control=CC_RESET_CONTROLLERS, value=0))
            if ch != 9:
                self.send(mido.Message("program_change", channel=ch, program=0))

    def close(self) -> None:
        """Release the device. Calling it again does nothing."""
        if self.closed:
            return
        self.closed = True
        self._close()

    def _close(self) -> None:
        pass

    def __enter__(self) -> Output:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class NullOutput(Output):
    """Drops everything (the player's output after a device failed)."""

    name = "no output"

    def _send(self, msg: mido.Message) -> None:
        pass


class RecordingOutput(Output):
    """Keeps every message with the time it was sent: ``messages`` is a list of ``(time_sec, msg)``.

    ``fail_after`` makes the n-th send (0-based) raise DeviceError, to exercise the player's recovery.
    """

    name = "recording"

    def __init__(self, clock: Callable[[], float] = time.perf_counter, fail_after: int | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.fail_after = fail_after
        self.messages: list[tuple[float, mido.Message]] = []
        self._lock = threading.Lock()

    def _send(self, msg: mido.Message) -> None:
        with self._lock:
            if self.fail_after is not None and len(self.messages) >= self.fail_after:
                raise DeviceError("recording output: simulated device failure")
            self.messages.append((self.clock(), msg))

    def of_type(self, *types: str) -> list[mido.Message]:
        """The messages of the given mido types, in order."""
        return [m for _, m in self.messages if m.type in types]


class MidiPortOutput(Output):
    """A MIDI output port by name (exact, else a case-insensitive substring), or a virtual port.

    ``api`` is "alsa", "jack" or None (automatic; see :mod:`musicgen_app.playback.midi_ports`).
    With ``virtual=True`` a port called ``port_name`` is created for other programs to connect to
    (not on Windows).
    """

    def __init__(
        self,
        port_name: str = midi_ports.APP_CLIENT_NAME,
        api: str | int | None = None,
        virtual: bool = False,
        client_name: str = midi_ports.APP_CLIENT_NAME,
    ) -> None:
        super().__init__()
        const = api if isinstance(api, int) else midi_ports.resolve_midi_api(api)
        self.api = const
        self._out = midi_ports.open_client("out", const, client_name)
        self._lock = threading.Lock()
        rtmidi = midi_ports._rtmidi()
        try:
            if virtual:
                self._out.open_virtual_port(port_name)
                self.name = f"{client_name}:{port_name}"
            else:
                ports = list(self._out.get_ports())
                idx = midi_ports.find_port(port_name, ports)
                if idx is None:
                    listing = ", ".join(ports) if ports else "none"
                    raise DeviceError(
                        f"no MIDI output port called {port_name!r} (ports on "
                        f"{midi_ports.api_name(const)}: {listing}); see `musicgen devices`"
                    )
                self._out.open_port(idx, "out")
                self.name = ports[idx]
        except (rtmidi.RtMidiError, OSError, NotImplementedError) as exc:
            self._out.delete()
            raise DeviceError(f"cannot open MIDI port {port_name!r}: {exc}") from exc
        except DeviceError:
            self._out.delete()
            raise
        self._watch = None
        if const == rtmidi.API_UNIX_JACK:  # JACK says nothing when the server or the port goes
            self._watch = _watch_jack(self, None if virtual else self.name)

    def _send(self, msg: mido.Message) -> None:
        try:
            with self._lock:
                self._out.send_message(msg.bytes())
        except (OSError, ValueError) as exc:
            raise DeviceError(f"MIDI port {self.name} failed: {exc}") from exc

    def _close(self) -> None:
        server_gone = self._watch is not None and self._watch.watch.dead
        if self._watch is not None:
            self._watch.cancel()
        if server_gone:
            return  # RtMidi's close would wait a second for the dead JACK server, in vain
        try:
            self._out.close_port()
        finally:
            self._out.delete()


class FluidSynthOutput(Output):
    """The FluidSynth software synth playing a SoundFont (the default: TimGM6mb from pretty_midi).

    ``driver`` names an audio driver; None tries DRIVER_ORDER until one really opens. ``audio=False``
    opens no driver (offline rendering pulls samples with :meth:`render_frames`). ``buffer_size`` and
    ``buffer_count`` are FluidSynth's ``audio.period-size`` and ``audio.periods``.
    """

    def __init__(
        self,
        soundfont: str | Path | None = None,
        driver: str | None = None,
        *,
        audio: bool = True,
        sample_rate: int = 44100,
        gain: float = 0.5,
        buffer_size: int = synth.DEFAULT_PERIOD_SIZE,
        buffer_count: int = synth.DEFAULT_PERIODS,
        reverb: bool = True,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self._fs = synth.fluidsynth_module()
        settings: dict[str, Any] = {
            "audio.period-size": int(buffer_size),
            "audio.periods": int(buffer_count),
            "synth.reverb.active": 1 if reverb else 0,
            # on JACK, connect to the system playback ports as Qsynth does: sound without a patchbay
            "audio.jack.autoconnect": 1,
        }
        self.synth = synth.new_synth(sample_rate=sample_rate, gain=gain, **settings)
        self._driver: Any = None
        self._watch: Any = None
        self._unwatch_driver: Callable[[], None] | None = None
        self.driver_name = "offline"
        try:
            self.soundfont = synth.check_soundfont(soundfont)
            self.sfid = synth.load_soundfont(self.synth, self.soundfont)
            if audio:
                self._driver, self.driver_name = synth.open_audio_driver(self.synth, driver)
        except DeviceError:
            self.synth.delete()
            raise
        self.name = f"FluidSynth ({self.soundfont.name}, {self.driver_name})"
        if self._driver:  # a driver whose device dies says so only in FluidSynth's log
            driver_name = self.driver_name
            self._unwatch_driver = synth.watch_driver(
                driver_name,
                lambda line, when: self.fail(f"its {driver_name} audio driver died ({line})", when),
            )
        if self.driver_name == "jack":  # and JACK says nothing at all when its server dies
            self._watch = _watch_jack(self)
        c_int, c_void_p = ctypes.c_int, ctypes.c_void_p
        synth_chan = (("synth", c_void_p, 1), ("chan", c_int, 1))
        self._channel_pressure = self._fs.cfunc(
            "fluid_synth_channel_pressure", c_int, *synth_chan, ("val", c_int, 1)
        )
        self._key_pressure = self._fs.cfunc(
            "fluid_synth_key_pressure", c_int, *synth_chan, ("key", c_int, 1), ("val", c_int, 1)
        )

    def _send(self, msg: mido.Message) -> None:
        s = self.synth
        t = msg.type
        if t == "note_on":
            if msg.velocity:
                s.noteon(msg.channel, msg.note, msg.velocity)
            else:
                s.noteoff(msg.channel, msg.note)
        elif t == "note_off":
            s.noteoff(msg.channel, msg.note)
        elif t == "control_change":
            s.cc(msg.channel, msg.control, msg.value)
        elif t == "program_change":
            s.program_change(msg.channel, msg.program)
        elif t == "pitchwheel":
            s.pitch_bend(msg.channel, msg.pitch)
        elif t == "aftertouch" and self._channel_pressure is not None:
            self._channel_pressure(s.synth, msg.channel, msg.value)
        elif t == "polytouch" and self._key_pressure is not None:
            self._key_pressure(s.synth, msg.channel, msg.note, msg.value)

    def render_frames(self, frames: int) -> Any:
        """Synthesize ``frames`` stereo frames now: an int16 numpy array of shape (frames, 2)."""
        data = self.synth.get_samples(frames)
        return data.reshape(-1, 2)

    def _close(self) -> None:
        if self._unwatch_driver is not None:
            self._unwatch_driver()
        if self._watch is not None:
            self._watch.cancel()
        if self._driver:
            if self.failure is not None:
                # the driver's device died (a JACK server killed under it): deleting the driver
                # closes its JACK client, which can block for ever on the dead server; the process
                # lets it go instead (the CLI and the player child leave with os._exit)
                logger.info("FluidSynth's audio driver is left open: its device died (%s)", self.failure)
                self._driver = None
                return  # the synth too: the driver still points at it
            self._fs.delete_fluid_audio_driver(self._driver)
            self._driver = None
        self.synth.delete()


def _watch_jack(output: Output, port: str | None = None) -> Any:
    """Subscribe ``output`` to the JACK watcher (its :meth:`Output.fail` is called when the server
    dies or ``port`` vanishes); None, with a warning, when the watcher cannot start."""
    from musicgen_app.playback import jack_watch

    try:
        return jack_watch.watch(output.fail, port)
    except DeviceError as exc:
        logger.warning("%s is not watched: %s", output.name, exc)
        return None


def open_output(
    spec: str = "fluidsynth",
    *,
    soundfont: str | Path | None = None,
    midi_api: str | None = None,
    driver: str | None = None,
    buffer_size: int = synth.DEFAULT_PERIOD_SIZE,
    buffer_count: int = synth.DEFAULT_PERIODS,
) -> Output:
    """Open ``"fluidsynth"`` (the software synth) or the MIDI output port named ``spec``.

    ``"none"`` is a silent output (for measurements and headless runs).
    ``"virtual"`` (or ``"virtual:NAME"``) creates a virtual port named after the app for a DAW to
    record. Raises DeviceError with what is missing and how to get it.
    """
    low = spec.strip().lower()
    if low in ("none", "null", "off"):
        return NullOutput()
    if low in ("fluidsynth", "synth", ""):
        return FluidSynthOutput(
            soundfont=soundfont, driver=driver, buffer_size=buffer_size, buffer_count=buffer_count
        )
    if low == "virtual" or low.startswith("virtual:"):
        name = spec.split(":", 1)[1] if ":" in spec else "out"
        return MidiPortOutput(name, api=midi_api, virtual=True)
    return MidiPortOutput(spec, api=midi_api)
