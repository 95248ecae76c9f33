"""The streaming generation interface every model family plugs into.

A session is created from a sketch (one prefill over the seed), then iterated: each ``next``
samples tokens until a note is complete and yields it as a :class:`NoteEvent`; the last item is a
:class:`SessionFinished`. It is safe to call :meth:`set_temperature` and :meth:`cancel` from
another thread while a consumer iterates; cancellation takes effect within one model step.

:class:`StreamSession` is the one session that drives every family: a family supplies a
:class:`Stepper` (prefill once, then one model step per ``advance``, returning the notes that step
completed, in song ticks); the session owns the loop, the temperature read at every step, the
cancel check before every step, the error handling and the final :class:`SessionFinished`. A
stepper's ``density`` (a :class:`~musicgen_app.ml.sampling.DensityGuide`, set up in its prefill)
is how every family keeps the sketch's notes per step; the session shows it as :attr:`density`.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.song import Note
from musicgen_app.errors import MusicgenError

if TYPE_CHECKING:
    from musicgen_app.ml.sampling import DensityGuide

logger = logging.getLogger(__name__)

_ids = itertools.count(1)
_ids_lock = threading.Lock()


def new_session_id() -> int:
    """A process-wide unique, increasing session id."""
    with _ids_lock:
        return next(_ids)


class GenerationSession(ABC):
    """A running continuation. Iterate it for events; cancel or retune it from any thread."""

    def __init__(self, temperature: float = 1.0) -> None:
        self.id = new_session_id()
        self._temperature = float(temperature)
        self._cancel = threading.Event()
        self.steps = 0  # model steps taken so far (one sampled token, character or frame each)

    @property
    def temperature(self) -> float:
        """The sampling temperature used for the next step."""
        return self._temperature

    def set_temperature(self, temperature: float) -> None:
        """Change the temperature; the next sampled token uses it."""
        self._temperature = max(1e-3, float(temperature))

    def cancel(self) -> None:
        """Stop at the next step; the iterator then yields ``SessionFinished('cancelled')``."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancel.is_set()

    @abstractmethod
    def __iter__(self) -> Iterator[NoteEvent | SessionFinished]:
        """Yield notes as they are completed, then one SessionFinished."""


class Stepper(Protocol):
    """One model's incremental generator, as :class:`StreamSession` drives it."""

    @property
    def tokens(self) -> int:
        """Tokens (characters, frames) generated so far."""
        ...

    @property
    def finished(self) -> bool:
        """Whether the continuation has reached its end (no more steps are needed)."""
        ...

    def prefill(self) -> None:
        """Read the sketch (once, before the first step)."""
        ...

    def advance(self, temperature: float) -> list[Note]:
        """One model step at ``temperature``; the notes it completed (song ticks)."""
        ...

    def flush(self) -> list[Note]:
        """The notes still sounding at the end, closed there."""
        ...


class StreamSession(GenerationSession):
    """Drives a :class:`Stepper`: prefill, then ``advance`` until it is finished (at most
    ``max_steps`` steps), yielding each completed note; a cancel is seen before every step."""

    def __init__(self, stepper: Stepper, *, temperature: float = 1.0, track: int = 0, max_steps: int) -> None:
        super().__init__(temperature)
        self.stepper = stepper
        self.track = track
        self.max_steps = max_steps  # a guard against a model that never completes a note
        self.prefill_seconds = 0.0  # time spent reading the sketch

    @property
    def density(self) -> DensityGuide | None:
        """The stepper's density guide (the sketch's notes per step, the take's running figure),
        None when it is off or the family has none."""
        return getattr(self.stepper, "density", None)

    def __iter__(self) -> Iterator[NoteEvent | SessionFinished]:
        started = time.perf_counter()
        seq = 0
        reason, message = "done", ""
        try:
            if not self.cancelled:
                self.stepper.prefill()
                self.prefill_seconds = time.perf_counter() - started
                while not self.cancelled and not self.stepper.finished and self.steps < self.max_steps:
                    notes = self.stepper.advance(self._temperature)
                    self.steps += 1
                    for note in notes:
                        yield NoteEvent(self.id, seq, note, self.track)
                        seq += 1
                if not self.cancelled:
                    for note in self.stepper.flush():
                        yield NoteEvent(self.id, seq, note, self.track)
                        seq += 1
        except MusicgenError as exc:
            logger.warning("generation session %d stopped: %s", self.id, exc)
            reason, message = "error", str(exc)
        except (RuntimeError, ValueError, IndexError) as exc:
            logger.warning("generation session %d failed: %s", self.id, exc, exc_info=True)
            reason, message = "error", f"the model failed while generating: {exc}"
        if self.cancelled:
            reason = "cancelled"
        yield SessionFinished(
            self.id,
            reason,
            message,
            notes=seq,
            tokens=self.stepper.tokens,
            seconds=time.perf_counter() - started,
        )
