"""Background work without blocking the UI: plain functions on threads, results via a queue.

Orange3's idea with Friture's delivery: a task is a plain function run on a Python thread; it
never touches a widget. Its result (or exception) goes into a queue that a GUI timer drains, and
the callbacks run on the UI thread. :meth:`TaskRunner.shutdown` joins every thread so that
quitting is clean.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer

logger = logging.getLogger(__name__)

DRAIN_MS = 12


class TaskRunner(QObject):
    """Run functions on threads; call ``on_done(result)`` or ``on_error(exc)`` on the UI thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._results: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._callbacks: dict[int, tuple[Any, Any, str]] = {}
        self._next_id = 0
        self._threads: list[threading.Thread] = []
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self.drain)
        self._timer.start()

    def submit(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "musicgen-task",
    ) -> threading.Thread:
        """Start ``fn()`` on a new thread.

        ``fn`` must not hold Qt objects (a QObject whose last reference dies on a worker thread is
        destroyed there, which Qt does not allow); the callbacks stay on the UI thread.
        """
        self._next_id += 1
        task_id = self._next_id
        self._callbacks[task_id] = (on_done, on_error, name)
        results = self._results

        def run() -> None:
            logger.debug("task %s started", name)
            try:
                value = fn()
            except Exception as exc:  # delivered to the UI thread as a message
                logger.debug("task %s failed", name, exc_info=True)
                results.put((task_id, False, exc))
                return
            logger.debug("task %s done", name)
            results.put((task_id, True, value))

        t = threading.Thread(target=run, name=name, daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()]
        self._threads.append(t)
        t.start()
        return t

    def drain(self) -> None:
        """Run the callbacks of the tasks that finished (UI thread)."""
        while True:
            try:
                task_id, ok, value = self._results.get_nowait()
            except queue.Empty:
                return
            on_done, on_error, name = self._callbacks.pop(task_id, (None, None, "?"))
            fn = on_done if ok else on_error
            if fn is None:
                if not ok:
                    logger.warning("background task %s failed: %s", name, value)
                continue
            logger.debug("callback of %s", name)
            try:
                fn(value)
            except Exception:
                logger.exception("the callback of %s failed", name)

    def busy(self) -> bool:
        """Whether any task is still running."""
        return any(t.is_alive() for t in self._threads)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Wait for running tasks and run their callbacks (used when quitting).

        A callback may start another task (a save that then discards the recovery copy), so this
        goes on until nothing runs, a few rounds at most.
        """
        self._timer.stop()
        for _ in range(4):
            threads, self._threads = self._threads, []
            if not threads:
                break
            for t in threads:
                t.join(timeout=timeout_s)
                if t.is_alive():
                    logger.warning("task %s still running at exit", t.name)
            self.drain()
