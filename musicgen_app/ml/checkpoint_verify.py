"""Verification of checkpoints: a card's configuration, its weights file's digest and tensors.

A card (``NAME.json``) carries a ``weights`` record written when the checkpoint is saved::

    "weights": {"sha256": "...", "bytes": 1884584,
                "tensors": {"embed.weight": "F16 [52, 96]", ...}}

Loading checks, in this order, before anything is built from the card:

1. :func:`validate_card`: the card's structure (the architecture is a dict or a family name, the
   configuration a dict), every configuration value's type and range, and the network's
   parameter count computed from the card, below :data:`MAX_PARAMETERS`;
2. :func:`check_digest`: the weights file's sha256 against the card's (cards written before the
   record existed skip this step);
3. :func:`check_tensors`: the tensor names, shapes and dtypes against the card's record (or, for
   older cards, the dtype against ``weights_dtype``), and every value finite (no NaN, no inf).

Every refusal is a :class:`~musicgen_app.errors.CheckpointError` with a sentence a musician can
act on. :func:`rehash_cards` writes the record into existing cards (``musicgen models --rehash``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import stat
from collections.abc import Callable
from pathlib import Path

import torch

from musicgen_app.errors import CheckpointError

logger = logging.getLogger(__name__)

MAX_PARAMETERS = 50_000_000  # the shipped models have 0.4-2 million; 50 million is 200 MB of float32
MAX_WEIGHTS_BYTES = 1 << 30  # a weights file is read whole (a hash, then the tensors)
DAMAGED = "the weights file does not match its card: it was changed or damaged"

# safetensors' dtype names
_DTYPE_NAMES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
_CARD_DTYPES = {"float16": "F16", "float32": "F32"}  # a card's ``weights_dtype`` -> tensor dtype

# configuration keys -> (smallest, largest) allowed value; anything else in a configuration is left
# to the network's own constructor (an unknown key is refused there)
_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "vocab_size": (1, 200_000),
    "char_hidden": (1, 8192),
    "note_to_char": (1, 8192),
    "char_embed": (1, 8192),
    "note_layers": (1, 16),
    "note_hidden": (1, 8192),
    "field_dim": (1, 8192),
    "max_steps": (1, 4096),
    "embed_dim": (1, 8192),
    "hidden_size": (1, 8192),
    "num_layers": (1, 16),
    "members": (1, 8),  # the networks of an ensemble
    "dense_size": (0, 8192),
    "feature_dim": (0, 8192),
    "pos_dim": (1, 1024),
    "nade_size": (0, 8192),
    "channels": (1, 8192),
    "skip_channels": (1, 8192),
    "width": (1, 8192),
    "z_dim": (1, 8192),
    "receptive_field": (1, 1 << 20),
    "gap_buckets": (1, 4096),
    "d_model": (1, 8192),
    "n_layers": (1, 64),
    "n_heads": (1, 256),
    "d_ff": (1, 65536),
    "n_styles": (1, 256),
    "enc_hidden": (1, 4096),
    "dec_hidden": (1, 4096),
    "keys": (1, 128),
    "low": (0, 127),
    "chord_dim": (1, 4096),
}
_MAX_DILATION = 1 << 16
_MAX_DILATIONS = 256


def dtype_name(t: torch.Tensor) -> str:
    """The safetensors name of a tensor's dtype (``F16``, ``F32``...)."""
    return _DTYPE_NAMES.get(t.dtype, str(t.dtype))


def describe(t: torch.Tensor) -> str:
    """A tensor's dtype and shape as a card records it: ``"F16 [52, 96]"``."""
    return f"{dtype_name(t)} {list(t.shape)}"


# -- the card ---------------------------------------------------------------------------------------------
def _lstm(inp: int, hidden: int, layers: int) -> int:
    """Parameters of ``nn.LSTM(inp, hidden, layers)`` (two bias vectors per layer)."""
    return 4 * hidden * (inp + hidden + 2) + (layers - 1) * 4 * hidden * (2 * hidden + 2)


def _melody_lstm(c: dict) -> int:
    V, E, H, L, P = (
        c["vocab_size"],
        c.get("embed_dim", 96),
        c.get("hidden_size", 256),
        c.get("num_layers", 2),
        c.get("pos_dim", 16),
    )
    bar = c.get("bar_conditioning", True)
    return V * E + (112 * P if bar else 0) + _lstm(E + (2 * P if bar else 0), H, L) + H * V + V


def _melody_fim(c: dict) -> int:
    """The melody LSTM plus its gap embedding (``gap_buckets`` x ``embed_dim``)."""
    return _melody_lstm(c) + c.get("gap_buckets", 130) * c.get("embed_dim", 96)


def _token_lstm(c: dict) -> int:
    V, E, H, L = c["vocab_size"], c["embed_dim"], c["hidden_size"], c["num_layers"]
    D, F = c.get("dense_size", 0), c.get("feature_dim", 0)
    out = D or H
    return V * E + _lstm(E, H, L) + (H * D + D) + out * V + V + F * (E + out) + V * F


def _char_notes(c: dict) -> int:
    """char-lstm's hierarchical model: field embeddings, the note LSTM, the character decoder."""
    V, M, F = c.get("vocab_size", 13), c.get("max_steps", 64), c.get("field_dim", 32)
    H, L, E = c.get("note_hidden", 256), c.get("note_layers", 2), c.get("char_embed", 16)
    S, C = c.get("note_to_char", 64), c.get("char_hidden", 128)
    fields = (129 + 2 * (M + 1) + 48) * F
    decoder = H * 2 * C + 2 * C + H * S + S + V * E + _lstm(E + S, C, 1) + (C + H) * V + V
    return fields + _lstm(4 * F, H, L) + decoder


def _pianoroll(c: dict) -> int:
    H, L, P = c.get("hidden_size", 256), c.get("num_layers", 2), c.get("pos_dim", 8)
    nets = 2 if c.get("kind", "lstm") == "seq2seq" else 1
    N = c.get("nade_size", 0)  # the note axis: time state -> N, key states -> N, N -> each key's logits
    nade = H * N + N + 88 * 2 * N + 88 * N * 3
    return 112 * P + nets * _lstm(176 + 2 * P, H, L) + 264 * H + 264 + 88 * 9 + nade


def _gan(c: dict) -> int:
    w, z = c.get("width", 128), c.get("z_dim", 32)
    cond = 194 * w * 3 + w + 3 * (4 * w * w + w)
    return cond + (z + w) * 4 * w + 4 * w + 2 * (8 * w * w + w) + (6 * w * w + w) + (w + 194) * 128 + 128


def _wavenet(c: dict) -> int:
    V, C, S, P = c["vocab_size"], c.get("channels", 64), c.get("skip_channels", 128), c.get("pos_dim", 16)
    n = len(c.get("dilations", ()))
    layer = (4 * C * C + 2 * C) + (C * C + C) + (C * S + S)
    return V * C + 112 * P + 2 * P * C + C + 2 * C * C + C + n * layer + S * S + S + S * V + V


def _note_transformer(c: dict) -> int:
    """The note-event Transformer: embedding, pre-norm blocks (attention and a feed-forward pair),
    a final norm, the token head and the style head."""
    V, D, L, F, S = c["vocab_size"], c["d_model"], c["n_layers"], c["d_ff"], c.get("n_styles", 3)
    block = 2 * D + (3 * D * D + 3 * D) + (D * D + D) + 2 * D + (D * F + F) + (F * D + D)
    return V * D + L * block + 2 * D + (D * V + V) + (D * S + S)


def _hilbert_autoencoder(c: dict) -> int:
    """Paper 002's style autoencoder: six k x k convolutions (widths w1..w4 and back) and a last one."""
    widths, k, ko = c.get("widths", [16, 32, 64, 64]), c.get("kernel", 4), c.get("out_kernel", 3)
    if not (isinstance(widths, list) and len(widths) == 4) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 8192 for v in [*widths, k, ko]
    ):
        raise TypeError("widths (four whole numbers), kernel and out_kernel")
    w1, w2, w3, w4 = widths
    pairs = [(1, w1), (w1, w2), (w2, w3), (w3, w4), (w4, w2), (w2, w1)]
    return sum(a * b * k * k + b for a, b in pairs) + w1 * ko * ko + 1


def _audio_wavenet(c: dict) -> int:
    """Paper 004's WaveNet on mu-law audio with piano-roll conditioning."""
    C, S, n = c.get("channels", 32), c.get("skip_channels", 64), len(c.get("dilations", ()))
    P = c.get("pitch_hi", 96) - c.get("pitch_lo", 36) + 1
    layer = (4 * C * C + 2 * C) + (C * C + C) + (C * S + S)
    return 256 * C + 2 * C * C + C + (P + 1) * n * 2 * C + n * layer + S * S + S + S * 256 + 256


def _accompany(c: dict) -> int:
    """The accompaniment network: the dilated convolutional chord encoder and head, the chord
    embedding, the decoder GRU and its key outputs (``ml.accompany_net.AccompanyNet``)."""
    from musicgen_app.ml.accompany_net import DILATIONS, MELODY_DIM, N_CHORDS

    C, K, H, E = 2 * c["enc_hidden"], c["keys"], c["dec_hidden"], c.get("chord_dim", 32)
    enc = MELODY_DIM * C * 5 + C + len(DILATIONS) * (3 * C * C + C) + C * N_CHORDS + N_CHORDS
    gru = 3 * H * (C + E + MELODY_DIM + 2 * K) + 3 * H * H + 6 * H
    return enc + N_CHORDS * E + gru + H * 2 * K + 2 * K


def _accompany_chords(c: dict) -> int:
    """The chord predictor (``ml.accompany_net.ChordNet``): melody + key histogram convolutions."""
    from musicgen_app.ml.accompany_net import DILATIONS, MELODY_DIM, N_CHORDS

    C = c.get("channels", 96)
    return (MELODY_DIM + 12) * C * 5 + C + len(DILATIONS) * (3 * C * C + C) + C * N_CHORDS + N_CHORDS


def _accompany_chords_bigru(c: dict) -> int:
    """The beat-level chord predictor (``ml.accompany_net.BeatChordNet``): input layer (wider when
    it reads other parts), a bidirectional GRU over beats, self-attention over them when it has
    heads, chord head on the GRU's states and the input layer's."""
    from musicgen_app.ml.accompany_net import BEAT_DIM, N_CHORDS, OTHER_BEAT_DIM

    H, L = c.get("hidden", 128), c.get("layers", 2)
    gru = 2 * (3 * H * H + 3 * H * H + 6 * H) + (L - 1) * 2 * (3 * H * 2 * H + 3 * H * H + 6 * H)
    inp = (BEAT_DIM + (OTHER_BEAT_DIM if c.get("other_parts") else 0)) * H + H
    attn = 4 * (2 * H) * (2 * H) + 4 * 2 * H + 2 * 2 * H if c.get("heads") else 0  # q, k, v, out; norm
    return inp + gru + attn + 3 * H * N_CHORDS + N_CHORDS  # the head reads the GRU and its input


# architecture (a family card's name or a melody card's class) -> parameters of the network
ESTIMATORS: dict[str, Callable[[dict], int]] = {
    "MelodyLSTM": _melody_lstm,
    "melody-lstm": _melody_lstm,
    "MelodyFIM": _melody_fim,
    "char-lstm": _token_lstm,
    "char-lstm-notes": _char_notes,
    "chord-lstm": _token_lstm,
    "pianoroll-lstm": _pianoroll,
    "pianoroll-seq2seq": _pianoroll,
    "pianoroll-gan": _gan,
    "wavenet": _wavenet,
    "hilbert-autoencoder": _hilbert_autoencoder,
    "audio-wavenet": _audio_wavenet,
    "note-transformer": _note_transformer,
    "accompany-gru": _accompany,
    "accompany-chords": _accompany_chords,
    "accompany-chords-bigru": _accompany_chords_bigru,
}


def card_config(card: dict, name: str) -> tuple[str, dict]:
    """``(architecture, configuration)`` of a card of either style, type-checked.

    The shipped melody cards: ``"architecture": {"class": ..., "args": {...}}``; family cards (every
    card training writes, melody-lstm's included): ``"architecture": "NAME", "config": {...}``.
    """
    arch = card.get("architecture")
    if isinstance(arch, dict):
        cls, args = arch.get("class"), arch.get("args")
        if not isinstance(cls, str):
            raise CheckpointError(f"model {name}: its card does not name the network's class")
        if not isinstance(args, dict):
            raise CheckpointError(
                f"model {name}: its card's network arguments are {_kind(args)}, not a set of named values"
            )
        return cls, args
    if isinstance(arch, str):
        config = card.get("config")
        if not isinstance(config, dict):
            raise CheckpointError(
                f"model {name}: its card's configuration is {_kind(config)}, not a set of named values"
            )
        ensemble = card.get("ensemble")
        if isinstance(ensemble, dict):  # several networks of this config in one checkpoint (chord-lstm)
            return arch, {**config, "members": ensemble.get("members")}
        return arch, config
    raise CheckpointError(f"model {name}: its card's architecture is {_kind(arch)}, not a description")


def _kind(value: object) -> str:
    if value is None:
        return "missing"
    return {str: "text", list: "a list", bool: "a yes/no value", int: "a number", float: "a number"}.get(
        type(value), f"a {type(value).__name__}"
    )


def validate_config(arch: str, config: dict, name: str) -> int | None:
    """Refuse out-of-range or mistyped configuration values; returns the parameter count from the
    card (None for an architecture this module does not know)."""
    for key, (lo, hi) in _INT_BOUNDS.items():
        if key not in config:
            continue
        v = config[key]
        if not isinstance(v, int) or isinstance(v, bool):
            raise CheckpointError(
                f"model {name}: its card gives {key} as {_kind(v)} ({v!r:.40}), not a whole number"
            )
        if not lo <= v <= hi:
            raise CheckpointError(f"model {name}: its card asks for {key} {v}; this app accepts {lo} to {hi}")
    if "dropout" in config:
        d = config["dropout"]
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not (math.isfinite(d) and 0 <= d < 1):
            raise CheckpointError(
                f"model {name}: its card gives dropout {d!r:.40}; it must be from 0 to below 1"
            )
    for key in ("bar_conditioning",):
        if key in config and not isinstance(config[key], bool):
            raise CheckpointError(f"model {name}: its card gives {key} as {_kind(config[key])}, not yes/no")
    if "kind" in config and config["kind"] not in ("lstm", "seq2seq"):
        raise CheckpointError(f"model {name}: its card names an unknown network kind {config['kind']!r:.40}")
    if "dilations" in config:
        dil = config["dilations"]
        if not isinstance(dil, list) or not 1 <= len(dil) <= _MAX_DILATIONS:
            raise CheckpointError(
                f"model {name}: its card's dilations are not a list of 1 to {_MAX_DILATIONS} numbers"
            )
        if any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= _MAX_DILATION for d in dil):
            raise CheckpointError(
                f"model {name}: its card's dilations must be whole numbers from 1 to {_MAX_DILATION}"
            )
    estimate = ESTIMATORS.get(arch)
    if estimate is None:
        return None
    try:
        members = config.get("members", 1)  # an ensemble: that many networks and their mixture weights
        n = estimate(config) * members + (members if members > 1 else 0)
    except (KeyError, TypeError) as exc:
        raise CheckpointError(
            f"model {name}: its card's configuration is incomplete ({exc} is missing)"
        ) from exc
    if n > MAX_PARAMETERS:
        raise CheckpointError(
            f"model {name}: its card asks for a network of {n:,} parameters; this app loads at most "
            f"{MAX_PARAMETERS:,} (the card was changed or damaged)"
        )
    return n


def validate_card(card: dict, name: str) -> None:
    """Refuse a card whose structure, configuration values or network size are not sane, before
    anything is allocated from it (raises CheckpointError)."""
    arch, config = card_config(card, name)
    for key in ("tokenizer", "vocab"):
        if key in card:
            _check_vocabulary(card[key], key, name)
    validate_config(arch, config, name)
    record = card.get("weights")
    if record is not None:
        _check_record(record, name)


def _check_vocabulary(vocab: object, key: str, name: str) -> None:
    if not isinstance(vocab, dict):
        raise CheckpointError(f"model {name}: its card's {key} is {_kind(vocab)}, not a set of named values")
    for field, (lo, hi) in {
        "pitch_min": (0, 127),
        "pitch_max": (0, 127),
        "steps_per_quarter": (1, 96),
    }.items():
        v = vocab.get(field, lo)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise CheckpointError(
                f"model {name}: its card gives {field} {v!r:.40}; this app accepts {lo} to {hi}"
            )
    if vocab.get("pitch_min", 0) > vocab.get("pitch_max", 127):
        raise CheckpointError(f"model {name}: its card's lowest pitch is above its highest")
    tokens = vocab.get("tokens", [])
    if not isinstance(tokens, list) or len(tokens) > _INT_BOUNDS["vocab_size"][1]:
        raise CheckpointError(
            f"model {name}: its card's token list is not a list of at most "
            f"{_INT_BOUNDS['vocab_size'][1]:,} tokens"
        )


def _check_record(record: object, name: str) -> None:
    """The ``weights`` record's fields have their types (the digest and size may be absent)."""
    ok = (
        isinstance(record, dict)
        and isinstance(record.get("sha256", ""), str)
        and isinstance(record.get("bytes", 0), int)
        and not isinstance(record.get("bytes", 0), bool)
        and isinstance(record.get("tensors"), dict)
        and all(isinstance(v, str) and len(v) < 200 for v in record["tensors"].values())
    )
    if not ok:
        raise CheckpointError(f"model {name}: its card's record of the weights is damaged")


# -- the weights ------------------------------------------------------------------------------------------
def file_digest(path: str | Path, limit: int = MAX_WEIGHTS_BYTES) -> tuple[str, int]:
    """``(sha256 hex digest, size in bytes)`` of a regular file, read in chunks; reading stops past
    ``limit`` bytes (the size returned is then ``limit + 1`` or more and the digest is partial)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise CheckpointError(f"model weights {p.name} are not a regular file")
            h = hashlib.sha256()
            size = 0
            while size <= limit and (chunk := f.read(min(1 << 20, limit + 1 - size))):
                size += len(chunk)
                h.update(chunk)
    except FileNotFoundError as exc:
        raise CheckpointError(f"model weights {p} are missing") from exc
    except OSError as exc:
        raise CheckpointError(f"model weights {p.name} are unreadable ({exc.strerror or exc})") from exc
    return h.hexdigest(), size


def tensor_record(tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    """``{name: "DTYPE [shape]"}`` of the tensors as stored (the card's record of them)."""
    return {k: describe(v) for k, v in sorted(tensors.items())}


def weights_record(path: str | Path, tensors: dict[str, torch.Tensor]) -> dict:
    """The card's ``weights`` record of a written weights file holding ``tensors``."""
    digest, size = file_digest(path)
    if size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(
            f"model weights {Path(path).name} are larger than {MAX_WEIGHTS_BYTES >> 20} MiB"
        )
    return {"sha256": digest, "bytes": size, "tensors": tensor_record(tensors)}


def check_digest(path: str | Path, card: dict, name: str) -> None:
    """Refuse weights whose sha256 differs from the card's (a card without a record passes)."""
    record = card.get("weights")
    if not isinstance(record, dict) or "sha256" not in record:
        return
    expected = record.get("bytes")
    digest, size = file_digest(
        path, limit=MAX_WEIGHTS_BYTES if expected is None else min(expected, MAX_WEIGHTS_BYTES)
    )
    if expected is not None and size != expected:
        longer = "longer" if size > expected else "shorter"
        raise CheckpointError(f"model {name}: {DAMAGED} (it is {longer} than the card says)")
    if size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"model {name}: the weights file is larger than {MAX_WEIGHTS_BYTES >> 20} MiB")
    if digest != record["sha256"]:
        raise CheckpointError(f"model {name}: {DAMAGED} (its sha256 differs)")


def check_tensors(tensors: dict[str, torch.Tensor], card: dict, name: str) -> None:
    """Refuse tensors that differ from the card's record (names, shapes, dtypes) or hold NaN/inf."""
    record = card.get("weights")
    expected = record.get("tensors") if isinstance(record, dict) else None
    if isinstance(expected, dict):
        missing = sorted(set(expected) - set(tensors))
        extra = sorted(set(tensors) - set(expected))
        if missing or extra:
            what = f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(extra[:3])}"
            raise CheckpointError(f"model {name}: {DAMAGED} ({what})")
        for k, want in expected.items():
            if describe(tensors[k]) != want:
                raise CheckpointError(
                    f"model {name}: {DAMAGED} ({k} is {describe(tensors[k])}, the card says {want})"
                )
    else:
        want = _CARD_DTYPES.get(str(card.get("weights_dtype", "")))
        for k, t in tensors.items():
            if want is not None and t.is_floating_point() and dtype_name(t) != want:
                raise CheckpointError(
                    f"model {name}: {DAMAGED} ({k} is stored as {dtype_name(t)}, the card says {want})"
                )
            if want is not None and not t.is_floating_point() and t.dtype != torch.bool:
                raise CheckpointError(
                    f"model {name}: {DAMAGED} ({k} is stored as {dtype_name(t)}, not as fractions)"
                )
    for k, t in tensors.items():
        if t.is_floating_point() and not _finite(t):
            raise CheckpointError(
                f"model {name}: its weights hold invalid numbers (NaN or infinity in {k}): "
                "the file is damaged and the model cannot make music"
            )


def _finite(t: torch.Tensor) -> bool:
    """Whether every value of a floating tensor is finite: a float32 sum (NaN and inf carry through
    it; 4x quicker than ``isfinite`` on float16), then the exact test if the sum overflowed."""
    return math.isfinite(float(t.sum(dtype=torch.float32))) or bool(torch.isfinite(t).all())


# -- maintenance ------------------------------------------------------------------------------------------
def rehash_cards(directory: str | Path, load: Callable[[Path], object] | None = None) -> list[str]:
    """Write the ``weights`` record (digest, tensor names, shapes and dtypes) into every card in
    ``directory`` that has weights beside it; returns the names rewritten.

    The weights must parse and be finite; with ``load`` each model is loaded afterwards (the full
    verification) and its old card put back if that fails. Raises CheckpointError on the first
    model that cannot be blessed.
    """
    from safetensors.torch import load_file

    done = []
    for cpath in sorted(Path(directory).glob("*.json")):
        wpath = cpath.with_suffix(".safetensors")
        if not wpath.exists():
            continue
        old = cpath.read_text()
        card = json.loads(old)
        if not isinstance(card, dict) or "format_version" not in card:
            continue
        name = str(card.get("name", cpath.stem))
        tensors = load_file(str(wpath))
        card.pop("weights", None)
        check_tensors(tensors, card, name)
        card["weights"] = weights_record(wpath, tensors)
        new = json.dumps(card, indent=1) + "\n"
        if new == old:
            continue
        tmp = cpath.with_name(cpath.name + ".tmp")
        tmp.write_text(new)
        os.replace(tmp, cpath)
        if load is not None:
            try:
                load(wpath)
            except CheckpointError:
                cpath.write_text(old)
                raise
        done.append(name)
        logger.info("rehashed %s", cpath.name)
    return done
