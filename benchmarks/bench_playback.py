"""Playback timing: send-time error alone and while a model generates; the same at a JACK loopback
receiver; time to the first streamed note-on against generating everything first.

    .venv/bin/python benchmarks/bench_playback.py [--seconds 4] [--no-jack]

Prints machine facts and figures (p50 / p99 / max in ms). Goals: p99 <= 1 ms at send while a
model generates; the first note <= 20 ms after the seed is loaded. Baselines are measured in the
same run: the scheduler with the interpreter's default 5 ms switch interval beside a plain Python
thread, and "generate everything, then play".

The model is the best shipped one (musicgen_app.ml.registry), else the melody LSTM architecture
with untrained weights (same compute per step), else a bare torch LSTM loop.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicgen_app.core.song import Note, Song, Track
from musicgen_app.playback.outputs import MidiPortOutput, NullOutput, Output
from musicgen_app.playback.player_process import PlayerProcess
from musicgen_app.playback.scheduler import Scheduler

GOAL_SEND_P99_MS = 1.0
GOAL_FIRST_NOTE_MS = 20.0


# -- machine --------------------------------------------------------------------------------------
def machine_facts() -> str:
    import torch

    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"machine: {cpu}; {os.cpu_count()} cores ({affinity} usable), load average {load}\n"
        f"python {platform.python_version()}, {platform.system()} {platform.release()}; "
        f"torch {torch.__version__} with {torch.get_num_threads()} thread(s); "
        f"default switch interval {sys.getswitchinterval() * 1000:.1f} ms"
    )


# -- figures --------------------------------------------------------------------------------------
def stats_ms(errors_s: list[float]) -> tuple[float, float, float]:
    e = np.asarray(errors_s) * 1000.0
    return float(np.percentile(e, 50)), float(np.percentile(e, 99)), float(e.max())


def fmt(name: str, errors_s: list[float]) -> str:
    p50, p99, mx = stats_ms(errors_s)
    worst = int(np.argmax(errors_s))
    return (
        f"  {name:<55} p50 {p50:6.3f}  p99 {p99:7.3f}  max {mx:7.3f} ms "
        f"(n={len(errors_s)}, worst: event {worst})"
    )


def dense_song(seconds: float) -> Song:
    """Notes every 25 ms (at 120 BPM, 480 ticks/quarter: 24 ticks) on two channels."""
    step = 24
    n = int(seconds / 0.025)
    notes_a = [Note(i * step, 60 + i % 12, i * step + 20, 90, 0) for i in range(0, n, 2)]
    notes_b = [Note(i * step, 48 + i % 12, i * step + 20, 90, 1) for i in range(1, n, 2)]
    return Song(tracks=[Track("a", notes=notes_a), Track("b", channel=1, notes=notes_b)])


# -- the model ------------------------------------------------------------------------------------
class ModelRunner:
    """Generates continuations (real ml code when available) on demand."""

    def __init__(self) -> None:
        import torch

        torch.set_num_threads(1)
        self.kind = "torch LSTM loop"
        self.model = None
        self.seed = Song(
            tracks=[
                Track(
                    "melody",
                    notes=[
                        Note(i * 240, 60 + (0, 2, 4, 5, 7, 9, 11, 12)[i % 8], i * 240 + 220)
                        for i in range(32)
                    ],
                )
            ]
        )
        try:
            from musicgen_app.ml import registry

            names = [m.name for m in registry.list_models()]
            name = "melody-lstm" if "melody-lstm" in names else (names[0] if names else None)
            if name:
                self.model = registry.load_model(name)
                self.kind = f"shipped model {name}"
        except Exception as exc:  # the benchmark falls back; the reason is printed
            print(f"(no shipped model: {type(exc).__name__}: {exc})")
        if self.model is None:
            try:
                from musicgen_app.ml.families.melody_lstm import MelodyLSTM, MelodyLSTMConfig, MelodyLSTMModel
                from musicgen_app.ml.tokenizers import GridMelodyTokenizer

                tok = GridMelodyTokenizer()
                net = MelodyLSTM(MelodyLSTMConfig(vocab_size=tok.vocab_size))
                self.model = MelodyLSTMModel("untrained-melody-lstm", {}, tok, net)
                self.kind = "melody LSTM architecture, untrained weights"
            except Exception as exc:
                print(f"(melody LSTM unavailable: {type(exc).__name__}: {exc})")

    def session(self, bars: int = 4, seed: int = 0):
        """A streaming session (or a generator of the same shape for the bare LSTM loop)."""
        if self.model is not None:
            from musicgen_app.ml.generate import SamplingConfig, start_session

            return start_session(self.model, self.seed, 0, bars=bars, sampling=SamplingConfig(seed=seed))
        return self._bare_session(bars)

    def _bare_session(self, bars: int):
        import torch

        from musicgen_app.core.events import NoteEvent, SessionFinished

        lstm = torch.nn.LSTM(128, 256, 2)
        head = torch.nn.Linear(256, 130)
        start = self.seed.end_tick
        state = None
        x = torch.zeros(1, 1, 128)
        with torch.no_grad():
            for k in range(bars * 16):
                y, state = lstm(x, state)
                int(torch.argmax(head(y[0, 0])))
                if k % 2:
                    yield NoteEvent(
                        1, k // 2, Note(start + (k - 1) * 120, 60 + k % 12, start + (k + 1) * 120)
                    )
        yield SessionFinished(1, "done")

    def generate_forever(self, stop: threading.Event, counter: list[int]) -> None:
        i = 0
        while not stop.is_set():
            for _ev in self.session(seed=i):
                if stop.is_set():
                    break
                counter[0] += 1
            i += 1


def python_busy_loop(stop: threading.Event, counter: list[int]) -> None:
    """Plain Python work (no GIL release), like a tokenizer or a Python sampler."""
    x = 0
    while not stop.is_set():
        for k in range(1000):
            x += k * k
        counter[0] += 1


# -- measurements ---------------------------------------------------------------------------------
Background = Callable[[threading.Event, list[int]], None]


def timed_run(
    player: Scheduler | PlayerProcess, song: Song, background: Background | None
) -> tuple[list[float], list, int]:
    """Play ``song`` on ``player`` (a Scheduler or a PlayerProcess) with ``background`` running here.

    Returns the send errors (seconds), the (deadline, sent) pairs and the background's work count.
    """
    stop = threading.Event()
    counter = [0]
    th = None
    if background is not None:
        th = threading.Thread(target=background, args=(stop, counter), daemon=True)
        th.start()
        time.sleep(0.3)
    player.play(song)
    player.wait()
    stop.set()
    if th is not None:
        th.join()
    timing = list(player.timing or [])
    return [sent - dl for dl, sent in timing], timing, counter[0]


def send_errors(
    output: Output,
    song: Song,
    background: Background | None,
    switch_interval_s: float | None,
    realtime: bool = True,
) -> tuple[list[float], list[tuple[float, float]], int]:
    """The scheduler in this process, beside ``background``."""
    rt = 5 if realtime else None
    with Scheduler(
        output, record_timing=True, switch_interval_s=switch_interval_s, realtime_priority=rt
    ) as sched:
        return timed_run(sched, song, background)


def process_send_errors(
    spec: str, song: Song, background: Background | None, keyboard: str | None = None
) -> tuple[list[float], list[tuple[float, float]], int]:
    """The scheduler in a PlayerProcess (its own interpreter lock), ``background`` in this process;
    with ``keyboard``, that MIDI input open in the player (thru on), as when a musician has one."""
    with PlayerProcess(spec, midi_api="jack" if spec != "none" else None, record_timing=True) as player:
        player.wait_ready()
        if keyboard is not None:
            player.open_input(keyboard, midi_api="jack", thru=True)
            time.sleep(0.5)
        time.sleep(0.1)
        return timed_run(player, song, background)


def _receiver_main(conn) -> None:
    """The JACK receiver, in its own process so that the model's Python work here cannot delay it."""
    import rtmidi

    rx = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, "bench-rx")
    rx.ignore_types(sysex=False, timing=False, active_sense=False)
    rx.open_virtual_port("in")
    got: list[tuple[float, list[int]]] = []
    rx.set_callback(lambda ev, _d: got.append((time.perf_counter(), ev[0])))
    conn.send("ready")
    while conn.recv() == "get":
        conn.send(list(got))
    rx.close_port()
    rx.delete()


class JackLoopback:
    """A private JACK server (dummy, 48 kHz, 64 frames) with a receiver port in another process."""

    def __init__(self) -> None:
        import multiprocessing as mp

        self.name = f"musicgen-bench-{os.getpid()}"
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        os.environ["JACK_NO_START_SERVER"] = "1"
        self.proc = subprocess.Popen(
            ["jackd", "-S", "-n", self.name, "-d", "dummy", "-r", "48000", "-p", "64"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from musicgen_app.playback.midi_ports import jack_server_running

        for _ in range(100):
            if jack_server_running():
                break
            time.sleep(0.1)
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._rx = ctx.Process(target=_receiver_main, args=(child,), daemon=True)
        self._rx.start()
        assert self._conn.recv() == "ready"

    @property
    def arrivals(self) -> list[tuple[float, list[int]]]:
        """(perf_counter time, message bytes) of everything received so far."""
        self._conn.send("get")
        return self._conn.recv()

    def output(self) -> MidiPortOutput:
        out = MidiPortOutput("bench-rx:in", api="jack")
        time.sleep(0.1)
        return out

    def close(self) -> None:
        self._conn.send("close")
        self._rx.join(timeout=5)
        self.proc.terminate()
        self.proc.wait(timeout=5)


def arrival_errors(jack: JackLoopback, timing: list[tuple[float, float]], n_before: int) -> list[float]:
    """Arrival minus deadline for every message, matched in order."""
    time.sleep(0.1)
    arrived = [t for t, d in jack.arrivals[n_before:] if d[0] & 0xE0 == 0x80]  # note on/off only
    deadlines = [dl for dl, _ in timing]
    n = min(len(arrived), len(deadlines))
    if len(arrived) != len(deadlines):
        print(f"  (warning: {len(deadlines)} sent, {len(arrived)} arrived: figures unreliable)")
    return [a - d for a, d in zip(arrived[:n], deadlines[:n], strict=True)]


def first_note(runner: ModelRunner, jack: JackLoopback, player: PlayerProcess) -> tuple[float, ...]:
    """Seconds from start to the first note-on at the port, less the rest the music itself puts
    before the first note (the continuation starts on the next 16th after the seed's last note):
    (streamed, streamed to a player process, generate-first, that rest)."""
    from musicgen_app.playback.live import play_session

    seed = runner.seed

    def rest_before(notes: list[Note]) -> float:
        first = min(n.start_tick for n in notes)
        return seed.tick_to_seconds(first) - seed.tick_to_seconds(seed.end_tick)

    def first_on_after(n0: int, t0: float) -> float:
        time.sleep(0.05)
        return next(t for t, d in jack.arrivals[n0:] if d[0] & 0xF0 == 0x90 and d[2] > 0) - t0

    out = jack.output()
    try:
        n0, t0 = len(jack.arrivals), time.perf_counter()
        res = play_session(runner.session(bars=2, seed=1), seed, scheduler=player)
        in_process = first_on_after(n0, t0) - rest_before(res.notes)
        # streamed: what `musicgen continue --play` does
        n0, t0 = len(jack.arrivals), time.perf_counter()
        res = play_session(runner.session(bars=2, seed=1), seed, out)
        rest = rest_before(res.notes)
        streamed = first_on_after(n0, t0) - rest
        # baseline: generate every note, then schedule them
        n0, t0 = len(jack.arrivals), time.perf_counter()
        notes = [ev.note for ev in runner.session(bars=2, seed=1) if hasattr(ev, "note")]
        with Scheduler(out) as sched:
            sched.play(seed, start_tick=seed.end_tick, streaming=True, include_song=False)
            sched.append_notes(notes)
            sched.end_stream()
            sched.wait()
        batch = first_on_after(n0, t0) - rest_before(notes)
    finally:
        out.close()
    return streamed, in_process, batch, rest


def cli_first_note(runner: ModelRunner, jack: JackLoopback) -> None:
    """The whole `musicgen continue --play` command: from launch to the first note-on at the port."""
    import tempfile

    from musicgen_app.core.midi_io import write_midi

    if runner.model is None or not runner.kind.startswith("shipped"):
        print("  (no shipped model: the `musicgen continue --play` command is not timed)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        seed_path = Path(tmp) / "seed.mid"
        write_midi(runner.seed, seed_path)
        name = runner.kind.split()[-1]
        cmd = [
            sys.executable,
            "-m",
            "musicgen_app.cli.main",
            "continue",
            str(seed_path),
            "-o",
            str(Path(tmp) / "o.mid"),
        ]
        cmd += ["--model", name, "--bars", "2", "--seed", "1", "--play", "--device", "bench-rx:in"]
        cmd += ["--midi-api", "jack"]
        n0 = len(jack.arrivals)
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=os.environ)
        ons = [t for t, d in jack.arrivals[n0:] if d[0] & 0xF0 == 0x90 and d[2] > 0]
        if r.returncode != 0 or not ons:
            print(f"  (`musicgen continue --play` failed: {r.stderr.strip()[-200:]})")
            return
        print(
            f"  whole `musicgen continue --play` command, launch to first note-on (Python start-up, imports,"
            f" model and seed loading included): {(ons[0] - t0) * 1000:.0f} ms"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="length of each timing run")
    ap.add_argument("--no-jack", action="store_true", help="skip the JACK loopback measurements")
    args = ap.parse_args()

    print(machine_facts())
    probe = Scheduler(NullOutput())
    time.sleep(0.05)
    print(f"player thread real-time scheduling (SCHED_FIFO): {'yes' if probe.realtime else 'not permitted'}")
    probe.close()
    runner = ModelRunner()
    print(f"model: {runner.kind}")
    for _ev in runner.session(seed=99):  # warm up (imports, first allocations) before timing anything
        pass
    song = dense_song(args.seconds)
    print(
        f"song: {song.note_count} notes every 25 ms "
        f"({2 * song.note_count} events, {song.duration_seconds:.1f} s)"
    )
    gen = runner.generate_forever
    print("\nsend-time error (time the send began minus its deadline), NullOutput:")
    results: dict[str, list[float]] = {}
    for name, bg, sw, rt in (
        ("alone", None, 0.0005, True),
        ("while the model generates (switch 0.5 ms)", gen, 0.0005, True),
        ("beside plain Python (switch 0.5 ms)", python_busy_loop, 0.0005, True),
        ("baseline: alone, no real-time priority", None, 0.0005, False),
        ("baseline: model generates, no real-time priority", gen, 0.0005, False),
        ("baseline: beside plain Python, switch 5 ms", python_busy_loop, None, True),
        ("baseline: model generates, switch 5 ms", gen, None, True),
    ):
        errs, _, count = send_errors(NullOutput(), song, bg, sw, rt)
        results[name] = errs
        extra = f", background did {count} units" if bg is not None else ""
        print(fmt(name, errs) + extra)
    for name, bg in (
        ("player process, alone", None),
        ("player process, while the model generates here", gen),
    ):
        errs, _, count = process_send_errors("none", song, bg)
        results[name] = errs
        extra = f", background did {count} units" if bg is not None else ""
        print(fmt(name, errs) + extra)
    p99_proc = stats_ms(results["player process, while the model generates here"])[1]
    p99_gen = stats_ms(results["while the model generates (switch 0.5 ms)"])[1]
    p99_base = stats_ms(results["baseline: beside plain Python, switch 5 ms"])[1]
    print(
        f"  goal p99 <= {GOAL_SEND_P99_MS} ms while generating: {p99_gen:.3f} ms "
        f"({'met' if p99_gen <= GOAL_SEND_P99_MS else 'NOT met'}); "
        f"plain-Python p99 with the default switch interval is {p99_base / max(p99_gen, 1e-6):.1f}x that"
    )
    print(
        f"  goal p99 <= {GOAL_SEND_P99_MS} ms while generating, player process: {p99_proc:.3f} ms "
        f"({'met' if p99_proc <= GOAL_SEND_P99_MS else 'NOT met'})"
    )

    if args.no_jack or shutil.which("jackd") is None:
        print("\n(JACK measurements skipped)")
        return 0
    jack = JackLoopback()
    try:
        print("\nat a JACK loopback receiver (jackd dummy, 48 kHz, 64-frame periods = 1.33 ms):")
        for name, bg in (("alone", None), ("while the model generates", gen)):
            out = jack.output()
            try:
                n0 = len(jack.arrivals)
                errs_send, timing, _ = send_errors(out, song, bg, 0.0005)
                errs = arrival_errors(jack, timing, n0)
            finally:
                out.close()
            print(fmt(f"arrival, {name}", errs))
            print(fmt(f"send, {name}", errs_send))
        import rtmidi

        keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "bench-keyboard")
        keyboard.open_virtual_port("out")
        for name, bg, kb in (
            ("alone", None, None),
            ("while the model generates here", gen, None),
            ("a MIDI keyboard open, while the model generates here", gen, "bench-keyboard"),
        ):
            n0 = len(jack.arrivals)
            errs_send, timing, _ = process_send_errors("bench-rx:in", song, bg, kb)
            errs = arrival_errors(jack, timing, n0)
            print(fmt(f"arrival, player process, {name}", errs))
            print(fmt(f"send, player process, {name}", errs_send))
        print(
            "\nfirst note-on at the port after the seed and model are loaded (2 bars), "
            "less the rest before the continuation's first note:"
        )
        model_first = []
        for _i in range(5):
            t0 = time.perf_counter()
            for ev in runner.session(bars=2, seed=1):
                if hasattr(ev, "note"):
                    break
            model_first.append(time.perf_counter() - t0)
        print(
            f"  the model alone yields its first note after median {np.median(model_first) * 1000:.2f} ms "
            "(runs: " + ", ".join(f"{x * 1000:.1f}" for x in model_first) + ")"
        )
        streamed_all, proc_all, batch_all = [], [], []
        with PlayerProcess("bench-rx:in", midi_api="jack") as player:  # started before the seed is loaded
            player.wait_ready()
            for _ in range(5):
                s, p, b, rest = first_note(runner, jack, player)
                streamed_all.append(s)
                proc_all.append(p)
                batch_all.append(b)
        s_ms, b_ms = np.median(streamed_all) * 1000, np.median(batch_all) * 1000
        print(f"  (the continuation's first note is {rest * 1000:.1f} ms after the seed's end; subtracted)")
        print(
            f"  streamed (continue --play):   median {s_ms:7.2f} ms  (runs: "
            + ", ".join(f"{x * 1000:.1f}" for x in streamed_all)
            + ")"
        )
        print(
            f"  streamed to a player process: median {np.median(proc_all) * 1000:7.2f} ms  (runs: "
            + ", ".join(f"{x * 1000:.1f}" for x in proc_all)
            + ")"
        )
        print(
            f"  generate everything first:   median {b_ms:7.2f} ms  (runs: "
            + ", ".join(f"{x * 1000:.1f}" for x in batch_all)
            + ")"
        )
        print(
            f"  goal first note <= {GOAL_FIRST_NOTE_MS} ms: {s_ms:.2f} ms "
            f"({'met' if s_ms <= GOAL_FIRST_NOTE_MS else 'NOT met'}); streaming is {b_ms / s_ms:.1f}x sooner"
        )
        cli_first_note(runner, jack)
    finally:
        jack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
