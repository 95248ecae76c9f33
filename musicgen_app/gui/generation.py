"""Continue, off the UI thread: a plain worker function iterates generation sessions and puts
their events on a queue; a GUI timer drains the queue (Orange3's task + Friture's buffer).

Sound first, then pixels: the notes of a run's first take go from the generation thread straight
to the transport (:class:`~musicgen_app.playback.transport.Transport`, the player process's
thread-safe outbox), the moment the model completes them; the UI thread only gets a copy to draw,
so a busy or blocked UI thread delays no note.

Starting a run cancels the previous one; every queued item carries its run number and items of
an old run are dropped, and the worker sends notes to the transport only while its run is not
cancelled (checked under the run's lock, so nothing of it follows the cancel), so no note of a
cancelled session reaches the roll or the speakers.

Before the key press, :func:`prepare_take` starts the first take of what Continue would ask in the
background whenever the sketch, the model or a Continue setting changes: the sketch is read into
the model and the first note sampled. Pressing Continue then sends that note with the play
command, and the model goes on from there (one sampling step per note).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.song import Note, Song
from musicgen_app.playback.scheduler import fast_switching
from musicgen_app.playback.transport import Transport

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
    fill_end: int | None = None  # set: fill [start_tick, fill_end) instead of continuing (ml.fill)
    voices: str = "sketch"  # "sketch": keep the sketch's texture; "harmony": the model may add voices
    accompany: str | None = None  # a style: write an accompaniment of ``track`` instead (ml.accompany)
    chords: tuple = ()  # ChordSpans the accompaniment follows (empty: the model chooses)


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
    """Shared between the UI and one worker: cancellation, live temperature, and the transport the
    run's first take streams to (``live``; None: the take is only drawn)."""

    def __init__(self, run_id: int, temperature: float, live: Transport | None = None) -> None:
        self.run_id = run_id
        self.live = live
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

    def send_live(self, events: list[NoteEvent]) -> None:
        """Schedule ``events`` on the live transport now (worker thread), unless cancelled."""
        with self._lock:
            if self.live is not None and not self._cancelled:
                self.live.append_notes(events)

    def end_live(self) -> None:
        """The live take is complete: the transport ends after its last note (unless cancelled)."""
        with self._lock:
            if self.live is not None and not self._cancelled:
                self.live.end_stream()

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


@dataclass
class PreparedTake:
    """A run's first take started ahead of the key press: the sketch read into the model and the
    take's first note sampled (see :func:`prepare_take`), so Continue sends that note together
    with the play command and the model goes on from there.

    ``key`` says what it was prepared for (the window's sketch version and Continue settings);
    ``head`` holds the items already taken from the session (its first note, or its end).
    """

    key: tuple
    seed: int
    session: Any
    rest: Iterator[Any]  # the session's iterator, after ``head``
    head: list[Any] = field(default_factory=list)
    seconds: float = 0.0  # what preparing cost (load, prefill, first note)

    @property
    def notes(self) -> list[NoteEvent]:
        """The notes already sampled."""
        return [e for e in self.head if isinstance(e, NoteEvent)]


def _start_session(model: Any, req: ContinueRequest, temperature: float, seed: int) -> Any:
    from musicgen_app.core.chords import spans_from_changes
    from musicgen_app.ml.generate import SamplingConfig, start_session

    # the chord lane conditions the take (sampling-time, see ml.sampling): its chords up to the end
    # of what can be generated
    end = (req.fill_end or req.start_tick) + (req.bars + 1) * req.song.ticks_per_bar(req.start_tick)
    sampling = SamplingConfig(
        temperature=temperature,
        top_k=req.top_k,
        top_p=req.top_p,
        key_lock=req.key_lock,
        seed=seed,
        voices=req.voices,
        chords=tuple(spans_from_changes(req.song.chords, end)),
    )
    if req.accompany is not None:  # Accompany: a new track under ``track``
        from musicgen_app.ml.accompany import start_accompany_session

        return start_accompany_session(
            model,
            req.song,
            req.track,
            style=req.accompany,
            temperature=temperature,
            seed=seed,
            chords=list(req.chords) or None,
        )
    if req.fill_end is not None:  # Fill: the range start_tick..fill_end, from both sides
        from musicgen_app.ml.fill import start_fill_session

        return start_fill_session(model, req.song, req.track, req.start_tick, req.fill_end, sampling=sampling)
    return start_session(
        model, req.song, req.track, start_tick=req.start_tick, bars=req.bars, sampling=sampling
    )


def _first_seed(req: ContinueRequest) -> int:
    return req.seed if req.seed is not None else random.Random().randrange(1, 2**31)


def prepare_take(req: ContinueRequest, models: ModelCache, key: tuple) -> PreparedTake:
    """Start ``req``'s first take and sample its first note (a background thread, before the key
    press). Raises what loading or starting the session raises."""
    t0 = time.perf_counter()
    seed = _first_seed(req)
    session = _start_session(models.get(req.model), req, req.temperature, seed)
    rest = iter(session)
    head = [next(rest)]  # the first note (the prefill and a few steps), or the session's end
    return PreparedTake(key, seed, session, rest, head, time.perf_counter() - t0)


def run_continue(
    req: ContinueRequest,
    models: ModelCache,
    state: RunState,
    out: queue.SimpleQueue,
    prepared: PreparedTake | None = None,
) -> None:
    """The worker: load the model, run one session per variation, put events on ``out``.

    Items are ``(run_id, kind, take_index, payload)`` with kind ``loaded``, ``take``, ``event``,
    ``finished`` or ``error``. The first take's notes also go to ``state.live`` as soon as each
    is complete (before they are queued for drawing); with ``prepared``, the first take is that
    session (its ``head`` was sent to the transport by the caller). Never touches Qt.
    """
    rid = state.run_id
    try:
        model = models.get(req.model)
    except Exception as exc:
        out.put((rid, "error", -1, str(exc)))
        return
    out.put((rid, "loaded", -1, req.model))
    for i in range(max(1, req.variations)):
        if state.cancelled:
            break
        head: list[Any] = []
        if i == 0 and prepared is not None:
            seed, session, head, items = prepared.seed, prepared.session, prepared.head, prepared.rest
        else:
            seed = req.seed + i if req.seed is not None else _first_seed(req)
            try:
                session = _start_session(model, req, state.temperature, seed)
            except Exception as exc:
                out.put((rid, "error", i, str(exc)))
                return
            items = iter(session)
        out.put((rid, "take", i, (seed, session.id)))
        if not state.attach(session):
            out.put((rid, "finished", i, SessionFinished(session.id, "cancelled")))
            break
        live = i == 0
        try:
            for item in head:  # sampled before the key press; sent with the play command
                out.put((rid, "event" if isinstance(item, NoteEvent) else "finished", i, item))
            for item in items:
                if isinstance(item, NoteEvent):
                    if live:
                        state.send_live([item])  # sound first,
                    out.put((rid, "event", i, item))  # then pixels
                else:
                    out.put((rid, "finished", i, item))
        except Exception as exc:
            logger.debug("generation failed", exc_info=True)
            out.put((rid, "error", i, str(exc)))
            return
        finally:
            if live:
                state.end_live()


class GenerationController(QObject):
    """Runs Continue and collects takes; the window connects to its signals."""

    take_started = Signal(int)  # take index
    take_updated = Signal(int)  # new notes in a take
    take_finished = Signal(int)
    run_finished = Signal()
    error = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, models: ModelCache | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.models = models or ModelCache()
        self.takes: list[Take] = []
        self.current: int = 0  # the take shown and auditioned (-1: none)
        self.run_base = 0  # index of the first take of the latest run (takes before it were kept)
        self.request: ContinueRequest | None = None
        #: notes of the live take as they reach the UI thread (to draw; they sound already)
        self.on_stream: Callable[[list[NoteEvent]], None] | None = None
        self.on_cancel_session: Callable[[int], None] | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._state: RunState | None = None
        self._thread: threading.Thread | None = None
        self._run_id = 0
        self._prep_lock = threading.Lock()
        self._prepared: PreparedTake | None = None
        self._wanted: tuple | None = None  # the key the latest prepare() asked for
        self._prep_threads: list[threading.Thread] = []  # joined at shutdown
        self._fast: contextlib.ExitStack | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self.drain)
        self._timer.start()

    @property
    def running(self) -> bool:
        """Whether a run is generating."""
        return self._state is not None and not self._state.cancelled and self._thread is not None

    def prepare(self, req: ContinueRequest, key: tuple) -> None:
        """Start ``req``'s first take in the background (:func:`prepare_take`) unless the one
        prepared already has ``key``; :meth:`take_prepared` hands it over."""
        with self._prep_lock:
            if (self._prepared is not None and self._prepared.key == key) or self._wanted == key:
                return
            self._wanted, self._prepared = key, None
        thread = threading.Thread(target=self._prepare, args=(req, key), name="musicgen-prepare", daemon=True)
        self._prep_threads = [t for t in self._prep_threads if t.is_alive()] + [thread]
        thread.start()

    def _prepare(self, req: ContinueRequest, key: tuple) -> None:
        try:
            prepared = prepare_take(req, self.models, key)
        except Exception as exc:  # Continue will say it in words; preparing is only a head start
            logger.debug("preparing a take failed: %s", exc)
            with self._prep_lock:
                if self._wanted == key:
                    self._wanted = None
            return
        with self._prep_lock:
            if self._wanted == key:
                self._prepared = prepared
                logger.debug("take prepared in %.1f ms", prepared.seconds * 1000)

    @property
    def prepared_key(self) -> tuple | None:
        """The key of the take prepared and waiting (None: none is)."""
        with self._prep_lock:
            return self._prepared.key if self._prepared is not None else None

    def take_prepared(self, key: tuple) -> PreparedTake | None:
        """The take prepared for ``key`` (once: it is handed over), or None."""
        with self._prep_lock:
            prepared, self._prepared, self._wanted = self._prepared, None, None
        return prepared if prepared is not None and prepared.key == key else None

    def start(
        self,
        req: ContinueRequest,
        *,
        keep_takes: bool = False,
        live: Transport | None = None,
        prepared: PreparedTake | None = None,
    ) -> None:
        """Cancel any run and start ``req``; its takes replace the list, or with ``keep_takes``
        are added after the takes already there (Again). The first take streams to ``live`` from
        the generation thread (the caller has started it playing); with ``prepared`` it is that
        session (the caller has sent its head to ``live``)."""
        self.cancel()
        self._run_id += 1
        self.request = req
        if not keep_takes:
            self.takes = []
        self.run_base = len(self.takes)
        self.current = self.run_base
        self._state = RunState(self._run_id, req.temperature, live)
        self._thread = threading.Thread(
            target=run_continue,
            args=(req, self.models, self._state, self._queue, prepared),
            name=f"musicgen-continue-{self._run_id}",
            daemon=True,
        )
        self._set_fast(True)
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
        self._set_fast(False)
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

    def _set_fast(self, on: bool) -> None:
        """While a run generates, the interpreter switches threads every 0.5 ms instead of 5, so
        the UI thread's Python work delays the generation thread's next note by that at most."""
        if on and self._fast is None:
            self._fast = contextlib.ExitStack()
            self._fast.enter_context(fast_switching())
        elif not on and self._fast is not None:
            self._fast.close()
            self._fast = None

    def _end_run(self) -> None:
        self._state = None
        self._set_fast(False)
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
        """Cancel and join the worker and any take being prepared (quitting)."""
        self.cancel()
        self._timer.stop()
        self.take_prepared(())  # a take still being prepared is dropped when it is ready
        for t in self._prep_threads:
            t.join(timeout=timeout_s)
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            if self._thread.is_alive():
                logger.warning("generation thread still running at exit")
        self._thread = None
