"""Tokenizers as data: a vocabulary described by a small dict, saved inside every checkpoint.

:class:`GridMelodyTokenizer` is paper 003's encoding: one symbol per 16th-note step, a MIDI pitch
at a note's onset, ``r`` at a rest's onset, ``_`` while the note or rest holds; plus ``<s>``,
which starts every tune. Its table::

    id 0            <s>     start of a tune
    id 1            r       rest onset
    id 2            _       hold the previous note or rest
    id 3 + k        pitch   MIDI pitch ``pitch_min + k`` (k = 0 .. pitch_max - pitch_min)

Raw step codes (the dataset's int16 arrays) use a MIDI pitch, ``REST`` (-1) or ``HOLD`` (-2).
Converting between notes (ticks) and steps lives here too, so every model on the grid shares it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from musicgen_app.errors import CheckpointError

logger = logging.getLogger(__name__)

HOLD = -2
REST = -1
BOS, REST_ID, HOLD_ID = 0, 1, 2
SPECIALS = ("<s>", "r", "_")


@dataclass(frozen=True)
class GridMelodyTokenizer:
    """Paper 003's step encoding over MIDI pitches ``pitch_min..pitch_max``."""

    pitch_min: int = 48
    pitch_max: int = 96
    steps_per_quarter: int = 4

    kind = "grid-melody"

    # -- table -----------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of token ids."""
        return len(SPECIALS) + self.pitch_max - self.pitch_min + 1

    @property
    def tokens(self) -> list[str]:
        """The symbol of every id, in id order (pitches as decimal MIDI numbers, as in the paper)."""
        return [*SPECIALS, *(str(p) for p in range(self.pitch_min, self.pitch_max + 1))]

    def to_dict(self) -> dict:
        """The vocabulary as data (what a checkpoint card stores)."""
        return {
            "kind": self.kind,
            "pitch_min": self.pitch_min,
            "pitch_max": self.pitch_max,
            "steps_per_quarter": self.steps_per_quarter,
            "tokens": self.tokens,
        }

    @classmethod
    def from_dict(cls, d: dict) -> GridMelodyTokenizer:
        """The tokenizer a card describes (raises CheckpointError when it is inconsistent)."""
        try:
            tok = cls(int(d["pitch_min"]), int(d["pitch_max"]), int(d.get("steps_per_quarter", 4)))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"the model's vocabulary is incomplete ({exc})") from exc
        if d.get("kind", cls.kind) != cls.kind or ("tokens" in d and list(d["tokens"]) != tok.tokens):
            raise CheckpointError("the model's vocabulary does not match this version of the app")
        return tok

    @classmethod
    def covering(cls, pitches: Iterable[int], margin: int = 0) -> GridMelodyTokenizer:
        """The smallest tokenizer whose pitch range covers ``pitches`` (plus ``margin``)."""
        arr = np.fromiter(pitches, dtype=np.int64)
        return cls(int(arr.min()) - margin, int(arr.max()) + margin)

    # -- steps <-> ids ------------------------------------------------------------------------------
    def fold_pitch(self, pitch: int) -> int:
        """``pitch`` moved by octaves into the vocabulary's range."""
        while pitch < self.pitch_min:
            pitch += 12
        while pitch > self.pitch_max:
            pitch -= 12
        return pitch

    def encode_step(self, code: int) -> int:
        """The id of one raw step code."""
        if code == HOLD:
            return HOLD_ID
        if code == REST:
            return REST_ID
        return len(SPECIALS) + self.fold_pitch(int(code)) - self.pitch_min

    def encode_steps(self, codes: np.ndarray | Sequence[int]) -> np.ndarray:
        """Ids (int64) of raw step codes; out-of-range pitches are folded by octaves."""
        arr = np.asarray(codes, dtype=np.int64)
        out = np.where(arr == HOLD, HOLD_ID, REST_ID).astype(np.int64)
        notes = arr >= 0
        if notes.any():
            p = arr[notes]
            p = np.where(p < self.pitch_min, p + 12 * ((self.pitch_min - p + 11) // 12), p)
            p = np.where(p > self.pitch_max, p - 12 * ((p - self.pitch_max + 11) // 12), p)
            out[notes] = len(SPECIALS) + p - self.pitch_min
        return out

    def decode_id(self, token: int) -> int:
        """The raw step code of one id (``<s>`` decodes as a rest)."""
        if token == HOLD_ID:
            return HOLD
        if token < len(SPECIALS):
            return REST
        return self.pitch_min + token - len(SPECIALS)

    def decode_ids(self, ids: Iterable[int]) -> np.ndarray:
        """Raw step codes (int16) of ids."""
        return np.array([self.decode_id(int(t)) for t in ids], dtype=np.int16)

    def is_pitch(self, token: int) -> bool:
        """Whether ``token`` is a note onset."""
        return token >= len(SPECIALS)

    def pitch_ids(self) -> np.ndarray:
        """The ids of all pitch tokens."""
        return np.arange(len(SPECIALS), self.vocab_size)

    def id_pitches(self) -> np.ndarray:
        """For every id, its MIDI pitch, or -1 for a special token."""
        out = np.full(self.vocab_size, -1, dtype=np.int64)
        out[len(SPECIALS) :] = np.arange(self.pitch_min, self.pitch_max + 1)
        return out


# -- notes <-> steps ------------------------------------------------------------------------------------
def notes_to_steps(
    notes: Iterable[tuple[int, int, int]], start_tick: int, end_tick: int, ticks_per_step: float
) -> np.ndarray:
    """Raw step codes for ``(start_tick, end_tick, pitch)`` notes between ``start_tick`` and ``end_tick``.

    Onsets are rounded to the nearest step; a melody is monophonic, so when notes overlap the later
    onset cuts the earlier note and at equal onsets the highest pitch wins. Gaps are rests.
    """
    n_steps = max(0, math.ceil((end_tick - start_tick) / ticks_per_step - 1e-9))
    steps = np.full(n_steps, HOLD, dtype=np.int16)
    onset: dict[int, int] = {}
    ends: dict[int, int] = {}
    for s, e, p in notes:
        i = round((s - start_tick) / ticks_per_step)
        if not 0 <= i < n_steps:
            continue
        if i not in onset or p > onset[i]:
            onset[i] = p
            ends[i] = max(i + 1, round((e - start_tick) / ticks_per_step))
    current_end = 0
    in_rest = True
    for i in range(n_steps):
        if i in onset:
            steps[i] = onset[i]
            current_end = ends[i]
            in_rest = False
        elif i >= current_end and not in_rest:
            steps[i] = REST
            in_rest = True
    if n_steps and steps[0] == HOLD:
        steps[0] = REST
    return steps


def steps_to_notes(codes: Sequence[int], start_tick: int, ticks_per_step: int) -> list[tuple[int, int, int]]:
    """``(start_tick, end_tick, pitch)`` notes of raw step codes (a note lasts until the next onset
    or rest)."""
    notes: list[tuple[int, int, int]] = []
    current: tuple[int, int] | None = None  # (start step, pitch)
    for i, code in enumerate(codes):
        if code == HOLD:
            continue
        if current is not None:
            notes.append(
                (start_tick + current[0] * ticks_per_step, start_tick + i * ticks_per_step, current[1])
            )
            current = None
        if code >= 0:
            current = (i, int(code))
    if current is not None:
        end = start_tick + len(codes) * ticks_per_step
        notes.append((start_tick + current[0] * ticks_per_step, end, current[1]))
    return notes
