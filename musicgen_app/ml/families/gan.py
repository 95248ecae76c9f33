"""Paper 002's GAN, made to stream: a bar-conditional WGAN-GP over piano-roll bars (after MidiNet).

Paper 002 trains a plain GAN, a DCGAN and a WGAN-GP on whole 88 x 200 piano-roll images and finds
only the WGAN-GP makes music-like output. A whole image cannot continue a sketch or stream, so, as
MidiNet (Yang et al. 2017) did, the generator writes one *bar* at a time, conditioned on the bar
before it:

* a bar is 16 sixteenth frames x 64 keys (MIDI 28..91, which covers the chorales under their
  transposition augmentation) x 2 channels: *onset* (a note starts) and *sustain* (it goes on),
  the three-state roll of :mod:`musicgen_app.ml.families.pianoroll` as two bit planes;
* a **conditioner** CNN reads the previous 16 frames, where the bar lines and beats fall in the
  new window, and the pitch-class profile of the 8 bars before it (MidiNet's 1-D condition was the
  chord; ours is the key, which one bar of a melody often leaves open); its feature maps at every
  resolution are concatenated into the generator's layers (MidiNet's 2-D conditioning);
* the **generator** G(z, previous bar) upsamples a 32-d noise vector through transposed
  convolutions to sigmoid onset/sustain probabilities;
* the **critic** D(bar, previous bar) is a plain CNN without normalisation, trained with the
  Wasserstein loss and gradient penalty (WGAN-GP, lambda 10, 5 critic steps per generator step).
  The critic sees the generator's bars *sampled* cell by cell from its probabilities
  (straight-through gradients, BinaryMuseGAN's stochastic binary neurons), and the generator's
  loss adds the cross-entropy of its probabilities to the real bar (as pix2pix adds L1 to its
  conditional GAN). The first generator, trained against bars cut at 0.5 and without that term,
  parked every cell just under 0.5 and a few just above, whatever z said: on a single line it
  looped one bar with two or three pitches (18% of held-out folk continuations passed the judge).
  Only the generator and its conditioner are shipped.

Streaming: from the 16 frames before the continuation, one window of 16 frames is generated in
one forward pass, its cells drawn from the probabilities (log-odds divided by the temperature,
which also scales the noise; near 0 the cells are cut at 0.5 and every seed gives the same take),
and walked frame by frame; a note is emitted in the frame where its key stops, as in the frame
LSTM. On a single-line sketch each frame is decided jointly, as a line: whether a note starts,
then which key, in proportion to its onset probability times Temperley's range profile around the
sketch's central pitch (:func:`range_profile`). The key lock and the sketch's register
(+- an octave) mask onsets before drawing. A GAN has no likelihood: evaluation compares
statistics of its continuations of held-out chorales with the real ones and with baselines
(:func:`chorale_continuation_stats`), and the judge (:mod:`musicgen_app.ml.judge`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from musicgen_app.ml.families import pianoroll as pr
from musicgen_app.ml.families.chorales import Chorale
from musicgen_app.ml.families.common import SeedContext, StepNote, StreamEngine
from musicgen_app.ml.sampling import ChordGuide, SamplingConfig, VarietyGuard, random_seed, require_finite

logger = logging.getLogger(__name__)

ARCH_GAN = "pianoroll-gan"
LOW, PITCHES = 28, 64  # MIDI 28..91
FRAMES = 16  # one bar of 4/4 in 16ths: the generated window
PHASE = 2  # bar-line and beat planes of the generated window
PROFILE_STEPS = 128  # the pitch-class profile is read over the last 8 bars of 4/4 before the window
COND = 2 + PHASE + 1  # conditioner input planes: previous bar (2), phase (2), pitch-class profile (1)
SILENT, ONSET, SUSTAIN = pr.SILENT, pr.ONSET, pr.SUSTAIN


# -- networks ------------------------------------------------------------------------------------------
@dataclass
class GanConfig:
    """Architecture arguments (stored in the card)."""

    z_dim: int = 32
    width: int = 128  # channels of every layer


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2)


def _keys_as_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, P) planes -> (B, C * P, T): the pitch axis becomes channels (MidiNet's first layer
    spans all keys at once; convolutions then run over time only)."""
    B, C, T, P = x.shape
    return x.permute(0, 1, 3, 2).reshape(B, C * P, T)


def _split_cond(cond_in: torch.Tensor) -> torch.Tensor:
    """(B, COND, 16, P) conditioner input -> (B, 3P + PHASE, 16): previous bar's keys, the new
    window's bar-line and beat rows (constant over pitch, so one column is enough) and the
    pitch-class profile of each key (constant over time)."""
    return torch.cat(
        [
            _keys_as_channels(cond_in[:, :2]),
            cond_in[:, 2 : 2 + PHASE, :, 0],
            _keys_as_channels(cond_in[:, 2 + PHASE :]),
        ],
        1,
    )


class Conditioner(nn.Module):
    """MidiNet's conditioner CNN over the previous bar (and the new window's bar/beat rows)."""

    def __init__(self, w: int) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(3 * PITCHES + PHASE, w, 3, padding=1)  # -> (w, 16)
        self.c2 = nn.Conv1d(w, w, 4, stride=2, padding=1)  # -> (w, 8)
        self.c3 = nn.Conv1d(w, w, 4, stride=2, padding=1)  # -> (w, 4)
        self.c4 = nn.Conv1d(w, w, 4)  # -> (w, 1)
        self.act = _lrelu()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of ``x`` (B, 3P + PHASE, 16), finest first."""
        h1 = self.act(self.c1(x))  # (B, w, 16)
        h2 = self.act(self.c2(h1))  # (B, w, 8)
        h3 = self.act(self.c3(h2))  # (B, w, 4)
        h4 = self.act(self.c4(h3))  # (B, w, 1)
        return [x, h1, h2, h3, h4]


class BarGenerator(nn.Module):
    """G(z, previous bar): onset and sustain probabilities (B, 2, 16, 64) of the next window."""

    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.cond = Conditioner(w)
        self.fc = nn.Linear(cfg.z_dim + w, w * 4)
        self.u1 = nn.ConvTranspose1d(2 * w, w, 4, stride=2, padding=1)  # (4) -> (8)
        self.u2 = nn.ConvTranspose1d(2 * w, w, 4, stride=2, padding=1)  # (8) -> (16)
        self.u3 = nn.Conv1d(2 * w, w, 3, padding=1)  # (16)
        self.out = nn.Conv1d(w + 3 * PITCHES + PHASE, 2 * PITCHES, 1)  # every key from every channel
        self.act = nn.ReLU()

    def forward(self, z: torch.Tensor, cond_in: torch.Tensor) -> torch.Tensor:
        """``z`` (B, z_dim), ``cond_in`` (B, COND, 16, 64) -> probabilities (B, 2, 16, 64)."""
        x, h1, h2, h3, h4 = self.cond(_split_cond(cond_in))
        B, w = z.shape[0], self.cfg.width
        g = self.act(self.fc(torch.cat([z, h4.flatten(1)], 1))).view(B, w, 4)  # (B, w, 4)
        g = self.act(self.u1(torch.cat([g, h3], 1)))  # (B, w, 8)
        g = self.act(self.u2(torch.cat([g, h2], 1)))  # (B, w, 16)
        g = self.act(self.u3(torch.cat([g, h1], 1)))  # (B, w, 16)
        y = torch.sigmoid(self.out(torch.cat([g, x], 1)))  # (B, 2P, 16)
        return y.view(B, 2, PITCHES, FRAMES).transpose(2, 3)  # (B, 2, 16, 64)


class BarCritic(nn.Module):
    """D(bar, previous bar): an unbounded score (WGAN critic; no batch norm, as WGAN-GP asks)."""

    def __init__(self, w: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(5 * PITCHES + PHASE, w, 3, padding=1),  # (w, 16)
            _lrelu(),
            nn.Conv1d(w, w, 4, stride=2, padding=1),  # (w, 8)
            _lrelu(),
            nn.Conv1d(w, 2 * w, 4, stride=2, padding=1),  # (2w, 4)
            _lrelu(),
            nn.Flatten(),
            nn.Linear(2 * w * 4, 1),
        )

    def forward(self, bar: torch.Tensor, cond_in: torch.Tensor) -> torch.Tensor:
        """``bar`` (B, 2, 16, 64), ``cond_in`` (B, COND, 16, 64) -> (B,)."""
        return self.net(torch.cat([_keys_as_channels(bar), _split_cond(cond_in)], 1)).squeeze(1)


# -- bars ------------------------------------------------------------------------------------------------
def planes(states: np.ndarray) -> np.ndarray:
    """(2, T, P) float32 onset and sustain bit planes of a (T, P) state roll."""
    return np.stack([states == ONSET, states == SUSTAIN]).astype(np.float32)


def phase_planes(first_step: int, bar_offset: int, bar_steps: int) -> np.ndarray:
    """(PHASE, 16, P) planes marking the bar lines and the beats (every 4 16ths) of a window."""
    pos = (np.arange(first_step, first_step + FRAMES) - bar_offset) % max(1, bar_steps)  # (16,)
    rows = np.stack([pos == 0, pos % 4 == 0]).astype(np.float32)  # (2, 16)
    return np.repeat(rows[:, :, None], PITCHES, axis=2)


def profile_plane(pc_weight: np.ndarray) -> np.ndarray:
    """(1, 16, P): each key's pitch-class weight (12 weights, scaled to a maximum of 1), over time.

    MidiNet's 1-D condition was the chord; ours is the key the sketch implies, which a single
    previous bar of a melody often leaves open."""
    w = pc_weight / max(1e-9, float(pc_weight.max()))
    row = w[(LOW + np.arange(PITCHES)) % 12].astype(np.float32)  # (P,)
    return np.broadcast_to(row, (1, FRAMES, PITCHES)).copy()


def window_of(notes: list[tuple[int, int, int]], first_step: int) -> np.ndarray:
    """(16, 64) states of ``(start, length, pitch)`` notes in the window starting at ``first_step``."""
    roll = pr.roll_of(notes, FRAMES, first_step)  # (16, 88) from MIDI 21
    return roll[:, LOW - pr.LOW : LOW - pr.LOW + PITCHES]


# -- training data ----------------------------------------------------------------------------------------
class BarData:
    """Per-voice rolls of every piece, kept once, cut into (previous window, window) pairs.

    ``pieces``: chorales, or ``{corpus: pieces}`` (each window's corpus drawn by its
    :data:`pianoroll.MIX` weight; single-line tunes have one voice)."""

    PAD = FRAMES  # silent frames before each piece: the first bar is conditioned on silence

    def __init__(self, pieces: list[Chorale] | dict[str, list[Chorale]]) -> None:
        groups = pieces if isinstance(pieces, dict) else {"chorales": pieces}
        self.groups: list[list[tuple[Chorale, np.ndarray]]] = []
        weights = []
        for corpus, group in groups.items():
            items = []
            for ch in group:
                T = ch.length_steps
                n_voices = 1 + max(v for *_, v in ch.notes)
                rows = [[(s, d, p) for s, d, p, v in ch.notes if v == voice] for voice in range(n_voices)]
                voices = np.stack([pr.roll_of(r, T + self.PAD, -self.PAD) for r in rows])  # (V, PAD + T, 88)
                items.append((ch, voices))
            if items:
                self.groups.append(items)
                weights.append(pr.MIX.get(corpus, 1.0))
        self.weights = np.array(weights) / sum(weights)

    def sample(self, n: int, rng: np.random.Generator, augment: bool = True) -> tuple[torch.Tensor, ...]:
        """(real windows (n, 2, 16, 64), conditioner inputs (n, COND, 16, 64))."""
        bars, conds = [], []
        for _ in range(n):
            group = self.groups[int(rng.choice(len(self.groups), p=self.weights))]
            ch, voices = group[int(rng.integers(len(group)))]
            T = voices.shape[1] - self.PAD
            if rng.random() < 0.75:  # mostly bar-aligned windows (a bar line at frame 0), as sketches end
                first = ch.bar_offset + ch.bar_steps * int(rng.integers(0, max(1, T // ch.bar_steps)))
                first = min(first, max(0, T - FRAMES))
            else:
                first = int(rng.integers(0, max(1, T - FRAMES)))
            keep = list(range(len(voices)))
            shift = 0
            if augment and len(voices) == 4:
                shift = int(rng.integers(-6, 6))
                r = rng.random()  # as the frame LSTM: all voices, the soprano alone, or some voices
                keep = (
                    [0, 1, 2, 3]
                    if r < 0.5
                    else [0]
                    if r < 0.7
                    else [0] + [v for v in (1, 2, 3) if rng.random() < 0.5]
                )
            elif augment:
                shift = int(rng.integers(-6, 6))
            lo = LOW - pr.LOW - shift  # index in the 88-key roll of the window's lowest key
            a = first + self.PAD
            sub = voices[keep, a - FRAMES : a + FRAMES, lo : lo + PITCHES]  # (V, 32, 64)
            # voices merge key by key: an onset in any voice is an onset, else a sustain sustains
            merged = np.where(
                (sub == ONSET).any(0), ONSET, np.where((sub == SUSTAIN).any(0), SUSTAIN, SILENT)
            )
            prev, cur = merged[:FRAMES], merged[FRAMES:]
            # the pitch-class profile: sounding frames of each key over the 8 bars before the window
            held = (voices[keep, max(0, a - PROFILE_STEPS) : a] > 0).sum(axis=(0, 1))  # (88,)
            pcw = np.bincount((pr.LOW + np.arange(pr.KEYS) + shift) % 12, weights=held, minlength=12)
            bars.append(planes(cur))
            conds.append(
                np.concatenate(
                    [planes(prev), phase_planes(first, ch.bar_offset, ch.bar_steps), profile_plane(pcw)]
                )
            )
        return torch.from_numpy(np.stack(bars)), torch.from_numpy(np.stack(conds))


# -- training ----------------------------------------------------------------------------------------------
@dataclass
class GanTrainConfig:
    """WGAN-GP settings (paper 002's working variant; Gulrajani et al.'s defaults)."""

    minutes: float = 25.0
    batch: int = 32
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    n_critic: int = 5
    gp_lambda: float = 10.0
    log_every: int = 100
    seed: int = 0
    critic_warmup: int = (
        0  # critic steps before the first generator step (a fresh critic, a trained generator)
    )
    max_steps: int = 0  # > 0: stop after this many generator steps (smoke runs, the contract test)
    bce_weight: float = 100.0  # the reconstruction term (pix2pix's L1 + GAN; ours cross-entropy)


def binarize(probs: torch.Tensor) -> torch.Tensor:
    """0/1 bars drawn cell by cell from ``probs`` in the forward pass, with the sigmoid's gradient
    in the backward pass (a straight-through *stochastic* binary neuron, BinaryMuseGAN's other
    variant): the critic sees bars sampled as streaming samples them. The deterministic variant
    (cut at 0.5) taught our first generator to park every cell just under 0.5 and put a few just
    above it, whatever z said: probabilities with no meaning, and the same bar over and over."""
    hard = (torch.rand_like(probs) < probs).to(probs.dtype)
    return hard + probs - probs.detach()


def reconstruction(probs: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the generated probabilities against the real bar (per cell)."""
    return nn.functional.binary_cross_entropy(probs.clamp(1e-6, 1 - 1e-6), real)


def gradient_penalty(
    critic: BarCritic, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor
) -> torch.Tensor:
    """Mean (||grad D(x_hat)|| - 1)^2 on random points between real and generated bars."""
    eps = torch.rand(real.shape[0], 1, 1, 1)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)  # (B, 2, 16, 64)
    (grad,) = torch.autograd.grad(critic(x, cond).sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def bar_stats(bars: torch.Tensor) -> dict[str, float]:
    """Onsets per bar and fraction of onsets that are in the bar's most used 7 pitch classes."""
    b = (bars > 0.5).float()
    onsets = b[:, 0].sum(dim=(1, 2))  # (B,)
    pcs = torch.zeros(b.shape[0], 12)
    for k in range(PITCHES):
        pcs[:, (LOW + k) % 12] += b[:, 0, :, k].sum(1)
    top7 = pcs.sort(dim=1, descending=True).values[:, :7].sum(1)
    return {
        "onsets": round(float(onsets.mean()), 2),
        "top7_pc": round(float((top7 / onsets.clamp(min=1)).mean()), 3),
    }


class Adversarial:
    """WGAN-GP as parts of the one training loop (:func:`musicgen_app.ml.training.train`): the
    critic and its ``n_critic`` steps before every generator step (``critic_steps``, the loop's
    ``before_step``; ``critic_warmup`` more before the first), the generator's batches and loss
    (the critic's score of its binarized bars plus ``bce_weight`` x cross-entropy to the real bar),
    and the validation on held-out conditions: the generator's loss there, with the critic's
    Wasserstein estimates, the gradient penalty and the generated bars' statistics as figures."""

    def __init__(
        self, gen: BarGenerator, train: BarData, valid: BarData, cfg: GanTrainConfig,
        rng: np.random.Generator, n_valid: int = 256,
    ) -> None:  # fmt: skip
        self.gen, self.train, self.cfg, self.rng = gen, train, cfg, rng
        self.critic = BarCritic(gen.cfg.width)
        self.opt_d = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.warmup = cfg.critic_warmup
        self.vreal, self.vcond = valid.sample(n_valid, np.random.default_rng(7), augment=False)
        self.vz = torch.randn(n_valid, gen.cfg.z_dim, generator=torch.Generator().manual_seed(7))
        self._sums = [0.0, 0.0, 0.0, 0]  # critic W estimate, gradient penalty, reconstruction, steps

    def critic_steps(self, _g: torch.Generator) -> None:
        """The critic's steps before a generator step."""
        cfg = self.cfg
        for _ in range(cfg.n_critic + self.warmup):
            real, cond = self.train.sample(cfg.batch, self.rng)
            with torch.no_grad():
                fake = binarize(self.gen(torch.randn(cfg.batch, self.gen.cfg.z_dim), cond))
            wdist = self.critic(real, cond).mean() - self.critic(fake, cond).mean()
            gp = gradient_penalty(self.critic, real, fake, cond)
            loss_d = -wdist + cfg.gp_lambda * gp
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        self.warmup = 0
        self._sums[0] += float(wdist.detach())
        self._sums[1] += float(gp.detach())

    def batch(self, _g: torch.Generator) -> tuple[torch.Tensor, ...]:
        """Real bars and their conditions."""
        return self.train.sample(self.cfg.batch, self.rng)

    def g_loss(self, net: nn.Module, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, int]:
        """The generator's summed loss over the batch, and the batch size."""
        real, cond = batch
        probs = net(torch.randn(len(cond), self.gen.cfg.z_dim), cond)
        rec = reconstruction(probs, real)
        if net.training:
            self._sums[2] += float(rec.detach())
            self._sums[3] += 1
        loss = -self.critic(binarize(probs), cond).mean() + self.cfg.bce_weight * rec
        return loss * len(cond), len(cond)

    def validate(self, net: nn.Module) -> tuple[float, float, dict[str, float]]:
        """The generator's loss on the held-out conditions, and the figures since the last call."""
        net.eval()
        with torch.no_grad():
            vprobs = net(self.vz, self.vcond)
            vfake = binarize(vprobs)
            score = float(self.critic(vfake, self.vcond).mean())
            vw = float(self.critic(self.vreal, self.vcond).mean()) - score
            vrec = float(reconstruction(vprobs, self.vreal))
        n = max(1, self._sums[3])
        figures = {"critic_wdist": self._sums[0] / n, "gp": self._sums[1] / n, "bce": self._sums[2] / n,
                   "valid_bce": vrec, "valid_wdist": vw,
                   **{f"gen_{k}": float(v) for k, v in bar_stats(vfake).items()}}  # fmt: skip
        self._sums = [0.0, 0.0, 0.0, 0]
        return -score + self.cfg.bce_weight * vrec, 1.0, figures


def train_gan(gen: BarGenerator, train: BarData, valid: BarData, cfg: GanTrainConfig) -> dict:
    """WGAN-GP training of ``gen`` within ``cfg.minutes`` through the one training loop (the
    critic's steps before every generator step); returns the record for the card."""
    from musicgen_app.ml.training import TrainConfig
    from musicgen_app.ml.training import train as train_loop

    torch.manual_seed(cfg.seed)
    adv = Adversarial(gen, train, valid, cfg, np.random.default_rng(cfg.seed))
    loop = TrainConfig(minutes=cfg.minutes, lr=cfg.lr, betas=cfg.betas, clip=1e9, eval_every=cfg.log_every,
                       patience=10**9, seed=cfg.seed, max_steps=cfg.max_steps, schedule="constant",
                       threads=torch.get_num_threads())  # fmt: skip
    res = train_loop(gen, adv.g_loss, adv.batch, adv.validate, loop, before_step=adv.critic_steps)
    return {
        "generator_steps": res.steps,
        "critic_steps": res.steps * cfg.n_critic,
        "seconds": res.seconds,
        "threads": torch.get_num_threads(),
        "settings": {k: v for k, v in asdict(cfg).items() if k != "minutes"},
        "real_valid_bars": bar_stats(adv.vreal),
        "best_step": next((r["step"] for r in res.history if r["epoch"] == res.best_epoch), res.steps),
        "history": res.history,
    }


def plot_curves(history: list[dict], path: str) -> None:
    """The critic's Wasserstein estimate and the generated bars' statistics over training (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=80)
    a.plot(steps, [h["critic_wdist"] for h in history], label="critic W estimate (train)")
    a.plot(steps, [h["valid_wdist"] for h in history], label="W estimate (valid)")
    a.plot(steps, [h["gp"] for h in history], label="gradient penalty")
    a.set_xlabel("generator step")
    a.legend(fontsize=7)
    b.plot(steps, [h["gen_onsets"] for h in history], label="onsets per generated bar")
    b.set_xlabel("generator step")
    b2 = b.twinx()
    b2.plot(steps, [h["gen_top7_pc"] for h in history], color="C1", label="onsets in top-7 pitch classes")
    b.legend(fontsize=7, loc="upper left")
    b2.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def train_model(name: str = ARCH_GAN, minutes: float = 25.0, resume: bool = False) -> dict:
    """Train the bar GAN on the chorales, Essen tunes and POP909 melodies (the piano roll's mix);
    write models/<name>.* (and a curve PNG)."""
    from musicgen_app.core import paths
    from musicgen_app.ml.families.checkpoint import save_checkpoint

    torch.set_num_threads(1)
    splits = pr.training_pieces()
    cfg = GanConfig()
    gen = BarGenerator(cfg)
    previous = None
    if resume:  # the GAN ships without its critic: the generator goes on against a fresh critic
        from musicgen_app.ml.families.checkpoint import load_weights, read_card

        previous = read_card(name).get("training", {})
        load_weights(name, gen)
    record = train_gan(
        gen,
        BarData(splits["train"]),
        BarData(splits["valid"]),
        GanTrainConfig(minutes=minutes, critic_warmup=300 if resume else 0),
    )
    if previous:
        record["previous_runs"] = [{k: v for k, v in previous.items() if k != "history"}]
    curve = paths.models_dir() / f"{name}-curve.png"
    plot_curves(record["history"], str(curve))
    card = {
        "name": name,
        "family": "pianoroll",
        "architecture": ARCH_GAN,
        "seed_paper": "002",
        "title": "Bar-conditional WGAN-GP over piano-roll bars (paper 002's GAN, MidiNet-style)",
        "description": (
            "Generator G(z, previous bar) writes the next 16 sixteenths x 64 keys as onset and sustain "
            "planes; a conditioner CNN over the previous bar feeds every generator layer (MidiNet); "
            "trained against a critic D(bar, previous bar) with the WGAN-GP loss, the variant paper 002 "
            "found to work, plus a cross-entropy term to the real bar (pix2pix), the critic seeing bars "
            "sampled from the generator's probabilities. Streams bar by bar, sampling the window's "
            "frames (a single line as a line). No likelihood: see the continuation statistics."
        ),
        "data": {
            "dataset": "Bach chorales (music21 corpus), Essen folk tunes, POP909 melodies",
            "mix": pr.MIX,
            "pieces": {k: {c: len(v) for c, v in g.items()} for k, g in splits.items()},
            "split": "as the frame LSTM (the chorales by name, the tune corpora by their own splits)",
            "grid": f"16th notes, {PITCHES} keys (MIDI {LOW}-{LOW + PITCHES - 1}), windows of {FRAMES}",
            "augmentation": "transposition -6..+5, voices dropped in half the windows (soprano kept; "
            "a fifth soprano alone); 3 in 4 windows start on a bar line",
        },
        "config": asdict(cfg),
        "training": record,
        "metrics": {"unit": "no likelihood (GAN)"},
    }
    save_checkpoint(name, gen, card)
    logger.info("saved %s after %d generator steps", name, record["generator_steps"])
    return card


# -- streaming ---------------------------------------------------------------------------------------------
THRESHOLD = 0.5  # the cut of the deterministic decoding (no random source: temperature near 0)


RANGE_VARIANCE = 29.0  # Temperley (2007): a melody around its central pitch, variance in semitones^2


def range_profile(centre: float) -> np.ndarray:
    """(64,) weights of the keys around a melody's central pitch: Temperley's range profile, a
    normal distribution with variance 29 (Music and Probability, 2007, ch. 4). A line drawn from
    the generator's onset probabilities alone wandered into the bass (its bars also hold the
    chorales' lower voices): 12% of its notes more than a fifth outside the sketch's range."""
    keys = LOW + np.arange(PITCHES)
    return np.exp(-((keys - centre) ** 2) / (2 * RANGE_VARIANCE))


def _pick_key(weights: np.ndarray, temperature: float, u: float) -> int:
    """One key drawn in proportion to ``weights ** (1 / temperature)`` with the uniform ``u``
    (towards temperature 0 the heaviest key, the highest of equals)."""
    t = max(float(temperature), 1e-4)
    keys = np.flatnonzero(weights > 0)
    logw = np.log(weights[keys]) / t
    w = np.exp(logw - logw.max())
    if t <= 1e-3:
        return int(keys[np.flatnonzero(w >= 1.0 - 1e-9)[-1]])
    c = np.cumsum(w / w.sum())
    return int(keys[min(len(keys) - 1, int(np.searchsorted(c, u, side="right")))])


def _line_state(
    q: np.ndarray, sus: np.ndarray, live: np.ndarray, temperature: float, rng: np.random.Generator | None
) -> int:
    """One frame of a single line: ONSET, SUSTAIN or SILENT, drawn jointly.

    The generator's probabilities are per key, but summed over the keys they are the frame's
    expected onsets and held notes (trained by cross-entropy, they come out calibrated: about 4.5
    onsets a bar on folk sketches, spread over the keys the next note might take). A line has one
    note: it starts one with that chance, holds the sounding one with the held chance, else rests
    (a held note without a sounding one is a start that was not heard: its chance goes to starting).
    A temperature above 1 flattens the three chances; near 0 the likeliest is taken."""
    a = float(q.sum())
    b = float(sus.sum()) if live.any() else 0.0
    if a <= 0:
        return SUSTAIN if b > 0 and (rng.random() if rng is not None else 0.5) < min(1.0, b) else SILENT
    rest = max(0.0, 1.0 - a - b) if live.any() else max(0.0, 1.0 - a - float(sus.sum()))
    p = np.array([a, b, rest])
    if rng is None or temperature <= 1e-3:
        choice = int(np.argmax(p))
    else:  # below 1 the temperature sharpens the pitch only: sharpened, the rests would win
        t = max(float(temperature), 1.0)
        w = np.where(p > 0, np.exp(np.log(np.clip(p, 1e-12, None)) / t), 0.0)
        choice = int(np.searchsorted(np.cumsum(w / w.sum()), rng.random(), side="right"))
    return (ONSET, SUSTAIN, SILENT)[min(choice, 2)]


def _voices_frame(
    q: np.ndarray, sus: np.ndarray, live: np.ndarray, cap: int, temperature: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One frame of several voices, as :func:`_line_state` for a line: the number of notes that
    start is drawn around the frame's expected onsets (Poisson, at most ``cap``), the keys in
    proportion to their onset probabilities (sharpened by ``temperature``), without repeats; each
    other sounding note is held with the frame's expected held notes shared among them (the caller
    keeps the top ``cap``)."""
    start = np.zeros(PITCHES, bool)
    n = min(cap, int(rng.poisson(float(q.sum()))), int((q > 0).sum()))
    if n:
        keys = np.flatnonzero(q > 0)
        logw = np.log(q[keys]) / max(float(temperature), 1e-4)
        w = np.exp(logw - logw.max())
        start[rng.choice(keys, size=n, replace=False, p=w / w.sum())] = True
    held = live & ~start
    n_held = int(held.sum())
    hold = min(1.0, float(sus.sum()) / n_held) if n_held else 0.0
    keep = held & (rng.random(PITCHES) < hold)
    return start, keep


def decode_window(
    probs: np.ndarray,
    sounding: np.ndarray,
    threshold: float,
    onset_ok: np.ndarray | None,
    cap: int = PITCHES,
    repeats: np.ndarray | None = None,
    max_repeats: int = 1 << 30,
    rng: np.random.Generator | None = None,
    temperature: float = 1.0,
    centre: float | None = None,
    variety: VarietyGuard | None = None,
) -> np.ndarray:
    """(16, 64) states from onset/sustain probabilities (2, 16, 64).

    With ``rng`` the cells are drawn from the probabilities, as the critic saw them in training
    (``temperature`` sharpens the line's choices below); without (or at a temperature near 0) they
    are cut at ``threshold``.
    ``sounding`` (64,) bool: keys sounding before the window. Onsets where ``onset_ok`` is False
    (out of key, out of the sketch's register) are zeroed first; a sustain needs a sounding key; a
    key struck ``max_repeats`` onsets in a row may not start again (``repeats`` (64,) counts them,
    updated in place).

    ``cap`` 1 (a single line) decides each frame jointly (:func:`_line_state`): whether a note
    starts, is held or the line rests, then which key starts, in proportion to its onset
    probability (without ``rng``: the likeliest). With more voices each key is drawn on its own and
    at most ``cap`` sound in a frame (the highest). A window with no onset gets one at its most
    likely allowed key and frame (the sampler's silence guard). ``centre``: the line's keys are
    weighted by :func:`range_profile` around it. ``variety``: a line's guard, fed each key the line
    starts, whose penalty weighs each pick (note by note, as the token families' sampler does).
    """
    on, sus = probs[0].copy(), probs[1]
    if onset_ok is not None:
        on[:, ~onset_ok] = 0.0
    if rng is not None and temperature <= 1e-3:
        rng = None  # temperature near 0: the likeliest take
    t_line = temperature if rng is not None else 1e-4
    runs = np.zeros(PITCHES, int) if repeats is None else repeats
    out = np.zeros((FRAMES, PITCHES), np.int8)
    live = sounding.copy()
    for t in range(FRAMES):
        if cap == 1:
            start = np.zeros(PITCHES, bool)
            keep = np.zeros(PITCHES, bool)
            q = np.where(runs < max_repeats, on[t], 0.0)
            state = _line_state(q, sus[t], live, t_line, rng)
            if state == ONSET:
                pick = q if centre is None else q * range_profile(centre)
                if variety is not None and (pen := variety.penalty(LOW + np.arange(PITCHES))) is not None:
                    pick = pick * np.exp(-pen)
                key = _pick_key(pick, t_line, float(rng.random()) if rng is not None else 0.5)
                start[key] = True
                if variety is not None:
                    variety.strike(LOW + key)
            elif state == SUSTAIN:
                keep[int(np.flatnonzero(live)[-1])] = True
        else:
            if rng is None:
                start = (on[t] > threshold) & ((on[t] >= sus[t]) | ~live) & (runs < max_repeats)
                keep = ~start & live & (sus[t] > threshold)
            else:
                start, keep = _voices_frame(
                    np.where(runs < max_repeats, on[t], 0.0), sus[t], live, cap, temperature, rng
                )
            if int(start.sum() + keep.sum()) > cap:  # the top voices: a line is the bar's top line
                top = np.flatnonzero(start | keep)[-cap:]
                chosen = np.zeros(PITCHES, bool)
                chosen[top] = True
                start, keep = start & chosen, keep & chosen
        out[t, start] = ONSET
        out[t, keep] = SUSTAIN
        live = start | keep
        if start.any():
            runs[:] = np.where(start, runs + 1, 0)
    if not (out == ONSET).any():
        t0, k0 = np.unravel_index(int(np.argmax(on)), on.shape)
        t, k = int(t0), int(k0)
        if on[t, k] > 0:
            if int((out[t] > 0).sum()) >= cap:  # the held notes it would sound over end here
                for j in np.flatnonzero(out[t] == SUSTAIN):
                    t2 = t
                    while t2 < FRAMES and out[t2, j] == SUSTAIN:
                        out[t2, j] = SILENT
                        t2 += 1
            out[t, k] = ONSET
            if t + 1 < FRAMES and out[t + 1, k] == SILENT:
                out[t + 1 : t + 4, k] = np.where(
                    out[t + 1 : t + 4, k] == SILENT, SUSTAIN, out[t + 1 : t + 4, k]
                )
    return out


class GanEngine(StreamEngine):
    """Generates a 16-frame window in one pass, then walks it frame by frame emitting finished notes."""

    def __init__(self, gen: BarGenerator) -> None:
        self.gen_net = gen
        self.tokens = 0

    def prefill(self, ctx: SeedContext, sampling: SamplingConfig) -> None:
        self.ctx = ctx
        self.sampling = sampling
        self.rng = torch.Generator()
        seed = sampling.seed if sampling.seed is not None else random_seed()
        self.rng.manual_seed(int(seed))
        self.draw = np.random.default_rng(int(seed))  # the cells of each window
        rows = [(n.start, n.length, n.pitch) for n in ctx.notes]
        self.window = window_of(rows, ctx.start_step - FRAMES)  # the bar before the continuation
        # the sketch's pitch-class profile (its last 8 bars), kept for the whole continuation
        pcw = np.zeros(12)
        for n in ctx.notes:
            if n.start >= ctx.start_step - PROFILE_STEPS:
                pcw[n.pitch % 12] += n.length
        self.profile = profile_plane(pcw)
        self.frames: np.ndarray | None = None  # the window being walked
        self.sounding = np.zeros(PITCHES, bool)  # the seed's notes end at the start
        self.onset_at = np.full(PITCHES, -1)
        self.pos = ctx.start_step
        allowed = ctx.allowed_pcs(sampling.key_lock)
        keys = LOW + np.arange(PITCHES)
        self.onset_ok = np.ones(PITCHES, bool) if allowed is None else np.isin(keys % 12, list(allowed))
        lo, hi = ctx.register(sampling.register_margin)  # the GAN stays in the sketch's register
        self.onset_ok &= (keys >= lo) & (keys <= hi)
        self.cap = ctx.voice_cap(sampling.voices)
        self.centre = float(np.mean([n.pitch for n in ctx.notes]))  # a line's central pitch
        self.repeats = np.zeros(PITCHES, int)
        self.chords = ChordGuide(sampling.chords)  # the shared sampler's chord bias, on onset logits
        self.key_pitches = keys
        self.density = ctx.density_guide(sampling)  # the window's onset probabilities, times e^bias
        self.variety = ctx.variety_guard(sampling, self.cap)  # a line's keys struck over and over
        self.tonal = ctx.tonal_prior(sampling)  # the sketch's pitch classes, a soft pull on each onset

    @property
    def position(self) -> int:
        return self.pos

    def _generate(self, temperature: float) -> None:
        """The next window from the last one (one generator pass)."""
        phase = phase_planes(self.pos, self.ctx.bar_offset, self.ctx.bar_steps)
        cond = np.concatenate([planes(self.window), phase, self.profile])
        z = torch.randn(1, self.gen_net.cfg.z_dim, generator=self.rng) * float(temperature)
        probs = self.gen_net(z, torch.from_numpy(cond)[None])[0].numpy()  # (2, 16, 64)
        require_finite(probs)
        if self.chords:
            probs = probs.copy()
            for t in range(FRAMES):
                # each frame's onset probabilities reweighed toward the chord tones; the frame's
                # likeliest onset keeps its probability (the keys above the threshold sound)
                tick = self.ctx.to_tick(self.pos + t)
                probs[0, t] = self.chords.reweigh(self.key_pitches, probs[0, t], tick, keep="max")
        if self.tonal is not None:  # each frame's expected onsets kept, moved toward the sketch's notes
            probs = probs.copy()
            probs[0] = self.tonal.reweigh(probs[0], self.key_pitches)
        if self.density is not None:  # one bias per window, from the take so far
            probs = probs.copy()
            probs[0] = np.minimum(probs[0] * math.exp(self.density.bias(self.pos)), 1.0)
        self.frames = decode_window(
            probs, self.sounding, THRESHOLD, self.onset_ok, self.cap, self.repeats, self.sampling.max_repeats,
            self.draw, float(temperature), self.centre if self.cap == 1 else None, self.variety,
        )  # fmt: skip
        self.frame_index = 0

    def advance(self, temperature: float) -> list[StepNote]:
        if self.frames is None or self.frame_index >= FRAMES:
            if self.frames is not None:
                self.window = self.frames
            self._generate(temperature)
        frame = self.frames[self.frame_index]  # type: ignore[index]
        self.frame_index += 1
        self.tokens += 1
        t = self.pos
        done = [
            StepNote(int(self.onset_at[k]), t - int(self.onset_at[k]), LOW + int(k))
            for k in np.flatnonzero(self.sounding & (frame != SUSTAIN))
        ]
        self.onset_at[frame == ONSET] = t
        if self.density is not None:
            self.density.onset(t, int((frame == ONSET).sum()))
        self.sounding = frame > 0
        self.pos += 1
        return done

    def flush(self) -> list[StepNote]:
        return [
            StepNote(int(self.onset_at[k]), self.pos - int(self.onset_at[k]), LOW + int(k))
            for k in np.flatnonzero(self.sounding)
        ]


def load_generator(card: dict, path: str) -> BarGenerator:
    """Rebuild the generator from its card and load the weights at ``path``."""
    from musicgen_app.ml.families.checkpoint import load_weights

    gen = BarGenerator(GanConfig(**card["config"]))
    load_weights(path, gen)
    return gen


def engine_factory(card: dict, path: str):
    """A function making fresh streaming engines over the generator a card describes."""
    gen = load_generator(card, path)
    return lambda: GanEngine(gen)
