"""The accompaniment network: melody frames in, chords and an accompaniment piano roll out.

Everything lives on a 16th-note grid (one frame = one 16th):

* the **melody features** of frame ``t`` (:func:`melody_features`): the sounding pitch class
  (12), an onset flag, the pitch's height, a rest flag and the position in the bar (16);
* a **chord encoder**, a stack of dilated 1-D convolutions looking 4 bars both ways over the
  melody features, predicts the chord of every frame among :data:`N_CHORDS` classes (no chord,
  or 12 roots x major, minor, dominant seventh, diminished: :func:`chord_class`);
* an **accompaniment decoder**, a GRU running forward over frames, reads the encoder's state, the
  chord of the frame (the predicted one, or the one the musician gave) and the previous frame's
  keys (onsets and sounding keys) and gives, per key of its range, the probability of an onset and,
  for a key still sounding, the probability that it goes on sounding.

Trained by :mod:`musicgen_app.ml.accompany_train`; used by :mod:`musicgen_app.ml.accompany`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from musicgen_app.core.chords import Chord, parse_chord
from musicgen_app.errors import MusicgenError

logger = logging.getLogger(__name__)

DILATIONS = (1, 2, 4, 8, 16, 32)  # the chord encoder sees 65 frames (4 bars) each way
POSITIONS = 16  # bar positions one-hot (a 4/4 bar of 16ths; shorter bars use the first ones)
MELODY_DIM = 12 + 1 + 1 + 1 + POSITIONS
CHORD_QUALITIES = ("", "m", "7", "dim")  # the classes' qualities (lead-sheet suffixes)
N_CHORDS = 1 + 12 * len(CHORD_QUALITIES)  # class 0: no chord
_QUALITY_CLASS = {
    "": 0, "maj7": 0, "6": 0, "sus2": 0, "sus4": 0, "aug": 0, "add9": 0, "maj9": 0,
    "m": 1, "m7": 1, "m6": 1, "mmaj7": 1, "m9": 1,
    "7": 2, "7sus4": 2, "9": 2,
    "dim": 3, "m7b5": 3, "dim7": 3,
}  # fmt: skip


def chord_class(chord: Chord | None) -> int:
    """The class of ``chord`` (0 for no chord): ``1 + 4 * root + quality``."""
    if chord is None:
        return 0
    return 1 + 4 * (chord.root % 12) + _QUALITY_CLASS.get(chord.quality, 0)


def label_class(label: str) -> int:
    """The class of an annotation label (Harte, ``B:maj``; a label we cannot read counts as none)."""
    try:
        return chord_class(parse_chord(label))
    except MusicgenError:
        return 0


def class_chord(cls: int) -> Chord | None:
    """The chord of a class (None for class 0)."""
    if cls <= 0:
        return None
    root, q = divmod(cls - 1, len(CHORD_QUALITIES))
    return Chord(root, CHORD_QUALITIES[q])


def transpose_classes(classes: np.ndarray, semitones: int) -> np.ndarray:
    """Chord classes ``semitones`` higher (class 0 stays)."""
    c = classes.astype(np.int64)
    root, q = np.divmod(np.maximum(c - 1, 0), len(CHORD_QUALITIES))
    moved = 1 + ((root + semitones) % 12) * len(CHORD_QUALITIES) + q
    return np.where(c > 0, moved, 0)


def melody_arrays(notes: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``(pitch, onset)`` per frame of a melody given as rows (start, length, pitch): the highest
    sounding note, each note cut at the next onset."""
    pitch = np.full(n_frames, -1, dtype=np.int16)
    onset = np.zeros(n_frames, dtype=bool)
    by_start: dict[int, tuple[int, int]] = {}
    for s, length, p in notes:
        s, length, p = int(s), int(length), int(p)
        if 0 <= s < n_frames and (s not in by_start or p > by_start[s][1]):
            by_start[s] = (length, p)
    starts = sorted(by_start)
    for i, s in enumerate(starts):
        length, p = by_start[s]
        end = min(s + max(1, length), starts[i + 1] if i + 1 < len(starts) else n_frames, n_frames)
        pitch[s:end] = p
        onset[s] = True
    return pitch, onset


def melody_features(pitch: np.ndarray, onset: np.ndarray, position: np.ndarray) -> np.ndarray:
    """``(T, MELODY_DIM)`` float32 features from per-frame melody arrays.

    ``pitch[t]``: the sounding melody pitch (-1: rest); ``onset[t]``: a note starts; ``position[t]``:
    the frame's position in its bar (0 = downbeat)."""
    t_len = len(pitch)
    out = np.zeros((t_len, MELODY_DIM), dtype=np.float32)
    sounding = pitch >= 0
    idx = np.nonzero(sounding)[0]
    out[idx, pitch[idx] % 12] = 1.0
    out[:, 12] = onset.astype(np.float32) * sounding
    out[idx, 13] = (pitch[idx] - 64) / 12.0
    out[:, 14] = (~sounding).astype(np.float32)
    out[np.arange(t_len), 15 + np.clip(position, 0, POSITIONS - 1)] = 1.0
    return out


@dataclass
class AccompanyConfig:
    """The network's shape (saved in the card's ``config``)."""

    low: int = 21  # lowest key of the accompaniment's range (MIDI)
    keys: int = 88  # keys in the range
    enc_hidden: int = 128
    dec_hidden: int = 256
    chord_dim: int = 32
    dropout: float = 0.1

    def to_card(self) -> dict:
        """The card's ``config``."""
        return asdict(self)

    @classmethod
    def from_card(cls, config: dict) -> AccompanyConfig:
        """The config a card's ``config`` describes (unknown keys ignored)."""
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in config.items() if k in fields})


class AccompanyNet(nn.Module):
    """Chord encoder + accompaniment decoder (see the module docstring)."""

    def __init__(self, cfg: AccompanyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k = cfg.keys
        self.enc_in = nn.Conv1d(MELODY_DIM, 2 * cfg.enc_hidden, 5, padding=2)
        self.enc = nn.ModuleList(
            nn.Conv1d(2 * cfg.enc_hidden, 2 * cfg.enc_hidden, 3, padding=d, dilation=d) for d in DILATIONS
        )
        self.chord_head = nn.Linear(2 * cfg.enc_hidden, N_CHORDS)
        self.chord_emb = nn.Embedding(N_CHORDS, cfg.chord_dim)
        self.dec = nn.GRU(
            2 * cfg.enc_hidden + cfg.chord_dim + MELODY_DIM + 2 * k, cfg.dec_hidden, batch_first=True
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.dec_hidden, 2 * k)

    def encode(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mel`` (B, T, MELODY_DIM) -> encoder states (B, T, 2H) and chord logits (B, T, N_CHORDS)."""
        x = self.enc_in(mel.transpose(1, 2))  # (B, 2H, T)
        for conv in self.enc:
            x = x + conv(torch.relu(x))  # residual, dilated: sees further both ways each layer
        h = x.transpose(1, 2)  # (B, T, 2H)
        return h, self.chord_head(self.drop(torch.relu(h)))

    def decoder_input(
        self,
        h: torch.Tensor,
        mel: torch.Tensor,
        chords: torch.Tensor,
        prev_on: torch.Tensor,
        prev_sound: torch.Tensor,
    ) -> torch.Tensor:
        """The decoder's input (B, T, D) from encoder states, melody, chord classes (B, T) and the
        previous frames' onsets and sounding keys (B, T, K)."""
        return torch.cat([h, self.chord_emb(chords), mel, prev_on, prev_sound], dim=-1)

    def forward(
        self, mel: torch.Tensor, chords: torch.Tensor, on: torch.Tensor, sound: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced pass: chord logits (B, T, C), onset and sustain logits (B, T, K) each."""
        h, chord_logits = self.encode(mel)
        prev_on = torch.cat([torch.zeros_like(on[:, :1]), on[:, :-1]], dim=1)
        prev_sound = torch.cat([torch.zeros_like(sound[:, :1]), sound[:, :-1]], dim=1)
        x = self.decoder_input(h, mel, chords, prev_on, prev_sound)
        y, _ = self.dec(x)  # (B, T, Hd)
        logits = self.out(self.drop(y))  # (B, T, 2K)
        k = self.cfg.keys
        return chord_logits, logits[..., :k], logits[..., k:]

    def stepper(self, hidden: torch.Tensor, chords: torch.Tensor, mel: torch.Tensor) -> DecoderStepper:
        """A frame-by-frame decoder over one melody: ``hidden`` (T, 2H) encoder states, ``chords``
        (T,) classes, ``mel`` (T, MELODY_DIM) features."""
        return DecoderStepper(self, hidden, chords, mel)


def key_histogram(pitch: np.ndarray) -> np.ndarray:
    """(12,) float32: the share of the melody's sounding frames on each pitch class, the largest
    scaled to 1 (what a whole song says about its key)."""
    sounding = pitch[pitch >= 0]
    hist = np.bincount(sounding % 12, minlength=12).astype(np.float32)
    return hist / max(1.0, float(hist.max()))


@dataclass
class ChordNetConfig:
    """The chord predictor's shape (saved in the card's ``config``)."""

    channels: int = 96
    dropout: float = 0.1

    def to_card(self) -> dict:
        """The card's ``config``."""
        return asdict(self)

    @classmethod
    def from_card(cls, config: dict) -> ChordNetConfig:
        """The config a card's ``config`` describes (unknown keys ignored)."""
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in config.items() if k in fields})


class ChordNet(nn.Module):
    """A chord predictor alone: dilated convolutions over the melody features and the song's
    pitch-class histogram (:func:`key_histogram`) -> chord logits per frame. Trained with all of
    its time on the chords, it can replace the chord head of an :class:`AccompanyNet` (whose
    decoder takes any chord)."""

    def __init__(self, cfg: ChordNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.enc_in = nn.Conv1d(MELODY_DIM + 12, c, 5, padding=2)
        self.enc = nn.ModuleList(nn.Conv1d(c, c, 3, padding=d, dilation=d) for d in DILATIONS)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(c, N_CHORDS)

    def forward(
        self, mel: torch.Tensor, hist: torch.Tensor, parts: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``mel`` (B, T, MELODY_DIM), ``hist`` (B, 12) -> chord logits (B, T, N_CHORDS) (``parts``,
        the other parts, are not read)."""
        x = torch.cat([mel, hist[:, None, :].expand(-1, mel.shape[1], -1)], dim=-1)
        x = self.enc_in(x.transpose(1, 2))  # (B, C, T)
        for conv in self.enc:
            x = x + conv(torch.relu(x))
        return self.head(self.drop(torch.relu(x.transpose(1, 2))))


class DecoderStepper:
    """The decoder GRU run one frame at a time in numpy (what generation does).

    The input projection of everything known beforehand (encoder states, chords, melody) is
    computed for all frames at once; per frame only the previous frame's keys (a few columns of
    the input weights: the keys are sparse) and the recurrent product remain."""

    def __init__(
        self, net: AccompanyNet, hidden: torch.Tensor, chords: torch.Tensor, mel: torch.Tensor
    ) -> None:
        k = net.cfg.keys
        with torch.no_grad():
            static = torch.cat([hidden, net.chord_emb(chords), mel], dim=-1)  # (T, S)
            w_ih = net.dec.get_parameter("weight_ih_l0")  # (3Hd, S + 2K)
            b_ih = net.dec.get_parameter("bias_ih_l0")
            w_hh = net.dec.get_parameter("weight_hh_l0")
            b_hh = net.dec.get_parameter("bias_hh_l0")
            n_static = static.shape[1]
            self.gi_static = (static @ w_ih[:, :n_static].T + b_ih).numpy()  # (T, 3Hd)
            self.w_on = w_ih[:, n_static : n_static + k].T.numpy().copy()  # (K, 3Hd)
            self.w_sound = w_ih[:, n_static + k :].T.numpy().copy()  # (K, 3Hd)
            self.w_hh = w_hh.numpy().copy()  # (3Hd, Hd)
            self.b_hh = b_hh.numpy().copy()
            self.w_out = net.out.weight.numpy().copy()  # (2K, Hd)
            self.b_out = net.out.bias.numpy().copy()
        self.keys = k
        self.h = np.zeros(self.w_hh.shape[1], dtype=np.float32)

    def step(self, t: int, prev_on: np.ndarray, prev_sound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``t`` given the key indices struck and sounding in frame ``t - 1``: onset and
        sustain logits (K,) each."""
        gi = self.gi_static[t] + self.w_on[prev_on].sum(0) + self.w_sound[prev_sound].sum(0)
        gh = self.w_hh @ self.h + self.b_hh
        hd = len(self.h)
        r = 1.0 / (1.0 + np.exp(-(gi[:hd] + gh[:hd])))
        z = 1.0 / (1.0 + np.exp(-(gi[hd : 2 * hd] + gh[hd : 2 * hd])))
        n = np.tanh(gi[2 * hd :] + r * gh[2 * hd :])
        self.h = ((1.0 - z) * n + z * self.h).astype(np.float32)
        logits = self.w_out @ self.h + self.b_out
        return logits[: self.keys], logits[self.keys :]


#: Krumhansl-Kessler's major-key profile (C major): the key whose tonic the melody is moved to C by
KEY_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
BEAT_DIM = 11 * 12 + 12 + 4 + 2  # see BeatChordNet.beat_features
#: the other parts per frame (:func:`parts_frames`): 12 sounding pitch classes and a flag (the song
#: has other parts); per beat the net reads their durations in the beat and the six groups around
#: it (:meth:`BeatChordNet.beat_features`) and the flag
PARTS_DIM = 13
OTHER_BEAT_DIM = 7 * 12 + 1


def parts_frames(notes: np.ndarray, n_frames: int) -> np.ndarray:
    """``(T, PARTS_DIM)`` float32: per frame the pitch classes sounding in the other parts given
    as rows (start, length, pitch), and the flag column set (no rows: all zeros, flag too)."""
    out = np.zeros((n_frames, PARTS_DIM), dtype=np.float32)
    if not len(notes):
        return out
    for s, length, p in notes:
        s, length, p = int(s), max(1, int(length)), int(p)
        if 0 <= s < n_frames:
            out[s : s + length, p % 12] = 1.0
    out[:, 12] = 1.0
    return out


@dataclass
class BeatChordNetConfig:
    """The beat-level chord predictor's shape (saved in the card's ``config``)."""

    hidden: int = 128
    layers: int = 1
    dropout: float = 0.2
    heads: int = 0  # self-attention over the song's beats after the GRU (0: none)
    other_parts: bool = False  # reads the song's other parts (PARTS_DIM per frame) besides the melody
    key_jitter: float = 0.0  # in training, the share of songs moved by a random shift instead of to C

    def to_card(self) -> dict:
        """The card's ``config``."""
        return asdict(self)

    @classmethod
    def from_card(cls, config: dict) -> BeatChordNetConfig:
        """The config a card's ``config`` describes (unknown keys ignored)."""
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in config.items() if k in fields})


def _share(x: torch.Tensor) -> torch.Tensor:
    """``x`` divided by its sum over the last axis (zeros stay zeros)."""
    return x / x.sum(-1, keepdim=True).clamp(min=1e-9)


def _groups(dur: torch.Tensor, half: torch.Tensor, bar: torch.Tensor) -> list[torch.Tensor]:
    """Per beat the shares of ``dur`` (B, N, 12) summed over its half-bar, the half-bars before and
    after, its bar, the bars before and after (``half``, ``bar``: (B, N) group numbers)."""
    b = dur.shape[0]
    groups = []
    for ids in (half, bar):
        tot = torch.zeros(b, int(ids.max()) + 3, 12, dtype=dur.dtype)
        tot = tot.scatter_add(1, (ids + 1)[..., None].expand(-1, -1, 12), dur)  # group g at g + 1
        for off in (1, 0, 2):  # this one, the one before, the one after
            groups.append(_share(tot.gather(1, (ids + off)[..., None].expand(-1, -1, 12))))
    return groups


class BeatChordNet(nn.Module):
    """A chord predictor over beats, in the melody's key.

    The song is first moved so that the (relative major) tonic its pitch-class histogram
    (:func:`key_histogram`) correlates best with is C; the melody's frames are pooled per beat
    with the half-bar and bar around each beat (:meth:`beat_features`), read by a bidirectional
    GRU over the whole song (the melody is known before it is accompanied) and a chord is
    predicted per beat in C, then moved back to the song's key. Same inputs and outputs as
    :class:`ChordNet` (chord logits per frame, one set per beat)."""

    def __init__(self, cfg: BeatChordNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.inp = nn.Sequential(
            nn.Linear(BEAT_DIM + (OTHER_BEAT_DIM if cfg.other_parts else 0), h), nn.ReLU()
        )
        self.rnn = nn.GRU(
            h, h, num_layers=cfg.layers, batch_first=True, bidirectional=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )  # fmt: skip
        self.drop = nn.Dropout(cfg.dropout)
        if cfg.heads:
            self.attn = nn.MultiheadAttention(2 * h, cfg.heads, dropout=cfg.dropout, batch_first=True)
            self.norm = nn.LayerNorm(2 * h)
        self.head = nn.Linear(3 * h, N_CHORDS)
        profile = torch.tensor(KEY_PROFILE)
        rolled = torch.stack([torch.roll(profile, j) for j in range(12)])  # (12, 12): tonic j's profile
        self.register_buffer("profiles", rolled - rolled.mean(1, keepdim=True), persistent=False)

    def key_shift(self, hist: torch.Tensor) -> torch.Tensor:
        """(B,) the semitones that move each song's tonic (from its histogram (B, 12)) to C."""
        centred = hist - hist.mean(1, keepdim=True)  # (B, 12)
        profiles = self.get_buffer("profiles")  # (12, 12)
        tonic = (centred @ profiles.T).argmax(1)  # (B,): correlation up to a positive factor
        return (-tonic) % 12

    @staticmethod
    def beat_features(
        mel: torch.Tensor, hist: torch.Tensor, shift: torch.Tensor, parts: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, T, MELODY_DIM) frames, (B, 12) histograms, (B,) shifts -> (B, T // 4, BEAT_DIM),
        pitch classes moved up by ``shift``: per beat the duration per pitch class, the pitch class
        sounding on the beat, those struck, the durations of the beats before and after, of the
        half-bar, the half-bars before and after, the bar, the bars before and after (shares), the
        song's histogram (share), the beat in the bar (one-hot of 4), the share of rest and the
        mean height. With ``parts`` (B, T, PARTS_DIM), the other parts' pitch classes are pooled
        the same way (OTHER_BEAT_DIM more per beat)."""
        b, t, _ = mel.shape
        n = t // 4
        x = mel[:, : 4 * n].reshape(b, n, 4, -1)  # (B, N, 4, M)
        idx = (torch.arange(12)[None, :] - shift[:, None]) % 12  # (B, 12): new pc i is old i - shift
        pcs = x[..., :12].gather(-1, idx[:, None, None, :].expand(-1, n, 4, -1))  # (B, N, 4, 12)
        dur = pcs.mean(2)  # (B, N, 12)
        on_beat = pcs[:, :, 0]
        struck = (pcs * x[..., 12:13]).sum(2).clamp(max=1.0)
        zero = torch.zeros_like(dur[:, :1])
        before = torch.cat([zero, dur[:, :-1]], 1)
        after = torch.cat([dur[:, 1:], zero], 1)
        pos = x[:, :, 0, 15:].argmax(-1) // 4  # (B, N) beat of the bar
        bar = torch.cumsum((pos == 0).long(), 1)  # (B, N) bar number (from 0 or 1)
        half = 2 * bar + (pos >= 2).long()
        groups = _groups(dur, half, bar)
        song = _share(hist.gather(1, idx))[:, None, :].expand(-1, n, -1)  # (B, N, 12)
        beat = torch.nn.functional.one_hot(pos.clamp(max=3), 4).to(mel.dtype)  # (B, N, 4)
        rest = x[..., 14].mean(2, keepdim=True)  # (B, N, 1)
        height = x[..., 13].mean(2, keepdim=True)
        feats = [dur, on_beat, struck, before, after, *groups, song, beat, rest, height]
        if parts is not None:
            y = parts[:, : 4 * n].reshape(b, n, 4, -1)
            other = y[..., :12].gather(-1, idx[:, None, None, :].expand(-1, n, 4, -1)).mean(2)  # (B, N, 12)
            feats += [other, *_groups(other, half, bar), y[:, :, 0, 12:13]]
        return torch.cat(feats, dim=-1)

    def beat_logits(
        self, mel: torch.Tensor, hist: torch.Tensor, parts: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``mel`` (B, T, MELODY_DIM), ``hist`` (B, 12), ``parts`` (B, T, PARTS_DIM) or None (a net
        that reads other parts then reads none) -> chord logits per beat (B, T // 4, C)."""
        shift = self.key_shift(hist)  # (B,)
        if self.training and self.cfg.key_jitter:  # a key misread: the net learns to read the key itself
            moved = torch.rand(shift.shape) < self.cfg.key_jitter
            shift = torch.where(moved, torch.randint(0, 12, shift.shape), shift)
        if self.cfg.other_parts and parts is None:
            parts = torch.zeros(*mel.shape[:2], PARTS_DIM, dtype=mel.dtype)
        x = self.inp(self.beat_features(mel, hist, shift, parts if self.cfg.other_parts else None))
        y, _ = self.rnn(x)  # (B, N, 2H)
        if self.cfg.heads:  # every beat looks at the song's other beats (its repeated sections)
            n = x.shape[1]
            pad = mel[:, : 4 * n : 4, 15:].sum(-1) == 0  # (B, N) window padding has no bar position
            a, _ = self.attn(y, y, y, key_padding_mask=pad, need_weights=False)
            y = self.norm(y + self.drop(a))
        z = self.head(self.drop(torch.cat([y, x], -1)))  # (B, N, C) in C
        cls = torch.arange(N_CHORDS)
        nq = len(CHORD_QUALITIES)
        root, q = torch.div((cls - 1).clamp(min=0), nq, rounding_mode="floor"), (cls - 1).clamp(min=0) % nq
        moved = 1 + ((root[None, :] + shift[:, None]) % 12) * nq + q[None, :]  # (B, C)
        moved[:, 0] = 0  # the song's class c is class moved[c] in C
        return z.gather(-1, moved[:, None, :].expand(-1, z.shape[1], -1))

    def forward(
        self, mel: torch.Tensor, hist: torch.Tensor, parts: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``mel`` (B, T, MELODY_DIM), ``hist`` (B, 12), ``parts`` (B, T, PARTS_DIM) or None ->
        chord logits per frame (B, T, C) (a last partial beat takes the last whole beat's)."""
        t = mel.shape[1]
        if t < 4:
            return torch.zeros(mel.shape[0], t, N_CHORDS)
        z = self.beat_logits(mel, hist, parts).repeat_interleave(4, dim=1)  # (B, 4N, C)
        if z.shape[1] < t:
            z = torch.cat([z, z[:, -1:].expand(-1, t - z.shape[1], -1)], dim=1)
        return z
