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
from typing import Any, ClassVar

import numpy as np
import torch

from musicgen_app.errors import CheckpointError
from musicgen_app.ml.family import CARD_SCHEMA, Family, LoaderFamily, TrainData, TrainRun, register
from musicgen_app.ml.models import GenerativeModel

logger = logging.getLogger(__name__)


def _fit(
    family: Family,
    model: torch.nn.Module,
    loss: Any,
    batch: Any,
    valid: Any,
    run: TrainRun,
    card: tuple[TrainData, Any, dict],
    *,
    dist: Any = None,
    start_info: dict | None = None,
    before_step: Any = None,
    **settings: Any,
) -> dict:
    """Train ``model`` with the one loop (:func:`musicgen_app.ml.training.train`) under ``run``'s
    limits: the family's loop ``settings`` (lr, eval_every, schedule...) under ``run.loop``;
    resumed from ``run.resume_path`` with ``run.resume``, or started from the base model's weights
    with ``run.base`` (fine-tuning); the best weights and their card (``card``: data, config, the
    family's own parts) written after every epoch and at the end (main rank only), the curve PNG
    beside the weights. Returns the card."""
    from dataclasses import replace

    from musicgen_app.ml.families.checkpoint import load_weights, read_card
    from musicgen_app.ml.training import TrainConfig, dist_context, train, training_record

    previous = None
    if run.resume:
        from musicgen_app.ml.checkpoint import finish_interrupted_save

        finish_interrupted_save(run.resume_path)  # a run killed while writing its checkpoint
    if run.resume and run.resume_path.is_file():
        load_weights(run.resume_path, model)
        previous = read_card(run.resume_path).get("training") or {}
    elif run.base:
        load_weights(run.base, model)
    model.train()
    every = run.max_steps if 0 < run.max_steps < 100 else 100
    curve = run.weights.with_name(f"{run.name}-curve.png")
    base = {"eval_every": every, **settings}
    cfg = replace(TrainConfig(**base), minutes=run.minutes, max_steps=run.max_steps, seed=run.seed,
                  progress=run.progress, curve_png=str(curve), unit=family.metrics_unit,
                  curve_title=f"{run.name} ({family.key}) on {card[0].name}")  # fmt: skip
    try:
        cfg = replace(cfg, **run.loop)
    except TypeError as exc:
        raise CheckpointError(f"{family.key}: unknown training option ({exc})") from exc
    ctx = dist or dist_context(cfg.device)
    data, config, parts = card
    if start_info is None:  # what the progress reports: the pieces trained on and held out
        counts = {k: len(v) for k, v in data.pieces.items()}
        if not counts:
            from musicgen_app.ml import data as data_mod

            counts = {k: len(v) for k, v in data_mod.split_indices(data.melody).items()}
        held_out = counts.get("valid", counts.get("val", 0))
        start_info = {"train_tunes": counts.get("train", 0), "val_tunes": held_out,
                      "parameters": sum(p.numel() for p in model.parameters())}  # fmt: skip
    figure = "valid_nll" if "nats" in family.metrics_unit else "valid_generator_loss"
    loop = {k: v for k, v in asdict(cfg).items() if k not in ("progress", "curve_png", "curve_title")}

    def card_of(res: Any) -> dict:
        metrics = {figure: round(res.best_valid_nll, 4), "unit": family.metrics_unit}
        training = training_record(res, previous, cfg.threads, config={**loop, **run.options},
                                   device=str(ctx.device), ranks=ctx.world)  # fmt: skip
        return _card(family, run, data, config, **parts, training=training, metrics=metrics)

    def save(state: dict, res: Any) -> None:
        _save(run, state, card_of(res))

    res = train(model, loss, batch, valid, cfg, before_step=before_step, checkpoint=save,
                on_event=run.on_event, previous=previous, dist=ctx, start_info=start_info)  # fmt: skip
    return card_of(res)


def _card(family: Family, run: TrainRun, data: TrainData, config: Any, **parts: Any) -> dict:
    """A schema-2 card: family key, config, data, the base model of a fine-tune, and the family's
    own parts (vocab, training...; ``data_record`` adds to the data record)."""
    from musicgen_app.ml.families.checkpoint import read_card

    card = {
        "schema": CARD_SCHEMA,
        "name": run.name,
        "family": family.key,
        "architecture": family.key,
        "seed_paper": family.seed_paper,
        "config": config if isinstance(config, dict) else asdict(config),
        "data": {
            "dataset": data.name,
            "pieces": {k: len(v) for k, v in data.pieces.items()},
            **parts.pop("data_record", {}),
        },
    }
    if run.base:
        card["base_model"] = {
            "name": read_card(run.base).get("name", Path(run.base).stem),
            "path": str(run.base),
        }
    return {**card, **parts}


def _save(run: TrainRun, state: dict, card: dict) -> dict:
    from musicgen_app.ml.checkpoint import save_checkpoint

    Path(run.out_dir).mkdir(parents=True, exist_ok=True)
    save_checkpoint(state, card, run.weights)
    return card


def _base_card(family: Family, run: TrainRun) -> dict | None:
    """The card of ``run.base`` (a fine-tune's starting model), checked to be of ``family``; None
    without a base, or when resuming (the resumed checkpoint holds the config). Raises
    CheckpointError."""
    from musicgen_app.ml.checkpoint import finish_interrupted_save
    from musicgen_app.ml.families.checkpoint import read_card
    from musicgen_app.ml.family import family_key

    if run.resume:
        finish_interrupted_save(run.resume_path)  # a run killed while writing its checkpoint
    if not run.base or (run.resume and run.resume_path.is_file()):
        return read_card(run.resume_path) if run.resume and run.resume_path.is_file() else None
    card = read_card(run.base)
    key = family_key(card)
    if key != family.key:
        raise CheckpointError(
            f"--from {card.get('name', run.base)}: a {key or 'unknown'} model; {family.key} fine-tunes "
            f"only from a {family.key} model"
        )
    return card


def _config_of(cls: type, config: dict) -> Any:
    """A family's config dataclass from a card's ``config`` (derived keys dropped, lists as tuples)."""
    from dataclasses import MISSING, fields

    out = {}
    for f in fields(cls):
        if f.name in config:
            v = config[f.name]
            default = f.default if f.default is not MISSING else None
            out[f.name] = tuple(v) if isinstance(v, list) and isinstance(default, tuple) else v
    try:
        return cls(**out)
    except TypeError as exc:
        raise CheckpointError(f"the base model's config does not fit this version ({exc})") from exc


def _same_vocab(base: dict | None, tokens: list, family: str) -> None:
    """Refuse a base model whose vocabulary is not this version's (one line, CheckpointError)."""
    if base is not None and list(base.get("vocab", {}).get("tokens", tokens)) != list(tokens):
        raise CheckpointError(
            f"--from {base.get('name', '?')}: its {family} vocabulary differs from this version's; "
            "it cannot be fine-tuned here (train from scratch on --data instead)"
        )


def _rank_seed(seed: int) -> int:
    """A numpy seed of this rank (each rank of a torchrun job draws its own batches)."""
    import os

    return seed + 1000 * int(os.environ.get("RANK", "0") or 0)


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
    """Paper 003: the grid melody LSTM with bar conditioning (``ml/families/melody_lstm.py``).

    One epoch reads every training step once, as windows of ``seq_len`` steps cut at a random
    offset from the concatenation of the training tunes (each tune starts with ``<s>``), the same
    window order on every rank, each rank taking its share of every batch. Validation reads each
    validation tune whole, from its start (each rank its share), with the accuracy beside the NLL."""

    key = "melody-lstm"
    fills = True
    seed_paper = "003"
    metrics_unit = "nats/step"
    uses_pieces = False
    # the recipe of the shipped model: the one loop's options and the batches
    LOOP: ClassVar[dict[str, Any]] = {"minutes": 54.0, "lr": 3e-3, "weight_decay": 1e-5, "patience": 3,
                                      "max_epochs": 30, "schedule": "cosine", "warmup": 0.03}  # fmt: skip
    BATCHES: ClassVar[dict[str, int]] = {"batch_size": 64, "seq_len": 128, "limit_tunes": 0}

    def config(self, tiny: bool = False, vocab_size: int = 0) -> Any:
        """The network (its vocabulary size comes from the data)."""
        from musicgen_app.ml.families.melody_lstm import MelodyLSTMConfig

        if tiny:
            return MelodyLSTMConfig(vocab_size, embed_dim=8, hidden_size=16, num_layers=1, dropout=0.0)
        return MelodyLSTMConfig(vocab_size, dropout=0.2)

    def train(self, data: TrainData, run: TrainRun) -> dict:
        """Windows of the melodies on the 16th grid; the tokenizer covers the training pitches (a
        fine-tune or a resumed run keeps its checkpoint's)."""
        from dataclasses import replace

        from musicgen_app.ml import data as data_mod
        from musicgen_app.ml.families.melody_lstm import MelodyLSTM, MelodyLSTMConfig
        from musicgen_app.ml.grid_data import per_step_outputs, stream_arrays
        from musicgen_app.ml.tokenizers import GridMelodyTokenizer
        from musicgen_app.ml.training import dist_context

        opts = {**self.BATCHES, **({"batch_size": 4096, "seq_len": 32} if run.tiny else {}), **run.options}
        ctx = dist_context(str(run.loop.get("device", "cpu")))
        ds = data.melody
        split = data_mod.split_indices(ds)
        limit = int(opts.pop("limit_tunes", 0))
        train_tunes = list(ds.tunes(split["train"][:limit] if limit else split["train"]))
        val_tunes = list(ds.tunes(split["val"])) or train_tunes
        base = _base_card(self, run)
        if base is not None:
            tok = GridMelodyTokenizer.from_dict(base.get("vocab") or base.get("tokenizer") or {})
            args = base.get("config") or base.get("architecture", {}).get("args", {})
            cfg = _config_of(MelodyLSTMConfig, args)
            if "dropout" in run.options:
                cfg = replace(cfg, dropout=run.options["dropout"])
        else:
            pitches = np.concatenate([t.steps[t.steps >= 0] for t in train_tunes])
            tok = GridMelodyTokenizer.covering(pitches, margin=2)
            arch = {k: opts[k] for k in ("embed_dim", "hidden_size", "num_layers", "dropout",
                                         "bar_conditioning") if k in opts}  # fmt: skip
            cfg = replace(self.config(run.tiny, tok.vocab_size), **arch)
        torch.manual_seed(run.seed)  # the same first weights for one process and for every rank
        net = MelodyLSTM(cfg)
        stream = [torch.from_numpy(a) for a in stream_arrays(tok, train_tunes)]
        n, seq, size = len(stream[0]), int(opts["seq_len"]), int(opts["batch_size"])
        batches = max(1, max(1, n // seq) // size)
        rng = np.random.default_rng(run.seed)  # the same on every rank: one window order for all
        order: dict[str, Any] = {"starts": np.zeros(0, dtype=np.int64), "b": batches}

        def batch(_g: torch.Generator) -> tuple[torch.Tensor, ...]:
            if order["b"] >= batches:  # a new epoch: a new offset and order of the windows
                shift = int(rng.integers(seq))
                order["starts"] = shift + seq * rng.permutation(max(1, (n - shift) // seq))
                order["b"] = 0
            b, starts = order["b"], order["starts"]
            order["b"] += 1
            pick = starts[np.arange(b * size, (b + 1) * size) % len(starts)]
            s = torch.from_numpy(pick[ctx.rank :: ctx.world])  # this rank's share of the global batch
            idx = (s.unsqueeze(1) + torch.arange(seq).unsqueeze(0)).clamp(max=n - 1)  # (B/world, L)
            return tuple(a[idx] for a in stream)

        val_shard = val_tunes[ctx.rank :: ctx.world]

        def validate(model: torch.nn.Module) -> tuple[float, float, dict[str, float]]:
            if not val_shard:
                return 0.0, 0.0, {"val_accuracy": 0.0}
            nll, pred, tgt = per_step_outputs(model, tok, val_shard, device=ctx.device)
            return float(nll.sum()), float(len(nll)), {"val_accuracy": float((pred == tgt).sum())}

        is_folder = ds.stats.get("source") == "midi-folder"
        parts = {
            "description": (
                "Paper 003's melody LSTM on a 16th-note grid (pitch at onset, r rest, _ hold), with token "
                "embeddings, LSTM layers and the position in the bar as conditioning."
            ),
            "vocab": tok.to_dict(),
            "conditioning": (
                "position of the predicted step in its bar and the bar length, in 16th steps (embedded)"
                if cfg.bar_conditioning
                else "none"
            ),
            "data_record": {
                "corpus": data.name,
                "source": (
                    f"MIDI folder {ds.stats.get('folder', '')} (dataset '{ds.name}')"
                    if is_folder
                    else f"music21 corpus {data_mod.CORPORA.get(data.name, data.name)} (ABC)"
                ),
                "stats": ds.stats,
                "training_key": "C major / A minor (each tune transposed; continuations are moved back)",
            },
            "split": data_mod.split_record(ds, split),
        }
        config = {**cfg.to_dict(), "parameters": sum(p.numel() for p in net.parameters())}
        info = {
            "train_tunes": len(train_tunes),
            "val_tunes": len(val_tunes),
            "parameters": config["parameters"],
        }
        run = replace(run, options={**opts, "limit_tunes": limit})  # the card records what was used
        return _fit(self, net, _melody_loss, batch, validate, run, (data, config, parts), dist=ctx,
                    start_info=info, eval_every=batches, **self.LOOP)  # fmt: skip

    def load(self, name: str, card: dict, path: Path) -> GenerativeModel:
        """The melody LSTM with its numpy stepper."""
        from musicgen_app.ml.families.melody_lstm import load_melody_lstm

        return load_melody_lstm(name, card, path)


def _melody_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy of a batch of grid windows ``(tokens, bar_pos, bar_steps, targets)``."""
    x, p, bs, y = batch
    logits, _ = model(x, p, bs)  # (B, L, V)
    flat = logits.reshape(-1, logits.shape[-1])
    return torch.nn.functional.cross_entropy(flat, y.reshape(-1), reduction="sum"), int(y.numel())


class CharLSTMFamily(ModuleFamily):
    """Paper 000: notes as text, a character LSTM."""

    key = "char-lstm"
    seed_paper = "000"
    metrics_unit = "nats/char"
    uses_pieces = False
    module = "musicgen_app.ml.families.char_lstm"
    metric = "char_lstm_metrics"
    per_grid_step = 16

    def config(self, tiny: bool = False) -> Any:
        """The hierarchical character model (a note LSTM over a character decoder)."""
        from musicgen_app.ml.families.char_notes import NoteCharConfig

        if tiny:
            return NoteCharConfig(field_dim=4, note_hidden=16, note_layers=1, char_embed=4, note_to_char=8,
                                  char_hidden=16, dropout=0.0)  # fmt: skip
        return NoteCharConfig()

    def train(self, data: TrainData, run: TrainRun) -> dict:
        """Windows of notes of the melodies' note text (each note's characters); a fine-tune of a
        flat character LSTM (the cards before the hierarchical model) keeps its network: character
        windows."""
        from musicgen_app.ml.families import char_lstm as m
        from musicgen_app.ml.families import char_notes as cn
        from musicgen_app.ml.families.common import TokenLSTMConfig

        tunes = _melody_tunes(data)
        texts = {k: [m.tune_text(t.steps) for t in v] for k, v in tunes.items()}
        base = _base_card(self, run)
        _same_vocab(base, list(m.CHARS), self.key)
        vocab = {"kind": "characters", "tokens": list(m.CHARS), "ms_per_16th": m.MS_PER_STEP}
        g = torch.Generator().manual_seed(5)
        if base is not None and base.get("architecture") != cn.ARCHITECTURE:  # paper 000's flat network
            cfg: Any = _config_of(TokenLSTMConfig, base["config"])
            net = m.network_of(base)
            flat = {k: np.array(m.encode_text("".join(v)), dtype=np.int64) for k, v in texts.items()}
            seq = min(m.SEQ_LEN, min(len(a) for a in flat.values()) - 2)

            def batch(g: torch.Generator, arr: np.ndarray = flat["train"], n: int = 32) -> torch.Tensor:
                starts = torch.randint(0, len(arr) - seq - 1, (n,), generator=g).numpy()
                return torch.from_numpy(np.stack([arr[s : s + seq + 1] for s in starts]))

            valid = [batch(g, flat["valid"]) for _ in range(2)]
            return _fit(self, net, m._loss, batch, valid, run,
                        (data, cfg, {"vocab": vocab}), lr=3e-3)  # fmt: skip
        cfg = _config_of(cn.NoteCharConfig, base["config"]) if base else self.config(run.tiny)
        net = cn.NoteCharLSTM(cfg)
        items = {k: cn.text_items(v, cfg) for k, v in texts.items()}
        valid_batch = cn.window_batcher(items["valid"])
        valid = [valid_batch(g) for _ in range(2)]
        parts = {"vocab": vocab, "architecture": cn.ARCHITECTURE, "description": m.CARD_DESCRIPTION}
        return _fit(self, net, cn.loss, cn.window_batcher(items["train"]), valid, run,
                    (data, cfg, parts), lr=3e-3)  # fmt: skip


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
        from musicgen_app.ml.families.common import TokenLSTM, TokenLSTMConfig, TokenLSTMEnsemble

        slices = [s for ch in data.pieces["train"] for s in m.piece_slices(ch)]
        base = _base_card(self, run)
        vocab = (
            m.ChordVocab.from_dict(base["vocab"])
            if base
            else m.ChordVocab.build(slices, 1 if run.tiny else 3)
        )
        if base is not None:  # the base model's chords: this music's other chords merge into their neighbours
            known = sum(1 for sl in slices for p, _ in sl if p and vocab.chord_id(p) is not None)
            if not known:
                raise CheckpointError(
                    f"--from {base.get('name', '?')}: none of this music's chords is in its chord "
                    "vocabulary; it cannot be fine-tuned on it (train from scratch on --data instead)"
                )
        seqs = {k: m.encoded_split(vocab, v) for k, v in data.pieces.items()}
        seq = min(m.SEQ_LEN, min(sum(len(s) for s in v) for v in seqs.values()) - 2)
        cfg = _config_of(TokenLSTMConfig, base["config"]) if base else self.config(run.tiny, vocab.size)
        net: torch.nn.Module = TokenLSTM(cfg, vocab.features())
        parts: dict = {"vocab": vocab.to_dict()}
        ensemble = (base or {}).get("ensemble")
        if ensemble:  # the shipped chord-lstm: every member fine-tuned on the mixture's NLL, weights kept
            k, weights = int(ensemble["members"]), [float(w) for w in ensemble["weights"]]
            net = TokenLSTMEnsemble([TokenLSTM(cfg, vocab.features()) for _ in range(k)], weights)
            parts["ensemble"] = {"members": k, "weights": weights,
                                 "fine_tuned": "all members together, on the mixture's NLL"}  # fmt: skip
        g = torch.Generator().manual_seed(1)
        valid = [m.token_batches(seqs["valid"], seq, 32, g) for _ in range(2)]
        return _fit(self, net, m._loss, lambda gen: m.token_batches(seqs["train"], seq, 32, gen), valid, run,
                    (data, cfg, parts))  # fmt: skip


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

        base = _base_card(self, run)
        cfg = _config_of(m.PianoRollConfig, base["config"]) if base else self.config(run.tiny)
        net = m.PianoRollNet(cfg)
        if base is None:
            m.init_transitions(net, data.pieces["train"])
        ctx = m.S2S_CONTEXT if self.kind == "seq2seq" else 0
        length = m.S2S_CONTEXT + m.S2S_TARGET if self.kind == "seq2seq" else m.TRAIN_LEN
        n = 4 if run.tiny else 16
        vrng, rng = np.random.default_rng(7), np.random.default_rng(_rank_seed(run.seed))
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

        base = _base_card(self, run)
        cfg = _config_of(m.GanConfig, base["config"]) if base else self.config(run.tiny)
        gen = m.BarGenerator(cfg)
        tc = m.GanTrainConfig(batch=4 if run.tiny else 32)
        bars, held_out = m.BarData(data.pieces["train"]), m.BarData(data.pieces["valid"])
        adv = m.Adversarial(gen, bars, held_out, tc, np.random.default_rng(_rank_seed(run.seed)), n_valid=16)
        return _fit(self, gen, adv.g_loss, adv.batch, adv.validate, run, (data, cfg, {}),
                    before_step=adv.critic_steps, lr=tc.lr, betas=tc.betas, clip=1e9,
                    patience=10**9)  # fmt: skip


class WaveNetFamily(ModuleFamily):
    """Paper 004: a WaveNet over melody grid tokens."""

    key = "wavenet"
    seed_paper = "004"
    fills = True
    metrics_unit = "nats/step"
    uses_pieces = False
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
        base = _base_card(self, run)
        if base is not None:  # the base model's range: this music's pitches are folded into it
            tok = GridMelodyTokenizer.from_dict(base["vocab"])
            cfg = _config_of(m.WaveNetConfig, base["config"])
        else:
            tok = GridMelodyTokenizer.covering((int(p) for p in data.melody.steps if p >= 0), margin=0)
            cfg = self.config(run.tiny, tok.vocab_size)
        streams = {k: m.melody_streams(tok, v) for k, v in tunes.items()}
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
        base = _base_card(self, run)
        _same_vocab(base, vocab.to_dict().get("tokens", []), self.key)
        cfg = _config_of(m.NoteTransformerConfig, base["config"]) if base else self.config(run.tiny)
        net = m.NoteTransformer(cfg)
        seq = 64 if run.tiny else m.SEQ_LEN
        sampler = m.WindowSampler(vocab, corpora, "train", seq)
        vrng, rng = np.random.default_rng(7), np.random.default_rng(_rank_seed(run.seed))
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
