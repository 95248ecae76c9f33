"""The real app as a process on a virtual X screen (Xvfb), driven with real key events (xdotool):
the smoke test (window, Ctrl+Return, Space, quit, no traceback) and crash recovery (SIGKILL after
an autosave, restart, the document comes back)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jack_support import private_jack
from session_driver import App, NoXServerError, xvfb_display

from musicgen_app.core.autosave import AutosaveStore
from musicgen_app.core.midi_io import write_midi

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture
def xdisplay() -> Iterator[str]:
    """A private Xvfb server on a free display."""
    try:
        with xvfb_display() as display:
            yield display
    except NoXServerError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def app_env(tmp_path: Path) -> dict[str, str]:
    return {
        "MUSICGEN_DATA_DIR": str(tmp_path / "data"),
        "MUSICGEN_CONFIG_DIR": str(tmp_path / "config"),
        "MUSICGEN_OUTPUT": "none",
        "MUSICGEN_NO_WELCOME": "1",  # no first-launch screen in front of the keys sent
    }


def test_smoke_window_continue_play_stop_quit(xdisplay, app_env, tmp_path, sketch) -> None:
    from musicgen_app.ml.registry import list_models

    if not list_models():
        pytest.skip("no trained model in models/")
    song_file = tmp_path / "tune.mid"
    write_midi(sketch(2), song_file)
    with private_jack("gui-smoke", period=256) as jack:
        if jack is not None:
            app_env.update(jack, MUSICGEN_OUTPUT="fluidsynth")
        app = App(xdisplay, [str(song_file)], app_env, tmp_path / "app.log")
        app.wait_log("Opened tune.mid")
        app.window("tune.mid")
        app.wait_log("loaded")  # the model is ready
        if jack is not None:
            app.wait_log("output: FluidSynth", timeout=30)
        app.keys("ctrl+Return")
        app.wait_log("continue: model")
        app.wait_log("continue: take 1 has", timeout=120)
        app.keys("Escape")
        app.keys("space")
        app.wait_log("playback started")
        time.sleep(1.0)
        app.keys("space")
        app.wait_log("playback stopped")
        app.keys("ctrl+q")
        status = app.wait(30)
        err = app.stderr()
        assert status == 0, err[-3000:]
        assert "Traceback" not in err, err
        assert "QThread: Destroyed while thread is still running" not in err
        assert "internal error" not in err
        assert "ERROR" not in app.text()


def test_crash_recovery_after_sigkill(xdisplay, app_env, tmp_path, sketch, qtbot, monkeypatch) -> None:
    song_file = tmp_path / "sketch.mid"
    write_midi(sketch(2), song_file)
    app_env["MUSICGEN_AUTOSAVE_SECONDS"] = "0.5"
    app = App(xdisplay, [str(song_file)], app_env, tmp_path / "crash.log")
    app.wait_log("Opened sketch.mid")
    app.window("sketch.mid")
    app.keys("ctrl+a", "ctrl+Up", "ctrl+Up")  # select everything, transpose up two semitones
    store = AutosaveStore(Path(app_env["MUSICGEN_DATA_DIR"]) / "autosave")
    want = sorted(n.moved(0, 2) for n in sketch(2).tracks[0].notes)

    def autosaved() -> bool:
        for e in store.list_recoverable():
            if not e.source_path:  # the project is written before its metadata
                return False
            try:
                if sorted(store.load(e.doc_id).song.tracks[0].notes) == want:
                    return True
            except Exception:  # a write in progress; try again
                return False
        return False

    end = time.monotonic() + 30
    while not autosaved():
        assert time.monotonic() < end, app.text()[-3000:] + app.stderr()[-3000:]
        time.sleep(0.1)
    app.proc.send_signal(signal.SIGKILL)
    app.wait(10)
    (entry,) = store.list_recoverable()
    assert entry.source_path and entry.source_path.endswith("sketch.mid")

    # Restart the app: it offers the document back; Return picks "Recover".
    again = App(xdisplay, [], app_env, tmp_path / "restart.log")
    dialog = again.window("Recover unsaved work")
    assert dialog
    again.keys("Return")
    again.wait_log(f"recovered document {entry.doc_id} (8 notes)")
    again.window("sketch.mid")  # the recovered document is in the window, under its own name
    again.proc.send_signal(signal.SIGKILL)
    again.wait(10)
    assert [e.doc_id for e in store.list_recoverable()] == [entry.doc_id]  # kept: neither saved nor discarded

    # And in this process, to look at the recovered notes themselves.
    monkeypatch.setenv("MUSICGEN_DATA_DIR", app_env["MUSICGEN_DATA_DIR"])
    from musicgen_app.gui import app as gui_app

    win = gui_app.new_window(store=AutosaveStore(store.directory), output=None, open_output=False)
    qtbot.addWidget(win)
    try:
        offered: list = []
        docs = gui_app.recover_documents(
            win, win.files.store, lambda _w, entries: offered.extend(entries) or "recover"
        )
        assert [e.doc_id for e in offered] == [entry.doc_id]
        assert len(docs) == 1 and win.doc is docs[0]
        assert sorted(win.doc.notes) == want
        assert win.isWindowModified()
        assert store.list_recoverable()  # kept until the user saves or discards
        win.autosave()  # the recovered document keeps its recovery id
        qtbot.waitUntil(lambda: len(store.list_recoverable()) == 1, timeout=5000)
        assert win.maybe_save() is True  # MUSICGEN_NO_DIALOGS: no question asked, nothing discarded
    finally:
        win.shutdown()


_DROP_TARGET = r"""
import shutil, sys
from PySide6.QtWidgets import QApplication, QLabel

class Target(QLabel):
    # a stand-in for a file manager or a DAW: accepts dropped files and copies them
    def __init__(self):
        super().__init__("drop here")
        self.setAcceptDrops(True)
    def dragEnterEvent(self, e):
        if e.mimeData().hasUrls():
            e.acceptProposedAction()
        print("ENTER", flush=True)
    def dragMoveEvent(self, e):  # one line per XdndPosition message the drag's source sent
        e.acceptProposedAction()
        print("OVER", flush=True)
    def dropEvent(self, e):
        for u in e.mimeData().urls():
            shutil.copy(u.toLocalFile(), sys.argv[1])
            print("DROPPED", u.toLocalFile(), flush=True)
        e.acceptProposedAction()

app = QApplication(sys.argv)
w = Target()
w.setWindowTitle("drop-target")
w.setGeometry(700, 300, 300, 300)
w.show()
print("ready", flush=True)
app.exec()
"""


class _Lines:
    """The lines a child process prints, read without blocking (select on the pipe itself)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.text = ""

    @property
    def lines(self) -> list[str]:
        """The whole lines so far (a line still being written is not one yet)."""
        return self.text[: self.text.rfind("\n") + 1].splitlines()

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float) -> bool:
        """Read until ``predicate(lines so far)`` holds (True) or ``timeout`` seconds pass (False)."""
        end = time.monotonic() + timeout
        while not predicate(self.lines):
            left = end - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.1))
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:  # the process has gone
                    return predicate(self.lines)
                self.text += chunk.decode(errors="replace")
        return True


def test_drag_midi_out_onto_another_application(xdisplay, app_env, tmp_path, sketch) -> None:
    """A real drag and drop (XDND between two processes) from the Drag MIDI button onto another
    program's window: it receives a .mid file holding the active track.

    Every step waits for what it needs, not for a time: the drag has begun (the app says so), the
    target has been told where the pointer is twice (the source sends a position only once the
    target has answered the one before: by then the source knows the target accepts), and only
    then is the button released."""
    import re

    from musicgen_app.core.midi_io import read_midi

    song_file = tmp_path / "sketch.mid"
    write_midi(sketch(2), song_file)
    app = App(xdisplay, [str(song_file)], app_env, tmp_path / "drag.log")
    app.wait_log("Opened sketch.mid")
    app.window("sketch.mid")
    app.wait_log("drag button at")
    x, y, w, h = map(int, re.findall(r"drag button at (\d+),(\d+) size (\d+)x(\d+)", app.text())[-1])
    script = tmp_path / "target.py"
    script.write_text(_DROP_TARGET)
    dropped = tmp_path / "dropped.mid"
    target = subprocess.Popen(
        [sys.executable, str(script), str(dropped)], env=app.env, stdout=subprocess.PIPE
    )
    said = _Lines(target)
    try:
        assert said.wait_for(lambda lines: "ready" in lines, 60), said.text
        wid = app.xdo("search", "--sync", "--onlyvisible", "--name", "drop-target").split()[0]
        app.xdo("windowraise", wid)
        cx, cy = x + w // 2, y + h // 2
        tx, ty = 850, 450  # the middle of the target's window
        app.xdo("mousemove", "--sync", str(cx), str(cy), "sleep", "0.1", "mousedown", "1")
        for k in range(1, 4):  # past the drag distance: the app writes the clip and starts the drag
            app.xdo("mousemove", "--sync", str(cx + 4 * k), str(cy))
        app.wait_log("drag out of ", timeout=30)
        for k in range(1, 21):  # the pointer travels to the other window in small steps
            app.xdo("mousemove", "--sync", str(cx + (tx - cx) * k // 20), str(cy + (ty - cy) * k // 20))
            time.sleep(0.02)
        end = time.monotonic() + 60
        wiggle = 0
        while not said.wait_for(lambda lines: lines.count("OVER") >= 2, 0.2):
            assert time.monotonic() < end, f"not over the target:\n{said.text}\n{app.text()[-2000:]}"
            wiggle = 1 - wiggle  # the source sends a position when the pointer moves
            app.xdo("mousemove", "--sync", str(tx + wiggle), str(ty))
        app.xdo("mouseup", "1")
        assert said.wait_for(lambda lines: any(s.startswith("DROPPED ") for s in lines), 60), (
            f"nothing was dropped:\n{said.text}\n{app.text()[-2000:]}"
        )
        line = next(s for s in said.lines if s.startswith("DROPPED "))
        assert line.endswith(".mid"), line
        app.wait_log("ended: CopyAction", timeout=30)
        got = read_midi(dropped).song
        assert sorted(got.tracks[0].notes) == sorted(sketch(2).tracks[0].notes)
    finally:
        target.terminate()
        target.wait(10)
        app.keys("ctrl+q")
        app.wait(30)
    assert "Traceback" not in app.stderr()
