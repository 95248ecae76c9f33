"""`musicgen audio continue SEED.(mid|wav) -o OUT.wav [--seconds S] [--model M]`: raw-audio WaveNet.

A MIDI sketch is rendered on piano by FluidSynth at the model's rate (the model was trained on
piano renders) and its piano roll conditions the network over the seed; the continuation's
condition is the piano roll of the sketch's last bar, looped (its last sounding notes, held, when
that bar starts no note). A WAV sketch is read, made mono and resampled;
its condition is the pitches whose fundamentals are strongest in its last half second. The end of
the sketch (one receptive field) fills the per-layer queues; the generated samples alone are
written (mono, the model's rate).
"""

from __future__ import annotations

import argparse
import logging
import time

from musicgen_app.cli import argtypes as at

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "audio-wavenet"
MAX_SECONDS = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen audio continue`."""
    parser.add_argument(
        "seed_file",
        metavar="SEED",
        type=at.input_file((".mid", ".midi", ".wav"), "MIDI or WAV file"),
        help="the sketch: a MIDI file (rendered on piano) or a WAV recording",
    )
    at.add_output_argument(parser, "WAV", "the WAV file to write (mono, the model's sample rate)")
    parser.add_argument(
        "--seconds",
        type=at.finite_float(0.01, MAX_SECONDS),
        default=2.0,
        metavar="S",
        help=f"seconds to generate, 0.01 to {MAX_SECONDS:g} (default 2)",
    )
    parser.add_argument(
        "--model", type=at.model_name, default=DEFAULT_MODEL, help=f"the model (default {DEFAULT_MODEL})"
    )
    parser.add_argument("--seed", type=at.seed, default=0, help="random seed of the sampling (default 0)")
    parser.add_argument(
        "--temperature",
        type=at.finite_float(0.05, 2.0),
        default=1.0,
        metavar="T",
        help="sampling temperature, 0.05 to 2 (default 1)",
    )


def run(args: argparse.Namespace) -> int:
    """Render or read the sketch, continue it, write the generated samples."""
    from pathlib import Path

    from musicgen_app.ml.audio.audio_file import read_audio, resample

    is_wav = Path(args.seed_file).suffix.lower() == ".wav"
    if is_wav:
        recording = read_audio(args.seed_file)  # a bad file is refused before torch loads
    else:
        from musicgen_app.core.midi_io import read_midi

        song = read_midi(args.seed_file).song
    from musicgen_app.ml.audio import raw_wavenet as rw
    from musicgen_app.ml.registry import load_model
    from musicgen_app.playback.render import write_wav

    model = rw.as_audio_wavenet(load_model(args.model), args.model)
    cfg, sr = model.network.cfg, model.sample_rate
    if is_wav:
        audio = resample(recording.mono(), recording.sample_rate, sr)
        roll, hold = None, rw.pitches_of_audio(audio, cfg)
        how = "holding the pitches strongest at the recording's end"
    else:
        from musicgen_app.playback.render import render_song

        audio, roll, hold = rw.sketch_seed(
            song, cfg, lambda s, rate: render_song(s, sample_rate=rate, tail_s=0.0)
        )
        how = "looping the sketch's last bar"
    n = max(1, round(args.seconds * sr))
    t0 = time.perf_counter()
    out = model.continue_audio(audio, roll, n, hold=hold, seed_rng=args.seed, temperature=args.temperature)
    wall = time.perf_counter() - t0
    write_wav(out, args.output, sr)
    print(
        f"wrote {args.output} ({n / sr:.2f} s, {sr} Hz mono, by {model.name}, {how}; "
        f"{wall:.1f} s to generate, real-time factor {wall / (n / sr):.2f})"
    )
    return 0
