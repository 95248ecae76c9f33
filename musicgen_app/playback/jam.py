"""Call and response: listen to a MIDI keyboard, answer each phrase when the player pauses.

:class:`Jam` drives a player (a :class:`~musicgen_app.playback.player_process.PlayerProcess` with
the keyboard opened in it: the keyboard plays through at once, and every message comes back on
``input_events`` with its ``time.perf_counter`` time). It keeps one timeline for the whole jam,
counted from the first note, at ``bpm`` (ticks at ``resolution`` per quarter):

* **listening**: the player's notes make up the phrase. When no key is down and nothing has
  arrived for ``silence_ms``, the answer is asked for: ``make_session(song, start_tick, bars)``
  (a :class:`~musicgen_app.ml.session.GenerationSession` continuing the phrase, in its key, at the
  jam's tempo) from the next 16th step at least ``lead_ms`` ahead, so the model's first note is
  ready before it is due;
* **answering**: the player plays from the current tick (nothing of the song, the tempo only);
  a worker thread iterates the session and appends each note as it comes, so the answer streams.
  A note-on from the keyboard interrupts: the session is cancelled (it stops within one model
  step) and the player stops at once (every sounding note silenced); that note starts the next
  phrase.

With ``metronome`` the jam's timeline is the metronome's: from the start the player clicks every
beat (:func:`~musicgen_app.playback.metronome.metronome_track`, ``beats_per_bar`` quarters a bar)
in one streaming run that lasts the jam, and the phrase is played to it. The pause that ends a
phrase is a beat of quiet (or ``silence_ms``, if shorter), and the answer starts at the next bar
line at least ``lead_ms`` ahead; its notes go into the clicking run, and an interruption drops
them (the player's ``cancel_session``: what was due is dropped, what sounds is silenced) while the
clicks go on.

Each exchange (:class:`Exchange`) keeps the phrase, what was really played of the answer (the
player's ``played`` list), and the answer's timing (deadline and send time of each event, from the
player's ``timing`` when it records it). No Qt, no model code: the caller supplies ``make_session``.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from musicgen_app.core.song import DRUM_CHANNEL, Note, Song, TempoChange, TimeSignature, Track
from musicgen_app.playback.metronome import metronome_track

logger = logging.getLogger(__name__)

POLL_S = 0.002
CLICK_LEAD_S = 0.2  # the first click comes this long after the jam starts


SILENCE_MS_RANGE = (50, 10_000)  # the pause that ends a phrase (ms): `jam --silence-ms`, the window
DEFAULT_SILENCE_MS = 600


@dataclass
class JamConfig:
    """How the jam listens and answers."""

    bars: int = 2  # bars of each answer
    silence_ms: float = float(DEFAULT_SILENCE_MS)  # a pause this long ends a phrase
    bpm: float = 120.0
    resolution: int = 480
    lead_ms: float = 100.0  # the answer starts at least this long after the pause is noticed
    channel: int = 0  # the answer's MIDI channel
    metronome: bool = False  # click every beat; answers start at a bar line
    beats_per_bar: int = 4  # quarters in a bar (with the metronome)
    metronome_bars: int = 32  # clicks are sent this many bars at a time, ahead of the music


@dataclass
class Exchange:
    """One phrase and its answer, in the jam's ticks."""

    phrase: list[Note]
    answer_start_tick: int
    answer: list[Note] = field(default_factory=list)  # what was played of it
    interrupted: bool = False
    asked_at: float = 0.0  # perf_counter time the pause was noticed
    interrupted_at: float | None = None  # perf_counter time of the interrupting note
    stopped_at: float | None = None  # when the player had stopped after it
    timing: list[tuple[float, float]] = field(default_factory=list)  # (deadline, sent) per event
    first_note_sent: float | None = None


class Jam:
    """The call-and-response loop (see the module docstring)."""

    def __init__(
        self,
        player: Any,
        make_session: Callable[[Song, int, int], Any],
        config: JamConfig | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
        on_exchange: Callable[[Exchange], None] | None = None,
        inbox: Any = None,
    ) -> None:
        self.player = player
        #: where ``(time, message)`` of the keyboard arrive (default: the player's ``input_events``)
        self.inbox = inbox if inbox is not None else player.input_events
        self.make_session = make_session
        self.cfg = config or JamConfig()
        self.clock = clock
        self.on_exchange = on_exchange
        self.exchanges: list[Exchange] = []
        self.t0: float | None = None  # perf_counter time of tick 0 (the first note)
        self._phrase: list[Note] = []
        self._down: dict[tuple[int, int], tuple[float, int]] = {}  # (channel, pitch) -> (time, velocity)
        self._last_event = 0.0
        self._session: Any = None
        self._worker: threading.Thread | None = None
        self._current: Exchange | None = None
        self._streamed: list[Note] = []  # with the metronome: the current answer's notes sent
        self._clicks_to = 0  # with the metronome: the tick the clicks sent so far reach
        self._session_id: int | None = None

    # -- time ---------------------------------------------------------------------------------
    @property
    def ticks_per_second(self) -> float:
        """Ticks per second at the jam's tempo."""
        return self.cfg.resolution * self.cfg.bpm / 60.0

    def tick_at(self, t: float) -> int:
        """The jam tick at perf_counter time ``t``."""
        return round((t - (self.t0 or t)) * self.ticks_per_second)

    def time_at(self, tick: float) -> float:
        """The perf_counter time of jam tick ``tick`` (the jam must have begun)."""
        return (self.t0 or 0.0) + tick / self.ticks_per_second

    @property
    def bar_ticks(self) -> int:
        """Ticks in a bar of the metronome."""
        return self.cfg.resolution * max(1, self.cfg.beats_per_bar)

    def song(self, notes: list[Note]) -> Song:
        """A one-track song of ``notes`` at the jam's tempo."""
        us = round(60_000_000 / self.cfg.bpm)
        return Song(
            resolution=self.cfg.resolution,
            tracks=[Track(name="Player", notes=sorted(notes))],
            tempos=[TempoChange(0, us)],
        )

    def warm_up(self) -> None:
        """Answer a made-up phrase once, silently: the model's first answer then costs no set-up
        (its inference tables are built here, not while an answer is due)."""
        grid = max(1, self.cfg.resolution // 4)
        notes = [Note(i * 2 * grid, 60 + i, (i + 1) * 2 * grid, 90) for i in range(4)]
        for _ in self.make_session(self.song(notes), 8 * grid, 1):
            pass

    # -- the loop -----------------------------------------------------------------------------
    def run(self, stop: threading.Event, *, max_exchanges: int | None = None) -> list[Exchange]:
        """Listen and answer until ``stop`` is set (or ``max_exchanges`` answers have ended)."""
        if self.cfg.metronome:
            self._start_clicks()
        try:
            while not stop.is_set():
                if max_exchanges is not None and self._done_count() >= max_exchanges:
                    break
                try:
                    t, msg = self.inbox.get(timeout=POLL_S)
                except queue.Empty:
                    self._tick(self.clock())
                    continue
                self._input(t, msg)
        finally:
            now = self.clock()
            self._interrupt(now, reason="stopped")
            for (channel, pitch), (began, velocity) in self._down.items():  # keys still down: closed now
                start = self.tick_at(began)
                self._phrase.append(Note(start, pitch, max(start + 1, self.tick_at(now)), velocity, channel))
            self._down.clear()
            if self.cfg.metronome:
                self.player.stop()
        return self.exchanges

    def _start_clicks(self) -> None:
        """The metronome: one streaming run from tick 0, a moment from now, for the whole jam; its
        clicks go in :data:`JamConfig.metronome_bars` at a time (:meth:`_more_clicks`: a long click
        track would take the player a while to read, and the first clicks would come late)."""
        self.t0 = self.clock() + CLICK_LEAD_S
        self._clicks_to = 0
        song = self.song([])
        song.tracks[0].channel = DRUM_CHANNEL
        self.player.play(song, 0, streaming=True, include_song=False, at_time=self.t0)
        self._more_clicks(self.t0)

    def _more_clicks(self, now: float) -> None:
        """With the metronome: the next clicks, once fewer than half the batch are still ahead."""
        batch = max(2, self.cfg.metronome_bars) * self.bar_ticks
        if self._clicks_to - self.tick_at(now) > batch // 2:
            return
        song = self.song([])
        song.time_signatures = [TimeSignature(0, max(1, self.cfg.beats_per_bar), 4)]
        end = self._clicks_to + batch
        clicks = [n for n in metronome_track(song, end).notes if n.start_tick >= self._clicks_to]
        self._clicks_to = end
        self.player.append_notes(clicks)

    def _done_count(self) -> int:
        return sum(1 for e in self.exchanges if e is not self._current)

    def _input(self, t: float, msg: Any) -> None:
        if msg.type not in ("note_on", "note_off"):
            return
        if self.t0 is None:
            self.t0 = t
        self._last_event = t
        key = (msg.channel, msg.note)
        if msg.type == "note_on" and msg.velocity > 0:
            if self._current is not None:
                self._interrupt(t, reason="interrupted")
            self._down[key] = (t, msg.velocity)
            return
        began = self._down.pop(key, None)
        if began is not None:
            start = self.tick_at(began[0])
            end = max(start + 1, self.tick_at(t))
            self._phrase.append(Note(start, msg.note, end, began[1], msg.channel))

    def _tick(self, now: float) -> None:
        """Between input events: end an answer that finished, or ask for one after a pause."""
        if self.cfg.metronome:
            self._more_clicks(now)
        if self._current is not None:
            if self._worker is None or self._worker.is_alive():
                return
            if self.cfg.metronome:  # the clicks go on: the answer is over when its last note is
                end = max((n.end_tick for n in self._streamed), default=self._current.answer_start_tick)
                if now >= self.time_at(end):
                    self._finish(self._current, now)
            elif self.player.wait(0):
                self._finish(self._current, now)
            return
        quiet = self.cfg.silence_ms / 1000
        if self.cfg.metronome:
            quiet = min(quiet, 60.0 / self.cfg.bpm)  # a beat of quiet, then the next bar line
        if self._phrase and not self._down and now - self._last_event >= quiet:
            self._answer(now)

    def _answer(self, now: float) -> None:
        phrase, self._phrase = self._phrase, []
        grid = self.bar_ticks if self.cfg.metronome else max(1, self.cfg.resolution // 4)
        start = self.tick_at(now + self.cfg.lead_ms / 1000)
        start = -(-start // grid) * grid  # the next 16th step, or with the metronome the next bar line
        ex = Exchange(phrase=phrase, answer_start_tick=start, asked_at=now)
        self.exchanges.append(ex)
        self._current = ex
        try:
            session = self.make_session(self.song(phrase), start, self.cfg.bars)
        except Exception as exc:  # a phrase the model cannot continue: say so, keep listening
            logger.warning("no answer to that phrase: %s", exc)
            self._current = None
            return
        self._session = session
        self._streamed, self._session_id = [], None
        if not self.cfg.metronome:  # with it, the notes go into the clicking run
            now = self.clock()  # the player puts this tick at this time, whatever the command's delay
            tick = self.tick_at(now)
            self.player.play(self.song([]), tick, streaming=True, include_song=False, at_time=now)
        self._worker = threading.Thread(
            target=self._stream, args=(session, start), name="musicgen-jam-answer", daemon=True
        )
        self._worker.start()
        logger.info("answering %d notes from tick %d", len(phrase), start)

    def _stream(self, session: Any, start_tick: int) -> None:
        """Worker: the session's notes to the player as they come. Without the metronome, an
        answer that would open with more than a beat of rest is moved earlier by whole beats (the
        player paused and waits for it: a second of silence more reads as no answer)."""
        shift: int | None = None
        for ev in session:
            note = getattr(ev, "note", None)
            if isinstance(note, Note):
                if shift is None:
                    shift = opening_rest_trim(
                        note.start_tick - start_tick, self.cfg.resolution, self.cfg.metronome
                    )
                begin = max(start_tick, note.start_tick - shift)  # a chord's later note: not before the start
                moved = replace(note, start_tick=begin, end_tick=max(begin + 1, note.end_tick - shift))
                if moved != note or note.channel != self.cfg.channel:
                    ev = replace(ev, note=replace(moved, channel=self.cfg.channel))
                if self.cfg.metronome:
                    if session.cancelled:
                        break
                    self._session_id = getattr(ev, "session_id", None)
                    self._streamed.append(ev.note)
                self.player.append_notes([ev])
            elif hasattr(ev, "reason"):
                break
        if not session.cancelled and not self.cfg.metronome:
            self.player.end_stream()

    def _interrupt(self, t: float, *, reason: str) -> None:
        ex = self._current
        if ex is None:
            return
        if self._session is not None:
            self._session.cancel()
        ex.interrupted = reason == "interrupted"
        ex.interrupted_at = t
        if self.cfg.metronome:
            if self._worker is not None:
                self._worker.join(timeout=2.0)
            if self._session_id is not None:
                self.player.cancel_session(self._session_id)  # the clicks go on
            ex.stopped_at = self.clock()
            self._finish(ex, ex.stopped_at)
            return
        self.player.stop()
        if self._worker is not None:
            self._worker.join(timeout=2.0)
        self.player.wait(2.0)
        ex.stopped_at = self.clock()
        self._finish(ex, ex.stopped_at)

    def _finish(self, ex: Exchange, now: float) -> None:
        if self.cfg.metronome:  # the run goes on: what was played is what was due before the end
            cut = self.tick_at(ex.interrupted_at) if ex.interrupted_at is not None else None
            ex.answer = sorted(
                n if cut is None or n.end_tick <= cut else replace(n, end_tick=max(n.start_tick + 1, cut))
                for n in self._streamed
                if cut is None or n.start_tick < cut
            )
        else:
            played = [n for _, n in getattr(self.player, "played", [])]
            ex.answer = sorted(played)
            timing = getattr(self.player, "timing", None) or []
            ex.timing = list(timing)
            ex.first_note_sent = getattr(self.player, "first_streamed_note_time", None)
        self._current = None
        self._session = None
        self._worker = None
        if self.on_exchange is not None:
            self.on_exchange(ex)
        logger.info("exchange %d: %d notes answered%s", len(self.exchanges), len(ex.answer),
                    " (interrupted)" if ex.interrupted else "")  # fmt: skip

    # -- results ------------------------------------------------------------------------------
    def recorded(self) -> Song:
        """Both parts as a song: track 1 the player, track 2 the model's answers (as played)."""
        player = [n for ex in self.exchanges for n in ex.phrase] + self._phrase
        answers = [n for ex in self.exchanges for n in ex.answer]
        song = self.song(player)
        song.tracks.append(Track(name="Model", channel=self.cfg.channel, notes=sorted(answers)))
        return song


def opening_rest_trim(rest_ticks: int, beat_ticks: int, metronome: bool) -> int:
    """Ticks to move an answer earlier whose first note comes ``rest_ticks`` after its start: whole
    beats, so that at most a beat of rest opens it and its notes stay where they were in the beat
    (none with the metronome: there the answer's place in the bar is the model's choice)."""
    if metronome or beat_ticks <= 0 or rest_ticks <= beat_ticks:
        return 0
    return (rest_ticks // beat_ticks) * beat_ticks


def timing_errors_ms(exchanges: list[Exchange]) -> list[float]:
    """Send time minus deadline (ms) of every answer event."""
    return [(sent - deadline) * 1000 for ex in exchanges for deadline, sent in ex.timing]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank); NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]
