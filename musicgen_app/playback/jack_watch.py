"""Notice at once when the JACK server dies or a JACK port we send to vanishes.

libjack tells its clients nothing useful when the server goes away: FluidSynth's JACK driver and
RtMidi's JACK ports keep accepting notes into the void, and libjack only prints "Server is not
running" on stderr. So every output that sends through JACK subscribes here (:func:`watch`); one
small JACK client per process (``musicgen-watch``, opened through ctypes, never activated, so it
adds nothing to the server's cycle) gets libjack's shutdown callback (``jack_on_info_shutdown``)
within milliseconds of the server's death (measured: 4 to 12 ms after SIGKILL or SIGTERM of
``jackd``), and a thread checks every :data:`PORT_POLL_S` that the ports subscribers send to still
exist. Subscribers are called from that thread (never from libjack's), with a one-line reason and
the ``time.perf_counter`` time of the failure.

libjack's own error and info lines are routed to this module's logger (``-v`` shows them) instead
of stderr, so the command line stays one clean line. After the server died, the watcher's client
is left as it is (closing a client of a dead server can block); a later :func:`watch` opens a
new one, so outputs reopened on a restarted server are watched again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from musicgen_app.errors import DeviceError

logger = logging.getLogger(__name__)

CLIENT_NAME = "musicgen-watch"
PORT_POLL_S = 0.02
_JACK_NO_START_SERVER = 0x01

FailureCallback = Callable[[str, float], None]

_INFO_SHUTDOWN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_MESSAGE = ctypes.CFUNCTYPE(None, ctypes.c_char_p)

_lib: Any = None
_lib_lock = threading.Lock()
_message_fn: Any = None  # keeps the ctypes callback alive for the life of the process
_current: JackWatch | None = None
_dead_seen = threading.Event()


def _libjack() -> Any:
    """libjack through ctypes (loaded once), or None when it is not installed."""
    global _lib, _message_fn
    with _lib_lock:
        if _lib is not None:
            return _lib or None
        path = ctypes.util.find_library("jack") or "libjack.so.0"
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            _lib = False
            return None
        vp, cp = ctypes.c_void_p, ctypes.c_char_p
        lib.jack_client_open.restype = vp
        lib.jack_client_open.argtypes = [cp, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.jack_on_info_shutdown.restype = None
        lib.jack_on_info_shutdown.argtypes = [vp, _INFO_SHUTDOWN, vp]
        lib.jack_port_by_name.restype = vp
        lib.jack_port_by_name.argtypes = [vp, cp]
        lib.jack_client_close.restype = ctypes.c_int
        lib.jack_client_close.argtypes = [vp]

        def _log(text: bytes | None) -> None:
            logger.debug("libjack: %s", (text or b"").decode("utf-8", "replace").strip())

        _message_fn = _MESSAGE(_log)
        _lib = lib
        return lib


def _loaded_libjacks() -> set[str]:
    """Paths of every libjack loaded in this process (python-rtmidi's wheel brings its own copy)."""
    found: set[str] = set()
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rsplit(" ", 1)[-1].strip()
                if "/libjack" in path and ".so" in path and "libjackserver" not in path:
                    found.add(path)
    except OSError:  # not Linux: only the system's libjack is known
        pass
    return found


_quieted: set[str] = set()


def quiet_libjack() -> None:
    """Route libjack's messages (every copy loaded, every client of this process) to the logger
    instead of stderr, so a dying server does not spray "Cannot read socket" lines."""
    if _libjack() is None:
        return
    for path in _loaded_libjacks() - _quieted:
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same handle
            lib.jack_set_error_function.argtypes = [_MESSAGE]
            lib.jack_set_info_function.argtypes = [_MESSAGE]
            lib.jack_set_error_function(_message_fn)
            lib.jack_set_info_function(_message_fn)
        except (OSError, AttributeError) as exc:
            logger.debug("cannot quiet %s: %s", path, exc)
        _quieted.add(path)


def server_died() -> bool:
    """Whether a watched JACK server died while this process used it (libjack's threads may then
    hang the interpreter's exit; the CLI leaves with ``os._exit``)."""
    return _dead_seen.is_set()


@dataclass(eq=False)
class Subscription:
    """One output's interest in the server (and, with ``port``, in a port); :meth:`cancel` ends it."""

    watch: JackWatch
    on_failure: FailureCallback
    port: str | None = None
    told: bool = field(default=False, init=False)

    def cancel(self) -> None:
        """Stop watching (idempotent)."""
        self.watch._remove(self)


class JackWatch:
    """One never-activated JACK client that learns of the server's death and polls ports."""

    def __init__(self) -> None:
        lib = _libjack()
        if lib is None:
            raise DeviceError("libjack was not found: install JACK (`sudo apt-get install jackd2`)")
        self._lib = lib
        status = ctypes.c_int(0)
        name = f"{CLIENT_NAME}-{os.getpid()}".encode()
        self._client = lib.jack_client_open(name, _JACK_NO_START_SERVER, ctypes.byref(status))
        if not self._client:
            raise DeviceError(f"cannot watch the JACK server: it refused a client (status {status.value:#x})")
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._wake = threading.Event()
        self._dead_reason: str | None = None
        self.died_at: float | None = None
        self._closed = False
        self._shutdown_fn = _INFO_SHUTDOWN(self._on_shutdown)
        lib.jack_on_info_shutdown(self._client, self._shutdown_fn, None)
        self._thread = threading.Thread(target=self._run, name="musicgen-jack-watch", daemon=True)
        self._thread.start()

    @property
    def dead(self) -> bool:
        """Whether the server this client talked to has died."""
        return self.died_at is not None

    def subscribe(self, on_failure: FailureCallback, port: str | None = None) -> Subscription:
        """Call ``on_failure(reason, when)`` once when the server dies or ``port`` vanishes."""
        sub = Subscription(self, on_failure, port)
        with self._lock:
            self._subs.append(sub)
        self._wake.set()
        return sub

    def port_exists(self, port: str) -> bool:
        """Whether a port of that full name (``client:port``) exists on the server now."""
        return bool(self._lib.jack_port_by_name(self._client, port.encode()))

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
            last = not self._subs
        if last and not self.dead:
            self._close()

    def _close(self) -> None:
        global _current
        with _lib_lock:
            if _current is self:
                _current = None
        with self._lock:
            if self._closed or self._subs:
                return
            self._closed = True
        self._wake.set()
        self._lib.jack_client_close(self._client)

    def _on_shutdown(self, code: int, reason: bytes | None, _arg: Any) -> None:
        # libjack's thread: note it and wake ours, nothing more
        self.died_at = time.perf_counter()
        self._dead_reason = (reason or b"").decode("utf-8", "replace").strip() or f"code {code}"
        _dead_seen.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._closed:
            with self._lock:
                poll = any(s.port for s in self._subs)
            self._wake.wait(PORT_POLL_S if poll else None)
            self._wake.clear()
            if self._closed:
                return
            if self.died_at is not None:
                self._tell_all(f"the JACK server stopped ({self._dead_reason})", self.died_at)
                return
            with self._lock:
                subs = [s for s in self._subs if s.port and not s.told]
            for sub in subs:
                if sub.port is not None and not self.port_exists(sub.port):
                    self._tell(sub, f"the JACK port {sub.port} has gone", time.perf_counter())

    def _tell_all(self, reason: str, when: float) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            self._tell(sub, reason, when)

    def _tell(self, sub: Subscription, reason: str, when: float) -> None:
        if sub.told:
            return
        sub.told = True
        try:
            sub.on_failure(reason, when)
        except Exception:  # a subscriber's bug must not end the watch of the others
            logger.exception("JACK watch subscriber failed")


def watch(on_failure: FailureCallback, port: str | None = None) -> Subscription:
    """Watch the JACK server (``$JACK_DEFAULT_SERVER``) and, with ``port``, that port.

    ``on_failure(reason, when)`` is called once, from the watcher's thread, when the server dies
    or the port vanishes. DeviceError when no JACK server answers.
    """
    global _current
    quiet_libjack()
    with _lib_lock:
        current = _current
    if current is None or current.dead or current._closed:
        current = JackWatch()
        with _lib_lock:
            _current = current
    return current.subscribe(on_failure, port)
