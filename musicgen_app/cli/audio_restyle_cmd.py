"""`musicgen audio restyle IN.wav -o OUT.wav [--to piano] [--model NAME]`: a recording toward piano.

Paper 002's style autoencoder (:mod:`musicgen_app.ml.audio.restyle`; by default its residual
variant, trained toward the piano renders, ``--model hilbert-ae`` the paper's network trained on
piano only): the recording is mixed to mono, resampled to the model's rate (16 kHz), run through the
network in 65,536-sample windows (end to end, crossfaded; each at its input's peak level) and
written as a mono WAV at that rate. A file that cannot be read is one line and exit 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import logging

from musicgen_app.cli import argtypes as at

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "hilbert-ae-res"  # the paper's layout, residual variant (see the README)
TARGET_CHOICES = ("piano",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen audio restyle`."""
    parser.add_argument(
        "input", metavar="IN.wav", type=at.input_file(what="audio file"), help="the recording (a WAV file)"
    )
    at.add_output_argument(parser, "WAV", "the WAV file to write (mono, at the model's sample rate)")
    parser.add_argument("--to", choices=TARGET_CHOICES, default="piano", help="the target instrument")
    parser.add_argument(
        "--model", type=at.model_name, default=DEFAULT_MODEL, help=f"the model (default {DEFAULT_MODEL})"
    )


def run(args: argparse.Namespace) -> int:
    """Read, restyle, write."""
    from musicgen_app.ml.audio.audio_file import read_audio, resample

    audio = read_audio(args.input)  # a file that is not a WAV is refused before torch loads
    from musicgen_app.errors import GenerationError
    from musicgen_app.ml.audio import restyle as rs
    from musicgen_app.ml.registry import load_model
    from musicgen_app.playback.render import write_wav

    model = rs.as_restyler(load_model(args.model), args.model)
    if model.target != args.to:
        raise GenerationError(f"model {model.name} turns sound toward {model.target}, not {args.to}")
    out = model.restyle(resample(audio.mono(), audio.sample_rate, model.sample_rate))
    write_wav(out, args.output, model.sample_rate)
    print(
        f"wrote {args.output} ({len(out) / model.sample_rate:.2f} s, {model.sample_rate} Hz mono, "
        f"toward {model.target} by {model.name})"
    )
    return 0
