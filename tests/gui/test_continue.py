"""Continue in the real window with the real shipped model: notes stream into the roll and out of
a RecordingOutput while they are generated; Esc stops at once with no hanging note; Enter accepts
the take as one undo step; takes, reject and Again."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from musicgen_app.gui.document import Document

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def _shipped_model() -> str:
    from musicgen_app.ml.registry import list_models

    names = [m.name for m in list_models()]
    if not names:
        pytest.skip("no trained model in models/ (train one with `musicgen train melody-lstm`)")
    return "melody-lstm" if "melody-lstm" in names else names[0]


def prepare_continue(window, qtbot, song, seed: int, bars: int = 2):
    """Choose the shipped model, open ``song``, ask for ``bars`` bars with a fixed seed."""
    model = _shipped_model()
    qtbot.waitUntil(lambda: window.panel.model_combo.count() > 0, timeout=10_000)
    window.panel.model_combo.setCurrentIndex(window.panel.model_combo.findData(model))
    window.set_document(Document(song))
    window.panel.bars.setValue(bars)
    window.panel.random_seed.setChecked(False)
    window.panel.seed.setValue(seed)
    return window


@pytest.fixture
def ready(window, qtbot, sketch):
    return prepare_continue(window, qtbot, sketch(2), 1234)


def _hanging(recording) -> set[tuple[int, int]]:
    """Notes switched on and never off (an all-notes-off on a channel ends them all)."""
    on: Counter = Counter()
    for _, m in recording.messages:
        if m.type == "note_on" and m.velocity > 0:
            on[(m.channel, m.note)] += 1
        elif m.type in ("note_off", "note_on"):
            on[(m.channel, m.note)] = 0
        elif m.type == "control_change" and m.control in (120, 123):
            for key in list(on):
                if key[0] == m.channel:
                    on[key] = 0
    return {k for k, v in on.items() if v > 0}


def test_continue_streams_into_roll_and_output_then_accept(ready, qtbot, recording) -> None:
    win = ready
    sketch_end = win.doc.song.end_tick
    before = list(win.doc.notes)
    win.act_continue.trigger()
    assert win.playback.playing
    qtbot.waitUntil(lambda: len(win.canvas.take_notes) > 0, timeout=60_000)
    qtbot.waitUntil(lambda: win.takes.last_first_note_ms is not None, timeout=5_000)
    assert win._ttfn_label.text() == f"First note: {win.takes.last_first_note_ms:.0f} ms"
    qtbot.waitUntil(lambda: not win.gen.running, timeout=120_000)
    take = win.gen.current_take()
    assert take is not None and take.status == "done" and take.seed == 1234
    assert take.notes and all(n.start_tick >= sketch_end for n in take.notes)
    assert win.canvas.take_notes == take.notes
    # The notes of the take sound on the output as they are scheduled.
    played = win.playback.scheduler.played
    qtbot.waitUntil(lambda: len(played) == len(take.notes), timeout=30_000)
    assert sorted(n for _, n in played) == sorted(take.notes)
    sounded = Counter(m.note for m in recording.of_type("note_on") if m.velocity > 0)
    assert all(sounded[n.pitch] > 0 for n in take.notes)
    assert win.doc.notes == before  # nothing enters the sketch before Accept
    n_undo = win.doc.undo_stack.count()
    win.act_accept.trigger()
    assert sorted(win.doc.notes) == sorted(before + take.notes)
    assert win.doc.undo_stack.count() == n_undo + 1
    assert win.canvas.take_notes == []
    assert win.doc.state["accepted_takes"][-1]["seed"] == 1234
    with qtbot.waitSignal(win.autosaved, timeout=10_000):  # a big change is autosaved soon
        pass
    (entry,) = win.files.store.list_recoverable()
    assert sorted(win.files.store.load(entry.doc_id).song.tracks[0].notes) == sorted(before + take.notes)
    win.act_undo.trigger()
    assert win.doc.notes == before


def test_escape_cancels_and_silences_within_50ms(ready, qtbot, recording) -> None:
    win = ready
    win.panel.bars.setValue(16)
    win.act_continue.trigger()
    qtbot.waitUntil(lambda: len(win.canvas.take_notes) > 0, timeout=60_000)
    t0 = time.perf_counter()
    win.act_stop.trigger()
    elapsed = time.perf_counter() - t0
    assert not win.gen.running and not win.playback.playing
    assert _hanging(recording) == set()
    assert win.playback.scheduler.sounding == set()
    n_msgs = len(recording.messages)
    n_take = len(win.gen.takes[0].notes) if win.gen.takes else 0
    qtbot.wait(300)  # later events of the cancelled session are dropped
    assert not [m for _, m in recording.messages[n_msgs:] if m.type == "note_on" and m.velocity > 0]
    assert (len(win.gen.takes[0].notes) if win.gen.takes else 0) == n_take
    print(f"Esc handled in {elapsed * 1000:.1f} ms")


def test_variations_reject_and_regenerate(ready, qtbot) -> None:
    win = ready
    win.panel.variations.setValue(2)
    win.act_continue.trigger()
    qtbot.waitUntil(lambda: len(win.gen.takes) == 2 and not win.gen.running, timeout=120_000)
    assert win.panel.takes.count() == 2
    seeds = [t.seed for t in win.gen.takes]
    assert seeds == [1234, 1235]
    win.panel.takes.setCurrentRow(1)
    assert win.gen.current == 1
    assert win.canvas.take_notes == win.gen.takes[1].notes
    win.act_reject.trigger()
    assert len(win.gen.takes) == 1 and win.panel.takes.count() == 1
    win.panel.random_seed.setChecked(True)
    win.panel.variations.setValue(1)
    win.act_regen.trigger()  # Again adds a take (a random seed now) to the one kept
    qtbot.waitUntil(lambda: len(win.gen.takes) == 2 and not win.gen.running, timeout=120_000)
    assert win.gen.takes[0].seed == 1234 and win.gen.takes[1].seed != 1234


def test_temperature_changes_the_running_session(ready, qtbot) -> None:
    win = ready
    win.panel.bars.setValue(8)
    win.act_continue.trigger()
    qtbot.waitUntil(
        lambda: win.gen._state is not None and win.gen._state._session is not None, timeout=60_000
    )
    win.panel.temperature.setValue(37)
    state = win.gen._state
    if state is not None and state._session is not None:
        assert state._session.temperature == pytest.approx(0.37)
    win.act_stop.trigger()


def test_continue_with_a_checkpoint_loaded_from_a_file(ready, qtbot) -> None:
    from musicgen_app.ml.registry import list_models

    info = next(m for m in list_models() if m.name == ready.panel.model_name())
    ready.add_checkpoint(info.path)  # what "Load checkpoint…" does with the chosen file
    qtbot.waitUntil(lambda: ready.panel.model_name() == str(info.path), timeout=10_000)
    assert info.seed_paper in ready.panel.card_details.text()
    assert "(file)" in ready.panel.model_combo.currentText()
    ready.act_continue.trigger()
    qtbot.waitUntil(lambda: not ready.gen.running and bool(ready.gen.takes), timeout=60_000)
    assert ready.gen.takes[0].notes and ready.gen.takes[0].model == str(info.path)


def test_a_file_that_is_not_a_checkpoint_is_a_message(ready, qtbot, tmp_path) -> None:
    bogus = tmp_path / "notes.json"
    bogus.write_text("{}")
    ready.add_checkpoint(bogus)
    qtbot.waitUntil(lambda: "Cannot use notes.json" in ready.statusBar().currentMessage(), timeout=10_000)
    assert ready.panel.model_name() != str(bogus)


def test_a_new_run_cancels_the_old_one(ready, qtbot) -> None:
    win = ready
    win.panel.bars.setValue(16)
    win.act_continue.trigger()
    qtbot.waitUntil(lambda: len(win.canvas.take_notes) > 0, timeout=60_000)
    first_sessions = [t.session_id for t in win.gen.takes]
    assert first_sessions
    win.panel.bars.setValue(2)
    win.act_continue.trigger()  # a second Continue while the first still streams
    qtbot.waitUntil(lambda: not win.gen.running and bool(win.gen.takes), timeout=60_000)
    (take,) = win.gen.takes
    assert take.session_id not in first_sessions
    assert win.canvas.take_notes == take.notes
    end = take.start_tick + 2 * 1920
    assert all(n.start_tick < end for n in take.notes)  # nothing of the 16-bar run is left
    played_sessions = {sid for sid, _ in win.playback.scheduler.played}
    assert not played_sessions & set(first_sessions)


def test_the_voices_choice_reaches_the_model(ready, qtbot) -> None:
    """As sketched (the default) a piano roll continues the single-line sketch as a line; the
    choice travels with the request."""
    from musicgen_app.ml.judge import max_simultaneous

    win = ready
    win.panel.model_combo.setCurrentIndex(win.panel.model_combo.findData("pianoroll-lstm"))
    assert win.panel.voices_value() == "sketch"
    win.act_continue.trigger()
    qtbot.waitUntil(lambda: len(win.gen.takes) == 1 and not win.gen.running, timeout=120_000)
    assert win.gen.request.voices == "sketch"
    assert win.gen.takes[0].notes and max_simultaneous(win.gen.takes[0].notes) == 1
    win.panel.voices.setCurrentIndex(win.panel.voices.findData("harmony"))
    win.act_regen.trigger()
    qtbot.waitUntil(lambda: len(win.gen.takes) == 2 and not win.gen.running, timeout=120_000)
    assert win.gen.request.voices == "harmony"
