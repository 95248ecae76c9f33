"""Project files: exact round trip, backups, newer versions refused, older ones migrated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musicgen_app.core.midi_io import read_midi
from musicgen_app.core.project import (
    FORMAT_VERSION,
    MIGRATIONS,
    Project,
    load_any,
    load_project,
    project_from_json,
    project_to_json,
    save_project,
    song_from_dict,
    song_to_dict,
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
from musicgen_app.errors import MidiImportError, ProjectError

from .samples import must_show_file


def _song() -> Song:
    song = Song(
        resolution=960,
        title="Études – 1",
        tempos=[TempoChange(0, 500_000), TempoChange(3840, 612_345)],
        time_signatures=[TimeSignature(0, 4, 4), TimeSignature(3840, 7, 8)],
        key_signatures=[KeySignature(0, "F#m")],
        markers=[Marker(0, "Intro"), Marker(3840, "Verse")],
        loop=(0, 3840),
        meta=[
            MetaEvent(0, "copyright", "© 2026".encode("latin-1")),
            MetaEvent(0, "sysex", b"\x7e\x7f\x09\x01"),
        ],
    )
    song.tracks.append(
        Track(
            "Lead",
            81,
            2,
            notes=[Note(0, 0, 10, 1, 2), Note(5, 127, 5, 127, 2)],
            controls=[
                ControlEvent(0, "control_change", 64, 127, 2),
                ControlEvent(9, "pitchwheel", 0, -8192, 2),
            ],
            meta=[MetaEvent(0, "lyrics", "Ét".encode()), MetaEvent(5, "lyrics", b"")],
        )
    )
    song.tracks.append(Track("Kit", 0, 9, True, [Note(0, 36, 120, 100, 9)]))
    return song


STATE = {
    "model": "melody_lstm",
    "temperature": 0.85,
    "takes": [{"seed": 1234567890123, "notes": [[0, 60, 480, 100, 0]], "temperature": 1.1}],
    "generation": {"bars": 4, "top_p": 0.9},
}


def test_song_dict_round_trip_is_exact() -> None:
    song = _song()
    assert song_from_dict(json.loads(json.dumps(song_to_dict(song)))) == song


def test_save_and_load(tmp_path: Path) -> None:
    path = tmp_path / "song.mgproj"
    save_project(Project(_song(), STATE), path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format_version"] == FORMAT_VERSION and doc["format"] == "musicgen-project"
    loaded = load_project(path)
    assert loaded.song == _song()
    assert loaded.state == STATE
    assert loaded.state["takes"][0]["seed"] == 1234567890123
    assert not path.with_name("song.mgproj.bak").exists()  # nothing to back up the first time
    assert [p.name for p in tmp_path.iterdir()] == ["song.mgproj"]  # no temporary file left behind


def test_second_save_keeps_the_previous_version_as_backup(tmp_path: Path) -> None:
    path = tmp_path / "song.mgproj"
    save_project(Project(_song(), {"v": 1}), path)
    save_project(Project(_song(), {"v": 2}), path)
    assert load_project(path).state == {"v": 2}
    assert load_project(tmp_path / "song.mgproj.bak").state == {"v": 1}
    save_project(Project(_song(), {"v": 3}), path)
    assert load_project(tmp_path / "song.mgproj.bak").state == {"v": 2}


def test_newer_version_is_refused_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "future.mgproj"
    doc = json.loads(project_to_json(Project(_song())))
    doc["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ProjectError, match="newer version of musicgen"):
        load_project(path)


def test_version_0_is_migrated(tmp_path: Path) -> None:
    assert 0 in MIGRATIONS
    v0 = {
        "format_version": 0,
        "title": "old sketch",
        "resolution": 96,
        "bpm": 90,
        "meter": [3, 4],
        "tracks": [
            {"name": "tune", "program": 73, "notes": [{"start": 0, "end": 96, "pitch": 67, "velocity": 70}]}
        ],
        "settings": {"model": "old", "temperature": 1.2},
    }
    path = tmp_path / "old.mgproj"
    path.write_text(json.dumps(v0), encoding="utf-8")
    project = load_project(path)
    song = project.song
    assert (song.title, song.resolution) == ("old sketch", 96)
    assert song.tempos == [TempoChange(0, 666_667)]
    assert song.time_signatures == [TimeSignature(0, 3, 4)]
    assert song.tracks == [Track("tune", 73, 0, False, [Note(0, 67, 96, 70, 0)], [])]
    assert project.state == {"model": "old", "temperature": 1.2}
    # saving writes the current version
    save_project(project, path)
    assert json.loads(path.read_text(encoding="utf-8"))["format_version"] == FORMAT_VERSION


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not valid JSON"),
        (b'{"format_version": 1, "song": {', "not valid JSON"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b"[1, 2, 3]", "not a musicgen project"),
        (b'{"format": "something-else", "format_version": 1}', "not a musicgen project"),
        (b'{"song": {}}', "no valid format_version"),
        (b'{"format_version": "1", "song": {}}', "no valid format_version"),
        (b'{"format_version": 1, "song": {"resolution": 0}}', "resolution"),
        (
            b'{"format_version":1,"song":{"resolution":480,"tracks":[{"notes":[[0,200,10,90,0]]}]}}',
            "pitch",
        ),
        (b'{"format_version": 1, "song": {"resolution": 480, "tracks": [{"notes": [[0, 60]]}]}}', "rows"),
        (b'{"format_version": 1, "song": {"resolution": 480}, "state": []}', "app state"),
        (b'{"format_version": 0, "tracks": 5}', "cannot be upgraded"),
        (b"[" * 100_000, "damaged"),
    ],
)
def test_damaged_projects_are_refused_with_a_message(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.mgproj"
    path.write_bytes(content)
    with pytest.raises(ProjectError, match=message):
        load_project(path)


def test_damaged_project_points_to_its_backup(tmp_path: Path) -> None:
    path = tmp_path / "song.mgproj"
    save_project(Project(_song()), path)
    save_project(Project(_song()), path)
    path.write_bytes(b"{ half a file")
    with pytest.raises(ProjectError, match=r"previous version is in song\.mgproj\.bak"):
        load_project(path)


def test_unsaveable_state_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "song.mgproj"
    save_project(Project(_song(), {"ok": True}), path)
    with pytest.raises(ProjectError, match="JSON"):
        save_project(Project(_song(), {"bad": float("nan")}), path)
    assert load_project(path).state == {"ok": True}


def test_save_into_a_missing_folder_is_a_project_error(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="cannot write"):
        save_project(Project(_song()), tmp_path / "no" / "such" / "song.mgproj")


def test_load_any_by_extension_and_by_content(tmp_path: Path) -> None:
    mid = tmp_path / "a.mid"
    must_show_file().save(mid)
    proj = tmp_path / "a.mgproj"
    save_project(Project(read_midi(mid).song, STATE), proj)
    assert load_any(mid).kind == "midi" and load_any(mid).midi_format == 1
    assert load_any(proj).state == STATE
    odd = tmp_path / "a.dat"
    odd.write_bytes(proj.read_bytes())
    assert load_any(odd).song == read_midi(mid).song
    odd.write_bytes(mid.read_bytes())
    assert load_any(odd).kind == "midi"
    with pytest.raises(MidiImportError, match="does not exist"):
        load_any(tmp_path / "missing.xyz")
    with pytest.raises(ProjectError, match="does not exist"):
        load_any(tmp_path / "missing.mgproj")


def test_saves_keep_the_file_permissions(tmp_path: Path) -> None:
    path = tmp_path / "song.mgproj"
    save_project(Project(_song()), path)
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)
    save_project(Project(_song()), path)
    assert path.stat().st_mode & 0o777 == 0o600


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=10,
)


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=300, deadline=None)
@given(st.data(), JSON)
def test_any_damaged_value_is_a_project_error_or_loads(data: st.DataObject, value: object) -> None:
    doc = json.loads(project_to_json(Project(_song(), STATE)))
    doc["format_version"] = data.draw(st.sampled_from(sorted({0, 1, FORMAT_VERSION})))
    path = data.draw(st.sampled_from(_paths(doc)))
    if path:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    else:
        doc = value
    try:
        project = project_from_json(json.dumps(doc))
    except ProjectError as exc:
        assert str(exc)
        return
    # what loads is a song the rest of the app can use
    assert song_from_dict(song_to_dict(project.song)) == project.song
