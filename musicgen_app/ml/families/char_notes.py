"""char-lstm beyond paper 000: a hierarchical character model (a note-level LSTM over a character decoder).

The unit stays the character of paper 000's text (``pitch:duration_ms:next_onset_ms;``) and
generation stays character by character, but the work is split in two, as in hierarchical
character models of text (a word-level recurrence over a character decoder):

* a **note LSTM** runs once per completed note (each ``;``), over a summary of that note read off
  its characters: its pitch, duration and step to the next onset (in 16ths, the text's
  milliseconds rounded at 125 ms), and the next note's onset in its bar (the sum of the ``next``
  fields since the tune's start, modulo 48 16ths: 3/4, 4/4 and 6/8 bars all divide it);
* a small **character decoder** (one LSTM layer) writes the current note's characters, started
  from the note LSTM's state (its initial state, a per-note bias on its gates and on its output).

The probability of the text still factorises over its characters (each given every character
before it), so the NLL is per character on the same text as the flat model's; the note LSTM's
sequences are ~11 times shorter than the text, which is what makes it trainable on this CPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from musicgen_app.ml.families.common import LSTMStepper, cached_on, onednn

logger = logging.getLogger(__name__)

ARCHITECTURE = "char-lstm-notes"
CHARS = "\n0123456789:;"
NEWLINE, COLON, SEMI = 0, 11, 12
MS_PER_STEP = 125  # a 16th note at 120 BPM
NOTE_CHARS = 15  # at most 3 + 1 + 4 + 1 + 4 + 1 characters a note (longer notes are cut: never in the data)
BOS_PITCH = 128  # the note summary that starts a tune (the text's newline)
BAR_CYCLE = 48  # the onset's position is taken modulo 48 16ths


@dataclass
class NoteCharConfig:
    """Architecture arguments (stored in the card)."""

    vocab_size: int = len(CHARS)
    max_steps: int = 64  # durations and next steps are embedded up to this many 16ths (longer: clamped)
    field_dim: int = 32  # the embedding of each of pitch, duration, next and onset position
    note_hidden: int = 256
    note_layers: int = 2
    char_embed: int = 16
    note_to_char: int = 64  # the note state as the decoder sees it at every character
    char_hidden: int = 128
    dropout: float = 0.25


def parse_note(chars: str) -> tuple[int, int, int]:
    """``(pitch, duration steps, next steps)`` of a note's text ``pitch:dur:next`` (without ``;``;
    missing or malformed fields read as 0), the features clamped later."""
    parts = [*chars.split(":"), "", "", ""][:3]
    vals = [int(p) if p.isdigit() else 0 for p in parts]
    return vals[0], round(vals[1] / MS_PER_STEP), round(vals[2] / MS_PER_STEP)


def note_features(
    note: tuple[int, int, int] | None, pos: int, cfg: NoteCharConfig
) -> tuple[int, int, int, int]:
    """The note LSTM's input indices: the completed note (None: a tune's start) and the onset
    position of the note to come."""
    if note is None:
        return BOS_PITCH, 0, 0, pos % BAR_CYCLE
    p, d, n = note
    return min(127, max(0, p)), min(cfg.max_steps, max(0, d)), min(cfg.max_steps, max(0, n)), pos % BAR_CYCLE


def tune_items(notes: list[tuple[int, int, int]], cfg: NoteCharConfig) -> tuple[np.ndarray, np.ndarray]:
    """A tune's training items: (N, 4) note-LSTM inputs (the note before, or the start) and (N,
    NOTE_CHARS) character ids of the note to write, -1 padded."""
    feats = np.zeros((len(notes), 4), dtype=np.int64)
    chars = np.full((len(notes), NOTE_CHARS), -1, dtype=np.int64)
    pos = 0
    prev = None
    for i, (p, d, n) in enumerate(notes):
        feats[i] = note_features(prev, pos, cfg)
        text = f"{p}:{d * MS_PER_STEP}:{n * MS_PER_STEP};"[:NOTE_CHARS]
        chars[i, : len(text)] = [CHARS.index(c) for c in text]
        prev, pos = (p, d, n), pos + n
    return feats, chars


class NoteCharLSTM(nn.Module):
    """Note LSTM over note summaries -> per-note character decoder -> logits over characters."""

    def __init__(self, cfg: NoteCharConfig) -> None:
        super().__init__()
        self.cfg = cfg
        F, H, C = cfg.field_dim, cfg.note_hidden, cfg.char_hidden
        self.pitch = nn.Embedding(BOS_PITCH + 1, F)
        self.dur = nn.Embedding(cfg.max_steps + 1, F)
        self.next = nn.Embedding(cfg.max_steps + 1, F)
        self.pos = nn.Embedding(BAR_CYCLE, F)
        self.note_lstm = nn.LSTM(4 * F, H, cfg.note_layers, batch_first=True, dropout=cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.init = nn.Linear(H, 2 * C)  # the decoder's first (h, c)
        self.to_char = nn.Linear(H, cfg.note_to_char)
        self.char = nn.Embedding(cfg.vocab_size, cfg.char_embed)
        self.char_lstm = nn.LSTM(cfg.char_embed + cfg.note_to_char, C, 1, batch_first=True)
        self.head = nn.Linear(C + H, cfg.vocab_size)

    def note_states(self, feats: torch.Tensor, state: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        """The note LSTM's output (B, N, H) after each of ``feats`` (B, N, 4), and its state."""
        x = torch.cat(
            [self.pitch(feats[..., 0]), self.dur(feats[..., 1]), self.next(feats[..., 2]),
             self.pos(feats[..., 3])], -1,
        )  # fmt: skip
        return self.note_lstm(x, state)

    def forward(self, feats: torch.Tensor, chars: torch.Tensor) -> torch.Tensor:
        """Logits (B, N, L, V) of each note's characters ``chars`` (B, N, L; -1 padded) given the
        notes before (``feats`` (B, N, 4)) and the note's characters before each."""
        B, N, L = chars.shape
        s, _ = self.note_states(feats)
        s = self.drop(s).reshape(B * N, -1)  # (BN, H)
        prev = torch.cat([torch.full_like(chars[..., :1], SEMI), chars[..., :-1].clamp(min=0)], -1)
        x = torch.cat(
            [self.char(prev.reshape(B * N, L)), self.to_char(s)[:, None].expand(-1, L, -1)], -1
        )  # (BN, L, E + S)
        h0, c0 = torch.tanh(self.init(s)).chunk(2, -1)
        y, _ = self.char_lstm(x, (h0[None].contiguous(), c0[None].contiguous()))  # (BN, L, C)
        y = torch.cat([self.drop(y), s[:, None].expand(-1, L, -1)], -1)
        return self.head(y).reshape(B, N, L, -1)


def loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over the batch's characters, and their count."""
    feats, chars = batch
    logits = model(feats, chars)
    mask = chars >= 0
    return nn.functional.cross_entropy(logits[mask], chars[mask], reduction="sum"), int(mask.sum())


def text_items(texts: list[str], cfg: NoteCharConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per tune text (``\\npitch:dur:next;...``), its training items (:func:`tune_items`)."""
    out = []
    for t in texts:
        notes = [parse_note(n) for n in t.strip("\n").split(";") if n]
        out.append(tune_items(notes, cfg))
    return out


def window_batcher(items: list[tuple[np.ndarray, np.ndarray]], window: int = 64, size: int = 32):
    """A batch maker of ``size`` windows of ``window`` consecutive items of the tunes' concatenation."""
    feats = np.concatenate([f for f, _ in items])
    chars = np.concatenate([c for _, c in items])
    window = max(1, min(window, len(feats) - 1))

    def batch(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, len(feats) - window + 1, (size,), generator=g).numpy()
        idx = starts[:, None] + np.arange(window)[None]
        return torch.from_numpy(feats[idx]), torch.from_numpy(chars[idx])

    return batch


def items_nll(
    model: NoteCharLSTM, items: list[tuple[np.ndarray, np.ndarray]], batch: int = 64
) -> tuple[float, float, int]:
    """(nats per character, accuracy, characters) of whole tunes, each read from its start."""
    total, correct, count = 0.0, 0, 0
    model.eval()
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
    with torch.no_grad():
        for k in range(0, len(order), batch):
            group = [items[i] for i in order[k : k + batch]]
            n = max(len(f) for f, _ in group)
            feats = np.zeros((len(group), n, 4), dtype=np.int64)
            feats[..., 0] = BOS_PITCH
            chars = np.full((len(group), n, NOTE_CHARS), -1, dtype=np.int64)
            for j, (f, c) in enumerate(group):
                feats[j, : len(f)], chars[j, : len(c)] = f, c
            x, y = torch.from_numpy(feats), torch.from_numpy(chars)
            logp = torch.log_softmax(model(x, y), -1)
            mask = y >= 0
            tgt = y[mask]
            lp = logp[mask]
            total -= float(lp.gather(1, tgt[:, None]).sum())
            correct += int((lp.argmax(-1) == tgt).sum())
            count += int(mask.sum())
    return total / max(1, count), correct / max(1, count), count


# -- batch-1 streaming ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoteState:
    """The stepper's state: the note LSTM's, the current note's decoder inputs and state, the
    characters of the current note so far and the onset position of the note being written."""

    note: tuple[list, list]
    gates: np.ndarray  # (4C,) the note's bias on the decoder's gates
    out: np.ndarray  # (V,) the note's bias on the logits
    dec: tuple[list, list]
    written: str
    pos: int


class NoteCharStepper:
    """Numpy batch-1 steps of a :class:`NoteCharLSTM` with the interface of the token steppers:
    ``prefill(ids)`` and ``step(char, state)`` return the logits of the next character and the state."""

    def __init__(self, net: NoteCharLSTM) -> None:
        self.net = net
        cfg = net.cfg
        self.note = LSTMStepper(net.note_lstm)
        self.dec = LSTMStepper(net.char_lstm)
        F, E = cfg.field_dim, cfg.char_embed

        def a(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().float().numpy())

        with torch.no_grad():
            w0 = self.note.w_ih[0]  # (4F, 4H)
            self.tables = [a(emb.weight) @ w0[i * F : (i + 1) * F]
                           for i, emb in enumerate((net.pitch, net.dur, net.next, net.pos))]  # fmt: skip
            wd = self.dec.w_ih[0]  # (E + S, 4C)
            self.char_table = a(net.char.weight) @ wd[:E]  # (V, 4C)
            self.to_char = (a(net.to_char.weight.T) @ wd[E:], a(net.to_char.bias) @ wd[E:])  # (H, 4C), (4C,)
            self.init_w, self.init_b = a(net.init.weight.T), a(net.init.bias)
            C = cfg.char_hidden
            self.head_c, self.head_s = a(net.head.weight[:, :C].T), a(net.head.weight[:, C:].T)
            self.head_b = a(net.head.bias)
        self.cfg = cfg
        H, L = cfg.note_hidden, cfg.note_layers
        self.zero = ([np.zeros(H, np.float32)] * L, [np.zeros(H, np.float32)] * L)

    @classmethod
    def of(cls, net: NoteCharLSTM) -> NoteCharStepper:
        """The stepper of ``net`` (built once, kept on the network)."""
        return cached_on(net, lambda: cls(net))

    def _begin(self, s: np.ndarray, note: tuple[list, list], pos: int) -> tuple[np.ndarray, NoteState]:
        """A note's decoder started from the note state ``s`` (H,): logits of its first character."""
        C = self.cfg.char_hidden
        h0 = np.tanh(s @ self.init_w + self.init_b)
        gates = s @ self.to_char[0] + self.to_char[1]
        out = s @ self.head_s + self.head_b
        y, dec = self.dec.step(self.char_table[SEMI] + gates, ([h0[:C]], [h0[C:]]))
        return y @ self.head_c + out, NoteState(note, gates, out, dec, "", pos)

    def _note_step(self, feats: tuple[int, ...], note: tuple[list, list]) -> tuple[np.ndarray, tuple]:
        proj = sum(t[f] for t, f in zip(self.tables, feats, strict=True))
        return self.note.step(proj, note)

    def start(self, pos: int = 0) -> tuple[np.ndarray, NoteState]:
        """A tune's start (the newline): logits of its first character."""
        s, note = self._note_step(note_features(None, pos, self.cfg), self.zero)
        return self._begin(s, note, pos)

    def prefill(self, tokens: list[int], pos: int = 0) -> tuple[np.ndarray, NoteState]:
        """Read a prompt ``\\n`` + whole notes (+ the current note's first characters), the first
        note at onset position ``pos``: the note LSTM over the whole notes in one pass, the
        decoder over the last note's characters only."""
        text = "".join(CHARS[t] for t in tokens).lstrip("\n")
        *whole, partial = text.split(";")
        notes = [parse_note(n) for n in whole]
        if not notes:
            logits, state = self.start(pos)
        else:
            feats, p, prev = [], pos, None
            for n in notes:
                feats.append(note_features(prev, p, self.cfg))
                prev, p = n, p + n[2]
            feats.append(note_features(prev, p, self.cfg))
            with onednn():
                y, st = self.net.note_states(torch.tensor([feats], dtype=torch.long))
            s = y[0, -1].detach().numpy()  # (H,)
            logits, state = self._begin(s, LSTMStepper.state_from(st), p)
        for ch in partial:
            logits, state = self.step(CHARS.index(ch), state)
        return logits, state

    def step(self, token: int, state: NoteState) -> tuple[np.ndarray, NoteState]:
        """Logits (V,) of the character after ``token``, and the new state (``;`` ends the note:
        one note-LSTM step; a newline starts a new tune)."""
        if token == NEWLINE:
            return self.start(0)
        if token == SEMI:
            note = parse_note(state.written)
            pos = state.pos + note[2]
            s, ns = self._note_step(note_features(note, pos, self.cfg), state.note)
            return self._begin(s, ns, pos)
        y, dec = self.dec.step(self.char_table[token] + state.gates, state.dec)
        st = NoteState(state.note, state.gates, state.out, dec, state.written + CHARS[token], state.pos)
        return y @ self.head_c + state.out, st
