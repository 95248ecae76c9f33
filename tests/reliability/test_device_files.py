"""Device files, FIFOs and sockets at every file reader: refused within 1 s with one line, memory flat.

`/dev/zero` and `/dev/urandom` have ``st_size`` 0 and never end; a FIFO without a writer blocks
the first open. Each reader of the app (MIDI, project, SoundFont, checkpoint card and weights,
autosave entries and their notes) is given `/dev/zero` itself, a symlink to `/dev/urandom`, a
symlink to `/dev/zero` and a FIFO, named as the reader expects. (The app has no audio-file reader:
WAV files are only written.) Writers are given `/dev/null`, a FIFO and a folder and must refuse
them, leaving them as they were. The same through the `musicgen` command as a user runs it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from core.test_midi_roundtrip import run_musicgen

from musicgen_app.core.autosave import AutosaveStore
from musicgen_app.core.midi_io import read_midi, write_midi
from musicgen_app.core.project import Project, load_any, load_project, save_project
from musicgen_app.core.song import Note, Song, Track
from musicgen_app.errors import (
    CheckpointError,
    DeviceError,
    MidiExportError,
    MidiImportError,
    MusicgenError,
    ProjectError,
    SoundFontError,
)
from musicgen_app.ml import checkpoint
from musicgen_app.ml.registry import load_model
from musicgen_app.playback.render import render_song, write_wav
from musicgen_app.playback.synth import check_soundfont

pytestmark = pytest.mark.timeout(60)  # a reader that blocks on a FIFO fails here instead of hanging

KINDS = ("dev-zero", "urandom-link", "zero-link", "fifo", "socket")
DOC_ID = "0123456789abcdef0123456789abcdef"


def _make(kind: str, path: Path) -> Path:
    """``path`` made into the special file ``kind`` (``dev-zero`` returns /dev/zero itself when the
    name does not matter)."""
    if kind in ("dev-zero", "zero-link"):
        path.symlink_to("/dev/zero")
    elif kind == "urandom-link":
        path.symlink_to("/dev/urandom")
    elif kind == "fifo":
        os.mkfifo(path)
    else:  # a link to a bound Unix socket (in a short folder: socket paths are short)
        folder = Path(tempfile.mkdtemp(prefix="mgsock"))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(folder / "s"))
        _SOCKETS.append((sock, folder))
        path.symlink_to(folder / "s")
    return path


_SOCKETS: list[tuple[socket.socket, Path]] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while _SOCKETS:
        sock, folder = _SOCKETS.pop()
        sock.close()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _fast_and_flat() -> Iterator[None]:
    """The block must take under 1 s and allocate under 4 MiB (reading a device would take far
    more: the caps are 16 to 256 MiB)."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = time.monotonic()
    try:
        yield
    finally:
        elapsed = time.monotonic() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert elapsed < 1.0, f"took {elapsed:.2f} s"
    assert peak < 4 * 2**20, f"allocated {peak / 2**20:.1f} MiB"
    assert rss_growth_kib < 64 * 1024, f"peak memory grew by {rss_growth_kib / 1024:.0f} MiB"


def _refused(call: Callable[[], object], error: type[MusicgenError]) -> str:
    with _fast_and_flat(), pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert message and "\n" not in message
    return message


def _one_note_song() -> Song:
    return Song(tracks=[Track("t", 0, notes=[Note(0, 60, 480, 100)])])


# reader name -> (file name it expects, call, error)
READERS: dict[str, tuple[str, Callable[[Path], object], type[MusicgenError]]] = {
    "MIDI": ("x.mid", read_midi, MidiImportError),
    "MIDI by extension": ("x.mid", load_any, MidiImportError),
    "file of unknown type": ("x.dat", load_any, MidiImportError),
    "project": ("x.mgproj", load_project, ProjectError),
    "project by extension": ("x.mgproj", load_any, ProjectError),
    "SoundFont": ("x.sf2", check_soundfont, SoundFontError),
    "SoundFont to render with": (
        "x.sf2",
        lambda p: render_song(_one_note_song(), soundfont=p),
        SoundFontError,
    ),
    "checkpoint card": ("x.json", checkpoint.read_card, CheckpointError),
    "checkpoint weights": ("x.safetensors", checkpoint.load_weights, CheckpointError),
    "model by its card": ("x.json", load_model, CheckpointError),
}


ANY_NAME = ("MIDI", "file of unknown type", "project", "SoundFont", "SoundFont to render with")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reader", list(READERS))
def test_readers_refuse_special_files(tmp_path: Path, reader: str, kind: str) -> None:
    name, call, error = READERS[reader]
    # the device itself where the reader takes any name
    direct = kind == "dev-zero" and reader in ANY_NAME
    path = Path("/dev/zero") if direct else _make(kind, tmp_path / name)
    if reader == "checkpoint weights" or reader == "model by its card":
        # the other half of the checkpoint exists and is fine, so the special file is what is read
        other = path.with_suffix(".safetensors" if path.suffix == ".json" else ".json")
        if not other.exists():
            other.write_text("{}")
    message = _refused(lambda: call(path), error)
    assert str(path) in message or path.name in message
    expected = {"fifo": "named pipe", "socket": "socket"}.get(kind, "character device")
    assert expected in message


def test_a_folder_is_refused_by_every_reader(tmp_path: Path) -> None:
    for reader, (name, call, error) in READERS.items():
        folder = tmp_path / reader.replace(" ", "_") / name
        folder.mkdir(parents=True)
        if name == "x.safetensors":
            folder.with_suffix(".json").write_text("{}")
        assert "folder" in _refused(lambda f=folder, c=call: c(f), error), reader


@pytest.mark.parametrize("kind", ["urandom-link", "zero-link", "fifo"])
def test_autosave_entry_that_is_a_special_file_is_not_offered_and_not_loaded(
    tmp_path: Path, kind: str
) -> None:
    store = AutosaveStore(tmp_path / "autosave")
    good = AutosaveStore.new_doc_id()
    store.write(good, Project(_one_note_song()), source_path=None, title="kept")
    _make(kind, store.directory / f"{DOC_ID}.mgproj")
    with _fast_and_flat():
        entries = store.list_recoverable()
    assert [e.doc_id for e in entries] == [good]  # the good one is still offered
    _refused(lambda: store.load(DOC_ID), ProjectError)


@pytest.mark.parametrize("kind", ["urandom-link", "zero-link", "fifo", "socket"])
def test_autosave_note_that_is_a_special_file_still_offers_the_entry(tmp_path: Path, kind: str) -> None:
    store = AutosaveStore(tmp_path / "autosave")
    store.write(DOC_ID, Project(_one_note_song()), source_path="/x/song.mid", title="song")
    note = store.directory / f"{DOC_ID}.json"
    note.unlink()
    _make(kind, note)
    with _fast_and_flat():
        entries = store.list_recoverable()
    assert len(entries) == 1
    entry = entries[0]
    assert entry.doc_id == DOC_ID and entry.title == "Untitled"
    assert entry.saved_at == (store.directory / f"{DOC_ID}.mgproj").stat().st_mtime
    assert store.load(DOC_ID).song == _one_note_song()


# -- writers ---------------------------------------------------------------------------------------
WRITERS: dict[str, tuple[Callable[[Path], object], type[MusicgenError]]] = {
    "project": (lambda p: save_project(Project(_one_note_song()), p), ProjectError),
    "MIDI": (lambda p: write_midi(_one_note_song(), p), MidiExportError),
    "WAV": (lambda p: write_wav(np.zeros((64, 2), dtype=np.float32), p), DeviceError),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_writers_never_replace_a_device_a_fifo_or_a_folder(tmp_path: Path, writer: str) -> None:
    call, error = WRITERS[writer]
    assert "character device" in _refused(lambda: call(Path("/dev/null")), error)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # still the device
    link = tmp_path / "out.mid"
    link.symlink_to("/dev/null")
    assert "character device" in _refused(lambda: call(link), error)
    assert link.is_symlink() and stat.S_ISCHR(link.stat().st_mode)
    fifo = _make("fifo", tmp_path / "pipe")
    assert "named pipe" in _refused(lambda: call(fifo), error)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    folder = tmp_path / "folder.mgproj"
    folder.mkdir()
    assert "folder" in _refused(lambda: call(folder), error)
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.mgproj", "out.mid", "pipe"]  # no leftovers


def test_a_project_backup_that_is_a_device_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "song.mgproj"
    save_project(Project(_one_note_song()), path)
    save_project(Project(_one_note_song()), path)
    backup = path.with_name("song.mgproj.bak")
    backup.unlink()
    backup.symlink_to("/dev/null")
    with pytest.raises(ProjectError, match="character device"):
        save_project(Project(_one_note_song()), path)
    assert backup.is_symlink() and load_project(path).song == _one_note_song()


# -- the same as a user meets it, through the musicgen command ------------------------------------
def _assert_one_line_refusal(r: subprocess.CompletedProcess[str], *expected: str) -> None:
    out = r.stdout + r.stderr
    assert "Traceback" not in out and "Exception ignored" not in out, out
    assert r.returncode == 2, (r.returncode, out)
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    for text in expected:
        assert text in r.stderr, r.stderr


def test_the_musicgen_command_refuses_special_files(tmp_path: Path) -> None:
    song = tmp_path / "song.mid"
    write_midi(_one_note_song(), song)
    fifo = _make("fifo", tmp_path / "pipe.mid")
    urandom = _make("urandom-link", tmp_path / "noise.mgproj")
    zero_sf = _make("zero-link", tmp_path / "zero.sf2")
    card = _make("zero-link", tmp_path / "model.json")
    (tmp_path / "model.safetensors").write_bytes(b"")
    folder = tmp_path / "folder.mgproj"
    folder.mkdir()
    null_out = _make("zero-link", tmp_path / "null.mid")
    null_out.unlink()
    null_out.symlink_to("/dev/null")
    cases: list[tuple[list[str], str]] = [
        (["inspect", "/dev/zero"], "device"),
        (["inspect", str(fifo)], "pipe"),
        (["inspect", str(urandom)], "device"),
        (["convert", str(fifo), str(tmp_path / "out.mgproj")], "pipe"),
        (["convert", str(song), str(null_out)], "device"),
        (
            ["render", str(song), "--soundfont", "/dev/zero", "-o", str(tmp_path / "a.wav")],
            "device",
        ),
        (
            ["render", str(song), "--soundfont", str(zero_sf), "-o", str(tmp_path / "b.wav")],
            "device",
        ),
        (["render", str(song), "--soundfont", str(fifo), "-o", str(tmp_path / "c.wav")], "pipe"),
        (["continue", str(song), "--model", str(card), "-o", str(tmp_path / "d.mid")], "device"),
        (["render", str(song), "-o", "/dev/null"], "/dev/null"),
        (["convert", str(song), str(folder)], "folder"),
    ]
    for args, expected in cases:
        start = time.monotonic()
        r = run_musicgen(*args)
        assert time.monotonic() - start < 60, args  # not a hang (a FIFO would block forever)
        _assert_one_line_refusal(r, expected)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and null_out.is_symlink()
    assert not any(p.name.endswith((".wav", ".tmp", ".part")) for p in tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["urandom-link", "fifo", "socket"])
def test_gui_settings_that_are_a_special_file_give_defaults_and_are_not_replaced(kind: str) -> None:
    from musicgen_app.gui.settings import AppSettings

    path = AppSettings.path()
    path.parent.mkdir(parents=True, exist_ok=True)
    _make(kind, path)
    with _fast_and_flat():
        settings = AppSettings.load()
    assert settings == AppSettings()
    settings.recent_files = ["/x.mid"]
    settings.save()  # logged, not raised; the special file stays what it was
    assert path.is_symlink() if kind != "fifo" else stat.S_ISFIFO(path.stat().st_mode)
