"""Editor basics: the loop region shows whether Loop is on, the velocity lane is labelled and reads
out values, notes are shaded by velocity, Ctrl+Y redoes, snap 1/2 and 1 bar, the key lock offers
the modes, the model card speaks to musicians with its details folded, the panel's buttons stay
put, and the window works at 1280x720."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor

from musicgen_app.core.song import Note, Song, TimeSignature, Track
from musicgen_app.gui.document import Document
from musicgen_app.ml.keys import MODES, parse_key
from musicgen_app.ml.sampling import SamplingConfig

L = Qt.MouseButton.LeftButton


def _show(window, notes, *, ticks: int = 4 * 1920, centre: int = 64) -> tuple:
    window.set_document(Document(Song(tracks=[Track(name="Melody", notes=list(notes))])))
    g = window.roll.geometry_model
    g.show_ticks(0, ticks)
    g.key_height = 12
    g.center_pitch(centre)
    window.roll._sync()
    return window.canvas, g


def test_loop_region_shows_on_and_off(window, qtbot) -> None:
    canvas, g = _show(window, [])
    window.set_loop((1920, 3840))
    assert window.act_loop.isChecked() and canvas.loop_enabled
    x, y = round(g.tick_to_x(2880)), round(g.pitch_to_y(80) + 6)
    outside = round(g.tick_to_x(5000))
    on = canvas.grab().toImage()
    window.act_loop.trigger()  # Loop off: the region stays but is no longer lit
    assert not window.act_loop.isChecked() and not canvas.loop_enabled
    off = canvas.grab().toImage()
    assert on.pixelColor(x, y) != off.pixelColor(x, y)
    assert off.pixelColor(x, y) == off.pixelColor(outside, y)  # off: inside looks like outside
    assert on.pixelColor(x, y).blue() > on.pixelColor(x, y).red()  # on: tinted blue
    ruler_on_off = []
    for _ in range(2):
        ruler_on_off.append(window.roll.ruler.grab().toImage().pixelColor(x, 3).name())
        window.act_loop.trigger()
    assert ruler_on_off[0] != ruler_on_off[1]


def test_velocity_lane_label_and_readout(window, qtbot) -> None:
    notes = [Note(0, 60, 400, 40), Note(480, 62, 880, 100), Note(960, 64, 1400, 100)]
    _canvas, g = _show(window, notes)
    lane, label = window.roll.velocity, window.roll.velocity_label
    assert label.text() == "Velocity" and label.isVisible()
    window.doc.set_selection(notes[1:])
    qtbot.waitUntil(lambda: label.text() == "Velocity\n100", timeout=2000)
    window.doc.set_selection(notes)
    qtbot.waitUntil(lambda: label.text() == "Velocity\n40–100", timeout=2000)
    window.doc.set_selection(())
    x = round(g.tick_to_x(0)) + 1
    qtbot.mouseMove(lane, QPoint(x, lane.height() - 5))
    qtbot.waitUntil(lambda: label.text() == "Velocity\n40", timeout=2000)  # under the pointer
    qtbot.mousePress(lane, L, pos=QPoint(x, lane.height() // 2))
    qtbot.mouseMove(lane, QPoint(x, 2))
    qtbot.waitUntil(lambda: label.text().startswith("Velocity\n12"), timeout=2000)  # being dragged
    qtbot.mouseRelease(lane, L, pos=QPoint(x, 2))
    assert window.doc.notes[0].velocity >= 120


def test_notes_are_shaded_by_velocity(window) -> None:
    soft, loud = Note(0, 60, 960, 20), Note(0, 64, 960, 127)
    canvas, g = _show(window, [soft, loud])
    image = canvas.grab().toImage()
    x = round(g.tick_to_x(480))

    def at(pitch: int) -> QColor:
        return image.pixelColor(x, round(g.pitch_to_y(pitch) + 6))

    assert at(60).lightness() > at(64).lightness() + 40  # the soft note is paler
    assert abs(at(60).hslHue() - at(64).hslHue()) <= 8  # in the same colour


def test_ctrl_y_redoes(window, qtbot) -> None:
    canvas, g = _show(window, [])
    window.set_tool("draw")
    qtbot.mouseClick(canvas, L, pos=QPoint(round(g.tick_to_x(480)), round(g.pitch_to_y(64) + 6)))
    assert len(window.doc.notes) == 1
    window.activateWindow()
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.doc.notes == []
    qtbot.keyClick(canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert len(window.doc.notes) == 1
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(
        canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert len(window.doc.notes) == 1


@pytest.mark.parametrize(
    ("meter", "snap", "step"), [((4, 4), "1/2", 960), ((4, 4), "1 bar", 1920), ((3, 4), "1 bar", 1440)]
)
def test_snap_half_and_bar(window, qtbot, meter, snap, step) -> None:
    canvas, g = _show(window, [])
    window.doc.song.time_signatures = [TimeSignature(0, *meter)]
    window.snap_combo.setCurrentText(snap)
    assert window.snap_combo.currentText() == snap and canvas.snap_step() == step
    window.set_tool("draw")
    qtbot.mouseClick(
        canvas, L, pos=QPoint(round(g.tick_to_x(step + step * 0.6)), round(g.pitch_to_y(64) + 6))
    )
    (note,) = window.doc.notes
    assert (note.start_tick, note.duration_ticks) == (step, step)  # on the grid, one step long


def test_key_lock_offers_every_mode(window) -> None:
    combo = window.panel.key_lock
    values = [combo.itemData(i) for i in range(combo.count())]
    for mode in MODES:
        if mode not in ("major", "minor"):
            assert f"D {mode}" in values, mode
    assert {"auto", "off", "C", "Am"} <= set(values)
    window.panel.set_key_lock("D dorian")
    key = parse_key(window.panel.key_lock_value())
    assert (key.tonic_pc, key.mode) == (2, "dorian")
    window.panel.set_key_lock("Am")  # what older settings hold still selects
    assert window.panel.key_lock_value() == "Am" and combo.currentText() == "A minor"
    # free: no lock and no pull toward the key (the tonal prior off) in what a take is drawn with
    window.panel.set_key_lock("free")
    sampling = SamplingConfig(key_lock=window.panel.key_lock_value())
    assert sampling.key_lock is None and sampling.tonal == 0.0
    window.panel.set_key_lock("off")
    off = SamplingConfig(key_lock=window.panel.key_lock_value())
    assert off.key_lock is None and off.tonal > 0


def test_model_card_for_musicians_and_buttons_stay_put(window, qtbot) -> None:
    panel = window.panel
    qtbot.waitUntil(lambda: panel.model_combo.count() >= 2, timeout=20_000)
    seen = set()
    for i in range(panel.model_combo.count()):
        panel.model_combo.setCurrentIndex(i)
        qtbot.wait(10)
        text = panel.card.text()
        assert "Learnt from:" in text and panel.model_name() in text
        assert "Paper:" not in text and not panel.card_details.isVisible()  # details folded
        seen.add(panel.continue_button.mapTo(panel, QPoint(0, 0)).y())
    assert len(seen) == 1  # the Continue button never moved
    panel.details_button.click()
    assert panel.card_details.isVisible() and "Paper:" in panel.card_details.text()
    assert panel.continue_button.mapTo(panel, QPoint(0, 0)).y() in seen  # not even when unfolded
    melody = panel.model_combo.findData("melody-lstm")
    if melody >= 0:
        panel.model_combo.setCurrentIndex(melody)
        assert "in key" in panel.card.text() and "folk" in panel.card.text().lower()


def test_the_window_works_at_1280x720(window, qtbot) -> None:
    window.resize(1280, 720)
    qtbot.wait(50)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 720
    assert window.width() == 1280 and window.height() == 720
    assert window.canvas.width() >= 500 and window.canvas.height() >= 300
    panel = window.panel
    for button in (panel.continue_button, panel.accept_button, panel.reject_button, panel.regen_button):
        corner = button.mapTo(window, QPoint(button.width(), button.height()))
        assert button.isVisible() and corner.x() <= 1280 and corner.y() <= 720, button.text()
    assert window.track_list.isVisible() and window.track_list.add_drums_button.isVisible()
