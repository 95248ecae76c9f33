"""One validation of a project's contents at load: every value inside its MIDI range or refused
with the field named; NaN and infinities refused; booleans are booleans; numbers JSON spells but
Python cannot use end in a clean ProjectError; what loads can always be saved again."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from core.samples import must_show_file

from musicgen_app.core.midi_io import read_midi
from musicgen_app.core.project import (
    Project,
    load_project,
    project_from_json,
    project_to_json,
    save_project,
)
from musicgen_app.core.song import (
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
from musicgen_app.errors import ProjectError


def _song() -> Song:
    song = Song(
        resolution=480,
        title="ok",
        tempos=[TempoChange(0, 500_000)],
        time_signatures=[TimeSignature(0, 4, 4), TimeSignature(1920, 6, 8)],
        key_signatures=[KeySignature(0, "Bb")],
        markers=[Marker(0, "A")],
        loop=(0, 1920),
        meta=[MetaEvent(0, "copyright", b"(c)")],
    )
    song.tracks.append(
        Track(
            "lead",
            5,
            1,
            notes=[Note(0, 60, 480, 100, 1), Note(480, 64, 960, 90, 1)],
            controls=[
                ControlEvent(0, "control_change", 7, 100, 1),
                ControlEvent(10, "pitchwheel", 0, 8191, 1),
                ControlEvent(20, "program_change", 12, 0, 1),
                ControlEvent(30, "aftertouch", 0, 64, 1),
                ControlEvent(40, "polytouch", 60, 64, 1),
            ],
            meta=[MetaEvent(0, "lyrics", b"la")],
        )
    )
    song.tracks.append(Track("kit", 0, 9, True, [Note(0, 36, 120, 100, 9)]))
    return song


def _doc() -> dict[str, Any]:
    return json.loads(project_to_json(Project(_song(), {"model": "x", "seed": 2**64})))


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


S, T0, T1 = ("song",), ("song", "tracks", 0), ("song", "tracks", 1)
# (what is wrong, where in the document, the bad value, words the message must hold)
BAD_VALUES: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("program 500", (*T0, "program"), 500, "track 1's program"),
    ("program -1", (*T0, "program"), -1, "track 1's program"),
    ("track channel 16", (*T0, "channel"), 16, "track 1's channel"),
    ("is_drum as text", (*T1, "is_drum"), "no", "track 2's is_drum"),
    ("is_drum as a number", (*T1, "is_drum"), 1, "track 2's is_drum"),
    ("pitch 128", (*T0, "notes", 1, 1), 128, "track 1, note 2: the pitch"),
    ("pitch -1", (*T0, "notes", 0, 1), -1, "track 1, note 1: the pitch"),
    ("velocity 0", (*T0, "notes", 0, 3), 0, "track 1, note 1: the velocity"),
    ("velocity 128", (*T0, "notes", 0, 3), 128, "the velocity"),
    ("note channel 16", (*T0, "notes", 0, 4), 16, "note 1: the channel"),
    ("note ending before it starts", (*T0, "notes", 1, 2), 100, "note 2: the end tick"),
    ("a note at tick 2^63", (*T0, "notes", 0, 0), 2**63, "note 1: the start tick"),
    ("a note ending at tick 2^63", (*T0, "notes", 0, 2), 2**63, "note 1: the end tick"),
    ("a note at a negative tick", (*T0, "notes", 0, 0), -5, "note 1: the start tick"),
    ("a pitch as a float", (*T0, "notes", 0, 1), 60.0, "the pitch is not a whole number"),
    ("a velocity as true", (*T0, "notes", 0, 3), True, "the velocity is not a whole number"),
    ("control 300", (*T0, "controls", 0, 2), 300, "event 1 (control_change): the control number"),
    ("control value 99999", (*T0, "controls", 0, 3), 99999, "event 1 (control_change): the value"),
    ("pitch wheel 10000", (*T0, "controls", 1, 3), 10000, "event 2 (pitchwheel): the value"),
    ("pitch wheel -8193", (*T0, "controls", 1, 3), -8193, "(pitchwheel): the value"),
    ("program change 128", (*T0, "controls", 2, 2), 128, "event 3 (program_change): the program"),
    ("aftertouch 200", (*T0, "controls", 3, 3), 200, "event 4 (aftertouch): the value"),
    ("polytouch pitch 200", (*T0, "controls", 4, 2), 200, "event 5 (polytouch): the pitch"),
    ("control channel 16", (*T0, "controls", 0, 4), 16, "(control_change): the channel"),
    ("an unknown event kind", (*T0, "controls", 0, 1), "noteon", "event 1 is of an unknown kind"),
    ("key H#", (*S, "key_signatures", 0, 1), "H#", "key 1 is not a key name"),
    ("key as a number", (*S, "key_signatures", 0, 1), 3, "key 1 is not a key name"),
    ("meter 4/3", (*S, "time_signatures", 1, 2), 3, "meter 2: the denominator 3 is not a power of two"),
    ("meter 4/2^20", (*S, "time_signatures", 0, 2), 2**20, "meter 1: the denominator"),
    ("meter 4/0", (*S, "time_signatures", 0, 2), 0, "meter 1: the denominator"),
    ("meter 0/4", (*S, "time_signatures", 0, 1), 0, "meter 1: the numerator"),
    ("meter 256/4", (*S, "time_signatures", 0, 1), 256, "meter 1: the numerator"),
    ("tempo 2^30", (*S, "tempos", 0, 1), 2**30, "tempo 1 (microseconds per quarter)"),
    ("tempo 0", (*S, "tempos", 0, 1), 0, "tempo 1 (microseconds per quarter)"),
    ("tempo at tick 2^63", (*S, "tempos", 0, 0), 2**63, "tempo 1: the tick"),
    ("resolution 0", (*S, "resolution"), 0, "the resolution"),
    ("resolution 2^15", (*S, "resolution"), 2**15, "the resolution"),
    ("marker tick -1", (*S, "markers", 0, 0), -1, "marker 1: the tick"),
    ("a marker that is not text", (*S, "markers", 0, 1), 5, "marker 1's text"),
    ("a reversed loop", (*S, "loop"), [1920, 0], "the loop end"),
    ("an empty loop", (*S, "loop"), [480, 480], "the loop end"),
    ("a meta event at tick 2^63", (*S, "meta", 0, 0), 2**63, "the conductor's events: the tick"),
    ("a 20 MB lyric", (*T0, "meta", 0, 3), "x" * 20_000_000, "20,000,000 bytes"),
    ("a lone surrogate in a name", (*T0, "name"), "\ud800", "track 1's name holds a broken character"),
    ("an event five hours in", (*T0, "notes", 1, 2), 480 * 2 * 3600 * 5, "more than 4 hours"),
    ("a lone surrogate in the state", ("state", "model"), "\udfff", "the app state"),
]


def test_the_good_document_loads() -> None:
    project = project_from_json(json.dumps(_doc()))
    assert project.song == _song() and project.state == {"model": "x", "seed": 2**64}


@pytest.mark.parametrize(("what", "path", "value", "message"), BAD_VALUES, ids=[c[0] for c in BAD_VALUES])
def test_each_bad_value_is_refused_with_the_field_named(
    what: str, path: tuple[Any, ...], value: Any, message: str
) -> None:
    text = json.dumps(_set(_doc(), path, value))
    with pytest.raises(ProjectError, match="damaged") as info:
        project_from_json(text)
    assert message in str(info.value), (what, str(info.value))
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def _text_with(token: str) -> str:
    """The good document's text with the app state's "model" value replaced by ``token`` verbatim."""
    return json.dumps(_doc()).replace('"model": "x"', f'"model": {token}')


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("NaN", "NaN, which is not a number"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        ("1e400", "too large"),
        ("-1e400", "too large"),
        ("1" * 5001, "thousands of digits"),
        ("-" + "9" * 5001, "thousands of digits"),
    ],
)
def test_numbers_json_spells_but_a_project_cannot_hold_are_refused(token: str, message: str) -> None:
    with pytest.raises(ProjectError, match="damaged") as info:
        project_from_json(_text_with(token))
    assert message in str(info.value)


def test_nan_anywhere_in_the_song_is_refused() -> None:
    text = json.dumps(_doc()).replace('"resolution": 480', '"resolution": NaN')
    with pytest.raises(ProjectError, match="NaN"):
        project_from_json(text)


def test_a_project_with_nan_in_its_state_is_refused_at_load_not_at_the_next_save(tmp_path: Path) -> None:
    path = tmp_path / "nan.mgproj"
    path.write_text(_text_with("NaN"), encoding="utf-8")
    with pytest.raises(ProjectError, match="NaN"):
        load_project(path)


@pytest.mark.parametrize(
    ("bpm", "message"),
    [
        (1e-300, "outside what MIDI can hold"),
        (1e-320, "outside what MIDI can hold"),
        (0, "not a positive number"),
        (-90, "not a positive number"),
        ("fast", "not a positive number"),
        (True, "not a positive number"),
        (1e9, "outside what MIDI can hold"),
    ],
)
def test_version_0_tempo_is_checked_before_conversion(tmp_path: Path, bpm: Any, message: str) -> None:
    path = tmp_path / "old.mgproj"
    path.write_text(json.dumps({"format_version": 0, "bpm": bpm, "tracks": []}), encoding="utf-8")
    with pytest.raises(ProjectError, match="cannot be upgraded") as info:
        load_project(path)
    assert message in str(info.value)


def test_version_0_with_a_huge_channel_number_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "old.mgproj"
    path.write_text('{"format_version": 0, "tracks": [{"channel": 1e308, "notes": []}]}', encoding="utf-8")
    with pytest.raises(ProjectError, match="channel"):
        load_project(path)


def test_good_files_still_load_and_save_again(tmp_path: Path) -> None:
    buf = io.BytesIO()
    must_show_file().save(file=buf)
    imported = read_midi(buf.getvalue()).song
    for song in (_song(), imported, Song()):
        path = tmp_path / "p.mgproj"
        save_project(Project(song, {"seed": 12345678901234567890, "t": 0.85, "ok": True}), path)
        project = load_project(path)
        assert project.song == song
        save_project(project, path)  # what loads, saves
        assert load_project(path).song == song
