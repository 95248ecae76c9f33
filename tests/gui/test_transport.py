"""Transport through the real window: Space plays and stops, the playhead follows, loop and
metronome reach the output; recording pairs keyboard messages into notes; devices are remembered."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest

from musicgen_app.core.song import DRUM_CHANNEL, Note
from musicgen_app.gui.document import Document
from musicgen_app.gui.recording import NoteCollector
from musicgen_app.gui.settings import AppSettings
from musicgen_app.playback.metronome import CLICK_HIGH, metronome_track


def test_space_plays_from_the_playhead_and_stops(window, qtbot, recording, sketch) -> None:
    window.set_document(Document(sketch(2)))
    window.seek(960)
    window.act_play.trigger()
    assert window.playback.playing
    qtbot.waitUntil(lambda: window.canvas.playhead_tick > 1200, timeout=5000)
    window.act_play.trigger()
    assert not window.playback.playing
    ons = [m.note for m in recording.of_type("note_on") if m.velocity > 0]
    assert ons and ons[0] == 64  # the note at tick 960, not the first of the song
    assert window.playback.scheduler.sounding == set()


def test_loop_and_metronome_reach_the_output(window, qtbot, recording, sketch) -> None:
    window.set_document(Document(sketch(2)))
    window.set_loop((0, 960))  # two beats: 120 BPM -> one second per pass
    assert window.act_loop.isChecked()
    window.act_metronome.trigger()
    window.act_play.trigger()
    qtbot.wait(2600)
    window.act_play.trigger()
    melody = [m.note for m in recording.of_type("note_on") if m.velocity > 0 and m.channel == 0]
    clicks = [m for m in recording.of_type("note_on") if m.velocity > 0 and m.channel == DRUM_CHANNEL]
    assert melody.count(60) >= 2 and 64 not in melody  # looped, never past the loop end
    assert clicks and clicks[0].note == CLICK_HIGH


def test_metronome_track_accents_the_downbeat(sketch) -> None:
    song = sketch(2)
    song.time_signatures = [song.time_signatures[0].__class__(0, 3, 4)]
    track = metronome_track(song, 2 * 1440)
    assert [n.start_tick for n in track.notes] == [0, 480, 960, 1440, 1920, 2400]
    assert [n.pitch == CLICK_HIGH for n in track.notes] == [True, False, False, True, False, False]
    assert track.is_drum and all(n.channel == DRUM_CHANNEL for n in track.notes)


def test_note_collector_pairs_on_and_off() -> None:
    c = NoteCollector(channel=2)
    c.feed(mido.Message("note_on", note=60, velocity=80), 0)
    c.feed(mido.Message("note_on", note=64, velocity=70), 100)
    c.feed(mido.Message("note_on", note=60, velocity=0), 240)  # running-status note-off
    assert c.notes(300) == [Note(0, 60, 240, 80, 2), Note(100, 64, 300, 70, 2)]  # 64 still held
    c.feed(mido.Message("note_off", note=64), 480)
    c.feed(mido.Message("note_on", note=67, velocity=90), 500)
    assert c.finish(700) == [Note(0, 60, 240, 80, 2), Note(100, 64, 480, 70, 2), Note(500, 67, 700, 90, 2)]


def test_note_collector_keeps_the_pedal_and_releases_it_at_the_end() -> None:
    from musicgen_app.core.song import ControlEvent

    c = NoteCollector(channel=1)
    c.feed(mido.Message("control_change", channel=0, control=64, value=127), 10)
    c.feed(mido.Message("note_on", note=60, velocity=80), 20)
    c.feed(mido.Message("pitchwheel", pitch=-300), 30)
    c.feed(mido.Message("note_off", note=60), 40)
    assert c.finish(500) == [Note(20, 60, 40, 80, 1)]
    assert c.controls == [  # on the track's channel; the pedal still down at the end is lifted then
        ControlEvent(10, "control_change", 64, 127, 1),
        ControlEvent(30, "pitchwheel", 0, -300, 1),
        ControlEvent(500, "control_change", 64, 0, 1),
    ]


def test_record_without_a_keyboard_explains(window) -> None:
    window.settings.input_port = ""
    window.act_record.trigger()
    assert not window.act_record.isChecked()
    assert "MIDI keyboard" in window.statusBar().currentMessage()


def test_devices_dialog_choices_are_remembered(qtbot) -> None:
    from musicgen_app.gui.devices_dialog import DevicesDialog

    s = AppSettings()
    dlg = DevicesDialog(s)
    qtbot.addWidget(dlg)
    dlg.output.setCurrentIndex(dlg.output.findData("none"))
    dlg.soundfont.setText("/some/where/piano.sf2")
    dlg.buffer.setValue(512)
    dlg.thru.setChecked(False)
    dlg.jam_silence.setValue(350)
    dlg.apply_to(s)
    s.add_recent("/tmp/a.mid")
    s.save()
    again = AppSettings.load()
    assert (again.output, again.soundfont, again.buffer_size, again.thru, again.jam_silence_ms) == (
        "none",
        "/some/where/piano.sf2",
        512,
        False,
        350,
    )
    assert again.recent_files == [str(Path("/tmp/a.mid").resolve())]


def test_window_settings_survive_a_restart(window, qtbot) -> None:
    window.panel.temperature.setValue(140)
    window.panel.bars.setValue(6)
    window.snap_combo.setCurrentText("1/8T")
    window.shutdown()
    s = AppSettings.load()
    assert s.temperature == pytest.approx(1.4) and s.bars == 6 and s.snap == "1/8T"
    assert s.window_geometry and s.window_state


def test_the_view_follows_the_playhead(window, qtbot, sketch) -> None:
    window.set_document(Document(sketch(2)))
    g = window.roll.geometry_model
    g.show_ticks(0, 480)  # one beat across the view: the playhead leaves it within half a second
    window.roll._sync()
    assert window.act_follow.isChecked()
    window.act_play.trigger()
    qtbot.waitUntil(lambda: g.scroll_tick > 0, timeout=5000)
    qtbot.waitUntil(
        lambda: g.scroll_tick <= window.canvas.playhead_tick <= g.x_to_tick(g.width), timeout=5000
    )
    window.act_play.trigger()


@pytest.mark.parametrize("value", [-5, 0, 99_999, "fast", 1.5, None])
def test_an_absurd_jam_pause_in_the_settings_file_falls_back_to_the_default(value) -> None:
    import json

    s = AppSettings()
    s.save()
    data = json.loads(AppSettings.path().read_text())
    data["jam_silence_ms"] = value
    AppSettings.path().write_text(json.dumps(data))
    again = AppSettings.load()
    assert again.jam_silence_ms == AppSettings().jam_silence_ms == 600
