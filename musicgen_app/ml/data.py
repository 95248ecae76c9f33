"""Training data: folk tunes from music21's bundled ABC corpus, encoded on a 16th-note grid.

The encoding follows paper 003: each 16th-note step holds one symbol, a MIDI pitch at a note's
onset, ``r`` at a rest's onset, ``_`` while the previous note or rest holds. Like the paper we drop
every tune with a note or rest whose length is not in :data:`ACCEPTABLE_QUARTERS` (tuplets, very
long notes), and transpose each tune to C major or A minor (Krumhansl-Schmuckler estimate; modal
tunes go with their nearest of the two); the shift is kept per tune. Grace notes are ignored (they
have no length). Chords (rare) keep their top note. We also keep, per step, the position inside
the bar and the bar length in steps (from the measure and its pickup), which the model may use as
conditioning.

The built dataset is cached as ``<cache_dir>/datasets/<corpus>-v<N>.npz`` plus a JSON file with
per-tune metadata (id, title, meter, ABC key, estimated key, transposition). Splits are by tune
with a fixed seed (:func:`split_indices`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgen_app.core import paths
from musicgen_app.errors import DatasetError
from musicgen_app.ml.keys import estimate_key, transposition_to_reference

logger = logging.getLogger(__name__)

DATASET_VERSION = 1
STEPS_PER_QUARTER = 4  # a 16th-note grid
PAPER_QUARTERS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)  # the paper's list
# The paper's list drops half of Essen for its long final notes (a dotted whole in 6/4, two tied
# whole notes); those are exact on the grid, so we also accept them. Tuplets and odd lengths
# (1/32 notes, 5/16...) are still dropped.
ACCEPTABLE_QUARTERS = (*PAPER_QUARTERS, 6.0, 8.0, 12.0, 16.0)
HOLD = -2  # raw step codes: a MIDI pitch 0..127 at an onset, REST, or HOLD
REST = -1

CORPORA: dict[str, str] = {
    "essen": "essenFolksong",
    "oneill": "oneills1850",
    "ryan": "ryansMammoth",
}
SPLIT_SEED = 20250003
SPLIT_FRACTIONS = (0.85, 0.05, 0.10)  # train, validation, test


@dataclass
class EncodedTune:
    """One tune on the 16th grid, already transposed to C major / A minor."""

    id: str
    steps: np.ndarray  # (T,) int16: pitch, REST or HOLD
    bar_pos: np.ndarray  # (T,) uint8: step index inside the bar
    bar_steps: np.ndarray  # (T,) uint8: steps in the current bar
    meta: dict = field(default_factory=dict)


@dataclass
class Dataset:
    """Every tune of a corpus, concatenated: ``steps[offsets[i]:offsets[i+1]]`` is tune ``i``."""

    name: str
    steps: np.ndarray
    bar_pos: np.ndarray
    bar_steps: np.ndarray
    offsets: np.ndarray
    meta: list[dict]
    stats: dict

    def __len__(self) -> int:
        return len(self.meta)

    def tune(self, i: int) -> EncodedTune:
        """Tune ``i`` as an :class:`EncodedTune` (views, not copies)."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return EncodedTune(
            self.meta[i]["id"], self.steps[a:b], self.bar_pos[a:b], self.bar_steps[a:b], self.meta[i]
        )

    def tunes(self, indices: Iterable[int]) -> Iterator[EncodedTune]:
        """The tunes at ``indices``."""
        for i in indices:
            yield self.tune(int(i))


# -- ABC -> steps ---------------------------------------------------------------------------------
def split_abc_tunes(text: str) -> list[str]:
    """The tunes of an ABC file (each starting at its ``X:`` line)."""
    parts = re.split(r"\n(?=X:)", "\n" + text.replace("\r\n", "\n"))
    return [p.strip("\n") + "\n" for p in parts if p.lstrip().startswith("X:")]


def _abc_field(tune: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.*)$", tune, flags=re.MULTILINE)
    return m.group(1).strip() if m else ""


class _RejectedTuneError(Exception):
    """A tune the paper's filter drops (the message is the reason)."""


def encode_abc_tune(abc: str, tune_id: str) -> EncodedTune:
    """Parse one ABC tune with music21 and encode it; raises ``_RejectedTuneError`` for filtered tunes."""
    from music21 import converter, meter

    try:
        score = converter.parse(abc, format="abc")
    except Exception as exc:  # music21 raises many types on bad ABC
        raise _RejectedTuneError(f"unparsable: {type(exc).__name__}") from exc
    parts = list(score.parts) if hasattr(score, "parts") and score.parts else [score]
    part = parts[0]
    measures = list(part.getElementsByClass("Measure"))
    if not measures:
        # music21 leaves some tunes unbarred (most have tuplets); without bars there are no bar
        # positions, so they are dropped, for the paper's reason when it applies
        for el in part.flatten().notesAndRests:
            q = float(el.quarterLength)
            if q and not any(abs(q - a) < 1e-6 for a in ACCEPTABLE_QUARTERS):
                raise _RejectedTuneError("unusual duration")
        raise _RejectedTuneError("no bar lines")
    events: list[tuple[float, float, int, bool]] = []  # (offset_q, length_q, code, tie_continues)
    bar_info: list[tuple[float, float, float]] = []  # (measure offset, padding, bar length) in quarters
    current_ts = None
    for m in measures:
        ts = m.timeSignature or current_ts
        if ts is None:
            ts = meter.TimeSignature("4/4")
        current_ts = ts
        bar_q = float(ts.barDuration.quarterLength)
        m_offset = float(m.offset)
        bar_info.append((m_offset, float(m.paddingLeft or 0.0), bar_q))
        for el in m.notesAndRests:
            q = float(el.quarterLength)
            if q == 0:
                continue  # grace note
            if not any(abs(q - a) < 1e-6 for a in ACCEPTABLE_QUARTERS):
                raise _RejectedTuneError("unusual duration")
            off = m_offset + float(el.offset)
            if el.isRest:
                code = REST
            elif el.isChord:
                code = max(p.midi for p in el.pitches)
            else:
                code = int(el.pitch.midi)
            tied = el.tie is not None and el.tie.type in ("stop", "continue")
            events.append((off, q, code, tied))
    if not any(e[2] >= 0 for e in events):
        raise _RejectedTuneError("no notes")
    total_q = max(o + q for o, q, _, _ in events)
    n_steps = round(total_q * STEPS_PER_QUARTER)
    steps = np.full(n_steps, HOLD, dtype=np.int16)
    for off, _q, code, tied in events:
        s = off * STEPS_PER_QUARTER
        if abs(s - round(s)) > 1e-6:
            raise _RejectedTuneError("off the 16th grid")
        if tied and code >= 0:
            continue  # a tied continuation holds the previous note
        steps[round(s)] = code
    if steps[0] == HOLD:
        steps[0] = REST
    bar_pos = np.zeros(n_steps, dtype=np.uint8)
    bar_steps = np.zeros(n_steps, dtype=np.uint8)
    for k, (moff, pad, bar_q) in enumerate(bar_info):
        a = round(moff * STEPS_PER_QUARTER)
        b = round(bar_info[k + 1][0] * STEPS_PER_QUARTER) if k + 1 < len(bar_info) else n_steps
        per_bar = max(1, min(255, round(bar_q * STEPS_PER_QUARTER)))
        first = round(pad * STEPS_PER_QUARTER)
        idx = np.arange(max(0, a), min(b, n_steps))
        bar_pos[idx] = np.minimum(255, (first + idx - a) % per_bar)
        bar_steps[idx] = per_bar
    # key estimate from onset pitches weighted by their lengths in steps
    onset_idx = np.flatnonzero(steps >= 0)
    ends = np.append(np.flatnonzero(steps != HOLD)[1:], n_steps)
    lengths = {int(i): 1 for i in onset_idx}
    nonhold = np.flatnonzero(steps != HOLD)
    for i, j in zip(nonhold, ends, strict=True):
        if steps[i] >= 0:
            lengths[int(i)] = int(j - i)
    key = estimate_key([int(steps[i]) for i in onset_idx], [lengths[int(i)] for i in onset_idx])
    shift = transposition_to_reference(key)
    steps = np.where(steps >= 0, steps + shift, steps).astype(np.int16)
    meter_text = _abc_field(abc, "M")
    meta = {
        "id": tune_id,
        "title": _abc_field(abc, "T"),
        "code": _abc_field(abc, "N").split()[0] if _abc_field(abc, "N") else "",
        "meter": meter_text,
        "abc_key": _abc_field(abc, "K"),
        "estimated_key": key.name,
        "mode": "minor" if key.is_minor_like else "major",
        "transposition": shift,
        "steps_per_bar": int(bar_steps[-1]),
        "n_steps": n_steps,
        "n_notes": len(onset_idx),
    }
    return EncodedTune(tune_id, steps, bar_pos, bar_steps, meta)


def corpus_files(corpus: str) -> list[Path]:
    """The ABC files of a corpus bundled with music21 (raises DatasetError for an unknown name)."""
    if corpus not in CORPORA:
        raise DatasetError(f"unknown corpus '{corpus}' (choose from {', '.join(CORPORA)})")
    from music21 import corpus as m21corpus

    folder = CORPORA[corpus]
    files = sorted(p for p in m21corpus.getPaths(fileExtensions=("abc",)) if Path(p).parent.name == folder)
    if not files:
        raise DatasetError(f"music21's corpus has no ABC files for '{corpus}' ({folder})")
    return [Path(p) for p in files]


def iter_corpus_tunes(corpus: str, limit: int | None = None) -> Iterator[tuple[str, str]]:
    """``(tune_id, abc_text)`` for every tune of the corpus (``limit`` caps the count)."""
    n = 0
    for path in corpus_files(corpus):
        if path.name.startswith("test") or path.name == "variant0.abc":
            continue  # music21's own test files, not folk songs
        text = path.read_text(encoding="latin-1")
        for tune in split_abc_tunes(text):
            x = _abc_field(tune, "X") or str(n)
            yield f"{path.stem}/{x}", tune
            n += 1
            if limit is not None and n >= limit:
                return


def build_dataset(
    corpus: str = "essen",
    *,
    limit: int | None = None,
    progress: bool = True,
    tunes: Iterable[tuple[str, str]] | None = None,
) -> Dataset:
    """Parse and encode a corpus (or the given ``(id, abc)`` tunes). Does not cache; see
    :func:`load_or_build`."""
    from tqdm import tqdm

    items = list(tunes) if tunes is not None else list(iter_corpus_tunes(corpus, limit))
    encoded: list[EncodedTune] = []
    rejected: dict[str, int] = {}
    for tune_id, abc in tqdm(items, desc=f"parsing {corpus}", unit="tune", disable=not progress):
        try:
            encoded.append(encode_abc_tune(abc, tune_id))
        except _RejectedTuneError as why:
            rejected[str(why)] = rejected.get(str(why), 0) + 1
    if not encoded:
        raise DatasetError(f"no usable tunes in corpus '{corpus}'")
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(t.steps) for t in encoded])
    stats = {
        "corpus": corpus,
        "version": DATASET_VERSION,
        "parsed": len(items),
        "kept": len(encoded),
        "rejected": rejected,
        "steps": int(offsets[-1]),
        "filter": (
            f"note/rest lengths in quarters must be one of {list(ACCEPTABLE_QUARTERS)} "
            f"(the paper's {list(PAPER_QUARTERS)} plus long final notes)"
        ),
        "transposition": "to C major / A minor (Krumhansl-Schmuckler estimate)",
    }
    return Dataset(
        corpus,
        np.concatenate([t.steps for t in encoded]).astype(np.int16),
        np.concatenate([t.bar_pos for t in encoded]).astype(np.uint8),
        np.concatenate([t.bar_steps for t in encoded]).astype(np.uint8),
        offsets,
        [t.meta for t in encoded],
        stats,
    )


def cache_path(corpus: str) -> Path:
    """Where the encoded corpus is cached."""
    return paths.cache_dir() / "datasets" / f"{corpus}-v{DATASET_VERSION}.npz"


def save_dataset(ds: Dataset, path: Path) -> None:
    """Write ``path`` (.npz arrays) and ``path.with_suffix('.json')`` (metadata), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, steps=ds.steps, bar_pos=ds.bar_pos, bar_steps=ds.bar_steps, offsets=ds.offsets)
    meta_path = path.with_suffix(".json")
    tmp_meta = meta_path.with_name(meta_path.name + ".tmp")
    tmp_meta.write_text(json.dumps({"name": ds.name, "stats": ds.stats, "tunes": ds.meta}))
    tmp.replace(path)
    tmp_meta.replace(meta_path)


def load_dataset(path: Path) -> Dataset:
    """Read a dataset written by :func:`save_dataset` (raises DatasetError)."""
    meta_path = path.with_suffix(".json")
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in ("steps", "bar_pos", "bar_steps", "offsets")}
        info = json.loads(meta_path.read_text())
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"the cached dataset {path} is unreadable ({exc}); rebuild it") from exc
    return Dataset(
        info["name"], arrays["steps"], arrays["bar_pos"], arrays["bar_steps"], arrays["offsets"],
        info["tunes"], info["stats"],
    )  # fmt: skip


def load_or_build(
    corpus: str = "essen", *, rebuild: bool = False, progress: bool = True, on_build: Callable | None = None
) -> Dataset:
    """The cached dataset of ``corpus``, building (and caching) it first when needed."""
    path = cache_path(corpus)
    if path.exists() and path.with_suffix(".json").exists() and not rebuild:
        return load_dataset(path)
    if on_build is not None:
        on_build(path)
    ds = build_dataset(corpus, progress=progress)
    save_dataset(ds, path)
    logger.info("cached %d tunes at %s", len(ds), path)
    return ds


# -- split ------------------------------------------------------------------------------------------
def split_indices(
    ds: Dataset, seed: int = SPLIT_SEED, fractions: tuple[float, float, float] = SPLIT_FRACTIONS
) -> dict[str, np.ndarray]:
    """Train/validation/test tune indices: a seeded shuffle of the tunes sorted by id.

    A dataset built from a MIDI folder carries each file's split (by a hash of its content, so
    adding files never moves old ones); that split is used as it is, except that a tiny dataset
    whose hash gave no validation or test file lends them training files (by content hash too)."""
    if len(ds) >= 3 and ds.meta and all("split" in m for m in ds.meta):
        parts = {k: [i for i, m in enumerate(ds.meta) if m["split"] == k] for k in ("test", "val", "train")}
        for k in ("test", "val"):
            if not parts[k]:
                donors = sorted(parts["train"], key=lambda i: str(ds.meta[i].get("sha1", i)))
                if len(donors) > 1:
                    parts[k].append(donors[-1])
                    parts["train"].remove(donors[-1])
        return {k: np.array(sorted(v), dtype=np.int64) for k, v in parts.items()}
    order = sorted(range(len(ds)), key=lambda i: ds.meta[i]["id"])
    rng = np.random.default_rng(seed)
    perm = np.array(order)[rng.permutation(len(order))]
    n = len(perm)
    n_test = max(1, round(n * fractions[2]))
    n_val = max(1, round(n * fractions[1]))
    return {
        "test": np.sort(perm[:n_test]),
        "val": np.sort(perm[n_test : n_test + n_val]),
        "train": np.sort(perm[n_test + n_val :]),
    }


def split_record(ds: Dataset, split: dict[str, np.ndarray], seed: int = SPLIT_SEED) -> dict:
    """What a model card stores about the split: seed, counts, test ids and a digest per part."""
    ids = {k: [ds.meta[int(i)]["id"] for i in v] for k, v in split.items()}
    return {
        "by": "tune",
        "seed": seed,
        "fractions": dict(zip(("train", "val", "test"), SPLIT_FRACTIONS, strict=True)),
        "counts": {k: len(v) for k, v in ids.items()},
        "sha1": {k: hashlib.sha1("\n".join(v).encode()).hexdigest() for k, v in ids.items()},
        "test_ids": ids["test"],
    }
