"""Continue, off the UI thread: a plain worker function iterates generation sessions and puts
their events on a queue; a GUI timer drains the queue (Orange3's task + Friture's buffer).

Starting a run cancels the previous one; every queued item carries its run number and items of
an old run are dropped, so no note of a cancelled session reaches the roll or the speakers.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.song import Note, Song

logger = logging.getLogger(__name__)

DRAIN_MS = 12


@dataclass
class Take:
    """One generated variation."""

    index: int
    seed: int
    start_tick: int
    model: str
    temperature: float
    notes: list[Note] = field(default_factory=list)
    session_id: int = 0
    status: str = "generating"  # generating, done, cancelled, error
    message: str = ""

    def label(self) -> str:
        """One line for the takes list."""
        state = "" if self.status == "done" else f" ({self.status})"
        return f"Take {self.index + 1}: {len(self.notes)} notes, seed {self.seed}{state}"

    def to_state(self) -> dict[str, Any]:
        """JSON-able form stored in the project."""
        return {
            "seed": self.seed,
            "start_tick": self.start_tick,
            "model": self.model,
            "temperature": self.temperature,
            "status": self.status,
            "notes": [[n.start_tick, n.pitch, n.end_tick, n.velocity, n.channel] for n in self.notes],
        }

    @classmethod
    def from_state(cls, index: int, data: Any) -> Take:
        """The take :meth:`to_state` wrote (a take saved while generating comes back cancelled).

        Raises ValueError when ``data`` is not a take (a damaged or hand-edited project).
        """
        try:
            notes = []
            for start, pitch, end, velocity, channel in data.get("notes", []):
                n = Note(int(start), int(pitch), int(end), int(velocity), int(channel))
                if not (0 <= n.start_tick < n.end_tick and 0 <= n.pitch <= 127 and 0 <= n.channel <= 15):
                    raise ValueError(f"a note out of range: {[start, pitch, end, velocity, channel]}")
                notes.append(n)
            status = str(data.get("status", "done"))
            return cls(
                index=index,
                seed=int(data["seed"]),
                start_tick=int(data.get("start_tick", 0)),
                model=str(data.get("model", "")),
                temperature=float(data.get("temperature", 1.0)),
                notes=notes,
                status="cancelled" if status == "generating" else status,
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"take {index + 1} cannot be read: {exc}") from exc


@dataclass(frozen=True)
class ContinueRequest:
    """What to continue and how."""

    model: str  # a registry name or a checkpoint path
    song: Song  # a snapshot, owned by the worker
    track: int
    start_tick: int
    bars: int
    temperature: float
    variations: int = 1
    seed: int | None = None  # None: a random seed per take
    key_lock: str | None = "auto"
    top_k: int = 0
    top_p: float = 1.0
    voices: str = "sketch"  # "sketch": keep the sketch's texture; "harmony": the model may add voices


class ModelCache:
    """Loaded models by name or path, shared by runs (loading happens on worker threads)."""

    def __init__(self, loader: Callable[[str], Any] | None = None) -> None:
        self._loader = loader
        self._models: dict[str, Any] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Any:
        """The model ``name``, loaded once even when several threads ask at the same time."""
        with self._lock:
            if name in self._models:
                return self._models[name]
            loading = self._loading.setdefault(name, threading.Lock())
        with loading:
            with self._lock:
                if name in self._models:
                    return self._models[name]
            loader = self._loader
            if loader is None:
                from musicgen_app.ml.registry import load_model

                loader = load_model
            model = loader(name)
            with self._lock:
                self._models[name] = model
                return model


class RunState:
    """Shared between the UI and one worker: cancellation and live temperature."""

    def __init__(self, run_id: int, temperature: float) -> None:
        self.run_id = run_id
        self._lock = threading.Lock()
        self._cancelled = False
        self._temperature = temperature
        self._session: Any = None
        self.session_ids: list[int] = []

    @property
    def cancelled(self) -> bool:
        """Whether the run was cancelled."""
        return self._cancelled

    def attach(self, session: Any) -> bool:
        """Make ``session`` the running one; False (and the session cancelled) if the run is over."""
        with self._lock:
            self._session = session
            self.session_ids.append(session.id)
            session.set_temperature(self._temperature)
            if self._cancelled:
                session.cancel()
                return False
            return True

    def cancel(self) -> None:
        """Stop the run at the next model step."""
        with self._lock:
            self._cancelled = True
            if self._session is not None:
                self._session.cancel()

    def set_temperature(self, value: float) -> None:
        """Retune the running session (the next sampled token uses it)."""
        with self._lock:
            self._temperature = value
            if self._session is not None:
                self._session.set_temperature(value)

    @property
    def temperature(self) -> float:
        """The temperature now."""
        return self._temperature


def run_continue(req: ContinueRequest, models: ModelCache, state: RunState, out: queue.SimpleQueue) -> None:
    """The worker: load the model, run one session per variation, put events on ``out``.

    Items are ``(run_id, kind, take_index, payload)`` with kind ``loaded``, ``take``, ``event``,
    ``finished`` or ``error``. Never touches Qt.
    """
    from musicgen_app.ml.generate import SamplingConfig, start_session

    rid = state.run_id
    try:
        model = models.get(req.model)
    except Exception as exc:
        out.put((rid, "error", -1, str(exc)))
        return
    out.put((rid, "loaded", -1, req.model))
    rng = random.Random()
    for i in range(max(1, req.variations)):
        if state.cancelled:
            break
        seed = req.seed + i if req.seed is not None else rng.randrange(1, 2**31)
        sampling = SamplingConfig(
            temperature=state.temperature,
            top_k=req.top_k,
            top_p=req.top_p,
            key_lock=req.key_lock,
            seed=seed,
            voices=req.voices,
        )
        try:
            session = start_session(
                model, req.song, req.track, start_tick=req.start_tick, bars=req.bars, sampling=sampling
            )
        except Exception as exc:
            out.put((rid, "error", i, str(exc)))
            return
        out.put((rid, "take", i, (seed, session.id)))
        if not state.attach(session):
            out.put((rid, "finished", i, SessionFinished(session.id, "cancelled")))
            break
        try:
            for item in session:
                out.put((rid, "event" if isinstance(item, NoteEvent) else "finished", i, item))
        except Exception as exc:
            logger.debug("generation failed", exc_info=True)
            out.put((rid, "error", i, str(exc)))
            return


class GenerationController(QObject):
    """Runs Continue and collects takes; the window connects to its signals."""

    take_started = Signal(int)  # take index
    take_updated = Signal(int)  # new notes in a take
    take_finished = Signal(int)
    run_finished = Signal()
    first_note = Signal(float)  # ms from the request to the first note
    error = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, models: ModelCache | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.models = models or ModelCache()
        self.takes: list[Take] = []
        self.current: int = 0  # the take shown and auditioned (-1: none)
        self.run_base = 0  # index of the first take of the latest run (takes before it were kept)
        self.request: ContinueRequest | None = None
        self.on_stream: Callable[[list[NoteEvent]], None] | None = None  # streamed notes of the live take
        self.on_cancel_session: Callable[[int], None] | None = None
        self.last_ttfn_ms: float | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._state: RunState | None = None
        self._thread: threading.Thread | None = None
        self._run_id = 0
        self._t_start = 0.0
        self._got_first = False
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self.drain)
        self._timer.start()

    @property
    def running(self) -> bool:
        """Whether a run is generating."""
        return self._state is not None and not self._state.cancelled and self._thread is not None

    def start(self, req: ContinueRequest, *, keep_takes: bool = False) -> None:
        """Cancel any run and start ``req``; its takes replace the list, or with ``keep_takes``
        are added after the takes already there (Again)."""
        self.cancel()
        self._run_id += 1
        self.request = req
        if not keep_takes:
            self.takes = []
        self.run_base = len(self.takes)
        self.current = self.run_base
        self._state = RunState(self._run_id, req.temperature)
        self._t_start = time.perf_counter()
        self._got_first = False
        self._thread = threading.Thread(
            target=run_continue,
            args=(req, self.models, self._state, self._queue),
            name=f"musicgen-continue-{self._run_id}",
            daemon=True,
        )
        self._thread.start()
        self.running_changed.emit(True)

    def set_temperature(self, value: float) -> None:
        """Change the temperature of the running session at once."""
        if self._state is not None:
            self._state.set_temperature(value)

    def cancel(self) -> None:
        """Cancel the run (its later events are dropped) and silence its notes."""
        state = self._state
        if state is None:
            return
        state.cancel()
        if self.on_cancel_session is not None:
            for sid in state.session_ids:
                self.on_cancel_session(sid)
        for t in self.takes:
            if t.status == "generating":
                t.status = "cancelled"
        self._state = None
        self._run_id += 1  # anything still queued for the old run is dropped
        self.running_changed.emit(False)
        self.run_finished.emit()

    def drain(self) -> None:
        """Take what the worker produced (UI thread; a timer calls this every few ms)."""
        streamed: list[NoteEvent] = []
        touched: set[int] = set()
        while True:
            try:
                rid, kind, idx, payload = self._queue.get_nowait()
            except queue.Empty:
                break
            if rid != self._run_id or self.request is None:
                continue
            req = self.request
            if idx >= 0:
                idx += self.run_base  # the worker numbers its takes from 0
            if kind == "take":
                seed, sid = payload
                self.takes.append(
                    Take(
                        idx,
                        seed,
                        req.start_tick,
                        req.model,
                        self._state.temperature if self._state else 0,
                        [],
                        sid,
                    )
                )
                self.take_started.emit(idx)
            elif kind == "event":
                take = self.takes[idx]
                note = payload.note
                take.notes.append(note)
                touched.add(idx)
                if idx == self.run_base:
                    streamed.append(payload)
                if not self._got_first:
                    self._got_first = True
                    self.last_ttfn_ms = (time.perf_counter() - self._t_start) * 1000
                    self.first_note.emit(self.last_ttfn_ms)
            elif kind == "finished":
                if 0 <= idx < len(self.takes):
                    self.takes[idx].status = "done" if payload.reason == "done" else payload.reason
                    self.takes[idx].message = payload.message
                    touched.add(idx)
                    self.take_finished.emit(idx)
                    if payload.reason == "error" and payload.message:
                        self.error.emit(payload.message)
                if req.variations <= idx - self.run_base + 1 or payload.reason != "done":
                    self._end_run()
            elif kind == "error":
                if 0 <= idx < len(self.takes):
                    self.takes[idx].status = "error"
                self.error.emit(str(payload))
                self._end_run()
        if streamed and self.on_stream is not None:
            self.on_stream(streamed)
        for idx in sorted(touched):
            self.take_updated.emit(idx)

    def _end_run(self) -> None:
        self._state = None
        self.running_changed.emit(False)
        self.run_finished.emit()

    def current_take(self) -> Take | None:
        """The take shown in the roll."""
        return self.takes[self.current] if 0 <= self.current < len(self.takes) else None

    def discard_current(self) -> None:
        """Remove the current take from the list."""
        if 0 <= self.current < len(self.takes):
            del self.takes[self.current]
            self.takes = [replace(t, index=i) for i, t in enumerate(self.takes)]
            self.current = min(self.current, len(self.takes) - 1)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Cancel and join the worker (quitting)."""
        self.cancel()
        self._timer.stop()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            if self._thread.is_alive():
                logger.warning("generation thread still running at exit")
        self._thread = None
