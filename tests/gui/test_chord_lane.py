"""The chord lane in the real window: type, edit and delete chords, undo and redo, estimate them
from the notes, save and reopen the project, export MIDI and read it back; other programs'
markers stay markers."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog

from musicgen_app.core.chords import ChordChange, parse_chord
from musicgen_app.core.midi_io import read_midi
from musicgen_app.core.song import Note, Song, Track
from musicgen_app.gui.document import Document


def _lane_symbols(window) -> list[tuple[int, str]]:
    return [(c.tick, c.symbol) for c in window.doc.song.chords]


def _type_chord(qtbot, window, tick: int, text: str) -> None:
    lane = window.roll.chord_lane
    x = round(window.roll.geometry_model.tick_to_x(tick)) + 4
    qtbot.mouseDClick(lane, Qt.MouseButton.LeftButton, pos=QPoint(x, lane.height() // 2))
    assert lane.entry.isVisible() and lane.entry_tick == tick
    lane.entry.selectAll()
    qtbot.keyClicks(lane.entry, text)
    qtbot.keyClick(lane.entry, Qt.Key.Key_Return)


def _file_dialog(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))


def test_type_edit_delete_undo_save_export(window, qtbot, sketch, tmp_path, monkeypatch) -> None:
    window.set_document(Document(sketch(2)))
    window.roll.show_bars(0, 4)
    lane = window.roll.chord_lane
    _type_chord(qtbot, window, 0, "Am7")
    assert _lane_symbols(window) == [(0, "Am7")] and not lane.entry.isVisible()
    # a symbol that cannot be read: one line in the status bar, the text stays in the entry
    _type_chord(qtbot, window, 960, "H7")
    assert "not a chord" in window.statusBar().currentMessage()
    assert "\n" not in window.statusBar().currentMessage()
    assert lane.entry.isVisible() and lane.entry.text() == "H7"
    qtbot.keyClick(lane.entry, Qt.Key.Key_Escape)
    assert not lane.entry.isVisible() and _lane_symbols(window) == [(0, "Am7")]
    # edit the chord in place, add one in bar 2
    _type_chord(qtbot, window, 0, "F/A")
    _type_chord(qtbot, window, 1920, "G7")
    assert _lane_symbols(window) == [(0, "F/A"), (1920, "G7")]
    assert [c.symbol for c, _ in lane.visible_changes()] == ["F/A", "G7"]
    assert not lane.grab().isNull()
    # select and delete; undo and redo
    x = round(window.roll.geometry_model.tick_to_x(2000))
    qtbot.mouseClick(lane, Qt.MouseButton.LeftButton, pos=QPoint(x, 10))
    assert lane.selected == ChordChange(1920, parse_chord("G7"))
    qtbot.keyClick(lane, Qt.Key.Key_Delete)
    assert _lane_symbols(window) == [(0, "F/A")]
    assert len(window.doc.notes) == 8  # Delete took the chord, not the selected notes
    window.act_undo.trigger()
    assert _lane_symbols(window) == [(0, "F/A"), (1920, "G7")]
    window.act_undo.trigger()
    window.act_undo.trigger()
    assert _lane_symbols(window) == [(0, "Am7")]
    window.act_redo.trigger()
    window.act_redo.trigger()
    assert _lane_symbols(window) == [(0, "F/A"), (1920, "G7")]
    lane_now = list(window.doc.song.chords)

    # save the project and open it again
    project = tmp_path / "song.mgproj"
    _file_dialog(monkeypatch, project)
    with qtbot.waitSignal(window.saved, timeout=10_000):
        window.act_save.trigger()
    window.set_document(Document())
    with qtbot.waitSignal(window.document_loaded, timeout=10_000):
        window.open_path(project)
    assert window.doc.song.chords == lane_now

    # export MIDI: chord markers on the conductor track; importing it gives the lane back
    mid = tmp_path / "song.mid"
    _file_dialog(monkeypatch, mid)
    window.act_export_all.trigger()
    qtbot.waitUntil(lambda: "Exported song.mid" in window.statusBar().currentMessage(), timeout=10_000)
    texts = [m.text for m in mido.MidiFile(mid).tracks[0] if m.type == "marker"]
    assert texts == ["Chord: F/A", "Chord: G7"]
    assert read_midi(mid).song.chords == lane_now
    window.set_document(Document())
    with qtbot.waitSignal(window.document_loaded, timeout=10_000):
        window.open_path(mid)
    assert window.doc.song.chords == lane_now and window.doc.song.markers == []


def test_type_chord_at_playhead_key(window, qtbot, sketch) -> None:
    window.set_document(Document(sketch(2)))
    window.seek(1000)
    window.act_type_chord.trigger()
    lane = window.roll.chord_lane
    assert lane.entry.isVisible() and lane.entry_tick == 960
    qtbot.keyClicks(lane.entry, "Dm")
    qtbot.keyClick(lane.entry, Qt.Key.Key_Return)
    assert _lane_symbols(window) == [(960, "Dm")]
    assert window.takes is not None  # Return went to the entry, not to Accept Take
    # leaving the entry commits what was typed; leaving it unchanged changes nothing
    lane.open_entry(1920)
    qtbot.keyClicks(lane.entry, "E7")
    lane.entry.clearFocus()
    assert _lane_symbols(window) == [(960, "Dm"), (1920, "E7")] and not lane.entry.isVisible()
    steps = window.doc.undo_stack.count()
    lane.open_entry(960)
    assert lane.entry.text() == "Dm"
    lane.entry.clearFocus()
    assert not lane.entry.isVisible() and window.doc.undo_stack.count() == steps


def test_other_programs_markers_stay_markers(window, qtbot, tmp_path, monkeypatch) -> None:
    mf = mido.MidiFile(ticks_per_beat=480)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("marker", text="Verse", time=0),
            mido.MetaMessage("marker", text="Chorus", time=3840),
        ]
    )
    notes = mido.MidiTrack(
        [mido.Message("note_on", note=60, time=0), mido.Message("note_off", note=60, time=480)]
    )
    mf.tracks += [conductor, notes]
    src = tmp_path / "verse.mid"
    mf.save(src)
    with qtbot.waitSignal(window.document_loaded, timeout=10_000):
        window.open_path(src)
    assert [m.text for m in window.doc.song.markers] == ["Verse", "Chorus"]
    assert window.doc.song.chords == []
    _type_chord(qtbot, window, 0, "C")
    out = tmp_path / "out.mid"
    _file_dialog(monkeypatch, out)
    window.act_export_all.trigger()
    qtbot.waitUntil(lambda: "Exported out.mid" in window.statusBar().currentMessage(), timeout=10_000)
    back = read_midi(out).song
    assert [m.text for m in back.markers] == ["Verse", "Chorus"]
    assert [c.symbol for c in back.chords] == ["C"]


def test_estimate_chords_is_one_undo_step(window, qtbot) -> None:
    # bar 1: C major broken chord, bar 2: G major, bar 3: A minor (melody and a bass track)
    shapes = [(60, 64, 67, 72), (55, 59, 62, 67), (57, 60, 64, 69)]
    melody = [
        Note(b * 1920 + i * 480, p, b * 1920 + i * 480 + 440)
        for b, s in enumerate(shapes)
        for i, p in enumerate(s)
    ]
    bass = [Note(b * 1920, s[0] - 12, b * 1920 + 1900) for b, s in enumerate(shapes)]
    window.set_document(
        Document(Song(tracks=[Track("Melody", notes=melody), Track("Bass", channel=1, notes=bass)]))
    )
    window.roll.chord_lane.enter_chord(1920, "E7")  # replaced: the estimate covers the song
    window.roll.chord_lane.enter_chord(7680, "D")  # kept: after the song's last note
    window.act_estimate_chords.trigger()
    assert _lane_symbols(window) == [(0, "C"), (1920, "G"), (3840, "Am"), (7680, "D")]
    assert "Estimated 3 chords" in window.statusBar().currentMessage()
    window.act_undo.trigger()
    assert _lane_symbols(window) == [(1920, "E7"), (7680, "D")]
    window.act_redo.trigger()
    window.act_estimate_chords_beat.trigger()  # per beat: chord changes on beats, merged when equal
    per_beat = _lane_symbols(window)
    assert per_beat[:2] == [(0, "C"), (1920, "G")] and per_beat[-1] == (7680, "D")
    assert all(tick % 480 == 0 for tick, _ in per_beat)
    window.act_undo.trigger()
    assert _lane_symbols(window) == [(0, "C"), (1920, "G"), (3840, "Am"), (7680, "D")]


@pytest.mark.slow
def test_the_lane_conditions_continue(window, qtbot, sketch) -> None:
    """Chords on the lane over the continuation pull the take's notes onto chord tones."""
    from musicgen_app.core.chords import parse_progression, spans_from_changes
    from musicgen_app.core.edits import replace_chords
    from musicgen_app.ml.chord_eval import ToneCount, count_chord_tones

    qtbot.waitUntil(lambda: window.panel.model_combo.count() > 0, timeout=10_000)
    window.panel.model_combo.setCurrentIndex(window.panel.model_combo.findData("note-transformer"))
    window.set_document(Document(sketch(2)))
    window.panel.bars.setValue(8)
    window.panel.random_seed.setChecked(False)
    lane = [ChordChange(3840 + i * 1920, c) for i, c in enumerate(parse_progression("C G Am F") * 2)]
    spans = spans_from_changes(lane, 3840 + 8 * 1920)
    shares = {}
    for with_lane in (False, True):
        if with_lane:
            window.doc.apply(replace_chords(window.doc.song, 0, 10**6, lane), "Chords")
        count = ToneCount()
        for seed in (11, 12):
            window.panel.seed.setValue(seed)
            n = len(window.gen.takes)
            window.act_continue.trigger()
            qtbot.waitUntil(lambda n=n: len(window.gen.takes) > n and not window.gen.running, timeout=120_000)
            take = window.gen.current_take()
            assert take is not None and take.notes
            count.add(count_chord_tones(window.doc.song, take.notes, spans))
            window.act_reject.trigger()
        shares[with_lane] = count.share
    assert shares[True] >= shares[False] + 0.15, shares


def test_after_typing_a_chord_the_keys_go_back_to_the_roll(window, qtbot, sketch) -> None:
    """Enter closes the entry and gives the keyboard back to the roll: Ctrl+Z then undoes the chord.
    (Hiding the focused entry used to hand the focus to a track's name field, which took Ctrl+Z
    for its own text: the musician's undo did nothing.)"""
    from PySide6.QtWidgets import QApplication, QLineEdit

    window.set_document(Document(sketch(2)))
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.seek(1000)
    window.act_type_chord.trigger()
    lane = window.roll.chord_lane
    qtbot.keyClicks(lane.entry, "Dm")
    qtbot.keyClick(lane.entry, Qt.Key.Key_Return)
    assert _lane_symbols(window) == [(960, "Dm")]
    focused = QApplication.focusWidget()
    assert focused is window.canvas and not isinstance(focused, QLineEdit), focused
    qtbot.keyClick(focused, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _lane_symbols(window) == []


def _dark_pixels(widget) -> int:
    """Pixels of the widget's rendering dark enough to be the symbols' letters (the boxes and
    their edges are lighter)."""
    image = widget.grab().toImage()
    return sum(
        1
        for y in range(image.height())
        for x in range(0, image.width(), 2)
        if max(image.pixelColor(x, y).getRgb()[:3]) < 80
    )


def test_zoomed_out_the_lane_draws_only_whole_symbols_and_names_each_chord_on_hover(
    window, qtbot, sketch, monkeypatch
) -> None:
    """A long song seen whole: chords a few pixels wide show no clipped letters (the boxes stay);
    hovering one names it. Zoomed in, the symbols are drawn."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication, QToolTip

    song = sketch(2)
    song.chords = [ChordChange(b * 480, parse_chord(("C", "Am7", "F/A", "G7")[b % 4])) for b in range(400)]
    window.set_document(Document(song))
    lane = window.roll.chord_lane
    g = window.roll.geometry_model
    g.show_ticks(0, 400 * 480)  # 400 beats across the lane: a few pixels a chord
    assert _dark_pixels(lane) == 0
    shown: list[str] = []
    monkeypatch.setattr(QToolTip, "showText", lambda pos, text, *a: shown.append(text))
    at = QPoint(round(g.tick_to_x(2 * 480 + 240)), lane.height() // 2)
    QApplication.sendEvent(lane, QHelpEvent(QEvent.Type.ToolTip, at, lane.mapToGlobal(at)))
    assert shown == ["F/A"]
    g.show_ticks(0, 8 * 480)  # two bars: every symbol fits
    assert _dark_pixels(lane) > 50
