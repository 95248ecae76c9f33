"""A musician's working session in the real ``musicgen gui`` process, timed.

The session of tests/gui/test_session.py (tests/session_driver.py drives both): on a private Xvfb
screen, with real mouse and key events from xdotool, a 4-bar tune (and a note in each of 15 slots
of bars 5-8) gets 200 edits (delete, draw, move, resize, velocity; Ctrl+S after each), runs of 5
undos and 5 redos, 10 Continue cycles (accept, reject, Again + accept, play, and two takes left
pending), Settings ▸ Devices ▸ OK, save, quit, open again (the pending takes come back) and 10
more edits.

Printed: per phase, the latency p50 / p99 / max in ms (an edit: from the mouse release, or the
key, to the saved file holding exactly the notes the gesture should give); the edit latency of
the first 20 edits against the last 20 of the same process (the baseline is the session's own
start: the ratio is what must stay near 1); the gui process's peak memory (VmHWM).

With ``--cowrite`` it times the co-writing session of tests/gui/test_cowrite_session.py instead
(tests/cowrite_driver.py): a multi-track MIDI file from another program opened and saved as a
project, then ``--cycles`` (default 8) cycles of Accompany (with a Ctrl+S pressed while the take
is written and streamed), Fill of two bars, a typed chord and undo/redo runs, each step's saved
project read back and checked; Export MIDI; quit and open again. Printed: the phases, the
Accompany key -> take times of the first three cycles against the last three, the Ctrl+S ->
saved file times while a take streams, the peak memory.

With ``--jam`` it times the jam session of tests/gui/test_jam_session.py instead
(tests/jam_driver.py): on a private JACK server, ``--cycles`` (default 12) phrases played on a
keyboard port and answered by melody-lstm at the app's output port, every third answer cut short
by the next phrase, each exchange saved and checked, every exchange undone and redone. Printed:
last key up -> first answer note heard, interrupting key -> the model silent at the port, the
recorded rhythm against the played one, the peak memory.

Run: ``.venv/bin/python benchmarks/bench_session.py [--edits 200] [--cycles 10] [--cowrite | --jam]
[--keep DIR]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cowrite_driver import CowriteResult, CowriteSession  # noqa: E402
from jam_driver import JamResult, JamSession, NoJackError, jam_figures  # noqa: E402
from session_driver import NoXServerError, Session, SessionResult, quantile, summary, xvfb_display  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edits", type=int, default=200, help="mouse edits in the first process")
    ap.add_argument("--cycles", type=int, default=None, help="Continue cycles (10); co-writing cycles (8)")
    ap.add_argument("--cowrite", action="store_true", help="the co-writing session (Accompany, Fill, chords)")
    ap.add_argument("--jam", action="store_true", help="the jam session (call and response on JACK ports)")
    ap.add_argument("--after-reopen", type=int, default=10, help="edits after the project is opened again")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (logs, the project)")
    ap.add_argument("--readme", action="store_true", help="write the figures into README.md")
    args = ap.parse_args()

    from musicgen_app.ml.registry import list_models

    if not list_models():
        print("no trained model in models/: train one with `musicgen train melody-lstm`", file=sys.stderr)
        return 2
    out: list[str] = []

    def say(line: str) -> None:
        print(line)
        out.append(line)

    load = os.getloadavg()[0]
    print(f"bench_session: {platform.machine()}, {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory(prefix="bench-session-") as tmp:
        work = args.keep or Path(tmp)
        try:
            with xvfb_display() as display:
                result: SessionResult
                if args.cowrite:
                    result = CowriteSession(work / "cowrite", display, cycles=args.cycles or 8).run()
                elif args.jam:
                    result = JamSession(work / "jam", display, exchanges=args.cycles or 12).run()
                else:
                    result = Session(
                        work / "session",
                        display,
                        edits=args.edits,
                        cycles=args.cycles or 10,
                        edits_after_reopen=args.after_reopen,
                        progress=lambda msg: print(f"  … {msg}", flush=True),
                    ).run()
        except (NoXServerError, NoJackError) as exc:
            print(exc, file=sys.stderr)
            return 2
    say(summary(result))
    if isinstance(result, CowriteResult):
        takes, saves = result.accompany_takes, [1000 * x for x in result.saves_while_streaming]
        say(f"opened: {result.source}; {result.checks} saved projects read back and checked")
        say(
            f"Accompany key -> take, first 3 cycles p50 {1000 * statistics.median(takes[:3]):.0f} ms, "
            f"last 3 p50 {1000 * statistics.median(takes[-3:]):.0f} ms "
            f"(ratio {statistics.median(takes[-3:]) / statistics.median(takes[:3]):.2f})"
        )
        p50, worst = statistics.median(saves), max(saves)
        say(f"Ctrl+S -> saved while a take streams: p50 {p50:.0f} ms, max {worst:.0f} ms")
        say(
            f"accepted: {result.accompaniments_accepted} accompaniments, {result.fills_accepted} fills; "
            f"{result.chords_typed} chords typed; exported {result.exported_tracks} tracks"
        )
    if isinstance(result, JamResult):
        for line in jam_figures(result):
            say(line)
    e = result.edit_latencies
    if len(e) >= 40:
        first, last = statistics.median(e[:20]), statistics.median(e[-20:])
        say(
            f"ratio last 20 / first 20: p50 {last / first:.2f}, "
            f"p99 {quantile(e[-20:], 0.99) / quantile(e[:20], 0.99):.2f}"
        )
    if result.rss_samples_mb:
        rss = result.rss_samples_mb
        say(f"RSS while editing: first sample {rss[0]:.0f} MiB, last {rss[-1]:.0f} MiB")
    if not isinstance(result, JamResult):
        say(f"takes restored on reopening: {result.restored_takes}")
    problems = [t for t in ("Traceback", "internal error") if t in result.stderr + result.log]
    say("tracebacks / internal errors: " + (", ".join(problems) if problems else "none"))
    if args.readme:
        from readme_block import write_block

        cmd = "benchmarks/bench_session.py " + " ".join(a for a in sys.argv[1:] if a != "--readme")
        head = (
            f"`{cmd.strip()}` on {platform.machine()}, {os.cpu_count()} cores, load {load:.1f} at the start, "
            f"{time.strftime('%Y-%m-%d')}:"
        )
        write_block(
            "bench-cowrite" if args.cowrite else "bench-jam" if args.jam else "bench-session",
            head + "\n\n```\n" + "\n".join(out) + "\n```",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
