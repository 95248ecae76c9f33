"""Starting the window: the QApplication, a last-resort exception hook, crash recovery and the
files named on the command line."""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from musicgen_app.core import paths
from musicgen_app.gui.document import Document
from musicgen_app.gui.main_window import MainWindow

logger = logging.getLogger(__name__)

_windows: list[MainWindow] = []


def log_path() -> Path:
    """The app's log of this run (what it did, for bug reports and tests)."""
    return paths.data_dir() / "musicgen.log"


def setup_log_file() -> None:
    """Log the app's own messages to :func:`log_path` as well as stderr.

    A file of its own: device probing silences file descriptor 2 for a moment, and messages
    written then would be lost.
    """
    try:
        handler = logging.FileHandler(log_path(), mode="w", encoding="utf-8")
    except OSError as exc:
        logger.warning("no log file: %s", exc)
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    app_logger = logging.getLogger("musicgen_app")
    if app_logger.getEffectiveLevel() > logging.INFO:
        # Record INFO in the file while stderr keeps showing warnings only.
        stderr = logging.StreamHandler()
        stderr.setLevel(app_logger.getEffectiveLevel())
        stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        app_logger.setLevel(logging.INFO)
        app_logger.propagate = False
        app_logger.addHandler(stderr)
    app_logger.addHandler(handler)


def crash_log_path() -> Path:
    """Where unexpected errors are written in full."""
    return paths.data_dir() / "musicgen-errors.log"


def _log_exception(
    kind: str, etype: type[BaseException], value: BaseException | None, tb: TracebackType | None
) -> None:
    text = "".join(traceback.format_exception(etype, value, tb))
    try:
        with open(crash_log_path(), "a", encoding="utf-8") as f:
            f.write(f"--- {kind}\n{text}\n")
    except OSError:
        pass
    logger.debug("%s", text)


def install_excepthook() -> None:
    """Unexpected errors become a message (details go to the error log), never a dead window."""

    def hook(etype: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(etype, KeyboardInterrupt):
            QApplication.quit()
            return
        _log_exception("ui", etype, value, tb)
        print(
            f"musicgen: internal error: {etype.__name__}: {value} (details in {crash_log_path()})",
            file=sys.stderr,
        )
        for w in _windows:
            w.show_error(
                "Internal error",
                f"{etype.__name__}: {value}\n\nYour work is autosaved. Details are in {crash_log_path()}.",
            )
            break

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        _log_exception(
            f"thread {args.thread.name if args.thread else '?'}",
            args.exc_type,
            args.exc_value,
            args.exc_traceback,
        )
        print(f"musicgen: error in a background task: {args.exc_value}", file=sys.stderr)

    sys.excepthook = hook
    threading.excepthook = thread_hook


def open_autosave_store() -> Any:
    """The recovery store, or None when it cannot be opened (the app still runs)."""
    try:
        from musicgen_app.core.autosave import AutosaveStore

        return AutosaveStore()
    except Exception as exc:
        logger.warning("autosave is off: %s", exc)
        return None


def ask_recovery(parent: MainWindow, entries: list[Any]) -> str:
    """Ask what to do with unsaved documents from a crash: ``recover``, ``discard`` or ``later``."""
    choice = os.environ.get("MUSICGEN_RECOVER", "").lower()
    if choice in ("recover", "discard", "later"):
        return choice
    lines = [
        f"• {getattr(e, 'title', '') or 'Untitled'} — {getattr(e, 'source_path', None) or 'never saved'}"
        for e in entries
    ]
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Recover unsaved work")
    box.setText(f"musicgen closed without saving {len(entries)} document(s):\n\n" + "\n".join(lines))
    recover = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(recover)
    box.exec()
    if box.clickedButton() is recover:
        return "recover"
    if box.clickedButton() is discard:
        return "discard"
    return "later"


def recover_documents(win: MainWindow, store: Any, answer_fn: Any = ask_recovery) -> list[Document]:
    """Offer every recoverable document; recovered ones open (the first in ``win``)."""
    if store is None:
        return []
    try:
        entries: list[Any] = list(store.list_recoverable())
    except Exception as exc:
        win.show_message(f"Cannot read the recovery files: {exc}")
        return []
    if not entries:
        return []
    answer = answer_fn(win, entries)
    docs: list[Document] = []
    if answer == "discard":
        for e in entries:
            store.discard(e.doc_id)
        return docs
    if answer != "recover":
        return docs
    for e in entries:
        try:
            project = store.load(e.doc_id)
        except Exception as exc:
            win.show_error("Recover", f"Cannot recover {getattr(e, 'title', e.doc_id)}: {exc}")
            continue
        src = getattr(e, "source_path", None)
        path = src if src and str(src).lower().endswith(".mgproj") else None
        doc = Document(project.song, path)
        if src and path is None:
            doc.source_path = Path(src)
        doc.state = dict(getattr(project, "state", {}) or {})
        doc.doc_id = e.doc_id
        doc.mark_dirty()
        entry_title = str(e.title) if hasattr(e, "title") else ""
        if not doc.song.title and entry_title:
            doc.song.title = entry_title
        docs.append(doc)
    for i, doc in enumerate(docs):
        target = win if i == 0 else new_window(win.settings, store)
        target.set_document(doc)
        target.show_message(f"Recovered {doc.song.title or doc.display_name}")
        logger.info("recovered document %s (%d notes)", doc.doc_id, doc.song.note_count)
    return docs


def new_window(settings: Any = None, store: Any = None, **kwargs: Any) -> MainWindow:
    """Open another main window."""
    win = MainWindow(settings=settings, autosave_store=store, **kwargs)
    _windows.append(win)
    win.destroyed.connect(lambda *_: _windows.remove(win) if win in _windows else None)
    win.show()
    return win


def run_app(files: list[str] | None = None) -> int:
    """Open the window (and ``files``); returns the exit status when the last window closes."""
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "musicgen"])
    app.setApplicationName("musicgen")
    app.setOrganizationName("musicgen")
    install_excepthook()
    setup_log_file()
    store = open_autosave_store()
    win = new_window(store=store)
    recovered = recover_documents(win, store)
    for i, f in enumerate(files or []):
        target = win if i == 0 and not recovered else new_window(win.settings, store)
        target.open_path(f)
    if not files and not recovered:
        from musicgen_app.gui.first_launch import maybe_show_welcome

        maybe_show_welcome(win)  # once per user: the example sketches
    # Ctrl+C in the terminal: let Python see it now and then.
    ticker = QTimer()
    ticker.start(250)
    ticker.timeout.connect(lambda: None)
    status = app.exec()
    for w in list(_windows):
        w.shutdown()
    return int(status)
