"""The continuation judge: does a model continue a held-out sketch of every kind sensibly?

Held-out sketches of four kinds (:data:`KINDS`), each with the real continuation that followed:

* ``folk``: held-out Essen tunes (the test split of :mod:`musicgen_app.ml.data`'s ``essen``
  corpus), the pickup and 4 full bars in;
* ``pop``: held-out POP909 melodies (the test split, by content hash, of the dataset that
  ``musicgen dataset build --midi DIR --name pop909`` builds), 8 bars in from the first bar with
  a melody note;
* ``chorale``: held-out Bach soprano lines (the test split of
  :mod:`musicgen_app.ml.families.chorales`), 4 or 8 full bars in;
* ``chorale4``: the same chorales' four-part openings, for the polyphonic models only.

Every sketch is put back in its own key (the corpora store tunes in C major / A minor), so the
models' own transposition is exercised. A model continues it for :data:`BARS` bars through the
app's public generation API (:func:`musicgen_app.ml.generate.generate_notes`, what
``musicgen continue`` calls), temperature 0.9, key lock off, a fixed seed per sketch.

:func:`judge_continuation` checks one continuation (:data:`CHECKS`); it passes when every check
passes, and each check's value says why one failed. :func:`two_sample_accuracy` is the stand-in
for a listening test: a small logistic regression, trained on half of the sketches to tell the
real continuation from the generated one (from :func:`features`), scored on the other half (and
the halves swapped). 50% means it cannot tell them apart; the real-vs-real figure (the real
continuation against the 4 bars after it) is the floor.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from musicgen_app.core.song import Note, Song, TimeSignature, Track
from musicgen_app.errors import DatasetError
from musicgen_app.ml.keys import PITCH_NAMES, Key, estimate_key

logger = logging.getLogger(__name__)

KINDS = ("folk", "pop", "chorale", "chorale4")
BARS = 4  # bars of continuation
TEMPERATURE = 0.9
RESOLUTION = 480
STEP_TICKS = RESOLUTION // 4  # the 16th grid
MIN_REAL_NOTES = 4  # a sketch is used only when its real continuation has at least this many notes
POLYPHONIC_ARCHITECTURES = ("chord-lstm", "pianoroll-lstm", "pianoroll-seq2seq", "pianoroll-gan")

# the checks, in the order they are reported, with what each demands
CHECKS: dict[str, str] = {
    "notes_per_bar": "notes per bar within 0.5-2x the real continuation's",
    "in_key": "pitch classes in a key the sketch is in >= 85%",
    "range": "every pitch within the sketch's range +- an octave",
    "distinct": ">= 4 distinct pitches (or as many as the real continuation has, if fewer)",
    "stuck": "no pitch struck more than 8 times in a row",
    "on_grid": "every onset on the 16th grid, inside the continuation's bars",
    "texture": "the sketch's texture kept (a single line stays a single line)",
}
IN_KEY_MIN = 0.85
DENSITY_RATIO = (0.5, 2.0)
RANGE_MARGIN = 12
MIN_DISTINCT = 4
MAX_REPEATS = 8


# -- sketches --------------------------------------------------------------------------------------
@dataclass
class Sketch:
    """A held-out sketch (one track, the notes before ``cut_tick``) and what really followed it."""

    kind: str
    name: str
    song: Song
    cut_tick: int
    real: list[Note]  # the real next BARS bars
    real_next: list[Note] = field(default_factory=list)  # the BARS bars after those (may be empty)
    seed: int = 0

    @property
    def notes(self) -> list[Note]:
        """The sketch's notes."""
        return self.song.tracks[0].notes

    @property
    def bar_ticks(self) -> int:
        """Ticks in one bar of the continuation."""
        return self.song.ticks_per_bar(self.cut_tick)

    @property
    def end_tick(self) -> int:
        """Where the continuation's bars end."""
        return self.cut_tick + BARS * self.bar_ticks


def _cut(
    kind: str, name: str, rows: list[tuple[int, int, int]], cut: int, bar: int, ts: TimeSignature, seed: int
) -> Sketch | None:
    """A sketch from notes ``(start, end, pitch)`` in ticks cut at ``cut`` (None when the real
    continuation is too thin, or the piece ends before the continuation's bars do: a model cannot
    know where a piece stops, and a final cadence's density is no reference for four bars)."""
    end = cut + BARS * bar
    if max(e for _, e, _ in rows) < end:
        return None  # the piece ends inside the window: its last bars are a close, not a reference
    real = [Note(s, p, min(e, end), 90) for s, e, p in rows if cut <= s < end]
    if len(real) < MIN_REAL_NOTES:
        return None
    after = [Note(s - BARS * bar, p, min(e, end + BARS * bar) - BARS * bar, 90)
             for s, e, p in rows if end <= s < end + BARS * bar]  # fmt: skip
    sketch = [Note(s, p, min(e, cut), 90) for s, e, p in rows if s < cut]
    if len(sketch) < MIN_REAL_NOTES:
        return None
    song = Song(resolution=RESOLUTION, tracks=[Track(notes=sketch)], time_signatures=[ts])
    return Sketch(kind, name, song, cut, real, after if len(after) >= MIN_REAL_NOTES else [], seed)


def _tune_rows(tune: Any) -> list[tuple[int, int, int]]:
    """An encoded tune's notes in ticks, in its own key (step 0 at tick 0)."""
    from musicgen_app.ml.tokenizers import steps_to_notes

    back = -int(tune.meta.get("transposition", 0))
    return [(s, e, p + back) for s, e, p in steps_to_notes(tune.steps.tolist(), 0, STEP_TICKS)]


def _pick(items: list, n: int) -> list:
    """``n`` items spread evenly over ``items`` (all of them when there are fewer)."""
    if n >= len(items):
        return items
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def _time_signature(steps_per_bar: int) -> TimeSignature:
    if steps_per_bar % 4 == 0:
        return TimeSignature(0, steps_per_bar // 4, 4)
    return TimeSignature(0, max(1, steps_per_bar // 2), 8)


def tune_sketches(ds: Any, indices: Iterable[int], kind: str, n: int, seed_bars: int) -> list[Sketch]:
    """Sketches of the encoded tunes ``indices`` of ``ds``: the pickup and ``seed_bars`` full bars
    in (for ``pop``: from the first bar holding a melody note), :data:`BARS` bars out."""
    out: list[Sketch] = []
    for i in indices:
        tune = ds.tune(int(i))
        spb = int(tune.bar_steps[0]) or 16
        if len(set(tune.bar_steps.tolist())) != 1:
            continue  # meter changes: the bar lines would not be where the song says
        bar = spb * STEP_TICKS
        pickup = int(tune.bar_pos[0])
        rows = _tune_rows(tune)
        if pickup:  # move the pickup to the end of a bar 0, so bar lines fall at multiples of bar
            rows = [(s + pickup * STEP_TICKS, e + pickup * STEP_TICKS, p) for s, e, p in rows]
        if not rows:
            continue
        first_bar = rows[0][0] // bar
        if kind != "pop":
            first_bar = 1 if pickup else 0
        cut = (first_bar + seed_bars) * bar
        sk = _cut(kind, str(tune.meta.get("id", i)), rows, cut, bar, _time_signature(spb), 0)
        if sk is not None:
            out.append(sk)
    out = _pick(out, n)
    for k, sk in enumerate(out):
        sk.seed = 1000 + k
    return out


def folk_sketches(n: int, split: str = "test") -> list[Sketch]:
    """``n`` held-out Essen tunes, 4 bars in (the test split of the ``essen`` dataset; ``split``
    "train" for sketches to choose a setting on)."""
    from musicgen_app.ml import data as data_mod

    ds = data_mod.load_or_build("essen", progress=False)
    return tune_sketches(ds, data_mod.split_indices(ds)[split], "folk", n, seed_bars=4)


def pop_sketches(n: int, dataset: str = "pop909", split: str = "test") -> list[Sketch]:
    """``n`` held-out pop melodies, 8 bars in: the test split of the MIDI-folder dataset
    ``dataset`` (a name built with ``musicgen dataset build --midi``); raises DatasetError."""
    from musicgen_app.ml import data as data_mod
    from musicgen_app.ml.midi_data import load_midi_dataset

    ds = load_midi_dataset(dataset)
    return tune_sketches(ds, data_mod.split_indices(ds)[split], "pop", n, seed_bars=8)


def chorale_sketches(n: int, *, four_part: bool = False, split: str = "test") -> list[Sketch]:
    """``n`` held-out chorale cuts (after 4 full bars, then after 8): the soprano line alone, or
    all four parts."""
    from musicgen_app.ml.families.chorales import chorale_splits

    chorales = chorale_splits()[split]
    out: list[Sketch] = []
    for seed_bars in (4, 8):
        for ch in chorales:
            bs = ch.bar_steps
            shift = (-ch.bar_offset) % bs  # bar lines at multiples of the bar
            first_bar = 0 if ch.bar_offset == 0 else 1
            voices = {v for *_, v in ch.notes}
            top = max(voices, key=lambda v: np.mean([p for _, _, p, w in ch.notes if w == v]))
            rows = [((s + shift) * STEP_TICKS, (s + shift + d) * STEP_TICKS, p)
                    for s, d, p, v in ch.notes if four_part or v == top]  # fmt: skip
            cut = (first_bar + seed_bars) * bs * STEP_TICKS
            ts = TimeSignature(0, ch.numerator, ch.denominator)
            kind = "chorale4" if four_part else "chorale"
            sk = _cut(kind, f"{ch.name}@{seed_bars}", sorted(rows), cut, bs * STEP_TICKS, ts, 0)
            if sk is not None:
                out.append(sk)
    out = _pick(out, n)
    for k, sk in enumerate(out):
        sk.seed = 1000 + k
    return out


def load_sketches(kind: str, n: int, *, pop_dataset: str = "pop909", split: str = "test") -> list[Sketch]:
    """The held-out sketches of ``kind`` (one of :data:`KINDS`); ``split="train"``: sketches from
    the training tunes instead, to choose a setting on without looking at the held-out ones."""
    if split not in ("train", "test"):
        raise DatasetError(f"unknown split '{split}' (choose train or test)")
    if kind == "folk":
        return folk_sketches(n, split)
    if kind == "pop":
        return pop_sketches(n, pop_dataset, split)
    if kind in ("chorale", "chorale4"):
        return chorale_sketches(n, four_part=kind == "chorale4", split=split)
    raise DatasetError(f"unknown kind of sketch '{kind}' (choose from {', '.join(KINDS)})")


# -- the judge --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One check's outcome: its value and whether it passed."""

    name: str
    passed: bool
    value: float
    detail: str


@dataclass
class Verdict:
    """Every check of one continuation; it passes when all of them pass."""

    checks: dict[str, Check]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks.values())

    @property
    def failed(self) -> list[str]:
        """The names of the checks that failed."""
        return [name for name, c in self.checks.items() if not c.passed]

    def __str__(self) -> str:
        if self.passed:
            return "pass"
        return "fail: " + "; ".join(self.checks[n].detail for n in self.failed)


def sketch_key(notes: Sequence[Note]) -> Key:
    """The sketch's key (Krumhansl-Schmuckler, weighted by duration)."""
    return estimate_key([n.pitch for n in notes], [max(1, n.end_tick - n.start_tick) for n in notes])


_COLLECTIONS = [Key(tonic, "major").diatonic_pcs() for tonic in range(12)]


def _share(notes: Sequence[Note], pcs: frozenset[int], *, by_time: bool) -> float:
    weights = [max(1, n.end_tick - n.start_tick) if by_time else 1 for n in notes]
    total = sum(weights)
    inside = sum(w for n, w in zip(notes, weights, strict=True) if n.pitch % 12 in pcs)
    return inside / total if total else 1.0


def key_readings(notes: Sequence[Note]) -> list[tuple[str, frozenset[int]]]:
    """The keys a sketch can be heard in, as ``(name, pitch classes)``: its Krumhansl-Schmuckler
    key (major, or minor with the raised 6th and 7th), then every diatonic collection (the seven
    notes of a major scale, in any of its modes) that holds at least :data:`IN_KEY_MIN` of the
    sketch's note time.

    Why more than one: four bars of a tune often leave the key open, and the continuation is
    what settles it. A tune on G, F#, D and A reads as D major to Krumhansl-Schmuckler and goes on
    with C naturals in G major; modal folk tunes (D mixolydian, D dorian) are heard in the notes of
    G or C major, which a major/minor profile has no name for; a chorale modulates to its dominant
    or relative key. With the sketch's key alone, 18% of the real Essen continuations and 13% of
    Bach's soprano lines failed the check; what the check must catch (notes no reading of the
    sketch holds: a chromatic or far-off continuation) still fails."""
    ks = sketch_key(notes)
    out = [(ks.name, ks.scale_pcs())]
    for tonic, coll in enumerate(_COLLECTIONS):
        if _share(notes, coll, by_time=True) >= IN_KEY_MIN and coll != out[0][1]:
            out.append((f"the notes of {PITCH_NAMES[tonic]} major", coll))
    return out


def in_key_share(notes: Sequence[Note], sketch_notes: Sequence[Note]) -> tuple[float, str]:
    """The largest share of ``notes`` (counted by onsets) in one of the sketch's
    :func:`key_readings`, and that reading's name (1.0 for no notes)."""
    best, name = -1.0, ""
    for reading, pcs in key_readings(sketch_notes):
        share = _share(notes, pcs, by_time=False)
        if share > best:
            best, name = share, reading
    return best, name


def max_simultaneous(notes: Sequence[Note]) -> int:
    """The most notes sounding at once (at any onset)."""
    best = 0
    for t in {n.start_tick for n in notes}:
        best = max(best, sum(1 for n in notes if n.start_tick <= t < n.end_tick))
    return best


def longest_repeat(notes: Sequence[Note]) -> int:
    """The longest run of consecutive onsets (distinct onset times) that all strike one pitch."""
    by_onset: dict[int, set[int]] = {}
    for n in notes:
        by_onset.setdefault(n.start_tick, set()).add(n.pitch)
    runs: dict[int, int] = {}
    best = 0
    for t in sorted(by_onset):
        struck = by_onset[t]
        runs = {p: runs.get(p, 0) + 1 for p in struck}
        best = max(best, *runs.values())
    return best


def judge_continuation(
    sketch: Sketch, notes: Sequence[Note], *, allow_harmony: bool = False, grid_ticks: int | None = None
) -> Verdict:
    """Check ``notes`` (a continuation of ``sketch`` from its cut) against :data:`CHECKS`.

    ``allow_harmony``: the musician asked for voices, so the texture check is waived.
    ``grid_ticks``: the onset grid (default a 16th of the sketch's resolution)."""
    pitches = [n.pitch for n in notes]
    grid = grid_ticks or sketch.song.resolution // 4
    checks: dict[str, Check] = {}

    def add(name: str, passed: bool, value: float, detail: str) -> None:
        checks[name] = Check(name, bool(passed), float(value), detail)

    real_npb = len(sketch.real) / BARS
    npb = len(notes) / BARS
    ratio = npb / real_npb if real_npb else math.inf
    add("notes_per_bar", DENSITY_RATIO[0] <= ratio <= DENSITY_RATIO[1], npb,
        f"{npb:.2f} notes per bar against the real {real_npb:.2f} (x{ratio:.2f})")  # fmt: skip
    in_key, reading = in_key_share(notes, sketch.notes)
    add("in_key", in_key >= IN_KEY_MIN, in_key, f"{in_key:.0%} of the notes in {reading}")
    sk = [n.pitch for n in sketch.notes]
    lo, hi = min(sk) - RANGE_MARGIN, max(sk) + RANGE_MARGIN
    outside = sum(1 for p in pitches if not lo <= p <= hi)
    add("range", outside == 0, outside, f"{outside} notes outside {lo}-{hi}")
    distinct = len(set(pitches))
    need = min(MIN_DISTINCT, len({n.pitch for n in sketch.real})) if sketch.real else MIN_DISTINCT
    add("distinct", distinct >= need, distinct, f"{distinct} distinct pitches (at least {need})")
    run = longest_repeat(notes)
    add("stuck", run <= MAX_REPEATS, run, f"one pitch struck {run} times in a row")
    off = sum(1 for n in notes if (n.start_tick - sketch.cut_tick) % grid
              or not sketch.cut_tick <= n.start_tick < sketch.end_tick)  # fmt: skip
    add("on_grid", off == 0, off, f"{off} onsets off the grid or outside the bars")
    poly_sketch = max_simultaneous(sketch.notes)
    poly = max_simultaneous(notes)
    if allow_harmony:
        ok = True
    elif poly_sketch <= 1:
        ok = poly <= 1
    else:
        ok = 2 <= poly <= poly_sketch or not notes
    add("texture", ok, poly, f"up to {poly} notes at once on a sketch of up to {poly_sketch}")
    return Verdict(checks)


def continue_sketch(
    model: Any, sketch: Sketch, *, temperature: float = TEMPERATURE, **settings: Any
) -> list[Note]:
    """The model's continuation of ``sketch`` through the public API (key lock off, its seed);
    ``settings``: other :class:`~musicgen_app.ml.sampling.SamplingConfig` fields (their defaults
    otherwise)."""
    from musicgen_app.ml.generate import SamplingConfig, generate_notes

    sampling = SamplingConfig(temperature=temperature, key_lock=None, seed=sketch.seed, **settings)
    return generate_notes(model, sketch.song, 0, start_tick=sketch.cut_tick, bars=BARS, sampling=sampling)


def is_polyphonic(card: dict) -> bool:
    """Whether a model writes several voices (judged on four-part chorale openings too)."""
    arch = card.get("architecture")
    return bool(card.get("polyphonic")) or (isinstance(arch, str) and arch in POLYPHONIC_ARCHITECTURES)


def kinds_for(card: dict, kinds: Sequence[str]) -> list[str]:
    """The kinds of sketch a model is judged on (``chorale4`` only for polyphonic models)."""
    return [k for k in kinds if k != "chorale4" or is_polyphonic(card)]


# -- the classifier two-sample test --------------------------------------------------------------------
INTERVAL_BINS = (0, 1, 2, 3, 4, 5, 7, 12)  # |interval| upper edges; larger ones share the last bin
DURATION_BINS = (1, 2, 3, 4, 6, 8, 12, 16)  # in 16ths; longer ones share the last bin


def _bin(value: float, edges: Sequence[float]) -> int:
    for i, e in enumerate(edges):
        if value <= e:
            return i
    return len(edges)


def features(notes: Sequence[Note], sketch: Sketch) -> np.ndarray:
    """A continuation as a fixed-length vector (relative to the sketch's key, register and bars):
    pitch-class histogram from the tonic (12), interval histogram of the top line (9, plus the
    share going up), notes per bar (mean, spread over the bars), onset positions in the beat (4)
    and on the downbeat (1), duration histogram (9), register (mean pitch against the sketch's,
    spread, range), polyphony (notes per onset, most at once) and silence (share of empty bars)."""
    step = sketch.song.resolution // 4
    key = sketch_key(sketch.notes)
    pitches = np.array([n.pitch for n in notes], dtype=float)
    pc = np.zeros(12)
    for p in pitches:
        pc[(int(p) - key.tonic_pc) % 12] += 1
    pc /= max(1.0, pc.sum())
    onsets = sorted({n.start_tick for n in notes})
    top = [max(n.pitch for n in notes if n.start_tick == t) for t in onsets]
    iv = np.zeros(len(INTERVAL_BINS) + 1)
    ups = 0
    for a, b in pairwise(top):
        iv[_bin(abs(b - a), INTERVAL_BINS)] += 1
        ups += b > a
    n_iv = max(1, len(top) - 1)
    iv /= n_iv
    bar = sketch.bar_ticks
    per_bar = np.zeros(BARS)
    for n in notes:
        b = (n.start_tick - sketch.cut_tick) // bar
        if 0 <= b < BARS:
            per_bar[b] += 1
    pos = np.zeros(4)
    down = 0
    for t in onsets:
        rel = (t - sketch.cut_tick) // step
        pos[rel % 4] += 1
        down += (t - sketch.cut_tick) % bar == 0
    pos /= max(1, len(onsets))
    dur = np.zeros(len(DURATION_BINS) + 1)
    for n in notes:
        dur[_bin((n.end_tick - n.start_tick) / step, DURATION_BINS)] += 1
    dur /= max(1, len(notes))
    sk = np.array([n.pitch for n in sketch.notes], dtype=float)
    if len(pitches):
        register = [pitches.mean() - sk.mean(), pitches.std(), pitches.max() - pitches.min()]
    else:
        register = [0.0, 0.0, 0.0]
    poly = [len(notes) / max(1, len(onsets)), max_simultaneous(notes)]
    return np.concatenate([
        pc, iv, [ups / n_iv], [per_bar.mean(), per_bar.std()], pos, [down / max(1, len(onsets))], dur,
        register, poly, [float(np.mean(per_bar == 0))],
    ]).astype(np.float64)  # fmt: skip


class LogisticClassifier:
    """L2-regularised logistic regression on standardised features, fitted by Newton's method."""

    def __init__(self, l2: float = 1.0, iterations: int = 30) -> None:
        self.l2 = l2
        self.iterations = iterations
        self.mean = np.zeros(0)
        self.scale = np.ones(0)
        self.w = np.zeros(0)

    def _design(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.scale
        return np.hstack([z, np.ones((len(z), 1))])

    def fit(self, x: np.ndarray, y: np.ndarray) -> LogisticClassifier:
        """Fit on features ``x`` (N, D) and labels ``y`` (N,) in {0, 1}."""
        self.mean = x.mean(axis=0)
        self.scale = x.std(axis=0)
        self.scale[self.scale < 1e-9] = 1.0
        a = self._design(x)
        w = np.zeros(a.shape[1])
        reg = np.full(a.shape[1], self.l2)
        reg[-1] = 0.0  # the bias is not shrunk
        for _ in range(self.iterations):
            p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -30, 30)))
            grad = a.T @ (p - y) + reg * w
            hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(reg) + 1e-9 * np.eye(len(w))
            delta = np.linalg.solve(hess, grad)
            w -= delta
            if float(np.abs(delta).max()) < 1e-8:
                break
        self.w = w
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Labels (0 or 1) of features ``x``."""
        return (self._design(x) @ self.w > 0).astype(int)


def two_sample_accuracy(real: np.ndarray, other: np.ndarray, *, seed: int = 0) -> float:
    """Held-out accuracy of a classifier telling ``real[i]`` from ``other[i]`` (row i: one sketch).

    The sketches are split in two halves at random (fixed ``seed``); a classifier trained on one
    half's pairs is scored on the other half's, and the halves swapped; the mean of both is
    returned (NaN with fewer than 4 sketches). 0.5: it cannot tell them apart."""
    n = len(real)
    if n < 4 or len(other) != n:
        return float("nan")
    perm = np.random.default_rng(seed).permutation(n)
    halves = (perm[: n // 2], perm[n // 2 :])
    scores = []
    for train, test in (halves, halves[::-1]):
        x = np.vstack([real[train], other[train]])
        y = np.concatenate([np.ones(len(train)), np.zeros(len(train))])
        clf = LogisticClassifier().fit(x, y)
        xt = np.vstack([real[test], other[test]])
        yt = np.concatenate([np.ones(len(test)), np.zeros(len(test))])
        scores.append(float(np.mean(clf.predict(xt) == yt)))
    return float(np.mean(scores))


# -- a model on a kind ---------------------------------------------------------------------------------
def _in_key(notes: Sequence[Note], sketch: Sketch) -> float:
    return in_key_share(notes, sketch.notes)[0] if notes else float("nan")


def _mean(values: Sequence[float]) -> float:
    vals = [v for v in values if v == v]
    return float(np.mean(vals)) if vals else float("nan")


def judge_takes(sketches: Sequence[Sketch], takes: Sequence[Sequence[Note]]) -> dict:
    """The judge's and the classifier's figures for ``takes[i]`` continuing ``sketches[i]``."""
    verdicts = [judge_continuation(s, t) for s, t in zip(sketches, takes, strict=True)]
    fails = {name: sum(name in v.failed for v in verdicts) for name in CHECKS}
    real_x = np.array([features(s.real, s) for s in sketches]) if sketches else np.zeros((0, 1))
    take_x = np.array([features(t, s) for s, t in zip(sketches, takes, strict=True)]) if sketches else real_x
    return {
        "sketches": len(sketches),
        "passed": sum(v.passed for v in verdicts),
        "pass_rate": sum(v.passed for v in verdicts) / len(verdicts) if verdicts else float("nan"),
        "fails": {k: v for k, v in fails.items() if v},
        "notes_per_bar": _mean([len(t) / BARS for t in takes]),
        "real_notes_per_bar": _mean([len(s.real) / BARS for s in sketches]),
        "in_key": _mean([_in_key(t, s) for s, t in zip(sketches, takes, strict=True)]),
        "real_in_key": _mean([_in_key(s.real, s) for s in sketches]),
        "classifier": two_sample_accuracy(real_x, take_x),
    }


def real_floor(sketches: Sequence[Sketch]) -> dict:
    """The real continuations through the judge, and the classifier's real-vs-real floor (the real
    continuation against the :data:`BARS` bars after it, moved onto the same bars)."""
    figures = judge_takes(sketches, [s.real for s in sketches])
    with_next = [s for s in sketches if s.real_next]
    real_x = np.array([features(s.real, s) for s in with_next]) if with_next else np.zeros((0, 1))
    next_x = np.array([features(s.real_next, s) for s in with_next]) if with_next else real_x
    figures["classifier"] = two_sample_accuracy(real_x, next_x)
    figures["floor_sketches"] = len(with_next)
    return figures


def evaluate_model_on(
    model: Any, sketches: Sequence[Sketch], *, temperature: float = TEMPERATURE,
    on_take: Callable[[Sketch, list[Note], Verdict], None] | None = None, **settings: Any,
) -> dict:  # fmt: skip
    """Continue every sketch with ``model`` and judge the takes (see :func:`judge_takes`);
    ``settings`` go to :func:`continue_sketch`."""
    takes = []
    for s in sketches:
        notes = continue_sketch(model, s, temperature=temperature, **settings)
        takes.append(notes)
        if on_take is not None:
            on_take(s, notes, judge_continuation(s, notes))
    return judge_takes(sketches, takes)
