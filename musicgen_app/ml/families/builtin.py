"""The built-in model families behind the :class:`~musicgen_app.ml.family.Family` interface.

Each class is thin: the networks, batch makers, losses and streaming engines stay in their family
modules (``melody_lstm``, ``char_lstm``, ``chord_lstm``, ``pianoroll``, ``gan``, ``wavenet``,
``note_transformer``); here each family gets one ``config`` (full or tiny), one ``train`` on the
shared :class:`~musicgen_app.ml.family.TrainData` writing a schema-2 card, and one ``load``.
The shipped checkpoints were trained by the modules' own ``train_model`` recipes on their corpora;
``train`` here is the same network and loss on any dataset (``musicgen train FAMILY --data``).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicgen_app.ml.family import CARD_SCHEMA, Family, LoaderFamily, TrainData, TrainRun, register
from musicgen_app.ml.models import GenerativeModel

logger = logging.getLogger(__name__)


def _fit(
    family: Family,
    model: torch.nn.Module,
    loss: Any,
    batch: Any,
    valid: list,
    run: TrainRun,
    card: tuple[TrainData, Any, dict],
    **settings: Any,
) -> dict:
    """Train ``model`` with the one loop (:func:`musicgen_app.ml.families.training.train`) under
    ``run``'s limits: resumed from ``run.weights`` with ``run.resume``, the best weights and their
    card (``card``: data, config, the family's own parts) written at every improvement and at the
    end, a progress bar, the curve PNG beside the weights. Returns the card."""
    from musicgen_app.ml.families.checkpoint import load_weights, read_card
    from musicgen_app.ml.families.training import TrainConfig, train, training_record

    previous = None
    if run.resume and run.weights.is_file():
        load_weights(run.weights, model)
        model.train()
        previous = read_card(run.weights).get("training")
    every = run.max_steps if 0 < run.max_steps < 100 else 100
    curve = run.weights.with_name(f"{run.name}-curve.png")
    cfg = TrainConfig(minutes=run.minutes, eval_every=every, max_steps=run.max_steps, seed=run.seed,
                      progress=run.progress, curve_png=str(curve), **settings)  # fmt: skip

    data, config, parts = card
    figure = "valid_nll" if "nats" in family.metrics_unit else "valid_generator_loss"

    def card_of(res: Any) -> dict:
        metrics = {figure: round(res.best_valid_nll, 4), "unit": family.metrics_unit}
        return _card(
            family, run, data, config, **parts, training=training_record(res, previous), metrics=metrics
        )

    res = train(model, loss, batch, valid, cfg, checkpoint=lambda m, r: _save(run, m, card_of(r)))
    return _save(run, model, card_of(res))


def _card(family: Family, run: TrainRun, data: TrainData, config: Any, **parts: Any) -> dict:
    """A schema-2 card: family key, config, data, and the family's own parts (vocab, training...)."""
    return {
        "schema": CARD_SCHEMA,
        "name": run.name,
        "family": family.key,
        "architecture": family.key,
        "seed_paper": family.seed_paper,
        "config": config if isinstance(config, dict) else asdict(config),
        "data": {
            "dataset": data.name,
            "pieces": {k: len(v) for k, v in data.pieces.items()},
        },
        **parts,
    }


def _save(run: TrainRun, net: torch.nn.Module, card: dict) -> dict:
    from musicgen_app.ml.families.checkpoint import save_checkpoint

    Path(run.out_dir).mkdir(parents=True, exist_ok=True)
    save_checkpoint(run.weights, net, card)
    return card


def _melody_tunes(data: TrainData) -> dict[str, list]:
    from musicgen_app.ml import data as data_mod

    split = data_mod.split_indices(data.melody)
    tunes = {("valid" if k == "val" else k): list(data.melody.tunes(v)) for k, v in split.items()}
    for k in ("valid", "test"):
        tunes[k] = tunes.get(k) or tunes["train"]
    return tunes


class ModuleFamily(Family):
    """A family whose module has ``engine_factory(card, path)`` (or ``load``) for streaming."""

    module: str = ""
    per_grid_step: int = 1  # model steps allowed per 16th step of music

    def load(self, name: str, card: dict, path: Path) -> GenerativeModel:
        """The streaming model of a checkpoint."""
        from musicgen_app.ml.families import FamilyModel

        mod = importlib.import_module(self.module)
        if hasattr(mod, "load"):
            return mod.load(name, card, str(path))
        return FamilyModel(name, card, Path(path), mod.engine_factory(card, str(path)), self.per_grid_step)


class MelodyLSTMFamily(Family):
    """Paper 003: the grid melody LSTM with bar conditioning (``ml/melody_lstm.py``, ``ml/train.py``)."""

    key = "melody-lstm"
    seed_paper = "003"
    metrics_unit = "nats/step"

    def config(self, tiny: bool = False) -> Any:
        """The training options of ``ml/train.py`` (they hold the architecture)."""
        from musicgen_app.ml.train import TrainConfig

        if tiny:
            return TrainConfig(embed_dim=8, hidden_size=16, num_layers=1, seq_len=32, batch_size=4096)
        return TrainConfig()

    def train(self, data: TrainData, run: TrainRun) -> dict:
        """``train_melody_lstm`` on ``data.melody`` (its own loop: DDP, per-epoch checkpoints, curve)."""
        from dataclasses import replace

        from musicgen_app.ml.checkpoint import read_card
        from musicgen_app.ml.train import train_melody_lstm

        cfg = replace(
            self.config(run.tiny),
            name=run.name,
            out_dir=str(run.out_dir),
            time_budget_min=run.minutes,
            max_batches=run.max_steps,
            data=data.name,
            seed=run.seed,
            resume=str(run.weights) if run.resume and run.weights.is_file() else "",
        )
        if run.max_steps:
            cfg.max_epochs = run.max_steps  # at least one batch per epoch
        path = train_melody_lstm(cfg, progress=False, dataset=data.melody)
        return read_card(path)

    def load(self, name: str, card: dict, path: Path) -> GenerativeModel:
        """The melody LSTM with its numpy stepper."""
        from musicgen_app.ml.melody_lstm import load_melody_lstm

        return load_melody_lstm(name, card, path)


class CharLSTMFamily(ModuleFamily):
    """Paper 000: notes as text, a character LSTM."""

    key = "char-lstm"
    seed_paper = "000"
    metrics_unit = "nats/char"
    module = "musicgen_app.ml.families.char_lstm"
    metric = "char_lstm_metrics"
    per_grid_step = 16

    def config(self, tiny: bool = False) -> Any:
        """The token LSTM over characters."""
        from musicgen_app.ml.families.char_lstm import CHARS, char_lstm_config
        from musicgen_app.ml.families.common import TokenLSTMConfig

        if tiny:
            return TokenLSTMConfig(len(CHARS), embed_dim=8, hidden_size=16, num_layers=1, dropout=0.0)
        return char_lstm_config()

    def train(self, data: TrainData, run: TrainRun) -> dict:
        """Character windows of the melodies' note text."""
        from musicgen_app.ml.families import char_lstm as m
        from musicgen_app.ml.families.common import TokenLSTM

        tunes = _melody_tunes(data)
        flat = {k: np.array(m.encode_text("".join(m.tune_text(t.steps) for t in v)), dtype=np.int64)
                for k, v in tunes.items()}  # fmt: skip
        seq = min(m.SEQ_LEN, min(len(a) for a in flat.values()) - 2)

        def batch(g: torch.Generator, arr: np.ndarray = flat["train"], n: int = 32) -> torch.Tensor:
            starts = torch.randint(0, len(arr) - seq - 1, (n,), generator=g).numpy()
            return torch.from_numpy(np.stack([arr[s : s + seq + 1] for s in starts]))

        cfg = self.config(run.tiny)
        net = TokenLSTM(cfg)
        g = torch.Generator().manual_seed(5)
        vocab = {"kind": "characters", "tokens": list(m.CHARS), "ms_per_16th": m.MS_PER_STEP}
        valid = [batch(g, flat["valid"]) for _ in range(2)]
        return _fit(self, net, m._loss, batch, valid, run,
                    (data, cfg, {"vocab": vocab}), lr=3e-3)  # fmt: skip


class ChordLSTMFamily(ModuleFamily):
    """Paper 001: chord and duration tokens, an LSTM."""

    key = "chord-lstm"
    seed_paper = "001"
    module = "musicgen_app.ml.families.chord_lstm"
    metric = "chord_lstm_metrics"
    per_grid_step = 4
    polyphonic = True

    def config(self, tiny: bool = False, vocab_size: int = 0) -> Any:
        """The token LSTM over the chord vocabulary (its size comes from the data)."""
        from musicgen_app.ml.families.chord_lstm import chord_lstm_config
        from musicgen_app.ml.families.common import TokenLSTMConfig

        cfg = chord_lstm_config(vocab_size)
        if tiny:
            return TokenLSTMConfig(vocab_size, 8, 16, 1, 0.0, dense_size=16, feature_dim=cfg.feature_dim)
        return cfg

    def train(self, data: TrainData, run: TrainRun) -> dict:
        """Slices of every piece (all voices, and the top voice alone)."""
        from musicgen_app.ml.families import chord_lstm as m
        from musicgen_app.ml.families.common import TokenLSTM

        slices = [s for ch in data.pieces["train"] for s in m.piece_slices(ch)]
        vocab = m.ChordVocab.build(slices, 1 if run.tiny else 3)
        seqs = {k: m.encoded_split(vocab, v) for k, v in data.pieces.items()}
        seq = min(m.SEQ_LEN, min(sum(len(s) for s in v) for v in seqs.values()) - 2)
        cfg = self.config(run.tiny, vocab.size)
        net = TokenLSTM(cfg, vocab.features())
        g = torch.Generator().manual_seed(1)
        valid = [m.token_batches(seqs["valid"], seq, 32, g) for _ in range(2)]
        return _fit(self, net, m._loss, lambda gen: m.token_batches(seqs["train"], seq, 32, gen), valid, run,
                    (data, cfg, {"vocab": vocab.to_dict()}))  # fmt: skip


class PianoRollFamily(ModuleFamily):
    """Paper 002: 88-key frames, a frame LSTM or a seq2seq, with a note-axis NADE."""

    seed_paper = "002"
    metrics_unit = "nats/frame"
    module = "musicgen_app.ml.families.pianoroll"
    metric = "pianoroll_metrics"
    polyphonic = True

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.key = f"pianoroll-{kind}"

    def config(self, tiny: bool = False) -> Any:
        """Frame network settings."""
        from musicgen_app.ml.families.pianoroll import NADE_SIZE, PianoRollConfig

        if tiny:
            return PianoRollConfig(
                self.kind, hidden_size=16, num_layers=1, dropout=0.0, pos_dim=4, nade_size=4
            )
        return PianoRollConfig(kind=self.kind, nade_size=NADE_SIZE)

    def train(self, data: TrainData, run: TrainRun) -> dict:
        """Random windows of the pieces (transposition, note noise, voices dropped)."""
        from musicgen_app.ml.families import pianoroll as m

        cfg = self.config(run.tiny)
        net = m.PianoRollNet(cfg)
        m.init_transitions(net, data.pieces["train"])
        ctx = m.S2S_CONTEXT if self.kind == "seq2seq" else 0
        length = m.S2S_CONTEXT + m.S2S_TARGET if self.kind == "seq2seq" else m.TRAIN_LEN
        n = 4 if run.tiny else 16
        vrng, rng = np.random.default_rng(7), np.random.default_rng(run.seed)
        valid = [m.make_batch(data.pieces["valid"], n, length, vrng, False, ctx) for _ in range(2)]
        pieces = data.pieces["train"]
        batch = lambda g: m.make_batch(pieces, n, length, rng, True, ctx)  # noqa: E731
        return _fit(self, net, m.loss_fn, batch, valid, run, (data, cfg, {}))


class GanFamily(ModuleFamily):
    """Paper 002's bar GAN (WGAN-GP), conditioned on the previous bar."""

    key = "pianoroll-gan"
    seed_paper = "002"
    metrics_unit = "no likelihood (GAN)"
    module = "musicgen_app.ml.families.gan"
    metric = "gan_metrics"
    polyphonic = True

    def config(self, tiny: bool = False) -> Any:
        """Generator settings."""
        from musicgen_app.ml.families.gan import GanConfig

        return GanConfig(z_dim=4, width=8) if tiny else GanConfig()

    def train(self, data: TrainData, run: TrainRun) -> dict:
        """WGAN-GP inside the one loop: before every generator step the critic takes ``n_critic``
        steps (``before_step``); the generator's loss is the critic's score of its bars plus the
        shipped recipe's reconstruction term (``bce_weight`` x cross-entropy to the real bar), and
        the validation figure is that loss on held-out conditions (no early stopping)."""
        from musicgen_app.ml.families import gan as m

        cfg = self.config(run.tiny)
        gen = m.BarGenerator(cfg)
        tc = m.GanTrainConfig(batch=4 if run.tiny else 32)
        critic = m.BarCritic(cfg.width)
        opt_d = torch.optim.Adam(critic.parameters(), lr=tc.lr, betas=tc.betas)
        bars, held_out = m.BarData(data.pieces["train"]), m.BarData(data.pieces["valid"])
        rng = np.random.default_rng(run.seed)

        def critic_steps(_g: torch.Generator) -> None:
            for _ in range(tc.n_critic):
                real, cond = bars.sample(tc.batch, rng)
                with torch.no_grad():
                    fake = m.binarize(gen(torch.randn(tc.batch, cfg.z_dim), cond))
                wdist = critic(real, cond).mean() - critic(fake, cond).mean()
                loss_d = -wdist + tc.gp_lambda * m.gradient_penalty(critic, real, fake, cond)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()

        def g_loss(net: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, int]:
            real, cond = batch
            probs = net(torch.randn(len(cond), cfg.z_dim), cond)
            rec = tc.bce_weight * m.reconstruction(probs, real) * len(cond)
            return -critic(m.binarize(probs), cond).sum() + rec, len(cond)

        valid = [held_out.sample(16, np.random.default_rng(7), augment=False)]
        return _fit(self, gen, g_loss, lambda _g: bars.sample(tc.batch, rng), valid, run,
                    (data, cfg, {}), lr=tc.lr, betas=tc.betas, clip=1e9, patience=10**9)  # fmt: skip


class WaveNetFamily(ModuleFamily):
    """Paper 004: a WaveNet over melody grid tokens."""

    key = "wavenet"
    seed_paper = "004"
    metrics_unit = "nats/step"
    module = "musicgen_app.ml.families.wavenet"

    def config(self, tiny: bool = False, vocab_size: int = 0) -> Any:
        """Dilated causal convolutions (the vocabulary size comes from the data)."""
        from musicgen_app.ml.families.wavenet import WaveNetConfig

        if tiny:
            return WaveNetConfig(vocab_size, channels=8, skip_channels=8, dilations=(1, 2, 4), pos_dim=4)
        return WaveNetConfig(vocab_size)

    def train(self, data: TrainData, run: TrainRun) -> dict:
        """Windows of the melodies' grid tokens."""
        from musicgen_app.ml.families import wavenet as m
        from musicgen_app.ml.tokenizers import GridMelodyTokenizer

        tunes = _melody_tunes(data)
        tok = GridMelodyTokenizer.covering((int(p) for p in data.melody.steps if p >= 0), margin=0)
        streams = {k: m.melody_streams(tok, v) for k, v in tunes.items()}
        cfg = self.config(run.tiny, tok.vocab_size)
        net = m.WaveNet(cfg)
        g = torch.Generator().manual_seed(3)
        valid = [m._windows(streams["valid"], 4, g) for _ in range(2)]
        config = {**asdict(cfg), "receptive_field": cfg.receptive_field}
        return _fit(self, net, m._loss, lambda gen: m._windows(streams["train"], 16, gen), valid, run,
                    (data, config, {"vocab": tok.to_dict()}))  # fmt: skip


class NoteTransformerFamily(ModuleFamily):
    """Note events (bar, position, pitch, duration, velocity) and a style token; ALiBi, KV cache."""

    key = "note-transformer"
    seed_paper = "beyond"
    module = "musicgen_app.ml.families.note_transformer"
    metric = "note_transformer_metrics"
    per_grid_step = 5

    def config(self, tiny: bool = False) -> Any:
        """Transformer settings."""
        from musicgen_app.ml.families.note_transformer import NoteEventVocab, NoteTransformerConfig

        size = NoteEventVocab().vocab_size
        if tiny:
            return NoteTransformerConfig(size, d_model=16, n_layers=1, n_heads=2, d_ff=32)
        return NoteTransformerConfig(size)

    def train(self, data: TrainData, run: TrainRun) -> dict:
        """Windows of the dataset's note events (its own style: pop for a MIDI folder)."""
        from musicgen_app.ml.families import note_transformer as m

        vocab = m.NoteEventVocab()
        corpora = m.load_corpora(vocab, [data.name])
        for c in corpora:
            for part in ("val", "test"):
                c.tunes[part] = c.tunes[part] or c.tunes["train"]
        cfg = self.config(run.tiny)
        net = m.NoteTransformer(cfg)
        seq = 64 if run.tiny else m.SEQ_LEN
        sampler = m.WindowSampler(vocab, corpora, "train", seq)
        vrng, rng = np.random.default_rng(7), np.random.default_rng(run.seed)
        valid = [m.WindowSampler(vocab, corpora, "val", seq).batch(vrng, 4) for _ in range(2)]
        return _fit(self, net, m.batch_loss, lambda _g: sampler.batch(rng, 4 if run.tiny else 16), valid, run,
                    (data, cfg, {"vocab": vocab.to_dict()}), weight_decay=0.01)  # fmt: skip


_BUILTIN: tuple[Family, ...] = (
    MelodyLSTMFamily(),
    CharLSTMFamily(),
    ChordLSTMFamily(),
    PianoRollFamily("lstm"),
    PianoRollFamily("seq2seq"),
    GanFamily(),
    WaveNetFamily(),
    NoteTransformerFamily(),
)


def train_shipped_recipe(
    architecture: str, *, minutes: float, name: str | None = None, resume: bool = False
) -> dict:
    """The shipped model's own recipe (its module's ``train_model`` on its corpus mix), as
    `musicgen train ARCH` without ``--data``; returns the written card."""
    from musicgen_app.errors import CheckpointError
    from musicgen_app.ml.families import SHIPPED

    families = {f.key: f for f in _BUILTIN if isinstance(f, ModuleFamily)}
    if architecture not in SHIPPED or architecture not in families:
        raise CheckpointError(f"unknown model family '{architecture}' (choose from {', '.join(SHIPPED)})")
    module = importlib.import_module(families[architecture].module)
    if architecture in ("pianoroll-lstm", "pianoroll-seq2seq"):
        kind = architecture.removeprefix("pianoroll-")
        return module.train_model(kind, minutes, name or architecture, resume=resume)
    return module.train_model(name or architecture, minutes, resume=resume)


def _loader(module: str, attr: str):
    def load(name: str, card: dict, path: Path) -> Any:
        return getattr(importlib.import_module(module), attr)(name, card, path)

    return load


def register_all() -> None:
    """Register every built-in family (the MIDI continuation families first, in paper order)."""
    for fam in _BUILTIN:
        register(fam)
    for key, module, attr in (
        ("melody-fim", "musicgen_app.ml.melody_fim", "load_melody_fim"),
        ("accompany", "musicgen_app.ml.accompany", "load_accompany"),
        ("accompany-chords", "musicgen_app.ml.accompany", "load_chord_model"),
        ("audio-restyle", "musicgen_app.ml.audio.restyle", "load_restyler"),
        ("audio-wavenet", "musicgen_app.ml.audio.raw_wavenet", "load_audio_wavenet"),
    ):
        register(LoaderFamily(key, _loader(module, attr)))
