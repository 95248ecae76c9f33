"""Accompany: a new track under a melody, written by a model trained here.

:func:`start_accompany_session` reads the melody track of a song onto a 16th grid, runs the
chord encoder of an accompaniment model (:mod:`musicgen_app.ml.accompany_net`) over the whole
melody, picks one chord per beat (or takes the chords the musician gave), then writes the
accompaniment frame by frame in the session's iteration, yielding each note as soon as it ends:
the GUI and ``musicgen accompany --play`` stream it like a continuation.

Styles:

* ``piano``: the learned POP909 piano texture (model ``accompany-pop909``);
* ``bass``: the lowest line of that texture, moved into the bass register (E1..E3);
* ``chords``: block chords on the chords (predicted or given), voiced close to each other, struck
  at each chord change and each bar line;
* ``satb``: alto, tenor and bass under a soprano, from the chorale model (``accompany-chorales``),
  at most three voices at once.

Given chords (``chords=``) replace the predicted ones wherever they are given; the session's
``chords`` are the spans used (in the song's ticks), for the chord lane.

A song with other pitched parts besides the melody (a second line, a bass, a pad: every track but
the melody's and the drums) has them read too, as a musician would: a chord predictor trained with
other parts (``other_parts`` in its card) reads their pitch classes per beat beside the melody, and
still works on a melody alone.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicgen_app.core.chords import QUALITIES, Chord, ChordSpan, chords_for_bars
from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.song import Note, Song
from musicgen_app.errors import CheckpointError, GenerationError, MusicgenError
from musicgen_app.ml.accompany_net import (
    CHORD_QUALITIES,
    N_CHORDS,
    AccompanyConfig,
    AccompanyNet,
    BeatChordNet,
    BeatChordNetConfig,
    ChordNet,
    ChordNetConfig,
    chord_class,
    class_chord,
    key_histogram,
    melody_arrays,
    melody_features,
    parts_frames,
    transpose_classes,
)
from musicgen_app.ml.accompany_styles import (
    STYLES,
    accompaniment_track,
    check_style,
    default_model,
)
from musicgen_app.ml.session import GenerationSession

logger = logging.getLogger(__name__)

__all__ = [
    "STYLES",
    "AccompanyModel",
    "AccompanySession",
    "accompaniment_track",
    "accompany_song",
    "default_model",
    "load_accompany_model",
    "predict_chords",
    "progression_spans",
    "start_accompany_session",
]

VELOCITY = {"piano": 68, "chords": 62, "bass": 82, "satb": 70}
MAX_ONSETS = 6  # piano: keys struck in one frame, at most
MAX_SOUNDING = {"piano": 10, "bass": 10, "chords": 10, "satb": 3}
BASS_RANGE = (28, 52)  # E1..E3
BASS_SOURCE_MAX = 60  # the texture's notes below middle C make its bass line


@dataclass(frozen=True)
class Decoding:
    """How chords are chosen and followed, per training corpus (tuned on its validation songs).

    ``change_cost``: log-probability a chord change costs at a bar position (``other``: elsewhere);
    ``key_weight``: nats against a chord all outside the melody's key; ``chord_tone_bias``:
    logits added to onsets of the chord's tones and taken from the others; ``by_root``: the path
    is chosen over roots (each root's probability the sum over its qualities), then each stretch
    of one root takes its likeliest quality (:func:`beat_chords`)."""

    change_cost: tuple[tuple[int, float], ...] = ((0, 0.0), (8, 0.5))
    change_cost_other: float = 1.0
    key_weight: float = 0.0
    chord_tone_bias: float = 2.0
    by_root: bool = False


CHORD_SHIFTS = (-1, 0, 1)  # transpositions the chord predictor reads the melody at (averaged)
DECODING = {
    "pop909": Decoding(((0, 0.0), (8, 0.2)), 0.5, by_root=True),
    "chorales": Decoding(((0, 0.3), (8, 0.0)), 0.3, key_weight=2.0, chord_tone_bias=1.5),
}


class AccompanyModel:
    """A loaded accompaniment checkpoint."""

    family = "accompany"

    def __init__(
        self,
        name: str,
        card: dict,
        path: Path | None,
        net: AccompanyNet,
        chord_nets: Sequence[ChordNet | BeatChordNet] = (),
    ) -> None:
        self.name = name
        self.card = card
        self.path = path
        self.net = net.eval()
        self.cfg = net.cfg
        #: the chord predictors named by the card's ``chord_model`` (none: the net's own chord head)
        self.chord_nets = tuple(c.eval() for c in chord_nets)

    @property
    def chord_net(self) -> ChordNet | BeatChordNet | None:
        """The first chord predictor (None: the net's own chord head chooses the chords)."""
        return self.chord_nets[0] if self.chord_nets else None

    def chord_logits(
        self,
        mel: np.ndarray,
        pitch: np.ndarray,
        parts: np.ndarray | None = None,
        known: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, np.ndarray]:
        """The encoder states (1, T, 2H) and the chord logits (T, C) of melody features ``mel``
        (``pitch``: the melody per frame, for the chord predictors' key histogram; ``parts``: the
        other parts per frame, :func:`~musicgen_app.ml.accompany_net.parts_frames`, or None): with
        chord predictors, their log-probabilities averaged (:meth:`predictor_logp`; ``known``:
        those already computed for these features, not computed again)."""
        with torch.no_grad():
            hidden, own = self.net.encode(torch.from_numpy(mel)[None])
        if not self.chord_nets:
            return hidden, own[0].numpy()
        return hidden, known if known is not None else self.predictor_logp(mel, pitch, parts)

    @property
    def reads_parts(self) -> bool:
        """Whether a chord predictor of this model reads the song's other parts."""
        return any(isinstance(c, BeatChordNet) and c.cfg.other_parts for c in self.chord_nets)

    def predictor_logp(
        self, mel: np.ndarray, pitch: np.ndarray, parts: np.ndarray | None = None
    ) -> np.ndarray:
        """The chord predictors' log-probabilities (T, C), averaged (the card must name some):
        with ``parts`` (T, PARTS_DIM), those of the predictors that read other parts, else those of
        all of them (:meth:`voters`)."""
        return self.predictor_logp_batch([mel], pitch, parts)[0]

    def predictor_logp_batch(
        self, mels: Sequence[np.ndarray], pitch: np.ndarray, parts: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """:meth:`predictor_logp` of several melody feature arrays of one melody (the same
        ``pitch``, other bar positions: the downbeat check's readings), each predictor run once on
        all of them as a batch."""
        classes = np.arange(N_CHORDS)
        total = np.zeros((len(mels), len(pitch), N_CHORDS))
        voters = self.voters(parts is not None)
        readings = [(m[:, 12] > 0, m[:, 15:].argmax(1)) for m in mels]  # (onset, bar position) each
        with torch.no_grad():
            for chord_net in voters:
                # a ChordNet's log-probabilities are averaged over the melody a semitone down, as it
                # is and a semitone up (each moved back); a BeatChordNet reads every melody in C
                shifts = (0,) if isinstance(chord_net, BeatChordNet) else CHORD_SHIFTS
                for shift in shifts:
                    moved = np.where(pitch >= 0, pitch.astype(np.int64) + shift, -1)
                    feats = np.stack([melody_features(moved, o, pos) for o, pos in readings])
                    hist = torch.from_numpy(key_histogram(moved))[None].expand(len(mels), -1)
                    other = None if parts is None else torch.from_numpy(parts)[None].expand(len(mels), -1, -1)
                    logp = torch.log_softmax(chord_net(torch.from_numpy(feats), hist, other), -1).numpy()
                    total += logp[:, :, transpose_classes(classes, shift)] / len(shifts)
        return list(total / len(voters))

    def voters(self, hearing_parts: bool) -> tuple[ChordNet | BeatChordNet, ...]:
        """The chord predictors whose log-probabilities are averaged: hearing other parts, those
        that read them (all of them when none does); on a melody alone, all of them, those that
        can read other parts reading none (chosen on POP909's validation songs: a predictor deaf
        to the other parts dilutes what they say, while on a melody alone every predictor adds
        a voice)."""
        reading = tuple(c for c in self.chord_nets if isinstance(c, BeatChordNet) and c.cfg.other_parts)
        return (reading or self.chord_nets) if hearing_parts else self.chord_nets

    @property
    def decoding(self) -> Decoding:
        """How this model's chords are chosen and followed (by the corpus it was trained on)."""
        return DECODING.get(str(self.card.get("corpus", "pop909")), Decoding())

    @property
    def styles(self) -> tuple[str, ...]:
        """The styles the card says it was trained for."""
        return tuple(self.card.get("styles", ("piano",)))


def load_accompany(name: str, card: dict, path: Path) -> AccompanyModel:
    """The registry's loader for ``"family": "accompany"`` cards (raises CheckpointError)."""
    from musicgen_app.ml.checkpoint import load_into, load_weights

    cfg_raw = card.get("config")
    if not isinstance(cfg_raw, dict):
        raise CheckpointError(f"model {name}: its card has no configuration")
    cfg = AccompanyConfig.from_card(cfg_raw)
    if not (cfg.low >= 0 and cfg.low + cfg.keys <= 128 and cfg.keys >= 1):
        raise CheckpointError(f"model {name}: its key range {cfg.low}+{cfg.keys} is not MIDI")
    net = AccompanyNet(cfg)
    load_into(net, load_weights(path, card), name)
    chord_names = card.get("chord_model")
    if chord_names is None:
        chord_names = []
    elif isinstance(chord_names, str):
        chord_names = [chord_names]
    if not isinstance(chord_names, list):
        raise CheckpointError(f"model {name}: its card names a chord model {chord_names!r:.40}")
    for chord_name in chord_names:
        if not isinstance(chord_name, str) or not chord_name.replace("-", "").replace("_", "").isalnum():
            raise CheckpointError(f"model {name}: its card names a chord model {chord_name!r:.40}")
    nets = [load_chord_net(Path(path).parent / f"{c}.safetensors") for c in chord_names]
    return AccompanyModel(name, card, path, net, nets)


def load_chord_model(name: str, card: dict, path: Path) -> ChordNet | BeatChordNet:
    """The registry's loader for ``"family": "accompany-chords"`` cards (the chord predictor an
    accompaniment card names; ``musicgen models`` verifies it like any checkpoint)."""
    return load_chord_net(path)


def load_chord_net(path: Path) -> ChordNet | BeatChordNet:
    """The chord predictor at ``path`` (raises CheckpointError)."""
    from musicgen_app.ml.checkpoint import load_into, load_weights, read_card

    card = read_card(path)
    arch = card.get("architecture")
    net: ChordNet | BeatChordNet
    if arch == "accompany-chords":
        net = ChordNet(ChordNetConfig.from_card(card.get("config") or {}))
    elif arch == "accompany-chords-bigru":
        net = BeatChordNet(BeatChordNetConfig.from_card(card.get("config") or {}))
    else:
        raise CheckpointError(f"model {path.stem} is not a chord predictor")
    load_into(net, load_weights(path, card), path.stem)
    return net


def load_accompany_model(name_or_path: str | Path) -> AccompanyModel:
    """An accompaniment model by name or path (raises CheckpointError, also for a model of
    another kind)."""
    from musicgen_app.ml.registry import load_model

    model = load_model(name_or_path)
    if not isinstance(model, AccompanyModel):
        raise CheckpointError(
            f"model {Path(str(name_or_path)).stem} cannot accompany "
            "(use accompany-pop909 or accompany-chorales)"
        )
    return model


# -- the grid ---------------------------------------------------------------------------------------
@dataclass
class Grid:
    """Where frame 0 is and how long a frame is, in the song's ticks; bar lines for positions."""

    offset: float
    ticks_per_frame: float
    n_frames: int
    position: np.ndarray  # (T,) position of each frame in its bar

    def tick(self, frame: float) -> int:
        """Song tick of (fractional) frame ``frame``."""
        return round(self.offset + frame * self.ticks_per_frame)

    def frame(self, tick: float) -> int:
        """The frame nearest ``tick``."""
        return round((tick - self.offset) / self.ticks_per_frame)


def song_grid(song: Song, notes: Sequence[Note]) -> Grid:
    """The 16th grid of ``song`` under ``notes`` (its phase from the notes' onsets, as the dataset
    build finds POP909's shifted grid), up to the bar line after the last note.

    The chord predictors learnt 4/4 bars: bars of one or two quarters (a file declaring 1/4 or 2/4,
    as nearly half of POP909's do) are read four or two at a time as one 16-frame bar, and the
    downbeat check (:func:`rephase`) then finds which of its beats the harmony starts on. Read as
    they are, such bars cost several points of root agreement on POP909's validation songs (the
    path's change cost is lowest at bar lines: with 1/4 bars, at every beat)."""
    from musicgen_app.ml.midi_data import _grid

    phase, tpf, _ = _grid(song, {})
    last = max(n.end_tick for n in notes)
    lines = song.bar_starts(last + song.ticks_per_bar(last))
    end_tick = next((t for t in lines if t >= last), last)
    n_frames = max(4, math.ceil((end_tick - phase) / tpf / 4 - 1e-9) * 4)
    ticks = phase + np.arange(n_frames) * tpf
    idx = np.searchsorted(np.array(lines, dtype=np.float64), ticks + 1e-6, side="right") - 1
    bar_at = np.array(lines, dtype=np.float64)[np.clip(idx, 0, len(lines) - 1)]
    position = np.clip(np.round((ticks - bar_at) / tpf), 0, 15).astype(np.int64)
    return Grid(phase, tpf, n_frames, whole_bars(position))


def whole_bars(position: np.ndarray) -> np.ndarray:
    """Bar positions with bars of 4 or 8 frames (1/4, 2/4) counted on across 16-frame bars (the
    first short bar starting one); other metres as they are."""
    starts = np.flatnonzero(position == 0)
    bar = int(position.max()) + 1 if len(position) else 16
    if bar not in (4, 8) or not len(starts):
        return position
    index = np.cumsum(position == 0) - 1  # the short bar each frame is in (-1 before the first)
    grouped = (np.maximum(index, 0) % (16 // bar)) * bar + position
    return np.where(index >= 0, grouped, position).astype(np.int64)


def melody_on_grid(notes: Sequence[Note], grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """``(pitch, onset)`` per frame of the melody ``notes`` (the highest line)."""
    return melody_arrays(grid_rows(notes, grid), grid.n_frames)


def grid_rows(notes: Sequence[Note], grid: Grid) -> np.ndarray:
    """``(N, 3)`` int64 rows (start frame, length in frames at least 1, pitch) of ``notes``."""
    rows = [
        (grid.frame(n.start_tick), max(1, grid.frame(n.end_tick) - grid.frame(n.start_tick)), n.pitch)
        for n in notes
    ]
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def parts_on_grid(song: Song, melody: int, grid: Grid) -> tuple[np.ndarray | None, int]:
    """The other parts of ``song`` (every pitched track but ``melody``) per frame of ``grid``
    (:func:`~musicgen_app.ml.accompany_net.parts_frames`), and how many tracks that is (None, 0:
    the melody is alone)."""
    others = [tr for i, tr in enumerate(song.tracks) if i != melody and not tr.is_drum and tr.notes]
    if not others:
        return None, 0
    rows = grid_rows([n for tr in others for n in tr.notes], grid)
    return parts_frames(rows, grid.n_frames), len(others)


def progression_spans(
    song: Song, chords: Sequence[Chord | None], end_tick: int, start_tick: int = 0
) -> list[ChordSpan]:
    """One chord per bar from ``start_tick``'s bar up to ``end_tick``, the progression repeating
    (``"C G Am F"`` typed: C in bar 1, G in bar 2, ..., C again in bar 5); the song's bar lines
    given to :func:`musicgen_app.core.chords.chords_for_bars`."""
    if not chords:
        raise GenerationError("the chord progression is empty")
    lines = song.bar_starts(end_tick + song.ticks_per_bar(end_tick))
    first = max(0, bisect.bisect_right(lines, start_tick) - 1)
    last = bisect.bisect_left(lines, end_tick)  # the first bar line at or after the end
    return chords_for_bars(chords, lines[first : last + 1])


# -- chords -----------------------------------------------------------------------------------------
def beat_chords(
    chord_logits: np.ndarray,
    position: np.ndarray,
    key_pcs: frozenset[int] | None = None,
    *,
    key_weight: float = 0.0,
    change_cost: dict[int, float] | None = None,
    change_cost_other: float = 1.0,
    by_root: bool = False,
) -> np.ndarray:
    """One chord class per beat (4 frames) from frame logits (T, C): the best path under a cost
    for changing chord (cheap at bar lines, dearer mid-bar) and, with ``key_pcs``, a prior for the
    chords of the key (``key_weight`` nats per chord tone outside it, over the chord's size);
    "no chord" is never chosen. With ``by_root`` the path goes over the 12 roots, a root's
    probability being the sum of its qualities' (a beat torn between C and C7 is surely on C),
    and each stretch of one root then takes the quality likeliest over the stretch."""
    n_beats = chord_logits.shape[0] // 4
    z = chord_logits[: n_beats * 4].reshape(n_beats, 4, N_CHORDS).mean(1).astype(np.float64)
    z = z - z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    logp[:, 0] = -1e9
    if key_pcs is not None and key_weight:
        logp = logp + key_weight * _key_prior(key_pcs)
    if not by_root:
        return _best_path(logp, position, change_cost or {}, change_cost_other)
    nq = len(CHORD_QUALITIES)
    by_q = logp[:, 1:].reshape(n_beats, 12, nq)  # class 1 + nq * root + quality
    top = by_q.max(2, keepdims=True)
    root_logp = (top + np.log(np.exp(by_q - top).sum(2, keepdims=True)))[:, :, 0]
    roots = _best_path(root_logp, position, change_cost or {}, change_cost_other)
    out = np.zeros(n_beats, dtype=np.int64)
    start = 0
    for b in range(1, n_beats + 1):
        if b == n_beats or roots[b] != roots[start]:
            quality = int(by_q[start:b, roots[start]].sum(0).argmax())
            out[start:b] = 1 + nq * int(roots[start]) + quality
            start = b
    return out


def _best_path(
    logp: np.ndarray, position: np.ndarray, costs: dict[int, float], cost_other: float
) -> np.ndarray:
    """The state per beat maximising the summed ``logp`` (n_beats, S) less a cost per change
    (``costs`` by the frame position of the beat changed at, ``cost_other`` elsewhere)."""
    n_beats, n_states = logp.shape
    score = logp[0].copy()
    back = np.zeros((n_beats, n_states), dtype=np.int64)
    for b in range(1, n_beats):
        cost = costs.get(int(position[4 * b]), cost_other)
        best_prev = int(score.argmax())
        stay = score
        move = score[best_prev] - cost
        take_move = move > stay
        back[b] = np.where(take_move, best_prev, np.arange(n_states))
        score = np.where(take_move, move, stay) + logp[b]
    path = np.zeros(n_beats, dtype=np.int64)
    if n_beats:
        path[-1] = int(score.argmax())
    for b in range(n_beats - 1, 0, -1):
        path[b - 1] = back[b, path[b]]
    return path


def _key_prior(key_pcs: frozenset[int]) -> np.ndarray:
    """Per chord class: minus the share of its tones outside ``key_pcs`` (0 for a diatonic chord)."""
    prior = np.zeros(N_CHORDS)
    for c in range(1, N_CHORDS):
        chord = class_chord(c)
        assert chord is not None
        pcs = chord.pitch_classes()
        prior[c] = -len(pcs - key_pcs) / len(pcs)
    return prior


def melody_key_pcs(pitch: np.ndarray) -> frozenset[int]:
    """The scale of the key the melody is in (Krumhansl-Schmuckler on its duration per pitch)."""
    from musicgen_app.ml.keys import estimate_key

    sounding = pitch[pitch >= 0]
    if not len(sounding):
        return frozenset(range(12))
    return estimate_key(sounding.tolist()).scale_pcs()


def frames_from_spans(spans: Sequence[ChordSpan], grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, given)`` per frame: the class of the chord given at each frame and whether one
    was (a span's ``None`` chord is given as "no chord")."""
    classes = np.zeros(grid.n_frames, dtype=np.int64)
    given = np.zeros(grid.n_frames, dtype=bool)
    for span in spans:
        a = max(0, math.ceil((span.start_tick - grid.offset) / grid.ticks_per_frame - 0.5))
        b = min(grid.n_frames, math.ceil((span.end_tick - grid.offset) / grid.ticks_per_frame - 0.5))
        if b > a:
            classes[a:b] = chord_class(span.chord)
            given[a:b] = True
    return classes, given


def spans_from_frames(classes: np.ndarray, grid: Grid) -> list[ChordSpan]:
    """Chord spans (song ticks) of per-frame classes, equal neighbours merged."""
    out: list[ChordSpan] = []
    start = 0
    for t in range(1, len(classes) + 1):
        if t == len(classes) or classes[t] != classes[start]:
            out.append(ChordSpan(grid.tick(start), grid.tick(t), class_chord(int(classes[start]))))
            start = t
    return out


# -- the session ------------------------------------------------------------------------------------
@dataclass
class AccompanyPlan:
    """What the session decodes: the melody and chords on the grid, and where the notes go."""

    grid: Grid
    mel: np.ndarray  # (T, MELODY_DIM) float32
    melody_pitch: np.ndarray  # (T,)
    hidden: torch.Tensor  # (1, T, 2H) the chord encoder's states
    chords: np.ndarray  # (T,) chord class per frame
    chord_spans: list[ChordSpan]
    style: str
    track: int  # where the notes go (the new track's index)
    channel: int
    given: bool  # the chords were (at least partly) given
    parts_read: int = 0  # the song's other tracks the chord predictor read besides the melody


@dataclass
class _Voice:
    pitch: int
    start: int  # frame
    velocity: int


def chord_tone_signs(low: int, keys: int) -> np.ndarray:
    """(N_CHORDS, keys): +1 where the key is a tone of the class's chord, -1 where it is not, 0
    for "no chord"."""
    out = np.zeros((N_CHORDS, keys), dtype=np.float32)
    pcs = (low + np.arange(keys)) % 12
    for c in range(1, N_CHORDS):
        chord = class_chord(c)
        assert chord is not None
        out[c] = np.where(np.isin(pcs, list(chord.pitch_classes())), 1.0, -1.0)
    return out


def _velocity(style: str, position: int, rng: np.random.Generator) -> int:
    base = VELOCITY[style] + (8 if position == 0 else 3 if position % 4 == 0 else 0)
    return int(np.clip(base + rng.integers(-4, 5), 1, 127))


class AccompanySession(GenerationSession):
    """Writes the accompaniment frame by frame; yields each note when it ends."""

    def __init__(self, model: AccompanyModel, plan: AccompanyPlan, *, temperature: float, seed: int) -> None:
        super().__init__(temperature)
        self.model = model
        self.plan = plan
        self.seed = int(seed)
        self.track = plan.track
        self.notes: list[Note] = []
        #: logits added to the onsets of the chord's tones (and taken from the others)
        self.chord_tone_bias = model.decoding.chord_tone_bias

    @property
    def chords(self) -> list[ChordSpan]:
        """The chords the accompaniment follows (song ticks)."""
        return self.plan.chord_spans

    def _note(self, v: _Voice, end_frame: int) -> Note:
        g = self.plan.grid
        return Note(
            g.tick(v.start),
            v.pitch,
            max(g.tick(end_frame), g.tick(v.start) + 1),
            v.velocity,
            self.plan.channel,
        )

    def _texture(self) -> Iterator[tuple[int, list[_Voice], list[_Voice]]]:
        """The model's frames: ``(frame, started, ended)`` voices per frame (ended: cut at frame)."""
        plan, net, cfg = self.plan, self.model.net, self.model.cfg
        rng = np.random.default_rng(self.seed)
        k = cfg.keys
        style = plan.style
        cap = MAX_SOUNDING.get(style, 10)
        dec = net.stepper(plan.hidden[0], torch.from_numpy(plan.chords), torch.from_numpy(plan.mel))
        prev_on = np.zeros(0, dtype=np.int64)
        prev_sound = np.zeros(0, dtype=np.int64)
        sounding: dict[int, _Voice] = {}
        bias = self.chord_tone_bias
        tone_sign = chord_tone_signs(cfg.low, k)
        for t in range(plan.grid.n_frames):
            if self.cancelled:
                return
            on_logit, sus_logit = dec.step(t, prev_on, prev_sound)
            on_logit = on_logit + bias * tone_sign[plan.chords[t]]  # lean onsets to the chord's tones
            temp = max(1e-3, self._temperature)
            p_on = 1.0 / (1.0 + np.exp(-on_logit / temp))
            p_sus = 1.0 / (1.0 + np.exp(-sus_logit / temp))
            u = rng.random((2, k))
            on = u[0] < p_on
            if on.sum() > MAX_ONSETS:
                keep = np.argsort(-p_on * on)[:MAX_ONSETS]
                on = np.zeros(k, dtype=bool)
                on[keep] = True
            sound_prev = np.zeros(k, dtype=bool)
            sound_prev[prev_sound] = True
            sus = sound_prev & (u[1] < p_sus) & ~on
            if on.sum() + sus.sum() > cap:  # keep the held keys first, then the likeliest onsets
                room = max(0, cap - int(sus.sum()))
                if sus.sum() > cap:
                    held = np.argsort(-p_sus * sus)[:cap]
                    sus = np.zeros(k, dtype=bool)
                    sus[held] = True
                    room = 0
                keep = np.argsort(-p_on * on)[:room]
                on = np.zeros(k, dtype=bool)
                on[keep] = True
            ended = []
            for key in list(sounding):
                if not sus[key]:
                    ended.append(sounding.pop(key))
            started = []
            pos = int(plan.grid.position[t])
            for struck in np.nonzero(on)[0].tolist():
                v = _Voice(cfg.low + struck, t, _velocity(style, pos, rng))
                sounding[struck] = v
                started.append(v)
            yield t, started, ended
            prev_on = np.nonzero(on)[0]
            prev_sound = np.nonzero(on | sus)[0]
        yield plan.grid.n_frames, [], list(sounding.values())

    def _piano(self) -> Iterator[Note]:
        for t, _started, ended in self._texture():
            for v in sorted(ended, key=lambda v: (v.start, v.pitch)):
                yield self._note(v, t)

    def _bass(self) -> Iterator[Note]:
        """The lowest line of the texture (its notes below middle C), in the bass register."""
        current: _Voice | None = None
        source: _Voice | None = None
        for t, started, ended in self._texture():
            low = [v for v in started if v.pitch < BASS_SOURCE_MAX]
            if current is not None and (low or any(v is source for v in ended)):
                yield self._note(current, t)
                current = None
            if low:
                source = min(low, key=lambda v: v.pitch)
                pitch = source.pitch
                while pitch > BASS_RANGE[1]:
                    pitch -= 12
                while pitch < BASS_RANGE[0]:
                    pitch += 12
                current = _Voice(pitch, t, VELOCITY["bass"] + (6 if self.plan.grid.position[t] == 0 else 0))
        if current is not None:
            yield self._note(current, self.plan.grid.n_frames)

    def _block_chords(self) -> Iterator[Note]:
        """Block chords: the root in the bass, the chord tones voiced near the last voicing, under
        the lowest melody note of the chord's span (:func:`block_voicing`), struck at each change
        and bar line."""
        plan, g = self.plan, self.plan.grid
        prev: list[int] = [60, 64, 67]
        ceiling = VOICING_TOP
        t = 0
        while t < g.n_frames:
            if self.cancelled:
                return
            c = int(plan.chords[t])
            end = t + 1
            while end < g.n_frames and int(plan.chords[end]) == c and g.position[end] != 0:
                end += 1
            chord = class_chord(c)
            if chord is not None:
                sung = plan.melody_pitch[t:end]
                sung = sung[sung >= 0]
                if len(sung):  # a span without melody keeps the last one's ceiling
                    ceiling = min(VOICING_TOP, int(sung.min()))
                bass, upper = block_voicing(prev, chord, below=ceiling)
                prev = upper
                pos = int(g.position[t])
                vel = VELOCITY["chords"] + (8 if pos == 0 else 0)
                for pitch in [bass, *upper]:
                    yield Note(g.tick(t), pitch, g.tick(end), vel, plan.channel)
            t = end

    def __iter__(self) -> Iterator[NoteEvent | SessionFinished]:
        started = time.perf_counter()
        reason, message, seq = "done", "", 0
        source = {
            "piano": self._piano,
            "satb": self._piano,
            "bass": self._bass,
            "chords": self._block_chords,
        }[self.plan.style]
        try:
            for note in source():
                if self.cancelled:
                    break
                self.notes.append(note)
                yield NoteEvent(self.id, seq, note, self.track)
                seq += 1
            if self.cancelled:
                reason = "cancelled"
        except (MusicgenError, RuntimeError, ValueError) as exc:
            logger.warning("accompany session %d failed: %s", self.id, exc, exc_info=True)
            reason, message = "error", str(exc)
        yield SessionFinished(
            self.id,
            reason,
            message,
            notes=seq,
            tokens=self.plan.grid.n_frames,
            seconds=time.perf_counter() - started,
        )


VOICING_TOP = 80  # block chords' upper voices stay below G#5
VOICING_FLOOR = 52  # and from E3 up, unless the melody is lower (the bass below them)


def block_voicing(prev: list[int], chord: Chord, below: int = VOICING_TOP) -> tuple[int, list[int]]:
    """The bass and three upper voices of ``chord`` under ``below`` (the melody's lowest note
    there: a pad that covers the tune masks it). The upper voices (:func:`_voice_near`) lie in the
    octave and more under ``below``, from :data:`VOICING_FLOOR` up (lower for a low melody); the
    bass is the root, C3..B3, an octave lower when that would reach the voices."""
    floor = min(VOICING_FLOOR, below - 12)
    bass = 48 + chord.root % 12
    if bass >= floor:
        bass -= 12
    return bass, _voice_near(prev, chord, below=below, floor=max(floor, bass + 1))


def _voice_near(
    prev: list[int], chord: Chord, below: int = VOICING_TOP, floor: int = VOICING_FLOOR
) -> list[int]:
    """Three upper voices of ``chord`` (root, third, fifth; third, fifth, seventh of a larger
    chord, the root being in the bass), each the nearest to a voice of ``prev``, from ``floor`` up
    to under ``below`` (at least an octave)."""
    intervals = QUALITIES[chord.quality]
    tones = [(chord.root + iv) % 12 for iv in (intervals[1:4] if len(intervals) >= 4 else intervals[:3])]
    top = min(VOICING_TOP, max(below, floor + 12))
    out: list[int] = []
    for target, pc in zip(sorted(prev), sorted(tones, key=lambda p: (p - prev[0]) % 12), strict=False):
        cands = [p for p in range(floor, top) if p % 12 == pc and p not in out]
        out.append(min(cands, key=lambda p: abs(p - target)))
    return sorted(out)


# -- entry points -----------------------------------------------------------------------------------
def plan_accompany(
    model: AccompanyModel,
    song: Song,
    track: int,
    *,
    style: str,
    chords: Sequence[ChordSpan] | None = None,
    other_parts: bool = True,
) -> AccompanyPlan:
    """The melody of ``track`` on the grid, the chords per frame (given or predicted), and the
    new track's index and channel (raises GenerationError). With ``other_parts`` the song's
    other pitched tracks are read too (by a chord predictor that reads them)."""
    check_style(style)
    if not 0 <= track < len(song.tracks):
        raise GenerationError(f"the song has no track {track + 1} (it has {len(song.tracks)})")
    tr = song.tracks[track]
    if tr.is_drum:
        raise GenerationError(f"track {track + 1} is a drum track: choose a melody to accompany")
    notes = sorted(tr.notes)
    if not notes:
        raise GenerationError(f"track {track + 1} has no notes: there is no melody to accompany")
    grid = song_grid(song, notes)
    pitch, onset = melody_on_grid(notes, grid)
    given: tuple[np.ndarray, np.ndarray] | None = frames_from_spans(chords, grid) if chords else None
    new_track = accompaniment_track(song, style)
    parts, used = parts_on_grid(song, track, grid) if other_parts and model.reads_parts else (None, 0)
    plan = plan_frames(
        model,
        grid,
        pitch,
        onset,
        style,
        given,
        track=len(song.tracks),
        channel=new_track.channel,
        parts=parts,
    )
    return replace(plan, parts_read=used)


def rephase(
    model: AccompanyModel, grid: Grid, pitch: np.ndarray, onset: np.ndarray, parts: np.ndarray | None = None
) -> tuple[Grid, np.ndarray | None]:
    """``grid`` with its bar positions moved by the whole beats that make the chord predictors
    most sure of their chords' roots (the mean over beats of minus the entropy of the root, each
    root's probability the sum of its qualities'; chosen on POP909's validation songs over the
    best chord's logit): the bar lines as the melody's harmony places them. Unchanged without a
    chord predictor or when no shift beats the bar lines as written. Also returns the chord
    predictors' log-probabilities at the grid returned (None without a predictor or a whole beat),
    so the plan does not compute them again."""
    if model.chord_net is None:
        return grid, None
    bar = int(grid.position.max()) + 1
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    positions = [(grid.position - shift) % bar for shift in range(0, bar, 4)]
    mels = [melody_features(pitch.astype(np.int64), onset, position) for position in positions]
    for position, logits in zip(positions, model.predictor_logp_batch(mels, pitch, parts), strict=True):
        n_beats = len(logits) // 4
        if not n_beats:
            return grid, None
        confidence = root_sureness(logits[: 4 * n_beats].reshape(n_beats, 4, -1).mean(1))
        if best is None or confidence > best[0] + 1e-9:
            best = (confidence, position, logits)
    assert best is not None
    return replace(grid, position=best[1]), best[2]


def root_sureness(beat_logp: np.ndarray) -> float:
    """How sure per-beat chord log-probabilities (n_beats, C) are of their roots: the mean over
    beats of minus the entropy of the root ("no chord" left out, a root's probability the sum of
    its qualities'); 0 when every beat is sure of one root."""
    z = beat_logp[:, 1:].astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    roots = p.reshape(len(z), 12, len(CHORD_QUALITIES)).sum(2)
    roots /= roots.sum(1, keepdims=True)
    return float((roots * np.log(np.maximum(roots, 1e-300))).sum(1).mean())


def plan_frames(
    model: AccompanyModel,
    grid: Grid,
    pitch: np.ndarray,
    onset: np.ndarray,
    style: str,
    given: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    track: int = 0,
    channel: int = 0,
    parts: np.ndarray | None = None,
) -> AccompanyPlan:
    """The plan of a melody already on a grid (``pitch``, ``onset`` per frame); ``given``: chord
    classes per frame and where they are given (:func:`frames_from_spans`); ``parts``: the song's
    other parts per frame (:func:`parts_on_grid`) or None.

    Without given chords the downbeat is checked first (:func:`rephase`): a file whose bar lines
    sit a beat or two off its music (POP909's trap) is read with its bars where the harmony has
    them."""
    known = None
    if given is None or not given[1].any():
        grid, known = rephase(model, grid, pitch, onset, parts)
    mel = melody_features(pitch.astype(np.int64), onset, grid.position)
    classes = np.zeros(grid.n_frames, dtype=np.int64)
    if given is not None and given[1].all():  # every frame's chord given: nothing to predict
        with torch.no_grad():
            hidden, _ = model.net.encode(torch.from_numpy(mel)[None])
    else:
        hidden, chord_logits = model.chord_logits(mel, pitch, parts, known)
        dec = model.decoding
        per_beat = beat_chords(
            chord_logits,
            grid.position,
            melody_key_pcs(pitch),
            key_weight=dec.key_weight,
            change_cost=dict(dec.change_cost),
            change_cost_other=dec.change_cost_other,
            by_root=dec.by_root,
        )
        classes[: 4 * len(per_beat)] = np.repeat(per_beat, 4)
        if len(per_beat) and 4 * len(per_beat) < grid.n_frames:
            classes[4 * len(per_beat) :] = per_beat[-1]
    given_any = False
    if given is not None:
        classes = np.where(given[1], given[0], classes)
        given_any = bool(given[1].any())
    return AccompanyPlan(
        grid=grid,
        mel=mel,
        melody_pitch=pitch,
        hidden=hidden,
        chords=classes,
        chord_spans=spans_from_frames(classes, grid),
        style=style,
        track=track,
        channel=channel,
        given=given_any,
    )


def start_accompany_session(
    model: AccompanyModel | str,
    song: Song,
    track: int,
    *,
    style: str = "piano",
    temperature: float = 1.0,
    seed: int | None = None,
    chords: Sequence[ChordSpan] | None = None,
    other_parts: bool = True,
) -> AccompanySession:
    """A session writing ``style`` accompaniment under ``track`` (its notes go to a new track at
    index ``len(song.tracks)``; see :func:`accompaniment_track`); with ``other_parts`` the chords
    are chosen hearing the song's other tracks too."""
    from musicgen_app.ml.sampling import random_seed

    if not (temperature > 0 and math.isfinite(temperature)):
        raise GenerationError(f"the temperature must be above 0, not {temperature}")
    m = load_accompany_model(model) if isinstance(model, str) else model
    plan = plan_accompany(m, song, track, style=style, chords=chords, other_parts=other_parts)
    return AccompanySession(m, plan, temperature=temperature, seed=random_seed() if seed is None else seed)


def predict_chords(
    song: Song, track: int, model: AccompanyModel | str = "accompany-pop909"
) -> list[ChordSpan]:
    """The chords the model would accompany ``track`` with, one per beat at most (song ticks):
    what the chord lane shows before any accompaniment is written (the chord encoder only;
    milliseconds). Raises GenerationError, CheckpointError."""
    m = load_accompany_model(model) if isinstance(model, str) else model
    return plan_accompany(m, song, track, style="chords").chord_spans


@dataclass
class AccompanyResult:
    """What :func:`accompany_song` did."""

    track: int  # the new track's index
    notes: list[Note]
    chords: list[ChordSpan]  # the chords followed (predicted or given)
    seed: int
    model: str
    extra: dict[str, Any] = field(default_factory=dict)


def accompany_song(
    song: Song,
    track: int,
    *,
    style: str = "piano",
    model: AccompanyModel | str | None = None,
    seed: int | None = None,
    temperature: float = 1.0,
    chords: Sequence[ChordSpan] | None = None,
) -> tuple[Song, AccompanyResult]:
    """A copy of ``song`` with a new accompaniment track after the others (``track`` and the rest
    unchanged), and what was done (raises GenerationError, CheckpointError)."""
    session = start_accompany_session(
        model or default_model(style),
        song,
        track,
        style=style,
        temperature=temperature,
        seed=seed,
        chords=chords,
    )
    notes: list[Note] = []
    for ev in session:
        if isinstance(ev, NoteEvent):
            notes.append(ev.note)
        elif ev.reason == "error":
            raise GenerationError(f"the accompaniment failed: {ev.message}")
    out = song.copy()
    new = accompaniment_track(song, style)
    new.notes = sorted(notes)
    out.tracks.append(new)
    return out, AccompanyResult(len(song.tracks), new.notes, session.chords, session.seed, session.model.name)


assert len(CHORD_QUALITIES) * 12 + 1 == N_CHORDS
