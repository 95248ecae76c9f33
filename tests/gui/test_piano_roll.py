"""Driving the real piano roll with mouse and key events: draw, select, move, resize, erase,
velocity, loop, zoom; every gesture is one undo step."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from musicgen_app.core.song import Note
from musicgen_app.gui.document import Document

L = Qt.MouseButton.LeftButton


def _prepare(window, notes=()) -> tuple:
    from musicgen_app.core.song import Song, Track

    window.set_document(Document(Song(tracks=[Track(name="Melody", notes=list(notes))])))
    roll = window.roll
    g = roll.geometry_model
    g.show_ticks(0, 4 * 1920)  # four bars across the canvas
    g.key_height = 12
    g.center_pitch(64)
    roll._sync()
    window.set_tool("select")
    window.snap_combo.setCurrentText("1/16")
    return roll.canvas, g


def at(g, tick: float, pitch: int, dy: float = 0.5) -> QPoint:
    return QPoint(round(g.tick_to_x(tick)), round(g.pitch_to_y(pitch) + g.key_height * dy))


def drag(qtbot, widget, a: QPoint, b: QPoint, mods=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.mousePress(widget, L, mods, a)
    steps = 4
    for k in range(1, steps + 1):
        qtbot.mouseMove(widget, a + (b - a) * k / steps)
    qtbot.mouseRelease(widget, L, mods, b)


def test_draw_a_note_by_dragging_then_undo_redo(window, qtbot) -> None:
    canvas, g = _prepare(window)
    window.set_tool("draw")
    drag(qtbot, canvas, at(g, 480 + 10, 64), at(g, 960 + 40, 64))
    doc = window.doc
    assert doc.notes == [Note(480, 64, 960, 100)]  # start snapped down, end to the nearest 1/16
    assert window.isWindowModified()
    assert doc.undo_stack.count() == 1
    window.act_undo.trigger()
    assert doc.notes == []
    window.act_redo.trigger()
    assert doc.notes == [Note(480, 64, 960, 100)]


def test_drag_moves_the_selection_in_time_and_pitch_as_one_step(window, qtbot) -> None:
    a, b = Note(0, 60, 480, 90), Note(480, 64, 960, 90)
    canvas, g = _prepare(window, [a, b])
    window.select_all()
    drag(qtbot, canvas, at(g, 700, 64), at(g, 700 + 960, 67))
    doc = window.doc
    assert doc.notes == [a.moved(960, 3), b.moved(960, 3)]
    assert doc.selection == {a.moved(960, 3), b.moved(960, 3)}
    assert doc.undo_stack.count() == 1
    window.act_undo.trigger()
    assert doc.notes == [a, b]


def test_drag_the_right_edge_resizes(window, qtbot) -> None:
    n = Note(960, 62, 1920, 90)
    canvas, g = _prepare(window, [n])
    edge = at(g, n.end_tick, 62) - QPoint(2, 0)
    drag(qtbot, canvas, edge, edge + QPoint(round(480 * g.px_per_tick), 0))
    assert window.doc.notes == [Note(960, 62, 2400, 90)]
    left = at(g, 960, 62) + QPoint(2, 0)
    drag(qtbot, canvas, left, left + QPoint(round(240 * g.px_per_tick), 0))
    assert window.doc.notes == [Note(1200, 62, 2400, 90)]
    assert window.doc.undo_stack.count() == 2


def test_click_rubber_band_and_shift_click_select(window, qtbot) -> None:
    notes = [Note(i * 480, 60 + i, i * 480 + 400, 90) for i in range(6)]
    canvas, g = _prepare(window, notes)
    doc = window.doc
    qtbot.mouseClick(canvas, L, pos=at(g, 100, 60))
    assert doc.selection == {notes[0]}
    qtbot.mouseClick(canvas, L, Qt.KeyboardModifier.ShiftModifier, at(g, 1500, 63))
    assert doc.selection == {notes[0], notes[3]}
    # A rubber band from empty space over notes 1..2 replaces the selection.
    drag(qtbot, canvas, at(g, 440, 70), at(g, 1300, 59))  # clear of note 0 (ends at 400) by a pixel or more
    assert doc.selection == {notes[1], notes[2]}
    qtbot.mouseClick(canvas, L, pos=at(g, 100, 75))  # empty space clears
    assert doc.selection == set()
    assert doc.undo_stack.count() == 0  # selecting is not an edit


def test_arrow_keys_move_and_shift_arrow_moves_an_octave(window, qtbot) -> None:
    n = Note(480, 60, 960, 90)
    canvas, _g = _prepare(window, [n])
    window.select_all()
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    qtbot.keyClick(canvas, Qt.Key.Key_Up)
    qtbot.keyClick(canvas, Qt.Key.Key_Up, Qt.KeyboardModifier.ShiftModifier)
    assert window.doc.notes == [n.moved(120, 13)]
    assert window.doc.undo_stack.count() == 3


def test_erase_drag_deletes_in_one_step_and_delete_key(window, qtbot) -> None:
    notes = [Note(0, 64, 400, 90), Note(480, 64, 880, 90), Note(960, 64, 1400, 90), Note(0, 70, 400, 90)]
    canvas, g = _prepare(window, notes)
    window.set_tool("erase")
    drag(qtbot, canvas, at(g, 100, 64), at(g, 1100, 64))
    assert window.doc.notes == [notes[3]]
    assert window.doc.undo_stack.count() == 1
    window.doc.set_selection(window.doc.notes)
    window.act_delete.trigger()
    assert window.doc.notes == []
    window.act_undo.trigger()
    window.act_undo.trigger()
    assert sorted(window.doc.notes) == sorted(notes)


def test_copy_paste_duplicate_quantize_transpose(window, qtbot) -> None:
    a, b = Note(10, 60, 470, 90), Note(500, 62, 950, 90)
    _canvas, _g = _prepare(window, [a, b])
    doc = window.doc
    doc.set_selection([a, b])
    window.act_quantize.trigger()
    assert doc.notes == [Note(0, 60, 480, 90), Note(480, 62, 960, 90)]
    window.act_up.trigger()
    assert [n.pitch for n in doc.notes] == [61, 63]
    window.act_oct_down.trigger()
    assert [n.pitch for n in doc.notes] == [49, 51]
    window.act_duplicate.trigger()
    assert [n.start_tick for n in doc.notes] == [0, 480, 960, 1440]
    window.act_copy.trigger()
    window.seek(3840)
    window.act_paste.trigger()
    assert [n.start_tick for n in doc.notes][-2:] == [3840, 4320]
    assert doc.undo_stack.count() == 5
    for _ in range(5):
        window.act_undo.trigger()
    assert doc.notes == [a, b]


def test_velocity_lane_drag_sets_velocity(window, qtbot) -> None:
    n = Note(960, 64, 1440, 100)
    _canvas, g = _prepare(window, [n])
    lane = window.roll.velocity
    x = round(g.tick_to_x(960)) + 1
    drag(qtbot, lane, QPoint(x, lane.height() - 5), QPoint(x, lane.height() // 2))
    (changed,) = window.doc.notes
    assert 55 <= changed.velocity <= 72
    assert window.doc.undo_stack.count() == 1


def test_ruler_drag_sets_loop_and_click_seeks(window, qtbot) -> None:
    canvas, g = _prepare(window)
    ruler = window.roll.ruler
    drag(qtbot, ruler, QPoint(round(g.tick_to_x(1920)), 10), QPoint(round(g.tick_to_x(3840)), 10))
    assert window.doc.song.loop == (1920, 3840)
    assert window.act_loop.isChecked()
    qtbot.mouseClick(ruler, L, pos=QPoint(round(g.tick_to_x(960)), 10))
    assert canvas.playhead_tick == pytest.approx(960, abs=1 / g.px_per_tick)
    window.act_undo.trigger()
    assert window.doc.song.loop is None


def test_ctrl_wheel_zooms_and_wheel_scrolls(window, qtbot) -> None:
    canvas, g = _prepare(window)
    before = g.px_per_tick
    pos = QPointF(300, 200)

    def wheel(mods, dy=120):
        ev = QWheelEvent(
            pos,
            canvas.mapToGlobal(pos),
            QPoint(),
            QPoint(0, dy),
            Qt.MouseButton.NoButton,
            mods,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(canvas, ev)

    tick_under = g.x_to_tick(300)
    wheel(Qt.KeyboardModifier.ControlModifier)
    assert g.px_per_tick > before
    assert g.x_to_tick(300) == pytest.approx(tick_under)
    y0 = g.scroll_y
    wheel(Qt.KeyboardModifier.NoModifier, -120)
    assert g.scroll_y > y0


def test_tempo_and_meter_edits_are_undoable(window, qtbot) -> None:
    _prepare(window)
    window.tempo_spin.setValue(90)
    assert window.doc.song.tempos[0].bpm == pytest.approx(90, abs=0.01)
    window.meter_num.setValue(3)
    assert window.doc.song.ticks_per_bar() == 1440
    window.act_undo.trigger()
    window.act_undo.trigger()
    assert window.doc.song.tempos[0].bpm == pytest.approx(120)
    assert window.tempo_spin.value() == 120
    assert window.doc.song.ticks_per_bar() == 1920


def test_keyboard_click_sounds_the_key(window, qtbot, recording) -> None:
    _, g = _prepare(window)
    kb = window.roll.keyboard
    qtbot.mouseClick(kb, L, pos=QPoint(50, round(g.pitch_to_y(60) + g.key_height / 2)))
    ons = [m for _, m in recording.messages if m.type == "note_on" and m.velocity > 0]
    assert [m.note for m in ons] == [60]
    qtbot.waitUntil(
        lambda: any(m.type == "note_off" and m.note == 60 for _, m in recording.messages), timeout=2000
    )


def test_edits_go_to_the_active_track_and_others_are_faded(window, qtbot) -> None:
    from musicgen_app.core.song import Song, Track

    other = Note(0, 64, 960, 90)
    window.set_document(Document(Song(tracks=[Track(name="A", notes=[other]), Track(name="B", channel=1)])))
    g = window.roll.geometry_model
    g.show_ticks(0, 4 * 1920)
    g.key_height = 12
    g.center_pitch(64)
    window.roll._sync()
    window.track_combo.setCurrentIndex(1)
    assert window.doc.active_track == 1
    canvas = window.canvas
    assert canvas.note_at(at(g, 480, 64)) is None  # track A's note is not editable from B
    window.set_tool("draw")
    drag(qtbot, canvas, at(g, 480, 64), at(g, 960, 64))
    assert window.doc.song.tracks[0].notes == [other]
    assert window.doc.song.tracks[1].notes == [Note(480, 64, 960, 100, 1)]  # on track B's channel
    image = canvas.grab().toImage()
    faded = image.pixelColor(at(g, 240, 64))
    assert faded.name() not in ("#4285d6", "#f09628")  # drawn, but not in the active colours
    assert faded.name() != image.pixelColor(at(g, 240, 71)).name()  # and not background
    window.act_add_track.trigger()
    assert len(window.doc.song.tracks) == 3 and window.doc.active_track == 2
    window.act_undo.trigger()
    assert len(window.doc.song.tracks) == 2
