"""Statistics of continuations of held-out chorales, for models without a likelihood (the GAN).

Each test chorale is cut at the bar lines after its 4th and 8th full bars (when 4 more bars
follow); every system continues the four-voice sketch for 4 bars (key lock off, a fixed seed per
cut) and is compared with what Bach wrote there:

* ``in_key``: share of notes in the chorale's key (minor: with the raised 6th and 7th);
* ``pitch_range``: highest minus lowest pitch of the 4 bars (semitones);
* ``polyphony``: notes per distinct onset (the number of voices striking together);
* ``density``: notes per bar;
* ``pc_l1``: L1 distance between the continuation's pitch-class histogram and the sketch's
  (``pc_l1_real``: and that of what Bach wrote next; 0 for the real continuation itself);
* ``repeated_bars``: share of the 4 bars whose notes (position in the bar, pitch) are exactly
  those of the bar before (the first against the sketch's last bar).

Baselines: ``repeat-last-bar`` (the sketch's last bar, four times) and ``random-in-key`` (three
random notes a beat, quarter notes, pitches drawn from the chorale's scale inside the sketch's
last-bar range; in key by construction, since it is handed the chorale's key).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np

from musicgen_app.core.song import Note, Song, TimeSignature, Track
from musicgen_app.ml.families.chorales import Chorale
from musicgen_app.ml.keys import Key

logger = logging.getLogger(__name__)

RES = 480
STEP = RES // 4
SEED_BARS = (4, 8)  # cut after these many full bars
BARS = 4
STAT_KEYS = ("in_key", "pitch_range", "polyphony", "density", "pc_l1", "pc_l1_real", "repeated_bars")

Row = tuple[int, int, int]  # (start step from the cut, length, pitch)


@dataclass
class Case:
    """One cut: the sketch as a song, the real continuation, and what the statistics need."""

    name: str
    song: Song
    cut_tick: int
    context: list[Row]  # steps relative to the cut (negative)
    real: list[Row]
    bar_steps: int
    scale: frozenset[int]
    seed: int


def _scale(ch: Chorale) -> frozenset[int]:
    key = Key(ch.key_tonic_pc, "minor" if ch.key_mode == "minor" else "major")
    pcs = set(key.scale_pcs())
    if key.mode == "minor":
        pcs |= {(ch.key_tonic_pc + 9) % 12, (ch.key_tonic_pc + 11) % 12}
    return frozenset(pcs)


def chorale_cases(chorales: list[Chorale]) -> list[Case]:
    """The cuts of ``chorales`` (see the module docstring), in a fixed order."""
    cases: list[Case] = []
    for ch in chorales:
        bs = ch.bar_steps
        shift = (-ch.bar_offset) % bs  # move the notes so that bar lines fall on multiples of bs
        first_bar = 0 if ch.bar_offset == 0 else bs  # the first full bar after a pickup
        rows = [(s + shift, d, p) for s, d, p, _ in ch.notes]
        total = max(s + d for s, d, _ in rows)
        for k in SEED_BARS:
            cut = first_bar + k * bs
            if cut + BARS * bs > total:
                continue
            context = [(s - cut, min(d, cut - s), p) for s, d, p in rows if s < cut]
            real = [(s - cut, d, p) for s, d, p in rows if cut <= s < cut + BARS * bs]
            notes = [Note((s + cut) * STEP, p, (s + cut + d) * STEP, 80) for s, d, p in context]
            song = Song(
                resolution=RES,
                tracks=[Track(notes=notes)],
                time_signatures=[TimeSignature(0, ch.numerator, ch.denominator)],
            )
            cases.append(Case(ch.name, song, cut * STEP, context, real, bs, _scale(ch), 500 + len(cases)))
    return cases


def _pc_hist(rows: list[Row]) -> np.ndarray:
    h = np.zeros(12)
    for _, _, p in rows:
        h[p % 12] += 1
    return h / max(1.0, h.sum())


def _bar_sets(rows: list[Row], bar_steps: int, first: int, count: int) -> list[frozenset]:
    return [
        frozenset((s - b * bar_steps, p) for s, _, p in rows if b * bar_steps <= s < (b + 1) * bar_steps)
        for b in range(first, first + count)
    ]


def case_stats(case: Case, rows: list[Row]) -> dict[str, float]:
    """The statistics of one continuation ``rows`` of ``case``."""
    nan = float("nan")
    pitches = [p for _, _, p in rows]
    onsets = {s for s, _, _ in rows}
    bars = _bar_sets(case.context, case.bar_steps, -1, 1) + _bar_sets(rows, case.bar_steps, 0, BARS)
    repeats = [b == a and len(b) > 0 for a, b in itertools.pairwise(bars)]
    return {
        "in_key": sum(p % 12 in case.scale for p in pitches) / len(pitches) if pitches else nan,
        "pitch_range": float(max(pitches) - min(pitches)) if pitches else nan,
        "polyphony": len(rows) / len(onsets) if onsets else nan,
        "density": len(rows) / BARS,
        "pc_l1": float(np.abs(_pc_hist(rows) - _pc_hist(case.context)).sum()) if rows else nan,
        "pc_l1_real": float(np.abs(_pc_hist(rows) - _pc_hist(case.real)).sum()) if rows else nan,
        "repeated_bars": float(np.mean(repeats)),
    }


def repeat_last_bar(case: Case) -> list[Row]:
    """Baseline: the sketch's last bar, cut at its end, played ``BARS`` times."""
    bs = case.bar_steps
    last = [(s + bs, min(d, -s), p) for s, d, p in case.context if -bs <= s < 0]
    return [(s + b * bs, d, p) for b in range(BARS) for s, d, p in last]


def random_in_key(case: Case) -> list[Row]:
    """Baseline: three random in-key quarter notes a beat inside the last bar's pitch range."""
    rng = np.random.default_rng(case.seed)
    last = [p for s, _, p in case.context if s >= -case.bar_steps] or [p for _, _, p in case.context]
    lo, hi = min(last), max(last)
    pool = [p for p in range(lo, hi + 1) if p % 12 in case.scale] or [lo]
    out = []
    for beat in range(0, BARS * case.bar_steps, 4):
        for p in rng.choice(pool, size=min(3, len(pool)), replace=False):
            out.append((beat, 4, int(p)))
    return out


def model_rows(model, case: Case) -> list[Row]:
    """A model's continuation of ``case`` (key lock off, the case's seed), as rows from the cut."""
    from musicgen_app.ml.generate import SamplingConfig, generate_notes

    notes = generate_notes(
        model,
        case.song,
        0,
        start_tick=case.cut_tick,
        bars=BARS,
        sampling=SamplingConfig(key_lock=None, seed=case.seed),
    )
    return [
        (n.start_tick // STEP - case.cut_tick // STEP, max(1, (n.end_tick - n.start_tick) // STEP), n.pitch)
        for n in notes
    ]


def summarise(per_case: list[dict[str, float]]) -> dict[str, float]:
    """Means over cases (ignoring NaN: a continuation without notes has no in-key share)."""
    out = {}
    for k in STAT_KEYS:
        vals = [r[k] for r in per_case if r[k] == r[k]]
        out[k] = round(float(np.mean(vals)), 4) if vals else float("nan")
    return out


def compare(models: dict[str, object], chorales: list[Chorale]) -> dict:
    """Statistics of the real continuations, each model's, and both baselines, over the cuts."""
    cases = chorale_cases(chorales)
    systems: dict[str, list[dict]] = {"real": [], "repeat-last-bar": [], "random-in-key": []}
    systems.update({name: [] for name in models})
    for case in cases:
        systems["real"].append(case_stats(case, case.real))
        systems["repeat-last-bar"].append(case_stats(case, repeat_last_bar(case)))
        systems["random-in-key"].append(case_stats(case, random_in_key(case)))
        for name, model in models.items():
            systems[name].append(case_stats(case, model_rows(model, case)))
    return {
        "cases": len(cases),
        "chorales": len({c.name for c in cases}),
        "seed_bars": list(SEED_BARS),
        "bars": BARS,
        "key_lock": "off",
        "systems": {name: summarise(rows) for name, rows in systems.items()},
    }
