"""Sound first, then pixels: a Continue's notes go from the generation thread straight to the player
process and out of a real JACK port, on time, even while the UI thread is blocked; the lead-in
before a take is a setting (none, 1 bar, 2 bars), and "First note" counts from the key press."""

from __future__ import annotations

import json
import time

import pytest
from jack_support import Receiver

from musicgen_app.gui.settings import AppSettings

from .test_continue import _shipped_model, prepare_continue
from .test_player_process_gui import _sounding, port_window  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.gui, pytest.mark.slow]

SECONDS_PER_TICK = 0.5 / 480  # the sketches' 120 BPM at 480 ticks per quarter


def _note_ons(messages: list[tuple[float, list[int]]]) -> list[tuple[float, int]]:
    return [(t, d[1]) for t, d in messages if d[0] & 0xF0 == 0x90 and d[2] > 0]


@pytest.mark.jack
def test_notes_reach_the_port_on_time_while_the_ui_thread_is_blocked(
    port_window,  # noqa: F811
    qtbot,
    jack_receiver: Receiver,
    sketch,
) -> None:
    win = port_window
    prepare_continue(win, qtbot, sketch(2), 11, bars=2)
    win.gen.models.get(_shipped_model())  # loaded, so the block below falls inside the take
    win.set_lead_in(0)
    # the take prepared before the key press, as in the app: its first note goes with the play
    # command, every further one from the generation thread (prefill done: no stall to muddle
    # the timing below)
    req = win.takes.request(win.panel.model_name())
    qtbot.waitUntil(lambda: win.gen.prepared_key == win.takes.prepare_key(req), timeout=30_000)
    n0 = len(jack_receiver.messages)
    pressed = time.perf_counter()
    win.act_continue.trigger()
    time.sleep(1.0)  # the UI thread is blocked: no event loop, no queue drained, no timer
    unblocked = time.perf_counter()
    during = [(t, p) for t, p in _note_ons(jack_receiver.messages[n0:]) if t <= unblocked]
    assert win.canvas.take_notes == []  # no pixel yet: the UI thread has not run
    assert during, "nothing sounded while the UI thread was blocked"  # but the take sounds
    qtbot.waitUntil(lambda: not win.gen.running, timeout=60_000)
    qtbot.waitUntil(lambda: not win.playback.playing, timeout=30_000)
    take = win.gen.current_take()
    assert take is not None and take.status == "done"
    notes = sorted(take.notes)
    ons = _note_ons(jack_receiver.messages[n0:])
    assert [p for _, p in ons] == [n.pitch for n in notes]  # lead-in none: the take alone, once each
    # on time: every note-on where its tick says, counted from the first one
    t_first, tick_first = ons[0][0], notes[0].start_tick
    errors_ms = [
        (t - (t_first + (n.start_tick - tick_first) * SECONDS_PER_TICK)) * 1000
        for (t, _), n in zip(ons, notes, strict=True)
    ]
    print(
        f"first note {1000 * (t_first - pressed):.1f} ms after the key press; "
        f"timing error max {max(map(abs, errors_ms)):.2f} ms over {len(notes)} notes"
    )
    assert t_first - pressed < 0.5  # sent from the generation thread, not after the block
    due = [n for n in notes if t_first + (n.start_tick - tick_first) * SECONDS_PER_TICK < unblocked - 0.05]
    assert len(during) >= len(due)  # every note due during the block sounded during it
    assert max(map(abs, errors_ms)) < 20, errors_ms  # a sanity bound; figures: bench_gui.py
    qtbot.waitUntil(lambda: win.takes.last_first_note_ms is not None, timeout=3000)
    assert win.takes.last_first_note_ms is not None and win.takes.last_first_note_ms < 1000
    assert not _sounding(jack_receiver.messages)


def test_lead_in_is_a_remembered_setting(window, qtbot, recording, sketch) -> None:
    win = window
    assert win.settings.lead_in_bars == 1 and win.lead_in_actions[1].isChecked()  # the default
    win.lead_in_actions[2].trigger()  # Continue ▸ Lead-in: 2 Bars
    assert win.settings.lead_in_bars == 2 and AppSettings.load().lead_in_bars == 2
    assert not win.lead_in_actions[1].isChecked()
    with pytest.raises(ValueError, match="lead-in"):
        win.set_lead_in(3)
    AppSettings.path().write_text(json.dumps({"lead_in_bars": 5}))
    assert AppSettings.load().lead_in_bars == 1  # an odd value in the file: the default


@pytest.mark.parametrize(("bars", "first_tick"), [(0, 3840), (1, 1920), (2, 0)])
def test_continue_plays_the_chosen_lead_in_before_the_take(
    window, qtbot, recording, sketch, bars: int, first_tick: int
) -> None:
    win = prepare_continue(window, qtbot, sketch(2), 5, bars=1)
    win.set_lead_in(bars)
    n0 = len(recording.messages)
    win.act_continue.trigger()
    assert win.canvas.take_reveal_tick == first_tick  # the take starts at 3840
    qtbot.waitUntil(lambda: not win.gen.running and not win.playback.playing, timeout=60_000)
    take = win.gen.current_take()
    assert take is not None and take.notes
    ons = [m.note for _, m in recording.messages[n0:] if m.type == "note_on" and m.velocity > 0]
    sketch_ons = [n.pitch for n in sketch(2).tracks[0].notes if n.start_tick >= first_tick]
    assert ons == sketch_ons + [n.pitch for n in sorted(take.notes)]
    assert win.takes.last_first_note_ms is not None


def test_a_take_prepared_before_the_key_press_is_the_take_continue_makes(
    window, qtbot, recording, sketch
) -> None:
    from musicgen_app.ml.generate import SamplingConfig, start_session

    win = prepare_continue(window, qtbot, sketch(2), 77, bars=1)
    win.set_lead_in(0)
    req = win.takes.request(win.panel.model_name())
    qtbot.waitUntil(lambda: win.gen.prepared_key == win.takes.prepare_key(req), timeout=30_000)
    win.act_continue.trigger()
    assert win.gen.prepared_key is None  # handed over to the run
    qtbot.waitUntil(lambda: not win.gen.running and not win.playback.playing, timeout=60_000)
    take = win.gen.current_take()
    assert take is not None and take.status == "done" and take.seed == 77
    # the same notes as a session started at the key press with the same seed
    sampling = SamplingConfig(temperature=req.temperature, key_lock=req.key_lock, seed=77)
    model = win.gen.models.get(req.model)
    session = start_session(model, req.song, req.track, start_tick=req.start_tick, bars=1, sampling=sampling)
    assert take.notes == [e.note for e in session if hasattr(e, "note")]
    ons = [m.note for _, m in recording.messages if m.type == "note_on" and m.velocity > 0]
    assert ons[-len(take.notes) :] == [n.pitch for n in sorted(take.notes)]
    # the next Continue's first take is prepared again
    qtbot.waitUntil(lambda: win.gen.prepared_key is not None, timeout=30_000)
