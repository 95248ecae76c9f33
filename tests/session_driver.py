"""A musician's working session in the real ``musicgen gui`` process, driven on a virtual X screen
(Xvfb) with real mouse and key events (xdotool), shared by tests/gui/test_session.py (which
asserts on it) and benchmarks/bench_session.py (which prints its figures).

The session: open a 4-bar tune (a project file), then 200 edits with the mouse (draw, move,
resize, velocity, delete) with a Ctrl+S after each, runs of undo and redo, 10 Continue cycles
(accept, reject, Again + accept, Again left pending), Space and Home, Settings ▸ Devices ▸ OK,
save, quit, open the project again (its pending takes come back) and edit on.

After every edit the driver waits for the saved file to change and checks its notes are exactly
what the gesture should have made: "edit → saved file" is the latency measured. The notes a
gesture targets are turned into screen positions with the roll's geometry, which the app logs at
DEBUG level (``roll geometry: ...``). The gui process's memory (VmRSS, VmHWM) is read from
/proc while the session runs; a runaway process is stopped before it can hurt the machine.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from musicgen_app.core.project import Project, load_project, save_project
from musicgen_app.core.song import Note, Song, Track

TICKS_PER_QUARTER = 480
BAR = 4 * TICKS_PER_QUARTER
SIXTEENTH = TICKS_PER_QUARTER // 4
SLOT_FIRST_TICK = 4 * BAR  # the driver's notes live in bars 5-8, after the tune
SLOT_SPACING = TICKS_PER_QUARTER
SLOTS = 15
NOTE_LEN = 2 * SIXTEENTH
MOVE_TICKS = 2 * SIXTEENTH
RESIZE_TICKS = SIXTEENTH
SLOT_BASE_PITCH = 62
LANE_YS = (12, 22, 32, 42)  # where in the velocity lane the driver presses (pixels from its top)


class NoXServerError(RuntimeError):
    """Xvfb or xdotool is missing."""


@contextlib.contextmanager
def xvfb_display(size: str = "1920x1080x24") -> Iterator[str]:
    """A private Xvfb server on a free display (``:N``)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None or shutil.which("xdotool") is None:
        raise NoXServerError("Xvfb and xdotool are needed (scripts/setup.sh installs both)")
    r, w = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(w), "-screen", "0", size, "-nolisten", "tcp"],
        pass_fds=(w,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 15)
        if not ready:
            raise RuntimeError("Xvfb did not start")
        number = os.read(r, 32).decode().strip()
        yield f":{number}"
    finally:
        os.close(r)
        proc.terminate()
        proc.wait(timeout=10)


class App:
    """A `musicgen gui` process with its stderr collected in a file."""

    def __init__(self, display: str, args: list[str], env: dict[str, str], log: Path) -> None:
        exe = Path(sys.executable).with_name("musicgen")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "musicgen_app.cli.main"]
        self.display = display
        self.log = log
        self.app_log = Path(env["MUSICGEN_DATA_DIR"]) / "musicgen.log"
        self.env = {
            **os.environ,
            **env,
            "DISPLAY": display,
            "QT_QPA_PLATFORM": "xcb",
            "PYTHONFAULTHANDLER": "1",
        }
        self.env.pop("MUSICGEN_NO_DIALOGS", None)
        self._fh = open(log, "w")  # noqa: SIM115 - closed in wait()
        self._read_at = 0
        self._seen = ""
        self.app_log.unlink(missing_ok=True)  # an earlier run's log is not this run's
        self.proc = subprocess.Popen(
            [*cmd, "-v", "gui", *args], env=self.env, stdout=self._fh, stderr=self._fh
        )

    def text(self) -> str:
        """The app's log file (stderr can be silenced for a moment while devices are probed)."""
        try:
            with open(self.app_log, "rb") as f:
                if os.fstat(f.fileno()).st_size < self._read_at:  # written afresh
                    self._read_at, self._seen = 0, ""
                f.seek(self._read_at)
                more = f.read()
        except FileNotFoundError:
            return self._seen
        self._read_at += len(more)
        self._seen += more.decode(errors="replace")
        return self._seen

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def count(self, needle: str) -> int:
        """How many times ``needle`` is in the log so far."""
        return self.text().count(needle)

    def wait_log(self, needle: str, timeout: float = 60.0, times: int = 1) -> None:
        """Wait until ``needle`` is in the log ``times`` times."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.count(needle) >= times:
                return
            assert self.proc.poll() is None, f"the app exited:\n{self.stderr()[-3000:]}"
            time.sleep(0.02)
        self.proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
        self.wait(10)
        log, err = self.text()[-4000:], self.stderr()[-4000:]
        raise AssertionError(f"{needle!r} not in the log after {timeout} s:\n{log}\nstderr:\n{err}")

    def wait_settled(self, needle: str, quiet: float, timeout: float) -> None:
        """Wait until ``needle`` has not been logged again for ``quiet`` seconds (a relayout after
        the model card appears, on a loaded machine, comes a while after the model is loaded)."""
        end = time.monotonic() + timeout
        seen, since = self.count(needle), time.monotonic()
        while time.monotonic() < end:
            time.sleep(0.05)
            n = self.count(needle)
            if n != seen:
                seen, since = n, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
        raise AssertionError(f"{needle!r} kept being logged for {timeout} s")

    def xdo(self, *args: str) -> str:
        r = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def window(self, title: str) -> str:
        wid = self.xdo("search", "--sync", "--onlyvisible", "--name", title).split()[0]
        self.xdo("windowfocus", "--sync", wid)
        return wid

    def keys(self, *keys: str) -> None:
        self.xdo("key", "--delay", "60", *keys)

    def memory_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) of the gui process in MiB (0, 0 once it has gone)."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0.0, 0.0
        kb = {k: int(v.split()[0]) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(.+)$", status, re.M)}
        return kb.get("VmRSS", 0) / 1024, kb.get("VmHWM", 0) / 1024

    def ui_cpu_s(self) -> float:
        """CPU time the gui process's main (UI) thread has run so far, in seconds (schedstat: ns
        resolution, and unlike the wall clock it does not grow when other programs take the CPUs)."""
        try:
            return int(Path(f"/proc/{self.proc.pid}/schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._fh.close()


# -- the session ------------------------------------------------------------------------------
@dataclass
class Geometry:
    """Where the roll is on the screen and its zoom and scroll (from the app's DEBUG log)."""

    canvas: tuple[int, int, int, int]
    lane: tuple[int, int, int, int]
    px_per_tick: float
    scroll_tick: float
    key_height: float
    scroll_y: float
    ruler: tuple[int, int, int, int] = (0, 0, 0, 0)  # the ruler (drag: the loop region)
    chords: tuple[int, int, int, int] = (0, 0, 0, 0)  # the chord lane

    @classmethod
    def last_in(cls, log: str) -> Geometry | None:
        found = re.findall(
            r"roll geometry: canvas=([\d,-]+) lane=([\d,-]+) px_per_tick=([\d.e+-]+) "
            r"scroll_tick=([\d.e+-]+) key_height=([\d.e+-]+) scroll_y=([\d.e+-]+) "
            r"ruler=([\d,-]+) chords=([\d,-]+)",
            log,
        )
        if not found:
            return None
        c, v, ppt, st, kh, sy, r, ch = found[-1]
        canvas, lane, ruler, chords = (tuple(int(x) for x in t.split(",")) for t in (c, v, r, ch))
        return cls(canvas, lane, float(ppt), float(st), float(kh), float(sy), ruler, chords)  # type: ignore[arg-type]

    def x(self, tick: float) -> int:
        """Screen x of ``tick``."""
        return round(self.canvas[0] + (tick - self.scroll_tick) * self.px_per_tick)

    def y(self, pitch: int) -> int:
        """Screen y of the middle of ``pitch``'s row."""
        return round(self.canvas[1] + (127 - pitch) * self.key_height - self.scroll_y + self.key_height / 2)

    def lane_value(self, local_y: int) -> int:
        """The velocity a press ``local_y`` pixels below the lane's top sets (the lane's rule)."""
        return max(1, min(127, round((1 - local_y / max(1, self.lane[3] - 2)) * 127)))


@dataclass
class SessionResult:
    """What the session measured (seconds, MiB)."""

    edit_latencies: list[float] = field(default_factory=list)  # in order, the first process
    edit_ui_cpu: list[float] = field(default_factory=list)  # the UI thread's CPU time per edit
    phases: dict[str, list[float]] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    rss_samples_mb: list[float] = field(default_factory=list)
    restored_takes: int = 0
    stderr: str = ""
    log: str = ""
    crash_log: str = ""
    wall_s: float = 0.0

    def add(self, phase: str, seconds: float) -> None:
        self.phases.setdefault(phase, []).append(seconds)


def quantile(xs: list[float], q: float) -> float:
    """The ``q`` quantile of ``xs`` (nearest rank)."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def summary(result: SessionResult) -> str:
    """The session's figures as a table (milliseconds)."""
    lines = [f"{'phase':<22} {'n':>4} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}"]
    for name, xs in result.phases.items():
        ms = [x * 1000 for x in xs]
        lines.append(
            f"{name:<22} {len(ms):>4} {quantile(ms, 0.5):>9.1f} {quantile(ms, 0.99):>9.1f} {max(ms):>9.1f}"
        )
    e = [x * 1000 for x in result.edit_latencies]
    if len(e) >= 40:
        first, last = e[:20], e[-20:]
        lines.append(
            f"edit -> saved file, first 20: p50 {statistics.median(first):.1f} ms, "
            f"p99 {quantile(first, 0.99):.1f} ms; last 20: p50 {statistics.median(last):.1f} ms, "
            f"p99 {quantile(last, 0.99):.1f} ms (of {len(e)} edits in one process)"
        )
    c = [x * 1000 for x in result.edit_ui_cpu]
    if len(c) >= 40:
        lines.append(
            f"UI thread CPU per edit, first 20: p50 {statistics.median(c[:20]):.1f} ms; "
            f"last 20: p50 {statistics.median(c[-20:]):.1f} ms"
        )
    lines.append(f"peak RSS of the gui process (VmHWM): {result.peak_rss_mb:.0f} MiB")
    lines.append(f"session wall time: {result.wall_s:.0f} s")
    return "\n".join(lines)


def slot(k: int) -> tuple[int, int]:
    """(start tick, pitch) of the driver's slot ``k``: quarters in bars 5-8, pitches 62-70 (two
    apart from a neighbour, so a note moved up a semitone never lands on the next slot's)."""
    return SLOT_FIRST_TICK + k * SLOT_SPACING, SLOT_BASE_PITCH + (2 * k) % 10


def slot_note(k: int) -> Note:
    """The note the driver draws in slot ``k``."""
    start, pitch = slot(k)
    return Note(start, pitch, start + NOTE_LEN, 100)


def tune() -> Song:
    """The 4-bar tune the session starts from, a note in every slot of bars 5-8 (so that every
    edit cycle, from the first, is delete, draw, move, resize, velocity) and a held note closing
    bar 8 (so that Continue always starts after the slots)."""
    pitches = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64, 62, 60]
    q = TICKS_PER_QUARTER
    notes = [Note(i * q, p, i * q + q - 40, 90) for i, p in enumerate(pitches)]
    notes += [slot_note(k) for k in range(SLOTS)]
    notes.append(Note(8 * BAR - q, 60, 8 * BAR, 70))
    return Song(tracks=[Track(name="Melody", notes=sorted(notes))], title="tune")


def _at(x: int, y: int) -> list[str]:
    """xdotool: put the pointer at ``x, y`` and let the app see it there before a press."""
    return ["mousemove", "--sync", str(x), str(y), "sleep", "0.03"]


class SessionError(AssertionError):
    """The session went wrong (an edit not saved, wrong notes, a runaway process)."""


def run_or_skip(make: Callable[[str], DrivenSession]) -> SessionResult:
    """Run the session ``make(display)`` on a private X screen; the test is skipped without a
    shipped model or without Xvfb and xdotool."""
    import pytest

    from musicgen_app.ml.registry import list_models

    if not list_models():
        pytest.skip("no trained model in models/")
    try:
        with xvfb_display() as display:
            return make(display).run()
    except NoXServerError as exc:
        pytest.skip(str(exc))


def assert_quiet(result: SessionResult) -> None:
    """No traceback and no internal error on the app's stderr or in its log, and no crash log."""
    for text in (result.stderr, result.log):
        at = text.find("Traceback")
        assert at < 0, text[max(0, at - 300) : at + 3000]
        assert "internal error" not in text.lower()
    assert result.crash_log == ""


class DrivenSession:
    """What every driven session shares: a work folder with the app's data and settings in it, the
    running app, its memory watched, and :meth:`run` (prepare, the session, then the logs)."""

    result: SessionResult
    project: Path  # the project file the session saves
    saved_at = 0.0  # perf_counter time of the last Ctrl+S pressed by :meth:`_save`

    def __init__(self, workdir: Path, display: str, rss_limit_mb: float) -> None:
        self.dir = workdir
        self.display = display
        self.rss_limit_mb = rss_limit_mb
        self.env = {
            "MUSICGEN_DATA_DIR": str(workdir / "data"),
            "MUSICGEN_CONFIG_DIR": str(workdir / "config"),
            "MUSICGEN_OUTPUT": "none",
            "MUSICGEN_RECOVER": "later",
            "MUSICGEN_AUTOSAVE_SECONDS": "20",
        }
        self.app: App | None = None

    def prepare(self) -> None:
        """The files the session opens (before the app starts)."""

    def _session(self) -> None:
        raise NotImplementedError

    def run(self) -> SessionResult:
        """The session (see the module docstring)."""
        t_start = time.perf_counter()
        self.prepare()
        # The driver times the app from its own process, which may hold torch's 200,000 objects
        # (the bench's model check, the test suite): a full collection of those here is a pause
        # of 80-150 ms that would be counted against one of the app's edits. Frozen, they are
        # not walked again while the session runs.
        gc.collect()
        gc.freeze()
        try:
            self._session()
        finally:
            gc.unfreeze()
            if self.app is not None and self.app.proc.poll() is None:
                self.app.proc.kill()
                self.app.wait(10)
                self.result.stderr += self.app.stderr()
                self.result.log += self.app.text()
            crash = Path(self.env["MUSICGEN_DATA_DIR"]) / "musicgen-errors.log"
            self.result.crash_log = crash.read_text(errors="replace") if crash.exists() else ""
            self.result.wall_s = time.perf_counter() - t_start
        return self.result

    def _close(self) -> None:
        """Ctrl+Q (everything saved: no question), the app's logs kept; it must exit with 0."""
        app = self.app
        assert app is not None
        self._sample_memory()
        app.keys("ctrl+q")
        status = app.wait(60)
        self.result.stderr += app.stderr()
        self.result.log += app.text()
        self.app = None
        if status != 0:
            raise SessionError(f"the app exited with {status}:\n{app.stderr()[-3000:]}")

    def _project_mtime(self) -> int:
        return self.project.stat().st_mtime_ns if self.project.exists() else 0

    def _wait_saved(self, before_ns: int, timeout: float = 20.0) -> float:
        """Wait until the project file is written anew; returns when it was seen (perf_counter)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.project.exists() and self.project.stat().st_mtime_ns != before_ns:
                seen = time.perf_counter()
                time.sleep(0.05)  # written to a temporary file and renamed: settled before it is read
                return seen
            time.sleep(0.005)
        raise SessionError(f"Ctrl+S did not save {self.project.name} within {timeout} s")

    def _save(self, phase: str = "save") -> Song:
        """Ctrl+S (its time in :attr:`saved_at`), timed to the file written anew as ``phase``; the
        saved song, read back."""
        assert self.app is not None
        before = self._project_mtime()
        t0 = self.saved_at = time.perf_counter()
        self.app.xdo("key", "--delay", "1", "ctrl+s")
        self.result.add(phase, self._wait_saved(before) - t0)
        self._sample_memory()
        return load_project(self.project).song

    def _sample_memory(self) -> None:
        assert self.app is not None
        rss, hwm = self.app.memory_mb()
        if rss:
            self.result.rss_samples_mb.append(rss)
        self.result.peak_rss_mb = max(self.result.peak_rss_mb, hwm)
        if rss > self.rss_limit_mb:
            self.app.proc.kill()
            self.app.wait(10)
            raise SessionError(f"the gui process grew to {rss:.0f} MiB (limit {self.rss_limit_mb:.0f})")


class Session(DrivenSession):
    """Drives one session; :meth:`run` returns its :class:`SessionResult`."""

    def __init__(
        self,
        workdir: Path,
        display: str,
        *,
        edits: int = 200,
        cycles: int = 10,
        edits_after_reopen: int = 10,
        rss_limit_mb: float = 1536.0,
        save_timeout_s: float = 20.0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(workdir, display, rss_limit_mb)
        self.edits = edits
        self.cycles = cycles
        self.edits_after_reopen = edits_after_reopen
        self.save_timeout_s = save_timeout_s
        self.progress = progress or (lambda _msg: None)
        self.project = workdir / "tune.mgproj"
        self.result = SessionResult()
        self.notes: set[Note] = set()  # track 1 as last saved
        self.history: list[frozenset[Note]] = []  # the saved notes after every undoable edit
        self.slot_notes: dict[int, Note] = {k: slot_note(k) for k in range(SLOTS)}
        self.lifecycle = 0
        self.ops: list[str] = []  # what is left of the current slot's lifecycle
        self.in_first_process = True
        self._mtime = 0

    # -- process --------------------------------------------------------------------------
    def _launch(self, name: str) -> App:
        app = App(self.display, [str(self.project)], self.env, self.dir / f"{name}.log")
        self.app = app
        app.wait_log("Opened tune.mgproj", timeout=120)
        wid = app.window("tune.mgproj")
        # a wide window, as a musician editing at the mouse would have (the track and Continue
        # docks take ~600 px of the default 1280); the roll then fits the song at a usable zoom
        app.xdo("windowmove", "--sync", wid, "0", "0")
        app.xdo("windowsize", "--sync", wid, "1900", "1000")
        app.wait_log("roll geometry", timeout=30)
        app.wait_log(" loaded", timeout=120)  # the model is ready
        app.wait_settled("roll geometry", quiet=1.0, timeout=30)  # the window stays where it is
        self._load_saved()
        return app

    def _geometry(self) -> Geometry:
        assert self.app is not None
        g = Geometry.last_in(self.app.text())
        if g is None:
            raise SessionError("the app logged no roll geometry")
        if g.px_per_tick * SIXTEENTH < 3.5 or g.key_height < 5:
            raise SessionError(f"the view is too zoomed out to edit with the mouse: {g}")
        return g

    def _screenshot(self, name: str) -> Path | None:
        """The screen as a PNG in the work folder (for a failure's report); None without PIL."""
        try:
            from PIL import ImageGrab

            path = self.dir / f"{name}-{time.strftime('%H%M%S')}.png"
            ImageGrab.grab(xdisplay=self.display).save(path)
            return path
        except Exception:  # a report's extra: never the failure itself
            return None

    # -- files ----------------------------------------------------------------------------
    def _read_notes(self) -> set[Note]:
        return set(load_project(self.project).song.tracks[0].notes)

    def _load_saved(self) -> None:
        self._mtime = self.project.stat().st_mtime_ns
        self.notes = self._read_notes()

    def _save_and_wait(self, t0: float, phase: str, expect: set[Note] | None) -> float:
        """Ctrl+S was pressed at ``t0``: wait for the file to change; check it holds ``expect``."""
        app = self.app
        assert app is not None
        end = t0 + self.save_timeout_s
        next_memory = 0.0
        while True:
            now = time.perf_counter()
            try:
                mtime = self.project.stat().st_mtime_ns
            except FileNotFoundError:
                mtime = self._mtime
            if mtime != self._mtime:
                try:
                    got = self._read_notes()
                except Exception:  # caught between the write and the rename: look again
                    time.sleep(0.002)
                    continue
                elapsed = time.perf_counter() - t0
                self._mtime = mtime
                break
            if now > end:
                self._sample_memory()
                raise SessionError(
                    f"{phase}: the file was not saved within {self.save_timeout_s:.0f} s "
                    f"(RSS {app.memory_mb()[0]:.0f} MiB)\n{app.text()[-2000:]}"
                )
            if now > next_memory:
                self._sample_memory()
                next_memory = now + 0.5
            if app.proc.poll() is not None:
                raise SessionError(f"{phase}: the app exited\n{app.stderr()[-3000:]}")
            time.sleep(0.003)
        if expect is not None and got != expect:
            shot = self._screenshot(phase)
            raise SessionError(
                f"(screen: {shot}) "
                f"{phase}: the saved notes are not what the gesture should give\n"
                f"missing: {sorted(expect - got)}\nunexpected: {sorted(got - expect)}\n"
                f"{app.text()[-1500:]}"
            )
        self.notes = got
        self.result.add(phase, elapsed)
        return elapsed

    # -- gestures -------------------------------------------------------------------------
    def _gesture_then_save(
        self, prepare: list[str], commit: list[str], phase: str, expect: set[Note]
    ) -> None:
        """xdotool ``prepare`` (press, drag), then ``commit`` (release or a key) and Ctrl+S,
        timed from the commit; the file must then hold ``expect``."""
        assert self.app is not None
        if prepare:
            self.app.xdo(*prepare)
        cpu0 = self.app.ui_cpu_s()
        t0 = time.perf_counter()
        self.app.xdo(*commit, "key", "--delay", "1", "ctrl+s")
        elapsed = self._save_and_wait(t0, phase, expect)
        cpu = self.app.ui_cpu_s() - cpu0
        self.history.append(frozenset(self.notes))
        if self.in_first_process:
            self.result.edit_latencies.append(elapsed)
            self.result.edit_ui_cpu.append(cpu)

    def _edit_once(self) -> None:
        """The next edit of the slot lifecycles: [delete], draw, move, resize, velocity."""
        g = self._geometry()
        k = self.lifecycle % SLOTS
        if not self.ops:  # a new lifecycle
            self.ops = (["delete"] if k in self.slot_notes else []) + ["draw", "move", "resize", "velocity"]
        op = self.ops.pop(0)
        if not self.ops:
            self.lifecycle += 1
        down = ["mousedown", "1", "sleep", "0.03"]
        if op == "draw":
            new = slot_note(k)
            start, pitch = new.start_tick, new.pitch
            prepare = [*_at(g.x(start) + 2, g.y(pitch)), *down]
            prepare += ["mousemove", str(g.x(new.end_tick)), str(g.y(pitch)), "sleep", "0.03"]
            self._gesture_then_save(prepare, ["mouseup", "1"], "draw", self.notes | {new})
            self.slot_notes[k] = new
            return
        note = self.slot_notes[k]
        mid = (g.x(note.start_tick) + g.x(note.end_tick)) // 2
        if op == "delete":
            click = [*_at(mid, g.y(note.pitch)), "click", "1", "sleep", "0.03"]
            self._gesture_then_save(click, ["key", "--delay", "1", "Delete"], "delete", self.notes - {note})
            del self.slot_notes[k]
        elif op == "move":
            new = note.moved(MOVE_TICKS, 1)
            prepare = [*_at(mid, g.y(note.pitch)), *down]
            dx = round(MOVE_TICKS * g.px_per_tick)
            prepare += ["mousemove", str(mid + dx), str(g.y(note.pitch + 1)), "sleep", "0.03"]
            self._gesture_then_save(prepare, ["mouseup", "1"], "move", (self.notes - {note}) | {new})
            self.slot_notes[k] = new
        elif op == "resize":
            new = Note(note.start_tick, note.pitch, note.end_tick + RESIZE_TICKS, note.velocity)
            x = g.x(note.end_tick) - 2
            prepare = [*_at(x, g.y(note.pitch)), *down]
            prepare += ["mousemove", str(x + round(RESIZE_TICKS * g.px_per_tick)), str(g.y(note.pitch))]
            prepare += ["sleep", "0.03"]
            self._gesture_then_save(prepare, ["mouseup", "1"], "resize", (self.notes - {note}) | {new})
            self.slot_notes[k] = new
        else:  # velocity: press on the note's bar in the velocity lane
            local_y = LANE_YS[self.lifecycle % len(LANE_YS)]
            value = g.lane_value(local_y)
            if value == note.velocity:
                local_y += 6
                value = g.lane_value(local_y)
            new = Note(note.start_tick, note.pitch, note.end_tick, value)
            x, y = g.x(note.start_tick) + 1, g.lane[1] + local_y
            prepare = [*_at(x, y), *down]
            self._gesture_then_save(prepare, ["mouseup", "1"], "velocity", (self.notes - {note}) | {new})
            self.slot_notes[k] = new

    def _undo_redo_run(self, n: int = 5) -> None:
        """Undo ``n`` edits, save, check; redo them, save, check."""
        assert self.app is not None and len(self.history) > n
        target_undo = set(self.history[-1 - n])
        target_redo = set(self.history[-1])
        t0 = time.perf_counter()
        self.app.xdo("key", "--delay", "1", *(["ctrl+z"] * n), "ctrl+s")
        self._save_and_wait(t0, f"undo x{n}", target_undo)
        t0 = time.perf_counter()
        self.app.xdo("key", "--delay", "1", *(["ctrl+shift+z"] * n), "ctrl+s")
        self._save_and_wait(t0, f"redo x{n}", target_redo)

    def _continue_cycle(self, i: int) -> None:
        """Continue, then accept, reject, Again + accept, or (the last) Again left pending."""
        app = self.app
        assert app is not None
        kind = "pending" if i == self.cycles - 1 else ("accept", "reject", "again+accept", "play")[i % 4]
        done = app.count("continue: take ")
        t0 = time.perf_counter()
        app.keys("ctrl+Return")
        app.wait_log("continue: take ", timeout=120, times=done + 1)
        self.result.add("continue (key -> take)", time.perf_counter() - t0)
        before = len(self.notes)
        accepted = app.count("accepted take ")
        if kind in ("again+accept", "pending"):
            t0 = time.perf_counter()
            app.keys("r")
            app.wait_log("continue: take ", timeout=120, times=done + 2)
            self.result.add("again (key -> take)", time.perf_counter() - t0)
        if kind in ("accept", "again+accept"):
            t0 = time.perf_counter()
            app.keys("Return")
            app.wait_log("accepted take ", times=accepted + 1)
            self.result.add("accept", time.perf_counter() - t0)
        elif kind == "reject":
            app.keys("BackSpace")
        elif kind == "play":  # listen to the take, stop, then reject it
            playing = app.count("playback started")
            app.keys("Escape", "space")
            app.wait_log("playback started", times=playing + 1)
            time.sleep(0.5)
            app.keys("space", "BackSpace")
        app.keys("Escape", "Home")  # stop, and back to the start of the song
        t0 = time.perf_counter()
        app.xdo("key", "--delay", "1", "ctrl+s")
        self._save_and_wait(t0, "save", None)
        if kind in ("accept", "again+accept"):
            found = re.findall(r"accepted take \d+ with (\d+) notes", app.text())
            if len(self.notes) != before + int(found[-1]):
                raise SessionError(f"the accepted take is not saved ({before} -> {len(self.notes)} notes)")
            self.history.append(frozenset(self.notes))  # one undo step

    def _devices(self) -> None:
        """Settings ▸ Devices…, choose "No sound", OK: the running player switches."""
        app = self.app
        assert app is not None
        news = app.count("output: ") + app.count("No sound output")
        t0 = time.perf_counter()
        app.keys("alt+s")
        time.sleep(0.3)
        app.keys("Return")
        app.window("^Devices$")
        time.sleep(0.3)
        app.keys("Down", "Return")
        end = time.monotonic() + 30
        while app.count("output: ") + app.count("No sound output") <= news:
            if time.monotonic() > end:
                raise SessionError(f"Devices ▸ OK: the output never reported\n{app.text()[-2000:]}")
            time.sleep(0.02)
        self.result.add("devices OK -> output", time.perf_counter() - t0)
        main = app.window("tune.mgproj")
        assert main

    # -- the whole session ----------------------------------------------------------------
    def prepare(self) -> None:
        """The tune as a project file, and settings for short continuations."""
        self.dir.mkdir(parents=True, exist_ok=True)
        save_project(Project(song=tune(), state={}), self.project)
        config = self.dir / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "gui.json").write_text(
            json.dumps({"bars": 1, "variations": 1, "random_seed": False, "seed": 11, "snap": "1/16"})
        )

    def _session(self) -> None:
        t0 = time.perf_counter()
        self._launch("first")
        self.result.add("open (launch -> ready)", time.perf_counter() - t0)
        self.progress("window ready")
        cycle_every = max(1, self.edits // (self.cycles + 1))
        cycles_done = 0
        for n in range(1, self.edits + 1):
            self._edit_once()
            if n % 40 == 0:
                self._undo_redo_run()
            if n % cycle_every == 0 and cycles_done < self.cycles - 1:
                self._continue_cycle(cycles_done)
                cycles_done += 1
            if n % 50 == 0:
                self.progress(f"{n} edits, {cycles_done} Continue cycles")
        while cycles_done < self.cycles:  # the last leaves two takes pending
            self._continue_cycle(cycles_done)
            cycles_done += 1
        self.in_first_process = False
        self._devices()
        self.progress("devices changed")
        t0 = time.perf_counter()
        assert self.app is not None
        self.app.xdo("key", "--delay", "1", "ctrl+s")
        self._save_and_wait(t0, "save", None)
        self._close()
        self.progress("closed; opening again")
        t0 = time.perf_counter()
        app = self._launch("reopen")
        self.result.add("open (launch -> ready)", time.perf_counter() - t0)
        found = re.findall(r"restored (\d+) takes", app.text())
        self.result.restored_takes = int(found[-1]) if found else 0
        self.slot_notes = {k: n for k, n in self.slot_notes.items() if n in self.notes}
        for _ in range(self.edits_after_reopen):
            self._edit_once()
        self._undo_redo_run()
        self._close()
