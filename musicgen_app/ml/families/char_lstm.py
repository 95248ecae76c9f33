"""Paper 000's character-level LSTM over the Notes-Duration-Next text encoding.

Every note is written as text: its MIDI pitch, how long it sounds and the time from its onset to
the next note's onset, both in milliseconds, ``pitch:duration:next;`` (``67:250:375;`` is a G4
eighth note followed by a 16th rest). Milliseconds are taken at a reference tempo of 120 BPM
(a 16th note = 125 ms), so the text maps onto the song's grid whatever its tempo; decoding rounds
to the nearest 16th. Tunes are separated by a newline. The vocabulary is the 13 characters
``\\n0123456789:;``.

Network: paper 000 ran a character embedding -> 2 stacked LSTM layers -> softmax over characters
(:class:`~musicgen_app.ml.families.common.TokenLSTM`; the cards before the hierarchical model, which
still load). The shipped model goes beyond it: the same characters, modelled hierarchically
(:mod:`~musicgen_app.ml.families.char_notes`: a note-level LSTM once per completed note, a small
character decoder within each note), which trains ~10x quicker per character on this CPU.
Generation is character by character; sampling is kept to well-formed text (digits where a number
goes, a separator once it has at least one digit), and a note is streamed as soon as its
next field is complete (on a single line a note longer than the step to the next one is cut
there: held on, it sounded under the next note, two notes at once on a melody).

The paper trained on classical piano (Beethoven, Mozart) and video-game tracks it had prepared by
hand; we have no such files in the app, and the paper's encoding is monophonic in practice (one
main channel per song), so we train on the folk melodies of music21's bundled corpus: the melody
model's cached Essen dataset and split (moved to C major / A minor).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import nn

from musicgen_app.ml.families.cache import CacheConfig, step_log_probs, unit
from musicgen_app.ml.families.char_notes import ARCHITECTURE as NOTES_ARCHITECTURE
from musicgen_app.ml.families.char_notes import (
    CHARS,
    COLON,
    MS_PER_STEP,
    SEMI,
    NoteCharConfig,
    NoteCharLSTM,
    NoteCharStepper,
)
from musicgen_app.ml.families.char_notes import NEWLINE as NEWLINE  # re-exported: the vocabulary's
from musicgen_app.ml.families.common import (
    CachedTokenStepper,
    SeedContext,
    StepNote,
    StreamEngine,
    TokenLSTM,
    TokenLSTMConfig,
    TokenStepper,
    fit_register,
    masked,
    melody_line,
    sequence_nll,
)
from musicgen_app.ml.sampling import DensityGuide, Sampler, SamplingConfig, TokenClasses

logger = logging.getLogger(__name__)

ARCHITECTURE = "char-lstm"
# the text's 13 characters (newline, digits, ':', ';') and a 16th note at 120 BPM (125 ms): one
# vocabulary for the flat network and the hierarchical one (:mod:`.char_notes`)
DIGITS = list(range(1, 11))
MAX_DIGITS = (3, 4, 4)  # pitch, duration, next


def _texts(texts: list[str]) -> np.ndarray:
    """(B, W) character ids of ``texts``, padded with -1."""
    ids = [[CHARS.index(c) for c in t] for t in texts]
    width = max(len(t) for t in ids)
    return np.array([t + [-1] * (width - len(t)) for t in ids], dtype=np.int64)


# durations of 1-16 steps, 6 and 8 beats (longer notes are rare; the fewer texts, the quicker the read)
GRID_STEPS = np.array([*range(1, 17), 24, 32])
GRID_FIELDS = _texts([f"{k * MS_PER_STEP}:" for k in GRID_STEPS])
GUIDE_MIN_BIAS = 0.05  # nats: below this lean the duration is drawn character by character
# the prefill reads the sketch's last notes only: a note is ~11 characters, and each character is a
# sequential LSTM step, so a long read would delay the first note (the 10 ms goal)
PREFILL_NOTES = 4
# the hierarchical model reads the sketch's whole notes in one pass of its note LSTM: more of them
PREFILL_NOTES_HIER = 16
# with the continuous cache, more of the sketch is read, so the cache holds more than a few notes to
# draw on (fed back into a near-empty cache, a take copies itself into few distinct pitches)
PREFILL_NOTES_CACHED = 8  # (each note ~11 characters: 16 notes took the first note past 10 ms)


def encode_text(text: str) -> list[int]:
    """Character ids of ``text``."""
    return [CHARS.index(c) for c in text]


def notes_text(notes: list[tuple[int, int, int]]) -> str:
    """``pitch:dur:next;`` for ``(pitch, duration steps, steps to the next onset)`` triples."""
    return "".join(f"{p}:{d * MS_PER_STEP}:{n * MS_PER_STEP};" for p, d, n in notes)


def steps_notes(steps: np.ndarray) -> list[tuple[int, int, int]]:
    """``(pitch, duration, next)`` in steps from raw grid codes (pitch / REST -1 / HOLD -2)."""
    nonhold = np.flatnonzero(steps != -2)
    onsets = [int(i) for i in nonhold if steps[i] >= 0]
    out = []
    for j, i in enumerate(onsets):
        later = nonhold[nonhold > i]
        end = int(later[0]) if len(later) else len(steps)
        nxt = onsets[j + 1] - i if j + 1 < len(onsets) else end - i
        out.append((int(steps[i]), end - i, nxt))
    return out


# -- network ----------------------------------------------------------------------------------------
def char_lstm_config() -> TokenLSTMConfig:
    """Paper 000's network: character embedding, 2 stacked LSTM layers (256), softmax."""
    return TokenLSTMConfig(len(CHARS), embed_dim=32, hidden_size=256, num_layers=2, dropout=0.1)


# -- streaming ----------------------------------------------------------------------------------------
class CharEngine(StreamEngine):
    """Samples characters; a note is streamed when its next field ends."""

    def __init__(self, model: TokenLSTM | NoteCharLSTM, cache: CacheConfig | None = None) -> None:
        self.model = model
        self.notes = isinstance(model, NoteCharLSTM)  # the hierarchical model (no cache)
        # the continuous cache over the take's own past (None: off)
        self.cache = None if self.notes else cache
        self.tokens = 0
        V = model.cfg.vocab_size
        self.masks = {}
        for field in range(3):
            for k in range(5):
                m = torch.zeros(V, dtype=torch.bool)
                if k < MAX_DIGITS[field]:
                    m[DIGITS] = True
                    if k == 0 and field < 2:
                        m[1] = False  # no leading zero in pitch and duration
                if k >= 1:
                    m[SEMI if field == 2 else COLON] = True
                self.masks[field, k] = m

    def prefill(self, ctx: SeedContext, sampling: SamplingConfig) -> None:
        self.ctx = ctx
        V = self.model.cfg.vocab_size
        self.sampler = Sampler(TokenClasses(V, None, None, np.full(V, -1)), sampling, seed=sampling.seed)
        self.shift = ctx.transposition()
        line = melody_line(ctx.notes)[-self._prefill_notes() :]
        triples = []
        for i, n in enumerate(line):
            nxt = (line[i + 1].start if i + 1 < len(line) else ctx.start_step) - n.start
            triples.append((n.pitch + self.shift, n.length, max(1, nxt)))
        ids = encode_text("\n" + notes_text(triples))
        # the flat network's (LSTM state, cache) tuples, or the hierarchical model's NoteState
        self.stepper: Any
        self.state: Any
        if isinstance(self.model, NoteCharLSTM):  # the first note's place in the bar (modulo 48 16ths)
            self.stepper = NoteCharStepper.of(self.model)
            pos = ctx.bar_position(line[0].start) if line else 0
            self.logits, self.state = self.stepper.prefill(ids, pos)
        else:
            self.stepper = CachedTokenStepper(self.model, self.cache)
            self.logits, self.state = self.stepper.prefill(ids)
        self.pos = ctx.start_step
        self.field, self.digits = 0, ""
        self.values: list[int] = []
        self.key_pcs = ctx.allowed_pcs(sampling.key_lock, self.shift)
        self.line = ctx.voice_cap(sampling.voices) == 1  # a note ends where the next one starts
        self.pending: tuple[int, int] | None = None  # (pitch, length) waiting for its next field
        whole = melody_line(ctx.notes)  # the density guide's target: the sketch's last bars, not 4 notes
        self.density = DensityGuide.for_sketch((n.start for n in whole), ctx.start_step, sampling)
        # the register (the shared sampler's mask) reaches the pitch digits as a mask on each digit:
        # only those that can still spell a pitch in the sketch's range +- the margin (model's key)
        self.pitch_texts: set[str] | None = None
        lo, hi = ctx.register(sampling.register_margin)
        if sampling.register_margin is not None:
            self.pitch_texts = {str(p + self.shift) for p in range(lo, hi + 1)}
        # the variety guard (a line circling on two or three pitches): while it leans, the pitch
        # field is written whole, each pitch of the register read and penalised (:meth:`_guided_pitch`)
        self.variety = ctx.variety_guard(sampling, ctx.voice_cap(sampling.voices))
        self.guide_pitches = np.array([p for p in range(lo, hi + 1) if 0 <= p + self.shift <= 127])
        self.pitch_fields = _texts([f"{p + self.shift}:" for p in self.guide_pitches])

    @property
    def position(self) -> int:
        return self.pos

    def _prefill_notes(self) -> int:
        """How many of the sketch's last notes the prefill reads."""
        if self.notes:
            return PREFILL_NOTES_HIER
        return PREFILL_NOTES if self.cache is None else PREFILL_NOTES_CACHED

    def advance(self, temperature: float) -> list[StepNote]:
        penalty = self._variety_penalty() if self.field == 0 and not self.digits else None
        if penalty is not None:
            self.values.append(self._guided_pitch(penalty, temperature))
        elif self.field == 1 and not self.digits and self._guiding():
            self.values.append(self._guided_duration(temperature))
        else:
            mask = self.masks[self.field, len(self.digits)]
            if self.field == 0 and self.pitch_texts is not None:
                mask = mask & self._in_register()
            ch = self.sampler.sample(masked(self.logits, mask), temperature)
            self.tokens += 1
            self.logits, self.state = self.stepper.step(ch, self.state)
            if ch in DIGITS:
                self.digits += CHARS[ch]
                return []
            self.values.append(int(self.digits or "0"))
        self.digits = ""
        done = []
        if self.field == 0 and self.density is not None:
            self.density.onset(self.pos)  # a pitch written: a note starts here
        if self.field == 1:  # pitch and duration known
            pitch = fit_register(self.values[0])
            if self.key_pcs and pitch % 12 not in self.key_pcs:  # the key lock: nearest allowed pitch
                pitch = min((q for q in range(pitch - 6, pitch + 7) if q % 12 in self.key_pcs),
                            key=lambda q: (abs(q - pitch), q))  # fmt: skip
            self.pending = (pitch, max(1, round(self.values[1] / MS_PER_STEP)))
            if self.variety is not None:
                self.variety.strike(pitch - self.shift)
        if self.field == 2:  # and the step to the next note: the note is complete
            step = max(1, round(self.values[2] / MS_PER_STEP))
            if self.pending is not None:
                pitch, length = self.pending
                if self.line:  # a note longer than the step to the next one would sound under it
                    length = min(length, step)
                done.append(StepNote(self.pos, length, pitch - self.shift))
                self.pending = None
            self.pos += step
            self.values = []
        self.field = (self.field + 1) % 3
        return done

    def _guiding(self) -> bool:
        """Whether the density guide leans on the next duration (a batched read costs a few
        milliseconds; without a lean the characters are drawn one by one, as without the guide).
        The take's first note is left alone: the guide has seen nothing of the take yet, and the
        first note comes as quickly as before."""
        d = self.density
        return d is not None and d.notes > 1 and abs(d.bias(self.pos + 1)) > GUIDE_MIN_BIAS

    def _guided_duration(self, temperature: float) -> int:
        """The duration field written whole under the density guide (it decides where the next
        onset comes: on a line the next note mostly starts where this one ends): the network's
        probability of every grid value's text (``GRID_STEPS``, ``125:`` to ``4000:``, :meth:`_read`)
        becomes a distribution over intervals that the guide tilts
        (:meth:`~musicgen_app.ml.sampling.DensityGuide.tilt_intervals`); one is drawn at
        ``temperature``. Returns its milliseconds."""
        assert self.density is not None
        logp, ends = self._read(GRID_FIELDS, 1)
        self.density.tilt_intervals(logp, np.arange(len(logp)), self.pos + 1)
        return int(GRID_STEPS[self._draw(logp, ends, temperature, GRID_FIELDS)]) * MS_PER_STEP

    def _variety_penalty(self) -> np.ndarray | None:
        """(P,) nats each of :attr:`guide_pitches` loses to the variety guard now, or None when
        the line is varied enough (or the guard is off)."""
        if self.variety is None or not len(self.guide_pitches):
            return None
        return self.variety.penalty(self.guide_pitches)

    def _guided_pitch(self, penalty: np.ndarray, temperature: float) -> int:
        """The pitch field written whole while the variety guard leans: the network's probability
        of every pitch of the register (:meth:`_read`) minus each pitch's penalty; one is drawn at
        ``temperature``. Returns the pitch as the text spells it (the model's key)."""
        logp, ends = self._read(self.pitch_fields, 0)
        k = self._draw(logp - penalty, ends, temperature, self.pitch_fields)
        return int(self.guide_pitches[k]) + self.shift

    def _in_register(self) -> torch.Tensor:
        """(V,) bool: the characters after the pitch digits so far that can still spell a pitch in
        the register (a digit that begins one, the separator after a whole one)."""
        assert self.pitch_texts is not None
        ok = torch.zeros(len(CHARS), dtype=torch.bool)
        for c in DIGITS:
            text = self.digits + CHARS[c]
            ok[c] = any(t.startswith(text) for t in self.pitch_texts)
        ok[COLON] = self.digits in self.pitch_texts
        if not ok.any():
            ok[:] = True  # nothing in the register is reachable: leave it to the model
        return ok

    def _read(self, texts: np.ndarray, field: int) -> tuple[np.ndarray, list]:
        """The network's log-probability of each of ``texts`` (B, W) character ids, -1 padded, each
        a whole ``field`` ending with its separator) from the current state, and per text the
        state before its separator. Texts sharing a prefix share its steps (one batched step per
        depth over the distinct prefixes); the separator is read only for the text drawn."""
        if self.notes:
            return self._read_notes(texts, field)
        raw, (lstm_state, memory) = self.stepper.stepper, self.state
        assert isinstance(raw, TokenStepper)  # char-lstm is one network
        lstm, n = raw.lstm, len(texts)
        logp = np.zeros(n)
        state = (
            [np.repeat(h[None], n, 0) for h in lstm_state[0]],
            [np.repeat(c[None], n, 0) for c in lstm_state[1]],
        )
        tops = np.zeros((n, texts.shape[1], lstm.H))  # the top state after each character read
        logits = np.repeat(self.logits[None].astype(np.float64), n, 0)
        for d in range(texts.shape[1]):
            rows = np.flatnonzero(texts[:, d] >= 0)  # the texts with a character at d
            if not len(rows):
                break
            chars = texts[rows, d]
            z = np.where(self.masks[field, min(d, 4)].numpy(), logits[rows], -np.inf)
            logp[rows] += z[np.arange(len(rows)), chars] - np.logaddexp.reduce(z, axis=1)
            go = rows[~np.isin(chars, (COLON, SEMI))]  # the texts read on past d
            if not len(go):
                break
            _, first, inverse = np.unique(texts[go, : d + 1], axis=0, return_index=True, return_inverse=True)
            reps = go[first]  # one text per distinct prefix
            y, (hs, cs) = lstm.step(
                raw.table[texts[reps, d]], ([h[reps] for h in state[0]], [c[reps] for c in state[1]])
            )
            out = raw.head(y)
            if memory is not None:  # mixed with the take's cache as it was when the field began
                keys, values = memory.keys[: memory.n], memory.values[: memory.n]
                for r in range(len(out)):
                    out[r] = step_log_probs(out[r], unit(y[r]), keys, values, memory.cfg)
            inverse = inverse.ravel()
            logits[go] = out[inverse]
            tops[go, d] = y[inverse]
            for layer, (h, c) in enumerate(zip(hs, cs, strict=True)):
                state[0][layer][go], state[1][layer][go] = h[inverse], c[inverse]
        return logp, [(([h[i] for h in state[0]], [c[i] for c in state[1]]), tops[i]) for i in range(n)]

    def _read_notes(self, texts: np.ndarray, field: int) -> tuple[np.ndarray, list]:
        """:meth:`_read` for the hierarchical model: its decoder stepped once per distinct prefix
        (the decoder is small: a step is a few tens of microseconds)."""
        seen: dict[tuple, tuple] = {(): (self.logits, self.state)}
        logp = np.zeros(len(texts))
        ends = []
        for i, text in enumerate(texts):
            chars = [int(c) for c in text[text >= 0]]
            for d, ch in enumerate(chars):
                logits, state = seen[tuple(chars[:d])]
                z = np.where(self.masks[field, min(d, 4)].numpy(), logits.astype(np.float64), -np.inf)
                logp[i] += z[ch] - np.logaddexp.reduce(z)
                if ch in (COLON, SEMI):
                    ends.append(state)
                    break
                if tuple(chars[: d + 1]) not in seen:
                    seen[tuple(chars[: d + 1])] = self.stepper.step(ch, state)
        return logp, ends

    def _draw(self, logp: np.ndarray, ends: list, temperature: float, texts: np.ndarray) -> int:
        """One of the texts drawn from ``logp`` at ``temperature`` (the session's random source);
        the network goes on from after it."""
        z = np.where(np.isfinite(logp), logp, -1e30) / max(1e-3, float(temperature))
        p = np.exp(z - z.max())
        k = min(
            len(p) - 1, int(np.searchsorted(np.cumsum(p / p.sum()), self.sampler.rng.random(), side="right"))
        )
        chars = texts[k][texts[k] >= 0]
        sep = int(chars[-1])
        self.tokens += int((texts[k] >= 0).sum())
        if self.notes:
            self.logits, self.state = self.stepper.step(sep, ends[k])
            return k
        lstm_state, tops = ends[k]
        memory = self.state[1]
        if memory is not None and len(chars) > 1:  # the characters read join the take's cache
            memory.add(int(chars[0]))
            memory.extend(unit(tops[: len(chars) - 2]), [int(c) for c in chars[1:-1]])
            memory.pending = unit(tops[len(chars) - 2])
        # the separator, read for this text only
        self.logits, self.state = self.stepper.step(sep, (lstm_state, memory))
        return k

    def flush(self) -> list[StepNote]:
        if self.pending is None:
            return []
        pitch, length = self.pending
        return [StepNote(self.pos, length, pitch - self.shift)]


# -- training and evaluation -------------------------------------------------------------------------
SEQ_LEN = 256


def tune_text(steps: np.ndarray) -> str:
    """One tune as training text (starting with its newline)."""
    return "\n" + notes_text(steps_notes(steps))


def _loss(model: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, int]:
    logits, _ = model(batch[:, :-1])
    y = batch[:, 1:]
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum"
    ), y.numel()


def text_nll(
    model: TokenLSTM, texts: list[str], cache: CacheConfig | None = None
) -> tuple[float, float, int, int]:
    """(nats per character, accuracy, characters, notes) over whole tunes read from their start,
    with the continuous ``cache`` when one is given."""
    nll, acc, count = sequence_nll(model, [encode_text(t) for t in texts], cache)
    return nll, acc, count, sum(t.count(";") for t in texts)


def train_model(
    name: str = "char-lstm", minutes: float = 25.0, corpus: str = "essen", resume: bool = False
) -> dict:
    """Train the hierarchical character model (:mod:`~musicgen_app.ml.families.char_notes`) on
    the melody corpus text; write models/<name>.*; returns the card."""
    from musicgen_app.ml import data as data_mod
    from musicgen_app.ml.families import char_notes as cn
    from musicgen_app.ml.families.checkpoint import save_checkpoint
    from musicgen_app.ml.training import TrainConfig, maybe_resume, train, training_record

    ds = data_mod.load_or_build(corpus, progress=False)
    split = data_mod.split_indices(ds)
    texts = {k: [tune_text(t.steps) for t in ds.tunes(v)] for k, v in split.items()}
    cfg = NoteCharConfig()
    items = {k: cn.text_items(v, cfg) for k, v in texts.items()}
    batch = cn.window_batcher(items["train"])
    model = NoteCharLSTM(cfg)
    previous = maybe_resume(name, model, resume)
    g = torch.Generator().manual_seed(5)
    valid_batch = cn.window_batcher(items["val"])
    valid = [valid_batch(g) for _ in range(6)]
    lr = 2e-3 if resume else 3e-3  # a resumed run starts from trained weights (and a fresh optimizer)
    res = train(model, cn.loss, batch, valid, TrainConfig(minutes=minutes, lr=lr, eval_every=100, patience=6))
    nll, acc, n = cn.items_nll(model, items["test"])
    notes = sum(t.count(";") for t in texts["test"])
    card = {
        "name": name,
        "family": "char-lstm",
        "architecture": NOTES_ARCHITECTURE,
        "seed_paper": "000",
        "title": "Character-level LSTM, Notes-Duration-Next text (paper 000), with a note-level LSTM",
        "description": CARD_DESCRIPTION,
        "data": {
            "dataset": f"{corpus.capitalize()} folk songs (music21 corpus)",
            "corpus": corpus,
            "note": "the melody model's cached dataset and split",
            "why": "the paper's hand-prepared Beethoven/Mozart/game-music MIDI files are not available "
            "offline; its encoding is monophonic in practice, and the folk melodies are the app's "
            "melody corpus (same split as the melody model, so the figures compare)",
            "tunes": {k: len(v) for k, v in texts.items()},
            "train_characters": sum(len(t) for t in texts["train"]),
            "transposition": "to C major / A minor",
        },
        "split": data_mod.split_record(ds, split),
        "config": asdict(cfg),
        "vocab": {"kind": "characters", "tokens": list(CHARS), "ms_per_16th": MS_PER_STEP},
        "training": training_record(res, previous),
        "metrics": {"test_nll": round(nll, 4), "test_accuracy": round(acc, 4), "test_tokens": n,
                    "test_nll_per_note": round(nll * n / max(1, notes), 4),
                    "unit": "nats/char"},
    }  # fmt: skip
    save_checkpoint(name, model, card)
    logger.info("saved %s: test NLL %.3f/char, accuracy %.3f", name, nll, acc)
    return card


CARD_DESCRIPTION = (
    "Each note as text 'pitch:duration_ms:next_onset_ms;' (120 BPM reference), generated character by "
    "character as in paper 000; a note streams as soon as its duration is written. Paper 000 ran 2 "
    "stacked LSTM layers over the characters; beyond it, the characters are modelled hierarchically: "
    "a note-level LSTM (2 x 256) runs once per completed note over that note's pitch, duration and "
    "next step read off its characters (and the next onset's place in the bar, modulo 48 16ths), and "
    "a one-layer character LSTM (128) writes each note's characters from the note-level state. "
    "Scored per character on the same text; no continuous cache."
)


def network_of(card: dict) -> TokenLSTM | NoteCharLSTM:
    """The untrained network a card describes: the hierarchical model (architecture
    ``char-lstm-notes``) or paper 000's flat character LSTM (the cards before it)."""
    if card.get("architecture") == NOTES_ARCHITECTURE:
        return NoteCharLSTM(NoteCharConfig(**card["config"]))
    return TokenLSTM(TokenLSTMConfig(**card["config"]))


def load_model_from_card(card: dict, path: str) -> TokenLSTM | NoteCharLSTM:
    """Rebuild the network from a card and load the weights at ``path``."""
    from musicgen_app.ml.families.checkpoint import load_weights

    model = network_of(card)
    load_weights(path, model)
    return model


def engine_factory(card: dict, path: str):
    """A function making fresh streaming engines over the model a card describes."""
    from threadpoolctl import threadpool_limits

    # small products (the batched field reads too): several BLAS threads only add contention
    threadpool_limits(limits=1, user_api="blas")
    model = load_model_from_card(card, path)
    cache = CacheConfig.from_card(card)
    return lambda: CharEngine(model, cache)
