"""Autosave: the open documents are written to the user data folder every so often, so a crash or
a power cut loses at most the last few seconds of work.

Each document gets an id (:meth:`AutosaveStore.new_doc_id`). :meth:`AutosaveStore.write` saves the
project atomically as ``<id>.mgproj`` under ``paths.data_dir() / "autosave"`` and then a small
``<id>.json`` beside it with the title, the file it came from and the time. After a crash,
:meth:`AutosaveStore.list_recoverable` lists what can be restored; the app offers it, then calls
:meth:`AutosaveStore.load` or :meth:`AutosaveStore.discard`. A clean close discards the document's
autosave.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from musicgen_app.core import paths
from musicgen_app.core.project import Project, load_project, save_project
from musicgen_app.core.safe_io import (
    check_regular_file,
    read_capped,
    remove_stale_temps,
    write_file_atomic,
)
from musicgen_app.errors import ProjectError

logger = logging.getLogger(__name__)

_DOC_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_SIDECAR_BYTES = 64 * 1024


@dataclass(frozen=True)
class RecoveryEntry:
    """One recoverable document. ``saved_at`` is seconds since the epoch (``time.time()``)."""

    doc_id: str
    title: str
    source_path: str | None
    saved_at: float
    path: Path


class AutosaveStore:
    """Autosaved documents in one folder (by default ``paths.data_dir() / "autosave"``)."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else paths.data_dir() / "autosave"

    def _folder(self) -> Path:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(
                f"cannot create the autosave folder {self.directory}: {exc.strerror or exc}"
            ) from exc
        return self.directory

    def _paths(self, doc_id: str) -> tuple[Path, Path]:
        if not _DOC_ID.match(doc_id):
            raise ProjectError(f"'{doc_id}' is not an autosave id")
        return self.directory / f"{doc_id}.mgproj", self.directory / f"{doc_id}.json"

    @staticmethod
    def new_doc_id() -> str:
        """A fresh id for a newly opened document."""
        return uuid.uuid4().hex

    def write(self, doc_id: str, project: Project, *, source_path: str | None, title: str) -> None:
        """Autosave ``project`` for document ``doc_id`` (atomic; raises ProjectError)."""
        project_path, meta_path = self._paths(doc_id)
        self._folder()
        save_project(project, project_path, keep_backup=False)
        meta = {"doc_id": doc_id, "title": title, "source_path": source_path, "saved_at": time.time()}
        write_file_atomic(meta_path, json.dumps(meta, ensure_ascii=False).encode("utf-8"), ProjectError)

    def _sidecar(self, doc_id: str) -> dict:
        """The ``<id>.json`` beside an autosave, or ``{}`` when it is missing, unreadable, not a
        regular file or not a JSON object (the entry is still offered then)."""
        path = self.directory / f"{doc_id}.json"
        try:
            loaded = json.loads(read_capped(path, MAX_SIDECAR_BYTES, ProjectError, "autosave note"))
        except (ProjectError, ValueError, RecursionError) as exc:
            if path.exists() or path.is_symlink():
                logger.warning(
                    "autosave %s: its note is unreadable (%s); offered by the file's time", doc_id, exc
                )
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def list_recoverable(self) -> list[RecoveryEntry]:
        """Every autosaved document, newest first.

        An entry whose ``<id>.json`` note is missing, unreadable or holds no valid time is still
        offered, by the project file's own modification time. An entry that is not a regular file
        (a device, a FIFO, a link to one) cannot be recovered and is left out with a warning in the
        log. Temporary files of autosaves that were killed are removed on the way (at start).
        """
        if not self.directory.is_dir():
            return []
        remove_stale_temps(self.directory)
        entries = []
        for project_path in self.directory.glob("*.mgproj"):
            doc_id = project_path.stem
            if not _DOC_ID.match(doc_id):
                continue
            try:
                st = check_regular_file(project_path, ProjectError, "project file")
            except ProjectError as exc:
                logger.warning("autosave %s cannot be recovered: %s", doc_id, exc)
                continue
            meta = self._sidecar(doc_id)
            saved_at = meta.get("saved_at")
            if (
                isinstance(saved_at, bool)
                or not isinstance(saved_at, int | float)
                or not (0 < saved_at < math.inf)
            ):
                saved_at = st.st_mtime
            source = meta.get("source_path")
            title = meta.get("title")
            entries.append(
                RecoveryEntry(
                    doc_id=doc_id,
                    title=title if isinstance(title, str) and title else "Untitled",
                    source_path=source if isinstance(source, str) else None,
                    saved_at=float(saved_at),
                    path=project_path,
                )
            )
        entries.sort(key=lambda e: e.saved_at, reverse=True)
        return entries

    def load(self, doc_id: str) -> Project:
        """The autosaved project of ``doc_id`` (raises ProjectError)."""
        project_path, _ = self._paths(doc_id)
        return load_project(project_path)

    def discard(self, doc_id: str) -> None:
        """Forget the autosave of ``doc_id`` (nothing happens when there is none)."""
        project_path, meta_path = self._paths(doc_id)
        for p in (project_path, meta_path, project_path.with_name(project_path.name + ".bak")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
