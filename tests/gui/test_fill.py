"""Fill in the real window with the real shipped model: the loop region of a song is regenerated,
streamed into the roll and the output over the song without its old notes there, accepted as one
undo step that replaces (not overlays) the range; Again adds a take of the same fill."""

from __future__ import annotations

import pytest

from musicgen_app.core.song import Note, Song, Track
from musicgen_app.gui.document import Document
from musicgen_app.gui.fill_action import selected_range

pytestmark = [pytest.mark.gui, pytest.mark.slow]
BAR = 4 * 480


def four_bars() -> Song:
    pitches = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64, 62, 60]
    notes = [Note(i * 480, p, i * 480 + 440, 90) for i, p in enumerate(pitches)]
    return Song(tracks=[Track(name="Melody", notes=notes)])


@pytest.fixture
def ready(window, qtbot):
    qtbot.waitUntil(lambda: window.panel.model_combo.count() > 0, timeout=30_000)
    window.panel.model_combo.setCurrentIndex(window.panel.model_combo.findData("melody-lstm"))
    window.set_document(Document(four_bars()))
    window.panel.random_seed.setChecked(False)
    window.panel.seed.setValue(21)
    window.doc.set_song_attr("loop", (BAR, 3 * BAR), "Loop")
    return window


def test_fill_replaces_the_loop_region_in_one_undo_step(ready, qtbot) -> None:
    win = ready
    before = sorted(win.doc.notes)
    assert selected_range(win) == (BAR, 3 * BAR)
    win.act_fill.trigger()
    assert win.playback.playing
    qtbot.waitUntil(lambda: not win.gen.running, timeout=60_000)
    take = win.gen.current_take()
    assert take is not None and take.status == "done" and take.notes
    assert all(n.start_tick >= BAR and n.end_tick <= 3 * BAR for n in take.notes)
    assert win.canvas.take_notes == take.notes
    # what is heard: the take, and none of the range's old notes under it
    played = win.playback.scheduler.played
    qtbot.waitUntil(lambda: len(played) >= len(take.notes), timeout=30_000)
    heard = [n for _, n in played]
    assert all(n in heard for n in take.notes)
    assert not [n for n in heard if n in before and BAR <= n.start_tick < 3 * BAR]
    assert sorted(win.doc.notes) == before  # nothing changes before Accept
    n_undo = win.doc.undo_stack.count()
    win.act_accept.trigger()
    assert win.doc.undo_stack.count() == n_undo + 1
    outside = [n for n in before if not BAR <= n.start_tick < 3 * BAR]
    assert sorted(win.doc.notes) == sorted(outside + take.notes)
    win.act_undo.trigger()
    assert sorted(win.doc.notes) == before


def test_again_adds_a_take_of_the_same_fill(ready, qtbot) -> None:
    win = ready
    win.act_fill.trigger()
    qtbot.waitUntil(lambda: not win.gen.running and len(win.gen.takes) == 1, timeout=60_000)
    win.doc.set_song_attr("loop", None, "Loop off")  # Again keeps the range of the fill
    win.act_regen.trigger()
    qtbot.waitUntil(lambda: not win.gen.running and len(win.gen.takes) == 2, timeout=60_000)
    first, second = win.gen.takes
    assert second.seed != first.seed and second.notes != first.notes
    assert all(n.start_tick >= BAR and n.end_tick <= 3 * BAR for n in second.notes)


def test_fill_without_a_range_says_what_to_select(ready, qtbot, monkeypatch) -> None:
    win = ready
    win.doc.set_song_attr("loop", None, "Loop off")
    shown: list[str] = []
    monkeypatch.setattr(win, "show_error", lambda title, text: shown.append(text))
    win.act_fill.trigger()
    assert shown and "Select a time range" in shown[0]
    assert not win.gen.running


def test_fill_with_a_model_that_cannot_fill_uses_the_fill_model_and_says_so(ready, qtbot) -> None:
    """The window's default model (note-transformer) continues but cannot fill a range: Fill then
    fills with melody-lstm (the status bar says so) instead of failing."""
    win = ready
    win.panel.model_combo.setCurrentIndex(win.panel.model_combo.findData("note-transformer"))
    assert win.panel.model_name() == "note-transformer"
    win.act_fill.trigger()
    assert "Fill uses melody-lstm: note-transformer cannot fill a range" in win.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not win.gen.running, timeout=60_000)
    take = win.gen.current_take()
    assert take is not None and take.status == "done" and take.notes
    assert win.gen.request.model == "melody-lstm"
    assert win.panel.model_name() == "note-transformer"  # the musician's choice for Continue stays
    assert all(n.start_tick >= BAR and n.end_tick <= 3 * BAR for n in take.notes)
    win.act_regen.trigger()  # Again: the same fill, the same model
    qtbot.waitUntil(lambda: not win.gen.running and len(win.gen.takes) == 2, timeout=60_000)
    assert win.gen.request.model == "melody-lstm" and win.gen.takes[1].status == "done"
