"""The Bach chorale dataset (music21's bundled corpus) for the polyphonic families (001, 002).

Each chorale becomes a plain record: its notes on a 16th-note grid (start, length, MIDI pitch,
voice), its meter, where its bar lines fall (pickups), and its key as music21 reads it. Built
once and cached as JSON under :func:`musicgen_app.core.paths.cache_dir`; the split into
train/valid/test is by a hash of the chorale's name, so it never depends on parse order.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from musicgen_app.core import paths
from musicgen_app.errors import DatasetError

logger = logging.getLogger(__name__)

CACHE_NAME = "bach_chorales_v1.json"
STEPS_PER_QUARTER = 4  # the 16th-note grid


@dataclass(slots=True)
class Chorale:
    """One chorale on the 16th grid. ``notes`` rows are ``[start, length, pitch, voice]`` in steps."""

    name: str
    numerator: int
    denominator: int
    bar_offset: int  # steps: bar lines fall at bar_offset + k * bar_length (pickup bars)
    key_tonic_pc: int
    key_mode: str
    notes: list[list[int]]

    @property
    def bar_steps(self) -> int:
        """Length of one bar in 16ths."""
        return STEPS_PER_QUARTER * 4 * self.numerator // self.denominator

    @property
    def length_steps(self) -> int:
        """Where the last note ends."""
        return max((s + d for s, d, _, _ in self.notes), default=0)


def split_of(name: str) -> str:
    """``train`` (80%), ``valid`` (10%) or ``test`` (10%), fixed by the name's hash."""
    h = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 10
    return "test" if h == 0 else "valid" if h == 1 else "train"


def _parse_one(path: Path) -> Chorale | None:
    from music21 import converter, meter

    score: Any = converter.parse(str(path))  # a Score for a chorale file
    parts = [p for p in score.parts if p.flatten().notes]
    if len(parts) != 4:
        return None  # a cantata movement with instruments, not a four-part chorale
    ts = score.recurse().getElementsByClass(meter.TimeSignature).first()
    num, den = (ts.numerator, ts.denominator) if ts is not None else (4, 4)
    first_measure = parts[0].getElementsByClass("Measure").first()
    pickup_ql = float(first_measure.paddingLeft) if first_measure is not None else 0.0
    bar_ql = 4.0 * num / den
    bar_offset = round(((bar_ql - pickup_ql) % bar_ql) * STEPS_PER_QUARTER) if pickup_ql else 0
    notes: list[list[int]] = []
    for voice, part in enumerate(parts):
        for n in part.stripTies().flatten().notes:
            ql = float(n.duration.quarterLength)
            if ql <= 0:
                continue  # grace note
            start = round(float(n.offset) * STEPS_PER_QUARTER)
            length = max(1, round(ql * STEPS_PER_QUARTER))
            for p in n.pitches:
                notes.append([start, length, int(p.midi), voice])
    notes.sort()
    k = score.analyze("key")
    return Chorale(
        name=path.stem,
        numerator=num,
        denominator=den,
        bar_offset=bar_offset,
        key_tonic_pc=int(k.tonic.pitchClass),
        key_mode=str(k.mode),
        notes=notes,
    )


def build_chorales(cache: Path | None = None) -> list[Chorale]:
    """Parse every four-part Bach chorale in music21's corpus and cache the result."""
    from music21 import corpus

    out: list[Chorale] = []
    seen: set[str] = set()
    for path in corpus.getComposer("bach"):
        path = Path(path)
        if path.suffix not in (".mxl", ".xml", ".krn"):
            continue
        try:
            ch = _parse_one(path)
        except Exception as exc:  # music21 raises many types on odd files; skip the file
            logger.warning("skipping %s: %s", path.name, exc)
            continue
        if ch is None or not ch.notes:
            continue
        # Some chorales are in the corpus twice (same tune, another movement): keep distinct note lists.
        digest = hashlib.sha1(json.dumps(ch.notes).encode()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        out.append(ch)
    if not out:
        raise DatasetError("music21's corpus has no Bach chorales; reinstall music21")
    target = cache or paths.cache_dir() / CACHE_NAME
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(c) for c in out]))
    tmp.replace(target)
    logger.info("built %d chorales into %s", len(out), target)
    return out


def load_chorales(build: bool = True) -> list[Chorale]:
    """The cached chorales (built on first use when ``build``)."""
    target = paths.cache_dir() / CACHE_NAME
    if not target.exists():
        if not build:
            raise DatasetError("the Bach chorale dataset is not built yet: run `musicgen train` first")
        return build_chorales(target)
    try:
        return [Chorale(**d) for d in json.loads(target.read_text())]
    except (ValueError, TypeError) as exc:
        raise DatasetError(f"the cached chorale dataset {target} is damaged ({exc}); delete it") from exc


def chorale_splits(build: bool = True) -> dict[str, list[Chorale]]:
    """The chorales by split name."""
    out: dict[str, list[Chorale]] = {"train": [], "valid": [], "test": []}
    for ch in load_chorales(build):
        out[split_of(ch.name)].append(ch)
    return out
