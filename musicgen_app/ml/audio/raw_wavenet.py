"""Paper 004's WaveNet on raw audio: mu-law samples, local conditioning on the piano roll.

Audio (mono, 8 kHz here: the 2-core CPU cannot train or run a 16 kHz model in useful time) is
mu-law companded to 256 classes (paper 004, eq. 1). The network is the paper's: a causal
convolution, then residual layers of dilated causal 1-D convolutions (kernel 2, dilations
1, 2, ... 128, two stacks; receptive field 512 samples = 64 ms) with gated units
``tanh(W_f x + V_f c) * sigmoid(W_g x + V_g c)``, 1x1 convolutions to the residual stream and to
the skip stream, then ReLU, 1x1, ReLU, 1x1 and a softmax over the 256 values.

Conditioning is local (paper 004, section 2.5): the piano roll of the MIDI being played (MIDI
pitches 36..96, one frame every 20 ms) is projected once per frame to every layer's gate input and
held over the frame's samples (upsampling by repetition). For training, the roll is that of the
MIDI each dataset render was made from; for a continuation, the piano roll of the sketch's last
bar is looped (:func:`last_bar_condition`), so the continuation keeps to the sketch's pitches,
key and pulse (holding one frame gave continuations without onsets).

Generation uses fast WaveNet generation: per-layer queues of past inputs, so each new sample costs
one kernel-2 step per layer (numpy matrix-vector products), see :class:`FastAudioWaveNet`.

The baseline is a mu-law n-gram (:class:`MuLawNGram`, orders 1 to 3 with each order smoothed
toward the one below), fitted on the same training audio; both are scored in bits per sample.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from musicgen_app.errors import CheckpointError, GenerationError

logger = logging.getLogger(__name__)

ARCHITECTURE = "audio-wavenet"
FAMILY = "audio-wavenet"
CLASSES = 256
MU = CLASSES - 1
PITCH_LO, PITCH_HI = 36, 96  # conditioning pitches, inclusive
FRAME_SECONDS = 0.02
BLOCK = 400  # samples generated between two looks at cancel (50 ms at 8 kHz)


def mu_law_encode(x: np.ndarray) -> np.ndarray:
    """Audio in -1..1 -> classes 0..255 (paper 004, eq. 1; 0.0 -> 128)."""
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(MU * np.abs(x)) / math.log1p(MU)
    return np.clip(np.floor((y + 1) / 2 * MU + 0.5), 0, MU).astype(np.int64)


def mu_law_decode(q: np.ndarray) -> np.ndarray:
    """Classes 0..255 -> audio in -1..1 (float32)."""
    y = 2 * np.asarray(q, dtype=np.float64) / MU - 1
    return (np.sign(y) * ((1 + MU) ** np.abs(y) - 1) / MU).astype(np.float32)


SILENCE = int(mu_law_encode(np.zeros(1))[0])


@dataclass
class AudioWaveNetConfig:
    """The network's shape and its audio (stored in the card)."""

    channels: int = 32
    skip_channels: int = 64
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128) * 2
    sample_rate: int = 8000
    pitch_lo: int = PITCH_LO
    pitch_hi: int = PITCH_HI
    frame_seconds: float = FRAME_SECONDS

    @property
    def receptive_field(self) -> int:
        """Samples of past one output sees (the start convolution and every dilated layer)."""
        return 2 + sum(self.dilations)

    @property
    def cond_dim(self) -> int:
        """Pitches of the conditioning piano roll."""
        return self.pitch_hi - self.pitch_lo + 1

    @property
    def hop(self) -> int:
        """Samples per conditioning frame."""
        return round(self.frame_seconds * self.sample_rate)


def parameter_count(cfg: AudioWaveNetConfig) -> int:
    """Parameters of the network of ``cfg`` (the card check's estimate)."""
    from musicgen_app.ml.checkpoint_verify import ESTIMATORS

    c = asdict(cfg)
    return ESTIMATORS[ARCHITECTURE]({**c, "dilations": list(cfg.dilations)})


class AudioWaveNet(nn.Module):
    """mu-law embedding -> causal conv -> gated residual layers (+ piano-roll conditioning) -> softmax."""

    def __init__(self, cfg: AudioWaveNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        C, S, L = cfg.channels, cfg.skip_channels, len(cfg.dilations)
        self.embed = nn.Embedding(CLASSES, C)
        self.start = nn.Conv1d(C, C, 2)
        self.dilated = nn.ModuleList([nn.Conv1d(C, 2 * C, 2, dilation=d) for d in cfg.dilations])
        self.cond = nn.Linear(cfg.cond_dim, L * 2 * C)  # every layer's V_f, V_g at once
        self.res = nn.ModuleList([nn.Conv1d(C, C, 1) for _ in cfg.dilations])
        self.skip = nn.ModuleList([nn.Conv1d(C, S, 1) for _ in cfg.dilations])
        self.out1 = nn.Conv1d(S, S, 1)
        self.out2 = nn.Conv1d(S, CLASSES, 1)

    def forward(self, inputs: torch.Tensor, roll: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Logits (B, 256, T) for inputs (B, T) (the classes of the samples before each predicted
        one) and the piano roll (B, F, P) whose frame ``k`` covers samples ``k * hop - offset`` on."""
        T = inputs.shape[1]
        C, hop = self.cfg.channels, self.cfg.hop
        cond = self.cond(roll).transpose(1, 2)  # (B, L*2C, F)
        cond = cond.repeat_interleave(hop, dim=2)[:, :, offset : offset + T]  # (B, L*2C, T)
        if cond.shape[2] != T:
            raise ValueError("the piano roll is shorter than the audio")
        x = self.start(nn.functional.pad(self.embed(inputs).transpose(1, 2), (1, 0)))  # (B, C, T)
        skips: Any = 0
        for i, (d, conv, res, skip) in enumerate(
            zip(self.cfg.dilations, self.dilated, self.res, self.skip, strict=True)
        ):
            fg = conv(nn.functional.pad(x, (d, 0))) + cond[:, 2 * C * i : 2 * C * (i + 1)]  # (B, 2C, T)
            z = torch.tanh(fg[:, :C]) * torch.sigmoid(fg[:, C:])
            skips = skips + skip(z)
            x = x + res(z)
        return self.out2(torch.relu(self.out1(torch.relu(skips))))  # (B, 256, T)


# -- piano roll ------------------------------------------------------------------------------------------
def piano_roll(song: Any, cfg: AudioWaveNetConfig, n_samples: int) -> np.ndarray:
    """(frames, P) float32: 1 where a note of that pitch sounds in the frame (pitches outside the
    range folded in by octaves), enough frames to cover ``n_samples``."""
    frames = -(-n_samples // cfg.hop) + 1
    roll = np.zeros((frames, cfg.cond_dim), dtype=np.float32)
    for track in song.tracks:
        if getattr(track, "is_drum", False):
            continue
        for n in track.notes:
            p = n.pitch
            while p < cfg.pitch_lo:
                p += 12
            while p > cfg.pitch_hi:
                p -= 12
            a = int(song.tick_to_seconds(n.start_tick) / cfg.frame_seconds)
            b = math.ceil(song.tick_to_seconds(n.end_tick) / cfg.frame_seconds)
            roll[max(0, a) : max(0, min(frames, b)), p - cfg.pitch_lo] = 1.0
    return roll


def held_condition(roll: np.ndarray) -> np.ndarray:
    """The sketch's condition to hold over a continuation: its last frame with any note sounding
    (zeros when the sketch has none)."""
    active = np.flatnonzero(roll.sum(axis=1) > 0)
    return roll[active[-1]].copy() if len(active) else np.zeros(roll.shape[1], dtype=np.float32)


def pitches_of_audio(audio: np.ndarray, cfg: AudioWaveNetConfig, most: int = 4) -> np.ndarray:
    """A condition vector (P,) for a recording without MIDI: the pitches whose fundamental carries
    the most energy in its last half second (at most ``most``, each at least a third of the
    strongest)."""
    tail = np.asarray(audio[-cfg.sample_rate // 2 :], dtype=np.float64)
    out = np.zeros(cfg.cond_dim, dtype=np.float32)
    if len(tail) < 64 or not np.any(tail):
        return out
    spec = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
    pitches = np.arange(cfg.pitch_lo, cfg.pitch_hi + 1)
    freqs = 440.0 * 2 ** ((pitches - 69) / 12)
    bins = np.round(freqs * len(tail) / cfg.sample_rate).astype(int)
    ok = bins < len(spec)
    energy = np.where(ok, spec[np.minimum(bins, len(spec) - 1)], 0.0)
    best = np.argsort(energy)[::-1][:most]
    out[best[energy[best] >= energy[best[0]] / 3]] = 1.0
    return out


# -- fast generation ----------------------------------------------------------------------------------------
class FastAudioWaveNet:
    """Fast generation: each layer keeps a queue of its last ``dilation`` inputs (oldest at the
    pointer); a sample costs one fused kernel-2 product per layer and its residual product; the
    skip products of all layers are one product at the end.

    The weights are rearranged once: the gate half of each layer is pre-scaled by 1/2 so that one
    ``tanh`` serves both halves (``sigmoid(g) = (1 + tanh(g / 2)) / 2``; the remaining 1/2 is folded
    into the residual and skip weights), and the layer biases are folded into the held condition.
    """

    def __init__(self, net: AudioWaveNet) -> None:
        def n(t: Any) -> np.ndarray:
            return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)

        cfg = net.cfg
        self.cfg = cfg
        self.C = C = cfg.channels
        L = len(cfg.dilations)
        gate = np.concatenate([np.ones(C), np.full(C, 0.5)]).astype(np.float32)  # (2C,)
        with torch.no_grad():
            self.embed = n(net.embed.weight)  # (256, C)
            sw = net.start.weight
            self.start = (n(torch.cat([sw[:, :, 0], sw[:, :, 1]], dim=1).T), n(net.start.bias))
            self.taps: list[np.ndarray] = []  # (2C in: [x(t - d), x(t)], 2C out), gate half scaled
            self.res: list[np.ndarray] = []  # (C, C), halved
            conv: Any
            res: Any
            for conv, res in zip(net.dilated, net.res, strict=True):
                w = conv.weight
                self.taps.append(n(torch.cat([w[:, :, 0], w[:, :, 1]], dim=1).T) * gate)
                self.res.append(n(res.weight[:, :, 0].T) * 0.5)
            self.res_b = [n(r.bias) for r in net.res]
            # the per-layer gate inputs from a frame: (P, L*2C), with every layer's conv bias
            self.cond_w = (n(net.cond.weight.T).reshape(-1, L, 2 * C) * gate).reshape(-1, L * 2 * C)
            self.cond_b = (
                (n(net.cond.bias).reshape(L, 2 * C) + np.stack([n(c.bias) for c in net.dilated])) * gate
            ).ravel()
            skips: list[Any] = list(net.skip)
            self.skip_w = np.concatenate([n(s.weight[:, :, 0].T) * 0.5 for s in skips])  # (L*C, S)
            self.skip_b = n(sum(s.bias for s in skips))
            self.out1 = (n(net.out1.weight[:, :, 0].T), n(net.out1.bias))
            self.out2 = (n(net.out2.weight[:, :, 0].T), n(net.out2.bias))
        self.dilations = (1, *cfg.dilations)
        self.buffers = [np.zeros((d, C), dtype=np.float32) for d in self.dilations]
        self.pointers = [0] * len(self.buffers)
        self.zs = np.zeros((L, C), dtype=np.float32)
        self.set_condition(np.zeros(cfg.cond_dim, dtype=np.float32))

    def set_condition(self, frame: np.ndarray) -> None:
        """Hold the piano-roll frame ``frame`` (P,) from the next step on."""
        self.cond = self.project(np.asarray(frame)[None])[0]

    def project(self, frames: np.ndarray) -> list[list[np.ndarray]]:
        """Piano-roll frames (F, P) as every layer's gate inputs: F lists of L arrays (2C,), each
        ready to be :attr:`cond`."""
        proj = np.asarray(frames, dtype=np.float32) @ self.cond_w + self.cond_b  # (F, L*2C)
        return [list(row.reshape(len(self.taps), 2 * self.C)) for row in proj]

    def _head(self, skips: np.ndarray) -> np.ndarray:
        (w1, b1), (w2, b2) = self.out1, self.out2
        return np.maximum(np.maximum(skips, 0) @ w1 + b1, 0) @ w2 + b2  # (256,)

    def step(self, q: int) -> np.ndarray:
        """Feed the class of the last sample; logits (256,) of the next one."""
        C, bufs, ptrs, zs = self.C, self.buffers, self.pointers, self.zs
        cat = np.empty(2 * C, dtype=np.float32)
        x = self.embed[q]
        w, b = self.start
        for k in range(len(bufs)):
            buf, p = bufs[k], ptrs[k]
            cat[:C] = buf[p]  # this layer's input `dilation` samples ago
            cat[C:] = x
            buf[p] = x
            ptrs[k] = p + 1 if p + 1 < len(buf) else 0
            if k == 0:
                x = cat @ w + b
                continue
            t = np.tanh(cat @ self.taps[k - 1] + self.cond[k - 1])
            z = zs[k - 1]
            np.multiply(t[:C], 1.0 + t[C:], out=z)  # 2 x the gated unit
            x = x + z @ self.res[k - 1] + self.res_b[k - 1]
        return self._head(zs.ravel() @ self.skip_w + self.skip_b)

    def prefill(self, classes: np.ndarray, cond: np.ndarray) -> np.ndarray:
        """Read the seed ``classes`` (T,) with per-sample conditions (T, P) in one pass per layer
        (only its last receptive field matters); fill the queues; logits (256,) of the next sample."""
        rf = self.cfg.receptive_field
        classes, cond = np.asarray(classes)[-rf:], np.asarray(cond, dtype=np.float32)[-rf:]
        C, T = self.C, len(classes)
        if T == 0:
            return self.step(SILENCE)
        proj = cond @ self.cond_w + self.cond_b  # (T, L*2C)

        def taps(x: np.ndarray, d: int) -> np.ndarray:
            past = np.zeros_like(x)
            if d < len(x):
                past[d:] = x[:-d]
            return np.concatenate([past, x], axis=1)

        x0 = self.embed[classes]
        inputs = [x0]
        w, b = self.start
        x = taps(x0, 1) @ w + b
        for i, d in enumerate(self.dilations[1:]):
            inputs.append(x)
            t = np.tanh(taps(x, d) @ self.taps[i] + proj[:, 2 * C * i : 2 * C * (i + 1)])
            z = t[:, :C] * (1.0 + t[:, C:])
            x = x + z @ self.res[i] + self.res_b[i]
            self.zs[i] = z[-1]
        for k, (d, seq) in enumerate(zip(self.dilations, inputs, strict=True)):
            buf = np.zeros((d, C), dtype=np.float32)
            m = min(d, len(seq))
            buf[d - m :] = seq[-m:]
            self.buffers[k] = buf
            self.pointers[k] = 0
        return self._head(self.zs.ravel() @ self.skip_w + self.skip_b)


def sample_logits(logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0) -> int:
    """One class drawn from softmax(logits / temperature)."""
    z = logits.astype(np.float64) / max(temperature, 1e-6)
    c = np.cumsum(np.exp(z - z.max()))
    return int(min(np.searchsorted(c, rng.random() * c[-1]), CLASSES - 1))


# -- the loaded model ---------------------------------------------------------------------------------------
@dataclass
class AudioWaveNetModel:
    """A loaded raw-audio WaveNet (from the registry): ``continue_audio`` generates samples."""

    name: str
    card: dict
    path: Path
    network: AudioWaveNet
    _fast: FastAudioWaveNet | None = field(default=None, repr=False)

    @property
    def sample_rate(self) -> int:
        """The model's audio rate (a seed is resampled to it)."""
        return self.network.cfg.sample_rate

    def continue_audio(
        self,
        seed: np.ndarray,
        seed_roll: np.ndarray | None,
        n_samples: int,
        *,
        hold: np.ndarray | None = None,
        seed_rng: int = 0,
        temperature: float = 1.0,
        cancelled: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """``n_samples`` new samples (float32, -1..1) after ``seed`` (mono at the model's rate): the
        blocks of :meth:`stream_audio` joined."""
        blocks = self.stream_audio(
            seed,
            seed_roll,
            n_samples,
            hold=hold,
            seed_rng=seed_rng,
            temperature=temperature,
            cancelled=cancelled,
        )
        return np.concatenate([np.zeros(0, dtype=np.float32), *blocks])

    def stream_audio(
        self,
        seed: np.ndarray,
        seed_roll: np.ndarray | None,
        n_samples: int,
        *,
        hold: np.ndarray | None = None,
        seed_rng: int = 0,
        temperature: float = 1.0,
        cancelled: Callable[[], bool] | None = None,
        block: int = BLOCK,
    ) -> Iterator[np.ndarray]:
        """The continuation as it is generated: blocks of ``block`` samples (float32, -1..1; the
        last may be shorter), ``n_samples`` in all.

        ``seed_roll`` (frames, P): the seed's piano roll (None: ``hold``'s first frame over the
        seed); ``hold``: the continuation's condition, one frame (P,) held throughout or frames
        (F, P) played in a loop (default: the roll's last sounding frame, held).
        ``cancelled()`` is polled before every block; when it answers True the stream raises
        :class:`GenerationError` (so a cancel takes at most one block)."""
        cfg = self.network.cfg
        if seed_roll is None and hold is None:
            raise GenerationError("a continuation needs the sketch's notes or a held condition")
        if hold is None:
            hold = held_condition(seed_roll)  # type: ignore[arg-type]
        frames = np.atleast_2d(np.asarray(hold, dtype=np.float32))  # (F, P)
        seed = np.asarray(seed, dtype=np.float32)
        first = max(0, len(seed) - cfg.receptive_field)  # only the last receptive field matters
        if seed_roll is not None:
            # the input at sample j predicts j + 1, whose frame conditions it (as in training)
            frame = np.minimum((np.arange(first, len(seed)) + 1) // cfg.hop, len(seed_roll) - 1)
            cond = seed_roll[frame]
        else:
            cond = np.repeat(frames[:1], len(seed) - first, axis=0)
        seed = seed[first:]
        fast = FastAudioWaveNet(self.network)
        logits = fast.prefill(mu_law_encode(seed), cond)
        projected = fast.project(frames)
        hop = cfg.hop
        rng = np.random.default_rng(seed_rng)
        for start in range(0, n_samples, block):
            if cancelled is not None and cancelled():
                raise GenerationError("the continuation was cancelled")
            out = np.empty(min(block, n_samples - start), dtype=np.int64)
            for t in range(len(out)):
                if (start + t) % hop == 0:
                    fast.cond = projected[((start + t) // hop) % len(projected)]
                q = sample_logits(logits, rng, temperature)
                out[t] = q
                logits = fast.step(q)
            yield mu_law_decode(out)


def sketch_seed(
    song: Any, cfg: AudioWaveNetConfig, render: Callable[[Any, int], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A MIDI sketch as the model's seed: ``(audio, roll, condition)``: its render on piano (mono,
    the model's rate; ``render(song, rate)`` is FluidSynth's, handed in by the caller), its piano
    roll and the continuation's condition (:func:`last_bar_condition`)."""
    from musicgen_app.ml.audio.dataset import with_program

    rendered = np.asarray(render(with_program(song, 0), cfg.sample_rate), dtype=np.float32)
    audio = rendered.mean(axis=1) if rendered.ndim == 2 else rendered
    roll = piano_roll(song, cfg, len(audio))
    return audio, roll, last_bar_condition(song, roll, cfg, len(audio))


def last_bar_condition(song: Any, roll: np.ndarray, cfg: AudioWaveNetConfig, n_samples: int) -> np.ndarray:
    """The continuation's condition: the piano-roll frames of the sketch's last bar (the bar's
    length at the tempo and meter where the sketch ends, counted back from its end), to be looped,
    so the continuation keeps the sketch's pitches, key and pulse; the last sounding frame alone
    (held) when that bar starts no note."""
    end_s = n_samples / cfg.sample_rate
    end_tick = round(song.seconds_to_tick(end_s))
    start_tick = max(0, end_tick - song.ticks_per_bar(max(0, end_tick - 1)))
    a = int(song.tick_to_seconds(start_tick) / cfg.frame_seconds)
    b = min(len(roll), max(a + 1, round(end_s / cfg.frame_seconds)))
    bar = roll[a:b]
    onsets = np.diff(np.vstack([roll[max(0, a - 1) : a] if a else np.zeros((1, roll.shape[1])), bar]), axis=0)
    if len(bar) < 2 or not (onsets > 0).any():
        return held_condition(roll)[None]
    return bar.copy()


def config_from_card(card: dict, name: str) -> AudioWaveNetConfig:
    """The configuration a card describes (CheckpointError when unusable)."""
    c = card.get("config")
    if not isinstance(c, dict):
        raise CheckpointError(f"model {name}: its card has no network configuration")
    try:
        conf = {k: v for k, v in c.items() if k != "receptive_field"}
        cfg = AudioWaveNetConfig(**{**conf, "dilations": tuple(int(d) for d in conf["dilations"])})
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"model {name}: its card's configuration is not usable ({exc})") from exc
    if cfg.sample_rate not in (8000, 16000) or not 0.001 <= cfg.frame_seconds <= 1:
        raise CheckpointError(f"model {name}: its card's audio settings are not usable")
    if not 0 <= cfg.pitch_lo <= cfg.pitch_hi <= 127:
        raise CheckpointError(f"model {name}: its card's pitch range is not usable")
    return cfg


def load_audio_wavenet(name: str, card: dict, path: Path) -> AudioWaveNetModel:
    """The registry's loader for ``"family": "audio-wavenet"`` cards."""
    from musicgen_app.ml import checkpoint as ckpt

    net = AudioWaveNet(config_from_card(card, name))
    ckpt.load_into(net, ckpt.load_weights(path, card), name)
    net.eval()
    return AudioWaveNetModel(name, card, path, net)


def as_audio_wavenet(model: object, name: str) -> AudioWaveNetModel:
    """``model`` if it continues raw audio; CheckpointError naming it otherwise."""
    if not isinstance(model, AudioWaveNetModel):
        raise CheckpointError(f"model {name} does not continue raw audio (try audio-wavenet)")
    return model


def new_card(cfg: AudioWaveNetConfig, name: str) -> dict:
    """The card skeleton (training fills data, training and metrics)."""
    return {
        "name": name,
        "family": FAMILY,
        "task": "audio-continuation",
        "architecture": ARCHITECTURE,
        "seed_paper": "004",
        "title": "WaveNet on raw audio, conditioned on the piano roll (paper 004)",
        "description": (
            f"Paper 004's WaveNet on {cfg.sample_rate} Hz mono audio, mu-law companded to 256 classes: "
            f"a causal convolution, {len(cfg.dilations)} residual layers of dilated causal convolutions "
            f"(kernel 2, dilations {cfg.dilations[0]}..{max(cfg.dilations)}, receptive field "
            f"{cfg.receptive_field} samples = {1000 * cfg.receptive_field / cfg.sample_rate:.0f} ms), "
            "gated tanh x sigmoid units, residual and skip connections, softmax over 256 values. "
            f"Local conditioning on the piano roll (MIDI {cfg.pitch_lo}..{cfg.pitch_hi}, "
            f"{1000 * cfg.frame_seconds:.0f} ms frames) projected into every gate; a continuation loops "
            "the piano roll of the sketch's last bar. Generates with per-layer queues (fast WaveNet "
            "generation: one step per layer per sample, numpy)."
        ),
        "config": {**asdict(cfg), "dilations": list(cfg.dilations), "receptive_field": cfg.receptive_field},
        "parameters": parameter_count(cfg),
    }


def save_audio_wavenet(net: AudioWaveNet, card: dict, name_or_path: str | Path) -> Path:
    """Write float16 weights and ``card`` as ``models/NAME.*``; returns the weights path."""
    from musicgen_app.ml import checkpoint as ckpt
    from musicgen_app.ml.families.checkpoint import model_path

    return ckpt.save_checkpoint(net.state_dict(), card, model_path(name_or_path))


# -- data ---------------------------------------------------------------------------------------------------
@dataclass
class Track:
    """One piece's training material: mu-law classes (T,) and its piano roll (frames, P)."""

    classes: np.ndarray
    roll: np.ndarray


def piece_songs(ds: Any) -> dict[str, Any]:
    """The songs the dataset's pieces were rendered from, by id (rebuilt from the corpora the way
    :func:`~musicgen_app.ml.audio.dataset.build_audio_dataset` picked them)."""
    from musicgen_app.ml.audio import dataset as ads

    counts = ds.stats()["by_source"]
    songs = {p.id: p.song for p in ads.chorale_pieces(counts["chorales"])}
    songs.update({p.id: p.song for p in ads.essen_pieces(counts["essen"])})
    missing = [p["id"] for p in ds.pieces if p["id"] not in songs]
    if missing:
        raise GenerationError(f"the MIDI of {len(missing)} rendered pieces is not found ({missing[0]})")
    return songs


def dataset_tracks(ds: Any, cfg: AudioWaveNetConfig, split: str, songs: dict[str, Any]) -> list[Track]:
    """The piano renders of ``split`` as mu-law classes, each with its piano roll."""
    out = []
    for i in ds.split(split):
        audio = ds.audio("piano", i)
        out.append(Track(mu_law_encode(audio), piano_roll(songs[ds.pieces[i]["id"]], cfg, len(audio))))
    return out


# -- training -----------------------------------------------------------------------------------------------
def _batch(
    tracks: Sequence[Track], cfg: AudioWaveNetConfig, n: int, length: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``n`` random windows: inputs (n, RF + length), rolls (n, F, P), targets (n, length), offset."""
    rf, hop = cfg.receptive_field, cfg.hop
    total = rf + length
    xs, rolls, ys = [], [], []
    frames = total // hop + 2
    for _ in range(n):
        tr = tracks[int(rng.integers(len(tracks)))]
        f0 = int(rng.integers(0, max(1, (len(tr.classes) - total - 1) // hop)))
        s = f0 * hop  # windows start on a frame boundary: offset 0
        seq = tr.classes[s : s + total + 1]
        seq = np.pad(seq, (0, total + 1 - len(seq)), constant_values=SILENCE)
        xs.append(seq[:-1])
        ys.append(seq[1 + rf :])
        r = tr.roll[f0 : f0 + frames]
        rolls.append(np.pad(r, ((0, frames - len(r)), (0, 0))))
    return (
        torch.from_numpy(np.stack(xs)),
        torch.from_numpy(np.stack(rolls)),
        torch.from_numpy(np.stack(ys)),
        rf,
    )


def _window_loss(net: AudioWaveNet, batch: tuple) -> torch.Tensor:
    """Mean cross-entropy (nats) over the scored part of the windows (after one receptive field).

    The inputs at position ``t`` are sample ``t - 1`` (shifted by one); the condition at ``t`` is the
    frame of the predicted sample, so the roll is read one sample ahead (offset 1)."""
    x, roll, y, rf = batch
    logits = net(x, roll, offset=1)[:, :, rf:]  # (B, 256, L)
    return nn.functional.cross_entropy(logits, y)


@dataclass
class TrainReport:
    """What a training run did."""

    steps: int
    seconds: float
    best_val_bits: float
    history: list[tuple[int, float, float]]


def train_audio_wavenet(
    cfg: AudioWaveNetConfig,
    train: Sequence[Track],
    val: Sequence[Track],
    *,
    seconds: float,
    batch: int = 4,
    length: int = 2048,
    lr: float = 2e-3,
    seed: int = 4,
    eval_every: int = 25,
    max_steps: int = 0,
    log: Callable[[str], None] | None = None,
) -> tuple[AudioWaveNet, TrainReport]:
    """Random windows for ``seconds`` of wall time through the one training loop
    (:func:`musicgen_app.ml.training.train`: Adam at a constant rate, gradient norm clipped at 1,
    validation every ``eval_every`` steps; ``max_steps`` > 0 stops there); the best validation
    weights are kept."""
    from musicgen_app.ml.training import TrainConfig
    from musicgen_app.ml.training import train as train_loop

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = AudioWaveNet(cfg)
    vrng = np.random.default_rng(seed + 1)
    valid = [_batch(val, cfg, batch, length, vrng) for _ in range(2)]

    def loss(model: nn.Module, b: tuple) -> tuple[torch.Tensor, int]:
        return _window_loss(model, b), 1  # type: ignore[arg-type]

    def on_event(ev: dict) -> None:
        if log is not None and ev.get("event") == "epoch":
            log(f"step {ev['step']} ({ev['minutes'] * 60:.0f} s): train {ev['train_nll'] / math.log(2):.3f} "
                f"val {ev['val_nll'] / math.log(2):.3f} bits/sample")  # fmt: skip

    loop = TrainConfig(minutes=seconds / 60, lr=lr, clip=1.0, eval_every=eval_every, patience=10**9,
                       seed=seed, max_steps=max_steps, schedule="constant",
                       unit="nats per sample")  # fmt: skip
    windows = lambda _g: _batch(train, cfg, batch, length, rng)  # noqa: E731
    res = train_loop(net, loss, windows, valid, loop, on_event=on_event)
    bits = 1 / math.log(2)
    history = [(int(r["step"]), round(r["train_nll"] * bits, 4), round(r["val_nll"] * bits, 4))
               for r in res.history]  # fmt: skip
    return net, TrainReport(res.steps, res.seconds, round(res.best_valid_nll * bits, 4), history)


# -- evaluation ---------------------------------------------------------------------------------------------
def nll_bits(net: AudioWaveNet, tracks: Sequence[Track], chunk: int = 32768) -> tuple[float, int]:
    """(mean NLL in bits per sample, samples) over whole tracks read from their start (silence
    before), in chunks that each re-read one receptive field of context."""
    cfg, hop = net.cfg, net.cfg.hop
    rf = cfg.receptive_field
    total, count = 0.0, 0
    lead = -(-(rf + 1) // hop)  # frames of silence before each track (at least rf + 1 samples)
    with torch.inference_mode():
        for tr in tracks:
            q = np.concatenate([np.full(lead * hop, SILENCE), tr.classes])
            roll = np.concatenate([np.zeros((lead, tr.roll.shape[1]), np.float32), tr.roll])
            for s in range(lead * hop, len(q), chunk):
                e = min(len(q), s + chunk)
                a = s - rf - 1  # inputs a .. e - 2; outputs from position rf on predict s .. e - 1
                x = torch.from_numpy(q[a : e - 1])[None]
                y = torch.from_numpy(q[s:e])[None]
                f0 = (a + 1) // hop  # the input at a predicts a + 1: its frame comes first
                need = (a + 1 - f0 * hop + x.shape[1]) // hop + 1
                r = roll[f0 : f0 + need]
                r = np.pad(r, ((0, need - len(r)), (0, 0)))
                logits = net(x, torch.from_numpy(r)[None], offset=a + 1 - f0 * hop)[:, :, rf:]
                total += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
                count += y.numel()
    return total / count / math.log(2), count


class MuLawNGram:
    """The baseline: P(x_t | the ``order - 1`` previous classes), each order's counts smoothed toward
    the order below with weight ``beta`` (order 1: add-one)."""

    def __init__(self, order: int, beta: float) -> None:
        if order not in (1, 2, 3):
            raise ValueError("order must be 1, 2 or 3")
        self.order, self.beta = order, beta
        self.counts: list[np.ndarray] = []
        self._totals: dict[int, np.ndarray] = {}  # order index -> count of each context

    def fit(self, tracks: Sequence[np.ndarray]) -> MuLawNGram:
        """Count 1-, 2- and 3-grams over the tracks (each read after two samples of silence)."""
        self.counts = [np.zeros(CLASSES ** (k + 1), dtype=np.int64) for k in range(self.order)]
        for q in tracks:
            p = np.concatenate([[SILENCE, SILENCE], q]).astype(np.int64)
            for k in range(self.order):
                idx = np.zeros(len(q), dtype=np.int64)
                for j in range(k + 1):
                    idx = idx * CLASSES + p[2 - k + j : 2 - k + j + len(q)]
                self.counts[k] += np.bincount(idx, minlength=CLASSES ** (k + 1))
        return self

    def with_beta(self, beta: float) -> MuLawNGram:
        """The same counts, another smoothing weight."""
        other = MuLawNGram(self.order, beta)
        other.counts, other._totals = self.counts, self._totals
        return other

    def bits(self, q: np.ndarray) -> np.ndarray:
        """Bits of each sample of ``q`` (read after two samples of silence)."""
        p = np.concatenate([[SILENCE, SILENCE], q]).astype(np.int64)
        n = len(q)
        c1 = self.counts[0]
        prob = (c1[p[2:]] + 1.0) / (c1.sum() + CLASSES)
        for k in range(1, self.order):
            ctx = np.zeros(n, dtype=np.int64)
            for j in range(k):
                ctx = ctx * CLASSES + p[2 - k + j : 2 - k + j + n]
            ck = self.counts[k].reshape(-1, CLASSES)
            if k not in self._totals:
                self._totals[k] = ck.sum(axis=1)
            prob = (ck[ctx, p[2:]] + self.beta * prob) / (self._totals[k][ctx] + self.beta)
        return -np.log2(prob)


def fit_baseline(
    train: Sequence[np.ndarray],
    val: Sequence[np.ndarray],
    betas: Sequence[float] = (1, 4, 16, 64, 256, 1024, 4096),
) -> tuple[MuLawNGram, dict]:
    """The n-gram (order 1-3, smoothing weight) with the lowest validation bits per sample."""
    full = MuLawNGram(3, 1.0).fit(train)
    vq = np.concatenate(list(val))
    choices = {}
    best: tuple[float, MuLawNGram] | None = None
    for order in (1, 2, 3):
        m = MuLawNGram(order, 1.0)
        m.counts, m._totals = full.counts[:order], full._totals
        for beta in betas if order > 1 else (1.0,):
            cand = m.with_beta(beta)
            b = float(cand.bits(vq).mean())
            choices[f"order {order} beta {beta:g}"] = round(b, 4)
            if best is None or b < best[0]:
                best = (b, cand)
    assert best is not None
    return best[1], choices


def real_time_factor(model: AudioWaveNetModel, seconds: float = 1.0) -> dict:
    """Time fast generation of ``seconds`` of audio after one second of silence-free seed; the
    real-time factor is wall time / audio time (below 1 is faster than real time)."""
    rate = model.sample_rate
    t = np.arange(rate) / rate
    seed = (0.3 * np.sin(2 * np.pi * 261.63 * t)).astype(np.float32)
    hold = np.zeros(model.network.cfg.cond_dim, dtype=np.float32)
    hold[60 - model.network.cfg.pitch_lo] = 1.0
    t0 = time.perf_counter()
    model.continue_audio(seed, None, round(seconds * rate), hold=hold)
    wall = time.perf_counter() - t0
    return {
        "audio_seconds": seconds,
        "wall_seconds": round(wall, 3),
        "real_time_factor": round(wall / seconds, 3),
    }


# -- what the continuations contain -------------------------------------------------------------------------
def cut_song(song: Any, seconds: float) -> Any:
    """The first ``seconds`` of ``song``: notes starting before the cut, ended at it."""
    from musicgen_app.core.song import Note

    cut = round(song.seconds_to_tick(seconds))
    out = song.copy()
    for t in out.tracks:
        t.notes = [
            Note(n.start_tick, n.pitch, min(n.end_tick, cut), n.velocity, n.channel)
            for n in t.notes
            if n.start_tick < cut
        ]
    return out


def held_out_sketches(ds: Any, count: int, seconds: float) -> list[tuple[str, Any, Any]]:
    """``count`` sketches no training or validation audio came from: ``(id, sketch, piece)``, the
    sketch being the piece's first ``seconds``. The dataset's test pieces come first, then pieces of
    the same corpora the dataset never rendered (chorales after its first ones in name order, Essen
    tunes off its stride), alternating chorales and melodies; pieces shorter than the sketch plus
    two seconds are skipped."""
    from musicgen_app.ml.audio import dataset as ads

    used = {p["id"] for p in ds.pieces}
    songs = piece_songs(ds)
    out = [(ds.pieces[i]["id"], songs[ds.pieces[i]["id"]]) for i in ds.split("test")]
    counts = ds.stats()["by_source"]
    chorales = [p for p in ads.chorale_pieces(counts["chorales"] + count) if p.id not in used]
    essen = [p for p in ads.essen_pieces(counts["essen"] + 2 * count) if p.id not in used]
    for a, b in zip(chorales, essen, strict=False):
        out += [(a.id, a.song), (b.id, b.song)]
    picked = [(i, cut_song(s, seconds), s) for i, s in out if s.duration_seconds >= seconds + 2.0]
    if len(picked) < count:
        raise GenerationError(f"only {len(picked)} held-out pieces are long enough for {count} sketches")
    return picked[:count]


def key_of_song(song: Any) -> Any:
    """The song's key (Krumhansl-Schmuckler over its notes, weighted by duration)."""
    from musicgen_app.ml.keys import estimate_key

    notes = [n for t in song.tracks if not getattr(t, "is_drum", False) for n in t.notes]
    return estimate_key([n.pitch for n in notes], [n.end_tick - n.start_tick for n in notes])


def pitch_stats(pitches: Sequence[int], key: Any, seconds: float) -> dict:
    """Notes per second and the share of the notes whose pitch class is in ``key``'s seven diatonic
    pitch classes (strictly: a minor key's raised 6th and 7th count as out of key; chance is 7/12)."""
    scale = key.diatonic_pcs()
    n = len(pitches)
    return {
        "notes": n,
        "notes_per_second": round(n / seconds, 3),
        "in_key": round(sum(p % 12 in scale for p in pitches) / n, 4) if n else None,
    }
