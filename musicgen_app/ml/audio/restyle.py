"""Paper 002's style-transfer autoencoder: audio laid out as a 256 x 256 image, trained on piano only.

The network is the paper's Figure 9 table exactly (148,081 parameters): four 4x4 convolutions
(16, 32, 64, 64 channels, "same" padding) with 2x2 max pooling after the first three, then three
2x upsamplings each followed by a 4x4 convolution (64 -> 32 -> 16) and a last 3x3 convolution to
one channel. The paper gives no activations; we use ReLU inside and a sigmoid at the end, because
the paper scales its pictures to 0..1 (``(x + 1) / 2`` here). Trained on piano renders only, the
decoder knows how to rebuild piano sound; other instruments' sound is pulled toward it.

Audio goes in as 65,536-sample windows (4.1 s at 16 kHz) laid out by :mod:`.hilbert`
(``layout="hilbert"``, the paper's) or row by row (``layout="linear"``, the baseline of the
same size). :func:`restyle` runs any length through windows end to end (a short crossfade
between them), each scaled to its input's peak as in training.

``variant="residual"`` (not the paper's) is the same convolution stack and parameter count with a
skip from input to output: each output sample is the input sample plus a correction, the sample
times ``tanh`` of the last convolution (a gain from 0 to 2 that the network draws over the
picture). Its last convolution starts at zero, so before training it is the identity (restyled
audio exactly as far from piano as its input); training teaches it only the correction toward
piano, instead of rebuilding every partial through a 32 x 32 bottleneck. (A correction added
independently of the input did not train: under the log-spectral loss, anything not coherent
with the input only lifts its quiet bins, so the best such correction is none.)
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from musicgen_app.errors import CheckpointError, GenerationError
from musicgen_app.ml.audio import hilbert
from musicgen_app.ml.audio.dataset import AudioDataset

logger = logging.getLogger(__name__)

ARCHITECTURE = "hilbert-autoencoder"
FAMILY = "audio-restyle"
WINDOW = 65536  # samples per picture: 256 x 256
SIDE = 256
TARGETS = ("piano",)
VARIANTS = ("paper", "residual")


@dataclass
class RestyleConfig:
    """The network's shape (the paper's defaults) and the audio layout."""

    layout: str = "hilbert"
    widths: tuple[int, int, int, int] = (16, 32, 64, 64)
    kernel: int = 4
    out_kernel: int = 3
    sample_rate: int = 16000
    window: int = WINDOW
    variant: str = "paper"  # "residual": picture in + the network's correction (cards before it: paper)

    def __post_init__(self) -> None:
        if self.layout not in hilbert.LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}")
        hilbert.side_of(self.window)
        self.widths = tuple(int(w) for w in self.widths)  # type: ignore[assignment]
        if len(self.widths) != 4 or not all(1 <= w <= 1024 for w in self.widths):
            raise ValueError("widths must be four channel counts from 1 to 1024")
        if not (1 <= self.kernel <= 9 and 1 <= self.out_kernel <= 9):
            raise ValueError("kernels must be from 1 to 9")


def parameter_count(config: RestyleConfig) -> int:
    """Parameters of the network of ``config`` (the card check's estimate, which loading uses)."""
    from musicgen_app.ml.checkpoint_verify import ESTIMATORS

    return ESTIMATORS[ARCHITECTURE]({**asdict(config), "widths": list(config.widths)})


class SameConv2d(nn.Conv2d):
    """A stride-1 convolution padded like Keras' ``"same"``: for an even kernel, the extra row and
    column of zeros go after (bottom, right)."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(c_in, c_out, kernel)
        before = (kernel - 1) // 2
        self.pads = (before, kernel - 1 - before) * 2  # (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H, W)."""
        return super().forward(nn.functional.pad(x, self.pads))


class HilbertAutoencoder(nn.Module):
    """Figure 9 of paper 002: (B, 1, 256, 256) in 0..1 -> (B, 1, 256, 256) in 0..1 (the residual
    variant's output may leave 0..1 by its correction)."""

    def __init__(self, config: RestyleConfig) -> None:
        super().__init__()
        self.config = config
        w1, w2, w3, w4 = config.widths
        k = config.kernel

        def conv(a: int, b: int, size: int = k) -> nn.Conv2d:
            return SameConv2d(a, b, size)

        self.encoder = nn.Sequential(
            conv(1, w1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 16, 128, 128)
            conv(w1, w2), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 64, 64)
            conv(w2, w3), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 32, 32)
            conv(w3, w4), nn.ReLU(),  # (B, 64, 32, 32): the bottleneck
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2), conv(w4, w2), nn.ReLU(),  # (B, 32, 64, 64)
            nn.Upsample(scale_factor=2), conv(w2, w1), nn.ReLU(),  # (B, 16, 128, 128)
            nn.Upsample(scale_factor=2), conv(w1, 1, config.out_kernel),  # (B, 1, 256, 256)
            nn.Tanh() if config.variant == "residual" else nn.Sigmoid(),
        )  # fmt: skip
        if config.variant == "residual":  # no correction yet: the identity
            last = self.decoder[7]
            assert isinstance(last, nn.Conv2d) and last.bias is not None
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S) pictures in 0..1 -> their reconstructions (residual: each sample of ``img``
        plus the sample times the correction, ``tanh`` of the last convolution)."""
        out = self.decoder(self.encoder(img))
        return img + (img - 0.5) * out if self.config.variant == "residual" else out


# -- audio <-> pictures ------------------------------------------------------------------------------
def to_pictures(windows: np.ndarray, layout: str) -> torch.Tensor:
    """(B, WINDOW) samples in -1..1 -> (B, 1, S, S) pictures in 0..1 (the paper's scaling)."""
    img = hilbert.encode(np.clip(windows, -1.0, 1.0), layout)  # (B, S, S)
    return torch.from_numpy(np.ascontiguousarray((img + 1.0) * 0.5, dtype=np.float32)).unsqueeze(1)


def from_pictures(img: torch.Tensor, layout: str) -> np.ndarray:
    """(B, 1, S, S) pictures in 0..1 -> (B, WINDOW) samples in -1..1."""
    return hilbert.decode(img.detach().squeeze(1).numpy().astype(np.float32) * 2.0 - 1.0, layout)


FADE = 512  # samples two neighbouring windows share (a raised-cosine crossfade, 32 ms at 16 kHz)


def restyle(
    model: HilbertAutoencoder,
    audio: np.ndarray,
    *,
    batch: int = 4,
    cancelled: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``audio`` (mono, the model's sample rate, -1..1) through the autoencoder; same length, its
    peak at most the input's.

    Each window is restyled as the network was trained: its output's mean removed and scaled to
    the input window's peak (no level is imposed on the whole afterwards: a network may put its
    window's peak in a few edge samples, and the level of the rest follows from it, as in
    training). Windows follow each other end to end, sharing only :data:`FADE` samples of
    raised-cosine crossfade (which also fades such edge samples out): a window's output need not
    keep the input's phase (the log-spectral loss does not ask for it), and where the same samples
    sit in two windows at different places on the curve (the Hilbert layout turns and mirrors its
    quadrants) their outputs differ in phase, so a wide overlap-add would cancel them.
    ``cancelled()`` is checked between batches (GenerationError("cancelled") when true).
    """
    x = np.asarray(audio, dtype=np.float32).ravel()
    n = len(x)
    if n == 0:
        return x.copy()
    win = model.config.window
    fade = min(FADE, win // 4)
    hop = win - fade
    count = max(1, math.ceil((n - fade) / hop))
    padded = np.zeros(count * hop + fade, dtype=np.float32)
    padded[:n] = x
    starts = np.arange(count) * hop
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)).astype(np.float32)  # 0 -> 1
    out = np.zeros_like(padded)
    model.eval()
    done = 0
    with torch.inference_mode():
        for b in range(0, count, batch):
            if cancelled is not None and cancelled():
                raise GenerationError("cancelled")
            idx = starts[b : b + batch]
            windows = np.stack([padded[s : s + win] for s in idx])
            restyled = from_pictures(model(to_pictures(windows, model.config.layout)), model.config.layout)
            restyled -= restyled.mean(axis=1, keepdims=True)  # the output's small offset
            peaks = np.abs(restyled).max(axis=1, keepdims=True)
            restyled *= np.abs(windows).max(axis=1, keepdims=True) / np.maximum(peaks, 1e-9)
            for s, r in zip(idx, restyled, strict=True):
                w = np.ones(win, dtype=np.float32)
                if s > 0:
                    w[:fade] = ramp
                if s + hop < count * hop:
                    w[-fade:] = ramp[::-1]
                out[s : s + win] += r * w
            done += len(idx)
            if progress is not None:
                progress(done, count)
    return out[:n].astype(np.float32)


# -- the log-spectral loss ---------------------------------------------------------------------------
LOSSES = ("mse", "lsd")


@lru_cache(maxsize=4)
def _sample_order(layout: str, window: int) -> np.ndarray:
    """For each sample of a window, its flat position in the picture (``decode`` as a gather)."""
    where = hilbert.encode(np.arange(window, dtype=np.int64), layout).ravel()  # position -> sample
    return np.argsort(where)


def pictures_to_samples(img: torch.Tensor, layout: str) -> torch.Tensor:
    """(B, 1, S, S) pictures in 0..1 -> (B, WINDOW) samples in -1..1, differentiably."""
    flat = img.reshape(img.shape[0], -1)
    return flat[:, torch.from_numpy(_sample_order(layout, flat.shape[1]))] * 2.0 - 1.0


def lsd_loss(out: torch.Tensor, target: torch.Tensor, peak: torch.Tensor | None = None) -> torch.Tensor:
    """The evaluation's log-spectral distance (:mod:`.metrics`: 512-sample Hann frames, hop 256,
    -80 dB floor), in torch, of ``out`` made as :func:`restyle` makes it (mean removed, scaled to
    ``peak``: the input window's, (B, 1); default the target's) against ``target``; both (B, T)
    samples. Mean over windows and frames, dB."""
    from musicgen_app.ml.audio.metrics import FLOOR_DB, FRAME, HOP

    out = out - out.mean(dim=1, keepdim=True)
    peak_t = target.abs().amax(dim=1, keepdim=True) if peak is None else peak
    out = out * (peak_t / out.abs().amax(dim=1, keepdim=True).clamp_min(1e-6))
    w = torch.from_numpy(np.hanning(FRAME).astype(np.float32))

    def db(x: torch.Tensor) -> torch.Tensor:
        frames = x.unfold(1, FRAME, HOP) * w  # (B, F, FRAME)
        power = torch.fft.rfft(frames, dim=-1).abs().square() / float(w.sum()) ** 2
        return 10.0 * torch.log10(power.clamp_min(10.0 ** (FLOOR_DB / 10.0)))

    diff = db(out) - db(target)
    return torch.sqrt(diff.square().mean(dim=-1) + 1e-6).mean()


# -- checkpoints -------------------------------------------------------------------------------------
@dataclass
class Restyler:
    """A loaded restyling model: its name, card and network (``restyle(audio)``)."""

    name: str
    card: dict
    path: Path
    network: HilbertAutoencoder

    @property
    def sample_rate(self) -> int:
        """The rate the model was trained at (input is resampled to it)."""
        return self.network.config.sample_rate

    @property
    def target(self) -> str:
        """The instrument it turns sound toward."""
        return str(self.card.get("target", "piano"))

    def restyle(
        self,
        audio: np.ndarray,
        *,
        cancelled: Callable[[], bool] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """See :func:`restyle`."""
        return restyle(self.network, audio, cancelled=cancelled, progress=progress)


def config_from_card(card: dict, name: str) -> RestyleConfig:
    """The network configuration of a card (CheckpointError when it is not sane)."""
    c = card.get("config")
    if not isinstance(c, dict):
        raise CheckpointError(f"model {name}: its card has no network configuration")
    try:
        return RestyleConfig(**{**c, "widths": tuple(c.get("widths", (16, 32, 64, 64)))})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"model {name}: its card's configuration is not usable ({exc})") from exc


def load_restyler(name: str, card: dict, path: Path) -> Restyler:
    """The registry's loader for ``"family": "audio-restyle"`` cards."""
    from musicgen_app.ml import checkpoint as ckpt

    config = config_from_card(card, name)
    net = HilbertAutoencoder(config)
    ckpt.load_into(net, ckpt.load_weights(path, card), name)
    net.eval()
    return Restyler(name, card, path, net)


def new_card(config: RestyleConfig, name: str) -> dict:
    """The card skeleton of a model (training fills data, training and metrics)."""
    residual = config.variant == "residual"
    return {
        "name": name,
        "family": FAMILY,
        "task": "restyle",
        "architecture": ARCHITECTURE,
        "seed_paper": "002",
        "target": "piano",
        "title": f"Style-transfer autoencoder on a {config.layout} layout (paper 002"
        + (", residual variant)" if residual else ")"),
        "description": (
            "Paper 002's style-transfer autoencoder (its Figure 9 table: 4x4 convolutions 16-32-64-64 "
            "with 2x2 max pooling, upsampling back through 32 and 16, a 3x3 convolution to one channel; "
            + (
                "ReLU inside; residual variant, not the paper's: each output sample is the input sample "
                "times 1 + tanh of that last convolution, which starts at zero, so the untrained "
                "network is the identity). "
                if residual
                else "ReLU inside, sigmoid out). "
            )
            + "65,536 samples of mono audio become a 256 x 256 picture "
            + (
                "along the paper's Hilbert curve (recursive quadrants, the bottom two mirrored)"
                if config.layout == "hilbert"
                else "row by row (the baseline layout, not the paper's)"
            )
            + ", scaled to 0..1. Trained toward piano renders (see training), so that other instruments "
            "come out closer to piano; restyling runs windows end to end (32 ms crossfades), each scaled "
            "to its input's peak."
        ),
        "config": {**asdict(config), "widths": list(config.widths)},
        "parameters": parameter_count(config),
    }


# -- training ----------------------------------------------------------------------------------------
def random_windows(
    tracks: list[np.ndarray], count: int, rng: np.random.Generator, window: int = WINDOW
) -> np.ndarray:
    """``count`` random windows from ``tracks`` (a track shorter than a window is zero-padded).
    A track may be (K, T): K aligned signals (a render and its piano render) cut at the same
    place; the result is then (count, K, window)."""
    lead = tracks[0].shape[:-1]
    out = np.zeros((count, *lead, window), dtype=np.float32)
    lengths = np.array([t.shape[-1] for t in tracks], dtype=np.float64)
    picks = rng.choice(len(tracks), size=count, p=lengths / lengths.sum())
    for row, k in enumerate(picks):
        t = tracks[k]
        start = int(rng.integers(0, max(1, t.shape[-1] - window + 1)))
        piece = t[..., start : start + window]
        out[row, ..., : piece.shape[-1]] = piece
    return out


def fixed_windows(tracks: list[np.ndarray], window: int = WINDOW) -> np.ndarray:
    """Every whole window (and each track's padded tail window) of ``tracks``: validation data
    ((K, T) tracks as in :func:`random_windows`)."""
    rows = []
    for t in tracks:
        for s in range(0, max(1, t.shape[-1]), window):
            w = np.zeros((*t.shape[:-1], window), dtype=np.float32)
            piece = t[..., s : s + window]
            w[..., : piece.shape[-1]] = piece
            rows.append(w)
    return np.stack(rows)


def revive_dead_channels(net: HilbertAutoencoder, windows: np.ndarray, seed: int = 0) -> dict[str, int]:
    """Give the network back the channels it lost: a ReLU channel that is zero on every sample of
    ``windows`` (a "dead" unit, left by a jump of Adam's loss) gets fresh incoming weights (He
    initialisation, a small positive bias) and zero outgoing weights, so the network computes the
    same output as before but training can use the channel again. Returns the count of revived
    channels per convolution (module name -> count). The architecture and the parameter count do
    not change."""
    convs = [(f"encoder.{i}", m) for i, m in enumerate(net.encoder) if isinstance(m, nn.Conv2d)]
    convs += [(f"decoder.{i}", m) for i, m in enumerate(net.decoder) if isinstance(m, nn.Conv2d)]
    outputs: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out))
        for name, m in convs[:-1]
    ]
    try:
        with torch.no_grad():
            alive = {name: torch.zeros(m.out_channels, dtype=torch.bool) for name, m in convs[:-1]}
            for b in range(0, len(windows), 4):
                net(to_pictures(windows[b : b + 4], net.config.layout))
                for name in alive:
                    alive[name] |= (outputs[name] > 0).flatten(2).any(dim=2).any(dim=0)
    finally:
        for h in hooks:
            h.remove()
    gen = torch.Generator().manual_seed(seed)
    revived: dict[str, int] = {}
    with torch.no_grad():
        for (name, conv), (_next_name, following) in itertools.pairwise(convs):
            dead = (~alive[name]).nonzero().flatten()
            revived[name] = len(dead)
            if not len(dead):
                continue
            fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
            shape = (len(dead), *conv.weight.shape[1:])
            conv.weight[dead] = torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)
            if conv.bias is not None:
                conv.bias[dead] = 0.01
            following.weight[:, dead] = 0.0
    return revived


AUGMENTATIONS = ("eq", "sustain", "envelope", "distortion", "noise")


def augment_windows(
    windows: np.ndarray, rng: np.random.Generator, *, p: float = 0.5, sample_rate: int = 16000
) -> np.ndarray:
    """Piano windows made less piano-like by generic, instrument-agnostic changes, each applied to a
    window with probability ``p``: a random EQ (a spectral tilt of up to +-9 dB over the band and
    two bells of up to +-8 dB), added sustain (a short synthetic reverb tail, 0.1 to 0.6 s, mixed in
    at 20 to 70%), a slow random gain envelope (swells and dips of up to +-6 dB every 50 to 400 ms),
    soft distortion (``tanh``: added harmonics) and a little white noise (50 to 70 dB below the
    peak). Each result is scaled back to its window's peak. The training pairs (altered -> clean
    piano) stay piano sound only: no other instrument's render is used."""
    x = np.asarray(windows, dtype=np.float64)
    out = np.empty_like(x)
    n = x.shape[1]
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    logf = np.log2(np.maximum(freqs, 30.0) / 30.0) / np.log2(sample_rate / 2 / 30.0)  # 0..1
    t = np.arange(n) / sample_rate
    for row, w in enumerate(x):
        peak = float(np.abs(w).max())
        y = w.copy()
        if rng.random() < p:  # EQ: tilt and two bells, smooth over log frequency
            gain_db = rng.uniform(-9, 9) * (logf - 0.5)
            for _ in range(2):
                centre, width = rng.uniform(0.1, 0.9), rng.uniform(0.03, 0.15)
                gain_db += rng.uniform(-8, 8) * np.exp(-0.5 * ((logf - centre) / width) ** 2)
            y = np.fft.irfft(np.fft.rfft(y) * 10 ** (gain_db / 20), n)
        if rng.random() < p:  # sustain: convolve with a decaying noise tail
            length = int(rng.uniform(0.1, 0.6) * sample_rate)
            tail = rng.standard_normal(length) * np.exp(-6.9 * np.arange(length) / length)
            tail /= np.sqrt(np.sum(tail**2))
            wet = np.fft.irfft(np.fft.rfft(y, 2 * n) * np.fft.rfft(tail, 2 * n), 2 * n)[:n]
            mix = rng.uniform(0.2, 0.7)
            y = (1 - mix) * y + mix * wet * (np.abs(y).max() / max(float(np.abs(wet).max()), 1e-9))
        if rng.random() < p:  # envelope: a slow random gain curve
            step = int(rng.uniform(0.05, 0.4) * sample_rate)
            knots = rng.uniform(-6, 6, n // step + 2)
            y = y * 10 ** (np.interp(t, np.arange(len(knots)) * step / sample_rate, knots) / 20)
        if rng.random() < p:  # distortion: added harmonics
            g = rng.uniform(1.0, 6.0) / max(float(np.abs(y).max()), 1e-9)
            y = np.tanh(g * y)
        if rng.random() < p:  # noise
            y = y + rng.standard_normal(n) * float(np.abs(y).max()) * 10 ** (-rng.uniform(50, 70) / 20)
        out[row] = y * (peak / max(float(np.abs(y).max()), 1e-12))
    return out.astype(np.float32)


@dataclass
class TrainReport:
    """What training did: steps, seconds, the best validation loss and the loss history."""

    steps: int
    seconds: float
    best_val_mse: float
    history: list[tuple[int, float, float]]  # (step, train mse, validation mse)


def train_autoencoder(
    config: RestyleConfig,
    train: list[np.ndarray],
    val: list[np.ndarray],
    *,
    seconds: float,
    batch: int = 8,
    lr: float = 1e-3,
    seed: int = 2002,
    eval_every: int = 50,
    log: Callable[[str], None] | None = None,
    start: HilbertAutoencoder | None = None,
    loss: str = "mse",
    augment: bool = False,
    revive: bool = False,
    pairs: list[np.ndarray] | None = None,
    val_pairs: list[np.ndarray] | None = None,
    paired_share: float = 0.5,
) -> tuple[HilbertAutoencoder, TrainReport]:
    """Train on random piano windows for ``seconds`` of wall time (Adam). ``loss``: ``"mse"`` on the
    0..1 pictures (the paper's), or ``"lsd"``: the evaluation's log-spectral distance between the
    decoded output (mean removed, scaled to the input window's peak, as restyling does) and the
    target window.
    ``augment``: denoising training: the network sees :func:`augment_windows` of each piano window
    and is scored against the clean window (validation too, with a fixed draw of changes).
    ``revive``: before training, :func:`revive_dead_channels` of ``start`` on the training windows.
    ``pairs`` (not the paper's recipe, which sees piano only): (2, T) arrays, another instrument's
    render of a piece over its piano render, sample-aligned; ``paired_share`` of each batch is
    cut from them (input: the other instrument, target: piano), the rest is piano as above.
    ``val_pairs`` join the validation windows the same way.

    It runs through the one training loop (:func:`musicgen_app.ml.training.train`, validating
    every ``eval_every`` steps). Paper 002 saw Adam's loss jump up suddenly and kept its best model;
    we keep the weights with the best validation loss, clip gradients, and after a jump go back to
    the best weights and halve the learning rate (``TrainConfig.jump``). ``start``:
    go on from these weights (a second run). Returns the best network and a report (its
    ``best_val_mse`` holds the validation value of ``loss``)."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r} (choose from {', '.join(LOSSES)})")
    if not 0.0 <= paired_share <= 1.0:
        raise ValueError("paired_share must be from 0 to 1")
    from musicgen_app.ml.training import TrainConfig
    from musicgen_app.ml.training import train as train_loop

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = HilbertAutoencoder(config)
    if start is not None:
        net.load_state_dict(start.state_dict())
    if revive:
        counts = revive_dead_channels(net, random_windows(train, 32, np.random.default_rng(seed)), seed)
        if log is not None:
            log(f"revived dead channels: {counts}")
    n_paired = round(batch * paired_share) if pairs else 0

    def altered(windows: np.ndarray, gen: np.random.Generator) -> np.ndarray:
        return augment_windows(windows, gen, sample_rate=config.sample_rate) if augment else windows

    val_targets = fixed_windows(val, config.window)
    val_sources = altered(val_targets, np.random.default_rng(seed))
    if val_pairs:
        both = fixed_windows(val_pairs, config.window)  # (N, 2, window)
        val_sources = np.concatenate([val_sources, both[:, 0]])
        val_targets = np.concatenate([val_targets, both[:, 1]])
    val_set = _prepared(val_sources, val_targets, config.layout)

    def objective(out: torch.Tensor, b: tuple) -> torch.Tensor:
        _inputs, pics, windows, peaks = b
        if loss == "mse":
            return nn.functional.mse_loss(out, pics)
        return lsd_loss(pictures_to_samples(out, config.layout), windows, peaks)

    def validate(model: nn.Module) -> tuple[float, float, dict[str, float]]:
        with torch.no_grad():
            parts = []
            for b in range(0, len(val_set[0]), 8):
                part = tuple(t[b : b + 8] for t in val_set)
                parts.append((float(objective(model(part[0]), part)), len(part[0])))
        return sum(v * n for v, n in parts), float(sum(n for _, n in parts)), {}

    def windows_batch(_g: torch.Generator) -> tuple[torch.Tensor, ...]:
        targets = random_windows(train, batch - n_paired, rng, config.window)
        sources = altered(targets, rng)
        if n_paired:
            both = random_windows(pairs or [], n_paired, rng, config.window)
            sources = np.concatenate([sources, both[:, 0]])
            targets = np.concatenate([targets, both[:, 1]])
        return _prepared(sources, targets, config.layout)

    def step_loss(model: nn.Module, b: tuple) -> tuple[torch.Tensor, int]:
        return objective(model(b[0]), b), 1

    def on_event(ev: dict) -> None:
        if log is not None and ev.get("event") == "epoch":
            log(f"step {ev['step']} ({ev['minutes'] * 60:.0f} s): train {loss} {ev['train_nll']:.6f}, "
                f"val {loss} {ev['val_nll']:.6f}")  # fmt: skip

    cfg = TrainConfig(minutes=seconds / 60, lr=lr, clip=1.0, eval_every=eval_every, patience=10**9, seed=seed,
                      schedule="constant", jump=2.0, digits=7, unit=loss)  # fmt: skip
    # going on from ``start``: its weights stay the best until an epoch beats them
    previous: dict | None = {"history": []} if start is not None else None
    res = train_loop(net, step_loss, windows_batch, validate, cfg, on_event=on_event, previous=previous)
    history = [(int(r["step"]), round(r["train_nll"], 7), round(r["val_nll"], 7)) for r in res.history]
    return net, TrainReport(res.steps, res.seconds, round(res.best_valid_nll, 7), history)


def _prepared(sources: np.ndarray, targets: np.ndarray, layout: str) -> tuple[torch.Tensor, ...]:
    """A batch: input pictures, target pictures, target samples and the inputs' peaks (B, 1)."""
    peaks = np.abs(sources).max(axis=1, keepdims=True)
    return (
        to_pictures(sources, layout),
        to_pictures(targets, layout),
        torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32)),
        torch.from_numpy(peaks.astype(np.float32)),
    )


def _copy(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: t.detach().clone() for k, t in net.state_dict().items()}


def save_restyler(net: HilbertAutoencoder, card: dict, name_or_path: str | Path) -> Path:
    """Write the weights (float32: 0.6 MB) and ``card`` as ``models/NAME.*``; returns the weights path."""
    from musicgen_app.ml import checkpoint as ckpt
    from musicgen_app.ml.families.checkpoint import model_path

    return ckpt.save_checkpoint(net.state_dict(), card, model_path(name_or_path), half=False)


def as_restyler(model: object, name: str) -> Restyler:
    """``model`` (from the registry) if it restyles audio; CheckpointError naming it otherwise."""
    if not isinstance(model, Restyler):
        raise CheckpointError(f"model {name} generates music; it does not restyle audio")
    return model


# -- evaluation --------------------------------------------------------------------------------------
SOURCE_INSTRUMENTS = ("guitar", "strings", "organ")


def evaluate_restyler(
    model: Restyler,
    ds: AudioDataset,
    *,
    split: str = "test",
    limit: int | None = None,
    instruments: tuple[str, ...] = SOURCE_INSTRUMENTS,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Restyle every held-out piece's guitar, strings and organ render and compare it with the
    piano render of the same piece: log-spectral distance (dB) of the input and of the restyled
    audio to the piano render. ``closer_fraction``: the share of (piece, instrument) pairs where
    the restyled audio is closer than the input; ``pieces_closer_on_most_instruments_fraction``: the share
    of pieces where it is closer for most of their instruments."""
    from musicgen_app.ml.audio.metrics import FLOOR_DB, log_spectral_distance

    pieces = ds.split(split)[:limit]
    rows = []
    t0 = time.monotonic()
    for n, i in enumerate(pieces):
        target = ds.audio(model.target, i)
        recon = log_spectral_distance(model.restyle(target), target)
        for inst in instruments:
            src = ds.audio(inst, i)
            out = model.restyle(src)
            rows.append(
                {
                    "piece": ds.pieces[i]["id"],
                    "instrument": inst,
                    "input": log_spectral_distance(src, target),
                    "restyled": log_spectral_distance(out, target),
                    "input_low": log_spectral_distance(src, target, band=0.5),
                    "restyled_low": log_spectral_distance(out, target, band=0.5),
                }
            )
        rows[-1]["piano_reconstruction"] = recon
        if log is not None:
            log(f"{model.name}: {n + 1}/{len(pieces)} pieces ({time.monotonic() - t0:.0f} s)")
    if not rows:
        raise GenerationError(f"no {split} pieces to evaluate on")
    summary = _summary(rows)
    return {
        "metric": f"log-spectral distance to the piano render, dB (512-sample Hann frames, hop 256, "
        f"{FLOOR_DB:g} dB floor); low_band_*: the same over the lower half of the band only "
        f"(0 to {model.sample_rate // 4} Hz)",
        "layout": model.network.config.layout,
        "variant": model.network.config.variant,
        "split": split,
        "pieces": len(pieces),
        "comparisons": len(rows),
        **summary,
        "pieces_closer_on_most_instruments_fraction": round(
            float(
                np.mean(
                    [
                        np.mean([r["restyled"] < r["input"] for r in rows if r["piece"] == p]) > 0.5
                        for p in {r["piece"] for r in rows}
                    ]
                )
            ),
            4,
        ),
        "lsd_piano_reconstruction_mean": round(
            float(np.mean([r["piano_reconstruction"] for r in rows if "piano_reconstruction" in r])), 3
        ),
        "by_instrument": {
            inst: _summary([r for r in rows if r["instrument"] == inst]) for inst in instruments
        },
        "eval_seconds": round(time.monotonic() - t0, 1),
    }


def _summary(rows: list[dict]) -> dict:
    """Share of rows where the restyled audio is closer, and both mean distances (full band, and
    the lower half of the band: up to 4 kHz at 16 kHz)."""
    return {
        "closer_fraction": round(float(np.mean([r["restyled"] < r["input"] for r in rows])), 4),
        "lsd_input_mean": round(float(np.mean([r["input"] for r in rows])), 3),
        "lsd_restyled_mean": round(float(np.mean([r["restyled"] for r in rows])), 3),
        "low_band_closer_fraction": round(
            float(np.mean([r["restyled_low"] < r["input_low"] for r in rows])), 4
        ),
        "low_band_lsd_input_mean": round(float(np.mean([r["input_low"] for r in rows])), 3),
        "low_band_lsd_restyled_mean": round(float(np.mean([r["restyled_low"] for r in rows])), 3),
    }


def store_metrics(model: Restyler, metrics: dict) -> None:
    """Write ``metrics`` into the model's card (the weights and their digest stay as they are)."""
    import json

    from musicgen_app.ml import checkpoint as ckpt

    cpath = ckpt.card_path(model.path)
    card = json.loads(cpath.read_text())
    weights = card.pop("weights", None)
    card["metrics"] = metrics
    if weights is not None:
        card["weights"] = weights  # last, where saving and `musicgen models --rehash` put it
    tmp = cpath.with_name(cpath.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=1) + "\n")
    tmp.replace(cpath)
