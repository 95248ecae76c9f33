"""Which MIDI system to use (ALSA, JACK, the OS default) and the ports it offers.

python-rtmidi talks to one API per client. On Linux we use ALSA when the sequencer device
``/dev/snd/seq`` exists and JACK when a JACK server answers; ``MUSICGEN_MIDI_API=alsa|jack`` or
``--midi-api`` forces one. macOS and Windows have a single API (CoreMIDI, Windows MM).

A missing MIDI system is a :class:`~musicgen_app.errors.DeviceError` naming what is missing and how
to get it; nothing here raises anything else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator

from musicgen_app.errors import DeviceError

logger = logging.getLogger(__name__)

APP_CLIENT_NAME = "musicgen"
ENV_MIDI_API = "MUSICGEN_MIDI_API"
ALSA_SEQ_DEVICE = "/dev/snd/seq"
API_NAMES = ("alsa", "jack")

NO_MIDI_HELP = (
    "no MIDI system found: the ALSA sequencer ({seq}) is missing and no JACK server is running. "
    "Load the sequencer with `sudo modprobe snd-seq`, or start JACK (e.g. `jackd -d alsa` or QjackCtl); "
    "`musicgen play --output fluidsynth` plays without any MIDI system"
)

_stderr_lock = threading.Lock()


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence what C libraries (ALSA, JACK) print on file descriptor 2 while probing devices."""
    with _stderr_lock:
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            yield
            return
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        saved = os.dup(fd)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            os.close(devnull)


def _rtmidi():
    try:
        import rtmidi
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise DeviceError(
            "python-rtmidi is not installed: run `pip install python-rtmidi` in the app's environment"
        ) from exc
    return rtmidi


def _api_constant(name: str) -> int:
    rtmidi = _rtmidi()
    return {"alsa": rtmidi.API_LINUX_ALSA, "jack": rtmidi.API_UNIX_JACK}[name]


def jack_server_running() -> bool:
    """Whether a JACK server answers (never starts one)."""
    rtmidi = _rtmidi()
    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        return False
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    try:
        with quiet_stderr():
            probe = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, APP_CLIENT_NAME + "-probe")
    except (rtmidi.RtMidiError, OSError):
        return False
    probe.delete()
    return True


def alsa_sequencer_available() -> bool:
    """Whether the ALSA sequencer device exists (Linux)."""
    return os.path.exists(ALSA_SEQ_DEVICE)


def resolve_midi_api(api: str | None = None) -> int:
    """The rtmidi API constant to use: ``api`` ("alsa"/"jack"), else ``$MUSICGEN_MIDI_API``, else automatic.

    Raises DeviceError when the chosen API is unusable or when no MIDI system is found.
    """
    rtmidi = _rtmidi()
    choice = (api or os.environ.get(ENV_MIDI_API) or "").strip().lower()
    compiled = rtmidi.get_compiled_api()
    if choice:
        if choice not in API_NAMES:
            raise DeviceError(f"unknown MIDI API {choice!r}: use one of {', '.join(API_NAMES)}")
        const = _api_constant(choice)
        if const not in compiled:
            raise DeviceError(f"this build of python-rtmidi has no {choice.upper()} support")
        if choice == "alsa" and not alsa_sequencer_available():
            raise DeviceError(
                f"the ALSA sequencer ({ALSA_SEQ_DEVICE}) is missing: load it with `sudo modprobe snd-seq`"
            )
        if choice == "jack" and not jack_server_running():
            raise DeviceError("no JACK server is running: start one (e.g. `jackd -d alsa` or QjackCtl)")
        return const
    if sys.platform.startswith("linux"):
        if rtmidi.API_LINUX_ALSA in compiled and alsa_sequencer_available():
            return rtmidi.API_LINUX_ALSA
        if jack_server_running():
            return rtmidi.API_UNIX_JACK
        raise DeviceError(NO_MIDI_HELP.format(seq=ALSA_SEQ_DEVICE))
    return rtmidi.API_UNSPECIFIED


def api_name(api: int) -> str:
    """A readable name for an rtmidi API constant."""
    return _rtmidi().get_api_display_name(api)


def open_client(kind: str, api: int, name: str = APP_CLIENT_NAME):
    """An rtmidi ``MidiIn``/``MidiOut`` client; DeviceError when the MIDI system refuses."""
    rtmidi = _rtmidi()
    cls = rtmidi.MidiIn if kind == "in" else rtmidi.MidiOut
    try:
        with quiet_stderr():
            return cls(api, name)
    except (rtmidi.RtMidiError, OSError) as exc:
        raise DeviceError(f"the MIDI system ({api_name(api)}) refused a connection: {exc}") from exc


def list_ports(kind: str, api: str | int | None = None) -> list[str]:
    """Names of the MIDI input (``kind="in"``) or output ports; DeviceError when no MIDI system."""
    const = api if isinstance(api, int) else resolve_midi_api(api)
    client = open_client(kind, const, APP_CLIENT_NAME + "-list")
    try:
        return list(client.get_ports())
    finally:
        client.delete()


def list_output_ports(api: str | int | None = None) -> list[str]:
    """Names of the MIDI output ports (synths, DAWs, interfaces we can send to)."""
    return list_ports("out", api)


def find_port(name: str, ports: list[str]) -> int | None:
    """Index of the port called ``name``: exact match first, then a case-insensitive substring."""
    if name in ports:
        return ports.index(name)
    low = name.lower()
    matches = [i for i, p in enumerate(ports) if low in p.lower()]
    return matches[0] if matches else None
