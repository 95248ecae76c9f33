"""`musicgen jam --input PORT --output PORT|fluidsynth --model M [--bars N] [--silence-ms 600] [--metronome]`.

Call and response with a MIDI keyboard (see :mod:`musicgen_app.playback.jam`): play a phrase,
pause, and the model answers in its key and at ``--tempo`` for ``--bars`` bars, streamed to the
output; playing again interrupts the answer. With ``--metronome`` a click sounds every beat
(``--beats`` a bar) for the whole jam, you play to it, and each answer starts at the next bar line
after a beat of quiet. Ctrl+C ends the jam; with ``-o OUT.mid`` both parts are written, the player
on track 1 and the model on track 2.
"""

from __future__ import annotations

import argparse
import logging
import random
import threading

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen jam` (each checked by its parser, see ``cli.argtypes``)."""
    from musicgen_app.cli import argtypes as at
    from musicgen_app.playback.jam import DEFAULT_SILENCE_MS, SILENCE_MS_RANGE
    from musicgen_app.playback.midi_ports import API_NAMES

    parser.add_argument(
        "--input",
        required=True,
        metavar="PORT",
        type=at.non_empty("the input port"),
        help="the MIDI keyboard",
    )
    parser.add_argument(
        "--output",
        default="fluidsynth",
        metavar="PORT|fluidsynth",
        type=at.non_empty("the output"),
        help="where the answers (and the keyboard) sound: a MIDI output port, or fluidsynth (default)",
    )
    parser.add_argument("--model", default="melody-lstm", type=at.model_name, help="the model that answers")
    parser.add_argument("--bars", type=at.positive_int(16), default=2, help="bars of each answer, 1 to 16")
    parser.add_argument(
        "--silence-ms",
        type=at.finite_float(*SILENCE_MS_RANGE),
        default=float(DEFAULT_SILENCE_MS),
        help="a pause this long (ms) ends a phrase (50 to 10000; default 600)",
    )
    parser.add_argument(
        "--tempo",
        type=at.finite_float(20.0, 400.0),
        default=120.0,
        help="the answers' tempo in BPM (default 120)",
    )
    parser.add_argument(
        "--metronome",
        action="store_true",
        help="click every beat (GM drums); answers start at the next bar line after a beat of quiet",
    )
    parser.add_argument(
        "--beats",
        type=at.positive_int(16),
        default=4,
        help="with --metronome: beats (quarters) a bar, 1 to 16",
    )
    at.add_temperature_and_seed(parser, "random seed of the first answer")
    parser.add_argument(
        "--exchanges", type=at.positive_int(10_000), default=None, help="stop after N answers"
    )
    parser.add_argument(
        "-o",
        "--record",
        metavar="OUT.mid",
        default=None,
        type=at.output_file(at.MIDI_SUFFIXES, "MIDI file"),
        help="write both parts here at the end (player: track 1, model: track 2)",
    )
    parser.add_argument(
        "--soundfont",
        default=None,
        metavar="FILE",
        type=at.input_file(what="SoundFont"),
        help="for fluidsynth",
    )
    parser.add_argument("--midi-api", default=None, choices=API_NAMES, help="the MIDI system")


def _open_keyboard(player, port: str, midi_api: str | None) -> None:
    """Open the keyboard in the player; DeviceError (one line) when it cannot be opened."""
    import queue
    import time

    from musicgen_app.errors import DeviceError
    from musicgen_app.playback.player_process import InputReport

    player.open_input(port, midi_api=midi_api, thru=True)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        try:
            report = player.status.get(timeout=0.1)
        except queue.Empty:
            continue
        if isinstance(report, InputReport) and report.kind == "opened":
            return
        if isinstance(report, InputReport) and report.kind == "failed":
            raise DeviceError(f"cannot open the MIDI keyboard '{port}': {report.message}")
    raise DeviceError(f"the MIDI keyboard '{port}' did not open in time")


def run(args: argparse.Namespace) -> int:
    """Open the output and the keyboard, load the model, jam until Ctrl+C (or --exchanges)."""
    from musicgen_app.core.midi_io import write_midi
    from musicgen_app.playback.jam import Jam, JamConfig, percentile, timing_errors_ms
    from musicgen_app.playback.player_process import PlayerProcess

    player = PlayerProcess(args.output, soundfont=args.soundfont, midi_api=args.midi_api, record_timing=True)
    stop = threading.Event()
    try:
        player.wait_ready()
        _open_keyboard(player, args.input, args.midi_api)
        from musicgen_app.ml.generate import SamplingConfig, start_session
        from musicgen_app.ml.registry import load_model

        model = load_model(args.model)
        seeds = iter(range(args.seed if args.seed is not None else random.randrange(2**31), 2**63))

        def make_session(song, start_tick: int, bars: int):
            sampling = SamplingConfig(temperature=args.temperature, seed=next(seeds))
            return start_session(model, song, 0, start_tick=start_tick, bars=bars, sampling=sampling)

        jam = Jam(
            player,
            make_session,
            JamConfig(
                bars=args.bars,
                silence_ms=args.silence_ms,
                bpm=args.tempo,
                metronome=args.metronome,
                beats_per_bar=args.beats,
            ),
            on_exchange=lambda ex: print(
                f"answered with {len(ex.answer)} notes" + (" (interrupted)" if ex.interrupted else ""),
                flush=True,
            ),
        )
        jam.warm_up()
        to = " to the click" if args.metronome else ""
        print(f"listening on {args.input}; play a phrase{to} and pause (Ctrl+C ends)", flush=True)
        try:
            jam.run(stop, max_exchanges=args.exchanges)
        except KeyboardInterrupt:
            stop.set()
    finally:
        player.close()
    errors = timing_errors_ms(jam.exchanges)
    if errors:
        print(f"{len(jam.exchanges)} answers; timing error p50 {percentile(errors, 50):.2f} ms, "
              f"p99 {percentile(errors, 99):.2f} ms")  # fmt: skip
    if args.record:
        write_midi(jam.recorded(), args.record)
        print(f"wrote {args.record}")
    return 0
