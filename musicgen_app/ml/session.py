"""The streaming generation interface every model family plugs into.

A session is created from a sketch (one prefill over the seed), then iterated: each ``next``
samples tokens until a note is complete and yields it as a :class:`NoteEvent`; the last item is a
:class:`SessionFinished`. It is safe to call :meth:`set_temperature` and :meth:`cancel` from
another thread while a consumer iterates; cancellation takes effect within one model step.
"""

from __future__ import annotations

import itertools
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator

from musicgen_app.core.events import NoteEvent, SessionFinished

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
