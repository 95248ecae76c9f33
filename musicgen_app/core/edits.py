"""Edit operations on a :class:`~musicgen_app.core.song.Song` that return their inverse.

Every edit is a small value object. ``apply_edit(song, edit)`` changes the song and returns the
edit that undoes it, so an undo stack is a list of inverses. The helpers (``move_notes``,
``resize_notes``, ``transpose_notes``, ``quantize_notes``) only build edits; nothing changes until
the edit is applied. Notes are values: a note is found in its track by equality. Track edits
(``SetTrackAttrs``, ``InsertTrack``, ``RemoveTrack``, ``MoveTrack``) change the track list and
the header state the same way; :func:`track_index_after` follows a track through them.
``ReplaceChords`` edits the song's chord lane (``set_chord``, ``delete_chords``, ``replace_chords``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from musicgen_app.core.chords import Chord, ChordChange
from musicgen_app.core.song import ControlEvent, Note, Song, Track
from musicgen_app.errors import EditError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AddNotes:
    """Add ``notes`` to track ``track``."""

    track: int
    notes: tuple[Note, ...]


@dataclass(frozen=True, slots=True)
class RemoveNotes:
    """Remove ``notes`` (each found by value) from track ``track``."""

    track: int
    notes: tuple[Note, ...]


@dataclass(frozen=True, slots=True)
class ReplaceNotes:
    """Replace ``old`` notes by ``new`` ones in track ``track`` (move, resize, transpose, quantize)."""

    track: int
    old: tuple[Note, ...]
    new: tuple[Note, ...]


@dataclass(frozen=True, slots=True)
class AddControls:
    """Add channel events (sustain pedal, other controllers, pitch bend, ...) to track ``track``."""

    track: int
    controls: tuple[ControlEvent, ...]


@dataclass(frozen=True, slots=True)
class RemoveControls:
    """Remove ``controls`` (each found by value) from track ``track``."""

    track: int
    controls: tuple[ControlEvent, ...]


@dataclass(frozen=True, slots=True)
class CompoundEdit:
    """Several edits applied in order as one undo step (one gesture)."""

    edits: tuple[Edit, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class SetTrackAttrs:
    """Set header attributes of track ``track`` (name, program, mute, solo, volume, colour)."""

    track: int
    attrs: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class InsertTrack:
    """Insert (a copy of) ``value`` so that it becomes track ``track``."""

    track: int
    value: Track


@dataclass(frozen=True, slots=True)
class RemoveTrack:
    """Remove track ``track`` (its notes go with it; the inverse puts it back whole)."""

    track: int


@dataclass(frozen=True, slots=True)
class MoveTrack:
    """Move track ``track`` so that it becomes track ``to`` (the others keep their order)."""

    track: int
    to: int


@dataclass(frozen=True, slots=True)
class ReplaceChords:
    """Replace chord-lane changes ``old`` (each found by value) by ``new`` ones (type, edit, delete a
    chord, or fill the lane from an estimate)."""

    old: tuple[ChordChange, ...]
    new: tuple[ChordChange, ...]


Edit = (
    AddNotes
    | RemoveNotes
    | ReplaceNotes
    | AddControls
    | RemoveControls
    | CompoundEdit
    | SetTrackAttrs
    | InsertTrack
    | RemoveTrack
    | MoveTrack
    | ReplaceChords
)
TRACK_EDITS = (SetTrackAttrs, InsertTrack, RemoveTrack, MoveTrack)
# What a track header may change, with the check each value must pass.
TRACK_ATTRS: dict[str, Callable[[Any], bool]] = {
    "name": lambda v: isinstance(v, str) and len(v) <= 200,
    "program": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 127,
    "mute": lambda v: isinstance(v, bool),
    "solo": lambda v: isinstance(v, bool),
    "volume": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 127,
    "colour": lambda v: isinstance(v, str) and (v == "" or re.fullmatch(r"#[0-9a-fA-F]{6}", v) is not None),
}
CONTROL_KINDS = ("control_change", "pitchwheel", "aftertouch", "polytouch", "program_change")

MIDI_PITCH_RANGE = range(128)


def _check_track(song: Song, track: int) -> None:
    if not 0 <= track < len(song.tracks):
        raise EditError(f"there is no track {track + 1} (the song has {len(song.tracks)})")


def _remove(song: Song, track: int, notes: Iterable[Note]) -> None:
    lst = song.tracks[track].notes
    for n in notes:
        try:
            lst.remove(n)
        except ValueError:
            raise EditError(f"note {n} is not in track {track + 1}") from None


def _check_notes(notes: Iterable[Note]) -> None:
    for n in notes:
        if n.pitch not in MIDI_PITCH_RANGE:
            raise EditError(f"pitch {n.pitch} is outside MIDI's 0-127")
        if n.start_tick < 0:
            raise EditError("a note cannot start before the beginning of the song")
        if n.end_tick <= n.start_tick:
            raise EditError("a note must be at least one tick long")
        if not 1 <= n.velocity <= 127:
            raise EditError(f"velocity {n.velocity} is outside 1-127")


def _check_controls(controls: Iterable[ControlEvent]) -> None:
    for c in controls:
        if c.kind not in CONTROL_KINDS:
            raise EditError(f"{c.kind!r} is not a channel event a track keeps")
        if c.tick < 0:
            raise EditError("an event cannot come before the beginning of the song")
        if not 0 <= c.channel <= 15:
            raise EditError(f"channel {c.channel + 1} is outside MIDI's 1-16")


def _apply_controls(song: Song, edit: AddControls | RemoveControls) -> Edit:
    track = song.tracks[edit.track]
    if isinstance(edit, AddControls):
        _check_controls(edit.controls)
        track.controls.extend(edit.controls)
        track.controls.sort()
        return RemoveControls(edit.track, edit.controls)
    kept = list(track.controls)
    for c in edit.controls:
        try:
            kept.remove(c)
        except ValueError:
            raise EditError(f"event {c} is not in track {edit.track + 1}") from None
    track.controls = kept
    return AddControls(edit.track, edit.controls)


def _apply_track_edit(song: Song, edit: SetTrackAttrs | InsertTrack | RemoveTrack | MoveTrack) -> Edit:
    tracks = song.tracks
    if isinstance(edit, InsertTrack):
        if not 0 <= edit.track <= len(tracks):
            raise EditError(f"cannot insert a track at position {edit.track + 1}")
        tracks.insert(edit.track, edit.value.copy())
        return RemoveTrack(edit.track)
    _check_track(song, edit.track)
    if isinstance(edit, RemoveTrack):
        if len(tracks) == 1:
            raise EditError("a song keeps at least one track")
        return InsertTrack(edit.track, tracks.pop(edit.track))
    if isinstance(edit, MoveTrack):
        if not 0 <= edit.to < len(tracks):
            raise EditError(f"there is no position {edit.to + 1} to move track {edit.track + 1} to")
        tracks.insert(edit.to, tracks.pop(edit.track))
        return MoveTrack(edit.to, edit.track)
    track = tracks[edit.track]
    for name, value in edit.attrs:
        check = TRACK_ATTRS.get(name)
        if check is None:
            raise EditError(f"a track has no setting {name!r}")
        if not check(value):
            raise EditError(f"{value!r} is not a valid {name} for a track")
    old = tuple((name, getattr(track, name)) for name, _ in edit.attrs)
    for name, value in edit.attrs:
        setattr(track, name, value)
    return SetTrackAttrs(edit.track, old)


def _apply_chords(song: Song, edit: ReplaceChords) -> Edit:
    kept = list(song.chords)
    for change in edit.old:
        try:
            kept.remove(change)
        except ValueError:
            raise EditError(
                f"the chord {change.symbol} at tick {change.tick} is not on the chord lane"
            ) from None
    ticks = {c.tick for c in kept}
    for change in edit.new:
        if change.tick < 0:
            raise EditError("a chord cannot come before the beginning of the song")
        if change.tick in ticks:
            raise EditError(f"there is already a chord at tick {change.tick}: one chord per position")
        ticks.add(change.tick)
    song.chords = sorted([*kept, *edit.new], key=lambda c: c.tick)
    return ReplaceChords(edit.new, edit.old)


def track_index_after(edit: Edit, index: int) -> int | None:
    """Where track ``index`` is once ``edit`` is applied (None when the edit removes it)."""
    if isinstance(edit, CompoundEdit):
        out: int | None = index
        for e in edit.edits:
            if out is None:
                return None
            out = track_index_after(e, out)
        return out
    if isinstance(edit, InsertTrack):
        return index + 1 if index >= edit.track else index
    if isinstance(edit, RemoveTrack):
        if index == edit.track:
            return None
        return index - 1 if index > edit.track else index
    if isinstance(edit, MoveTrack):
        a, b = edit.track, edit.to
        if index == a:
            return b
        if a < b and a < index <= b:
            return index - 1
        if b < a and b <= index < a:
            return index + 1
    return index


def apply_edit(song: Song, edit: Edit) -> Edit:
    """Apply ``edit`` to ``song`` in place and return the edit that undoes it.

    On an :class:`EditError` the song is left unchanged.
    """
    if isinstance(edit, CompoundEdit):
        done: list[Edit] = []
        try:
            for e in edit.edits:
                done.append(apply_edit(song, e))
        except EditError:
            for inv in reversed(done):
                apply_edit(song, inv)
            raise
        return CompoundEdit(tuple(reversed(done)))
    if isinstance(edit, TRACK_EDITS):
        return _apply_track_edit(song, edit)
    if isinstance(edit, ReplaceChords):
        return _apply_chords(song, edit)
    _check_track(song, edit.track)
    if isinstance(edit, AddControls | RemoveControls):
        return _apply_controls(song, edit)
    notes = song.tracks[edit.track].notes
    if isinstance(edit, AddNotes):
        _check_notes(edit.notes)
        notes.extend(edit.notes)
        notes.sort()
        return RemoveNotes(edit.track, edit.notes)
    if isinstance(edit, RemoveNotes):
        backup = list(notes)
        try:
            _remove(song, edit.track, edit.notes)
        except EditError:
            song.tracks[edit.track].notes = backup
            raise
        return AddNotes(edit.track, edit.notes)
    if isinstance(edit, ReplaceNotes):
        _check_notes(edit.new)
        backup = list(notes)
        try:
            _remove(song, edit.track, edit.old)
        except EditError:
            song.tracks[edit.track].notes = backup
            raise
        song.tracks[edit.track].notes.extend(edit.new)
        song.tracks[edit.track].notes.sort()
        return ReplaceNotes(edit.track, edit.new, edit.old)
    raise EditError(f"unknown edit {edit!r}")


# -- edit builders ------------------------------------------------------------------------------
def set_chord(song: Song, tick: int, chord: Chord | None) -> ReplaceChords:
    """An edit putting ``chord`` (None: N.C.) on the chord lane at ``tick`` (replacing the chord
    there, if any)."""
    old = tuple(c for c in song.chords if c.tick == tick)
    return ReplaceChords(old, (ChordChange(tick, chord),))


def delete_chords(changes: Iterable[ChordChange]) -> ReplaceChords:
    """An edit removing chord-lane changes (the chord before each then lasts longer)."""
    return ReplaceChords(tuple(changes), ())


def replace_chords(song: Song, start_tick: int, end_tick: int, new: Iterable[ChordChange]) -> ReplaceChords:
    """An edit replacing the chord lane between ``start_tick`` (inclusive) and ``end_tick``
    (exclusive) by ``new`` (e.g. an estimate from the notes): one undo step."""
    old = tuple(c for c in song.chords if start_tick <= c.tick < end_tick)
    return ReplaceChords(old, tuple(c for c in new if start_tick <= c.tick < end_tick))


def add_controls(track: int, controls: Iterable[ControlEvent]) -> AddControls:
    """An edit adding channel events (a recorded sustain pedal, say)."""
    return AddControls(track, tuple(controls))


def set_track(track: int, **attrs: Any) -> SetTrackAttrs:
    """An edit setting track header attributes, e.g. ``set_track(0, name="Bass", volume=90)``."""
    return SetTrackAttrs(track, tuple(attrs.items()))


def add_notes(track: int, notes: Iterable[Note]) -> AddNotes:
    """An edit adding ``notes``."""
    return AddNotes(track, tuple(notes))


def delete_notes(track: int, notes: Iterable[Note]) -> RemoveNotes:
    """An edit deleting ``notes``."""
    return RemoveNotes(track, tuple(notes))


def move_notes(track: int, notes: Sequence[Note], delta_ticks: int = 0, delta_pitch: int = 0) -> ReplaceNotes:
    """An edit moving ``notes`` in time and pitch (clamped so none leaves the song or MIDI range)."""
    if notes:
        delta_ticks = max(delta_ticks, -min(n.start_tick for n in notes))
        delta_pitch = max(delta_pitch, -min(n.pitch for n in notes))
        delta_pitch = min(delta_pitch, 127 - max(n.pitch for n in notes))
    return ReplaceNotes(track, tuple(notes), tuple(n.moved(delta_ticks, delta_pitch) for n in notes))


def transpose_notes(track: int, notes: Sequence[Note], semitones: int) -> ReplaceNotes:
    """An edit transposing ``notes`` (clamped to MIDI's range as a block)."""
    return move_notes(track, notes, 0, semitones)


def resize_notes(
    track: int, notes: Sequence[Note], delta_ticks: int, *, from_start: bool = False, min_ticks: int = 1
) -> ReplaceNotes:
    """An edit lengthening (or shortening) ``notes`` at their end, or at their start."""
    new = []
    for n in notes:
        if from_start:
            start = min(max(0, n.start_tick + delta_ticks), n.end_tick - min_ticks)
            new.append(replace(n, start_tick=start))
        else:
            end = max(n.end_tick + delta_ticks, n.start_tick + min_ticks)
            new.append(replace(n, end_tick=end))
    return ReplaceNotes(track, tuple(notes), tuple(new))


def set_velocity(track: int, notes: Sequence[Note], velocity: int) -> ReplaceNotes:
    """An edit setting every note's velocity (clamped to 1-127)."""
    v = min(127, max(1, velocity))
    return ReplaceNotes(track, tuple(notes), tuple(replace(n, velocity=v) for n in notes))


def quantize_notes(
    track: int, notes: Sequence[Note], grid_ticks: int, *, strength: float = 1.0, ends: bool = True
) -> ReplaceNotes:
    """An edit moving note starts (and ends) toward the nearest ``grid_ticks`` line.

    ``strength`` 1.0 snaps fully; 0.5 moves half way. A note never shrinks below one grid step
    when its ends are quantized.
    """
    if grid_ticks <= 0:
        raise EditError("the quantize grid must be at least one tick")

    def snap(t: int) -> int:
        target = round(t / grid_ticks) * grid_ticks
        return round(t + (target - t) * strength)

    new = []
    for n in notes:
        start = max(0, snap(n.start_tick))
        if ends:
            end = snap(n.end_tick)
            if end <= start:
                end = start + (grid_ticks if strength >= 1.0 else max(1, n.duration_ticks))
        else:
            end = start + n.duration_ticks
        new.append(replace(n, start_tick=start, end_tick=end))
    return ReplaceNotes(track, tuple(notes), tuple(new))
