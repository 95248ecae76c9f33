"""Training data from any folder of MIDI files (a musician's own music, POP909, ...).

``build_midi_dataset(folder, name)`` reads every ``.mid``/``.midi``/``.kar`` file under ``folder``
(recursively) through the app's own importer, in parallel over the cores, and keeps per file:

* the melody line on a 16th grid, in the step codes of :mod:`musicgen_app.ml.data` (pitch at an
  onset, ``REST``, ``HOLD``), transposed to C major / A minor like the folk corpora, with the
  position in the bar and the bar length per step: the track named melody/vocal/lead, else the most
  melody-like monophonic track, else the top voice of all pitched notes;
* every pitched note on the same grid (start step, pitch, length in steps, velocity, track): the
  polyphonic piano roll is derived from it;
* chord slices: per beat, the pitch classes sounding (and, where the dataset has them, the chord
  labels of its annotation files);
* meter and key (from the file, else estimated; POP909's ``beat_midi.txt`` gives the downbeats and
  ``key_audio.txt`` the key), and the importer's repairs.

Files that cannot be used (refused by the importer, empty, drums only, no pitched notes, too
short) are listed with the reason; none stops the build. The split is by a hash of the file's
content, so adding files never moves old ones between train, validation and test. Each file's
result is cached under its content hash: re-running on an unchanged folder reads no MIDI file,
and a changed file is read again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from musicgen_app.core import paths
from musicgen_app.errors import DatasetError, MusicgenError
from musicgen_app.ml import data as data_mod
from musicgen_app.ml.keys import estimate_key, parse_key, transposition_to_reference

logger = logging.getLogger(__name__)

MIDI_DATASET_VERSION = 1
MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".smf")
STEPS_PER_QUARTER = data_mod.STEPS_PER_QUARTER
MELODY_NAMES = ("melody", "vocal", "voice", "lead", "soprano", "melodie")
MIN_MELODY_NOTES = 8
SPLIT_BUCKETS = (85, 90)  # hash % 100: below 85 train, below 90 validation, else test


@dataclass
class FileResult:
    """What one MIDI file contributes (or why it contributes nothing)."""

    rel_path: str
    sha1: str
    skip: str = ""  # the reason the file was not used ("" when used)
    meta: dict[str, Any] | None = None
    arrays: dict[str, np.ndarray] | None = None


# -- one file ---------------------------------------------------------------------------------------
def _content_split(sha1: str) -> str:
    bucket = int(sha1[:8], 16) % 100
    return "train" if bucket < SPLIT_BUCKETS[0] else "val" if bucket < SPLIT_BUCKETS[1] else "test"


def _pop909_annotations(path: Path) -> dict[str, Any]:
    """POP909's annotation files beside ``path`` (downbeat times, chords, key), when present."""
    folder = path.parent
    out: dict[str, Any] = {}
    beats = folder / "beat_midi.txt"
    if beats.is_file():
        rows = []
        for line in beats.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 3:
                try:
                    rows.append((float(parts[0]), float(parts[2])))
                except ValueError:
                    continue
        out["beat_sec"] = [t for t, _ in rows]
        out["downbeat_sec"] = [t for t, d in rows if d >= 0.5]  # third column: 4/4 downbeats
    chords = folder / "chord_midi.txt"
    if chords.is_file():
        labels = []
        for line in chords.read_text(errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                try:
                    labels.append((float(parts[0]), float(parts[1]), parts[2].strip()))
                except ValueError:
                    continue
        out["chords"] = labels
    key = folder / "key_audio.txt"
    if key.is_file():
        for line in key.read_text(errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                out["key"] = parts[2].strip().replace(":maj", "").replace(":min", "m")
                break
    return out


def _melody_track(tracks: list[Any]) -> tuple[int | None, str]:
    """Index of the melody track and how it was chosen (None: use the top voice)."""
    pitched = [(i, t) for i, t in enumerate(tracks) if not t.is_drum and t.notes]
    for i, t in pitched:
        if any(word in t.name.lower() for word in MELODY_NAMES):
            return i, f"track named '{t.name}'"
    best: tuple[float, int] | None = None
    for i, t in pitched:
        if len(t.notes) < MIN_MELODY_NOTES:
            continue
        onsets = sorted(n.start_tick for n in t.notes)
        ends = sorted((n.start_tick, n.end_tick) for n in t.notes)
        overlaps = sum(1 for (s0, e0), (s1, _) in itertools.pairwise(ends) if s1 < e0 - 1)
        poly = overlaps / max(1, len(onsets))
        mean_pitch = float(np.mean([n.pitch for n in t.notes]))
        if poly > 0.1 or not 48 <= mean_pitch <= 84:
            continue
        score = poly + abs(mean_pitch - 67) / 100.0
        if best is None or score < best[0]:
            best = (score, i)
    if best is not None:
        return best[1], f"monophonic track '{tracks[best[1]].name or best[1] + 1}'"
    return None, "top voice of all pitched notes"


def _grid(song: Any, ann: dict[str, Any]) -> tuple[float, float, int]:
    """``(offset_tick, ticks_per_step, steps_per_bar)``: where step 0 is and how long a step is.

    Step 0 is the first downbeat when annotated (POP909), else the first bar line at or before the
    first note; the grid's offset follows the onsets (POP909's constant shift)."""
    ticks_per_step = song.resolution / STEPS_PER_QUARTER
    if ann.get("downbeat_sec"):
        first = song.seconds_to_tick(ann["downbeat_sec"][0])
        return float(first), ticks_per_step, 16
    ts = song.time_signature_at(0)
    steps_per_bar = max(1, min(255, round(16 * ts.numerator / ts.denominator)))
    onsets = np.array([n.start_tick for t in song.tracks if not t.is_drum for n in t.notes], dtype=np.float64)
    phase = 0.0
    if len(onsets):
        residues = np.mod(onsets, ticks_per_step)
        values, counts = np.unique(np.round(residues), return_counts=True)
        phase = float(values[np.argmax(counts)])
    return phase, ticks_per_step, steps_per_bar


def encode_midi_file(path: Path, rel_path: str, data: bytes, sha1: str) -> FileResult:
    """Read one MIDI file's bytes through the importer and encode it (never raises)."""
    from musicgen_app.core.midi_io import read_midi

    result = FileResult(rel_path, sha1)
    try:
        imported = read_midi(data)
    except MusicgenError as exc:
        result.skip = f"refused by the importer: {exc}"
        return result
    except Exception as exc:  # a bug in the importer must not stop the build
        logger.exception("unexpected error reading %s", rel_path)
        result.skip = f"could not be read ({type(exc).__name__})"
        return result
    song = imported.song
    if not any(t.notes for t in song.tracks):
        result.skip = "empty: no notes"
        return result
    pitched_tracks = [t for t in song.tracks if not t.is_drum and t.notes]
    if not pitched_tracks:
        result.skip = "drums only: no pitched notes"
        return result
    ann = _pop909_annotations(path) if path.name else {}
    offset, tps, steps_per_bar = _grid(song, ann)

    def step_of(tick: float) -> int:
        return round((tick - offset) / tps)

    # every pitched note on the grid (notes before the first downbeat are dropped)
    rows = []
    for ti, t in enumerate(song.tracks):
        if t.is_drum:
            continue
        for n in t.notes:
            s = step_of(n.start_tick)
            if s < 0:
                continue
            length = max(1, step_of(n.end_tick) - s)
            rows.append((s, n.pitch, min(length, 4096), n.velocity, ti))
    if not rows:
        result.skip = "no pitched notes after the first downbeat"
        return result
    notes = np.array(sorted(rows), dtype=np.int32)  # (N, 5)
    melody_index, how = _melody_track(song.tracks)
    mel = notes[notes[:, 4] == melody_index] if melody_index is not None else notes
    # monophonic: the highest pitch at each onset; each note ends at the next onset at the latest
    by_onset: dict[int, tuple[int, int]] = {}
    for s, p, length, _v, _t in mel:
        if int(s) not in by_onset or p > by_onset[int(s)][0]:
            by_onset[int(s)] = (int(p), int(length))
    if len(by_onset) < MIN_MELODY_NOTES:
        result.skip = f"too short: the melody has {len(by_onset)} notes"
        return result
    onsets = sorted(by_onset)
    n_steps = onsets[-1] + by_onset[onsets[-1]][1]
    n_steps = int(np.ceil(n_steps / steps_per_bar) * steps_per_bar)
    steps = np.full(n_steps, data_mod.HOLD, dtype=np.int16)
    steps[0] = data_mod.REST
    for k, s in enumerate(onsets):
        p, length = by_onset[s]
        end = min(s + length, onsets[k + 1] if k + 1 < len(onsets) else n_steps)
        steps[s] = p
        if end < n_steps and (k + 1 >= len(onsets) or end < onsets[k + 1]):
            steps[end] = data_mod.REST
    idx = np.arange(n_steps)
    bar_pos = (idx % steps_per_bar).astype(np.uint8)
    bar_steps = np.full(n_steps, steps_per_bar, dtype=np.uint8)
    lengths = [by_onset[s][1] for s in onsets]
    key = estimate_key([by_onset[s][0] for s in onsets], lengths)
    file_key = ann.get("key") or song.key_at(0) or ""
    try:
        if file_key:
            key = parse_key(file_key)
    except MusicgenError:
        pass
    shift = transposition_to_reference(key)
    steps = np.where(steps >= 0, np.clip(steps + shift, 0, 127), steps).astype(np.int16)
    # chord slices: pitch classes sounding per beat (4 steps), as a 12-bit mask
    n_beats = max(1, n_steps // 4)
    chord_mask = np.zeros(n_beats, dtype=np.uint16)
    for s, p, length, _v, _t in notes:
        for b in range(int(s) // 4, min(n_beats, (int(s) + int(length) - 1) // 4 + 1)):
            chord_mask[b] |= np.uint16(1 << (int(p) % 12))
    labels: list[str] = []
    if ann.get("chords"):
        beat_ticks = [offset + 4 * tps * b for b in range(n_beats)]
        beat_secs = [song.tick_to_seconds(t) for t in beat_ticks]
        chords = ann["chords"]
        j = 0
        for sec in beat_secs:
            while j + 1 < len(chords) and chords[j][1] <= sec:
                j += 1
            labels.append(chords[j][2] if chords[j][0] <= sec < chords[j][1] else "N")
    ts = song.time_signature_at(0)
    result.meta = {
        "id": rel_path,
        "title": song.title or Path(rel_path).stem,
        "split": _content_split(sha1),
        "sha1": sha1,
        "melody": how,
        "meter": "4/4" if ann.get("downbeat_sec") else f"{ts.numerator}/{ts.denominator}",
        "file_key": file_key,
        "estimated_key": key.name,
        "mode": "minor" if key.is_minor_like else "major",
        "transposition": shift,
        "steps_per_bar": steps_per_bar,
        "n_steps": n_steps,
        "n_notes": len(onsets),
        "n_all_notes": len(notes),
        "repairs": list(imported.repairs),
        "chord_labels": labels,
    }
    result.arrays = {
        "steps": steps,
        "bar_pos": bar_pos,
        "bar_steps": bar_steps,
        "notes": notes,
        "chords": chord_mask,
    }
    return result


def _work(item: tuple[str, str, str]) -> FileResult:
    full, rel, sha1 = item
    path = Path(full)
    try:
        data = _read(path)
    except MusicgenError as exc:
        return FileResult(rel, sha1, skip=str(exc))
    return encode_midi_file(path, rel, data, sha1)


def _read(path: Path) -> bytes:
    from musicgen_app.core.midi_io import MAX_FILE_BYTES, read_file_capped
    from musicgen_app.errors import MidiImportError

    return read_file_capped(path, MAX_FILE_BYTES, MidiImportError, "MIDI file")


# -- the cache ----------------------------------------------------------------------------------------
def dataset_dir(name: str) -> Path:
    """Where the dataset ``name`` built from a MIDI folder is cached."""
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise DatasetError(f"'{name}' is not a usable dataset name (letters, digits, - and _)")
    return paths.cache_dir() / "datasets" / "midi" / f"{name}-v{MIDI_DATASET_VERSION}"


def _save_result(folder: Path, r: FileResult) -> None:
    target = folder / "files" / f"{r.sha1}.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.stem + ".tmp.npz")
    info = json.dumps({"skip": r.skip, "meta": r.meta}).encode()
    arrays: dict[str, Any] = dict(r.arrays or {})
    arrays["info"] = np.frombuffer(info, dtype=np.uint8)
    np.savez_compressed(tmp, **arrays)
    tmp.replace(target)


def _load_result(folder: Path, rel: str, sha1: str) -> FileResult | None:
    target = folder / "files" / f"{sha1}.npz"
    if not target.is_file():
        return None
    try:
        with np.load(target, allow_pickle=False) as z:
            info = json.loads(bytes(z["info"]).decode())
            arrays = {k: z[k] for k in z.files if k != "info"}
    except (OSError, ValueError, KeyError):
        return None
    meta = info.get("meta")
    if meta is not None:
        meta = dict(meta, id=rel)
    return FileResult(rel, sha1, info.get("skip", ""), meta, arrays or None)


def midi_files(folder: Path) -> list[Path]:
    """Every MIDI file under ``folder`` (recursively, sorted; hidden folders skipped)."""
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder")
    out = []
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.lower().endswith(MIDI_SUFFIXES):
                out.append(Path(root) / f)
    return out


def _file_sha1(path: Path) -> str:
    h = hashlib.sha1()
    try:
        h.update(_read(path))
    except MusicgenError:
        h.update(str(path).encode())
    return h.hexdigest()


def file_split(path: str | Path) -> str:
    """The split (``train``/``val``/``test``) a MIDI file falls in, by a hash of its content (as
    :func:`build_midi_dataset` assigns it): held-out evaluations pick ``test`` files with it."""
    return _content_split(_file_sha1(Path(path)))


@dataclass
class MidiDatasetReport:
    """What a build did: files used, skipped (with reasons), read anew, taken from the cache."""

    name: str
    folder: str
    used: int
    skipped: list[tuple[str, str]]
    parsed: int
    cached: int
    path: Path


def build_midi_dataset(
    folder: str | Path,
    name: str | None = None,
    *,
    workers: int | None = None,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> MidiDatasetReport:
    """Build (or refresh) the dataset ``name`` from the MIDI files under ``folder``; see module doc."""
    from tqdm import tqdm

    root = Path(folder).expanduser().resolve()
    name = name or root.name
    out = dataset_dir(name)
    out.mkdir(parents=True, exist_ok=True)
    files = midi_files(root)
    if not files:
        raise DatasetError(f"{root} holds no MIDI files (.mid, .midi, .kar)")
    index_path = out / "index.json"
    try:
        old_index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    except (OSError, ValueError):
        old_index = {}
    index: dict[str, dict[str, Any]] = {}
    results: dict[str, FileResult] = {}
    todo: list[tuple[str, str, str]] = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            st = path.stat()
        except OSError as exc:
            results[rel] = FileResult(rel, "", skip=f"cannot be read: {exc.strerror or exc}")
            continue
        stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        old = old_index.get(rel)
        sha1 = old["sha1"] if old and {k: old.get(k) for k in stamp} == stamp else _file_sha1(path)
        index[rel] = dict(stamp, sha1=sha1)
        cached = _load_result(out, rel, sha1)
        if cached is not None:
            results[rel] = cached
        else:
            todo.append((str(path), rel, sha1))
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    bar = tqdm(total=len(todo), desc=f"reading {name}", unit="file", disable=not progress or not todo)
    done = 0

    def finish(r: FileResult) -> None:
        nonlocal done
        _save_result(out, r)
        results[r.rel_path] = r
        done += 1
        bar.update(1)
        if on_progress is not None:
            on_progress(done, len(todo))

    if n_workers == 1:
        for item in todo:
            finish(_work(item))
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(n_workers, mp_context=ctx) as pool:
            for r in pool.map(_work, todo, chunksize=4):
                finish(r)
    bar.close()
    tmp = index_path.with_name("index.json.tmp")
    tmp.write_text(json.dumps(index))
    tmp.replace(index_path)
    used = [results[k] for k in sorted(results) if not results[k].skip and results[k].arrays is not None]
    skipped = [(k, results[k].skip) for k in sorted(results) if results[k].skip]
    if not used:
        raise DatasetError(f"none of the {len(files)} files under {root} could be used")
    ds = _assemble(name, str(root), used, skipped)
    data_mod.save_dataset(ds, out / "melody.npz")
    _save_notes(out / "notes.npz", used)
    return MidiDatasetReport(name, str(root), len(used), skipped, len(todo), len(results) - len(todo), out)


def _assemble(
    name: str, folder: str, used: list[FileResult], skipped: list[tuple[str, str]]
) -> data_mod.Dataset:
    arrays = [r.arrays for r in used if r.arrays is not None]
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(a["steps"]) for a in arrays])
    reasons: dict[str, int] = {}
    for _, why in skipped:
        key = why.split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    stats = {
        "corpus": name,
        "source": "midi-folder",
        "folder": folder,
        "version": MIDI_DATASET_VERSION,
        "parsed": len(used) + len(skipped),
        "kept": len(used),
        "rejected": reasons,
        "steps": int(offsets[-1]),
        "split": "by a hash of each file's content (85/5/10)",
        "transposition": "to C major / A minor (annotated or file key, else Krumhansl-Schmuckler)",
    }
    return data_mod.Dataset(
        name,
        np.concatenate([a["steps"] for a in arrays]).astype(np.int16),
        np.concatenate([a["bar_pos"] for a in arrays]).astype(np.uint8),
        np.concatenate([a["bar_steps"] for a in arrays]).astype(np.uint8),
        offsets,
        [dict(r.meta or {}) for r in used],
        stats,
    )


def _save_notes(path: Path, used: list[FileResult]) -> None:
    """Every file's notes (the polyphonic piano roll) and chord slices, concatenated."""
    notes = [r.arrays["notes"] for r in used if r.arrays is not None]
    chords = [r.arrays["chords"] for r in used if r.arrays is not None]
    note_off = np.zeros(len(notes) + 1, dtype=np.int64)
    note_off[1:] = np.cumsum([len(n) for n in notes])
    chord_off = np.zeros(len(chords) + 1, dtype=np.int64)
    chord_off[1:] = np.cumsum([len(c) for c in chords])
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(
        tmp,
        notes=np.concatenate(notes).astype(np.int32),
        note_offsets=note_off,
        chords=np.concatenate(chords).astype(np.uint16),
        chord_offsets=chord_off,
    )
    tmp.replace(path)


def load_midi_dataset(name: str) -> data_mod.Dataset:
    """The melody dataset built from a MIDI folder under ``name`` (raises DatasetError)."""
    path = dataset_dir(name) / "melody.npz"
    if not path.is_file():
        raise DatasetError(
            f"no dataset named '{name}'; build it with `musicgen dataset build --midi DIR --name {name}`"
        )
    return data_mod.load_dataset(path)


def resolve_data(spec: str, *, progress: bool = True) -> data_mod.Dataset:
    """``--data NAME|DIR``: a built dataset by name, a folder (built or refreshed first), or a corpus."""
    if spec in data_mod.CORPORA:
        return data_mod.load_or_build(spec, progress=progress)
    as_path = Path(spec).expanduser()
    if as_path.is_dir():
        report = build_midi_dataset(as_path, None, progress=progress)
        return load_midi_dataset(report.name)
    return load_midi_dataset(spec)
