"""Call and response on real JACK ports with the real shipped model: a phrase played into the
keyboard port gets an answer, streamed to the output port on time; a note played during an answer
stops it at once with nothing left sounding; both parts are recorded."""

from __future__ import annotations

import threading
import time

import pytest

from musicgen_app.ml.generate import SamplingConfig, start_session
from musicgen_app.ml.registry import load_model
from musicgen_app.playback.jam import Jam, JamConfig, percentile, timing_errors_ms
from musicgen_app.playback.player_process import PlayerProcess

from .helpers import wait_until

pytestmark = [pytest.mark.jack, pytest.mark.slow]


def _keyboard():
    import rtmidi

    kb = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "keyboard")
    kb.open_virtual_port("out")
    return kb


def _play(kb, pitches, seconds: float = 0.12) -> None:
    for p in pitches:  # on channel 2, so the keyboard's notes are told apart from the answers
        kb.send_message([0x91, p, 100])
        time.sleep(seconds)
        kb.send_message([0x81, p, 0])


def _sounding_on(jack_receiver, channel: int) -> set[int]:
    """Pitches of ``channel`` still sounding after every message the port received."""
    sounding: dict[tuple[int, int], int] = {}
    for _, data in jack_receiver.messages:
        status, ch = data[0] & 0xF0, data[0] & 15
        if status == 0x90 and data[2] > 0:
            sounding[(ch, data[1])] = sounding.get((ch, data[1]), 0) + 1
        elif status in (0x80, 0x90):
            sounding[(ch, data[1])] = 0
        elif status == 0xB0 and data[1] in (120, 123):
            sounding = {k: v for k, v in sounding.items() if k[0] != ch}
    return {k[1] for k, v in sounding.items() if v and k[0] == channel}


def _interrupt_the_second_answer(jam, kb, jack_receiver, phrase: list[int], answered: int) -> float:
    """Play ``phrase``; once its answer sounds at the port (more than ``answered`` answer notes),
    a key: returns when it was pressed."""
    _play(kb, phrase)
    assert wait_until(lambda: len(jam.exchanges) == 2, 5.0)
    assert wait_until(
        lambda: len([e for e in jack_receiver.note_events() if e[1] == "on" and e[2] == 0]) > answered, 5.0
    )
    t_interrupt = time.perf_counter()
    kb.send_message([0x91, 48, 100])
    return t_interrupt


def test_a_phrase_gets_an_answer_on_time_and_a_note_interrupts_it(jack_receiver) -> None:
    model = load_model("melody-lstm")
    seeds = iter(range(7, 1000))

    def make_session(song, start_tick, bars):
        sampling = SamplingConfig(seed=next(seeds))
        return start_session(model, song, 0, start_tick=start_tick, bars=bars, sampling=sampling)

    kb = _keyboard()
    player = PlayerProcess(jack_receiver.port, midi_api="jack", record_timing=True)
    stop = threading.Event()
    try:
        player.wait_ready()
        player.open_input("keyboard", midi_api="jack", thru=True)
        time.sleep(0.3)
        jam = Jam(player, make_session, JamConfig(bars=1, silence_ms=300, bpm=180))
        jam.warm_up()
        runner = threading.Thread(target=jam.run, args=(stop,), kwargs={"max_exchanges": 2}, daemon=True)
        runner.start()
        # 1. a phrase, a pause: the answer streams in full (one bar at 180 BPM: 1.33 s)
        _play(kb, [60, 62, 64, 65, 67, 65, 64, 62])
        assert wait_until(lambda: len(jam.exchanges) == 1 and jam._current is None, 10.0)
        first = jam.exchanges[0]
        assert not first.interrupted and first.answer
        assert len(first.phrase) == 8 and all(n.channel == 1 for n in first.phrase)
        answered = [e for e in jack_receiver.note_events() if e[1] == "on" and e[2] == 0]
        assert [p for *_, p in answered] == [n.pitch for n in first.answer]
        errors = timing_errors_ms([first])
        deadline, sent = first.timing[0]
        assert (sent - deadline) * 1000 <= 10.0  # the answer's first event on time
        # the first note arrives at the output port when the jam's timeline says it is due
        due = jam.t0 + first.answer[0].start_tick / jam.ticks_per_second
        first_ms = (answered[0][0] - due) * 1000
        assert -2.0 <= first_ms <= 10.0, first_ms
        # 2. another phrase; a note during its answer stops it at once
        t_interrupt = _interrupt_the_second_answer(jam, kb, jack_receiver, [67, 69, 71, 72], len(answered))
        runner.join(timeout=10.0)
        assert not runner.is_alive()
        kb.send_message([0x81, 48, 0])
        second = jam.exchanges[1]
        assert second.interrupted and second.stopped_at is not None
        stop_ms = (second.stopped_at - second.interrupted_at) * 1000
        time.sleep(0.3)
        events = jack_receiver.note_events()
        late = [e for e in events if e[1] == "on" and e[2] == 0 and e[0] > t_interrupt + 0.05]
        assert not late, late  # no answer note after the interruption (a model step is < 50 ms)
        assert not _sounding_on(jack_receiver, 0)  # nothing left sounding
        song = jam.recorded()
        assert [t.name for t in song.tracks] == ["Player", "Model"]
        assert len(song.tracks[0].notes) == 12 + 1 and len(song.tracks[1].notes) >= len(first.answer)
        print(
            f"\njam: answer timing error p50 {percentile(errors, 50):.3f} ms, "
            f"p99 {percentile(errors, 99):.3f} ms "
            f"over {len(errors)} events; first note at the port {first_ms:.2f} ms after it was due; "
            f"interrupted answer stopped {stop_ms:.1f} ms after the note"
        )
        assert percentile(errors, 99) <= 1.0
    finally:
        stop.set()
        player.close()
        kb.close_port()
        kb.delete()


def test_with_the_metronome_answers_start_on_a_bar_line_and_the_clicks_go_on(jack_receiver) -> None:
    """`--metronome` (the window's M): a click every beat for the whole jam, an accent on each
    downbeat; a phrase played to it gets its answer at the next bar line, on time at the port; a
    note during an answer stops it at once while the clicks keep the time."""
    from musicgen_app.playback.metronome import CLICK_HIGH

    model = load_model("melody-lstm")
    seeds = iter(range(11, 1000))

    def make_session(song, start_tick, bars):
        return start_session(
            model, song, 0, start_tick=start_tick, bars=bars, sampling=SamplingConfig(seed=next(seeds))
        )

    kb = _keyboard()
    player = PlayerProcess(jack_receiver.port, midi_api="jack")
    stop = threading.Event()
    cfg = JamConfig(bars=1, silence_ms=600, bpm=180, metronome=True, beats_per_bar=4)
    try:
        player.wait_ready()
        player.open_input("keyboard", midi_api="jack", thru=True)
        time.sleep(0.3)
        jam = Jam(player, make_session, cfg)
        jam.warm_up()
        runner = threading.Thread(target=jam.run, args=(stop,), daemon=True)
        runner.start()

        def clicks() -> list[tuple[float, int]]:
            return [(t, p) for t, kind, ch, p in jack_receiver.note_events() if kind == "on" and ch == 9]

        assert wait_until(lambda: len(clicks()) >= 3, 5.0)  # the click starts before any note
        _play(kb, [60, 62, 64, 65, 67])
        assert wait_until(lambda: len(jam.exchanges) == 1 and jam._current is None, 10.0)
        first = jam.exchanges[0]
        assert not first.interrupted and first.answer
        assert first.answer_start_tick % jam.bar_ticks == 0  # on a bar line
        assert first.answer_start_tick <= first.answer[0].start_tick < first.answer_start_tick + jam.bar_ticks
        answered = [e for e in jack_receiver.note_events() if e[1] == "on" and e[2] == 0]
        assert [p for *_, p in answered] == [n.pitch for n in first.answer]
        due = jam.time_at(first.answer[0].start_tick)
        first_ms = (answered[0][0] - due) * 1000
        assert -2.0 <= first_ms <= 10.0, first_ms
        # the clicks: one a beat from the jam's tick 0, the downbeats accented
        beat = 60.0 / cfg.bpm
        heard = clicks()
        errors = [abs(t - (jam.t0 + round((t - jam.t0) / beat) * beat)) * 1000 for t, _ in heard]
        assert max(errors) <= 10.0 and percentile(errors, 99) <= 10.0, errors
        downbeats = [round((t - jam.t0) / beat) % cfg.beats_per_bar == 0 for t, _ in heard]
        assert downbeats == [p == CLICK_HIGH for _, p in heard]
        # a note during the second answer stops it; the clicks go on
        t_interrupt = _interrupt_the_second_answer(jam, kb, jack_receiver, [67, 65, 64], len(answered))
        assert wait_until(lambda: jam.exchanges[1] is not jam._current, 5.0)
        kb.send_message([0x81, 48, 0])
        second = jam.exchanges[1]
        assert second.interrupted and second.answer
        assert all(n.start_tick < jam.tick_at(second.interrupted_at) for n in second.answer)
        # the receiver reports what reached the port a moment later: nothing of the answer is left
        # sounding, no answer note came after the interruption, and the clicks go on
        assert wait_until(lambda: not _sounding_on(jack_receiver, 0), 2.0), _sounding_on(jack_receiver, 0)
        events = jack_receiver.note_events()
        assert not [e for e in events if e[1] == "on" and e[2] == 0 and e[0] > t_interrupt + 0.05]
        assert wait_until(lambda: max(t for t, _ in clicks()) > t_interrupt + 0.5, 3.0)
        stop.set()
        runner.join(timeout=10.0)
        assert not runner.is_alive()
        print(
            f"\njam with the metronome: first answer note {first_ms:.2f} ms after its bar line's due time; "
            f"clicks within {max(errors):.2f} ms of the beat over {len(heard)} clicks"
        )
    finally:
        stop.set()
        player.close()
        kb.close_port()
        kb.delete()


def _musicgen() -> list[str]:
    """This tree's `musicgen` (the module, so the command is the code under test)."""
    import sys

    return [sys.executable, "-m", "musicgen_app"]


def test_musicgen_jam_answers_a_phrase_and_records_both_parts(jack_receiver, tmp_path) -> None:
    import os
    import subprocess

    from musicgen_app.core.midi_io import read_midi

    out = tmp_path / "jam.mid"
    kb = _keyboard()
    cmd = [*_musicgen(), "jam", "--input", "keyboard", "--output", jack_receiver.port, "--midi-api", "jack",
           "--bars", "1", "--tempo", "180", "--silence-ms", "300", "--seed", "3", "--exchanges", "1",
           "-o", str(out)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on keyboard"), (line, proc.stderr.read() if proc.stderr else "")
        _play(kb, [60, 64, 67, 72, 67, 64])
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        kb.close_port()
        kb.delete()
    assert proc.returncode == 0, stderr
    assert "answered with" in stdout and f"wrote {out}" in stdout
    song = read_midi(out).song
    assert [t.name for t in song.tracks] == ["Player", "Model"]
    assert [n.pitch for n in song.tracks[0].notes] == [60, 64, 67, 72, 67, 64]
    answered = [p for _, kind, ch, p in jack_receiver.note_events() if kind == "on" and ch == 0]
    assert answered and answered == [n.pitch for n in song.tracks[1].notes]


def test_musicgen_jam_names_a_keyboard_that_is_not_there(jack_receiver, capsys) -> None:
    from musicgen_app.cli.main import main

    code = main(["jam", "--input", "no-such-keyboard", "--output", jack_receiver.port, "--midi-api", "jack"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no-such-keyboard" in err[0], err
