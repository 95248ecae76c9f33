"""Drum tracks: the keyboard strip names the GM percussion keys, notes drawn there sound on
channel 10, and Continue says that no model can continue drums instead of writing a melody."""

from __future__ import annotations

from types import SimpleNamespace

from PySide6.QtCore import QPoint, Qt

from musicgen_app.core.gm import GM_DRUM_NAMES, drum_name, is_drum_track
from musicgen_app.core.song import DRUM_CHANNEL, Note, Song, Track
from musicgen_app.gui.document import Document
from musicgen_app.gui.drums import continue_refusal, model_plays_drums
from musicgen_app.gui.first_launch import examples_dir
from musicgen_app.gui.piano_roll.widget import KEYBOARD_WIDTH


def drums_and_melody() -> Song:
    return Song(
        tracks=[
            Track(name="Melody", notes=[Note(0, 67, 480, 90), Note(480, 69, 960, 90)]),
            Track(
                name="Drums", channel=DRUM_CHANNEL, is_drum=True, notes=[Note(0, 36, 120, 110, DRUM_CHANNEL)]
            ),
        ]
    )


def test_the_gm_percussion_names() -> None:
    assert (drum_name(36), drum_name(38), drum_name(42), drum_name(46), drum_name(49)) == (
        "Kick",
        "Snare",
        "Closed Hat",
        "Open Hat",
        "Crash",
    )
    assert set(GM_DRUM_NAMES) == set(range(35, 82)) and drum_name(20) == ""
    assert is_drum_track(Track(channel=DRUM_CHANNEL)) and not is_drum_track(Track(channel=0))


def test_keyboard_strip_names_drums_on_a_drum_track(window, qtbot) -> None:
    window.set_document(Document(drums_and_melody()))
    strip = window.roll.keyboard
    g = window.roll.geometry_model
    assert not strip.drums and strip.width() == KEYBOARD_WIDTH
    piano = strip.grab().toImage()
    window.track_list.headers[1].activated.emit(1)  # a click on the drum track's header
    assert window.doc.active_track == 1
    qtbot.waitUntil(lambda: strip.width() > KEYBOARD_WIDTH, timeout=2000)
    assert strip.drums
    g.key_height = 14
    g.center_pitch(40)
    window.roll._sync()
    drums = strip.grab().toImage()
    # The Kick row carries its name: dark text pixels on the row, at the left where names start.
    y = int(g.pitch_to_y(36) + g.key_height / 2)
    dark = [x for x in range(2, 60) if drums.pixelColor(x, y).lightness() < 110]
    assert dark, "no text on the Kick row"
    assert drums.size() != piano.size()
    window.doc.set_active_track(0)
    assert not strip.drums and strip.width() == KEYBOARD_WIDTH


def test_notes_drawn_on_a_drum_track_sound_on_channel_ten(window, qtbot, recording) -> None:
    window.set_document(Document(drums_and_melody()))
    window.doc.set_active_track(1)
    g = window.roll.geometry_model
    g.show_ticks(0, 4 * 1920)
    g.key_height = 12
    g.center_pitch(40)
    window.roll._sync()
    window.set_tool("draw")
    canvas = window.canvas
    pos = QPoint(round(g.tick_to_x(960)), round(g.pitch_to_y(38) + 6))
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=pos)
    added = [n for n in window.doc.song.tracks[1].notes if n.pitch == 38]
    assert added and added[0].channel == DRUM_CHANNEL
    assert any(
        m.type == "note_on" and m.channel == DRUM_CHANNEL and m.note == 38 for _, m in recording.messages
    )


def test_continue_on_a_drum_track_says_no_model_can(window, qtbot) -> None:
    qtbot.waitUntil(lambda: window.panel.model_combo.count() > 0, timeout=20_000)
    window.set_document(Document(drums_and_melody()))
    window.doc.set_active_track(1)
    before = [list(t.notes) for t in window.doc.song.tracks]
    window.act_continue.trigger()
    assert "None of the installed models can continue drums" in window.statusBar().currentMessage()
    assert not window.gen.running and not window.gen.takes and not window.playback.playing
    assert [list(t.notes) for t in window.doc.song.tracks] == before
    # On the melody track the same model goes ahead.
    window.doc.set_active_track(0)
    window.act_continue.trigger()
    assert window.gen.running or window.gen.takes
    window.stop_all()


def test_a_model_that_plays_drums_is_named() -> None:
    drummer = SimpleNamespace(name="groove-vae", card={"drums": True})
    melody = SimpleNamespace(name="melody-lstm", card={"family": "melody-lstm"})
    track = Track(channel=DRUM_CHANNEL, is_drum=True)
    assert model_plays_drums(drummer) and not model_plays_drums(melody)
    assert continue_refusal(track, "groove-vae", drummer, [melody, drummer]) is None
    msg = continue_refusal(track, "melody-lstm", melody, [melody, drummer])
    assert msg is not None and "groove-vae" in msg
    assert continue_refusal(Track(), "melody-lstm", melody, [melody]) is None


def test_the_drum_groove_example_opens_as_drums(window, qtbot) -> None:
    window.open_path(examples_dir() / "drum_groove.mid")
    qtbot.waitUntil(lambda: window.doc.song.note_count > 0, timeout=10_000)
    track = window.doc.song.tracks[0]
    assert is_drum_track(track) and {36, 38, 42} <= {n.pitch for n in track.notes}
    assert window.roll.keyboard.drums
    assert not window.track_list.headers[0].instrument.isEnabled()
