"""Project files (``.mgproj``): the song plus the app's state, saved so that nothing is lost.

A project file is UTF-8 JSON::

    {"format": "musicgen-project", "format_version": 2, "app_version": "0.1.0",
     "song": {...}, "state": {...}}

``song`` is :func:`song_to_dict` (notes as compact ``[start, pitch, end, velocity, channel]``
rows; kept MIDI meta and system-exclusive events, in ``"meta"`` of the song and of each track, as
``[tick, kind, "utf8", text]`` when their bytes are UTF-8 and ``[tick, kind, "hex", "7e7f0901"]``
otherwise, so that they are written back to MIDI byte for byte); ``state`` is a free-form JSON
object owned by the app: the chosen model, the temperature, the generation takes with their random
seeds, generation settings.

Saving is atomic (:func:`save_project`, through ``safe_io.write_file_atomic``): the JSON goes to
a temporary file in the same folder, is flushed and fsync'ed, the previous file is kept as
``<name>.mgproj.bak`` (a hard link, or a copy where links are not possible), and the temporary
file is renamed over the project; the folder is fsync'ed too. A crash at any moment leaves the
old or the new version.

Loading (:func:`load_project`) refuses a file from a newer version of the app with a message, and
migrates older versions step by step through :data:`MIGRATIONS` (version ``n`` -> ``n + 1``).
Version 2 added the ``meta`` lists; a version-1 project has none and loads with empty ones.
Version 3 added the chord lane, ``"chords": [[tick, "Am7"], [tick, "N.C."], ...]`` (lead-sheet
symbols as :attr:`ChordChange.symbol` spells them); a version-2 project has none and loads with an
empty lane.

Loading validates every value once (:func:`song_from_dict`): each must lie inside the range a MIDI
file and this app's importer can hold, or the file is refused with the field named (``track 2,
note 14: the velocity is out of range (0; 1 to 127)``). NaN, infinities and numbers of thousands
of digits are refused anywhere in the file, and the app state must be saveable again, so that a
project that loads can always be saved. The file itself is read through
:func:`musicgen_app.core.safe_io.read_capped` (regular files only, a hard byte cap).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicgen_app import __version__
from musicgen_app.core.chords import ChordChange, ChordError, parse_chord
from musicgen_app.core.midi_io import (
    MAX_MESSAGE_BYTES,
    MAX_SONG_SECONDS,
    MAX_TICK,
    SPLITTABLE_META,
    is_midi_path,
    read_midi,
)
from musicgen_app.core.safe_io import read_capped, read_head, write_file_atomic
from musicgen_app.core.song import (
    DEFAULT_TRACK_VOLUME,
    META_KINDS,
    ControlEvent,
    KeySignature,
    Marker,
    MetaEvent,
    Note,
    Song,
    TempoChange,
    TempoMap,
    TimeSignature,
    Track,
)
from musicgen_app.errors import MidiImportError, ProjectError

logger = logging.getLogger(__name__)

FORMAT_NAME = "musicgen-project"
FORMAT_VERSION = 3
PROJECT_EXTENSION = ".mgproj"
MAX_PROJECT_BYTES = 256 * 1024 * 1024


@dataclass
class Project:
    """A song and the app state that goes with it (JSON-able dict)."""

    song: Song
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadResult:
    """What :func:`load_any` read: the song, repairs made on import, the app state (empty for MIDI).

    ``kind`` is ``"midi"`` or ``"project"``; ``notices`` lists what a MIDI import left out.
    """

    song: Song
    repairs: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    kind: str = "project"
    midi_format: int | None = None


# -- song <-> dict -------------------------------------------------------------------------------
def _meta_rows(events: list[MetaEvent]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for m in events:
        text = None
        if m.kind != "sysex":
            with contextlib.suppress(UnicodeDecodeError):
                text = m.data.decode("utf-8")
        rows.append(
            [m.tick, m.kind, "utf8", text] if text is not None else [m.tick, m.kind, "hex", m.data.hex()]
        )
    return rows


def _meta_from_rows(value: Any, what: str) -> list[MetaEvent]:
    events = []
    for i, (tick, kind, encoding, payload) in enumerate(_rows(value, what, 4), 1):
        where = f"event {i} in {what}"
        if kind not in META_KINDS:
            raise _damaged(f"{where} is of an unknown kind ({_short(kind)})")
        if not isinstance(payload, str):
            raise _damaged(f"{where} is not text ({_short(payload)})")
        if encoding == "utf8":
            try:
                data = payload.encode("utf-8")
            except UnicodeEncodeError:
                raise _damaged(f"{where} holds a broken character (a lone surrogate)") from None
        elif encoding == "hex":
            try:
                data = bytes.fromhex(payload)
            except ValueError:
                raise _damaged(f"{where} is not hex data") from None
        else:
            raise _damaged(f"{where} has an unknown encoding ({_short(encoding)})")
        # a long text or lyric is split into several events on export; other events must fit one
        cap = MAX_MESSAGE_BYTES * (16 if kind in SPLITTABLE_META else 1)
        if len(data) > cap:
            raise _damaged(f"{where} is {len(data):,} bytes long; this app keeps up to {cap:,}")
        if kind == "sysex" and any(b > 0x7F for b in data):
            raise _damaged(f"{where}, a system-exclusive message, holds a byte above 127")
        events.append(MetaEvent(_tick(tick, where), kind, data))
    return events


def _with_end(data: dict[str, Any], end: int | None) -> dict[str, Any]:
    """``data`` with ``"end_of_track"`` (a MIDI file's trailing silence) when there is one."""
    if end is not None:
        data["end_of_track"] = end
    return data


def _end(value: Any, what: str) -> int | None:
    return None if value is None else _int(value, what, 0)


def song_to_dict(song: Song) -> dict[str, Any]:
    """The song as plain JSON-able data (``end_of_track`` only where a MIDI file's end is kept)."""
    data: dict[str, Any] = {
        "title": song.title,
        "resolution": song.resolution,
        "tempos": [[t.tick, t.us_per_quarter] for t in song.tempos],
        "time_signatures": [[t.tick, t.numerator, t.denominator] for t in song.time_signatures],
        "key_signatures": [[k.tick, k.key] for k in song.key_signatures],
        "markers": [[m.tick, m.text] for m in song.markers],
        "loop": list(song.loop) if song.loop else None,
        "meta": _meta_rows(song.meta),
        "chords": [[c.tick, c.symbol] for c in song.chords],
        "tracks": [
            {
                "name": t.name,
                "program": t.program,
                "channel": t.channel,
                "is_drum": t.is_drum,
                "notes": [[n.start_tick, n.pitch, n.end_tick, n.velocity, n.channel] for n in t.notes],
                "controls": [[c.tick, c.kind, c.number, c.value, c.channel] for c in t.controls],
                "meta": _meta_rows(t.meta),
                "mute": t.mute,
                "solo": t.solo,
                "volume": t.volume,
                "colour": t.colour,
            }
            for t in song.tracks
        ],
    }
    for t, row in zip(song.tracks, data["tracks"], strict=True):
        _with_end(row, t.end_of_track)
    return _with_end(data, song.end_of_track)


# -- validation: every value inside the range MIDI (and the app's importer) can hold ------------
MAX_RESOLUTION = 0x7FFF  # ticks per quarter note a MIDI header can hold
MAX_TEMPO_US = 0xFFFFFF  # microseconds per quarter note a tempo event can hold (3.58 BPM)
MAX_NUMERATOR = 255
DENOMINATORS = frozenset(2**i for i in range(8))  # 1, 2, 4 ... 128: what the importer reads
# the key names a MIDI key signature can hold (mido's names)
_MAJOR_KEYS = ("Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#")
_MINOR_TONICS = ("Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#", "G#", "D#", "A#")
KEY_NAMES = frozenset((*_MAJOR_KEYS, *(k + "m" for k in _MINOR_TONICS)))
# channel event kind -> (number range, value range); an unused field is 0
CONTROL_RANGES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "control_change": ((0, 127), (0, 127)),
    "program_change": ((0, 127), (0, 0)),
    "pitchwheel": ((0, 0), (-8192, 8191)),
    "aftertouch": ((0, 0), (0, 127)),
    "polytouch": ((0, 127), (0, 127)),
}


def _damaged(what: str) -> ProjectError:
    return ProjectError(f"the project is damaged: {what}")


def _int(value: Any, what: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _damaged(f"{what} is not a whole number ({_short(value)})")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            bounds = f"{lo} to {hi}"
        else:
            bounds = f"at least {lo}" if lo is not None else f"at most {hi}"
        raise _damaged(f"{what} is out of range ({_short(value)}; {bounds})")
    return value


def _short(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"a {len(str(abs(value)))}-digit number"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _tick(value: Any, what: str) -> int:
    return _int(value, f"{what}: the tick", 0, MAX_TICK)


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _damaged(f"{what} is not text ({_short(value)})")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise _damaged(f"{what} holds a broken character (a lone surrogate)") from None
    if size > MAX_MESSAGE_BYTES:
        raise _damaged(f"{what} is {size:,} bytes long; a MIDI text holds up to {MAX_MESSAGE_BYTES:,}")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise _damaged(f"{what} is not true or false ({_short(value)})")
    return value


def _colour(value: Any, what: str) -> str:
    text = _str(value, what)
    if text and not re.fullmatch(r"#[0-9a-fA-F]{6}", text):
        raise ProjectError(f"the project is damaged: {what} is not a #rrggbb colour ({text!r})")
    return text


def _rows(value: Any, what: str, width: int) -> list[list[Any]]:
    if not isinstance(value, list) or not all(isinstance(r, list) and len(r) == width for r in value):
        raise _damaged(f"{what} is not a list of {width}-item rows")
    return value


def _note(row: list[Any], track: int, index: int) -> Note:
    s, p, e, v, c = row
    if (
        type(s) is int
        and type(p) is int
        and type(e) is int
        and type(v) is int
        and type(c) is int
        and 0 <= s <= e <= MAX_TICK
        and 0 <= p <= 127
        and 1 <= v <= 127
        and 0 <= c <= 15
    ):  # the usual case, checked at once
        return Note(s, p, e, v, c)
    where = f"track {track}, note {index}"  # named only when something is wrong
    _int(s, f"{where}: the start tick", 0, MAX_TICK)
    _int(p, f"{where}: the pitch", 0, 127)
    _int(e, f"{where}: the end tick", s, MAX_TICK)
    _int(v, f"{where}: the velocity", 1, 127)
    _int(c, f"{where}: the channel", 0, 15)
    raise AssertionError("unreachable")  # pragma: no cover


def _control(row: list[Any], track: int, index: int) -> ControlEvent:
    tick, kind, number, value, channel = row
    ranges = CONTROL_RANGES.get(kind) if isinstance(kind, str) else None
    if ranges is None:
        raise _damaged(f"track {track}, event {index} is of an unknown kind ({_short(kind)})")
    (nlo, nhi), (vlo, vhi) = ranges
    if (
        type(tick) is int
        and type(number) is int
        and type(value) is int
        and type(channel) is int
        and 0 <= tick <= MAX_TICK
        and nlo <= number <= nhi
        and vlo <= value <= vhi
        and 0 <= channel <= 15
    ):  # the usual case, checked at once
        return ControlEvent(tick, kind, number, value, channel)
    where = f"track {track}, event {index}"  # named only when something is wrong
    field = {
        "control_change": "the control number",
        "program_change": "the program",
        "polytouch": "the pitch",
    }
    return ControlEvent(
        _tick(tick, where),
        kind,
        _int(number, f"{where} ({kind}): {field.get(kind, 'the number')}", nlo, nhi),
        _int(value, f"{where} ({kind}): the value", vlo, vhi),
        _int(channel, f"{where} ({kind}): the channel", 0, 15),
    )


def _check_length(song: Song) -> None:
    """Refuse a song with an event later than the importer keeps (4 hours, or MAX_TICK)."""
    last = max(
        [
            *(
                e.tick
                for lst in (
                    song.tempos,
                    song.time_signatures,
                    song.key_signatures,
                    song.markers,
                    song.meta,
                    song.chords,
                )
                for e in lst
            ),
            *(song.loop or ()),
        ],
        default=0,
    )
    for t in song.tracks:
        last = max(
            last,
            t.end_tick,
            max((c.tick for c in t.controls), default=0),
            max((m.tick for m in t.meta), default=0),
        )
    cutoff = int(TempoMap(song.tempos, song.resolution).seconds_to_tick(MAX_SONG_SECONDS))
    if last > cutoff:
        raise _damaged(
            f"it holds an event at tick {last:,}, more than {MAX_SONG_SECONDS // 3600} hours into the song"
        )


def song_from_dict(data: Any) -> Song:
    """The song from :func:`song_to_dict` data; raises ProjectError when anything is off.

    Every value must be inside the range a MIDI file (and this app's importer) can hold; the error
    names the field: resolution, tempo, meter (power-of-two denominator), key name, ticks (up to
    MAX_TICK and 4 hours), pitch, velocity, channel, program, control numbers and values, booleans.
    """
    if not isinstance(data, dict):
        raise _damaged("the song is not an object")
    try:
        song = Song(
            resolution=_int(data.get("resolution"), "the resolution", 1, MAX_RESOLUTION),
            title=_str(data.get("title", ""), "the title"),
            tempos=[
                TempoChange(
                    _tick(t, f"tempo {i}"), _int(u, f"tempo {i} (microseconds per quarter)", 1, MAX_TEMPO_US)
                )
                for i, (t, u) in enumerate(_rows(data.get("tempos", []), "the tempo list", 2), 1)
            ],
            time_signatures=[
                _meter(row, i)
                for i, row in enumerate(_rows(data.get("time_signatures", []), "the meter list", 3), 1)
            ],
            key_signatures=[
                KeySignature(_tick(t, f"key {i}"), _key(k, f"key {i}"))
                for i, (t, k) in enumerate(_rows(data.get("key_signatures", []), "the key list", 2), 1)
            ],
            markers=[
                Marker(_tick(t, f"marker {i}"), _str(x, f"marker {i}'s text"))
                for i, (t, x) in enumerate(_rows(data.get("markers", []), "the marker list", 2), 1)
            ],
            meta=_meta_from_rows(data.get("meta", []), "the conductor's events"),
            end_of_track=_end(data.get("end_of_track"), "the song's end"),
            chords=_chords(data.get("chords", [])),
        )
        loop = data.get("loop")
        if loop is not None:
            a, b = _rows([loop], "the loop", 2)[0]
            song.loop = (
                _tick(a, "the loop start"),
                _int(b, "the loop end", _tick(a, "the loop start") + 1, MAX_TICK),
            )
        tracks = data.get("tracks", [])
        if not isinstance(tracks, list):
            raise _damaged("the track list is not a list")
        for i, t in enumerate(tracks, 1):
            if not isinstance(t, dict):
                raise _damaged(f"track {i} is not an object")
            track = Track(
                name=_str(t.get("name", ""), f"track {i}'s name"),
                program=_int(t.get("program", 0), f"track {i}'s program", 0, 127),
                channel=_int(t.get("channel", 0), f"track {i}'s channel", 0, 15),
                is_drum=_bool(t.get("is_drum", False), f"track {i}'s is_drum"),
                mute=_bool(t.get("mute", False), f"track {i}'s mute"),
                solo=_bool(t.get("solo", False), f"track {i}'s solo"),
                volume=_int(t.get("volume", DEFAULT_TRACK_VOLUME), f"track {i}'s volume", 0, 127),
                colour=_colour(t.get("colour", ""), f"track {i}'s colour"),
                end_of_track=_end(t.get("end_of_track"), f"track {i}'s end"),
            )
            track.notes = [
                _note(row, i, j)
                for j, row in enumerate(_rows(t.get("notes", []), f"track {i}'s notes", 5), 1)
            ]
            track.controls = [
                _control(row, i, j)
                for j, row in enumerate(_rows(t.get("controls", []), f"track {i}'s events", 5), 1)
            ]
            track.meta = _meta_from_rows(t.get("meta", []), f"track {i}'s meta events")
            song.tracks.append(track)
        _check_length(song)
    except ProjectError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise _damaged(str(exc)) from exc
    return song


def _chords(value: Any) -> list[ChordChange]:
    changes: list[ChordChange] = []
    ticks: set[int] = set()
    for i, (tick, symbol) in enumerate(_rows(value, "the chord lane", 2), 1):
        where = f"chord {i}"
        t = _tick(tick, where)
        try:
            chord = parse_chord(_str(symbol, f"{where}'s symbol"))
        except ChordError as exc:
            raise _damaged(f"{where}: {exc}") from None
        if t in ticks:
            raise _damaged(f"{where} is a second chord at tick {t}")
        ticks.add(t)
        changes.append(ChordChange(t, chord))
    return sorted(changes, key=lambda c: c.tick)


def _meter(row: list[Any], i: int) -> TimeSignature:
    t, num, den = row
    what = f"meter {i}"
    tick = _tick(t, what)
    _int(num, f"{what}: the numerator (beats per bar)", 1, MAX_NUMERATOR)
    if _int(den, f"{what}: the denominator", 1, max(DENOMINATORS)) not in DENOMINATORS:
        raise _damaged(f"{what}: the denominator {den} is not a power of two (1, 2, 4 ... 128)")
    return TimeSignature(tick, num, den)


def _key(value: Any, what: str) -> str:
    if value not in KEY_NAMES:
        raise _damaged(f"{what} is not a key name ({_short(value)}; e.g. C, F#m, Bb)")
    return str(value)


# -- migrations ---------------------------------------------------------------------------------
def _migrate_0_to_1(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (the pre-release draft): one tempo in BPM, notes as objects, "settings" for state."""
    bpm = doc.get("bpm", 120.0)
    if isinstance(bpm, bool) or not isinstance(bpm, int | float) or not 0 < bpm < math.inf:
        raise ValueError(f"the tempo is not a positive number of beats per minute ({_short(bpm)})")
    us_per_quarter = 60_000_000 / bpm
    if not 1 <= us_per_quarter <= MAX_TEMPO_US:
        raise ValueError(f"the tempo of {bpm:g} BPM is outside what MIDI can hold (3.6 to 60,000,000 BPM)")
    tracks = []
    for t in doc.get("tracks", []):
        channel = int(t.get("channel", 0))
        tracks.append(
            {
                "name": t.get("name", ""),
                "program": t.get("program", 0),
                "channel": channel,
                "is_drum": channel == 9,
                "notes": [
                    [n["start"], n["pitch"], n["end"], n.get("velocity", 100), channel]
                    for n in t.get("notes", [])
                ],
                "controls": [],
            }
        )
    song = {
        "title": doc.get("title", ""),
        "resolution": doc.get("resolution", 480),
        "tempos": [[0, round(us_per_quarter)]],
        "time_signatures": [[0, *doc.get("meter", [4, 4])]],
        "key_signatures": [],
        "markers": [],
        "loop": None,
        "tracks": tracks,
    }
    return {"format": FORMAT_NAME, "format_version": 1, "song": song, "state": doc.get("settings", {})}


def _migrate_1_to_2(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 2 added kept MIDI meta events (``"meta"`` lists); version 1 has none, which reads as
    empty lists, so only the number changes."""
    return {**doc, "format_version": 2}


def _migrate_2_to_3(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 3 added the chord lane (``"chords"``); version 2 has none, which reads as an empty
    lane, so only the number changes."""
    return {**doc, "format_version": 3}


# version n -> function that turns a version-n document into a version n+1 document
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    0: _migrate_0_to_1,
    1: _migrate_1_to_2,
    2: _migrate_2_to_3,
}


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """Bring a project document up to :data:`FORMAT_VERSION` (raises ProjectError if it cannot)."""
    version = doc.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ProjectError("the project file has no valid format_version (is it a musicgen project?)")
    if version > FORMAT_VERSION:
        raise ProjectError(
            f"this project was saved by a newer version of musicgen (project format {version}; this "
            f"version reads up to {FORMAT_VERSION}). Please update musicgen to open it."
        )
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ProjectError(f"project format {version} is too old to be read by this version")
        try:
            doc = step(doc)
        except (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError, OverflowError) as exc:
            raise ProjectError(
                f"the project (format {version}) is damaged and cannot be upgraded: {exc}"
            ) from exc
        logger.info("migrated a project from format %d to %d", version, doc["format_version"])
        version = doc["format_version"]
    return doc


# -- files ----------------------------------------------------------------------------------------
def project_to_json(project: Project) -> str:
    """The project file's text."""
    doc = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "app_version": __version__,
        "song": song_to_dict(project.song),
        "state": project.state,
    }
    try:
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProjectError(f"the app state cannot be saved as JSON: {exc}") from exc


class _BadNumberError(ValueError):
    """A number JSON can spell but a project must not hold (NaN, infinity, thousands of digits)."""


def _parse_constant(name: str) -> Any:
    raise _BadNumberError(f"it holds {name}, which is not a number")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumberError(
            f"it holds a number too large to use ({text[:20]}{'...' if len(text) > 20 else ''})"
        )
    return value


def _check_state(state: Any) -> dict[str, Any]:
    """The app state, checked to be an object that can be saved again exactly as it was read."""
    if not isinstance(state, dict):
        raise _damaged("the app state is not an object")
    try:
        json.dumps(state, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        raise _damaged(f"the app state could not be saved again ({type(exc).__name__})") from exc
    return state


def project_from_json(text: str | bytes) -> Project:
    """A project from file text (migrating older formats); raises ProjectError.

    NaN, infinities and whole numbers too long for Python to read (over 4,300 digits) are refused
    anywhere in the file; the song is validated by :func:`song_from_dict`, and the app state must be saveable
    again, so that what loads can always be saved.
    """
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8-sig")
        doc = json.loads(text, parse_constant=_parse_constant, parse_float=_parse_float)
    except _BadNumberError as exc:
        raise ProjectError(f"the project file is damaged: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ProjectError(
            f"the project file is damaged (not valid JSON: {exc.msg} at line {exc.lineno})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ProjectError("the project file is damaged (not UTF-8 text)") from exc
    except RecursionError as exc:
        raise ProjectError("the project file is damaged (nested too deeply)") from exc
    except ValueError as exc:  # int(): a whole number of thousands of digits
        raise ProjectError("the project file is damaged: it holds a number of thousands of digits") from exc
    if not isinstance(doc, dict) or doc.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise ProjectError("this is not a musicgen project file")
    doc = migrate(doc)
    state = _check_state(doc.get("state", {}))
    return Project(song_from_dict(doc.get("song")), state)


def save_project(project: Project, path: str | Path, *, keep_backup: bool = True) -> None:
    """Save atomically: temp file + fsync + rename; the previous file stays as ``path + ".bak"``.

    Raises ProjectError when the file cannot be written (nothing is changed then).
    """
    path = Path(path)
    backup = path.with_name(path.name + ".bak") if keep_backup else None
    write_file_atomic(path, project_to_json(project).encode("utf-8"), ProjectError, backup=backup)


def load_project(path: str | Path) -> Project:
    """Load a ``.mgproj`` file (raises ProjectError with a message a musician understands)."""
    path = Path(path)
    data = read_capped(path, MAX_PROJECT_BYTES, ProjectError, "project file")
    try:
        return project_from_json(data)
    except ProjectError as exc:
        backup = path.with_name(path.name + ".bak")
        hint = f" (the previous version is in {backup.name})" if backup.exists() else ""
        raise ProjectError(f"{path.name}: {exc}{hint}") from exc


def is_project_path(path: str | Path) -> bool:
    """Whether the path's extension names a project file."""
    return Path(path).suffix.lower() == PROJECT_EXTENSION


def load_any(path: str | Path) -> LoadResult:
    """Open a MIDI file or a project by its extension (by its first bytes when the extension is unknown).

    Raises MidiImportError or ProjectError.
    """
    path = Path(path)
    kind = "project" if is_project_path(path) else "midi" if is_midi_path(path) else None
    if kind is None:
        head = read_head(path, 16, MidiImportError, "MIDI or project file").lstrip()
        kind = "project" if head.startswith(b"{") else "midi"
    if kind == "project":
        project = load_project(path)
        return LoadResult(project.song, [], project.state, [], "project")
    result = read_midi(path)
    return LoadResult(result.song, result.repairs, {}, result.notices, "midi", result.midi_format)
