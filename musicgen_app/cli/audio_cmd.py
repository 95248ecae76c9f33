"""`musicgen audio ACTION ...`: commands that take or make audio recordings.

Each action lives in its own module (``musicgen_app.cli.audio_<action>_cmd``) with
``add_arguments(parser)`` and ``run(args) -> int``, listed in :data:`AUDIO_COMMANDS`; only this
group's modules are imported when `musicgen audio` is chosen, and they import nothing heavy until
they run.
"""

from __future__ import annotations

import argparse
import importlib
import logging

logger = logging.getLogger(__name__)

# action -> (module, one-line help)
AUDIO_COMMANDS: dict[str, tuple[str, str]] = {
    "transcribe": (
        "musicgen_app.cli.audio_transcribe_cmd",
        "turn a recording (sung, hummed or played; WAV) into a MIDI sketch",
    ),
    "restyle": (
        "musicgen_app.cli.audio_restyle_cmd",
        "turn a recording (WAV) toward piano with paper 002's style autoencoder",
    ),
    "dataset": (
        "musicgen_app.cli.audio_dataset_cmd",
        "build or describe the rendered audio dataset (pieces on piano, guitar, strings, organ)",
    ),
    "train": ("musicgen_app.cli.audio_train_cmd", "train paper 002's style autoencoder on piano renders"),
    "evaluate": (
        "musicgen_app.cli.audio_evaluate_cmd",
        "log-spectral distance of restyled held-out renders to the piano render",
    ),
    "wavenet": ("musicgen_app.cli.audio_wavenet_cmd", "train or evaluate the raw-audio WaveNet (paper 004)"),
    "continue": (
        "musicgen_app.cli.audio_continue_cmd",
        "continue a MIDI or WAV sketch as raw audio (paper 004's WaveNet)",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of `musicgen audio`, each with its own arguments."""
    sub = parser.add_subparsers(dest="audio_action", metavar="ACTION", required=True)
    for name, (module_name, help_text) in AUDIO_COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(sp)
        sp.set_defaults(_audio_module=module)


def run(args: argparse.Namespace) -> int:
    """Run the chosen action."""
    return int(args._audio_module.run(args) or 0)
