"""How well the accompaniment follows the harmony of held-out songs.

For each held-out POP909 song (the ``test`` split of :mod:`musicgen_app.ml.midi_data`), the
accompaniment model writes an accompaniment under the MELODY track; the chord of every beat is
then *estimated from the accompaniment's notes alone* (:func:`musicgen_app.core.chords.estimate_chords`)
and its root compared with the root annotated in ``chord_midi.txt`` (beats annotated "no chord"
are left out). A rule-based baseline is measured the same way in the same run: per bar, the
diatonic triad of the song's annotated key that covers the most of the bar's melody (by duration;
ties go to I, V, IV, vi, ii, iii, vii°), played as a block chord.

A system whose name ends in :data:`WITH_PARTS` hears the song's BRIDGE track (POP909's second
melody / instrumental line) beside the melody, as Accompany hears a song's other tracks; the PIANO
track, the target, is never an input.

For the chorales (``test`` split by name), the reference is the chord estimated per beat from
the real alto, tenor and bass; the ``satb`` accompaniment and the baseline are estimated the same
way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen_app.core.chords import Chord, estimate_chords
from musicgen_app.core.events import NoteEvent
from musicgen_app.ml.accompany import AccompanyModel, AccompanySession, Grid, plan_frames
from musicgen_app.ml.accompany_net import parts_frames
from musicgen_app.ml.accompany_train import Piece, load_chorale_pieces, load_pop909

logger = logging.getLogger(__name__)

#: a system named with this suffix hears the song's other parts (POP909: BRIDGE) beside the melody
WITH_PARTS = "(melody + BRIDGE)"
#: POP909's own PIANO track, its chords estimated as the accompaniments' are: how far the measure can go
REAL = "the song's real accompaniment (PIANO track)"

#: Diatonic triads as (degree semitones above the tonic, quality), in the baseline's tie order.
MAJOR_TRIADS = ((0, ""), (7, ""), (5, ""), (9, "m"), (2, "m"), (4, "m"), (11, "dim"))
MINOR_TRIADS = ((0, "m"), (7, ""), (5, "m"), (8, ""), (3, ""), (10, ""), (7, "m"), (2, "dim"))


@dataclass
class SongScore:
    """Beats compared in one song and how many roots agreed, per system."""

    name: str
    beats: int
    agree: dict[str, int]


def piece_grid(piece: Piece) -> Grid:
    """A grid whose ticks are the piece's frames."""
    return Grid(0.0, 1.0, piece.n_frames, piece.position)


def beat_spans(n_frames: int) -> list[tuple[int, int]]:
    """(start, end) frames of every beat."""
    return [(b, b + 4) for b in range(0, n_frames - 3, 4)]


def estimated_roots(notes: Sequence[tuple[int, int, int]], n_frames: int) -> np.ndarray:
    """The root pitch class estimated per beat from ``notes`` (start, end, pitch); -1: none."""
    roots = np.full(n_frames // 4, -1, dtype=np.int64)
    for span in estimate_chords(notes, beat_spans(n_frames)):
        if span.chord is not None:
            roots[span.start_tick // 4 : span.end_tick // 4] = span.chord.root
    return roots


def _key_of(piece: Piece) -> tuple[int, bool]:
    """``(tonic pitch class, minor)`` of the piece's key (annotated, else estimated from the melody)."""
    from musicgen_app.errors import MusicgenError
    from musicgen_app.ml.keys import estimate_key, parse_key

    text = piece.key
    if ":" in text:  # chorales: "pc:mode"
        pc, mode = text.split(":", 1)
        return int(pc), mode == "minor"
    try:
        key = parse_key(text) if text else None
    except MusicgenError:
        key = None
    if key is None:
        key = estimate_key(piece.pitch[piece.onset & (piece.pitch >= 0)].tolist())
    return key.tonic_pc, key.is_minor_like


def baseline_chords(piece: Piece, *, rephase: bool = False) -> list[tuple[int, int, Chord]]:
    """The rule-based baseline: per bar, the diatonic triad of the key covering the most melody.
    With ``rephase``, the bars are first moved by the whole beats whose triads cover the most
    melody in all (the baseline's own downbeat check, as the model has one)."""
    tonic, minor = _key_of(piece)
    triads = [Chord((tonic + deg) % 12, q) for deg, q in (MINOR_TRIADS if minor else MAJOR_TRIADS)]
    bar = int(piece.position.max()) + 1
    best: tuple[float, list[tuple[int, int, Chord]]] | None = None
    for shift in range(0, bar, 4) if rephase else (0,):
        position = (piece.position - shift) % bar
        bar_starts = [t for t in range(piece.n_frames) if position[t] == 0] or [0]
        if bar_starts[0] != 0:
            bar_starts.insert(0, 0)
        out, covered = [], 0.0
        for i, start in enumerate(bar_starts):
            end = bar_starts[i + 1] if i + 1 < len(bar_starts) else piece.n_frames
            weights = np.zeros(12)
            seg = piece.pitch[start:end]
            for p in seg[seg >= 0]:
                weights[int(p) % 12] += 1
            fit = max(triads, key=lambda c: sum(weights[pc] for pc in c.pitch_classes()))  # first of equals
            covered += sum(weights[pc] for pc in fit.pitch_classes())
            out.append((start, end, fit))
        if best is None or covered > best[0]:
            best = (covered, out)
    assert best is not None
    return best[1]


def block_notes(chords: Sequence[tuple[int, int, Chord]]) -> list[tuple[int, int, int]]:
    """Block chords: the root at C3..B3 and the chord tones above it."""
    notes = []
    for start, end, chord in chords:
        bass = 48 + chord.root
        notes += [(start, end, bass)] + [(start, end, 60 + pc) for pc in sorted(chord.pitch_classes())]
    return notes


def piece_parts(piece: Piece) -> np.ndarray | None:
    """The piece's other parts per frame (POP909: BRIDGE; never the PIANO target), or None."""
    return None if piece.parts is None else parts_frames(piece.parts, piece.n_frames)


def model_notes(
    model: AccompanyModel, piece: Piece, style: str, seed: int, *, given: bool = False, parts: bool = False
) -> list[tuple[int, int, int]]:
    """The model's accompaniment of the piece's melody (frames as ticks); with ``given``, on the
    piece's own chords instead of the ones the model would choose; with ``parts``, the chords
    chosen hearing the piece's other parts too."""
    chords = (piece.chords.copy(), piece.chords > 0) if given else None
    other = piece_parts(piece) if parts else None
    plan = plan_frames(model, piece_grid(piece), piece.pitch, piece.onset, style, chords, parts=other)
    session = AccompanySession(model, plan, temperature=1.0, seed=seed)
    return [(e.note.start_tick, e.note.end_tick, e.note.pitch) for e in session if isinstance(e, NoteEvent)]


def _reference_roots(piece: Piece, corpus: str) -> np.ndarray:
    n_beats = piece.n_frames // 4
    if corpus == "pop909":
        cls = piece.chords[: 4 * n_beats : 4]
        return np.where(cls > 0, (cls - 1) // 4, -1)
    acc = [(int(s), int(s + d), int(p)) for s, d, p in piece.acc]
    return estimated_roots(acc, piece.n_frames)


def evaluate(
    models: dict[str, tuple[AccompanyModel, str]],
    corpus: str = "pop909",
    *,
    songs: int | None = None,
    seed: int = 1,
    split: str = "test",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Root agreement per beat on the held-out songs of ``corpus`` (``pop909`` or ``chorales``)
    for each ``name -> (model, style)`` (a name ending in ``"(chords given)"``: the accompaniment
    of the piece's own chords, what following them is worth; in :data:`WITH_PARTS`: the chords
    chosen hearing the other parts too) and the baseline (``split="val"``
    to tune decoding on the validation songs). Returns the figures as a dict (also the agreement
    on the beats where the melody sounds, ``agreement_melody_sounding``: a diagnostic). For POP909
the song's own PIANO track is measured too (:data:`REAL`)."""
    pieces = load_pop909(split, rephase=False) if corpus == "pop909" else load_chorale_pieces(split)
    pieces = pieces[:songs] if songs else pieces
    fixed = ["baseline", "baseline, bars moved"] + ([REAL] if corpus == "pop909" else [])
    totals = {name: 0 for name in [*models, *fixed]}
    sounding_totals = dict.fromkeys(totals, 0)  # the same, on the beats where the melody sounds
    beats_total = sounding_beats = 0
    started = time.perf_counter()
    seconds = {name: 0.0 for name in models}
    for i, piece in enumerate(pieces):
        ref = _reference_roots(piece, corpus)
        known = ref >= 0
        n = len(ref)
        sounding = known & (piece.pitch[: 4 * n] >= 0).reshape(n, 4).any(1)
        beats_total += int(known.sum())
        sounding_beats += int(sounding.sum())
        roots_of = {
            "baseline": estimated_roots(block_notes(baseline_chords(piece)), piece.n_frames),
            "baseline, bars moved": estimated_roots(
                block_notes(baseline_chords(piece, rephase=True)), piece.n_frames
            ),
        }
        if corpus == "pop909":  # the song's own accompaniment, estimated the same way: the ceiling
            real = [(int(s), int(s + d), int(p)) for s, d, p in piece.acc]
            roots_of[REAL] = estimated_roots(real, piece.n_frames)
        for name, (model, style) in models.items():
            t0 = time.perf_counter()
            given = name.endswith("(chords given)")
            parts = name.endswith(WITH_PARTS)
            notes = model_notes(model, piece, style, seed + i, given=given, parts=parts)
            roots_of[name] = estimated_roots(notes, piece.n_frames)
            seconds[name] += time.perf_counter() - t0
        for name, roots in roots_of.items():
            totals[name] += int((roots[known] == ref[known]).sum())
            sounding_totals[name] += int((roots[sounding] == ref[sounding]).sum())
        if progress is not None:
            progress(i + 1, len(pieces))
    return {
        "corpus": corpus,
        "songs": len(pieces),
        "beats": beats_total,
        "agreement": {k: round(v / max(1, beats_total), 4) for k, v in totals.items()},
        "beats_melody_sounding": sounding_beats,
        "agreement_melody_sounding": {
            k: round(v / max(1, sounding_beats), 4) for k, v in sounding_totals.items()
        },
        "seconds_per_song": {k: round(v / max(1, len(pieces)), 3) for k, v in seconds.items()},
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def chord_root_accuracy(model: AccompanyModel, split: str = "val", *, songs: int | None = None) -> dict:
    """How often the chords the model chooses (downbeat check, decoding and all, as
    :func:`musicgen_app.ml.accompany.plan_frames` chooses them) have the annotated root, per beat
    of the POP909 songs of ``split`` (beats annotated "no chord" left out); also on the beats
    where the melody sounds at all, and the predictor's own best chord per beat on the annotated
    bar lines; with a predictor that reads other parts, also decoded hearing the BRIDGE track. No
    accompaniment is written: this judges the chord model alone."""
    from musicgen_app.ml.accompany_net import melody_features

    pieces = load_pop909(split, rephase=False)
    pieces = pieces[:songs] if songs else pieces
    phased = {p.name: p.position for p in load_pop909(split, rephase=True)}
    hits = {"decoded": 0, "decoded, melody sounding": 0, "best per beat, bars from the chords": 0}
    if model.reads_parts:
        hits.update({f"decoded {WITH_PARTS}": 0, f"decoded {WITH_PARTS}, melody sounding": 0})
    beats = sounding_beats = 0
    started = time.perf_counter()
    for piece in pieces:
        n = piece.n_frames // 4
        ref = _reference_roots(piece, "pop909")
        known = ref >= 0
        sounding = known & (piece.pitch[: 4 * n] >= 0).reshape(n, 4).any(1)
        beats += int(known.sum())
        sounding_beats += int(sounding.sum())
        plan = plan_frames(model, piece_grid(piece), piece.pitch, piece.onset, "chords")
        roots = np.where(plan.chords[: 4 * n : 4] > 0, (plan.chords[: 4 * n : 4] - 1) // 4, -1)
        hits["decoded"] += int((roots[known] == ref[known]).sum())
        hits["decoded, melody sounding"] += int((roots[sounding] == ref[sounding]).sum())
        if model.reads_parts:
            plan = plan_frames(
                model, piece_grid(piece), piece.pitch, piece.onset, "chords", parts=piece_parts(piece)
            )
            roots = np.where(plan.chords[: 4 * n : 4] > 0, (plan.chords[: 4 * n : 4] - 1) // 4, -1)
            hits[f"decoded {WITH_PARTS}"] += int((roots[known] == ref[known]).sum())
            hits[f"decoded {WITH_PARTS}, melody sounding"] += int((roots[sounding] == ref[sounding]).sum())
        mel = melody_features(piece.pitch.astype(np.int64), piece.onset, phased[piece.name])
        _, logits = model.chord_logits(mel, piece.pitch)
        best = (logits[: 4 * n : 4, 1:].argmax(1)) // 4
        hits["best per beat, bars from the chords"] += int((best[known] == ref[known]).sum())
    return {
        "split": split,
        "songs": len(pieces),
        "beats": beats,
        "beats_melody_sounding": sounding_beats,
        "root_accuracy": {
            k: round(v / max(1, sounding_beats if "sounding" in k else beats), 4) for k, v in hits.items()
        },
        "ms_per_song": round(1000 * (time.perf_counter() - started) / max(1, len(pieces)), 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m musicgen_app.ml.accompany_eval [--model accompany-pop909] [--split val]
    [--write-card]``: the root accuracy per beat of the chords the model chooses
    (:func:`chord_root_accuracy`); with ``--write-card`` the figures go into the accompaniment
    model's card (``metrics.chords_<split>``)."""
    import argparse
    import json

    import torch

    ap = argparse.ArgumentParser(description="root accuracy of the chords an accompaniment model chooses")
    ap.add_argument("--model", default="accompany-pop909")
    ap.add_argument("--split", default="val", choices=("train", "val", "test"))
    ap.add_argument("--songs", type=int, default=None)
    ap.add_argument("--write-card", action="store_true", help="write the figures into the model's card")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from musicgen_app.ml.accompany import load_accompany_model

    model = load_accompany_model(args.model)
    result = chord_root_accuracy(model, args.split, songs=args.songs)
    print(json.dumps(result))
    if args.write_card and model.path is not None:
        card_path = Path(model.path).with_suffix(".json")
        card = json.loads(card_path.read_text())
        card.setdefault("metrics", {})[f"chords_{args.split}"] = {
            **result,
            "chord_model": model.card.get("chord_model"),
            "measured_by": "python -m musicgen_app.ml.accompany_eval "
            f"--model {args.model} --split {args.split} --write-card",
        }
        tmp = card_path.with_name(card_path.name + ".tmp")
        tmp.write_text(json.dumps(card, indent=1) + "\n")
        tmp.replace(card_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
