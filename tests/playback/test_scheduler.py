"""The scheduler against a fake clock and a recording output: order, timing, loop, seek, pause, panic."""

from __future__ import annotations

import time

import pytest

from musicgen_app.core.events import NoteEvent
from musicgen_app.core.song import ControlEvent, Note, Song, Track
from musicgen_app.playback.outputs import RecordingOutput
from musicgen_app.playback.scheduler import OutputFailed, PlaybackError, PlaybackFinished, Scheduler

from .helpers import FakeClock, run_fake, two_track_song


def _fake(fail_after: int | None = None) -> tuple[FakeClock, RecordingOutput, Scheduler]:
    clock = FakeClock()
    out = RecordingOutput(clock=clock, fail_after=fail_after)
    return clock, out, Scheduler(out, clock=clock, threaded=False)


def _notes(out: RecordingOutput) -> list[tuple[float, str, int, int]]:
    return [
        (t, "on" if m.type == "note_on" and m.velocity else "off", m.channel, m.note)
        for t, m in out.messages
        if m.type in ("note_on", "note_off")
    ]


def test_every_note_at_its_deadline_through_the_tempo_map() -> None:
    clock, out, sched = _fake()
    song = two_track_song()
    t0 = clock.t
    sched.play(song)
    run_fake(sched, clock)
    notes = _notes(out)
    ons = [n for n in notes if n[1] == "on"]
    assert len(ons) == song.note_count
    assert sum(1 for n in notes if n[1] == "off") == song.note_count
    tmap = song.tempo_map()
    expected = sorted(
        (t0 + tmap.tick_to_seconds(n.start_tick), n.channel, n.pitch) for tr in song.tracks for n in tr.notes
    )
    got = sorted((t, ch, p) for t, _, ch, p in ons)
    assert [(round(a, 9), b, c) for a, b, c in got] == [(round(a, 9), b, c) for a, b, c in expected]
    # after the tempo change (tick 1920 at 120 BPM = 2.0 s) a quarter lasts 0.25 s
    assert any(abs(t - (t0 + 2.25)) < 1e-9 for t, *_ in ons)
    assert sched.state == "stopped"
    assert isinstance(sched.status.get_nowait(), PlaybackFinished)
    assert not sched.sounding


def test_programs_first_and_note_off_before_note_on_at_equal_times() -> None:
    clock, out, sched = _fake()
    r = 480
    notes = [Note(0, 60, r), Note(r, 60, 2 * r), Note(r, 62, 2 * r)]
    song = Song(tracks=[Track("a", program=5, notes=notes)])
    sched.play(song)
    run_fake(sched, clock)
    first = out.messages[0][1]
    assert first.type == "program_change" and first.program == 5
    kinds = [(m.type, m.note) for _, m in out.messages if m.type.startswith("note")]
    # at tick 480 the old C ends before the new C and D start
    assert kinds[1][0] == "note_off" and kinds[1][1] == 60
    assert {k[0] for k in kinds[2:4]} == {"note_on"}


def test_overlapping_same_key_is_restruck_and_never_left_hanging() -> None:
    clock, out, sched = _fake()
    song = Song(tracks=[Track("a", notes=[Note(0, 60, 960), Note(480, 60, 1440)])])
    sched.play(song)
    run_fake(sched, clock)
    kinds = [m.type for _, m in out.messages if m.type.startswith("note")]
    assert kinds == ["note_on", "note_off", "note_on", "note_off"]
    assert not sched.sounding


def test_stop_sends_note_offs_then_panic_on_channels_in_use() -> None:
    clock, out, sched = _fake()
    song = two_track_song(tempo_change=False)
    song.tracks[0].controls.append(ControlEvent(0, "control_change", 64, 127, 0))  # sustain down
    sched.play(song)
    run_fake(sched, clock, until=clock.t + 0.25)
    assert sched.sounding == {(0, 60), (1, 36)}
    n_before = len(out.messages)
    sched.stop()
    after = [m for _, m in out.messages[n_before:]]
    offs = {(m.channel, m.note) for m in after if m.type == "note_off"}
    assert offs == {(0, 60), (1, 36)}
    ccs = [(m.channel, m.control, m.value) for m in after if m.type == "control_change"]
    for ch in (0, 1):
        assert [c for c in ccs if c[0] == ch] == [(ch, 64, 0), (ch, 123, 0), (ch, 120, 0)]
    assert not sched.sounding
    assert sched.state == "stopped"
    # nothing more is sent after a stop
    clock.t += 10
    assert sched.pump() is None
    assert len(out.messages) == n_before + len(after)


def test_loop_repeats_region_and_silences_at_each_jump() -> None:
    clock, out, sched = _fake()
    song = Song(tracks=[Track("a", notes=[Note(0, 60, 480), Note(480, 62, 1200), Note(1440, 64, 1920)])])
    sched.set_loop(0, 960)  # two quarters: 0.5 s
    t0 = clock.t
    sched.play(song)
    run_fake(sched, clock, until=t0 + 2.6)
    ons = [(round(t - t0, 6), p) for t, k, _, p in _notes(out) if k == "on"]
    assert ons == [(0.0, 60), (0.5, 62), (1.0, 60), (1.5, 62), (2.0, 60), (2.5, 62)]
    # the note crossing the loop end (62 ends at tick 1200) is cut at each jump
    offs62 = [round(t - t0, 6) for t, k, _, p in _notes(out) if k == "off" and p == 62]
    assert offs62 == [1.0, 2.0]
    sched.set_loop(None)
    run_fake(sched, clock)
    assert [p for _, k, _, p in _notes(out) if k == "on"][-2:] == [62, 64]
    assert not sched.sounding


def test_seek_and_pause_resume() -> None:
    clock, out, sched = _fake()
    song = Song(tracks=[Track("a", notes=[Note(i * 480, 60 + i, (i + 1) * 480) for i in range(8)])])
    t0 = clock.t
    sched.play(song)
    run_fake(sched, clock, until=t0 + 1.1)  # inside the third note (62)
    assert sched.sounding == {(0, 62)}
    assert sched.position_tick == 1056
    n = len(out.messages)
    sched.seek(480 * 5)
    assert not sched.sounding
    after = [m for _, m in out.messages[n:]]
    assert [m.type for m in after[:2]] == ["note_off", "control_change"]
    assert any(m.type == "control_change" and m.control == 120 for m in after)
    run_fake(sched, clock, until=clock.t + 0.1)
    assert sched.sounding == {(0, 65)}
    sched.pause()
    assert sched.state == "paused" and not sched.sounding
    paused_at = sched.position_tick
    clock.t += 5.0  # time passes while paused: nothing is sent
    n = len(out.messages)
    assert sched.pump() is None and len(out.messages) == n
    sched.resume()
    run_fake(sched, clock)
    ons = [p for _, k, _, p in _notes(out) if k == "on"]
    assert ons == [60, 61, 62, 65, 66, 67]
    assert paused_at == 480 * 5 + 96
    assert not sched.sounding


def test_output_failure_stops_playback_loudly_and_player_survives() -> None:
    clock, out, sched = _fake(fail_after=4)
    errors: list[PlaybackError] = []
    sched.on_error = errors.append
    sched.play(two_track_song())
    run_fake(sched, clock)
    assert len(out.messages) == 4  # nothing was sent after the failure: playback stopped
    assert len(errors) == 1 and "simulated device failure; playback stopped" in errors[0].message
    assert sched.output.name == "no output" and sched.state == "stopped"
    reports = []
    while not sched.status.empty():
        reports.append(sched.status.get_nowait())
    assert isinstance(reports[0], OutputFailed)
    assert isinstance(reports[-1], PlaybackFinished) and reports[-1].reason == "failed"
    assert len(reports) == 2
    # a new output can be set and works; switching away from a closed output reports nothing
    new = RecordingOutput(clock=clock)
    closed = RecordingOutput(clock=clock)
    sched.set_output(closed)
    closed.close()
    sched.set_output(new)
    sched.play(two_track_song())
    run_fake(sched, clock)
    assert len(new.of_type("note_on")) == two_track_song().note_count
    assert len(errors) == 1


def test_streamed_notes_cancelled_session_and_late_notes() -> None:
    clock, out, sched = _fake()
    song = Song(tracks=[Track("a", program=0)])
    t0 = clock.t
    sched.play(song, start_tick=960, streaming=True, include_song=False)
    sched.append_notes([NoteEvent(7, 0, Note(960, 60, 1200)), NoteEvent(7, 1, Note(1200, 62, 1440))])
    run_fake(sched, clock, until=t0 + 0.3)
    assert sched.state == "playing"  # the stream is open: it waits for more
    # a note that arrives 0.2 s late stalls the stream by that much
    clock.t = t0 + 0.7
    sched.append_notes([NoteEvent(7, 2, Note(1440, 64, 1680))])
    assert sched.late_shift_s == pytest.approx(0.2)
    sched.cancel_session(8)
    sched.append_notes([NoteEvent(8, 0, Note(1680, 70, 1800))])  # cancelled: dropped
    sched.end_stream()
    run_fake(sched, clock)
    ons = [(round(t - t0, 6), p) for t, k, _, p in _notes(out) if k == "on"]
    assert ons == [(0.0, 60), (0.25, 62), (0.7, 64)]
    assert [n.pitch for _, n in sched.played] == [60, 62, 64]
    assert sched.state == "stopped"


def test_threaded_with_real_clock_delivers_everything_in_order() -> None:
    out = RecordingOutput()
    song = Song(tracks=[Track("a", notes=[Note(i * 48, 60 + i % 12, (i + 1) * 48) for i in range(20)])])
    with Scheduler(out, record_timing=True) as sched:
        sched.play(song)
        assert sched.wait(5.0)
        timing = sched.timing
    ons = [m.note for m in out.of_type("note_on")]
    assert ons == [60 + i % 12 for i in range(20)]
    assert len(out.of_type("note_off")) == 20
    assert timing is not None and all(sent >= dl for dl, sent in timing)
    times = [t for t, m in out.messages if m.type == "note_on"]
    assert times == sorted(times)
    assert time.perf_counter() >= times[-1]


def test_device_dying_between_sends_stops_at_once_and_counts_what_was_heard() -> None:
    """An output reporting its device dead (as the JACK watcher does) ends the run without waiting
    for the next send; notes sent after the death are not counted as heard."""
    clock, out, sched = _fake()
    r = 480
    song = Song(tracks=[Track("m", notes=[Note(0, 60, r)])])
    sched.play(song, song.end_tick, streaming=True, include_song=False)
    sched.append_notes([Note(song.end_tick + i * r, 62 + i, song.end_tick + (i + 1) * r) for i in range(8)])
    run_fake(sched, clock, until=clock.t + 2.1)  # 120 BPM: notes 0..4 sent
    assert len(sched.played) == 5
    died = clock.t - 0.6  # the device died before the last note went out
    clock.t += 0.1
    out.fail("the JACK server stopped", when=died)
    sent = len(out.messages)
    assert sched.pump() is None  # no further deadline: the run has ended
    assert len(out.messages) == sent  # no panic into a dead device
    assert out.failure is not None and "the JACK server stopped" in out.failure
    reports = [sched.status.get_nowait() for _ in range(sched.status.qsize())]
    failed = [x for x in reports if isinstance(x, OutputFailed)]
    assert len(failed) == 1 and failed[0].notes_heard == 4 and failed[0].notes_lost == 1
    assert [n.pitch for _, n in sched.played] == [62, 63, 64, 65]
    assert isinstance(reports[-1], PlaybackFinished) and reports[-1].reason == "failed"
    assert sched.output.name == "no output"


def test_a_note_whose_send_failed_is_not_counted_as_played() -> None:
    clock, out, sched = _fake()
    r = 480
    song = Song(tracks=[Track("m", notes=[Note(0, 60, r)])])
    sched.play(song, song.end_tick, streaming=True, include_song=False)
    sent_before = len(out.messages)
    out.fail_after = sent_before + 5  # programs and controls were sent; then 3 notes on, 2 off fit
    sched.append_notes([Note(song.end_tick + i * r, 62 + i, song.end_tick + (i + 1) * r) for i in range(8)])
    run_fake(sched, clock)
    ons = [m.note for m in out.of_type("note_on") if m.velocity]
    assert [n.pitch for _, n in sched.played] == ons == [62, 63, 64]
    failed = [
        x
        for x in (sched.status.get_nowait() for _ in range(sched.status.qsize()))
        if isinstance(x, OutputFailed)
    ]
    assert len(failed) == 1 and failed[0].notes_heard == 3 and failed[0].failed_at is None

