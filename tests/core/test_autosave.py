"""Autosave: written under the user data folder, listed for recovery, loaded, discarded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from musicgen_app.core import paths
from musicgen_app.core.autosave import AutosaveStore
from musicgen_app.core.project import Project
from musicgen_app.core.song import Note, Song, Track
from musicgen_app.errors import ProjectError


def _project(pitch: int) -> Project:
    return Project(Song(tracks=[Track("t", notes=[Note(0, pitch, 480)])]), {"takes": [{"seed": pitch}]})


def test_default_folder_is_in_the_user_data_dir() -> None:
    store = AutosaveStore()
    assert store.directory == paths.data_dir() / "autosave"
    assert str(store.directory).startswith(os.environ["MUSICGEN_DATA_DIR"])


def test_write_list_load_discard(tmp_path: Path) -> None:
    store = AutosaveStore(tmp_path / "autosave")
    assert store.list_recoverable() == []
    a, b = store.new_doc_id(), store.new_doc_id()
    assert a != b
    store.write(a, _project(60), source_path="/music/a.mid", title="Song A")
    store.write(b, _project(62), source_path=None, title="Untitled 1")
    store.write(a, _project(64), source_path="/music/a.mid", title="Song A")  # a later autosave
    entries = store.list_recoverable()
    assert [e.doc_id for e in entries] == [a, b]  # newest first
    assert (entries[0].title, entries[0].source_path) == ("Song A", "/music/a.mid")
    assert (entries[1].title, entries[1].source_path) == ("Untitled 1", None)
    assert entries[0].saved_at >= entries[1].saved_at and entries[0].path.exists()
    assert store.load(a).song.tracks[0].notes[0].pitch == 64
    assert store.load(b).state == {"takes": [{"seed": 62}]}
    store.discard(a)
    assert [e.doc_id for e in store.list_recoverable()] == [b]
    store.discard(a)  # twice is fine
    store.discard(b)
    assert store.list_recoverable() == [] and list(store.directory.iterdir()) == []


def test_survives_a_missing_metadata_file_and_rejects_bad_ids(tmp_path: Path) -> None:
    store = AutosaveStore(tmp_path)
    doc = store.new_doc_id()
    store.write(doc, _project(60), source_path=None, title="x")
    (tmp_path / f"{doc}.json").unlink()
    (entry,) = store.list_recoverable()
    assert entry.title == "Untitled" and entry.doc_id == doc
    with pytest.raises(ProjectError):
        store.load("../../etc/passwd")
    with pytest.raises(ProjectError):
        store.load(store.new_doc_id())  # nothing saved under that id
