"""Training the accompaniment models (:mod:`musicgen_app.ml.accompany_net`).

Two corpora, each split by song as the rest of the app splits them:

* ``pop909``: POP909's MELODY track -> its PIANO track, with the annotated chords
  (``chord_midi.txt``, read per beat by :mod:`musicgen_app.ml.midi_data`) as the chord target; the
  grid is the one the dataset build aligned on ``beat_midi.txt``'s downbeats. Split by a hash of
  each file's content (:func:`musicgen_app.ml.midi_data.file_split`).
* ``chorales``: the soprano of a Bach chorale -> its alto, tenor and bass; the chord target is the
  template estimate (:func:`musicgen_app.core.chords.estimate_chords`) of all four voices per beat.
  Split by the chorale's name (:func:`musicgen_app.ml.families.chorales.split_of`).

Windows of whole bars, transposed at random by -5..+6 semitones. A chord predictor that reads
other parts (``--other-parts``) gets POP909's BRIDGE track (never PIANO, the target), hidden in
half the windows (:data:`PARTS_DROP`) so that it also works on a melody alone. Run as
``python -m musicgen_app.ml.accompany_train --corpus pop909 --minutes 22 --out models/accompany-pop909``.
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from musicgen_app.core.chords import estimate_chords
from musicgen_app.ml.accompany_net import (
    N_CHORDS,
    AccompanyConfig,
    AccompanyNet,
    BeatChordNet,
    BeatChordNetConfig,
    ChordNet,
    ChordNetConfig,
    chord_class,
    key_histogram,
    label_class,
    melody_arrays,
    melody_features,
    parts_frames,
    transpose_classes,
)

logger = logging.getLogger(__name__)

POP909_MELODY_TRACK = 0  # POP909's files hold MELODY, BRIDGE, PIANO in this order
POP909_BRIDGE_TRACK = 1
POP909_PIANO_TRACK = 2
PARTS_DROP = 0.5  # the share of training windows whose other parts are hidden (melody only)
TRANSPOSE = (-5, 6)
CHORD_WEIGHT = 2.0  # the chord loss counts this much more in training
LABEL_LAG_SEC = 0.05  # a beat's chord is the one sounding this long after the beat


@dataclass
class Piece:
    """One song on the 16th grid: melody arrays, chord class per frame, accompaniment notes."""

    name: str
    pitch: np.ndarray  # (T,) int16, sounding melody pitch or -1
    onset: np.ndarray  # (T,) bool
    position: np.ndarray  # (T,) int64, position in the bar
    chords: np.ndarray  # (T,) int64 chord class
    acc: np.ndarray  # (N, 3) int32: start step, length, pitch
    key: str = ""  # the annotated key, when known
    parts: np.ndarray | None = None  # (N, 3) int32 other parts' notes (start, length, pitch); None: none

    @property
    def n_frames(self) -> int:
        """Frames in the piece."""
        return len(self.pitch)


def pop909_beat_chords(midi_path: Path) -> np.ndarray:
    """The annotated chord class of every beat from the first downbeat on, read from the song's
    ``beat_midi.txt`` and ``chord_midi.txt`` (a beat takes the chord sounding just after it).

    The dataset build's own per-beat labels are looked up at the beat's time converted to ticks
    and back, which rounds some beats to just before a chord change: half of the songs then have
    every label one beat late. Reading the beat times themselves avoids that."""
    from musicgen_app.ml.midi_data import _pop909_annotations

    ann = _pop909_annotations(midi_path)
    beats, chords = ann.get("beat_sec", []), ann.get("chords", [])
    if not ann.get("downbeat_sec") or not chords:
        return np.zeros(0, dtype=np.int64)
    first = beats.index(ann["downbeat_sec"][0])
    starts = [c[0] for c in chords]
    out = []
    for sec in beats[first:]:
        j = bisect.bisect_right(starts, sec + LABEL_LAG_SEC) - 1
        out.append(label_class(chords[j][2]) if j >= 0 and sec + LABEL_LAG_SEC < chords[j][1] else 0)
    return np.array(out, dtype=np.int64)


def chord_phase(chords: np.ndarray) -> int:
    """The beat (0, 4, 8 or 12 frames) of the 4/4 bar where most chord changes fall: a song whose
    annotated downbeats are a beat or two off gets its bar positions moved onto its harmony."""
    changes = np.nonzero(chords[1:] != chords[:-1])[0] + 1
    counts = np.bincount(changes % 16, minlength=16)[::4]
    return 4 * int(np.argmax(counts)) if len(changes) else 0


def load_pop909(split: str | None = None, *, rephase: bool = True) -> list[Piece]:
    """POP909's songs from the built ``pop909`` dataset (``musicgen dataset build --midi
    ../shared/data/pop909 --name pop909``), optionally one split (train, val, test). With
    ``rephase`` the bar positions follow the chord changes (:func:`chord_phase`; for training),
    else the annotated downbeats."""
    from musicgen_app.ml.midi_data import dataset_dir

    folder = dataset_dir("pop909")
    ds = json.loads((folder / "melody.json").read_text())
    meta = ds["tunes"]
    folder_text = ds.get("stats", {}).get("folder", "")
    root: Path | None = Path(folder_text) if folder_text and Path(folder_text).is_dir() else None
    z = np.load(folder / "notes.npz")
    notes_all, offsets = z["notes"], z["note_offsets"]
    out = []
    for i, m in enumerate(meta):
        if split is not None and m["split"] != split:
            continue
        rows = notes_all[offsets[i] : offsets[i + 1]]  # (s, pitch, length, velocity, track)
        mel = rows[rows[:, 4] == POP909_MELODY_TRACK]
        acc = rows[rows[:, 4] == POP909_PIANO_TRACK]
        bridge = rows[rows[:, 4] == POP909_BRIDGE_TRACK]  # never the PIANO track: it is the target
        if len(mel) < 8 or len(acc) < 8:
            continue
        end = int(max((rows[:, 0] + rows[:, 2]).max(), m["n_steps"]))
        n_frames = int(math.ceil(end / 16) * 16)
        pitch, onset = melody_arrays(mel[:, [0, 2, 1]], n_frames)
        beat_classes = pop909_beat_chords(root / m["id"]) if root else np.zeros(0, dtype=np.int64)
        chords = np.zeros(n_frames, dtype=np.int64)
        n = min(n_frames, 4 * len(beat_classes))
        chords[:n] = np.repeat(beat_classes, 4)[:n]
        position = (np.arange(n_frames) - (chord_phase(chords) if rephase else 0)) % 16
        out.append(
            Piece(
                m["id"],
                pitch,
                onset,
                position,
                chords,
                acc[:, [0, 2, 1]].astype(np.int32),
                m.get("file_key", ""),
                bridge[:, [0, 2, 1]].astype(np.int32) if len(bridge) else None,
            )
        )
    return out


def load_chorale_pieces(split: str | None = None) -> list[Piece]:
    """The Bach chorales: soprano -> alto, tenor, bass, with estimated chords per beat."""
    from musicgen_app.ml.families.chorales import load_chorales, split_of

    out = []
    for ch in load_chorales():
        if split is not None and split_of(ch.name) != split.replace("val", "valid"):
            continue
        rows = np.array(ch.notes, dtype=np.int64)  # start, length, pitch, voice
        if not len(rows):
            continue
        n_frames = int(math.ceil(ch.length_steps / 4) * 4)
        mel = rows[rows[:, 3] == 0][:, :3]
        acc = rows[rows[:, 3] > 0][:, :3]
        if len(mel) < 4 or len(acc) < 4:
            continue
        pitch, onset = melody_arrays(mel, n_frames)
        beats = [(b, b + 4) for b in range(0, n_frames, 4)]
        spans = estimate_chords(((int(s), int(s + d), int(p)) for s, d, p in rows[:, :3]), beats)
        chords = np.zeros(n_frames, dtype=np.int64)
        for span in spans:
            chords[span.start_tick : span.end_tick] = chord_class(span.chord)
        position = (np.arange(n_frames) - ch.bar_offset) % ch.bar_steps
        key = f"{ch.key_tonic_pc}:{ch.key_mode}"
        out.append(Piece(ch.name, pitch, onset, position, chords, acc.astype(np.int32), key))
    return out


def roll(acc: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``(on, sound)`` (T, 128) uint8 rolls of notes given as rows (start, length, pitch)."""
    on = np.zeros((n_frames, 128), dtype=np.uint8)
    sound = np.zeros((n_frames, 128), dtype=np.uint8)
    for s, length, p in acc:
        s, length, p = int(s), max(1, int(length)), int(p)
        if 0 <= s < n_frames and 0 <= p < 128:
            on[s, p] = 1
            sound[s : s + length, p] = 1
    return on, sound


class Windows:
    """Random training windows of whole bars, transposed."""

    def __init__(
        self,
        pieces: list[Piece],
        cfg: AccompanyConfig,
        window: int,
        rng: np.random.Generator,
        *,
        parts_drop: float = PARTS_DROP,
    ) -> None:
        self.pieces = [p for p in pieces if p.n_frames >= 32]
        self.cfg = cfg
        self.window = window
        self.rng = rng
        self.parts_drop = parts_drop
        self.rolls = [roll(p.acc, p.n_frames) for p in self.pieces]
        self.parts = [
            parts_frames(p.parts if p.parts is not None else np.zeros((0, 3)), p.n_frames)
            for p in self.pieces
        ]
        weights = np.array([p.n_frames for p in self.pieces], dtype=np.float64)
        self.weights = weights / weights.sum()

    def one(self, i: int, start: int, shift: int) -> tuple[np.ndarray, ...]:
        """One window of piece ``i`` from frame ``start``, transposed by ``shift``."""
        p, (on, sound) = self.pieces[i], self.rolls[i]
        w = self.window
        sl = slice(start, start + w)
        pitch = p.pitch[sl].astype(np.int64)
        pitch = np.where(pitch >= 0, np.clip(pitch + shift, 0, 127), -1)
        mel = melody_features(pitch, p.onset[sl], p.position[sl])
        chords = transpose_classes(p.chords[sl], shift)
        lo = self.cfg.low - shift
        k_on = np.zeros((len(pitch), self.cfg.keys), dtype=np.float32)
        k_sound = np.zeros_like(k_on)
        a, b = max(0, lo), min(128, lo + self.cfg.keys)
        k_on[:, a - lo : b - lo] = on[sl, a:b]
        k_sound[:, a - lo : b - lo] = sound[sl, a:b]
        pad = w - len(pitch)
        if pad > 0:
            mel = np.pad(mel, ((0, pad), (0, 0)))
            chords = np.pad(chords, (0, pad))
            k_on = np.pad(k_on, ((0, pad), (0, 0)))
            k_sound = np.pad(k_sound, ((0, pad), (0, 0)))
        mask = np.zeros(w, dtype=np.float32)
        mask[: w - max(0, pad)] = 1.0
        full = p.pitch.astype(np.int64)
        hist = key_histogram(np.where(full >= 0, full + shift, -1))
        parts = self.parts[i][sl]
        if self.rng.random() < self.parts_drop:
            parts = np.zeros_like(parts)
        parts = np.concatenate([np.roll(parts[:, :12], shift, axis=1), parts[:, 12:]], axis=1)
        if pad > 0:
            parts = np.pad(parts, ((0, pad), (0, 0)))
        return mel, chords, k_on, k_sound, mask, hist, parts

    def batch(self, size: int) -> tuple[torch.Tensor, ...]:
        """A random batch: melody (B,T,M), chords (B,T), onsets, sounding (B,T,K), mask (B,T), the
        songs' pitch-class histograms (B,12), the other parts (B,T,PARTS_DIM; hidden in a share
        ``parts_drop`` of the windows)."""
        items = []
        for i in self.rng.choice(len(self.pieces), size=size, p=self.weights):
            n = self.pieces[i].n_frames
            start = 4 * int(self.rng.integers(0, max(1, (n - self.window // 2) // 4)))
            items.append(self.one(int(i), start, int(self.rng.integers(TRANSPOSE[0], TRANSPOSE[1] + 1))))
        return tuple(torch.from_numpy(np.stack(col)) for col in zip(*items, strict=True))


def losses(net: AccompanyNet, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    """Chord cross-entropy, onset and sustain binary cross-entropies (per frame), and the chord
    root accuracy on annotated frames."""
    mel, chords, on, sound, mask = batch[:5]
    chord_logits, on_logits, sus_logits = net(mel, chords, on, sound)
    m = mask
    ce = F.cross_entropy(chord_logits.reshape(-1, N_CHORDS), chords.reshape(-1), reduction="none")
    chord_loss = (ce * m.reshape(-1)).sum() / m.sum()
    on_bce = F.binary_cross_entropy_with_logits(on_logits, on, reduction="none").sum(-1)
    onset_loss = (on_bce * m).sum() / m.sum()
    prev_sound = torch.cat([torch.zeros_like(sound[:, :1]), sound[:, :-1]], dim=1)
    held = sound * (1 - on)  # sounding on, not restruck
    sus_bce = F.binary_cross_entropy_with_logits(sus_logits, held, reduction="none") * prev_sound
    sustain_loss = (sus_bce.sum(-1) * m).sum() / m.sum()
    with torch.no_grad():
        pred = chord_logits.argmax(-1)
        known = (chords > 0) & (m > 0)
        root_ok = ((pred - 1).clamp(min=0) // 4 == (chords - 1).clamp(min=0) // 4) & (pred > 0)
        acc = (root_ok & known).sum().float() / known.sum().clamp(min=1)
    return {"chord": chord_loss, "onset": onset_loss, "sustain": sustain_loss, "root_acc": acc}


def train(
    corpus: str,
    out: Path,
    *,
    minutes: float,
    cfg: AccompanyConfig,
    window: int,
    batch_size: int,
    lr: float,
    seed: int,
    max_steps: int = 0,
    pieces: tuple[list[Piece], list[Piece], int] | None = None,
) -> dict:
    """Train on ``corpus`` for ``minutes`` of wall time (or ``max_steps``) through the one training
    loop (:func:`musicgen_app.ml.training.train`: validation every 100 steps, the best weights kept
    and written after each, the curve PNG beside them), and save. ``pieces`` (train, validation,
    the test count) instead of the corpus's splits: tests, smoke runs."""
    from musicgen_app.ml.training import TrainConfig
    from musicgen_app.ml.training import train as train_loop

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if pieces is None:
        load = load_pop909 if corpus == "pop909" else load_chorale_pieces
        pieces = (load("train"), load("val"), len(load("test")))
    train_p, val_p, test_n = pieces
    logger.info("%s: %d train, %d val pieces", corpus, len(train_p), len(val_p))
    tr = Windows(train_p, cfg, window, rng)
    va = Windows(val_p, cfg, window, np.random.default_rng(seed + 1))
    val_batches = [va.batch(batch_size) for _ in range(6)]
    net = AccompanyNet(cfg)

    def loss(model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, int]:
        parts = losses(model, batch)  # type: ignore[arg-type]
        frames = float(batch[4].sum())
        total = CHORD_WEIGHT * parts["chord"] + parts["onset"] + parts["sustain"]
        return total * frames, max(1, round(frames))

    def validate(model: torch.nn.Module) -> tuple[float, float, dict[str, float]]:
        model.eval()
        with torch.no_grad():
            vals = [losses(model, b) for b in val_batches]  # type: ignore[arg-type]
        v = {k: float(np.mean([float(x[k]) for x in vals])) for k in vals[0]}
        figures = {"val_chord_nll": v["chord"], "val_onset_bce": v["onset"], "val_sustain_bce": v["sustain"],
                   "val_root_accuracy": v["root_acc"]}  # fmt: skip
        return v["chord"] + v["onset"] + v["sustain"], 1.0, figures

    started = time.monotonic()
    loop = TrainConfig(minutes=minutes, lr=lr, clip=1.0, eval_every=min(100, max_steps or 100),
                       patience=10**9, seed=seed, max_steps=max_steps, threads=torch.get_num_threads(),
                       schedule="constant", curve_png=str(out.parent / f"{out.name}-curve.png"),
                       unit="loss per frame")  # fmt: skip
    res = train_loop(net, loss, lambda _g: tr.batch(batch_size), validate, loop)
    seconds = time.monotonic() - started
    best_row = next((r for r in res.history if r["epoch"] == res.best_epoch), res.history[-1])
    best_metrics = {
        "valid_loss": best_row["val_nll"],
        "valid_chord_nll": best_row["val_chord_nll"],
        "valid_onset_bce": best_row["val_onset_bce"],
        "valid_sustain_bce": best_row["val_sustain_bce"],
        "valid_frame_root_accuracy": best_row["val_root_accuracy"],
        "step": best_row["step"],
    }
    step, history = res.steps, res.history
    n_params = sum(p.numel() for p in net.parameters())
    data: dict[str, Any] = (
        {
            "dataset": "POP909 (Wang et al., ISMIR 2020; MIT licence): MELODY -> PIANO, annotated chords",
            "grid": "16th notes from beat_midi.txt's first downbeat (the dataset build's grid)",
            "split": "by a hash of each file's content (85/5/10, musicgen_app.ml.midi_data)",
        }
        if corpus == "pop909"
        else {
            "dataset": "Bach chorales (music21 corpus): soprano -> alto, tenor, bass",
            "grid": "16th notes, bar lines from the pickup",
            "split": "by the sha1 of the chorale's name (80/10/10, musicgen_app.ml.families.chorales)",
            "chords": "template estimate of the four voices per beat (core.chords.estimate_chords)",
        }
    )
    data.update(
        pieces={"train": len(train_p), "valid": len(val_p), "test": test_n},
        augmentation=f"transposition {TRANSPOSE[0]}..+{TRANSPOSE[1]}",
    )
    from musicgen_app.ml.checkpoint import save_checkpoint

    card = {
        "name": out.name,
        "family": "accompany",
        "task": "accompany",
        "architecture": "accompany-gru",
        "seed_paper": "",
        "title": "Accompaniment under a melody"
        + (" (POP909 piano)" if corpus == "pop909" else " (chorale ATB)"),
        "description": (
            "Dilated 1-D convolutions read the melody on a 16th grid (4 bars each way) and predict a chord "
            "per frame (no chord, or 12 roots x maj, min, 7, dim); a forward GRU writes the "
            "accompaniment frame by frame, per key an onset and a keep-sounding probability, given the "
            "melody, the chord (predicted or given) and the previous frame."
        ),
        "corpus": corpus,
        "styles": ["piano", "chords", "bass"] if corpus == "pop909" else ["satb"],
        "config": cfg.to_card(),
        "data": data,
        "training": {
            "steps": step,
            "seconds": round(seconds, 1),
            "window_frames": window,
            "batch_size": batch_size,
            "learning_rate": lr,
            "seed": seed,
            "threads": torch.get_num_threads(),
            "history": history,
        },
        "metrics": best_metrics,
        "parameters": n_params,
    }
    save_checkpoint(net.state_dict(), card, out)
    return card


def chord_losses(
    net: ChordNet | BeatChordNet, batch: tuple[torch.Tensor, ...], root_weight: float = 0.0
) -> dict[str, torch.Tensor]:
    """The chord predictor's cross-entropy (plus ``root_weight`` times the cross-entropy of the
    root alone, on annotated frames) and root accuracy on annotated frames."""
    mel, chords, _on, _sound, mask, hist, parts = batch
    logits = net(mel, hist, parts)
    ce = F.cross_entropy(logits.reshape(-1, N_CHORDS), chords.reshape(-1), reduction="none")
    loss = (ce * mask.reshape(-1)).sum() / mask.sum()
    if root_weight:
        logp = torch.log_softmax(logits, -1)[..., 1:]  # (B, T, 48)
        root_logp = torch.logsumexp(logp.reshape(*logp.shape[:2], 12, -1), -1)  # (B, T, 12)
        root = ((chords - 1).clamp(min=0) // 4)[..., None]
        root_nll = -root_logp.gather(-1, root)[..., 0]  # (B, T)
        known = (chords > 0).float() * mask
        loss = loss + root_weight * (root_nll * known).sum() / known.sum().clamp(min=1)
    with torch.no_grad():
        pred = logits.argmax(-1)
        known = (chords > 0) & (mask > 0)
        root_ok = ((pred - 1).clamp(min=0) // 4 == (chords - 1).clamp(min=0) // 4) & (pred > 0)
        acc = (root_ok & known).sum().float() / known.sum().clamp(min=1)
    return {"chord": loss, "root_acc": acc}


def train_chords(out: Path, *, minutes: float, cfg: ChordNetConfig | BeatChordNetConfig, window: int,
                 batch_size: int, lr: float, seed: int, resume: bool = False, root_weight: float = 0.0,
                 max_steps: int = 0,
                 pieces: tuple[list[Piece], list[Piece]] | None = None) -> dict:  # fmt: skip
    """Train the chord predictor alone on POP909 for ``minutes`` (or ``max_steps``) through the one
    training loop (cosine decay, gradient clipping), keeping the best on validation; ``resume`` goes
    on from the checkpoint at ``out`` (its steps and history continued). ``pieces`` (train,
    validation) instead of POP909's; ``root_weight`` adds a root-only loss."""
    from musicgen_app.ml.checkpoint import save_checkpoint
    from musicgen_app.ml.training import TrainConfig, history_rows
    from musicgen_app.ml.training import train as train_loop

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_p, val_p = pieces or (load_pop909("train"), load_pop909("val"))
    roll_cfg = AccompanyConfig(keys=1)  # the windows' rolls are not used
    tr = Windows(train_p, roll_cfg, window, rng)
    va = Windows(val_p, roll_cfg, window, np.random.default_rng(seed + 1))
    val_batches = [va.batch(batch_size) for _ in range(8)]
    net: ChordNet | BeatChordNet = ChordNet(cfg) if isinstance(cfg, ChordNetConfig) else BeatChordNet(cfg)
    before: dict = {}
    if resume and out.with_suffix(".safetensors").exists():  # go on from the checkpoint at ``out``
        from musicgen_app.ml.accompany import load_chord_net

        net.load_state_dict(load_chord_net(out.with_suffix(".safetensors")).state_dict())
        before = json.loads(out.with_suffix(".json").read_text()).get("training", {})
    offset = int(before.get("steps", 0))

    def loss(model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, int]:
        frames = float(batch[4].sum())
        return chord_losses(model, batch, root_weight)["chord"] * frames, max(1, round(frames))  # type: ignore[arg-type]

    def validate(model: torch.nn.Module) -> tuple[float, float, dict[str, float]]:
        model.eval()
        with torch.no_grad():
            vals = [chord_losses(model, b) for b in val_batches]  # type: ignore[arg-type]
        acc = float(np.mean([float(v["root_acc"]) for v in vals]))
        return float(np.mean([float(v["chord"]) for v in vals])), 1.0, {"val_root_accuracy": acc}

    started = time.monotonic()
    loop = TrainConfig(minutes=minutes, lr=lr, clip=1.0, eval_every=min(100, max_steps or 100),
                       patience=10**9, seed=seed, max_steps=max_steps, threads=torch.get_num_threads(),
                       schedule="cosine", curve_png=str(out.parent / f"{out.name}-curve.png"),
                       unit="nats per frame")  # fmt: skip
    previous = {"history": history_rows(before.get("history", []))} if before else None
    res = train_loop(net, loss, lambda _g: tr.batch(batch_size), validate, loop, previous=previous)
    best_row = next((r for r in res.history if r["epoch"] == res.best_epoch), res.history[-1])
    metrics = {"valid_chord_nll": best_row["val_nll"], "step": best_row["step"],
               "valid_frame_root_accuracy": best_row.get("val_root_accuracy")}  # fmt: skip
    step, history = res.steps, res.history
    beats = isinstance(net, BeatChordNet)
    heads = getattr(cfg, "heads", 0)
    reads_parts = bool(getattr(cfg, "other_parts", False))
    card = {
        "name": out.name,
        "family": "accompany-chords",
        "task": "accompany-chords",
        "architecture": "accompany-chords-bigru" if beats else "accompany-chords",
        "seed_paper": "",
        "title": "Chords under a melody (POP909)",
        "description": (
            "The melody pooled per beat (duration per pitch class, the note on the beat, the notes "
            "struck, rests, height, the beat in the bar) and the song's pitch-class histogram, read by a "
            "bidirectional GRU over the whole song"
            + (
                " and a self-attention layer over its beats (repeated sections share their chords)"
                if heads
                else ""
            )
            + (
                ", with the other parts' pitch classes pooled the same way (POP909's BRIDGE in training, "
                "hidden in half the windows so that a melody alone works too)"
                if reads_parts
                else ""
            )
            + ", predict a chord per beat"
            if beats
            else "Dilated 1-D convolutions over the melody on a 16th grid (4 bars each way) and the song's "
            "pitch-class histogram predict a chord per frame"
        )
        + " (no chord, or 12 roots x maj, min, 7, dim); the accompaniment models use it to choose their "
        "chords.",
        "config": cfg.to_card(),
        "data": {
            "dataset": "POP909 (Wang et al., ISMIR 2020; MIT licence): MELODY"
            + (" and BRIDGE (other parts; never PIANO)" if reads_parts else "")
            + ", annotated chords",
            "split": "by a hash of each file's content (85/5/10, musicgen_app.ml.midi_data)",
            "pieces": {"train": len(train_p), "valid": len(val_p)},
            "augmentation": f"transposition {TRANSPOSE[0]}..+{TRANSPOSE[1]}",
        },
        "training": {
            "steps": offset + step,
            "seconds": round(float(before.get("seconds", 0.0)) + time.monotonic() - started, 1),
            "runs": [*before.get("runs", [before.get("learning_rate")] if before else []), lr],
            "window_frames": window,
            "batch_size": batch_size,
            "learning_rate": lr,
            "schedule": "cosine decay (the one training loop)",
            "root_loss_weight": root_weight,
            "seed": seed,
            "threads": torch.get_num_threads(),
            "history": history,
        },
        "metrics": metrics,
        "parameters": sum(p.numel() for p in net.parameters()),
    }
    save_checkpoint(net.state_dict(), card, out)
    return card


def attach_chord_model(out: Path, chord_model: str) -> None:
    """Name ``chord_model`` (chord predictors in the same folder, comma-separated) in the card of
    ``out``: the accompaniment then takes its chords from them, their log-probabilities averaged
    (``--minutes 0 --chord-model NAME[,NAME]``)."""
    path = out.with_suffix(".json")
    card = json.loads(path.read_text())
    names = [n.strip() for n in chord_model.split(",") if n.strip()]
    card["chord_model"] = names[0] if len(names) == 1 else names
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=1) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", choices=("pop909", "chorales"), required=True)
    ap.add_argument("--chords-only", action="store_true", help="train the chord predictor alone (pop909)")
    ap.add_argument("--resume", action="store_true", help="with --chords-only: go on from --out's checkpoint")
    ap.add_argument("--arch", choices=("conv", "bigru"), default="bigru", help="with --chords-only")
    ap.add_argument("--hidden", type=int, default=128, help="with --arch bigru")
    ap.add_argument("--layers", type=int, default=2, help="with --arch bigru")
    ap.add_argument("--dropout", type=float, default=0.2, help="with --arch bigru")
    ap.add_argument(
        "--heads", type=int, default=0, help="with --arch bigru: self-attention heads over the beats"
    )
    ap.add_argument("--key-jitter", type=float, default=0.0, help="with --arch bigru: share of random keys")
    ap.add_argument("--other-parts", action="store_true", help="with --arch bigru: read the other parts too")
    ap.add_argument("--root-weight", type=float, default=0.0, help="with --chords-only: extra root loss")
    ap.add_argument(
        "--chord-model", default=None, help="with --minutes 0: name these chord predictors (A,B) in the card"
    )
    ap.add_argument("--out", type=Path, required=True, help="checkpoint path without suffix (models/NAME)")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=909)
    ap.add_argument("--low", type=int, default=21)
    ap.add_argument("--keys", type=int, default=88)
    ap.add_argument("--enc", type=int, default=128)
    ap.add_argument("--dec", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.chords_only:
        card = train_chords(
            args.out,
            minutes=args.minutes,
            cfg=ChordNetConfig()
            if args.arch == "conv"
            else BeatChordNetConfig(
                hidden=args.hidden,
                layers=args.layers,
                dropout=args.dropout,
                heads=args.heads,
                key_jitter=args.key_jitter,
                other_parts=args.other_parts,
            ),
            window=args.window,
            batch_size=args.batch,
            lr=args.lr,
            seed=args.seed,
            resume=args.resume,
            root_weight=args.root_weight,
        )
        print(json.dumps(card["metrics"]))
        return 0
    if args.chord_model and (args.out.with_suffix(".json")).exists() and args.minutes <= 0:
        attach_chord_model(args.out, args.chord_model)
        return 0
    cfg = AccompanyConfig(low=args.low, keys=args.keys, enc_hidden=args.enc, dec_hidden=args.dec)
    card = train(
        args.corpus, args.out, minutes=args.minutes, cfg=cfg, window=args.window, batch_size=args.batch,
        lr=args.lr, seed=args.seed,
    )  # fmt: skip
    print(json.dumps(card["metrics"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
