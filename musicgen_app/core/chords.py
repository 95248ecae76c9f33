"""Chord symbols: parsing what a musician types (``C``, ``Am7``, ``F/A``, ``Bb7sus4``) and what
annotations hold (Harte syntax, ``A:min7``, ``C:maj/3``), spelling them back, their pitch classes,
and a template estimate of the chords under a set of notes.

This is the one chord type of the app: the chord lane, ``continue --chords``, the accompaniment
models and their evaluation all speak :class:`Chord` and :class:`ChordSpan`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from musicgen_app.errors import MusicgenError

logger = logging.getLogger(__name__)


class ChordError(MusicgenError):
    """A chord symbol could not be read."""


#: Intervals above the root (semitones) for each quality; the key is the suffix written after the
#: root in a lead-sheet symbol ("" = major triad).
QUALITIES: dict[str, tuple[int, ...]] = {
    "": (0, 4, 7),
    "m": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "6": (0, 4, 7, 9),
    "m6": (0, 3, 7, 9),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "m7": (0, 3, 7, 10),
    "mmaj7": (0, 3, 7, 11),
    "m7b5": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
    "7sus4": (0, 5, 7, 10),
    "9": (0, 4, 7, 10, 2),
    "maj9": (0, 4, 7, 11, 2),
    "m9": (0, 3, 7, 10, 2),
    "add9": (0, 4, 7, 2),
}

#: Other spellings of the same qualities (lead-sheet habits and Harte shorthands).
_ALIASES: dict[str, str] = {
    "maj": "", "M": "", "min": "m", "mi": "m", "-": "m", "°": "dim", "o": "dim", "+": "aug",
    "sus": "sus4", "M7": "maj7", "Δ": "maj7", "Δ7": "maj7", "ma7": "maj7", "min7": "m7", "-7": "m7",
    "mi7": "m7", "ø": "m7b5", "ø7": "m7b5", "hdim7": "m7b5", "min7b5": "m7b5", "o7": "dim7",
    "°7": "dim7", "maj6": "6", "min6": "m6", "minmaj7": "mmaj7", "mM7": "mmaj7", "m(maj7)": "mmaj7",
    "sus4(b7)": "7sus4", "9sus4": "7sus4", "dom7": "7", "min9": "m9", "M9": "maj9",
}

_NOTE_NAMES_SHARP = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_NOTE_NAMES_FLAT = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ROOT_RE = re.compile(r"^([A-Ga-g])([#b♯♭]*)")
#: Harte scale degrees used after "/" in annotations (C:maj/3 = C/E).
_DEGREES = {"1": 0, "2": 2, "3": 4, "4": 5, "5": 7, "6": 9, "7": 11, "9": 2}

#: Roots that are spelled with flats when written back (Bb, Eb, Ab, Db); the rest with sharps.
_FLAT_ROOTS = frozenset({1, 3, 8, 10})


def note_name(pc: int, flats: bool | None = None) -> str:
    """The name of pitch class ``pc`` (flats for Db, Eb, Ab, Bb unless ``flats`` says otherwise)."""
    pc %= 12
    use_flats = (pc in _FLAT_ROOTS and pc != 6) if flats is None else flats
    return (_NOTE_NAMES_FLAT if use_flats else _NOTE_NAMES_SHARP)[pc]


def _parse_root(text: str) -> tuple[int, str]:
    m = _ROOT_RE.match(text)
    if m is None:
        raise ChordError(f"'{text}' is not a chord: a chord starts with a note name A-G (e.g. C, Am7, F/A)")
    pc = _LETTER_PC[m.group(1).upper()]
    for acc in m.group(2):
        pc += 1 if acc in "#♯" else -1
    return pc % 12, text[m.end():]


@dataclass(frozen=True)
class Chord:
    """One chord: a root pitch class, a quality (a key of :data:`QUALITIES`) and an optional bass."""

    root: int
    quality: str = ""
    bass: int | None = None

    def __post_init__(self) -> None:
        if self.quality not in QUALITIES:
            raise ChordError(f"unknown chord quality '{self.quality}'")
        if self.bass is not None and self.bass % 12 == self.root % 12:
            object.__setattr__(self, "bass", None)  # C/C is C: one value per symbol

    @property
    def symbol(self) -> str:
        """The lead-sheet symbol (``Am7``, ``F/A``, ``Bb``); :func:`parse_chord` reads it back."""
        text = note_name(self.root) + self.quality
        if self.bass is not None and self.bass != self.root:
            text += "/" + note_name(self.bass)
        return text

    def pitch_classes(self) -> frozenset[int]:
        """The chord's pitch classes (the bass included)."""
        pcs = {(self.root + iv) % 12 for iv in QUALITIES[self.quality]}
        if self.bass is not None:
            pcs.add(self.bass % 12)
        return frozenset(pcs)

    def transposed(self, semitones: int) -> Chord:
        """The same chord ``semitones`` higher."""
        bass = None if self.bass is None else (self.bass + semitones) % 12
        return Chord((self.root + semitones) % 12, self.quality, bass)

    def __str__(self) -> str:
        return self.symbol


def parse_chord(text: str) -> Chord | None:
    """Read one chord symbol; ``None`` for "no chord" (``N``, ``N.C.``, ``-``).

    Accepts lead-sheet symbols (``C``, ``Am7``, ``F#m7b5``, ``Bb/D``, ``Gsus4``) and Harte
    annotations as in POP909's ``chord_midi.txt`` (``A:min7``, ``C:maj/3``, ``G:sus4(b7)``).
    Raises :class:`ChordError` with a one-line reason otherwise.
    """
    raw = text.strip()
    if raw in ("N", "N.C.", "NC", "-", "X", ""):
        return None
    root, rest = _parse_root(raw)
    harte = rest.startswith(":")
    if harte:
        rest = rest[1:]
    bass: int | None = None
    if "/" in rest:
        rest, bass_text = rest.rsplit("/", 1)
        if harte or bass_text.lstrip("b#").isdigit():
            accidental = sum(1 if c == "#" else -1 for c in bass_text if c in "b#")
            degree = bass_text.lstrip("b#")
            if degree not in _DEGREES:
                raise ChordError(f"'{text}': the bass degree '/{bass_text}' is not one we read")
            bass = (root + _DEGREES[degree] + accidental) % 12
        else:
            bass, tail = _parse_root(bass_text)
            if tail:
                raise ChordError(f"'{text}': the bass '/{bass_text}' is not a note name")
    quality = _ALIASES.get(rest, rest)
    if quality not in QUALITIES:
        known = ", ".join(q or "(major)" for q in QUALITIES)
        raise ChordError(f"'{text}': '{rest}' is not a chord quality we know ({known})")
    return Chord(root, quality, bass)


def parse_progression(text: str) -> list[Chord | None]:
    """Read a progression typed as ``"C G Am F"`` or ``"C | G | Am F"`` (bars marks are ignored):
    one chord per entry, ``None`` for an ``N.C.``."""
    tokens = [t for t in re.split(r"[\s,|]+", text.strip()) if t]
    if not tokens:
        raise ChordError("the chord progression is empty: type chords like 'C G Am F'")
    return [parse_chord(t) for t in tokens]


@dataclass(frozen=True)
class ChordSpan:
    """A chord sounding from ``start_tick`` to ``end_tick`` (``chord`` None = no chord)."""

    start_tick: int
    end_tick: int
    chord: Chord | None


#: How "no chord" is written (a lane entry, a MIDI marker, a project row).
NO_CHORD = "N.C."


@dataclass(frozen=True)
class ChordChange:
    """A chord symbol on the song's chord lane: ``chord`` sounds from ``tick`` until the next change
    (None = "no chord", written N.C.). ``Song.chords`` is a list of these, sorted, one per tick."""

    tick: int
    chord: Chord | None

    @property
    def symbol(self) -> str:
        """The symbol as the lane, a project file and a MIDI marker write it."""
        return NO_CHORD if self.chord is None else self.chord.symbol


def spans_from_changes(changes: Sequence[ChordChange], end_tick: int) -> list[ChordSpan]:
    """The chord lane as spans: each change lasts until the next one, the last until ``end_tick``
    (changes at or after ``end_tick`` are left out)."""
    ordered = sorted(changes, key=lambda c: c.tick)
    out: list[ChordSpan] = []
    for i, change in enumerate(ordered):
        stop = ordered[i + 1].tick if i + 1 < len(ordered) else end_tick
        stop = min(stop, end_tick)
        if stop > change.tick:
            out.append(ChordSpan(change.tick, stop, change.chord))
    return out


def changes_from_spans(spans: Sequence[ChordSpan]) -> list[ChordChange]:
    """Spans (e.g. from :func:`estimate_chords`) as lane changes: one per chord change, and an
    N.C. where a gap between spans begins."""
    out: list[ChordChange] = []
    end: int | None = None
    for span in sorted(spans, key=lambda s: s.start_tick):
        if end is not None and span.start_tick > end and (out and out[-1].chord is not None):
            out.append(ChordChange(end, None))
        if not out or out[-1].chord != span.chord:
            out.append(ChordChange(span.start_tick, span.chord))
        end = span.end_tick
    return out


def chords_for_bars(chords: Sequence[Chord | None], bar_starts: Sequence[int]) -> list[ChordSpan]:
    """One chord per bar, the progression repeating: ``bar_starts`` are the bar lines (the last one
    ends the last bar), e.g. ``continue --chords "C G Am F"`` over the continuation's bars."""
    if not chords:
        raise ChordError("the chord progression is empty: type chords like 'C G Am F'")
    return [
        ChordSpan(start, end, chords[i % len(chords)])
        for i, (start, end) in enumerate(pairwise(bar_starts))
    ]


def chord_at(spans: Sequence[ChordSpan], tick: int) -> Chord | None:
    """The chord sounding at ``tick`` (spans sorted by start), or None."""
    for span in spans:
        if span.start_tick <= tick < span.end_tick:
            return span.chord
        if span.start_tick > tick:
            break
    return None


def estimate_chord(weights: Sequence[float], bass_pc: int | None = None) -> Chord | None:
    """The triad or seventh chord that best explains a 12-bin pitch-class weight profile.

    Scores every root and quality of :data:`ESTIMATE_QUALITIES` by the weight on its chord tones
    minus the weight outside them (larger chords pay a small penalty, so a plain triad wins a
    tie); the lowest sounding pitch class, when given, favours the chord with that root.
    Returns None when the profile is empty.
    """
    total = float(sum(weights))
    if total <= 0:
        return None
    best: tuple[float, int, str] | None = None
    for root, quality, pcs in _TEMPLATES:
        inside = sum(weights[pc] for pc in pcs)
        score = (2 * inside - total) / total - 0.04 * (len(pcs) - 3)
        if bass_pc is not None and bass_pc == root:
            score += 0.1
        if best is None or score > best[0] + 1e-9:
            best = (score, root, quality)
    return None if best is None else Chord(best[1], best[2])


#: The qualities :func:`estimate_chord` chooses among.
ESTIMATE_QUALITIES: tuple[str, ...] = ("", "m", "dim", "7", "m7", "maj7")
#: (root, quality, its pitch classes) of every chord :func:`estimate_chord` scores, built once.
_TEMPLATES: tuple[tuple[int, str, tuple[int, ...]], ...] = tuple(
    (root, quality, tuple({(root + iv) % 12 for iv in QUALITIES[quality]}))
    for root in range(12)
    for quality in ESTIMATE_QUALITIES
)


def estimate_chords(
    notes: Iterable[tuple[int, int, int]], span_ticks: Sequence[tuple[int, int]]
) -> list[ChordSpan]:
    """Estimate one chord per span from ``notes`` given as (start_tick, end_tick, pitch).

    ``span_ticks`` are the (start, end) windows to label, e.g. each beat or each bar. A note
    weighs by how long it sounds inside the window; consecutive windows with the same chord are
    merged into one span.
    """
    note_list = sorted(notes)
    out: list[ChordSpan] = []
    # one sweep over the notes while the windows move forward (each note is read a few times,
    # not once per window: a song's beats cost milliseconds on the UI thread, not a second)
    active: list[tuple[int, int, int]] = []  # notes begun before the window's end, not yet over
    taken, prev_start = 0, None
    for start, end in span_ticks:
        if prev_start is not None and start < prev_start:  # a window further back: sweep again
            active, taken = [], 0
        prev_start = start
        while taken < len(note_list) and note_list[taken][0] < end:
            active.append(note_list[taken])
            taken += 1
        active = [n for n in active if n[1] > start]
        weights = [0.0] * 12
        lowest: int | None = None
        for n_start, n_end, pitch in active:
            overlap = min(end, n_end) - max(start, n_start)
            if overlap <= 0:
                continue
            weights[pitch % 12] += overlap
            if lowest is None or pitch < lowest:
                lowest = pitch
        chord = estimate_chord(weights, None if lowest is None else lowest % 12)
        if out and out[-1].chord == chord and out[-1].end_tick == start:
            out[-1] = ChordSpan(out[-1].start_tick, end, chord)
        else:
            out.append(ChordSpan(start, end, chord))
    return out
