"""FluidSynth plumbing: loading libfluidsynth, finding and checking SoundFonts, opening audio drivers.

pyfluidsynth hides two failures: ``sfload`` returns -1 instead of raising, and ``Synth.start()``
returns success even when no audio driver opened. Both are checked here and turned into
:class:`~musicgen_app.errors.SoundFontError` / :class:`~musicgen_app.errors.DeviceError` with a
message naming what is missing and how to get it. FluidSynth's own log lines are routed to this
module's logger (and kept, so an error can quote them).

A third failure is silent too: when an audio driver's device dies while it plays (JACK drops the
client, PulseAudio or ALSA refuse a write), the driver logs one error line, its thread ends and the
synth goes on taking notes that nobody hears. :func:`watch_driver` turns that line into a call.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from musicgen_app.core.safe_io import read_head
from musicgen_app.errors import DeviceError, SoundFontError

logger = logging.getLogger(__name__)

DEFAULT_SOUNDFONT_NAME = "TimGM6mb.sf2"
ENV_SOUNDFONT = "MUSICGEN_SOUNDFONT"
# The order in which audio drivers are tried when none is named.
if sys.platform == "darwin":
    DRIVER_ORDER = ("coreaudio", "jack", "sdl2")
elif sys.platform.startswith("win"):
    DRIVER_ORDER = ("wasapi", "dsound", "waveout", "sdl2")
else:
    DRIVER_ORDER = ("pulseaudio", "pipewire", "alsa", "jack", "sdl2", "oss")
# Low latency by default: 2 periods of 256 frames is about 12 ms at 44.1 kHz.
DEFAULT_PERIOD_SIZE = 256
DEFAULT_PERIODS = 2

NO_LIBRARY_HELP = (
    "the FluidSynth library (libfluidsynth) was not found: install it with "
    "`sudo apt-get install libfluidsynth3` (macOS: `brew install fluid-synth`); "
    "MIDI port output (`--output PORT`) works without it"
)

# What FluidSynth's audio drivers log (as errors) when their device dies under them.
DRIVER_DEATH_LOGS: dict[str, tuple[str, ...]] = {
    "jack": ("Lost the connection to the JACK server",),
    "pulseaudio": ("Error writing to PulseAudio connection",),
    "alsa": ("The audio device error", "Failed to resume the audio device", "Failed to prepare the audio"),
    "oss": ("Error writing to OSS sound device",),
}

_module: ModuleType | None = None
_death_lock = threading.Lock()
_death_watchers: list[tuple[str, Callable[[str, float], None]]] = []
_log_lines: deque[str] = deque(maxlen=20)
_log_callback: Any = None  # keeps the ctypes callback alive


def fluidsynth_module() -> ModuleType:
    """The pyfluidsynth module, or DeviceError when libfluidsynth (or pyfluidsynth) is missing."""
    global _module
    if _module is not None:
        return _module
    if os.environ.get("MUSICGEN_NO_FLUIDSYNTH"):  # lets tests and users simulate a machine without it
        raise DeviceError(NO_LIBRARY_HELP)
    try:
        # pyfluidsynth prints where it found the library to stdout when $CI is set;
        # that would corrupt `musicgen devices --json` and any other machine-read output.
        with contextlib.redirect_stdout(io.StringIO()) as found:
            import fluidsynth
    except (ImportError, OSError) as exc:
        raise DeviceError(NO_LIBRARY_HELP) from exc
    if found.getvalue().strip():
        logger.debug("pyfluidsynth: %s", found.getvalue().strip())
    _install_log_function(fluidsynth)
    # Probing the jack driver must never start a JACK server behind the user's back.
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    _module = fluidsynth
    return fluidsynth


def _install_log_function(fs: ModuleType) -> None:
    """Send FluidSynth's log output to our logger instead of stderr."""
    global _log_callback
    setter = fs.cfunc(
        "fluid_set_log_function",
        ctypes.c_void_p,
        ("level", ctypes.c_int, 1),
        ("fun", ctypes.c_void_p, 1),
        ("data", ctypes.c_void_p, 1),
    )
    if setter is None:  # pragma: no cover - very old libfluidsynth
        return
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

    def _log(level: int, message: bytes | None, _data: int | None) -> None:
        text = (message or b"").decode("utf-8", "replace").strip()
        if level <= 1:  # FLUID_PANIC, FLUID_ERR
            _log_lines.append(text)
            logger.debug("fluidsynth error: %s", text)
            _tell_driver_death(text)
        else:
            logger.debug("fluidsynth: %s", text)

    _log_callback = proto(_log)
    for level in range(5):  # panic, error, warning, info, debug
        setter(level, ctypes.cast(_log_callback, ctypes.c_void_p), None)


def watch_driver(driver: str, on_death: Callable[[str, float], None]) -> Callable[[], None]:
    """Call ``on_death(log line, time.perf_counter() when it was logged)`` (from a thread of its
    own) when FluidSynth logs that an audio driver called ``driver`` lost its device; returns the
    function that ends the watch."""
    entry = (driver, on_death)
    with _death_lock:
        _death_watchers.append(entry)

    def unwatch() -> None:
        with _death_lock, contextlib.suppress(ValueError):
            _death_watchers.remove(entry)

    return unwatch


def _tell_driver_death(text: str) -> None:
    # runs on FluidSynth's (or libjack's) thread: hand over to a thread of ours at once
    when = time.perf_counter()
    with _death_lock:
        due = [cb for name, cb in _death_watchers if any(m in text for m in DRIVER_DEATH_LOGS.get(name, ()))]
    for cb in due:
        threading.Thread(target=cb, args=(text, when), name="musicgen-driver-death", daemon=True).start()


def take_log_lines() -> list[str]:
    """FluidSynth error lines logged since the last call."""
    lines = list(_log_lines)
    _log_lines.clear()
    return lines


def default_soundfont() -> Path | None:
    """``$MUSICGEN_SOUNDFONT`` when set, else the General MIDI SoundFont shipped inside pretty_midi."""
    env = os.environ.get(ENV_SOUNDFONT)
    if env:
        return Path(env)
    try:
        import pretty_midi
    except ImportError:
        return None
    path = Path(pretty_midi.__file__).resolve().parent / DEFAULT_SOUNDFONT_NAME
    return path if path.is_file() else None


def check_soundfont(path: str | Path | None) -> Path:
    """The SoundFont to load (``path`` or the default), checked to be a readable .sf2/.sf3 file."""
    if path is None:
        found = default_soundfont()
        if found is None:
            raise SoundFontError(
                f"no SoundFont given and the default ({DEFAULT_SOUNDFONT_NAME}, shipped with pretty_midi) "
                "was not found: reinstall pretty_midi (`pip install pretty_midi`) "
                "or pass --soundfont FILE.sf2"
            )
        path = found
    p = Path(path).expanduser()
    if not p.exists():
        raise SoundFontError(f"SoundFont not found: {p} (pass an existing .sf2 or .sf3 file)")
    # a device, a FIFO or a folder is refused here, before fluidsynth could hang or read forever
    head = read_head(p, 12, SoundFontError, "SoundFont")
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise SoundFontError(
            f"{p.name} is not a SoundFont (.sf2/.sf3): the file is damaged or of another type"
        )
    return p


def new_synth(sample_rate: int = 44100, gain: float = 0.5, **settings: Any) -> Any:
    """A ``fluidsynth.Synth`` (no audio driver yet)."""
    fs = fluidsynth_module()
    synth = fs.Synth(gain=gain, samplerate=sample_rate, **settings)
    if not synth.synth:
        raise DeviceError("FluidSynth could not create a synthesizer (out of memory?)")
    return synth


def load_soundfont(synth: Any, path: str | Path | None) -> int:
    """Load the SoundFont into ``synth`` and select it on every channel; returns its id."""
    p = check_soundfont(path)
    take_log_lines()
    with _quiet():  # libinstpatch prints assertions about damaged files on stderr
        sfid = synth.sfload(str(p), 1)
    if sfid is None or sfid < 0:
        detail = "; ".join(take_log_lines())
        raise SoundFontError(
            f"FluidSynth could not load the SoundFont {p.name}: the file is damaged or not a SoundFont"
            + (f" ({detail})" if detail else "")
        )
    for chan in range(16):
        if chan != 9:
            synth.program_select(chan, sfid, 0, 0)
        else:
            synth.program_select(chan, sfid, 128, 0)
    return int(sfid)


def open_audio_driver(synth: Any, driver: str | None = None) -> tuple[Any, str]:
    """Open an audio driver for ``synth``: ``driver``, or the first of DRIVER_ORDER that really opens.

    Returns ``(handle, driver_name)``; raises DeviceError listing what was tried and why it failed.
    """
    fs = fluidsynth_module()
    candidates = (driver,) if driver else DRIVER_ORDER
    failures: list[str] = []
    for name in candidates:
        synth.setting("audio.driver", name)
        if synth.get_setting("audio.driver") != name:
            failures.append(f"{name}: not in this FluidSynth build")
            continue
        take_log_lines()
        with _quiet():
            handle = fs.new_fluid_audio_driver(synth.settings, synth.synth)
        if handle:
            logger.info("FluidSynth audio driver: %s", name)
            return handle, name
        lines = take_log_lines()
        failures.append(f"{name}: {lines[-1] if lines else 'did not open'}")
    raise DeviceError(
        "no audio output could be opened (tried "
        + "; ".join(failures)
        + "). Start a sound server (PulseAudio/PipeWire) or JACK, or play on a MIDI device with "
        "`--output PORT`, or write a WAV with `musicgen render`"
    )


def _quiet():
    from musicgen_app.playback.midi_ports import quiet_stderr

    return quiet_stderr()


def working_audio_drivers() -> list[str]:
    """The audio drivers that really open on this machine right now (each is opened and closed)."""
    fs = fluidsynth_module()
    synth = new_synth()
    ok: list[str] = []
    try:
        for name in DRIVER_ORDER:
            try:
                handle, _ = open_audio_driver(synth, name)
            except DeviceError:
                continue
            fs.delete_fluid_audio_driver(handle)
            ok.append(name)
    finally:
        synth.delete()
    return ok
