"""Fill: regenerate a time range of one track from the music on both sides of it.

The range ``[start_tick, end_tick)`` of a track is emptied and a grid melody model
(:class:`~musicgen_app.ml.models.GridMelodyModel`: melody-lstm, wavenet) writes a new passage
into it, without retraining (sample-and-rescore infilling):

1. the model is prefilled once on the music before the range (:func:`~musicgen_app.ml.generate.grid_prompt`);
2. ``candidates`` middles are sampled from that state, each with its own seed
   (:func:`candidate_seed`), under a key lock and a register taken from the music on *both* sides;
3. each is scored by the model's log-likelihood of what follows the range (``suffix_bars`` bars
   of the suffix, read after prefix + candidate): the suffix must follow the middle musically;
4. the best-scoring middle (the first of equal ones; a degenerate take only when every take is)
   is kept. The same seed gives the same fill.

The edges, by note onset: a note belongs to the range when it *starts* inside it. Every note that
starts outside is kept exactly as it was, so everything outside the range is unchanged in the
exported file (same events at the same ticks). A note that starts before the range and still
sounds in it is tied in on purpose (``edges="keep"``, the default): the fill begins when it
ends; with ``edges="cut"`` it is cut at the range start instead (its note-off moves to the edge).
Generated notes never sound past the range end: a take's last note is closed there.

:class:`FillSession` is a :class:`~musicgen_app.ml.session.GenerationSession`: iterate it for
NoteEvents then one SessionFinished, cancel it from any thread, exactly like a continuation (the
GUI and ``musicgen fill --play`` stream it the same way). Its notes come once the candidates are
scored (a few hundred model steps: milliseconds). :func:`fill_song` drains it and returns the
song with the range replaced.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.song import Note, Song
from musicgen_app.errors import GenerationError, MusicgenError
from musicgen_app.ml.generate import (
    MAX_PROMPT_STEPS,
    GridNoteDecoder,
    GridPrompt,
    ModelAdapter,
    grid_prompt,
    is_degenerate,
)
from musicgen_app.ml.sampling import Sampler, SamplingConfig, TokenClasses, random_seed
from musicgen_app.ml.session import GenerationSession
from musicgen_app.ml.tokenizers import HOLD_ID, notes_to_steps

if TYPE_CHECKING:
    from musicgen_app.ml.models import GenerativeModel

logger = logging.getLogger(__name__)

__all__ = [
    "EDGE_POLICIES",
    "FillPlan",
    "FillSession",
    "bars_to_range",
    "fill_notes",
    "fill_song",
    "plan_fill",
    "split_at_range",
    "start_fill_session",
]

EDGE_POLICIES = ("keep", "cut")
DEFAULT_CANDIDATES = 8
#: the model Fill uses when none is named (``musicgen fill``) or the chosen one cannot fill (the window)
DEFAULT_FILL_MODEL = "melody-lstm"
SUFFIX_BARS = 2  # bars after the range that score a candidate
CONTEXT_BARS = 8  # bars on each side whose notes set the key lock
REGISTER_BARS = 4  # bars on each side whose notes set the register
REGISTER_MARGIN = 2  # semitones a fill may go beyond its neighbours' range
DEGENERATE_PENALTY = 1e6
FIM_PREFIX_STEPS = 128  # a fill-in-the-middle model reads this much prefix (as it was trained)
DENSITY_WEIGHT = 3.0  # nats per octave of note density away from the neighbours' (a factor 2)


# -- ranges -----------------------------------------------------------------------------------------
def bars_to_range(song: Song, first_bar: int, last_bar: int) -> tuple[int, int]:
    """The ticks ``[start, end)`` of bars ``first_bar..last_bar`` (1-based, both included).

    Raises GenerationError when the range is reversed or runs past the song's last bar."""
    if first_bar < 1 or last_bar < first_bar:
        raise GenerationError(f"bars {first_bar}-{last_bar} are not a range (count bars from 1)")
    end_of_song = song.length_ticks
    # every bar line up to the first one at or after the end of the song
    lines = song.bar_starts(end_of_song + song.ticks_per_bar(end_of_song))
    n_bars = sum(1 for t in lines if t < end_of_song)
    if last_bar > n_bars:
        raise GenerationError(
            f"bars {first_bar}-{last_bar} run past the end of the song (it has {n_bars} bars)"
        )
    return lines[first_bar - 1], lines[last_bar]


def split_at_range(notes: Sequence[Note], start_tick: int, end_tick: int) -> tuple[list, list, list]:
    """``(before, inside, after)`` by onset: before ``start_tick``, in the range, from ``end_tick`` on."""
    before = [n for n in notes if n.start_tick < start_tick]
    inside = [n for n in notes if start_tick <= n.start_tick < end_tick]
    after = [n for n in notes if n.start_tick >= end_tick]
    return before, inside, after


def _line_end(before: Sequence[Note]) -> int | None:
    """Where the melody line's last note before the range ends (the latest onset, its highest
    note, as the grid reads a melody); None when there is none."""
    if not before:
        return None
    last = max(before, key=lambda n: (n.start_tick, n.pitch))
    return last.end_tick


# -- the plan ---------------------------------------------------------------------------------------
@dataclass
class FillPlan:
    """A fill's prompt, middle and suffix as model tokens, and how to map the middle back."""

    prompt: GridPrompt  # the prefix (start_tick: the first step of the middle, on the grid)
    range_ticks: tuple[int, int]  # the range asked for
    n_steps: int  # steps of the middle
    held_steps: int  # leading steps of the middle where a tied-in note still sounds (forced holds)
    suffix: list[int]  # tokens after the middle (in the model's key), scored per candidate
    tokens: list[int]  # what the model reads before the middle (the prefix; FIM: suffix then prefix)
    cond: Callable[[int], tuple[int, int, int]] | None  # FIM: conditions of input k (see melody_fim)
    pitch_range: tuple[int, int] | None  # the neighbours' register, in the model's key
    forbid_hold_first: bool  # the prefix ends on a note that stops at the range: no hold at step 0
    expected_notes: float  # notes the middle would hold at the neighbours' density
    song: Song  # the song with the range emptied (and edge notes cut with edges="cut")
    removed: list[Note] = field(default_factory=list)  # the range's old notes

    def tick_of_step(self, i: int) -> int:
        """Song tick of middle step ``i``."""
        return self.prompt.tick_of_step(i)


def _near(notes: Sequence[Note], lo: int, hi: int) -> list[Note]:
    return [n for n in notes if n.end_tick > lo and n.start_tick < hi]


def plan_fill(
    model: GenerativeModel,
    song: Song,
    track: int,
    start_tick: int,
    end_tick: int,
    *,
    key_lock: str | None = "auto",
    edges: str = "keep",
    suffix_bars: int = SUFFIX_BARS,
) -> FillPlan:
    """Everything a fill of ``[start_tick, end_tick)`` on ``track`` needs (raises GenerationError)."""
    from musicgen_app.ml.models import GridMelodyModel

    if not isinstance(model, GridMelodyModel):
        raise GenerationError(
            f"model {model.name} cannot fill a range (use a melody model: melody-lstm, wavenet)"
        )
    if edges not in EDGE_POLICIES:
        raise GenerationError(f"edges must be one of {', '.join(EDGE_POLICIES)}, not {edges!r}")
    if not 0 <= track < len(song.tracks):
        raise GenerationError(f"the song has no track {track + 1} (it has {len(song.tracks)})")
    if not 0 <= start_tick < end_tick:
        raise GenerationError(f"the range {start_tick}-{end_tick} is empty")
    tr = song.tracks[track]
    before, inside, after = split_at_range(sorted(tr.notes), start_tick, end_tick)
    if edges == "cut":
        before = [replace(n, end_tick=start_tick) if n.end_tick > start_tick else n for n in before]
    holed = song.copy()
    holed.tracks[track].notes = sorted([*before, *after])
    bar = song.ticks_per_bar(start_tick)
    context = _near(before, start_tick - CONTEXT_BARS * bar, start_tick) + _near(
        after, end_tick, end_tick + CONTEXT_BARS * bar
    )
    fim = hasattr(model, "fill_adapter")
    prompt = grid_prompt(
        model.tokenizer,
        holed,
        track,
        start_tick,
        1,
        key_lock,
        key_notes=context or None,
        max_prompt_steps=FIM_PREFIX_STEPS if fim else MAX_PROMPT_STEPS,
    )
    tps = prompt.ticks_per_step
    n_steps = max(0, math.floor((end_tick - prompt.start_tick) / tps + 1e-9))
    line_end = _line_end(before)
    tied_end = start_tick if line_end is None else max(start_tick, line_end)
    held = min(n_steps, max(0, math.ceil((tied_end - prompt.start_tick) / tps - 1e-9)))
    # the suffix, on the model's grid from the end of the middle
    suffix_start = prompt.tick_of_step(n_steps)
    suffix_end = suffix_start + suffix_bars * song.ticks_per_bar(end_tick)
    suffix_notes = [n for n in after if n.start_tick < suffix_end]
    suffix: list[int] = []
    if suffix_notes:
        codes = notes_to_steps(
            ((n.start_tick, n.end_tick, n.pitch + prompt.transpose) for n in suffix_notes),
            suffix_start,
            suffix_end,
            tps,
        )
        suffix = model.tokenizer.encode_steps(codes).tolist()
    tokens, cond = prompt.tokens, None
    if fim:  # suffix, then prefix (see musicgen_app.ml.melody_fim); only the join into s0 is scored
        from musicgen_app.ml.melody_fim import fim_layout, gap_bucket

        tokens, steps, gaps = fim_layout(prompt.tokens[1:], suffix, n_steps, model.tokenizer)
        position = prompt.bar_position(holed)
        n_prompt, n_prefix = len(tokens), len(prompt.tokens) - 1

        def cond(k: int) -> tuple[int, int, int]:
            if k < n_prompt:
                return (*position(steps[k]), gaps[k])
            j = k - n_prompt  # generated middle step j predicts step n_prefix + j + 1
            return (*position(n_prefix + j + 1), gap_bucket(n_steps - j - 1))

        suffix = suffix[:1]
    reg_bar = REGISTER_BARS * bar
    neighbours = _near(before, start_tick - reg_bar, start_tick) + [
        n for n in after if n.start_tick < end_tick + reg_bar
    ]
    span = 2 * REGISTER_BARS * bar
    expected = len(neighbours) / span * max(0, n_steps - held) * tps if neighbours else math.nan
    pitches = [n.pitch + prompt.transpose for n in neighbours or context]
    pitch_range = (min(pitches), max(pitches)) if pitches else None
    # the prompt ends on a sounding note that stops at the range: a hold would mean "longer"
    forbid_hold_first = (
        held == 0
        and line_end is not None
        and round((line_end - prompt.first_tick) / tps)
        >= round((prompt.start_tick - prompt.first_tick) / tps)
    )
    return FillPlan(
        prompt=replace(prompt, n_steps=n_steps),
        range_ticks=(start_tick, end_tick),
        n_steps=n_steps,
        held_steps=held,
        suffix=suffix,
        tokens=tokens,
        cond=cond,
        pitch_range=pitch_range,
        forbid_hold_first=forbid_hold_first,
        expected_notes=expected,
        song=holed,
        removed=inside,
    )


# -- the session ------------------------------------------------------------------------------------
@dataclass
class Candidate:
    """One sampled middle and its score."""

    seed: int
    tokens: list[int]
    notes: list[Note]
    suffix_logprob: float  # log-likelihood (nats) of the suffix after prefix + this middle
    density_penalty: float  # DENSITY_WEIGHT * |log2| of its note count over the neighbours' density
    degenerate: bool

    @property
    def score(self) -> float:
        """Higher is better."""
        return self.suffix_logprob - self.density_penalty - (DEGENERATE_PENALTY if self.degenerate else 0.0)


def candidate_seed(seed: int, index: int) -> int:
    """The seed of candidate ``index`` of a fill seeded ``seed``: the seed itself for the first,
    then independent 63-bit seeds (neighbouring fill seeds share no candidate)."""
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max()
    return z - math.log(float(np.exp(z).sum()))


class FillSession(GenerationSession):
    """Sample ``candidates`` middles, keep the one the suffix likes best, yield its notes.

    Cancellation is checked before every model step; a cancelled fill yields no note.
    """

    def __init__(
        self,
        adapter: ModelAdapter,
        plan: FillPlan,
        classes: TokenClasses,
        config: SamplingConfig,
        tokenizer: Any,
        *,
        candidates: int = DEFAULT_CANDIDATES,
        track: int = 0,
        density_weight: float = DENSITY_WEIGHT,
    ) -> None:
        super().__init__(config.temperature)
        self.density_weight = float(density_weight)
        if candidates < 1:
            raise GenerationError("a fill needs at least one candidate")
        self.adapter = adapter
        self.plan = plan
        self.classes = classes
        self.config = config
        self.tokenizer = tokenizer
        self.n_candidates = int(candidates)
        self.track = track
        self.seed = int(config.seed if config.seed is not None else random_seed())
        self.n_steps = plan.n_steps
        self.candidates: list[Candidate] = []
        self.best: Candidate | None = None

    def _sampler(self, seed: int) -> Sampler:
        p = self.plan.prompt
        sampler = Sampler(
            self.classes,
            self.config,
            allowed_pcs=p.allowed_pcs,
            pitch_range=self.plan.pitch_range,
            seed=seed,
            pitch_shift=p.transpose,
        )
        for t in p.tokens[1:]:
            sampler.observe(int(t))
        sampler.variety = None  # a fill's candidates are chosen by how they join both sides instead
        return sampler

    def _decode(self, tokens: Sequence[int]) -> list[Note]:
        p = self.plan.prompt
        dec = GridNoteDecoder(
            self.tokenizer, p.tick_of_step, transpose=-p.transpose, velocity=p.velocity, channel=p.channel
        )
        notes: list[Note] = []
        for t in tokens:
            notes += dec.push(int(t))
        notes += dec.flush()
        end = self.plan.range_ticks[1]
        return [replace(n, end_tick=min(n.end_tick, end)) for n in notes if n.start_tick < end]

    def _candidate(self, seed: int, state: Any, logits: np.ndarray) -> Candidate | None:
        """One middle from the prefix's state, scored on the suffix (None when cancelled)."""
        plan = self.plan
        sampler = self._sampler(seed)
        tokens: list[int] = []
        for i in range(plan.n_steps):
            if self.cancelled:
                return None
            if i < plan.held_steps:
                token = HOLD_ID
                sampler.observe(token)
            else:
                z = logits
                if i == 0 and plan.forbid_hold_first:
                    z = logits.copy()
                    z[HOLD_ID] = -1e30
                token = sampler.sample(z, self._temperature, self.plan.prompt.tick_of_step(i))  # chords
            tokens.append(token)
            state, logits = self.adapter.step(token, state)
        logprob = 0.0
        for j, token in enumerate(plan.suffix):
            if self.cancelled:
                return None
            logprob += float(_log_softmax(logits)[token])
            if j + 1 < len(plan.suffix):
                state, logits = self.adapter.step(token, state)
        notes = self._decode(tokens)
        degenerate = is_degenerate(notes, plan.n_steps - plan.held_steps) and plan.n_steps > plan.held_steps
        expected = plan.expected_notes
        density = (
            0.0
            if math.isnan(expected)
            else self.density_weight * abs(math.log2((len(notes) + 1) / (expected + 1)))
        )
        return Candidate(seed, tokens, notes, logprob, density, degenerate)

    def __iter__(self) -> Iterator[NoteEvent | SessionFinished]:
        started = time.perf_counter()
        reason, message, seq, steps = "done", "", 0, 0
        try:
            if self.cancelled:
                reason = "cancelled"
            elif self.plan.n_steps > self.plan.held_steps:
                state, logits = self.adapter.prefill(self.plan.tokens)
                for c in range(self.n_candidates):
                    cand = self._candidate(candidate_seed(self.seed, c), state, logits)
                    if cand is None:
                        reason = "cancelled"
                        break
                    steps += len(cand.tokens) + len(self.plan.suffix)
                    self.candidates.append(cand)
                if reason == "done":
                    self.best = max(self.candidates, key=lambda c: c.score)  # the first of equals
                    for note in self.best.notes:
                        if self.cancelled:
                            reason = "cancelled"
                            break
                        yield NoteEvent(self.id, seq, note, self.track)
                        seq += 1
        except (MusicgenError, RuntimeError, ValueError) as exc:
            logger.warning("fill session %d failed: %s", self.id, exc, exc_info=True)
            reason, message = "error", str(exc)
        yield SessionFinished(
            self.id, reason, message, notes=seq, tokens=steps, seconds=time.perf_counter() - started
        )


# -- entry points -----------------------------------------------------------------------------------
def start_fill_session(
    model: GenerativeModel,
    song: Song,
    track: int,
    start_tick: int,
    end_tick: int,
    *,
    sampling: SamplingConfig | None = None,
    candidates: int = DEFAULT_CANDIDATES,
    edges: str = "keep",
    suffix_bars: int = SUFFIX_BARS,
    density_weight: float = DENSITY_WEIGHT,
) -> FillSession:
    """A session filling ``[start_tick, end_tick)`` of ``track``; ``session.plan.song`` is the song
    with the range emptied (add the session's notes to it)."""
    cfg = sampling or SamplingConfig()
    cfg = replace(cfg, register_margin=REGISTER_MARGIN if cfg.register_margin is not None else None)
    plan = plan_fill(
        model, song, track, start_tick, end_tick, key_lock=cfg.key_lock, edges=edges, suffix_bars=suffix_bars
    )
    if plan.cond is not None:
        adapter = model.fill_adapter(plan.cond)  # type: ignore[attr-defined]
    else:
        adapter = model.adapter(plan.prompt.bar_position(plan.song))  # type: ignore[attr-defined]
    return FillSession(
        adapter,
        plan,
        model.classes,  # type: ignore[attr-defined]
        cfg,
        model.tokenizer,  # type: ignore[attr-defined]
        candidates=candidates,
        track=track,
        density_weight=density_weight,
    )


def fill_notes(session: FillSession) -> list[Note]:
    """Drain a fill session into its notes (raises GenerationError when it failed)."""
    notes: list[Note] = []
    for ev in session:
        if isinstance(ev, NoteEvent):
            notes.append(ev.note)
        elif ev.reason == "error":
            raise GenerationError(f"the fill failed: {ev.message}")
    return notes


def fill_song(
    model: GenerativeModel,
    song: Song,
    track: int,
    start_tick: int,
    end_tick: int,
    **options: Any,
) -> tuple[Song, FillSession]:
    """``song`` with ``[start_tick, end_tick)`` of ``track`` regenerated, and the session that did
    it (its ``best`` candidate, its ``plan``). ``options`` go to :func:`start_fill_session`."""
    session = start_fill_session(model, song, track, start_tick, end_tick, **options)
    notes = fill_notes(session)
    out = session.plan.song
    out.tracks[track].notes = sorted([*out.tracks[track].notes, *notes])
    return out, session
