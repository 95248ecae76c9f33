"""Entry point of the `musicgen` command.

Subcommands live in their own modules (``musicgen_app.cli.<name>_cmd``), each with
``add_arguments(parser)`` and ``run(args) -> int``. Only the chosen subcommand's module is
imported, so ``musicgen inspect`` starts without importing torch or Qt.

Every option is checked by its parser (``musicgen_app.cli.argtypes``): a bad value, like every
:class:`~musicgen_app.errors.MusicgenError`, becomes one line ``error: ...`` and exit 2 before any
work starts; anything unexpected becomes one line too (details go to the log), never a traceback.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from musicgen_app import __version__
from musicgen_app.cli.argtypes import OneLineParser
from musicgen_app.errors import MusicgenError

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_ERROR = 2

# name -> (module, one-line help). Keep the names stable: scripts and the README use them.
COMMANDS: dict[str, tuple[str, str]] = {
    "gui": ("musicgen_app.cli.gui_cmd", "open the main window (the default)"),
    "inspect": ("musicgen_app.cli.inspect_cmd", "show what a MIDI or project file holds, and every repair"),
    "convert": ("musicgen_app.cli.convert_cmd", "convert MIDI <-> .mgproj (by extension)"),
    "continue": ("musicgen_app.cli.continue_cmd", "continue a seed MIDI file with a model"),
    "fill": ("musicgen_app.cli.fill_cmd", "regenerate a range of bars of one track from both sides"),
    "accompany": ("musicgen_app.cli.accompany_cmd", "write an accompaniment track under a melody"),
    "jam": (
        "musicgen_app.cli.jam_cmd",
        "call and response: the model answers what you play on a MIDI keyboard",
    ),
    "models": ("musicgen_app.cli.models_cmd", "list the available models and their metrics"),
    "evaluate": ("musicgen_app.cli.evaluate_cmd", "evaluate a model on held-out tunes"),
    "train": ("musicgen_app.cli.train_cmd", "train a model"),
    "dataset": ("musicgen_app.cli.dataset_cmd", "build or inspect the cached training datasets"),
    "play": ("musicgen_app.cli.play_cmd", "play a MIDI or project file"),
    "render": ("musicgen_app.cli.render_cmd", "render a MIDI or project file to WAV"),
    "devices": ("musicgen_app.cli.devices_cmd", "list MIDI ports and working audio drivers"),
    "audio": ("musicgen_app.cli.audio_cmd", "transcribe, restyle or continue audio recordings"),
}


def _build_parser(selected: str | None) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="musicgen",
        description="Sketch a melody, let a model continue it, hear it stream live.",
    )
    parser.add_argument("--version", action="version", version=f"musicgen {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            module = importlib.import_module(module_name)
            module.add_arguments(sp)
            sp.set_defaults(_module=module)
    return parser


def _selected_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns (and, as a script, exits with) the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    selected = _selected_command(args_list)
    if selected is None and not any(a in ("-h", "--help", "--version") for a in args_list):
        if not args_list or all(a in ("-v", "--verbose") for a in args_list):
            args_list = [*args_list, "gui"]
            selected = "gui"
        elif args_list and not args_list[0].startswith("-"):
            # `musicgen song.mid` opens the file in the window.
            first = args_list[0]
            if os.path.exists(first):
                args_list = ["gui", *args_list]
                selected = "gui"
    try:
        parser = _build_parser(selected)
    except ImportError as exc:  # a missing optional library or a broken install
        print(f"error: the '{selected}' command cannot start: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version, or a usage error already reported on one line
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    module = getattr(args, "_module", None)
    if module is None:
        parser.print_help()
        return EXIT_ERROR
    try:
        return int(module.run(args) or 0)
    except MusicgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # the last line of defence: no traceback reaches a user
        logger.debug("internal error", exc_info=True)
        print(
            f"error: internal error: {type(exc).__name__}: {exc} (run with -v for details)", file=sys.stderr
        )
        return EXIT_INTERNAL


def entry() -> NoReturn:
    """The console script: run :func:`main`, then leave at once with its exit status.

    The exit handlers run (logging is flushed, child processes are ended), the streams are
    flushed, and the process ends with ``os._exit``: the interpreter's own teardown takes 0.7 to
    2 s once torch is loaded, and after a JACK server died under one of our clients, libjack's
    threads can keep it from ever finishing. A dead output must end the command within a second.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


if __name__ == "__main__":
    entry()
