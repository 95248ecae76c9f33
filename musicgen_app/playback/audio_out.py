"""A sample-stream audio output: one JACK audio port fed from a buffer that Python fills.

FluidSynth plays notes, not arbitrary samples, so generated audio (the raw-audio WaveNet's
continuations) leaves through this small JACK client of its own (``musicgen-audio:out``, opened
with ctypes on the libjack that :mod:`musicgen_app.playback.jack_watch` loads). Its process
callback is a ctypes callback: each JACK cycle it copies the next ``nframes`` samples from a
preallocated float32 buffer into the port (``memmove``; silence once the buffer runs dry) and
advances a read counter. The writer appends resampled samples and then advances the write
counter; the callback never allocates and only reads what the counters say is complete, so no
lock is shared with the writer. The callback needs the interpreter lock for a few microseconds a
cycle: on a loaded machine a cycle may be late (JACK counts an xrun), never wrong.

The port is connected to the server's physical playback ports (``system:playback_*``) unless
told otherwise. Every failure to open is a :class:`~musicgen_app.errors.DeviceError` with one
line; callers keep their audio as a file then.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from typing import Any

import numpy as np

from musicgen_app.errors import DeviceError
from musicgen_app.playback import jack_watch

logger = logging.getLogger(__name__)

CLIENT_NAME = "musicgen-audio"
PORT_NAME = "out"
AUDIO_TYPE = b"32 bit float mono audio"
_PORT_IS_INPUT, _PORT_IS_OUTPUT, _PORT_IS_PHYSICAL = 0x1, 0x2, 0x4
_NO_START_SERVER = 0x01

_PROCESS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p)
_SHUTDOWN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_typed = False
_typed_lock = threading.Lock()
# clients handed back with JackAudioOutput.release(), kept active for the next take: deactivating a
# client whose process callback is Python can deadlock the interpreter (libjack cancels its thread
# while that thread waits for the GIL, leaving the GIL's mutex locked), so the app never does it
_parked: list[JackAudioOutput] = []
_parked_lock = threading.Lock()


def _lib() -> Any:
    """libjack with the prototypes this module calls (DeviceError when it is not installed)."""
    global _typed
    lib = jack_watch._libjack()
    if lib is None:
        raise DeviceError("no audio output: libjack is not installed (apt package libjack-jackd2-0)")
    with _typed_lock:
        if not _typed:
            vp, cp, u32 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32
            protos: dict[str, tuple[Any, list[Any]]] = {
                "jack_get_sample_rate": (u32, [vp]),
                "jack_port_register": (vp, [vp, cp, cp, ctypes.c_ulong, ctypes.c_ulong]),
                "jack_port_name": (cp, [vp]),
                "jack_set_process_callback": (ctypes.c_int, [vp, _PROCESS, vp]),
                "jack_on_shutdown": (None, [vp, _SHUTDOWN, vp]),
                "jack_port_get_buffer": (vp, [vp, u32]),
                "jack_activate": (ctypes.c_int, [vp]),
                "jack_deactivate": (ctypes.c_int, [vp]),
                "jack_get_ports": (ctypes.POINTER(cp), [vp, cp, cp, ctypes.c_ulong]),
                "jack_connect": (ctypes.c_int, [vp, cp, cp]),
                "jack_free": (None, [vp]),
            }
            for name, (res, args) in protos.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = res, args
            _typed = True
    return lib


class StreamResampler:
    """Linear-interpolation resampling of a stream handed over in chunks (continuous across them)."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        self.step = rate_in / rate_out  # input samples per output sample
        self.prev = 0.0  # the last input sample of the previous chunk (index 0 of the next window)
        self.phase = 1.0  # where the next output falls, in input samples after ``prev``

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The output samples that ``x`` completes (float32)."""
        x = np.asarray(x, dtype=np.float64).ravel()
        if not len(x):
            return np.zeros(0, dtype=np.float32)
        y = np.concatenate([[self.prev], x])
        n = int(np.floor((len(x) - self.phase) / self.step)) + 1 if self.phase <= len(x) else 0
        pos = self.phase + self.step * np.arange(n)
        out = np.interp(pos, np.arange(len(y)), y)
        self.phase = self.phase + self.step * n - len(x)
        self.prev = float(x[-1])
        return out.astype(np.float32)


class JackAudioOutput:
    """One JACK audio output port that plays what :meth:`write` appends (see the module docstring).

    ``capacity_s`` seconds (at the server's rate) are preallocated; playback begins at
    :meth:`start` (so a caller can buffer ahead) and consumes up to what was written.
    """

    _client: Any
    dead: bool
    _pinned: bool
    _server: str

    @classmethod
    def acquire(cls, client_name: str = CLIENT_NAME) -> JackAudioOutput:
        """A client handed back earlier by :meth:`release` on the same server (silent, emptied,
        reconnected), or a new one. DeviceError when there is no server."""
        server = os.environ.get("JACK_DEFAULT_SERVER", "")
        with _parked_lock:
            for i, out in enumerate(_parked):
                if out._server == server and not out.dead and out._client is not None:
                    del _parked[i]
                    out._reset()
                    return out
        return cls(client_name)

    def release(self) -> None:
        """Hand the client back for the next take instead of closing it (see ``_parked``): it stays
        active, playing silence. A dead server's client is dropped."""
        self._playing = False
        if self._client is None or self.dead:
            return
        with _parked_lock:
            _parked[:] = [o for o in _parked if not o.dead and o._client is not None]
            _parked.append(self)
            if not self._pinned:  # never freed, even at interpreter exit, while JACK may still call it
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(self))
                self._pinned = True

    def _reset(self) -> None:
        self._playing = False
        self._read = self._write = 0
        self._finished = False
        self.underruns = 0
        self._resamplers.clear()

    def __init__(
        self, client_name: str = CLIENT_NAME, *, capacity_s: float = 120.0, connect: bool = True
    ) -> None:
        self._server = os.environ.get("JACK_DEFAULT_SERVER", "")
        self._pinned = False
        lib = _lib()
        jack_watch.quiet_libjack()
        status = ctypes.c_int(0)
        client = lib.jack_client_open(client_name.encode(), _NO_START_SERVER, ctypes.byref(status))
        if not client:
            raise DeviceError("no audio output: the JACK server is not running")
        self._lib, self._client = lib, client
        self.sample_rate = int(lib.jack_get_sample_rate(client))
        self._buf = np.zeros(max(1, round(capacity_s * self.sample_rate)), dtype=np.float32)
        self._base = self._buf.ctypes.data
        self._read = 0  # frames consumed by the callback (written by JACK's thread only)
        self._write = 0  # frames appended (written by the writer only)
        self._playing = False
        self._finished = False
        self.underruns = 0  # cycles that found the buffer short before finish()
        self.dead = False  # the server went away
        self._resamplers: dict[int, StreamResampler] = {}
        port = lib.jack_port_register(client, PORT_NAME.encode(), AUDIO_TYPE, _PORT_IS_OUTPUT, 0)
        if not port:
            self._close_client()
            raise DeviceError("no audio output: JACK refused the audio port")
        self._port = port
        self.port_name = (lib.jack_port_name(port) or b"").decode()
        self._process_fn = _PROCESS(self._process)  # kept alive as long as the client
        self._shutdown_fn = _SHUTDOWN(self._on_shutdown)
        lib.jack_set_process_callback(client, self._process_fn, None)
        lib.jack_on_shutdown(client, self._shutdown_fn, None)
        if lib.jack_activate(client) != 0:
            self._close_client()
            raise DeviceError("no audio output: the JACK client could not be activated")
        self.connected: list[str] = self._connect_playback() if connect else []
        logger.info("audio output %s at %d Hz -> %s", self.port_name, self.sample_rate, self.connected)

    # -- JACK's thread -------------------------------------------------------------------------
    def _process(self, nframes: int, _arg: Any) -> int:
        try:
            out = self._lib.jack_port_get_buffer(self._port, nframes)
            n = 0
            if self._playing:
                r = self._read
                n = min(nframes, self._write - r)
                if n > 0:
                    ctypes.memmove(out, self._base + 4 * r, 4 * n)
                    self._read = r + n
                n = max(n, 0)
                if n < nframes and not self._finished:
                    self.underruns += 1
            if n < nframes:
                ctypes.memset(out + 4 * n, 0, 4 * (nframes - n))
        except Exception:  # never let an exception unwind into libjack
            return 0
        return 0

    def _on_shutdown(self, _arg: Any) -> None:
        self.dead = True
        self._playing = False

    # -- the writer --------------------------------------------------------------------------
    def _connect_playback(self) -> list[str]:
        lib = self._lib
        names = lib.jack_get_ports(self._client, None, b"audio", _PORT_IS_PHYSICAL | _PORT_IS_INPUT)
        found: list[str] = []
        if names:
            i = 0
            while names[i]:
                found.append(names[i].decode())
                i += 1
            lib.jack_free(ctypes.cast(names, ctypes.c_void_p))
        connected = []
        for dst in found[:2]:  # a mono port to both sides of a stereo pair
            if lib.jack_connect(self._client, self.port_name.encode(), dst.encode()) == 0:
                connected.append(dst)
        return connected

    def write(self, samples: np.ndarray, rate: int) -> None:
        """Append mono ``samples`` (-1..1) recorded at ``rate`` Hz (resampled to the server's rate;
        chunks of one stream continue each other). DeviceError past the capacity."""
        rs = self._resamplers.setdefault(rate, StreamResampler(rate, self.sample_rate))
        x = np.clip(rs(samples), -1.0, 1.0)
        w = self._write
        if w + len(x) > len(self._buf):
            raise DeviceError(f"the audio output holds at most {len(self._buf) / self.sample_rate:.0f} s")
        self._buf[w : w + len(x)] = x
        self._write = w + len(x)  # published after the samples are in place

    def start(self) -> None:
        """Begin playing what was written (and what will be)."""
        self._playing = True

    def finish(self) -> None:
        """No more samples will come: running dry from now on is the end, not an underrun."""
        self._finished = True

    def stop(self) -> None:
        """Fall silent at once (what is left unplayed is dropped)."""
        self._playing = False

    @property
    def playing(self) -> bool:
        """Whether the output is consuming samples."""
        return self._playing

    @property
    def written_frames(self) -> int:
        """Frames appended so far (at :attr:`sample_rate`)."""
        return self._write

    @property
    def consumed_frames(self) -> int:
        """Frames the port has played so far."""
        return self._read

    @property
    def done(self) -> bool:
        """Finished and everything written was played."""
        return self._finished and self._read >= self._write

    def wait_done(self, cancelled: Any = None, timeout: float | None = None, poll_s: float = 0.02) -> bool:
        """Wait (worker thread) until everything was played; False when cancelled, timed out or the
        server died."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            if self.dead or (cancelled is not None and cancelled()):
                return False
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(poll_s)
        return True

    def close(self) -> None:
        """Leave JACK (idempotent). A dead server's client is left alone (closing it can block)."""
        self._playing = False
        if self._client is None:
            return
        if not self.dead:
            self._lib.jack_deactivate(self._client)
        self._close_client()

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None and not self.dead:
            self._lib.jack_client_close(client)

    def __enter__(self) -> JackAudioOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
