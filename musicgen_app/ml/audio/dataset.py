"""Rendered audio for the raw-audio models: the same pieces played on several General MIDI instruments.

Pieces come from our corpora: Bach chorales (four voices, :mod:`musicgen_app.ml.families.chorales`)
and Essen folk melodies (:mod:`musicgen_app.ml.data`). Each piece becomes a one-track
:class:`~musicgen_app.core.song.Song` and is rendered once per instrument of :data:`INSTRUMENTS`
(piano, guitar, strings, organ) to mono float audio at :data:`SAMPLE_RATE` Hz, peak-normalised to
-1 dBFS, cut to :data:`MAX_SECONDS`. Every instrument's render of a piece has the same notes at the
same times, so they line up sample for sample.

The renderer is passed in (``render(song) -> mono float32``): this module is in ``ml`` and must not
import ``playback``; the command (`musicgen audio dataset build`) hands it FluidSynth's.

The split is by piece, fixed by a hash of the piece's id (adding pieces never moves old ones).
The cache is a folder ``<cache_dir>/datasets/audio-<rate>hz-v<N>/``: ``pieces.json`` (ids, sources,
splits, offsets) and one ``<instrument>.npy`` of int16 samples per instrument (memory-mapped on load).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen_app.core import paths
from musicgen_app.core.song import Note, Song, TempoChange, Track
from musicgen_app.errors import DatasetError

logger = logging.getLogger(__name__)

AUDIO_DATASET_VERSION = 1
SAMPLE_RATE = 16000
SAMPLE_RATES = (8000, 16000)
MAX_SECONDS = 12.288  # three 65,536-sample windows at 16 kHz
# name -> General MIDI program (0-based): the target instrument first
INSTRUMENTS: dict[str, int] = {"piano": 0, "guitar": 24, "strings": 48, "organ": 19}
SOURCES = ("chorales", "essen")
DEFAULT_PIECES = 200  # half chorales, half melodies
SPLIT_PERCENT = {"test": 15, "val": 5}  # the rest is train
_RESOLUTION = 480
_STEP_TICKS = _RESOLUTION // 4  # a 16th note
_TEMPO_BPM = {"chorales": 84, "essen": 112}
_VELOCITY = 90

Renderer = Callable[[Song], np.ndarray]


@dataclass
class Piece:
    """One piece to render: its id (``chorales/bwv66.6``, ``essen/erk10/13``), source and song."""

    id: str
    source: str
    song: Song


def split_of(piece_id: str) -> str:
    """``test`` (15%), ``val`` (5%) or ``train``, fixed by a hash of the id."""
    h = int(hashlib.sha1(piece_id.encode()).hexdigest()[:8], 16) % 100
    if h < SPLIT_PERCENT["test"]:
        return "test"
    return "val" if h < SPLIT_PERCENT["test"] + SPLIT_PERCENT["val"] else "train"


def _song(notes: list[tuple[int, int, int]], bpm: int, title: str) -> Song:
    """A one-track song from ``(start_step, length_steps, pitch)`` on the 16th grid, cut at
    :data:`MAX_SECONDS` (nothing later is ever kept, so it is not rendered either)."""
    last = math.ceil(MAX_SECONDS * bpm / 60 * 4)  # in 16th steps
    track = Track(
        name=title,
        program=0,
        notes=[
            Note(s * _STEP_TICKS, p, min(s + n, last) * _STEP_TICKS, _VELOCITY)
            for s, n, p in sorted(notes)
            if n > 0 and s < last
        ],
    )
    return Song(
        resolution=_RESOLUTION, tracks=[track], tempos=[TempoChange(0, round(60_000_000 / bpm))], title=title
    )


def chorale_pieces(count: int) -> Iterator[Piece]:
    """The first ``count`` Bach chorales (in name order), all four voices on one track."""
    from musicgen_app.ml.families.chorales import load_chorales

    for ch in sorted(load_chorales(), key=lambda c: c.name)[:count]:
        notes = [(s, n, p) for s, n, p, _voice in ch.notes]
        yield Piece(f"chorales/{ch.name}", "chorales", _song(notes, _TEMPO_BPM["chorales"], ch.name))


def essen_pieces(count: int) -> Iterator[Piece]:
    """``count`` Essen folk melodies spread over the whole corpus (every k-th tune that parses)."""
    from musicgen_app.ml import data

    tunes = list(data.iter_corpus_tunes("essen"))
    stride = max(1, len(tunes) // max(1, 2 * count))  # twice as many candidates as needed
    made = 0
    for tune_id, abc in tunes[::stride]:
        if made >= count:
            return
        try:
            enc = data.encode_abc_tune(abc, tune_id)
        except Exception:
            continue
        notes: list[tuple[int, int, int]] = []
        for i, code in enumerate(enc.steps.tolist()):
            if code >= 0:
                notes.append((i, 1, code))
            elif code == data.HOLD and notes and notes[-1][0] + notes[-1][1] == i:
                s, n, p = notes[-1]
                notes[-1] = (s, n + 1, p)
        if notes:
            made += 1
            yield Piece(f"essen/{tune_id}", "essen", _song(notes, _TEMPO_BPM["essen"], tune_id))


def with_program(song: Song, program: int) -> Song:
    """A copy of ``song`` whose tracks all play General MIDI ``program``."""
    out = song.copy()
    for t in out.tracks:
        t.program = program
    return out


def dataset_dir(sample_rate: int = SAMPLE_RATE) -> Path:
    """Where the rendered dataset of ``sample_rate`` is cached."""
    return paths.cache_dir() / "datasets" / f"audio-{sample_rate}hz-v{AUDIO_DATASET_VERSION}"


@dataclass
class AudioDataset:
    """Rendered pieces: ``audio(instrument, i)`` is piece ``i`` on that instrument (float32, -1..1)."""

    folder: Path
    sample_rate: int
    pieces: list[dict]  # id, source, split, start, length (samples)
    instruments: dict[str, int]
    _arrays: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.pieces)

    def audio(self, instrument: str, i: int) -> np.ndarray:
        """Piece ``i`` rendered on ``instrument`` (float32 in -1..1)."""
        p = self.pieces[i]
        raw = self._arrays[instrument][p["start"] : p["start"] + p["length"]]
        return raw.astype(np.float32) / 32767.0

    def split(self, name: str) -> list[int]:
        """Indices of the pieces in split ``name`` (train, val, test)."""
        return [i for i, p in enumerate(self.pieces) if p["split"] == name]

    def stats(self) -> dict:
        """Counts and length, for `musicgen audio dataset info` and model cards."""
        seconds = sum(p["length"] for p in self.pieces) / self.sample_rate
        return {
            "path": str(self.folder),
            "sample_rate": self.sample_rate,
            "pieces": len(self.pieces),
            "by_source": {s: sum(p["source"] == s for p in self.pieces) for s in SOURCES},
            "split": {k: len(self.split(k)) for k in ("train", "val", "test")},
            "instruments": dict(self.instruments),
            "seconds_per_instrument": round(seconds, 1),
            "version": AUDIO_DATASET_VERSION,
        }


def build_audio_dataset(
    render: Renderer,
    *,
    pieces: int = DEFAULT_PIECES,
    sample_rate: int = SAMPLE_RATE,
    folder: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    source_pieces: list[Piece] | None = None,
) -> AudioDataset:
    """Render ``pieces`` pieces (half chorales, half Essen melodies) on every instrument and cache them.

    ``render(song)`` returns mono float32 audio at ``sample_rate``; it is called once per piece and
    instrument. ``source_pieces`` replaces the corpora (tests). Returns the loaded dataset.
    """
    if sample_rate not in SAMPLE_RATES:
        raise DatasetError(f"the audio dataset is rendered at {' or '.join(map(str, SAMPLE_RATES))} Hz")
    if source_pieces is None:
        n_chorales = pieces // 2
        source_pieces = [*chorale_pieces(n_chorales), *essen_pieces(pieces - n_chorales)]
    if not source_pieces:
        raise DatasetError("no pieces to render")
    max_len = round(MAX_SECONDS * sample_rate)
    target = folder or dataset_dir(sample_rate)
    tmp = target.with_name(target.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in INSTRUMENTS}
    records: list[dict] = []
    start = 0
    total = len(source_pieces) * len(INSTRUMENTS)
    for k, piece in enumerate(source_pieces):
        renders = {}
        for j, (name, program) in enumerate(INSTRUMENTS.items()):
            renders[name] = _peak_normalised(render(with_program(piece.song, program))[:max_len])
            if progress is not None:
                progress(k * len(INSTRUMENTS) + j + 1, total)
        length = min(len(a) for a in renders.values())
        for name, a in renders.items():
            chunks[name].append(np.round(a[:length] * 32767.0).astype(np.int16))
        records.append(
            {
                "id": piece.id,
                "source": piece.source,
                "split": split_of(piece.id),
                "start": start,
                "length": length,
            }
        )
        start += length
    for name, parts in chunks.items():
        np.save(tmp / f"{name}.npy", np.concatenate(parts))
    info = {
        "version": AUDIO_DATASET_VERSION,
        "sample_rate": sample_rate,
        "instruments": INSTRUMENTS,
        "max_seconds": MAX_SECONDS,
        "tempo_bpm": _TEMPO_BPM,
        "pieces": records,
    }
    (tmp / "pieces.json").write_text(json.dumps(info, indent=1))
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)
    logger.info("rendered %d pieces into %s", len(records), target)
    return load_audio_dataset(sample_rate, folder=target)


def _peak_normalised(a: np.ndarray, peak_db: float = -1.0) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    peak = float(np.max(np.abs(a))) if a.size else 0.0
    return a * np.float32(10 ** (peak_db / 20) / peak) if peak > 0 else a


def load_audio_dataset(sample_rate: int = SAMPLE_RATE, *, folder: Path | None = None) -> AudioDataset:
    """The cached rendered dataset (raises DatasetError when it is not built or is damaged)."""
    target = folder or dataset_dir(sample_rate)
    meta = target / "pieces.json"
    if not meta.is_file():
        raise DatasetError(
            f"the rendered audio dataset ({sample_rate} Hz) is not built yet: "
            "run `musicgen audio dataset build`"
        )
    try:
        info = json.loads(meta.read_text())
        arrays = {name: np.load(target / f"{name}.npy", mmap_mode="r") for name in info["instruments"]}
        pieces = info["pieces"]
        for p in pieces:
            if any(p["start"] + p["length"] > len(a) for a in arrays.values()):
                raise ValueError(f"piece {p['id']} runs past the end of the audio")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"the rendered audio dataset at {target} is damaged ({exc}); rebuild it") from exc
    return AudioDataset(target, int(info["sample_rate"]), pieces, dict(info["instruments"]), arrays)
