"""The song model: notes, tracks, tempo map, meter, key, loop region, markers and kept MIDI events.

Everything is in ticks at ``Song.resolution`` ticks per quarter note (480 by default; an
imported file keeps its own resolution). Seconds come from the tempo map
(:class:`TempoMap`). No Qt, no torch: this module is shared by every layer.
"""

from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass, field, replace

from musicgen_app.core.chords import ChordChange

logger = logging.getLogger(__name__)

DEFAULT_RESOLUTION = 480
DEFAULT_TEMPO_US = 500_000  # 120 BPM
DRUM_CHANNEL = 9  # "channel 10" to a musician
DEFAULT_TRACK_VOLUME = 100  # a track header's fader at "as written"


@dataclass(frozen=True, slots=True, order=True)
class Note:
    """One note. ``end_tick`` is exclusive; ``channel`` is 0-based (9 = drums)."""

    start_tick: int
    pitch: int
    end_tick: int
    velocity: int = 100
    channel: int = 0

    @property
    def duration_ticks(self) -> int:
        """Length of the note in ticks."""
        return self.end_tick - self.start_tick

    def moved(self, delta_ticks: int = 0, delta_pitch: int = 0) -> Note:
        """This note shifted in time and/or pitch."""
        return replace(
            self,
            start_tick=self.start_tick + delta_ticks,
            end_tick=self.end_tick + delta_ticks,
            pitch=self.pitch + delta_pitch,
        )


@dataclass(frozen=True, slots=True, order=True)
class ControlEvent:
    """A channel event other than a note: control change, pitch bend, aftertouch, mid-track program.

    ``kind`` is the mido message type (``control_change``, ``pitchwheel``, ``aftertouch``,
    ``polytouch``, ``program_change``); ``number`` is the controller/pitch/program (0 when unused)
    and ``value`` the value (pitch bend: -8192..8191).
    """

    tick: int
    kind: str
    number: int
    value: int
    channel: int = 0


@dataclass(frozen=True, slots=True, order=True)
class TempoChange:
    """A tempo in microseconds per quarter note from ``tick`` on."""

    tick: int
    us_per_quarter: int

    @property
    def bpm(self) -> float:
        """Quarter notes per minute."""
        return 60_000_000 / self.us_per_quarter


@dataclass(frozen=True, slots=True, order=True)
class TimeSignature:
    """A meter from ``tick`` on, e.g. 3/4."""

    tick: int
    numerator: int
    denominator: int


@dataclass(frozen=True, slots=True, order=True)
class KeySignature:
    """A key from ``tick`` on, as mido names it: ``C``, ``F#m``, ``Bb``."""

    tick: int
    key: str


@dataclass(frozen=True, slots=True, order=True)
class Marker:
    """A named position (rehearsal mark, cue)."""

    tick: int
    text: str


# Text meta events a MIDI file may hold, by mido's names, and their meta type bytes.
TEXT_META_TYPES: dict[str, int] = {
    "text": 0x01,
    "copyright": 0x02,
    "track_name": 0x03,  # a second name in one track (the first is Track.name)
    "instrument_name": 0x04,
    "lyrics": 0x05,
    "cue_marker": 0x07,
    "program_name": 0x08,
    "device_name": 0x09,
}
META_KINDS = frozenset((*TEXT_META_TYPES, "sysex"))


@dataclass(frozen=True, slots=True)
class MetaEvent:
    """A MIDI event kept as the file had it: a text meta event (lyrics, copyright...) or a sysex.

    ``kind`` is one of :data:`META_KINDS` (mido's names). ``data`` is raw bytes, so that the event
    is written back byte for byte: a text event's bytes in whatever encoding the file used (most
    writers use UTF-8 or latin-1; :attr:`text` decodes for display), a system-exclusive message's
    bytes between ``F0`` and ``F7`` (as mido's ``data``; a GM reset is ``7E 7F 09 01``).
    Not orderable on purpose: events at one tick keep their file order (sort by ``tick`` only).
    """

    tick: int
    kind: str
    data: bytes = b""

    @property
    def text(self) -> str:
        """The text for display: UTF-8 when the bytes are UTF-8, else latin-1 (never fails)."""
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            return self.data.decode("latin-1")

    @classmethod
    def from_text(cls, tick: int, kind: str, text: str) -> MetaEvent:
        """A text meta event holding ``text`` as UTF-8."""
        return cls(tick, kind, text.encode("utf-8"))


def _by_tick(event: MetaEvent) -> int:
    return event.tick


@dataclass(slots=True)
class Track:
    """One instrument: its notes, channel events and kept meta/sysex events (``meta``).

    The mixer state of the track header: ``mute``, ``solo``, ``volume`` (0-127, a fader on the
    track's own levels: 100 plays the track as written) and ``colour`` (``"#rrggbb"``, or empty for
    the palette colour of its position). A MIDI file does not carry them; a project does.
    """

    name: str = ""
    program: int = 0
    channel: int = 0
    is_drum: bool = False
    notes: list[Note] = field(default_factory=list)
    controls: list[ControlEvent] = field(default_factory=list)
    meta: list[MetaEvent] = field(default_factory=list)
    mute: bool = False
    solo: bool = False
    volume: int = DEFAULT_TRACK_VOLUME
    colour: str = ""
    # Where the MIDI file's end-of-track mark put this track's end, when later than its last event
    # (trailing silence, kept through export); None: the track ends at its last event.
    end_of_track: int | None = None

    def sort(self) -> None:
        """Sort notes and events by time (then pitch); meta events by time only (stable)."""
        self.notes.sort()
        self.controls.sort()
        self.meta.sort(key=_by_tick)

    def copy(self) -> Track:
        """A copy with its own lists (the events themselves are immutable values)."""
        return replace(self, notes=list(self.notes), controls=list(self.controls), meta=list(self.meta))

    @property
    def end_tick(self) -> int:
        """The tick at which the last note ends (0 for an empty track)."""
        return max((n.end_tick for n in self.notes), default=0)


class TempoMap:
    """Tick <-> seconds through a list of tempo changes (piecewise linear)."""

    def __init__(self, tempos: list[TempoChange], resolution: int) -> None:
        if resolution <= 0:
            raise ValueError("resolution must be positive")
        changes = sorted(tempos)
        if not changes or changes[0].tick > 0:
            first = changes[0].us_per_quarter if changes else DEFAULT_TEMPO_US
            # Before the first tempo event MIDI plays at 120 BPM; keep the file's own first tempo
            # only when it is at tick 0.
            changes.insert(0, TempoChange(0, DEFAULT_TEMPO_US if changes else first))
        # Later changes at the same tick override earlier ones.
        dedup: dict[int, int] = {}
        for c in changes:
            dedup[c.tick] = c.us_per_quarter
        self.resolution = resolution
        self._ticks = sorted(dedup)
        self._us = [dedup[t] for t in self._ticks]
        self._secs: list[float] = [0.0]
        for i in range(1, len(self._ticks)):
            span = self._ticks[i] - self._ticks[i - 1]
            self._secs.append(self._secs[-1] + span * self._us[i - 1] / 1e6 / resolution)

    def tick_to_seconds(self, tick: float) -> float:
        """Seconds from the start at ``tick``."""
        i = max(0, bisect.bisect_right(self._ticks, tick) - 1)
        return self._secs[i] + (tick - self._ticks[i]) * self._us[i] / 1e6 / self.resolution

    def seconds_to_tick(self, seconds: float) -> float:
        """The (fractional) tick at ``seconds`` from the start."""
        i = max(0, bisect.bisect_right(self._secs, seconds) - 1)
        return self._ticks[i] + (seconds - self._secs[i]) * 1e6 * self.resolution / self._us[i]

    def us_per_quarter_at(self, tick: int) -> int:
        """The tempo in force at ``tick``."""
        i = max(0, bisect.bisect_right(self._ticks, tick) - 1)
        return self._us[i]


@dataclass(slots=True)
class Song:
    """A whole piece: tracks plus the conductor data (tempo, meter, key, markers, loop).

    ``meta`` holds the kept meta/sysex events of a MIDI file's conductor track (copyright, a GM
    reset...); a MIDI export writes them into its conductor track. ``end_of_track`` is where the
    file's conductor track ended, when later than its last event (trailing silence of a file;
    None otherwise); each track has its own (:attr:`Track.end_of_track`).

    ``chords`` is the chord lane: :class:`~musicgen_app.core.chords.ChordChange` values sorted by
    tick, at most one per tick, each chord sounding until the next change (a MIDI export writes
    them as ``Chord: Am7`` markers on the conductor track; see ``midi_io``).
    """

    resolution: int = DEFAULT_RESOLUTION
    tracks: list[Track] = field(default_factory=list)
    tempos: list[TempoChange] = field(default_factory=lambda: [TempoChange(0, DEFAULT_TEMPO_US)])
    time_signatures: list[TimeSignature] = field(default_factory=lambda: [TimeSignature(0, 4, 4)])
    key_signatures: list[KeySignature] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    loop: tuple[int, int] | None = None
    title: str = ""
    meta: list[MetaEvent] = field(default_factory=list)
    end_of_track: int | None = None
    chords: list[ChordChange] = field(default_factory=list)

    def copy(self) -> Song:
        """A copy with its own lists (tracks copied with :meth:`Track.copy`)."""
        return replace(
            self,
            tracks=[t.copy() for t in self.tracks],
            tempos=list(self.tempos),
            time_signatures=list(self.time_signatures),
            key_signatures=list(self.key_signatures),
            markers=list(self.markers),
            meta=list(self.meta),
            chords=list(self.chords),
        )

    # -- time -------------------------------------------------------------------------------
    def tempo_map(self) -> TempoMap:
        """A tempo map for this song's current tempo list."""
        return TempoMap(self.tempos, self.resolution)

    def tick_to_seconds(self, tick: float) -> float:
        """Seconds at ``tick`` through the tempo map."""
        return self.tempo_map().tick_to_seconds(tick)

    def seconds_to_tick(self, seconds: float) -> float:
        """Fractional tick at ``seconds`` through the tempo map."""
        return self.tempo_map().seconds_to_tick(seconds)

    @property
    def end_tick(self) -> int:
        """Where the last note of any track ends."""
        return max((t.end_tick for t in self.tracks), default=0)

    @property
    def length_ticks(self) -> int:
        """Where the song ends: its last note, or later when a track's end (trailing silence of an
        imported file) lies beyond it."""
        ends = [t.end_of_track for t in self.tracks if t.end_of_track is not None]
        if self.end_of_track is not None:
            ends.append(self.end_of_track)
        return max(self.end_tick, *ends) if ends else self.end_tick

    @property
    def duration_seconds(self) -> float:
        """Length in seconds up to the end of the last note."""
        return self.tick_to_seconds(self.end_tick)

    def time_signature_at(self, tick: int) -> TimeSignature:
        """The meter in force at ``tick`` (4/4 when none is set)."""
        current = TimeSignature(0, 4, 4)
        for ts in sorted(self.time_signatures):
            if ts.tick <= tick:
                current = ts
            else:
                break
        return current

    def key_at(self, tick: int) -> str | None:
        """The key signature in force at ``tick``, or None."""
        current = None
        for ks in sorted(self.key_signatures):
            if ks.tick <= tick:
                current = ks.key
            else:
                break
        return current

    def ticks_per_bar(self, tick: int = 0) -> int:
        """Length of one bar of the meter at ``tick``."""
        ts = self.time_signature_at(tick)
        return self.resolution * 4 * ts.numerator // ts.denominator

    def bar_starts(self, end_tick: int) -> list[int]:
        """Ticks of every bar line from 0 up to ``end_tick`` (inclusive), following meter changes."""
        sigs = sorted(self.time_signatures) or [TimeSignature(0, 4, 4)]
        if sigs[0].tick > 0:
            sigs.insert(0, TimeSignature(0, 4, 4))
        starts: list[int] = []
        for i, ts in enumerate(sigs):
            seg_end = sigs[i + 1].tick if i + 1 < len(sigs) else end_tick + 1
            bar = max(1, self.resolution * 4 * ts.numerator // ts.denominator)
            t = ts.tick
            while t < seg_end and t <= end_tick:
                starts.append(t)
                t += bar
        return starts

    @property
    def note_count(self) -> int:
        """Number of notes in all tracks."""
        return sum(len(t.notes) for t in self.tracks)

    def sort(self) -> None:
        """Sort every list by time."""
        for t in self.tracks:
            t.sort()
        self.tempos.sort()
        self.time_signatures.sort()
        self.key_signatures.sort()
        self.markers.sort()
        self.meta.sort(key=_by_tick)
        self.chords.sort(key=_change_tick)


def _change_tick(change: ChordChange) -> int:
    return change.tick


# -- resolution ---------------------------------------------------------------------------------
def _all_ticks(song: Song) -> list[int]:
    ticks: list[int] = []
    for t in song.tracks:
        for n in t.notes:
            ticks += (n.start_tick, n.end_tick)
        ticks += [c.tick for c in t.controls]
        ticks += [m.tick for m in t.meta]
        if t.end_of_track is not None:
            ticks.append(t.end_of_track)
    if song.end_of_track is not None:
        ticks.append(song.end_of_track)
    for lst in (song.tempos, song.time_signatures, song.key_signatures, song.markers, song.meta, song.chords):
        ticks += [e.tick for e in lst]
    if song.loop:
        ticks += list(song.loop)
    return ticks


def lossless_resolution(song: Song, target: int) -> int:
    """The smallest multiple of ``target`` at which every tick of ``song`` is a whole number.

    Rescaling to the result never rounds: ``target`` itself when the song's ticks allow it.
    """
    src = song.resolution
    g = 0
    for t in _all_ticks(song):
        g = math.gcd(g, t)
    g = math.gcd(g, src) if g else src
    # tick * target / src is whole for all ticks iff (src / g) divides target * k.
    need = src // g
    k = need // math.gcd(need, target)
    return target * k


def rescale(song: Song, resolution: int) -> Song:
    """A copy of ``song`` at ``resolution`` ticks per quarter.

    Raises ValueError when a tick would have to be rounded; use :func:`lossless_resolution` to
    pick a resolution that never rounds.
    """
    src = song.resolution

    def conv(t: int) -> int:
        q, r = divmod(t * resolution, src)
        if r:
            raise ValueError(f"tick {t} at {src} ticks/quarter is not whole at {resolution}")
        return q

    out = Song(
        resolution=resolution,
        tracks=[
            replace(
                tr,
                notes=[
                    replace(n, start_tick=conv(n.start_tick), end_tick=conv(n.end_tick)) for n in tr.notes
                ],
                controls=[replace(c, tick=conv(c.tick)) for c in tr.controls],
                meta=[replace(m, tick=conv(m.tick)) for m in tr.meta],
                end_of_track=None if tr.end_of_track is None else conv(tr.end_of_track),
            )
            for tr in song.tracks
        ],
        tempos=[replace(e, tick=conv(e.tick)) for e in song.tempos],
        time_signatures=[replace(e, tick=conv(e.tick)) for e in song.time_signatures],
        key_signatures=[replace(e, tick=conv(e.tick)) for e in song.key_signatures],
        markers=[replace(e, tick=conv(e.tick)) for e in song.markers],
        loop=(conv(song.loop[0]), conv(song.loop[1])) if song.loop else None,
        title=song.title,
        meta=[replace(e, tick=conv(e.tick)) for e in song.meta],
        end_of_track=None if song.end_of_track is None else conv(song.end_of_track),
        chords=[replace(e, tick=conv(e.tick)) for e in song.chords],
    )
    return out
