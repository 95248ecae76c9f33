"""`musicgen continue SEED.mid -o OUT.mid --model NAME [...]`: continue a seed with a model.

The output is the seed (its tempo, meter, programs and every track) followed by ``--bars`` bars
of continuation on the seed's melody track, starting after the seed's last note on the 16th grid.
With ``--variations V`` (V > 1) it writes ``OUT-1.mid`` ... ``OUT-V.mid`` (seeds S, S+1, ...).
With ``--play`` each take is heard live while it is generated (FluidSynth or a MIDI port).
"""

from __future__ import annotations

import argparse
import logging
import random
from dataclasses import replace
from pathlib import Path

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen continue`."""
    parser.add_argument("seed_file", metavar="SEED.mid", help="the MIDI file to continue")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.mid", help="where to write the result")
    parser.add_argument("--model", default="melody-lstm", help="model name (see `musicgen models`)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    parser.add_argument("--bars", type=int, default=4, help="bars to add (default 4)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (same seed, same file)")
    parser.add_argument(
        "--key",
        default="auto",
        help="key lock: auto (from the seed), a key such as 'D dorian' or 'F#m', or off",
    )
    parser.add_argument("--variations", type=int, default=1, help="write V takes: OUT-1.mid .. OUT-V.mid")
    parser.add_argument(
        "--track", type=int, default=None, help="track to continue (1-based; default: melody)"
    )
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest tokens (0: all)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1.0: off)")
    parser.add_argument("--entropy-temperature", action="store_true", help="paper 003's entropy scaling")
    parser.add_argument("--play", action="store_true", help="hear each take while it is generated")
    parser.add_argument("--output-device", "--play-output", dest="play_output", default="fluidsynth",
                        help="with --play: 'fluidsynth' or a MIDI output port name")  # fmt: skip
    parser.add_argument("--soundfont", default=None, help="with --play: SoundFont for FluidSynth")
    parser.add_argument("--midi-api", default=None, choices=("alsa", "jack"), help="with --play: MIDI API")


def _melody_track(song, requested: int | None) -> int:
    from musicgen_app.errors import GenerationError

    if requested is not None:
        if not 1 <= requested <= len(song.tracks):
            raise GenerationError(f"the seed has no track {requested} (it has {len(song.tracks)})")
        if not song.tracks[requested - 1].notes:
            raise GenerationError(f"track {requested} of the seed has no notes to continue")
        return requested - 1
    candidates = [i for i, t in enumerate(song.tracks) if t.notes and not t.is_drum]
    if not candidates:
        raise GenerationError("the seed has no notes to continue")
    # the melody: the track whose notes are highest on average
    return max(
        candidates, key=lambda i: sum(n.pitch for n in song.tracks[i].notes) / len(song.tracks[i].notes)
    )


def output_paths(output: str | Path, variations: int) -> list[Path]:
    """``OUT.mid`` for one take, else ``OUT-1.mid`` .. ``OUT-V.mid``."""
    out = Path(output)
    if variations == 1:
        return [out]
    suffix = out.suffix or ".mid"
    return [out.with_name(f"{out.stem}-{i}{suffix}") for i in range(1, variations + 1)]


def run(args: argparse.Namespace) -> int:
    """Read the seed, generate, write the file(s)."""
    from musicgen_app.core.midi_io import read_midi, write_midi
    from musicgen_app.errors import GenerationError
    from musicgen_app.ml.generate import SamplingConfig, generate_notes, start_session
    from musicgen_app.ml.registry import load_model

    if args.bars < 1 or args.bars > 256:
        raise GenerationError("--bars must be between 1 and 256")
    if args.variations < 1 or args.variations > 100:
        raise GenerationError("--variations must be between 1 and 100")
    if not Path(args.seed_file).exists():
        raise GenerationError(f"seed file {args.seed_file} does not exist")
    song = read_midi(args.seed_file).song
    track = _melody_track(song, args.track)
    player = None
    if args.play:
        # The scheduler runs in a process of its own, so this process's Python work (the model
        # sampling) cannot delay its deadlines through the interpreter lock.
        from musicgen_app.playback.player_process import PlayerProcess

        player = PlayerProcess(args.play_output, soundfont=args.soundfont, midi_api=args.midi_api)
    try:
        model = load_model(args.model)
    except BaseException:
        if player is not None:
            player.close()
        raise
    key_lock = None if str(args.key).lower() in ("off", "none") else args.key
    base_seed = args.seed if args.seed is not None else random.randrange(2**31)
    start_tick = song.tracks[track].end_tick
    try:
        for i, path in enumerate(output_paths(args.output, args.variations)):
            sampling = SamplingConfig(
                temperature=args.temperature,
                top_k=args.top_k,
                top_p=args.top_p,
                entropy_temperature=args.entropy_temperature,
                key_lock=key_lock,
                seed=base_seed + i,
            )
            if player is not None:
                from musicgen_app.playback.live import play_session

                player.wait_ready()
                session = start_session(
                    model, song, track, start_tick=start_tick, bars=args.bars, sampling=sampling
                )
                result = play_session(session, song, scheduler=player, start_tick=start_tick)
                if result.reason not in ("done",):
                    raise GenerationError(f"generation stopped: {result.reason} {result.message}".strip())
                notes = result.notes
            else:
                notes = generate_notes(
                    model, song, track, start_tick=start_tick, bars=args.bars, sampling=sampling
                )
            tracks = list(song.tracks)
            tracks[track] = replace(tracks[track], notes=sorted([*tracks[track].notes, *notes]))
            write_midi(replace(song, tracks=tracks), path)
            seed_used = base_seed + i
            print(
                f"wrote {path}: {len(notes)} notes in {args.bars} bars (model {model.name}, seed {seed_used})"
            )
    finally:
        if player is not None:
            player.close()
    return 0
