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

Saving is atomic (:func:`save_project`, through ``midi_io.write_file_atomic``): the JSON goes to
a temporary file in the same folder, is flushed and fsync'ed, the previous file is kept as
``<name>.mgproj.bak`` (a hard link, or a copy where links are not possible), and the temporary
file is renamed over the project; the folder is fsync'ed too. A crash at any moment leaves the
old or the new version.

Loading (:func:`load_project`) refuses a file from a newer version of the app with a message, and
migrates older versions step by step through :data:`MIGRATIONS` (version ``n`` -> ``n + 1``).
Version 2 added the ``meta`` lists; a version-1 project has none and loads with empty ones.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicgen_app import __version__
from musicgen_app.core.midi_io import is_midi_path, read_file_capped, read_midi, write_file_atomic
from musicgen_app.core.song import (
    META_KINDS,
    ControlEvent,
    KeySignature,
    Marker,
    MetaEvent,
    Note,
    Song,
    TempoChange,
    TimeSignature,
    Track,
)
from musicgen_app.errors import MidiImportError, ProjectError

logger = logging.getLogger(__name__)

FORMAT_NAME = "musicgen-project"
FORMAT_VERSION = 2
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
    for tick, kind, encoding, payload in _rows(value, what, 4):
        if kind not in META_KINDS:
            raise ProjectError(f"the project is damaged: {what} holds an unknown kind of event ({kind!r})")
        payload = _str(payload, f"an event in {what}")
        if encoding == "utf8":
            data = payload.encode("utf-8")  # a lone surrogate: ValueError
        elif encoding == "hex":
            try:
                data = bytes.fromhex(payload)
            except ValueError:
                raise ProjectError(f"the project is damaged: an event in {what} is not hex data") from None
        else:
            raise ProjectError(f"the project is damaged: {what} holds an unknown encoding ({encoding!r})")
        if kind == "sysex" and any(b > 0x7F for b in data):
            raise ProjectError(
                f"the project is damaged: a system-exclusive message in {what} holds a byte above 127"
            )
        events.append(MetaEvent(_int(tick, "an event tick", 0), kind, data))
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
        "tracks": [
            {
                "name": t.name,
                "program": t.program,
                "channel": t.channel,
                "is_drum": t.is_drum,
                "notes": [[n.start_tick, n.pitch, n.end_tick, n.velocity, n.channel] for n in t.notes],
                "controls": [[c.tick, c.kind, c.number, c.value, c.channel] for c in t.controls],
                "meta": _meta_rows(t.meta),
            }
            for t in song.tracks
        ],
    }
    for t, row in zip(song.tracks, data["tracks"], strict=True):
        _with_end(row, t.end_of_track)
    return _with_end(data, song.end_of_track)


def _int(value: Any, what: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProjectError(f"the project is damaged: {what} is not a whole number ({value!r})")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ProjectError(f"the project is damaged: {what} is out of range ({value})")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ProjectError(f"the project is damaged: {what} is not text ({value!r})")
    return value


def _rows(value: Any, what: str, width: int) -> list[list[Any]]:
    if not isinstance(value, list) or not all(isinstance(r, list) and len(r) == width for r in value):
        raise ProjectError(f"the project is damaged: {what} is not a list of {width}-item rows")
    return value


def song_from_dict(data: Any) -> Song:
    """The song from :func:`song_to_dict` data; raises ProjectError when anything is off."""
    if not isinstance(data, dict):
        raise ProjectError("the project is damaged: the song is not an object")
    try:
        resolution = _int(data.get("resolution"), "the resolution", 1)
        song = Song(
            resolution=resolution,
            title=_str(data.get("title", ""), "the title"),
            tempos=[
                TempoChange(_int(t, "a tempo tick", 0), _int(u, "a tempo", 1))
                for t, u in _rows(data.get("tempos", []), "the tempo list", 2)
            ],
            time_signatures=[
                TimeSignature(_int(t, "a meter tick", 0), _int(a, "a meter", 1), _int(b, "a meter", 1))
                for t, a, b in _rows(data.get("time_signatures", []), "the meter list", 3)
            ],
            key_signatures=[
                KeySignature(_int(t, "a key tick", 0), _str(k, "a key"))
                for t, k in _rows(data.get("key_signatures", []), "the key list", 2)
            ],
            markers=[
                Marker(_int(t, "a marker tick", 0), _str(x, "a marker"))
                for t, x in _rows(data.get("markers", []), "the marker list", 2)
            ],
            meta=_meta_from_rows(data.get("meta", []), "the conductor's events"),
            end_of_track=_end(data.get("end_of_track"), "the song's end"),
        )
        loop = data.get("loop")
        if loop is not None:
            a, b = _rows([loop], "the loop", 2)[0]
            song.loop = (_int(a, "the loop start", 0), _int(b, "the loop end", 0))
        tracks = data.get("tracks", [])
        if not isinstance(tracks, list):
            raise ProjectError("the project is damaged: the track list is not a list")
        for i, t in enumerate(tracks, 1):
            if not isinstance(t, dict):
                raise ProjectError(f"the project is damaged: track {i} is not an object")
            track = Track(
                name=_str(t.get("name", ""), f"track {i}'s name"),
                program=_int(t.get("program", 0), f"track {i}'s program", 0, 127),
                channel=_int(t.get("channel", 0), f"track {i}'s channel", 0, 15),
                is_drum=bool(t.get("is_drum", False)),
                end_of_track=_end(t.get("end_of_track"), f"track {i}'s end"),
            )
            track.notes = [
                Note(
                    _int(s, "a note start", 0),
                    _int(p, "a pitch", 0, 127),
                    _int(e, "a note end", s),
                    _int(v, "a velocity", 1, 127),
                    _int(c, "a note channel", 0, 15),
                )
                for s, p, e, v, c in _rows(t.get("notes", []), f"track {i}'s notes", 5)
            ]
            track.controls = [
                ControlEvent(
                    _int(k, "an event tick", 0),
                    _str(kind, "an event kind"),
                    _int(n, "a number"),
                    _int(v, "a value"),
                    _int(c, "a channel", 0, 15),
                )
                for k, kind, n, v, c in _rows(t.get("controls", []), f"track {i}'s events", 5)
            ]
            track.meta = _meta_from_rows(t.get("meta", []), f"track {i}'s meta events")
            song.tracks.append(track)
    except ProjectError:
        raise
    except (TypeError, ValueError) as exc:
        raise ProjectError(f"the project is damaged: {exc}") from exc
    return song


# -- migrations ---------------------------------------------------------------------------------
def _migrate_0_to_1(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (the pre-release draft): one tempo in BPM, notes as objects, "settings" for state."""
    bpm = float(doc.get("bpm", 120.0))
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
        "tempos": [[0, round(60_000_000 / bpm)]],
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


# version n -> function that turns a version-n document into a version n+1 document
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _migrate_0_to_1, 1: _migrate_1_to_2}


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
        except (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError) as exc:
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


def project_from_json(text: str | bytes) -> Project:
    """A project from file text (migrating older formats); raises ProjectError."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8-sig")
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectError(
            f"the project file is damaged (not valid JSON: {exc.msg} at line {exc.lineno})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ProjectError("the project file is damaged (not UTF-8 text)") from exc
    except RecursionError as exc:
        raise ProjectError("the project file is damaged (nested too deeply)") from exc
    if not isinstance(doc, dict) or doc.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise ProjectError("this is not a musicgen project file")
    doc = migrate(doc)
    state = doc.get("state", {})
    if not isinstance(state, dict):
        raise ProjectError("the project is damaged: the app state is not an object")
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
    data = read_file_capped(path, MAX_PROJECT_BYTES, ProjectError, "project file")
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
        try:
            with open(path, "rb") as fh:
                head = fh.read(16).lstrip()
        except FileNotFoundError as exc:
            raise MidiImportError(f"{path} does not exist") from exc
        except OSError as exc:
            raise MidiImportError(f"cannot read {path}: {exc.strerror or exc}") from exc
        kind = "project" if head.startswith(b"{") else "midi"
    if kind == "project":
        project = load_project(path)
        return LoadResult(project.song, [], project.state, [], "project")
    result = read_midi(path)
    return LoadResult(result.song, result.repairs, {}, result.notices, "midi", result.midi_format)
