"""A save loop killed with SIGKILL at random moments always leaves a project that loads whole,
and the temporary files the kills leave are removed by the next save (every other kill, by a save
in this process, which lives on: a kill between a save's two renames leaves the project and its
backup as two names of one file, and that save must leave no temporary file of its own either)."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from musicgen_app.core.project import Project, load_project, save_project
from musicgen_app.core.song import Note, Song, Track

TRIALS = 100


def _project(version: int) -> Project:
    """Version ``version`` of a 3000-note song; every version differs in every note."""
    notes = [
        Note(i * 10 + version % 7, 30 + (i + version) % 70, i * 10 + 9, 1 + (i * version) % 127)
        for i in range(3000)
    ]
    song = Song(title=f"version {version}", tracks=[Track("lead", version % 128, notes=sorted(notes))])
    return Project(song, {"version": version, "takes": [{"seed": version * 7919}]})


def _version_of(path: Path) -> int:
    """The version a project file holds, after checking it is exactly that version, whole."""
    project = load_project(path)
    version = project.state["version"]
    expected = _project(version)
    assert project.song == expected.song and project.state == expected.state
    return version


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.timeout(120)
def test_sigkill_during_saves_leaves_old_or_new_version(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "song.mgproj"
    save_project(_project(0), path)
    on_disk = 0
    advanced = interrupted = 0
    for trial in range(TRIALS):
        pid = os.fork()
        if pid == 0:  # child: save newer and newer versions until killed
            status = 0
            try:
                version = on_disk
                while True:
                    version += 1
                    save_project(_project(version), path)
            except BaseException:  # a forked child must never return into pytest
                status = 1
            finally:
                os._exit(status)
        time.sleep(rng.uniform(0.0, 0.06))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL  # it was still saving
        leftovers = list(tmp_path.glob(".*.tmp"))  # a save (or backup) the kill cut short
        interrupted += bool(leftovers)
        # left in place: the next save removes them, so at most the last kill's two remain
        assert len(leftovers) <= 2, leftovers
        version = _version_of(path)
        assert version >= on_disk  # the old version or a newer one, never a broken file
        if version > on_disk:
            advanced += 1
            assert _version_of(path.with_name(path.name + ".bak")) <= version
        on_disk = version
        if trial % 2:  # a save here, in a process that lives on, removes what the kill left
            on_disk += 1
            save_project(_project(on_disk), path)
            assert list(tmp_path.glob(".*.tmp")) == [], f"after kill {trial + 1}"
    # the kills landed at different moments: many in the middle of writing a file
    assert advanced > 0 and interrupted >= 3, (advanced, interrupted)
    # what the killed saves left behind never piles up: the next save of the file removes it
    save_project(_project(on_disk + 1), path)
    assert list(tmp_path.glob(".*.tmp")) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mgproj", "song.mgproj.bak"]
