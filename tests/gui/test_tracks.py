"""Track headers: rename, instrument, mute, solo, volume, colour, delete and reorder are undoable
edits, saved in the project and heard in playback; the other tracks are drawn in their colours."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from musicgen_app.core.edits import (
    InsertTrack,
    MoveTrack,
    RemoveTrack,
    apply_edit,
    set_track,
    track_index_after,
)
from musicgen_app.core.project import Project, load_project, project_from_json, project_to_json, save_project
from musicgen_app.core.song import Note, Song, Track
from musicgen_app.errors import EditError, ProjectError
from musicgen_app.gui.document import Document
from musicgen_app.gui.track_header import PALETTE, track_colour
from musicgen_app.playback.mix import audible_song


def three_tracks() -> Song:
    return Song(
        tracks=[
            Track(name="Lead", channel=0, notes=[Note(0, 72, 440, 100, 0), Note(480, 74, 920, 100, 0)]),
            Track(
                name="Keys", channel=1, program=4, notes=[Note(0, 60, 900, 90, 1), Note(960, 62, 1800, 90, 1)]
            ),
            Track(name="Bass", channel=2, program=33, notes=[Note(0, 40, 900, 100, 2)]),
        ]
    )


# -- the edits, without Qt --------------------------------------------------------------------------
def test_track_edits_undo_to_the_same_song() -> None:
    song = three_tracks()
    before = song.copy()
    for edit in (
        set_track(1, name="Piano", program=0, mute=True, solo=True, volume=64, colour="#112233"),
        MoveTrack(0, 2),
        RemoveTrack(1),
        InsertTrack(0, Track(name="New")),
    ):
        inverse = apply_edit(song, edit)
        assert song != before
        apply_edit(song, inverse)
        assert song == before
    apply_edit(song, MoveTrack(2, 0))
    assert [t.name for t in song.tracks] == ["Bass", "Lead", "Keys"]


@pytest.mark.parametrize(
    "edit",
    [
        set_track(0, volume=200),
        set_track(0, program=-1),
        set_track(0, colour="red"),
        set_track(0, notes=[]),
        MoveTrack(0, 3),
        RemoveTrack(5),
    ],
)
def test_bad_track_edits_change_nothing(edit) -> None:
    song = three_tracks()
    before = song.copy()
    with pytest.raises(EditError):
        apply_edit(song, edit)
    assert song == before


def test_the_last_track_cannot_be_deleted() -> None:
    song = Song(tracks=[Track(name="only")])
    with pytest.raises(EditError, match="at least one track"):
        apply_edit(song, RemoveTrack(0))


def test_track_index_follows_moves_and_removals() -> None:
    assert [track_index_after(MoveTrack(0, 2), i) for i in range(3)] == [2, 0, 1]
    assert [track_index_after(MoveTrack(2, 0), i) for i in range(3)] == [1, 2, 0]
    assert [track_index_after(RemoveTrack(1), i) for i in range(3)] == [0, None, 1]
    assert [track_index_after(InsertTrack(1, Track()), i) for i in range(3)] == [0, 2, 3]


def test_header_state_is_saved_in_the_project(tmp_path: Path) -> None:
    song = three_tracks()
    apply_edit(song, set_track(2, mute=True, solo=False, volume=37, colour="#a0b0c0", name="Bass ♭"))
    path = tmp_path / "mix.mgproj"
    save_project(Project(song), path)
    loaded = load_project(path).song
    t = loaded.tracks[2]
    assert (t.mute, t.solo, t.volume, t.colour, t.name) == (True, False, 37, "#a0b0c0", "Bass ♭")
    assert loaded == song


def test_a_project_without_header_state_loads_with_defaults() -> None:
    text = project_to_json(Project(three_tracks()))
    for key in ('"mute":false,', '"solo":false,', '"volume":100,', ',"colour":""'):
        assert key in text
        text = text.replace(key, "")
    song = project_from_json(text).song
    assert all((t.mute, t.solo, t.volume, t.colour) == (False, False, 100, "") for t in song.tracks)


@pytest.mark.parametrize("bad", ['"volume":100', '"colour":""'])
def test_a_damaged_header_state_is_refused(bad: str) -> None:
    text = project_to_json(Project(three_tracks()))
    wrong = '"volume":900' if "volume" in bad else '"colour":"javascript:"'
    with pytest.raises(ProjectError, match="damaged"):
        project_from_json(text.replace(bad, wrong, 1))


def test_mute_solo_and_volume_decide_what_is_heard() -> None:
    song = three_tracks()
    song.tracks[0].mute = True
    heard = audible_song(song)
    assert [len(t.notes) for t in heard.tracks] == [0, 2, 1]
    assert song.tracks[0].notes  # the song itself is untouched
    song.tracks[2].solo = True
    assert [len(t.notes) for t in audible_song(song).tracks] == [0, 0, 1]
    song.tracks[2].volume = 50
    cc7 = [c for c in audible_song(song).tracks[2].controls if c.kind == "control_change" and c.number == 7]
    assert [(c.tick, c.value, c.channel) for c in cc7] == [(0, 50, 2)]  # 100 * 50 / 100


# -- the headers in the window --------------------------------------------------------------------
def _open(window, qtbot, song: Song | None = None):
    window.set_document(Document(song or three_tracks()))
    qtbot.waitUntil(lambda: len(window.track_list.headers) == len(window.doc.song.tracks), timeout=3000)
    return window.track_list.headers


def test_rename_instrument_colour_as_undoable_edits(window, qtbot) -> None:
    headers = _open(window, qtbot)
    doc = window.doc
    h = headers[1]
    h.name_edit.clear()
    qtbot.keyClicks(h.name_edit, "Rhodes")
    qtbot.keyClick(h.name_edit, Qt.Key.Key_Return)
    assert doc.song.tracks[1].name == "Rhodes"
    assert window.track_combo.itemText(1) == "2: Rhodes"  # the toolbar's chooser follows
    h.instrument.setCurrentIndex(h.instrument.findData(48))
    assert doc.song.tracks[1].program == 48 and "String Ensemble 1" in h.instrument.currentText()
    h.set_colour(QColor("#123456"))
    assert doc.song.tracks[1].colour == "#123456"
    assert doc.undo_stack.count() == 3
    for _ in range(3):
        window.act_undo.trigger()
    t = doc.song.tracks[1]
    assert (t.name, t.program, t.colour) == ("Keys", 4, "")
    assert h.name_edit.text() == "Keys" and h.instrument.currentData() == 4


def test_delete_and_reorder_follow_the_active_track(window, qtbot) -> None:
    headers = _open(window, qtbot)
    doc = window.doc
    qtbot.mouseClick(headers[0], Qt.MouseButton.LeftButton)
    assert doc.active_track == 0
    headers[0].down_button.click()
    assert [t.name for t in doc.song.tracks] == ["Keys", "Lead", "Bass"]
    assert doc.active_track == 1  # Lead is still the track being edited
    assert window.track_list.headers[1].name_edit.text() == "Lead"
    window.track_list.headers[2].delete_button.click()
    assert [t.name for t in doc.song.tracks] == ["Keys", "Lead"]
    assert len(window.track_list.headers) == 2
    window.act_undo.trigger()
    assert [t.name for t in doc.song.tracks] == ["Keys", "Lead", "Bass"]
    assert doc.song.tracks[2].notes == [Note(0, 40, 900, 100, 2)]  # back with its notes
    window.act_undo.trigger()
    assert [t.name for t in doc.song.tracks] == ["Lead", "Keys", "Bass"] and doc.active_track == 0
    window.act_redo.trigger()
    assert doc.active_track == 1


def test_mute_solo_volume_reach_playback(window, qtbot, recording) -> None:
    headers = _open(window, qtbot)
    doc = window.doc
    headers[0].mute_button.click()
    assert doc.song.tracks[0].mute and doc.undo_stack.count() == 1
    headers[2].volume.setValue(40)  # as a key press or a click on the groove does: one step
    assert doc.song.tracks[2].volume == 40 and headers[2].volume_label.text() == "40"
    window.seek(0)
    window.act_play.trigger()
    qtbot.waitUntil(lambda: window.canvas.playhead_tick > 1000, timeout=5000)
    window.act_play.trigger()
    ons = {m.channel for m in recording.of_type("note_on") if m.velocity > 0}
    assert ons == {1, 2}  # the muted lead is silent
    cc7 = [m.value for m in recording.of_type("control_change") if m.control == 7 and m.channel == 2]
    assert 40 in cc7
    qtbot.waitUntil(lambda: not window.playback.playing, timeout=3000)
    qtbot.wait(300)  # the stopped scheduler's last report is read (a replay at once stops at once)
    recording.messages.clear()
    headers[2].solo_button.click()
    window.seek(0)
    window.act_play.trigger()
    qtbot.waitUntil(lambda: window.canvas.playhead_tick > 600, timeout=5000)
    window.stop_all()
    assert {m.channel for m in recording.of_type("note_on") if m.velocity > 0} == {2}  # soloed bass only


def test_other_tracks_are_drawn_in_their_own_colours(window, qtbot) -> None:
    _open(window, qtbot)
    g = window.roll.geometry_model
    g.show_ticks(0, 2 * 1920)
    g.key_height = 12
    g.center_pitch(56)
    window.roll._sync()
    window.doc.set_active_track(0)
    image = window.canvas.grab().toImage()

    def colour_at(tick: int, pitch: int) -> QColor:
        return image.pixelColor(round(g.tick_to_x(tick)), round(g.pitch_to_y(pitch) + g.key_height / 2))

    keys, bass = colour_at(450, 60), colour_at(450, 40)
    assert keys.name() != bass.name()  # not one grey for every other track
    for got, index in ((keys, 1), (bass, 2)):
        want = QColor(PALETTE[index])
        # drawn faded over the light rows: the hue of the track's colour
        assert abs(got.hslHue() - want.hslHue()) <= 12, (got.name(), want.name())
    window.track_list.headers[2].set_colour(QColor("#00c000"))
    image = window.canvas.grab().toImage()
    green = colour_at(450, 40)
    assert green.green() > green.red() + 40 and green.green() > green.blue() + 40
    assert track_colour(window.doc.song, 2).name() == "#00c000"


def test_a_long_track_name_shows_its_start_and_the_whole_name_on_hover(window, qtbot) -> None:
    """'Piano accompaniment 2' is wider than the name field: the field shows 'Piano accomp…', not
    '…ano accompaniment 2' (setText leaves the cursor, and so the view, at the end)."""
    song = three_tracks()
    song.tracks[1].name = "Piano accompaniment 2 (take 3, seed 77874887)"
    h = _open(window, qtbot, song)[1]
    assert h.name_edit.cursorPosition() == 0 and h.name_edit.toolTip() == song.tracks[1].name
    h.name_edit.setFocus()
    qtbot.keyClick(h.name_edit, Qt.Key.Key_End)
    qtbot.keyClick(h.name_edit, Qt.Key.Key_Return)  # renamed to the same: back to its start
    assert h.name_edit.cursorPosition() == 0
