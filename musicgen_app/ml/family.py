"""One interface for every model family, one registry keyed by the card's family, one card schema.

A :class:`Family` knows how to

* make its architecture config (a dataclass, saved in the card as ``config``), full-size or tiny;
* train a fresh network on a :class:`TrainData` (the same data for every family: the melody line of
  each piece and its polyphonic notes, by split) within a time budget and a step cap, writing
  ``NAME.safetensors`` + card (schema 2) where the :class:`TrainRun` says;
* load a checkpoint as a :class:`~musicgen_app.ml.models.GenerativeModel` whose sessions stream notes
  (the grid models through their fast numpy steppers);
* name the unit its metrics are in.

:data:`FAMILIES` is the one registry (filled and read by :mod:`musicgen_app.ml.registry`):
``card["family"]`` of a schema-2 card is its key. Version-1
cards (``family`` shared by the three piano-roll architectures, ``architecture`` a dict for
melody-lstm) are read through :func:`family_key`, so old checkpoints keep loading.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicgen_app.errors import CheckpointError

if TYPE_CHECKING:
    from musicgen_app.ml.data import Dataset
    from musicgen_app.ml.families.chorales import Chorale
    from musicgen_app.ml.models import GenerativeModel

logger = logging.getLogger(__name__)

CARD_SCHEMA = 2
SPLITS = ("train", "valid", "test")


@dataclass
class TrainData:
    """What every family trains on: ``melody`` (single-line tunes on the 16th grid, in C major /
    A minor, with bar positions; split by :func:`musicgen_app.ml.data.split_indices`) and ``pieces``
    (each piece's pitched notes as :class:`~musicgen_app.ml.families.chorales.Chorale` records, the
    melody as voice 0), by split ``train``/``valid``/``test``."""

    name: str
    melody: Dataset
    pieces: dict[str, list[Chorale]]


@dataclass
class TrainRun:
    """Where and how long one training run goes. ``max_steps`` 0: only the time budget stops it."""

    name: str
    out_dir: Path
    minutes: float = 10.0
    max_steps: int = 0
    tiny: bool = False  # the smallest config of the family (tests, smoke runs)
    seed: int = 0
    resume: bool = False  # continue from ``resume_from`` (default: ``weights``, a killed run's best so far)
    resume_from: str = ""
    base: str = ""  # fine-tune: the weights of a model of the same family (its config, vocabulary, weights)
    progress: bool = False  # a progress bar on stderr
    # the one loop's options (:class:`musicgen_app.ml.training.TrainConfig` fields: lr, patience,
    # max_epochs, threads, device...) over the family's defaults
    loop: dict = field(default_factory=dict)
    # the family's own options (architecture fields such as hidden_size; melody-lstm's batch_size,
    # seq_len, limit_tunes), over its defaults
    options: dict = field(default_factory=dict)
    on_event: Callable[[dict], None] | None = None  # progress events of the loop (main rank)
    extra: dict = field(default_factory=dict)

    @property
    def resume_path(self) -> Path:
        """The checkpoint a resumed run starts from."""
        return Path(self.resume_from) if self.resume_from else self.weights

    @property
    def weights(self) -> Path:
        """The checkpoint's weights path (the card is beside it)."""
        return Path(self.out_dir) / f"{self.name}.safetensors"


class Family(ABC):
    """A model family: config, training, loading, metrics unit."""

    key: str  # the registry key and the schema-2 card's ``family``
    seed_paper: str = ""
    metrics_unit: str = "nats/token"
    # its held-out figures, in its own unit: a function of ml/families/evaluate.py by name ("":
    # the grid melody models' evaluate_model); named, not imported, since evaluation loads models
    metric: str = ""
    polyphonic: bool = False
    uses_pieces: bool = True  # trains on TrainData.pieces (else on the melody lines alone)
    fills: bool = False  # its models can fill a range from both sides (musicgen_app.ml.fill)

    @abstractmethod
    def config(self, tiny: bool = False) -> Any:
        """The architecture config dataclass (``tiny``: the smallest sensible network)."""

    @abstractmethod
    def train(self, data: TrainData, run: TrainRun) -> dict:
        """Train a fresh network on ``data``; write weights + card at ``run.weights``; return the card."""

    @abstractmethod
    def load(self, name: str, card: dict, path: Path) -> GenerativeModel:
        """The checkpoint at ``path`` (its card already read) as a streaming model."""


class LoaderFamily(Family):
    """A family known only by its loader (the fill, audio and other non-continuation models)."""

    def __init__(self, key: str, loader: Callable[[str, dict, Path], Any]) -> None:
        self.key = key
        self._loader = loader

    def config(self, tiny: bool = False) -> Any:
        """Not trainable through this interface."""
        raise CheckpointError(f"the {self.key} family has no config here")

    def train(self, data: TrainData, run: TrainRun) -> dict:
        """Not trainable through this interface (it has its own command)."""
        raise CheckpointError(f"the {self.key} family trains with its own command")

    def load(self, name: str, card: dict, path: Path) -> GenerativeModel:
        """Load through the registered loader."""
        return self._loader(name, card, path)


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add (or replace) a family in the registry."""
    FAMILIES[family.key] = family
    return family


# version-1 cards whose ``architecture`` string names the family better than their ``family``
_V1_ARCHITECTURES = ("pianoroll-lstm", "pianoroll-seq2seq", "pianoroll-gan")


def card_schema(card: dict) -> int:
    """The card's schema version (1 when it says none)."""
    return int(card.get("schema", 1))


def family_key(card: dict) -> str:
    """The registry key of a card: ``family`` (schema 2); for version-1 cards the piano-roll
    architectures, which shared ``family: pianoroll``, are told apart by their ``architecture``."""
    arch = card.get("architecture")
    if card_schema(card) < 2 and isinstance(arch, str) and arch in _V1_ARCHITECTURES:
        return arch
    return str(card.get("family", arch if isinstance(arch, str) else ""))


def upgrade_card(card: dict) -> dict:
    """A card as schema 2: ``schema`` first, ``family`` the registry key (a schema-2 card is returned
    as it is). The family's own parts (``config``/``vocab``, or melody-lstm's ``architecture`` and
    ``tokenizer``) are unchanged."""
    if card_schema(card) >= CARD_SCHEMA:
        return card
    return {"schema": CARD_SCHEMA, **card, "family": family_key(card)}


def _pieces(melody: Dataset, notes_path: Path) -> list[Chorale]:
    """Each piece's pitched notes (``notes.npz`` of a MIDI-folder dataset) as a Chorale record:
    tracks ordered from the highest to the lowest (voice 0 is the top line), in the melody's key
    (the dataset's transposition to C major / A minor)."""
    import numpy as np

    from musicgen_app.ml.families.chorales import Chorale

    with np.load(notes_path) as z:
        notes, off = z["notes"], z["note_offsets"]
    out = []
    for i in range(len(melody)):
        meta = melody.meta[i]
        rows = notes[off[i] : off[i + 1]]  # (N, 5): start, pitch, length, velocity, track
        if not len(rows):
            continue
        shift = int(meta.get("transposition", 0))
        tracks = sorted({int(t) for t in rows[:, 4]}, key=lambda t: -float(rows[rows[:, 4] == t, 1].mean()))
        voice = {t: v for v, t in enumerate(tracks)}
        spb = int(meta.get("steps_per_bar", 16)) or 16
        num, den = (spb // 4, 4) if spb % 4 == 0 else (max(1, spb // 2), 8)
        body = [[int(s), max(1, int(n)), int(p) + shift, voice[int(t)]] for s, p, n, _v, t in rows]
        mode = str(meta.get("mode", "major"))
        out.append(Chorale(str(meta.get("id", i)), num, den, 0, 9 if mode == "minor" else 0, mode, body))
    return out


def load_train_data(spec: str, *, progress: bool = False, pieces: bool = True) -> TrainData:
    """``--data NAME|DIR`` as :class:`TrainData`: a dataset built by `musicgen dataset build --midi`
    (by name) or a MIDI folder (built or refreshed first); without ``pieces`` the melody lines
    alone (for a family that reads nothing else). Raises DatasetError."""
    from musicgen_app.errors import DatasetError
    from musicgen_app.ml import data as data_mod
    from musicgen_app.ml.midi_data import dataset_dir, resolve_data

    melody = resolve_data(spec, progress=progress)
    name = melody.name
    if not pieces:
        return TrainData(name, melody, {})
    notes_path = dataset_dir(name) / "notes.npz"
    if not notes_path.is_file():
        raise DatasetError(
            f"dataset '{name}' has no notes file: rebuild it with `musicgen dataset build --midi`"
        )
    split = data_mod.split_indices(melody)
    by_id = {p.name: p for p in _pieces(melody, notes_path)}
    parts: dict[str, list[Chorale]] = {}
    for k, idx in split.items():
        ids = [str(melody.meta[int(i)].get("id", int(i))) for i in idx]
        parts["valid" if k == "val" else k] = [by_id[i] for i in ids if i in by_id]
    for k in ("valid", "test"):
        parts[k] = parts.get(k) or parts["train"]
    return TrainData(name, melody, parts)
