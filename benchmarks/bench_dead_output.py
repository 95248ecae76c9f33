"""How fast a dead output is noticed: a private JACK server killed (SIGKILL) under playback.

* the JACK watcher alone: SIGKILL to the subscriber's call, in this process;
* ``musicgen play`` through FluidSynth on JACK and through a virtual JACK MIDI port, and
  ``musicgen continue --play`` (virtual port): SIGKILL to the command's exit (status 2 expected).

After each kill the server is started again under its name (a killed ``jackd`` keeps its slot in
JACK's shared registry until a server of the same name takes it), and ended cleanly at the end.

Run: ``.venv/bin/python benchmarks/bench_dead_output.py [--rounds 5] [--readme]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Server:
    """``jackd -S -d dummy`` under a unique name, killable and restartable."""

    def __init__(self) -> None:
        self.name = f"musicgen-bench-dead-{os.getpid()}"
        self.env = {
            "JACK_DEFAULT_SERVER": self.name,
            "JACK_NO_START_SERVER": "1",
            "JACK_NO_AUDIO_RESERVATION": "1",
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["jackd", "-S", "-n", self.name, "-d", "dummy", "-r", "48000", "-p", "64"],
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        subprocess.run(["jack_wait", "-s", self.name, "-w", "-t", "10"], capture_output=True)
        if self.proc.poll() is not None:
            raise SystemExit("jackd did not start (install jackd2)")

    def kill(self) -> float:
        assert self.proc is not None
        when = time.perf_counter()
        self.proc.kill()
        self.proc.wait()
        return when

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _song(path: Path) -> None:
    from musicgen_app.core.midi_io import write_midi
    from musicgen_app.core.song import Note, Song, Track

    r = 480
    notes = [Note(i * r, 60 + (i * 5) % 12, (i + 1) * r - 20, 90) for i in range(40)]
    write_midi(Song(resolution=r, tracks=[Track("melody", notes=notes)]), path)


def _command_exit_ms(server: Server, args: list[str], wait_s: float) -> tuple[float, int]:
    """Start the command, kill the server ``wait_s`` s after it printed its first line (or, for a
    silent command, after it started), return (ms from the kill to the exit, exit status)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicgen_app.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **server.env, "PYTHONUNBUFFERED": "1"},
    )
    if args[0] == "play":
        assert proc.stdout is not None
        proc.stdout.readline()
    time.sleep(wait_s)
    killed = server.kill()
    code = proc.wait(timeout=30)
    took = (time.perf_counter() - killed) * 1000
    server.start()
    return took, code


def _watch_ms(server: Server) -> float:
    from musicgen_app.playback.jack_watch import watch

    told: list[float] = []
    sub = watch(lambda reason, when: told.append(time.perf_counter()))
    killed = server.kill()
    end = time.monotonic() + 5
    while not told and time.monotonic() < end:
        time.sleep(0.001)
    sub.cancel()
    server.start()
    return (told[0] - killed) * 1000 if told else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()
    if shutil.which("jackd") is None:
        raise SystemExit("jackd is not installed")
    work = Path(tempfile.mkdtemp(prefix="bench-dead-"))
    song, seed = work / "long.mid", work / "seed.mid"
    _song(song)
    _song(seed)
    server = Server()
    os.environ.update(server.env)
    rows: list[tuple[str, list[float], list[int]]] = []
    server.start()
    try:
        rows.append(
            (
                "JACK watcher, in-process: kill to the call",
                [_watch_ms(server) for _ in range(args.rounds)],
                [],
            )
        )
        cases = [
            ("`play`, FluidSynth on JACK: kill to exit", ["play", str(song), "--audio-driver", "jack"], 0.8),
            ("`play`, virtual JACK port: kill to exit", ["play", str(song), "--device", "virtual"], 0.8),
            (
                "`continue --play`, virtual port: kill to exit",
                [
                    "continue",
                    str(seed),
                    "-o",
                    str(work / "o.mid"),
                    "--bars",
                    "16",
                    "--play",
                    "--device",
                    "virtual",
                ],
                9.0,  # torch, the model, the player process; then a few notes
            ),
        ]
        for label, cmd, wait_s in cases:
            times, codes = [], []
            for _ in range(args.rounds if cmd[0] == "play" else max(1, args.rounds // 2)):
                took, code = _command_exit_ms(server, cmd, wait_s)
                times.append(took)
                codes.append(code)
            rows.append((label, times, codes))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    lines = [
        f"Dead output, {args.rounds} rounds (load average {load:.1f} on {os.cpu_count()} cores), ms:",
        "",
        "| after SIGKILL of jackd | median | max | exit status |",
        "|---|---|---|---|",
    ]
    for label, times, codes in rows:
        status = ", ".join(sorted({str(c) for c in codes})) if codes else "–"
        lines.append(f"| {label} | {statistics.median(times):.0f} | {max(times):.0f} | {status} |")
    print("\n".join(lines))
    if args.readme:
        from readme_block import write_block

        cmd = "benchmarks/bench_dead_output.py " + " ".join(sys.argv[1:])
        write_block("bench-dead-output", f"`{cmd.strip()}`:\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
