"""Leftovers: temporary files of killed saves are removed at the next save and at start (the
autosave folder); autosave entries whose note is unreadable are still offered, by the file's time.

Real SIGKILLs during saves: tests/core/test_project_crash.py (at most the last kill's temporary
files exist at any time; none after the next save)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from musicgen_app.core.autosave import AutosaveStore
from musicgen_app.core.project import Project, load_project, save_project
from musicgen_app.core.safe_io import LEGACY_TEMP_AGE_S, remove_stale_temps
from musicgen_app.core.song import Note, Song, Track


def _song(n: int = 1) -> Song:
    return Song(tracks=[Track("t", 0, notes=[Note(i * 10, 60, i * 10 + 5, 100) for i in range(n)])])


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temp(folder: Path, name: str, middle: str, size: int = 1000) -> Path:
    path = folder / f".{name}.{middle}.tmp"
    path.write_bytes(b"x" * size)
    return path


def test_temporary_files_of_dead_saves_are_removed_at_the_next_save(tmp_path: Path) -> None:
    path = tmp_path / "song.mgproj"
    save_project(Project(_song()), path)
    dead = [_temp(tmp_path, "song.mgproj", f"{_dead_pid()}.{uuid.uuid4().hex}") for _ in range(3)]
    dead.append(_temp(tmp_path, "song.mgproj.bak", f"{_dead_pid()}.{uuid.uuid4().hex}"))
    old_legacy = _temp(tmp_path, "song.mgproj", "ab3_x9q2")  # mkstemp's name, before this version
    os.utime(old_legacy, (time.time() - LEGACY_TEMP_AGE_S - 60,) * 2)
    # kept: a save in progress in a live process, a recent legacy file, other files and other names
    live = _temp(tmp_path, "song.mgproj", f"{os.getppid()}.{uuid.uuid4().hex}")
    recent_legacy = _temp(tmp_path, "song.mgproj", "zz0_k1m2")
    other = [
        _temp(tmp_path, "other.mgproj", f"{_dead_pid()}.{uuid.uuid4().hex}"),
        _temp(tmp_path, "song.mgproj", "notes"),
        tmp_path / "song.tmp",
    ]
    other[-1].write_text("mine")
    save_project(Project(_song(2)), path)
    for p in [*dead, old_legacy]:
        assert not p.exists(), p
    for p in [live, recent_legacy, *other]:
        assert p.exists(), p
    assert load_project(path).song == _song(2)


def test_a_save_after_one_killed_between_its_renames_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A save killed after it made the backup and before it renamed its new file over the
    project leaves ``song.mgproj`` and ``song.mgproj.bak`` as two names of one file. The next
    save's backup rename is then a no-op for the kernel (rename() between two links to one file
    succeeds and changes nothing): its temporary name must not stay behind (it did, under this
    process's own id, so no cleanup removed it while the process lived)."""
    path, backup = tmp_path / "song.mgproj", tmp_path / "song.mgproj.bak"
    save_project(Project(_song(1)), path)
    os.link(path, backup)  # what the kill between the two renames leaves
    save_project(Project(_song(2)), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mgproj", "song.mgproj.bak"]
    assert load_project(path).song == _song(2) and load_project(backup).song == _song(1)
    save_project(Project(_song(3)), path)  # and on as usual
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mgproj", "song.mgproj.bak"]
    assert load_project(path).song == _song(3) and load_project(backup).song == _song(2)


@pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/status").exists(), reason="needs Linux /proc")
def test_temporary_files_of_a_zombie_process_are_removed(tmp_path: Path) -> None:
    """A process that was killed but not yet collected by its parent (a zombie) still answers
    ``kill(pid, 0)``; it can write nothing more, so its temporary files are stale."""
    path = tmp_path / "song.mgproj"
    save_project(Project(_song()), path)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        end = time.monotonic() + 30
        while b"State:\tZ" not in Path(f"/proc/{proc.pid}/status").read_bytes():  # exited, not collected
            assert time.monotonic() < end, "the child did not exit"
            time.sleep(0.01)
        names = ("song.mgproj", "song.mgproj.bak")
        leftovers = [_temp(tmp_path, name, f"{proc.pid}.{uuid.uuid4().hex}") for name in names]
        save_project(Project(_song(2)), path)
        assert [p for p in leftovers if p.exists()] == []
    finally:
        proc.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mgproj", "song.mgproj.bak"]


def test_the_autosave_folder_is_cleaned_at_start(tmp_path: Path) -> None:
    store = AutosaveStore(tmp_path / "autosave")
    doc = AutosaveStore.new_doc_id()
    store.write(doc, Project(_song()), source_path=None, title="a")
    leftover = _temp(store.directory, f"{doc}.mgproj", f"{_dead_pid()}.{uuid.uuid4().hex}", 10**6)
    note_leftover = _temp(store.directory, f"{doc}.json", f"{_dead_pid()}.{uuid.uuid4().hex}")
    assert [e.doc_id for e in store.list_recoverable()] == [doc]  # what the app does at start
    assert not leftover.exists() and not note_leftover.exists()


def test_remove_stale_temps_never_raises(tmp_path: Path) -> None:
    assert remove_stale_temps(tmp_path / "missing") == 0
    (tmp_path / ".x.99999999.tmp").mkdir()  # a folder with a temp-like name is not touched
    assert remove_stale_temps(tmp_path) == 0


@pytest.mark.parametrize(
    "note",
    [
        b"{not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({"saved_at": "yesterday", "title": "t"}).encode(),
        json.dumps({"saved_at": None, "title": 5}).encode(),
        json.dumps({"saved_at": True}).encode(),
        json.dumps({"saved_at": -1.0}).encode(),
        b'{"saved_at": NaN}',
        b'{"saved_at": Infinity}',
        b'{"saved_at": 1e999}',
        b'{"saved_at": ' + b"9" * 5000 + b"}",
        b"[" * 100_000,
    ],
)
def test_an_entry_with_an_unreadable_note_is_offered_by_the_file_time(tmp_path: Path, note: bytes) -> None:
    store = AutosaveStore(tmp_path / "autosave")
    doc = AutosaveStore.new_doc_id()
    store.write(doc, Project(_song()), source_path="/a/b.mid", title="song")
    (store.directory / f"{doc}.json").write_bytes(note)
    project_file = store.directory / f"{doc}.mgproj"
    os.utime(project_file, (1_700_000_000, 1_700_000_000))
    entries = store.list_recoverable()
    assert len(entries) == 1
    assert entries[0].doc_id == doc and entries[0].saved_at == 1_700_000_000
    assert isinstance(entries[0].title, str) and entries[0].title
    assert store.load(doc).song == _song()


def test_entries_are_sorted_newest_first_with_and_without_notes(tmp_path: Path) -> None:
    store = AutosaveStore(tmp_path / "autosave")
    a, b = AutosaveStore.new_doc_id(), AutosaveStore.new_doc_id()
    store.write(a, Project(_song()), source_path=None, title="a")
    store.write(b, Project(_song()), source_path=None, title="b")
    (store.directory / f"{b}.json").unlink()
    os.utime(store.directory / f"{b}.mgproj", (time.time() + 100,) * 2)
    assert [e.doc_id for e in store.list_recoverable()] == [b, a]
