"""Keys and scales: Krumhansl-Schmuckler key finding, key names, scale masks, transposition.

A key is ``(tonic_pc, mode)`` with ``tonic_pc`` 0..11 (C = 0) and ``mode`` one of :data:`MODES`.
The melody models are trained in C major / A minor; :func:`transposition_to_reference` gives the
shift (in semitones, -6..+5, so the register changes as little as possible) that takes a key
there. No torch here: the data builder and the sampler both use it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from musicgen_app.errors import GenerationError

logger = logging.getLogger(__name__)

PITCH_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

# Scale degrees (semitones above the tonic) of the modes the key lock understands.
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),  # natural minor; the lock also allows the raised 7th
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "aeolian": (0, 2, 3, 5, 7, 8, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
}
_MODE_ALIASES = {
    "": "major",
    "maj": "major",
    "major": "major",
    "ion": "major",
    "ionian": "major",
    "m": "minor",
    "min": "minor",
    "minor": "minor",
    "aeo": "aeolian",
    "aeolian": "aeolian",
    "dor": "dorian",
    "dorian": "dorian",
    "phr": "phrygian",
    "phrygian": "phrygian",
    "lyd": "lydian",
    "lydian": "lydian",
    "mix": "mixolydian",
    "mixolydian": "mixolydian",
    "loc": "locrian",
    "locrian": "locrian",
}

# Krumhansl-Kessler probe-tone profiles.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True, slots=True)
class Key:
    """A tonic pitch class (0 = C) and a mode name from :data:`MODES`."""

    tonic_pc: int
    mode: str = "major"

    @property
    def name(self) -> str:
        """E.g. ``"C major"``, ``"F# minor"``, ``"D dorian"``."""
        return f"{PITCH_NAMES[self.tonic_pc]} {self.mode}"

    def scale_pcs(self) -> frozenset[int]:
        """The pitch classes of the scale (minor also admits the raised 6th and 7th)."""
        degrees = set(MODES[self.mode])
        if self.mode == "minor":
            degrees |= {9, 11}
        return frozenset((self.tonic_pc + d) % 12 for d in degrees)

    def diatonic_pcs(self) -> frozenset[int]:
        """The seven pitch classes of the mode, strictly."""
        return frozenset((self.tonic_pc + d) % 12 for d in MODES[self.mode])

    @property
    def is_minor_like(self) -> bool:
        """Whether the mode has a minor third (transposed to A minor for the models)."""
        return 3 in MODES[self.mode]


def parse_key(text: str) -> Key:
    """Parse ``"C"``, ``"F#m"``, ``"Bb minor"``, ``"D dorian"``, ``"Edor"`` into a :class:`Key`.

    Raises GenerationError with a readable message when the name is not a key.
    """
    m = re.fullmatch(r"\s*([A-Ga-g])\s*([#b♯♭]?)\s*([A-Za-z]*)\s*", text or "")
    if not m:
        raise GenerationError(f"'{text}' is not a key name (try e.g. C, F#m, Bb minor, D dorian)")
    letter, accidental, mode_text = m.groups()
    pc = _LETTER_PC[letter.upper()]
    if accidental in ("#", "♯"):
        pc += 1
    elif accidental in ("b", "♭"):
        pc -= 1
    mode = _MODE_ALIASES.get(mode_text.lower())
    if mode is None:
        raise GenerationError(f"unknown mode '{mode_text}' in key '{text}' (major, minor, dorian, ...)")
    return Key(pc % 12, mode)


def pitch_class_histogram(pitches: Iterable[int], weights: Iterable[float] | None = None) -> np.ndarray:
    """A 12-bin histogram of pitch classes, weighted (e.g. by duration) when weights are given."""
    hist = np.zeros(12)
    if weights is None:
        for p in pitches:
            hist[p % 12] += 1.0
    else:
        for p, w in zip(pitches, weights, strict=True):
            hist[p % 12] += float(w)
    return hist


def estimate_key(pitches: Iterable[int], weights: Iterable[float] | None = None) -> Key:
    """The major or minor key whose Krumhansl-Kessler profile correlates best with the notes.

    ``weights`` are usually durations. An empty input gives C major.
    """
    hist = pitch_class_histogram(pitches, weights)
    if hist.sum() <= 0:
        return Key(0, "major")
    h = hist - hist.mean()
    hn = float(np.sqrt((h * h).sum())) or 1.0
    r = _PROFILES @ h / hn  # (24,) correlation with every key
    best = int(np.argmax(r))  # the first maximum: majors before minors, C upwards
    return Key(best % 12, "major" if best < 12 else "minor")


def _profiles() -> np.ndarray:
    rows = []
    for profile in (_KK_MAJOR, _KK_MINOR):
        for tonic in range(12):
            p = np.roll(profile, tonic)
            p = p - p.mean()
            rows.append(p / np.sqrt((p * p).sum()))
    return np.array(rows)  # (24, 12) centred, unit-length profiles


_PROFILES = _profiles()


def transposition_to_reference(key: Key) -> int:
    """Semitones (-6..+5) that move ``key`` to C major, or to A minor for minor-like modes.

    Modes keep their own tonic relation: D dorian (minor-like) moves to A dorian.
    """
    target = 9 if key.is_minor_like else 0
    shift = (target - key.tonic_pc) % 12
    if shift > 5:
        shift -= 12
    return shift
