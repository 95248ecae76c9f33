"""The piano roll's paint time and the UI event loop's longest stall during a streaming Continue.

In the same run, on the offscreen Qt platform (no GPU; the raster paint engine):

* **paint, 10,000 notes**: the roll's full repaint (grid + notes, the cached layer rebuilt because
  the view scrolled one pixel) zoomed in (8 bars visible) and zoomed out (every note visible),
  plus the repaint when only the playhead moved (layer cached);
* **baseline**: a plain loop of ``QPainter.drawRect`` over the same 10,000 notes, on the same
  widget size, to show what culling, batching and the zoomed-out rasteriser save;
* **stall**: a 1 ms heartbeat timer on the UI thread while the real window runs Continue with a
  shipped model and plays it through FluidSynth (on a private dummy-backend JACK server the
  benchmark starts when ``jackd`` is installed; else a silent output); the longest gap
  between heartbeats minus 1 ms, against the same heartbeat with the window idle. Run twice:
  with the app's player process (output and scheduler in a child process) and with the
  scheduler as a thread of the UI process, the baseline; for both, how late the MIDI events
  were sent meanwhile.

* **press to sound** (``--press``): the real window on an X server (Xvfb), Ctrl+Return typed
  with ``xdotool`` (one ``xdotool -`` process fed a line per press, so no process start is
  timed), the app's player process sending to a JACK MIDI port of a private dummy-backend server
  (32-frame periods), where a receiver timestamps every message. Per run: key press -> first
  note-on at the port, less the rest the take may open with (a take whose first note falls on
  beat 2 sounds it a beat after the press, on time); with lead-in 1 bar also how late each
  continuation note arrived against its place after the first lead-in note. With ``--readme``
  the table goes into README.md.

Goals: every paint <= 8 ms; stall <= 16 ms; press to sound <= 10 ms with lead-in none; no
continuation note later than 1 ms at the port.
Run: ``.venv/bin/python benchmarks/bench_gui.py [--notes 10000] [--repeats 40] [--bars 8]``;
``--press [--runs 20] [--readme] [--verbose]`` runs only the press-to-sound benchmark.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QElapsedTimer, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import QApplication

from musicgen_app.core.song import Note, Song, Track
from musicgen_app.gui.document import Document
from musicgen_app.gui.piano_roll.widget import COLORS, PianoRollView

WIDTH, HEIGHT = 1400, 800


def big_song(n: int) -> Song:
    """A random melody of ``n`` notes (eighths to half notes, two octaves)."""
    rng = random.Random(1)
    notes, t = [], 0
    for _ in range(n):
        d = rng.choice([240, 480, 960])
        notes.append(Note(t, rng.randint(55, 79), t + d, rng.randint(50, 120)))
        t += d
    return Song(tracks=[Track(name="melody", notes=notes)])


def paint_times(roll: PianoRollView, repeats: int, *, cold: bool) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (this thread) milliseconds per synchronous repaint of the canvas.

    On a shared, busy machine the wall clock includes time the OS gave to other processes; the
    thread's CPU time is what the paint itself costs.
    """
    app = QApplication.instance()
    canvas = roll.canvas
    g = roll.geometry_model
    wall, cpu = [], []
    for k in range(repeats):
        if cold:
            g.scroll_y += 1 if k % 2 else -1  # invalidates the cached layer
        else:
            canvas.playhead_tick += 10
        app.processEvents()
        t0, c0 = time.perf_counter(), time.thread_time()
        canvas.repaint()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    return wall, cpu


def naive_paint_ms(song: Song, repeats: int) -> list[float]:
    """A plain drawRect loop over every note (what the roll avoids)."""
    pm = QPixmap(WIDTH, HEIGHT)
    notes = song.tracks[0].notes
    end = song.end_tick
    px = WIDTH / end
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        p = QPainter(pm)
        p.fillRect(0, 0, WIDTH, HEIGHT, QColor(250, 250, 252))
        p.setBrush(COLORS["note"])
        for n in notes:
            p.drawRect(QRectF(n.start_tick * px, (127 - n.pitch) * 6, max(1.0, n.duration_ticks * px), 6))
        p.end()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def stats(xs: list[float]) -> str:
    return f"median {statistics.median(xs):6.2f} ms   max {max(xs):6.2f} ms"


def heartbeat_gaps(app: QApplication, seconds: float, until=None) -> list[float]:
    """Run the event loop with a 1 ms heartbeat; gaps (ms) beyond the interval."""
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def beat() -> None:
        now = clock.nsecsElapsed()
        gaps.append(max(0.0, (now - last[0]) / 1e6 - 1.0))
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(1)
    timer.timeout.connect(beat)
    timer.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until is not None and until()):
        app.processEvents()
        time.sleep(0.0002)
    timer.stop()
    return gaps


def start_private_jack():
    """A dummy-backend JACK server (no sound card needed) so FluidSynth really renders audio."""
    import shutil
    import subprocess

    jackd, waiter = shutil.which("jackd"), shutil.which("jack_wait")
    if jackd is None or waiter is None:
        return None
    name = f"musicgen-bench-{os.getpid()}"
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1", JACK_NO_AUDIO_RESERVATION="1")
    proc = subprocess.Popen(
        [jackd, "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    subprocess.run([waiter, "-s", name, "-w", "-t", "10"], capture_output=True, timeout=20)
    return proc


def stall_benchmark(app: QApplication, bars: int, in_process: bool) -> None:
    from musicgen_app.core.autosave import AutosaveStore
    from musicgen_app.gui.main_window import MainWindow
    from musicgen_app.gui.settings import AppSettings
    from musicgen_app.ml.registry import list_models
    from musicgen_app.playback.midi_ports import jack_server_running
    from musicgen_app.playback.outputs import FluidSynthOutput, RecordingOutput

    models = [m.name for m in list_models()]
    if not models:
        print("stall: no model in models/ (train one first); skipped")
        return
    model = "melody-lstm" if "melody-lstm" in models else models[0]
    jackd = start_private_jack() if not jack_server_running() else None
    jack = jack_server_running()
    import tempfile

    settings = AppSettings()
    settings.output, settings.audio_driver = ("fluidsynth", "jack") if jack else ("none", "")
    output: Any = None
    if in_process:
        output = FluidSynthOutput(driver="jack") if jack else RecordingOutput()
    win = MainWindow(
        output=output,
        settings=settings,
        autosave_store=AutosaveStore(tempfile.mkdtemp()),
        open_output=False,
    )
    if not in_process:
        win.playback.record_timing = True
        win.playback.open_output(settings)
    win.resize(WIDTH, HEIGHT)
    win.show()
    end = time.monotonic() + 30
    while win.panel.model_combo.count() == 0 and time.monotonic() < end:
        app.processEvents()
    ready: list[str] = []
    win.model_ready.connect(ready.append)
    win.panel.model_combo.setCurrentIndex(win.panel.model_combo.findData(model))
    pitches = [60, 62, 64, 65, 67, 65, 64, 62]
    win.set_document(
        Document(
            Song(tracks=[Track(notes=[Note(i * 480, p, i * 480 + 440, 90) for i, p in enumerate(pitches)])])
        )
    )
    # Measure once the model is loaded (and the long-lived objects are frozen for the collector).
    end = time.monotonic() + 60
    while model not in ready and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)
    while not in_process and not win.playback.player.ready and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)
    # One short take first, not measured: the first inference, the player's first notes and the
    # first paint of a take are warm-up costs that neither variant should be charged for.
    win.panel.bars.setValue(1)
    win.act_continue.trigger()
    heartbeat_gaps(app, 60.0, until=lambda: not win.gen.running and not win.playback.playing)
    win.act_stop.trigger()
    win.panel.bars.setValue(bars)
    idle = heartbeat_gaps(app, 2.0)
    if in_process:
        win.playback.scheduler.timing = []  # record (deadline, send time) of every event from now on
    win.act_continue.trigger()
    busy = heartbeat_gaps(app, 120.0, until=lambda: not win.gen.running and not win.playback.playing)
    take = win.gen.current_take()
    n = len(take.notes) if take else 0
    out_name = win.playback.output_name
    where = "scheduler thread in the UI process" if in_process else "player process"
    print(f"stall during Continue + playback, {where} ({model}, {bars} bars, {n} notes, output {out_name}):")
    print(f"  first note sent {win.takes.last_first_note_ms or float('nan'):.1f} ms after the key press")
    for label, gaps in (("idle heartbeat:     ", idle), ("streaming heartbeat:", busy)):
        p99 = statistics.quantiles(gaps, n=100)[98]
        print(f"  {label} longest gap {max(gaps):6.2f} ms  (p99 {p99:.2f} ms, {len(gaps)} beats)")
    print(f"  goal: longest stall while streaming <= 16 ms: {'met' if max(busy) <= 16 else 'NOT met'}")
    timing = list(win.playback.scheduler.timing or [])  # a PlayerProcess has them once finished
    if timing:
        late = sorted((sent - deadline) * 1000 for deadline, sent in timing)
        p99 = late[min(len(late) - 1, int(len(late) * 0.99))]
        med = statistics.median(late)
        print(f"  MIDI events sent meanwhile: {len(late)}, late by median {med:.2f} ms, p99 {p99:.2f} ms")
    if in_process:
        win.playback.scheduler.timing = None
    # Esc while a long take streams and sounds: time until generation and every note have stopped.
    escs = []
    for _ in range(5):
        win.panel.bars.setValue(32)
        win.act_continue.trigger()
        heartbeat_gaps(app, 30.0, until=lambda: len(win.canvas.take_notes) >= 3)
        heartbeat_gaps(app, 0.3)
        t0 = time.perf_counter()
        win.act_stop.trigger()
        silent = not win.gen.running and not win.playback.playing
        if in_process:
            silent = silent and not win.playback.scheduler.sounding
        escs.append((time.perf_counter() - t0) * 1000)
        if not silent:
            print("  Esc left something running or sounding!")
    print(f"  Esc -> generation cancelled and all notes off: {stats(escs)} (goal <= 50 ms)")
    win.shutdown()
    win.close()
    if output is not None:
        output.close()
    if jackd is not None:
        jackd.terminate()
        jackd.wait(timeout=10)


def start_xvfb() -> tuple[Any, str] | None:
    """A private X server (Xvfb) on a free display, or None when Xvfb or xdotool is missing."""
    import shutil
    import subprocess

    xvfb = shutil.which("Xvfb")
    if xvfb is None or shutil.which("xdotool") is None:
        return None
    for n in range(90, 140):
        if Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
            continue
        proc = subprocess.Popen(
            [xvfb, f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        end = time.monotonic() + 10
        while time.monotonic() < end and proc.poll() is None:
            if Path(f"/tmp/.X11-unix/X{n}").exists():
                return proc, f":{n}"
            time.sleep(0.05)
        proc.terminate()
    return None


class KeyPresser:
    """One ``xdotool -`` process reading commands line by line: a press costs a pipe write and
    xdotool's XTEST call, not a process start (60-120 ms on a loaded machine)."""

    def __init__(self) -> None:
        import subprocess

        self.proc = subprocess.Popen(["xdotool", "-"], stdin=subprocess.PIPE, text=True)

    def command(self, line: str) -> float:
        """Send one xdotool command; the ``time.perf_counter()`` just before it was written."""
        assert self.proc.stdin is not None
        t = time.perf_counter()
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return t

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=5)


def pct(xs: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``xs``, nearest rank."""
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, round(q * (len(ys) - 1))))]


def press_to_sound(app: QApplication, runs: int, readme: bool, verbose: bool = False) -> int:
    """Ctrl+Return typed into the real window -> first note-on at a JACK port (see the docstring)."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from jack_support import Receiver, private_jack

    from musicgen_app.core.autosave import AutosaveStore
    from musicgen_app.gui.main_window import MainWindow
    from musicgen_app.gui.settings import AppSettings
    from musicgen_app.ml.registry import list_models

    models = [m.name for m in list_models()]
    if "melody-lstm" not in models:
        print("press to sound: no melody-lstm in models/; skipped")
        return 1
    spt = 0.5 / 480  # seconds per tick at the sketch's 120 BPM
    pitches = [60, 62, 64, 65, 67, 65, 64, 62]
    sketch = Song(tracks=[Track(notes=[Note(i * 480, p, i * 480 + 440, 90) for i, p in enumerate(pitches)])])
    rows: dict[int, dict[str, list[float]]] = {}
    gc_pauses: list[tuple[int, float]] = []  # (generation, ms) of collections over 5 ms (--verbose)
    if verbose:
        import gc

        gc_start = [0.0]

        def gc_watch(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_start[0] = time.perf_counter()
            elif (ms := (time.perf_counter() - gc_start[0]) * 1000) > 5:
                gc_pauses.append((info["generation"], ms))

        gc.callbacks.append(gc_watch)
    with private_jack("bench-press", period=32) as env:
        if env is None:
            print("press to sound: jackd did not start; skipped")
            return 1
        os.environ.update(env)
        rx = Receiver()
        presser = KeyPresser()
        settings = AppSettings()
        settings.output = rx.port
        win = MainWindow(
            settings=settings, autosave_store=AutosaveStore(tempfile.mkdtemp()), open_output=False
        )
        win.playback.record_timing = True  # the player keeps (deadline, sent) of every event
        win.playback.open_output(settings)
        win.resize(WIDTH, HEIGHT)
        win.show()

        def spin(seconds: float, until: Any = None) -> bool:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if until is not None and until():
                    return True
                app.processEvents()
                time.sleep(0.001)
            return until is not None and until()

        spin(60, lambda: win.playback.player is not None and win.playback.player.ready)
        spin(30, lambda: win.panel.model_combo.count() > 0)
        win.panel.model_combo.setCurrentIndex(win.panel.model_combo.findData("melody-lstm"))
        win.set_document(Document(sketch))
        win.panel.bars.setValue(1)
        win.gen.models.get("melody-lstm")
        spin(1.0)
        realtime = bool(win.playback.player is not None and win.playback.player.realtime)
        ui_marks: dict[str, float] = {}
        if verbose:  # when the UI thread handed the take to the player (to place a stall)

            def marked(name: str, fn: Any) -> Any:
                def call(*a: Any, **k: Any) -> Any:
                    out = fn(*a, **k)
                    ui_marks[name] = time.perf_counter()
                    return out

                return call

            win.playback.play_stream = marked("play_stream", win.playback.play_stream)
            win.playback.append = marked("append", win.playback.append)
        win.activateWindow()
        presser.command(f"windowfocus --sync {int(win.winId())}")
        spin(0.5)
        for lead in (0, 1):
            win.set_lead_in(lead)
            keys = ("sound", "key_app", "app_sent", "sent_port", "late1", "late", "sent_late")
            r: dict[str, list[float]] = {k: [] for k in keys}
            prepared = 0
            for _ in range(runs + 1):  # the first run warms up and is not counted
                was_prepared = spin(10, lambda: win.gen.prepared_key is not None)
                prepared += was_prepared
                spin(0.3)
                n0 = len(rx.messages)
                t_key = presser.command("key --delay 0 ctrl+Return")
                spin(10, lambda: win.gen.running or win.playback.playing)
                spin(30, lambda: not win.gen.running and not win.playback.playing)
                spin(0.1)
                take = win.gen.current_take()
                ons = [(t, d[1]) for t, d in rx.messages[n0:] if d[0] & 0xF0 == 0x90 and d[2] > 0]
                if take is None or not take.notes or not ons:
                    print(f"  lead-in {lead}: a run without notes at the port; skipped")
                    continue
                notes = sorted(take.notes)
                start = win.gen.request.start_tick if win.gen.request else notes[0].start_tick
                # a take may open with a rest: its first note is due that much after the press
                rest = 0.0 if lead else (notes[0].start_tick - start) * spt
                r["sound"].append((ons[0][0] - t_key - rest) * 1000)
                pressed = win.takes.last_press_time
                if pressed is not None and pressed > t_key:
                    r["key_app"].append((pressed - t_key) * 1000)
                sent = win.playback.scheduler.first_streamed_note_time  # the player's clock
                if not lead and pressed is not None and sent is not None:  # the first note is the take's
                    r["app_sent"].append((sent - pressed - rest) * 1000)
                    r["sent_port"].append((ons[0][0] - sent) * 1000)
                if lead:  # each continuation note against its place after the first lead-in note
                    first_lead = min(
                        n.start_tick for n in sketch.tracks[0].notes if n.start_tick >= start - 1920
                    )
                    cont = ons[-len(notes) :]
                    late = [
                        (t - (ons[0][0] + (n.start_tick - first_lead) * spt)) * 1000
                        for (t, _), n in zip(cont, notes, strict=True)
                    ]
                    r["late1"].append(late[0])
                    r["late"].append(max(late))
                    timing = win.playback.scheduler.timing or []  # this run's, once it finished
                    cont_due = timing[0][0] + 1920 * spt - 0.001 if timing else 0.0  # the take's start
                    cont_late = [sent - due for due, sent in timing if due >= cont_due]
                    if cont_late:
                        r["sent_late"].append(max(cont_late) * 1000)
                if verbose:
                    parts = [f"{k} {v[-1]:.1f}" for k, v in r.items() if v]
                    if gc_pauses:
                        print(f"  garbage collections over 5 ms: {gc_pauses}")
                        gc_pauses.clear()
                    if pressed is not None:
                        marks = ", ".join(f"{k} +{(v - pressed) * 1000:.1f}" for k, v in ui_marks.items())
                        print(f"  UI thread after the press: {marks}; opening rest {rest * 1000:.0f} ms")
                    head = f"  lead-in {lead} run {len(r['sound'])}: prepared {was_prepared} "
                    print(head + ", ".join(parts))
            for k in r:
                r[k] = r[k][1:] if len(r[k]) > runs else r[k]
            rows[lead] = r
            n = len(r["sound"])
            print(f"lead-in {lead} bar(s): {n} runs, {min(prepared, runs + 1)} with the take prepared")
        win.shutdown()
        win.close()
        presser.close()
        rx.close()
    load = os.getloadavg()[0]
    lines = [
        "| lead-in | runs | key press → first note-on at the port (less the take's opening rest), median |"
        " p95 | key → app |"
        " app → player sends it | player → port | first continuation note late, median | max |"
        " any continuation note late, max | continuation sent late by the player, max |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lead, r in rows.items():
        med = statistics.median
        cells = [
            "none" if lead == 0 else "1 bar",
            str(len(r["sound"])),
            f"{med(r['sound']):.1f} ms",
            f"{pct(r['sound'], 0.95):.1f} ms",
            f"{med(r['key_app']):.1f} ms" if r["key_app"] else "–",
            f"{med(r['app_sent']):.1f} ms" if r["app_sent"] else "–",
            f"{med(r['sent_port']):.1f} ms" if r["sent_port"] else "–",
        ]
        if lead:
            cells += [f"{med(r['late1']):.2f} ms", f"{max(r['late1']):.2f} ms", f"{max(r['late']):.2f} ms"]
            sent_late = f"{max(r['sent_late']):.2f} ms" if r["sent_late"] else "–"
            cells.append(sent_late)
        else:
            cells += ["–", "–", "–", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    cpu = platform.processor() or platform.machine()
    head = (
        f"`benchmarks/bench_gui.py --press --runs {runs}` ({cpu}, {os.cpu_count()} cores, load average "
        f"{load:.1f}; Xvfb, xdotool, JACK dummy backend at 48 kHz with 32-frame periods; the player's"
        f" timing thread {'with' if realtime else 'without'} real-time priority). Medians over the runs; "
        "lateness counted at the port from the first lead-in note (JACK delivers on 0.67 ms cycles; the "
        "receiver stamps a lone message when it polls, so a late poll reads as a late note), and as the "
        "player sent each event against its deadline:"
    )
    print(head)
    print("\n".join(lines))
    if readme:
        from readme_block import write_block

        write_block(
            "bench-press-to-sound", head + "\n\n" + "\n".join(lines), after="## Playback, devices and timing"
        )
        print("README.md: bench-press-to-sound written")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notes", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--bars", type=int, default=8, help="bars to continue in the stall benchmark")
    ap.add_argument("--no-stall", action="store_true")
    ap.add_argument("--press", action="store_true", help="only the press-to-sound benchmark (Xvfb, xdotool)")
    ap.add_argument("--runs", type=int, default=20, help="press-to-sound runs per lead-in")
    ap.add_argument("--readme", action="store_true", help="write the press-to-sound table into README.md")
    ap.add_argument("--verbose", action="store_true", help="print every press-to-sound run's figures")
    args = ap.parse_args()
    if args.press:
        xvfb = start_xvfb()
        if xvfb is None:
            print("press to sound needs Xvfb and xdotool (apt packages xvfb, xdotool)")
            return 1
        os.environ.update(DISPLAY=xvfb[1], QT_QPA_PLATFORM="xcb")
        try:
            return press_to_sound(QApplication([]), args.runs, args.readme, args.verbose)
        finally:
            xvfb[0].terminate()
    app = QApplication.instance() or QApplication([])
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:
        threads = 0
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, torch threads {threads}, load {os.getloadavg()[0]:.1f}")
    print(f"Qt {QApplication.platformName()} platform, Python {platform.python_version()}")
    song = big_song(args.notes)
    doc = Document(song)
    roll = PianoRollView(doc)
    roll.resize(WIDTH, HEIGHT)
    roll.show()
    app.processEvents()
    size = f"{roll.canvas.width()}x{roll.canvas.height()}"
    print(f"piano roll {size} px, {args.notes} notes, {args.repeats} paints each")
    worst = worst_cpu = 0.0
    for label, setup in (
        ("zoomed in (8 bars)", lambda: roll.show_bars(len(song.bar_starts(song.end_tick)) // 2, 8)),
        ("zoomed out (all)", roll.fit_song),
    ):
        setup()
        app.processEvents()
        cold, cold_cpu = paint_times(roll, args.repeats, cold=True)
        visible = roll.canvas.last_paint_visible
        warm, warm_cpu = paint_times(roll, args.repeats, cold=False)
        worst = max(worst, max(cold), max(warm))
        worst_cpu = max(worst_cpu, max(cold_cpu), max(warm_cpu))
        print(f"  {label}, {visible} notes visible")
        print(f"    full repaint   wall {stats(cold)}   cpu {stats(cold_cpu)}")
        print(f"    playhead only  wall {stats(warm)}   cpu {stats(warm_cpu)}")
    naive = naive_paint_ms(song, max(5, args.repeats // 4))
    print(f"  baseline: plain drawRect loop over {args.notes} notes, wall {stats(naive)}")
    ratio = statistics.median(naive) / max(1e-6, statistics.median(cold))
    print(f"  zoomed-out repaint vs baseline: {ratio:.1f}x faster (medians)")
    verdict = "met" if worst <= 8 else ("met in CPU time" if worst_cpu <= 8 else "NOT met")
    print(f"  goal: every paint <= 8 ms: {verdict} (worst wall {worst:.2f} ms, worst cpu {worst_cpu:.2f} ms)")
    if not args.no_stall:
        stall_benchmark(app, args.bars, in_process=False)  # as the app runs
        stall_benchmark(app, args.bars, in_process=True)  # the baseline: a scheduler thread here
    return 0


if __name__ == "__main__":
    sys.exit(main())
