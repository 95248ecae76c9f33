"""Argument types shared by every `musicgen` subcommand: each option is checked by its parser.

Every function here is an argparse ``type=``: it turns the text of one option into its value or
raises :class:`argparse.ArgumentTypeError` with a short message a musician understands. A bad value
is thus refused before any work starts (no model loaded, no file opened for writing, no synth
created), as one line and exit 2 (see :class:`OneLineParser`).

This module imports nothing heavy (no numpy, torch or Qt): a bad option costs milliseconds.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from musicgen_app.core.safe_io import describe_kind, writable_target_problem

logger = logging.getLogger(__name__)

SEED_MAX = 2**63 - 1  # the sampler's seeds are 63-bit (ml.sampling.random_seed)
MAX_TEXT = 4096  # longer than any name or path a person types


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (and exit 2), not a usage dump.

    Subparsers made from it (``add_subparsers``) are OneLineParsers too.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``error: MESSAGE (see `PROG --help`)`` on one line and exit 2."""
        text = " ".join(str(message).split())
        self.exit(2, f"error: {text} (see `{self.prog} --help`)\n")


def _fail(message: str) -> NoReturn:
    raise argparse.ArgumentTypeError(message)


def _plain_text(value: str, what: str) -> str:
    if "\0" in value or "\n" in value or "\r" in value:
        _fail(f"{what} must not contain control characters")
    if len(value) > MAX_TEXT:
        _fail(f"{what} is too long ({len(value)} characters)")
    return value


def _show(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:37] + "...")


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """A whole number within ``[lo, hi]`` (either bound may be open-ended)."""

    def parse(value: str) -> int:
        text = value.strip().replace("_", "")
        if not re.fullmatch(r"[+-]?\d{1,30}", text):
            _fail(f"expected a whole number, not {_show(value)}")
        n = int(text)
        if (lo is not None and n < lo) or (hi is not None and n > hi):
            _fail(f"{n} is out of range: {_range_text(lo, hi)}")
        return n

    parse.__name__ = "int"
    return parse


def _range_text(lo: float | None, hi: float | None, lo_open: bool = False, hi_open: bool = False) -> str:
    def num(x: float) -> str:
        if x == SEED_MAX:
            return "2^63-1"
        return f"{x:g}" if isinstance(x, float) else str(x)

    if lo is not None and hi is not None:
        if not lo_open and not hi_open:
            return f"give a value from {num(lo)} to {num(hi)}"
        left = "above" if lo_open else "at least"
        right = "below" if hi_open else "at most"
        return f"give a value {left} {num(lo)} and {right} {num(hi)}"
    if lo is not None:
        return f"give a value {'above' if lo_open else 'of at least'} {num(lo)}"
    if hi is not None:
        return f"give a value {'below' if hi_open else 'of at most'} {num(hi)}"
    return "any value"


def positive_int(hi: int | None = None) -> Callable[[str], int]:
    """A whole number from 1 (to ``hi``)."""
    return int_range(1, hi)


def int_choice(choices: Sequence[int]) -> Callable[[str], int]:
    """A whole number that is one of ``choices`` (a sample rate, say)."""
    allowed = tuple(choices)
    whole = int_range()

    def parse(value: str) -> int:
        n = whole(value)
        if n not in allowed:
            _fail(f"{n} is not one of {', '.join(map(str, allowed))}")
        return n

    parse.__name__ = "int"
    return parse


def non_negative_int(hi: int | None = None) -> Callable[[str], int]:
    """A whole number from 0 (to ``hi``)."""
    return int_range(0, hi)


seed = int_range(0, SEED_MAX)
"""A random seed: a whole number from 0 to 2**63 - 1."""


def finite_float(
    lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False
) -> Callable[[str], float]:
    """A finite number (no nan, no inf) within the bounds (``lo_open``/``hi_open``: bound excluded)."""

    def parse(value: str) -> float:
        try:
            x = float(value.strip())
        except ValueError:
            _fail(f"expected a number, not {_show(value)}")
        if not math.isfinite(x):
            _fail(f"expected a finite number, not {_show(value)}")
        too_low = lo is not None and (x <= lo if lo_open else x < lo)
        too_high = hi is not None and (x >= hi if hi_open else x > hi)
        if too_low or too_high:
            _fail(f"{x:g} is out of range: {_range_text(lo, hi, lo_open, hi_open)}")
        return x

    parse.__name__ = "float"
    return parse


def ordered_range(lo: int = 1, hi: int | None = None, unit: str = "bar") -> Callable[[str], tuple[int, int]]:
    """``"A-B"`` (or one number ``"A"``, meaning ``A-A``) with ``lo <= A <= B <= hi``: an inclusive range."""

    def parse(value: str) -> tuple[int, int]:
        m = re.fullmatch(r"\s*(\d{1,9})\s*(?:[-:]\s*(\d{1,9})\s*)?", value)
        if not m:
            _fail(f"expected a {unit} range such as 5-8, not {_show(value)}")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a:
            _fail(f"the range {a}-{b} is reversed: the first {unit} comes first (e.g. {b}-{a})")
        if a < lo or (hi is not None and b > hi):
            top = f" to {hi}" if hi is not None else ""
            _fail(f"{unit}s are counted from {lo}{top}, so {a}-{b} is out of range")
        return a, b

    parse.__name__ = "range"
    return parse


bar_range = ordered_range(1, 100_000, "bar")
"""Bars ``"A-B"`` counted from 1, both included."""


def non_empty(what: str) -> Callable[[str], str]:
    """Any text that is not empty or blank (a port name, a driver name...)."""

    def parse(value: str) -> str:
        if not value.strip():
            _fail(f"{what} must not be empty")
        return _plain_text(value, what)

    parse.__name__ = "text"
    return parse


def model_name(value: str) -> str:
    """A model name (see `musicgen models`) or a checkpoint path: not empty, no control characters."""
    if not value.strip():
        _fail("the model name must not be empty")
    return _plain_text(value, "the model name")


def key_lock(value: str) -> str:
    """``auto``, ``off`` (or ``none``), ``free`` (off, and no pull toward the key), or a key name
    such as ``D dorian`` or ``F#m``."""
    if value.strip().lower() in ("auto", "off", "none", "free"):
        return value.strip().lower()
    from musicgen_app.errors import GenerationError
    from musicgen_app.ml.keys import parse_key

    try:
        parse_key(_plain_text(value, "the key"))
    except GenerationError as exc:
        _fail(f"{exc}, or auto, off or free")
    return value


def chord_progression(value: str) -> list:
    """A chord progression such as ``"C G Am F"`` or ``"C | G | Am F"`` (``N.C.`` for no chord):
    the list of :class:`~musicgen_app.core.chords.Chord` (None for N.C.)."""
    from musicgen_app.core.chords import ChordError, parse_progression

    try:
        return parse_progression(_plain_text(value, "the chord progression"))
    except ChordError as exc:
        _fail(str(exc))


def checkpoint_name(value: str) -> str:
    """A name for a new checkpoint in the models folder: letters, digits, '.', '_' and '-' only."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", value):
        _fail(
            f"{_show(value)} cannot name a checkpoint: use up to 100 letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit)"
        )
    return value


def _path_text(value: str, what: str) -> str:
    if not value.strip():
        _fail(f"the {what} name must not be empty")
    return _plain_text(value, f"the {what} name")


def _suffix_ok(path: str, suffixes: Sequence[str] | None) -> bool:
    return not suffixes or Path(path).suffix.lower() in suffixes


def _suffix_text(suffixes: Sequence[str]) -> str:
    return " or ".join(suffixes) if len(suffixes) <= 3 else ", ".join(suffixes)


def input_file(suffixes: Sequence[str] | None = None, what: str = "file") -> Callable[[str], str]:
    """An existing, readable regular file (a symlink to one is fine; a device, FIFO or folder is not).

    ``suffixes``: the accepted extensions (lower case, with the dot), or None for any.
    """

    def parse(value: str) -> str:
        _path_text(value, what)
        try:
            st = os.stat(value)
        except FileNotFoundError:
            _fail(f"{value}: the {what} does not exist")
        except OSError as exc:
            _fail(f"{value}: cannot read the {what}: {exc.strerror or exc}")
        if not stat.S_ISREG(st.st_mode):
            _fail(f"{value} is {describe_kind(st.st_mode)}, not a {what}")
        if not os.access(value, os.R_OK):
            _fail(f"{value}: the {what} cannot be read (permission denied)")
        if not _suffix_ok(value, suffixes):
            assert suffixes is not None
            _fail(f"{value}: expected a {_suffix_text(suffixes)} {what}")
        return value

    parse.__name__ = what
    return parse


MIDI_SUFFIXES = (".mid", ".midi")


WAV_SUFFIXES = (".wav",)


def add_output_argument(parser: Any, kind: str = "MIDI", help_text: str = "") -> None:
    """The required ``-o/--output`` file of a command that writes one: ``kind`` "MIDI"
    (OUT.mid, .mid/.midi) or "WAV" (OUT.wav)."""
    midi = kind == "MIDI"
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.mid" if midi else "OUT.wav",
        type=output_file(MIDI_SUFFIXES if midi else WAV_SUFFIXES, f"{kind} file"),
        help=help_text or f"the {kind} file to write",
    )


def add_midi_in_out_arguments(
    parser: Any, dest: str, metavar: str, what: str, in_help: str, out_help: str = ""
) -> None:
    """The positional MIDI file a generating command reads (``dest``) and its ``-o/--output``
    MIDI file (continue, fill, accompany)."""
    parser.add_argument(dest, metavar=metavar, type=input_file(what=what), help=in_help)
    add_output_argument(parser, "MIDI", out_help)


def add_temperature_and_seed(
    parser: Any, seed_help: str = "random seed, 0 to 2^63-1 (same seed, same file)"
) -> None:
    """``--temperature`` (above 0, at most 10, default 1) and ``--seed`` of a generating command."""
    parser.add_argument(
        "--temperature",
        type=finite_float(0.0, 10.0, lo_open=True),
        default=1.0,
        help="sampling temperature, above 0 and at most 10 (default 1.0)",
    )
    parser.add_argument("--seed", type=seed, default=None, help=seed_help)


def output_file(suffixes: Sequence[str] | None = None, what: str = "file") -> Callable[[str], str]:
    """A file to write: its folder exists and is writable, and it is not a device, FIFO or folder."""

    def parse(value: str) -> str:
        _path_text(value, what)
        if not _suffix_ok(value, suffixes):
            assert suffixes is not None
            _fail(f"{value}: name the {what} {_suffix_text(suffixes)}")
        problem = writable_target_problem(value, what)
        if problem:
            _fail(problem)
        return value

    parse.__name__ = what
    return parse


def writable_dir(value: str) -> str:
    """An existing folder we may write into."""
    _path_text(value, "folder")
    try:
        st = os.stat(value)
    except FileNotFoundError:
        _fail(f"the folder {value} does not exist")
    except OSError as exc:
        _fail(f"{value}: cannot use the folder: {exc.strerror or exc}")
    if not stat.S_ISDIR(st.st_mode):
        _fail(f"{value} is {describe_kind(st.st_mode)}, not a folder")
    if not os.access(value, os.W_OK | os.X_OK):
        _fail(f"cannot write into the folder {value} (permission denied)")
    return value


def creatable_dir(value: str) -> str:
    """A folder we may write into, made when missing: an existing writable folder, or a path whose
    nearest existing parent is a writable folder (``--out-dir runs/pop`` in a fresh checkout)."""
    _path_text(value, "folder")
    probe = Path(value).expanduser()
    while not probe.exists() and not probe.is_symlink():
        if probe.parent == probe:
            break
        probe = probe.parent
    if str(probe) != str(Path(value).expanduser()):
        writable_dir(str(probe))
        return value
    return writable_dir(value)


class DeprecatedAlias(argparse.Action):
    """An old spelling of an option: stores into the new option's ``dest`` and says, on one line of
    stderr, which spelling to use instead."""

    def __init__(self, option_strings: list[str], dest: str, *, new: str = "", **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        """Store the value and warn once per use."""
        print(
            f"warning: {option_string} is deprecated here; use {self.new} "
            f"(-o/--output names a file to write, {self.new} the sound output)",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_deprecated_aliases(
    parser: argparse.ArgumentParser, old: Iterable[str], *, dest: str, new: str, **kwargs: Any
) -> None:
    """Keep ``old`` spellings of option ``new`` working, hidden from --help, with a deprecation line."""
    old = tuple(old)
    if not old:  # a new command has no old spellings
        return
    parser.add_argument(*old, dest=dest, action=DeprecatedAlias, new=new, help=argparse.SUPPRESS, **kwargs)


def snap_grid(value: str) -> str:
    """A grid to snap notes to, named as in the piano roll's Snap box: ``1/16``, ``1/8T``, ``1 bar``..."""
    from musicgen_app.gui.piano_roll.geometry import SNAP_CHOICES  # pure geometry: no Qt

    names = [n for n in SNAP_CHOICES if n != "off"]
    text = value.strip()
    for name in names:
        if text.lower() in (name.lower(), name.lower().replace(" ", "")):
            return name
    _fail(f"{_show(value)} is not a grid: use one of {', '.join(names)}")
