"""Audio to notes: a recording (sung, hummed or played) becomes a MIDI sketch.

The model is Spotify's Basic Pitch (Bittner et al., "A Lightweight Instrument-Agnostic Model for
Polyphonic Note Transcription and Multipitch Estimation", ICASSP 2022; Apache-2.0): the ONNX file
``saved_models/icassp_2022/nmp.onnx`` that the ``basic-pitch`` pip package ships, run with
onnxruntime. The package is installed without its dependencies (``scripts/setup.sh``: its own
requirements pull TensorFlow) and is never imported: only its model file is located.

The small pre- and post-processing around the model follows basic-pitch 0.4.0
(``basic_pitch/inference.py`` and ``basic_pitch/note_creation.py``), written again with numpy:

* the recording is mixed to mono and resampled to 22,050 Hz (:func:`resample`, a windowed-sinc
  resampler), padded with 3,840 samples of silence in front and cut into windows of 43,844
  samples that overlap by 30 model frames (7,680 samples);
* each window gives 172 frames (hop 256 samples) of note, onset and contour activations over the
  88 piano keys; 15 frames are dropped at each end of a window and the rest are joined;
* notes are decoded as basic-pitch decodes them (``output_to_notes_polyphonic``): onsets are the
  peaks in time of the onset activation (together with onsets inferred from jumps in the note
  activation) above ``onset_threshold``; a note lasts while its key's note activation stays above
  ``frame_threshold`` (gaps of fewer than 11 frames bridged), and is kept when longer than
  ``min_note_ms``; then the "melodia trick" adds the notes that had no onset, from the strongest
  remaining activation down.

Three things differ on purpose:

* a frame's time. basic-pitch maps frame ``n`` to ``n * 256 / 22050`` seconds less a staircase
  correction (a "magic number"); here the time comes from the window the frame came from (window
  ``w`` starts at sample ``w * 36164``), which is exact, so onsets do not drift over a long
  recording;
* a key that already sounds starts a new note only on an onset of at least
  :data:`DEFAULT_RETRIGGER_THRESHOLD` (0.6, against 0.5 from silence): the onset head answers a
  flute's vibrato or a piano's decay with weak onsets that split one note into several;
* :func:`drop_harmonic_ghosts` removes the quiet octave and overtone notes of a louder note.

``benchmarks/bench_transcription.py`` measures the result on rendered held-out melodies.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from musicgen_app.core.edits import quantize_notes
from musicgen_app.core.song import DEFAULT_RESOLUTION, Note, Song, TempoChange, Track
from musicgen_app.errors import AudioError
from musicgen_app.ml.audio.audio_file import Audio, resample

logger = logging.getLogger(__name__)

MODEL_SAMPLE_RATE = 22050
FFT_HOP = 256
WINDOW_SAMPLES = 2 * MODEL_SAMPLE_RATE - FFT_HOP  # 43,844: what the model takes at a time
FRAMES_PER_WINDOW = 172
OVERLAP_FRAMES = 30
OVERLAP_SAMPLES = OVERLAP_FRAMES * FFT_HOP
WINDOW_HOP = WINDOW_SAMPLES - OVERLAP_SAMPLES  # 36,164
KEPT_FRAMES = FRAMES_PER_WINDOW - OVERLAP_FRAMES  # 142 frames kept per window
LOWEST_PITCH = 21  # A0: key 0 of the model's 88
N_KEYS = 88
ENERGY_TOLERANCE = 11  # frames below the threshold that a note may bridge
BATCH_WINDOWS = 8

DEFAULT_ONSET_THRESHOLD = 0.5
DEFAULT_FRAME_THRESHOLD = 0.3
DEFAULT_MIN_NOTE_MS = 127.7  # basic-pitch's default; 11 frames
DEFAULT_RETRIGGER_THRESHOLD = 0.6  # ours: a new onset on a key that already sounds
MODEL_RELATIVE_PATH = ("saved_models", "icassp_2022", "nmp.onnx")
_INPUT = "serving_default_input_2:0"
_OUTPUTS = ("StatefulPartitionedCall:1", "StatefulPartitionedCall:2")  # note, onset

INSTALL_HINT = "run `make setup`, or `pip install onnxruntime` and `pip install --no-deps basic-pitch==0.4.0`"


class TranscriptionCancelledError(AudioError):
    """The transcription was cancelled before it finished."""


@dataclass(frozen=True, slots=True)
class NoteEvent:
    """A note heard in a recording: seconds from its start, a MIDI pitch and a velocity 1-127."""

    start_s: float
    end_s: float
    pitch: int
    velocity: int


# -- the model ------------------------------------------------------------------------------------
def model_path() -> Path:
    """Where the basic-pitch package keeps its ONNX model (AudioError when it is not installed).

    The package is located without being imported (its ``__init__`` looks for TensorFlow).
    """
    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        raise AudioError(f"the transcription model (basic-pitch) is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MODEL_RELATIVE_PATH)
    if not path.is_file():
        raise AudioError(f"the transcription model file is missing ({path}): {INSTALL_HINT}")
    return path


_session_lock = threading.Lock()


@lru_cache(maxsize=1)
def _load_session(path: str, threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise AudioError(
            f"onnxruntime is not installed, so audio cannot be transcribed: {INSTALL_HINT}"
        ) from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: no warnings on the user's terminal
    try:
        return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for a damaged file
        raise AudioError(f"the transcription model {path} cannot be loaded: {exc}") from exc


def load_model(threads: int | None = None) -> Any:
    """The onnxruntime session of Basic Pitch (loaded once, then shared; thread-safe to run)."""
    n = threads if threads is not None else max(1, min(4, os.cpu_count() or 1))
    with _session_lock:
        return _load_session(str(model_path()), n)


# -- signal ---------------------------------------------------------------------------------------
def frame_times(n_frames: int) -> np.ndarray:
    """The time in seconds of each joined model frame (see the module docstring)."""
    n = np.arange(n_frames)
    return ((n // KEPT_FRAMES) * WINDOW_HOP + (n % KEPT_FRAMES) * FFT_HOP) / MODEL_SAMPLE_RATE


def activations(
    mono_22k: np.ndarray,
    *,
    session: Any = None,
    cancel: threading.Event | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's note and onset activations (frames, 88) for mono audio at 22,050 Hz.

    Checks ``cancel`` between batches (raises TranscriptionCancelledError) and reports the
    fraction done to ``progress``.
    """
    sess = session if session is not None else load_model()
    length = mono_22k.shape[0]
    padded = np.concatenate([np.zeros(OVERLAP_SAMPLES // 2, np.float32), mono_22k.astype(np.float32)])
    starts = list(range(0, padded.shape[0], WINDOW_HOP))
    notes: list[np.ndarray] = []
    onsets: list[np.ndarray] = []
    trim = OVERLAP_FRAMES // 2
    for b in range(0, len(starts), BATCH_WINDOWS):
        if cancel is not None and cancel.is_set():
            raise TranscriptionCancelledError("the transcription was cancelled")
        batch = np.zeros((len(starts[b : b + BATCH_WINDOWS]), WINDOW_SAMPLES, 1), np.float32)
        for i, s in enumerate(starts[b : b + BATCH_WINDOWS]):
            w = padded[s : s + WINDOW_SAMPLES]
            batch[i, : w.shape[0], 0] = w
        note, onset = sess.run(list(_OUTPUTS), {_INPUT: batch})  # each (B, 172, 88)
        notes.append(note[:, trim:-trim].reshape(-1, N_KEYS))
        onsets.append(onset[:, trim:-trim].reshape(-1, N_KEYS))
        if progress is not None:
            progress(min(1.0, (b + BATCH_WINDOWS) / len(starts)))
    n_frames = math.floor(length * (MODEL_SAMPLE_RATE // FFT_HOP) / MODEL_SAMPLE_RATE)
    return np.concatenate(notes)[:n_frames], np.concatenate(onsets)[:n_frames]


# -- decoding (basic-pitch's note_creation, with numpy) -----------------------------------------------
def _inferred_onsets(onsets: np.ndarray, frames: np.ndarray, n_diff: int = 2) -> np.ndarray:
    """The onset activation, or the rise of the note activation over 1-2 frames where larger."""
    diffs = []
    for n in range(1, n_diff + 1):
        shifted = np.concatenate([np.zeros((n, frames.shape[1])), frames])
        diffs.append(shifted[n:] - shifted[:-n])
    rise = np.maximum(np.min(diffs, axis=0), 0.0)
    rise[:n_diff] = 0.0
    top = float(np.max(rise))
    if top > 0:
        rise = float(np.max(onsets)) * rise / top
    return np.maximum(onsets, rise)


def _peaks_in_time(x: np.ndarray) -> np.ndarray:
    """A mask of the strict local maxima of ``x`` along axis 0 (scipy's argrelmax, ends excluded)."""
    mask = np.zeros(x.shape, dtype=bool)
    if x.shape[0] >= 3:
        mask[1:-1] = (x[1:-1] > x[:-2]) & (x[1:-1] > x[2:])
    return mask


def _note_end(energy: np.ndarray, start: int, key: int, threshold: float) -> int:
    """The frame after which ``key``'s energy stays below ``threshold`` (basic-pitch's forward scan)."""
    n_frames = energy.shape[0]
    i, k = start + 1, 0
    while i < n_frames - 1 and k < ENERGY_TOLERANCE:
        k = k + 1 if energy[i, key] < threshold else 0
        i += 1
    return i - k


def _clear(energy: np.ndarray, a: int, b: int, key: int) -> None:
    energy[a:b, max(0, key - 1) : key + 2] = 0.0


def decode_notes(
    frames: np.ndarray,
    onsets: np.ndarray,
    *,
    onset_threshold: float = DEFAULT_ONSET_THRESHOLD,
    frame_threshold: float = DEFAULT_FRAME_THRESHOLD,
    min_note_frames: int = 11,
    melodia_trick: bool = True,
    retrigger_threshold: float = DEFAULT_RETRIGGER_THRESHOLD,
) -> list[tuple[int, int, int, float]]:
    """Notes ``(start_frame, end_frame, midi_pitch, amplitude)`` from note and onset activations.

    ``retrigger_threshold``: the onset a key that is already sounding needs to start a new note.
    """
    n_frames = frames.shape[0]
    if n_frames == 0:
        return []
    onsets = _inferred_onsets(onsets.astype(np.float64), frames.astype(np.float64))
    # a key that already sounds (two frames back) starts a new note only on a clearer onset
    before = np.concatenate([np.zeros((2, N_KEYS)), frames])[: frames.shape[0]]
    needed = np.where(before >= frame_threshold, max(onset_threshold, retrigger_threshold), onset_threshold)
    peak = _peaks_in_time(onsets) & (onsets >= needed)
    t_idx, f_idx = np.nonzero(peak)
    energy = frames.astype(np.float64).copy()
    events: list[tuple[int, int, int, float]] = []
    for start, key in zip(t_idx[::-1].tolist(), f_idx[::-1].tolist(), strict=True):  # latest first
        if start >= n_frames - 1:
            continue
        end = _note_end(energy, start, key, frame_threshold)
        if end - start <= min_note_frames:
            continue
        _clear(energy, start, end, key)
        events.append((start, end, key + LOWEST_PITCH, float(np.mean(frames[start:end, key]))))
    if melodia_trick:
        events += _melodia(frames, energy, frame_threshold, min_note_frames)
    return events


def _melodia(
    frames: np.ndarray, energy: np.ndarray, threshold: float, min_note_frames: int
) -> list[tuple[int, int, int, float]]:
    """Notes without an onset, from the strongest remaining activation down.

    basic-pitch takes the global maximum of the remaining energy again and again; energy is only
    ever set to zero, so visiting the cells above ``threshold`` once, strongest first, and skipping
    those already cleared, visits the same cells in the same order, without rescanning.
    """
    n_frames = energy.shape[0]
    flat = energy.ravel()
    cand = np.nonzero(flat > threshold)[0]
    order = cand[np.argsort(-flat[cand], kind="stable")]
    events: list[tuple[int, int, int, float]] = []
    for cell in order.tolist():
        if flat[cell] <= threshold:
            continue  # cleared by an earlier note
        mid, key = divmod(cell, N_KEYS)
        energy[mid, key] = 0.0
        i, k = mid + 1, 0  # forward
        while i < n_frames - 1 and k < ENERGY_TOLERANCE:
            k = k + 1 if energy[i, key] < threshold else 0
            _clear(energy, i, i + 1, key)
            i += 1
        end = i - 1 - k
        i, k = mid - 1, 0  # backward
        while i > 0 and k < ENERGY_TOLERANCE:
            k = k + 1 if energy[i, key] < threshold else 0
            _clear(energy, i, i + 1, key)
            i -= 1
        start = i + 1 + k
        if end - start <= min_note_frames:
            continue
        events.append((start, end, key + LOWEST_PITCH, float(np.mean(frames[start:end, key]))))
    return events


# -- the whole path ---------------------------------------------------------------------------------
def transcribe_audio(
    audio: Audio,
    *,
    onset_threshold: float = DEFAULT_ONSET_THRESHOLD,
    frame_threshold: float = DEFAULT_FRAME_THRESHOLD,
    min_note_ms: float = DEFAULT_MIN_NOTE_MS,
    drop_ghosts: bool = True,
    cancel: threading.Event | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[NoteEvent]:
    """The notes heard in ``audio``, sorted by start then pitch (``drop_ghosts``: see
    :func:`drop_harmonic_ghosts`)."""
    mono = resample(audio.mono(), audio.sample_rate, MODEL_SAMPLE_RATE)
    frames, onsets = activations(mono, cancel=cancel, progress=progress)
    min_frames = max(1, round(min_note_ms / 1000.0 * MODEL_SAMPLE_RATE / FFT_HOP))
    decoded = decode_notes(
        frames,
        onsets,
        onset_threshold=onset_threshold,
        frame_threshold=frame_threshold,
        min_note_frames=min_frames,
    )
    times = frame_times(frames.shape[0])
    out = [
        NoteEvent(
            float(times[a]), float(times[min(b, len(times) - 1)]), pitch, min(127, max(1, round(127 * amp)))
        )
        for a, b, pitch, amp in decoded
    ]
    out.sort(key=lambda e: (e.start_s, e.pitch))
    if drop_ghosts:
        out = drop_harmonic_ghosts(out)
    logger.info("transcribed %.1f s of audio: %d notes", audio.duration_s, len(out))
    return out


GHOST_INTERVALS = frozenset((12, 19, 24, 28, 31, 36))  # octaves and the 3rd, 5th and 6th harmonics
GHOST_LEVEL = 0.8  # a ghost inside a note is at most this loud relative to it
GHOST_LEVEL_TOGETHER = 0.6  # a ghost starting with a note is at most this loud relative to it
GHOST_MARGIN_S = 0.05


def _is_ghost(e: NoteEvent, o: NoteEvent) -> bool:
    """Whether ``e`` is a harmonic ghost of the louder note ``o`` (see :func:`drop_harmonic_ghosts`)."""
    interval = e.pitch - o.pitch
    if abs(interval) not in GHOST_INTERVALS or e.end_s > o.end_s + GHOST_MARGIN_S:
        return False
    if o.start_s + GHOST_MARGIN_S < e.start_s:  # starts inside it
        return e.velocity <= GHOST_LEVEL * o.velocity
    together = abs(e.start_s - o.start_s) <= GHOST_MARGIN_S
    return together and interval > 0 and e.velocity <= GHOST_LEVEL_TOGETHER * o.velocity


def drop_harmonic_ghosts(events: list[NoteEvent]) -> list[NoteEvent]:
    """``events`` without the ghosts of louder notes (our addition to basic-pitch's decoding).

    A ghost is a harmonic interval away from a louder note (an octave or two, a 12th, a 17th, a
    19th; or that far below, a sub-harmonic), ends by the louder note's end, and either starts well
    inside it (more than 50 ms after its onset; at most 80 % of its velocity: the melodia step finds
    these in long piano and flute tones) or starts with it, above it and much quieter (at most 60 %:
    an overtone taken for a note). Notes played together at like loudness (an octave in the left
    hand) are kept.
    """
    kept = [e for e in events if not any(o is not e and _is_ghost(e, o) for o in events)]
    if len(kept) < len(events):
        logger.debug("dropped %d harmonic ghost note(s)", len(events) - len(kept))
    return kept


def events_to_notes(
    events: list[NoteEvent],
    song: Song,
    *,
    grid_ticks: int | None = None,
    channel: int = 0,
) -> list[Note]:
    """``events`` as notes on ``song``'s time line (its tempo map), snapped to ``grid_ticks`` when given.

    After snapping, a note that would start where another of the same pitch starts is dropped, and a
    note that runs into the next of its pitch is cut there (a key sounds once at a time).
    """
    tempo = song.tempo_map()
    notes: list[Note] = []
    for e in events:
        start = max(0, round(tempo.seconds_to_tick(e.start_s)))
        end = max(start + 1, round(tempo.seconds_to_tick(e.end_s)))
        notes.append(Note(start, e.pitch, end, e.velocity, channel))
    if grid_ticks is not None and grid_ticks > 1:
        notes = list(quantize_notes(0, notes, grid_ticks).new)
    by_pitch: dict[int, list[Note]] = {}
    for n in sorted(notes):
        by_pitch.setdefault(n.pitch, []).append(n)
    kept: list[Note] = []
    for same in by_pitch.values():
        for i, n in enumerate(same):
            if kept and kept[-1].pitch == n.pitch and kept[-1].start_tick == n.start_tick:
                continue
            nxt = next((m.start_tick for m in same[i + 1 :] if m.start_tick > n.start_tick), None)
            if nxt is not None and n.end_tick > nxt:
                n = replace(n, end_tick=nxt)
            kept.append(n)
    return sorted(kept)


def sketch_song(
    events: list[NoteEvent],
    *,
    bpm: float = 120.0,
    grid_ticks: int | None = None,
    name: str = "Audio",
    program: int = 0,
) -> Song:
    """A new song at ``bpm`` (4/4) with one track holding ``events`` (snapped to ``grid_ticks``)."""
    song = Song(resolution=DEFAULT_RESOLUTION, tempos=[TempoChange(0, round(60_000_000 / bpm))], title=name)
    notes = events_to_notes(events, song, grid_ticks=grid_ticks)
    song.tracks.append(Track(name=name, program=program, channel=0, notes=notes))
    return song


def count_matches(
    reference: list[tuple[float, int]], estimated: list[NoteEvent], tolerance_s: float = 0.05
) -> int:
    """How many reference notes ``(onset_s, pitch)`` were heard: an estimated note of the same pitch
    whose onset is within ``tolerance_s``, each estimated note matching at most one reference note
    (closest pairs first)."""
    pairs = sorted(
        (abs(e.start_s - onset), i, j)
        for i, (onset, pitch) in enumerate(reference)
        for j, e in enumerate(estimated)
        if e.pitch == pitch and abs(e.start_s - onset) <= tolerance_s
    )
    used_ref: set[int] = set()
    used_est: set[int] = set()
    for _, i, j in pairs:
        if i not in used_ref and j not in used_est:
            used_ref.add(i)
            used_est.add(j)
    return len(used_ref)
