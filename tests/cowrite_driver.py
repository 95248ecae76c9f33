"""A co-writing session in the real ``musicgen gui`` process, driven on a virtual X screen with real
keys and mouse (xdotool), shared by tests/gui/test_cowrite_session.py (which asserts on it) and
benchmarks/bench_session.py ``--cowrite`` (which prints its figures).

The session, as a musician takes a song from a DAW through the co-writing tools: open a
multi-track MIDI file written by another program (a POP909 song when ``../shared/data`` has it,
else a DAW-like file written here), save it as a project (Ctrl+S, Enter), then cycles of

* **Accompany** the melody (Ctrl+Shift+A), with a save pressed while the take streams (the UI
  thread must not wait on the model), then accept, reject, Again + accept or leave pending;
* **Fill** two bars of the melody (drag on the ruler for the range, Ctrl+Shift+Return), accept
  or reject; the loop cleared again (right-click on the ruler);
* **type a chord** at a beat (click the ruler, Ctrl+K, ``Am7``, Enter);
* undo and redo runs;

each followed by Ctrl+S, after which the saved project is read and checked: the melody outside
every accepted fill is the file's melody, note for note; an accepted accompaniment is one more
track; the typed chord is on the lane. Then Export MIDI (Ctrl+E, Enter): the exported file must
read back with the project's tracks. Quit, open the project again: the pending takes come back.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from session_driver import App, DrivenSession, Geometry, SessionError, SessionResult

from musicgen_app.core.project import load_project
from musicgen_app.core.song import Note, Song

POP909_SONG = Path(__file__).resolve().parents[2] / "shared" / "data" / "pop909" / "003" / "003.mid"


@dataclass
class CowriteResult(SessionResult):
    """What the co-writing session measured, besides :class:`SessionResult`'s figures."""

    source: str = ""
    accompany_takes: list[float] = field(default_factory=list)  # key -> take, seconds, in order
    saves_while_streaming: list[float] = field(default_factory=list)  # Ctrl+S -> saved, seconds
    fills_accepted: int = 0
    accompaniments_accepted: int = 0
    chords_typed: int = 0
    exported_tracks: int = 0
    checks: int = 0  # saved projects read back and checked


def daw_like_file(path: Path) -> None:
    """A type-1 MIDI file as a DAW writes it: a conductor track (tempo, 4/4, key), a named melody
    track and a bass track with program changes, running status and note-offs as note-on 0;
    32 bars at 480 ticks per quarter."""
    import mido

    q = 480
    mid = mido.MidiFile(type=1, ticks_per_beat=q)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("track_name", name="Song", time=0),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(96), time=0),
            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
            mido.MetaMessage("key_signature", key="G", time=0),
            mido.MetaMessage("end_of_track", time=32 * 4 * q),
        ]
    )
    phrase = [67, 71, 74, 72, 71, 69, 67, 66, 64, 66, 67, 69, 71, 69, 67, 67]
    bass_roots = [43, 48, 50, 43, 40, 48, 50, 43]

    def track(name: str, channel: int, program: int, notes: list[tuple[int, int, int]]) -> mido.MidiTrack:
        events = []
        for start, length, pitch in notes:
            events += [(start, 1, pitch), (start + length, 0, pitch)]
        t = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        t.append(mido.Message("program_change", channel=channel, program=program, time=0))
        now = 0
        for tick, on, pitch in sorted(events, key=lambda e: (e[0], e[1])):
            t.append(
                mido.Message(
                    "note_on", channel=channel, note=pitch, velocity=90 if on else 0, time=tick - now
                )
            )
            now = tick
        t.append(mido.MetaMessage("end_of_track", time=0))
        return t

    melody = [(i * q, q - 30, phrase[i % 16] + (2 if (i // 16) % 4 == 2 else 0)) for i in range(32 * 4 - 4)]
    bass = [(b * 4 * q, 4 * q - 60, bass_roots[b % 8]) for b in range(32)]
    mid.tracks += [conductor, track("Lead", 0, 73, melody), track("Bass", 1, 33, bass)]
    mid.save(str(path))


def _read_song(project: Path) -> Song:
    return load_project(project).song


class CowriteSession(DrivenSession):
    """Drives one co-writing session; :meth:`run` returns its :class:`CowriteResult`."""

    result: CowriteResult

    def __init__(self, workdir: Path, display: str, *, cycles: int = 8, rss_limit_mb: float = 1536.0) -> None:
        super().__init__(workdir, display, rss_limit_mb)
        self.cycles = cycles
        self.source = workdir / "song.mid"
        self.project = workdir / "song.mgproj"
        self.result = CowriteResult()
        self.melody: list[Note] = []  # the melody track as the last check left it
        self.tracks = 0
        self.chords: set[tuple[int, str]] = set()

    # -- plumbing ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        """The MIDI file to open, and settings for one take at a time with a fixed seed."""
        import json

        self.dir.mkdir(parents=True, exist_ok=True)
        if POP909_SONG.exists():
            shutil.copy(POP909_SONG, self.source)
            self.result.source = "POP909 003.mid"
        else:
            daw_like_file(self.source)
            self.result.source = "a DAW-like type-1 file written by the driver"
        config = self.dir / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "gui.json").write_text(
            json.dumps({"bars": 2, "variations": 1, "random_seed": False, "seed": 5, "snap": "1/16"})
        )

    def _launch(self, target: Path, name: str) -> App:
        app = App(self.display, [str(target)], self.env, self.dir / f"{name}.log")
        self.app = app
        app.wait_log("Opened ", timeout=120)
        wid = app.window(target.stem)
        app.xdo("windowmove", "--sync", wid, "0", "0")
        app.xdo("windowsize", "--sync", wid, "1900", "1000")
        app.wait_log(" loaded", timeout=120)
        app.wait_settled("roll geometry", quiet=1.0, timeout=30)
        return app

    def _geometry(self) -> Geometry:
        assert self.app is not None
        g = Geometry.last_in(self.app.text())
        if g is None or not g.ruler[2]:
            raise SessionError("the app logged no roll geometry with its ruler")
        return g

    def _check(self, song: Song, *, expect_tracks: int, fill: tuple[int, int, int] | None = None) -> None:
        """The saved song: ``expect_tracks`` tracks, the melody unchanged except, with ``fill``
        (start, end, notes of the take), the notes starting in the filled range."""
        self.result.checks += 1
        if len(song.tracks) != expect_tracks:
            raise SessionError(f"{len(song.tracks)} tracks saved, {expect_tracks} expected")
        melody = song.tracks[0].notes
        if fill is None:
            if melody != self.melody:
                raise SessionError("the melody changed without a fill being accepted")
        else:
            start, end, n = fill
            outside_now = [m for m in melody if not start <= m.start_tick < end]
            outside_before = [m for m in self.melody if not start <= m.start_tick < end]
            inside = [m for m in melody if start <= m.start_tick < end]
            if outside_now != outside_before:
                raise SessionError(f"an accepted fill of ticks {start}-{end} changed the melody outside it")
            if len(inside) != n:
                raise SessionError(f"the fill take had {n} notes, the range now holds {len(inside)}")
        self.melody = list(melody)
        self.tracks = len(song.tracks)
        have = {(c.tick, c.symbol) for c in song.chords}
        if not self.chords <= have:
            raise SessionError(f"typed chords missing from the lane: {sorted(self.chords - have)}")

    # -- the musician's gestures -----------------------------------------------------------------
    def _accompany(self, i: int) -> None:
        app = self.app
        assert app is not None
        kind = ("accept", "reject", "again+accept", "accept")[i % 4] if i < self.cycles - 1 else "pending"
        done = app.count("continue: take ")
        before = self._project_mtime()
        t0 = time.perf_counter()
        app.xdo("key", "--delay", "1", "ctrl+shift+a")
        t1 = time.perf_counter()
        app.xdo("key", "--delay", "1", "ctrl+s")  # saved while the take is written and streamed
        self.result.saves_while_streaming.append(self._wait_saved(before) - t1)
        app.wait_log("continue: take ", timeout=180, times=done + 1)
        self.result.accompany_takes.append(time.perf_counter() - t0)
        self.result.add("accompany (key -> take)", self.result.accompany_takes[-1])
        if kind in ("again+accept", "pending"):
            t0 = time.perf_counter()
            app.keys("r")
            app.wait_log("continue: take ", timeout=180, times=done + 2)
            self.result.add("again (key -> take)", time.perf_counter() - t0)
        accepted = app.count("accepted take ")
        if kind in ("accept", "again+accept"):
            app.keys("Escape", "Return")
            app.wait_log("accepted take ", times=accepted + 1)
            self.result.accompaniments_accepted += 1
        elif kind == "reject":
            app.keys("Escape", "BackSpace")
        else:
            app.keys("Escape")
        song = self._save()
        self._check(song, expect_tracks=self.tracks + (kind in ("accept", "again+accept")))

    def _drag_ruler(self, start: int, end: int) -> None:
        app = self.app
        assert app is not None
        g = self._geometry()
        y = str(g.ruler[1] + g.ruler[3] // 2)
        x0, x1 = g.x(start) + 1, g.x(end) + 1
        steps = [x0 + (x1 - x0) * k // 6 for k in range(1, 7)]
        app.xdo("mousemove", "--sync", str(x0), y, "sleep", "0.05", "mousedown", "1")
        for x in steps:
            app.xdo("mousemove", "--sync", str(x), y, "sleep", "0.02")
        app.xdo("sleep", "0.05", "mouseup", "1")

    def _fill(self, i: int) -> None:
        app = self.app
        assert app is not None
        song = _read_song(self.project)
        bar = song.ticks_per_bar()
        notes = sorted(n.start_tick for n in self.melody)
        # two bars with melody in them, further into the song at every cycle
        first_bar = notes[len(notes) * (i + 1) // (self.cycles + 2)] // bar
        start, end = first_bar * bar, (first_bar + 2) * bar
        app.keys("Escape")
        self._drag_ruler(start, end)
        loop = self._save("save").loop
        # the drag snaps to beats, a few pixels each on the whole song: the musician's range
        if loop is None or max(abs(loop[0] - start), abs(loop[1] - end)) > 2 * song.resolution:
            raise SessionError(f"the ruler drag set the loop to {loop}, not about {(start, end)}")
        start, end = loop
        done = app.count("continue: take ")
        t0 = time.perf_counter()
        app.keys("ctrl+shift+Return")
        app.wait_log("continue: take ", timeout=180, times=done + 1)
        self.result.add("fill (key -> take)", time.perf_counter() - t0)
        accept = i % 2 == 0
        if accept:
            accepted = app.count("accepted take ")
            app.keys("Escape", "Return")
            app.wait_log("accepted take ", times=accepted + 1)
            found = re.findall(r"accepted take \d+ with (\d+) notes", app.text())
            self.result.fills_accepted += 1
        else:
            app.keys("Escape", "BackSpace")
        g = self._geometry()  # right-click on the ruler clears the loop region
        app.xdo("mousemove", "--sync", str(g.x(start) + 5), str(g.ruler[1] + g.ruler[3] // 2), "click", "3")
        song = self._save()
        if song.loop:
            raise SessionError(f"a right-click on the ruler left the loop at {song.loop}")
        self._check(song, expect_tracks=self.tracks, fill=(start, end, int(found[-1])) if accept else None)

    def _type_chord(self, i: int) -> None:
        app = self.app
        assert app is not None
        song = _read_song(self.project)
        beat = song.resolution
        tick = (i * 7 + 3) * song.ticks_per_bar() + beat  # the second beat of a bar
        g = self._geometry()
        app.xdo("mousemove", "--sync", str(g.x(tick) + 2), str(g.ruler[1] + g.ruler[3] // 2), "click", "1")
        symbol = ("Am7", "F/A", "G7", "Em")[i % 4]
        app.keys("ctrl+k")
        time.sleep(0.2)
        app.xdo("type", "--delay", "40", symbol)
        app.keys("Return")
        song = self._save()
        # the click lands within a beat or two of the aim at this zoom: the chord is where it went
        placed = {(c.tick, c.symbol) for c in song.chords} - self.chords
        near = [t for t, sym in placed if sym == symbol and abs(t - tick) <= 2 * beat]
        if len(near) != 1:
            raise SessionError(f"typed {symbol} near tick {tick}: the lane has {sorted(placed)[:8]}")
        self.chords.add((near[0], symbol))
        self.result.chords_typed += 1
        self._check(song, expect_tracks=self.tracks)

    def _undo_redo(self, n: int = 3) -> None:
        app = self.app
        assert app is not None
        state = (list(self.melody), self.tracks, set(self.chords))
        app.xdo("key", "--delay", "20", *(["ctrl+z"] * n))
        undone = self._save("save after undo")
        app.xdo("key", "--delay", "20", *(["ctrl+shift+z"] * n))
        redone = self._save("save after redo")
        if redone.tracks[0].notes != state[0] or len(redone.tracks) != state[1]:
            raise SessionError("undo then redo did not give the same song back")
        same = undone.tracks[0].notes == state[0] and len(undone.tracks) == state[1]
        if same and undone.chords == redone.chords:
            raise SessionError(
                f"{n} undos changed nothing: {len(undone.chords)} chords, loop {undone.loop}; "
                f"redone {len(redone.chords)} chords, loop {redone.loop}"
            )
        self._check(redone, expect_tracks=self.tracks)

    def _export(self) -> None:
        app = self.app
        assert app is not None
        out = self.dir / "song-export.mid"
        app.keys("ctrl+e")
        app.window("^Export MIDI$")
        time.sleep(0.3)
        app.keys("ctrl+a")
        app.xdo("type", "--delay", "10", str(out))
        exported = app.count("Exported ")
        app.keys("Return")
        app.wait_log("Exported ", times=exported + 1)
        app.window("song.mgproj")
        from musicgen_app.gui.fileio import load_file

        back = load_file(out).song
        saved = _read_song(self.project)
        heard = [sorted((n.start_tick, n.pitch, n.end_tick) for n in t.notes) for t in back.tracks if t.notes]
        have = [sorted((n.start_tick, n.pitch, n.end_tick) for n in t.notes) for t in saved.tracks if t.notes]
        if heard != have:
            raise SessionError("the exported MIDI file does not read back with the project's notes")
        self.result.exported_tracks = len(back.tracks)

    # -- the whole session -------------------------------------------------------------------------
    def _session(self) -> None:
        from musicgen_app.gui.fileio import load_file

        t0 = time.perf_counter()
        app = self._launch(self.source, "first")
        self.result.add("open (launch -> ready)", time.perf_counter() - t0)
        original = load_file(self.source).song
        app.xdo("key", "--delay", "1", "ctrl+s")  # a MIDI file: Save asks for a project name
        app.window("^Save project$")
        time.sleep(0.3)
        app.keys("ctrl+a")
        app.xdo("type", "--delay", "10", str(self.project))
        app.keys("Return")
        self._wait_saved(0)
        app.window("song.mgproj")  # the keys go to the main window again (no window manager here)
        self.melody = list(original.tracks[0].notes)
        self.tracks = len(original.tracks)
        self._check(_read_song(self.project), expect_tracks=self.tracks)
        for i in range(self.cycles):
            last = i == self.cycles - 1
            if not last:  # the last accompaniment is left pending: Fill would replace its takes
                self._accompany(i)
            self._fill(i)
            self._type_chord(i)
            if i % 2 == 1:
                self._undo_redo()
            if last:
                self._accompany(i)
        self._export()
        self._close()
        t0 = time.perf_counter()
        app = self._launch(self.project, "reopen")
        self.result.add("open (launch -> ready)", time.perf_counter() - t0)
        found = re.findall(r"restored (\d+) takes", app.text())
        self.result.restored_takes = int(found[-1]) if found else 0
        self._check(self._save(), expect_tracks=self.tracks)
        self._close()
