"""Through real JACK MIDI ports on a private JACK server: complete, in order, on time, nothing hanging.

Timing errors are printed (run with ``-s``); the assertions are sanity bounds only (order,
completeness, nothing early, nothing absurdly late). The speed goals live in
benchmarks/bench_playback.py.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest

from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.midi_io import read_midi, write_midi
from musicgen_app.core.song import Note, Song, Track
from musicgen_app.playback import timeline as tl
from musicgen_app.playback.live import play_session
from musicgen_app.playback.midi_ports import list_output_ports, resolve_midi_api
from musicgen_app.playback.outputs import MidiPortOutput
from musicgen_app.playback.scheduler import Scheduler

from .helpers import two_track_song, wait_until

pytestmark = [pytest.mark.jack, pytest.mark.slow]


def _expected_order(song: Song) -> list[tuple[str, int, int]]:
    return [
        ("on" if e[1] == tl.PRIO_NOTE_ON else "off", e[4].channel, e[4].note)
        for e in tl.Timeline(song.tempo_map()).song_events(song)
        if e[1] != tl.PRIO_CONTROL
    ]


def _errors_ms(pairs: list[tuple[float, float]]) -> str:
    err = np.array([(got - want) * 1000 for want, got in pairs])
    return f"p50 {np.percentile(err, 50):.2f} ms, p99 {np.percentile(err, 99):.2f} ms, max {err.max():.2f} ms"


def _no_hanging(events: list[tuple[float, str, int, int]]) -> Counter:
    balance: Counter = Counter()
    for _, kind, ch, pitch in events:
        balance[(ch, pitch)] += 1 if kind == "on" else -1
    return +balance  # keys still sounding


def test_auto_api_is_jack_when_a_jack_server_answers(jack_receiver) -> None:
    import rtmidi

    assert resolve_midi_api() == rtmidi.API_UNIX_JACK
    assert jack_receiver.port in list_output_ports()


def test_multitrack_file_with_tempo_change_arrives_complete_in_order_on_time(jack_receiver, tmp_path) -> None:
    path = tmp_path / "two-tracks.mid"
    write_midi(two_track_song(), path)
    song = read_midi(path).song
    assert len(song.tracks) == 2 and len(song.tempos) == 2
    out = MidiPortOutput(jack_receiver.port, api="jack")
    try:
        time.sleep(0.1)  # let JACK make the connection
        with Scheduler(out, record_timing=True) as sched:
            sched.play(song)
            assert sched.wait(10.0)
            origin = sched.origin_time
            send_timing = list(sched.timing or [])
        expected = _expected_order(song)
        assert wait_until(lambda: len(jack_receiver.note_events()) >= len(expected), 3.0)
    finally:
        out.close()
    got = jack_receiver.note_events()
    assert [(k, ch, p) for _, k, ch, p in got] == expected
    tmap = song.tempo_map()
    want = sorted(
        (origin + tmap.tick_to_seconds(e[0]), e[1]) for e in tl.Timeline(tmap).song_events(song) if e[1] != 1
    )
    arrival = [(w, g[0]) for (w, _), g in zip(want, got, strict=True)]
    print(f"\nJACK arrival error ({len(arrival)} notes, tempo change at bar 2): {_errors_ms(arrival)}")
    print(f"send error: {_errors_ms(send_timing)}")
    lateness = [g - w for w, g in arrival]
    assert min(lateness) > -0.005, "a note arrived before its time"
    assert max(lateness) < 0.5, "a note arrived absurdly late"
    assert not _no_hanging(got)
    # the tempo change shows: quarters last 0.5 s before it and 0.25 s after it
    ons = [t for t, k, ch, _ in got if k == "on" and ch == 0]
    gaps = np.diff(ons)
    assert np.median(gaps[:3]) > 0.4 and np.median(gaps[-3:]) < 0.35


def _slow_stream(notes: list[Note], gap_s: float, session_id: int = 42) -> Iterator[object]:
    """A stream that yields a note every ``gap_s`` seconds, as a model writing in real time does."""
    for i, n in enumerate(notes):
        time.sleep(gap_s)
        yield NoteEvent(session_id, i, n)
    yield SessionFinished(session_id, "done", notes=len(notes))


def test_streamed_continuation_arrives_complete_in_order_and_is_what_was_played(jack_receiver) -> None:
    r = 480
    seed = Song(
        tracks=[
            Track("melody", program=0, notes=[Note(i * r // 2, 60 + i, (i + 1) * r // 2) for i in range(4)])
        ]
    )
    start = seed.end_tick
    cont = [Note(start + i * r // 4, 62 + (i * 5) % 12, start + (i + 1) * r // 4) for i in range(16)]
    out = MidiPortOutput(jack_receiver.port, api="jack")
    try:
        time.sleep(0.1)
        # notes come every 40 ms, each due every 125 ms: generation stays ahead of playback
        result = play_session(_slow_stream(cont, 0.04), seed, out)
        assert wait_until(lambda: len(jack_receiver.note_events()) >= 2 * len(cont), 3.0)
    finally:
        out.close()
    got = jack_receiver.note_events()
    assert result.reason == "done"
    assert result.notes == cont
    ons = [p for _, k, _, p in got if k == "on"]
    assert ons == [n.pitch for n in cont], jack_receiver.messages  # not the seed
    assert not _no_hanging(got)
    ons = [t for t, k, _, _ in got if k == "on"]
    first = ons[0]
    err = [(first + i * 0.125, t) for i, t in enumerate(ons)]
    print(
        f"\nstreamed: first note {1000 * (result.first_note_latency_s or 0):.1f} ms after start, "
        f"stall {result.stall_s * 1000:.1f} ms, spacing error {_errors_ms(err)}"
    )


def test_stop_in_the_middle_leaves_no_note_hanging(jack_receiver) -> None:
    r = 480
    # chords of long overlapping notes on two channels, with the sustain pedal down
    notes = [Note(i * r // 2, 48 + (i * 7) % 24, i * r // 2 + 4 * r, 90, i % 2) for i in range(24)]
    song = Song(
        tracks=[
            Track("pad", notes=[n for n in notes if n.channel == 0]),
            Track("pad2", channel=1, notes=[n for n in notes if n.channel == 1]),
        ]
    )
    out = MidiPortOutput(jack_receiver.port, api="jack")
    try:
        time.sleep(0.1)
        with Scheduler(out) as sched:
            sched.play(song)
            time.sleep(1.2)
            assert sched.sounding  # several notes are sounding right now
            stopper = threading.Thread(target=sched.stop)  # stop from another thread, as a GUI does
            stopper.start()
            stopper.join()
            assert not sched.sounding
        time.sleep(0.2)
    finally:
        out.close()
    got = jack_receiver.note_events()
    assert any(k == "on" for _, k, _, _ in got)
    assert not _no_hanging(got)
    ccs = {(d[0] & 15, d[1]) for _, d in jack_receiver.messages if d[0] & 0xF0 == 0xB0}
    assert {(0, 64), (0, 123), (0, 120), (1, 64), (1, 123), (1, 120)} <= ccs


def test_cli_play_devices_and_fluidsynth_on_jack(jack_receiver, tmp_path) -> None:
    import json
    import os
    import subprocess
    import sys

    from musicgen_app.playback.outputs import FluidSynthOutput

    path = tmp_path / "song.mid"
    song = two_track_song()
    write_midi(song, path)
    cli = [sys.executable, "-m", "musicgen_app.cli.main"]
    r = subprocess.run(
        [*cli, "devices", "--json"], capture_output=True, text=True, timeout=60, env=os.environ
    )
    info = json.loads(r.stdout)
    assert info["midi"]["api"] == "Jack" and jack_receiver.port in info["midi"]["outputs"]
    assert "jack" in info["fluidsynth"]["audio_drivers"]  # really opened against our server
    r = subprocess.run(
        [*cli, "play", str(path), "--device", "receiver", "--midi-api", "jack"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )
    assert r.returncode == 0, r.stderr
    assert "on receiver:in" in r.stdout
    assert wait_until(lambda: len(jack_receiver.note_events()) >= 2 * song.note_count, 3.0)
    got = jack_receiver.note_events()
    assert [(k, ch, p) for _, k, ch, p in got] == _expected_order(song)
    # FluidSynth picks the first driver that really opens: here only JACK does
    synth = FluidSynthOutput()
    try:
        assert synth.driver_name == "jack"
        with Scheduler(synth) as sched:
            sched.play(song)
            assert sched.wait(10.0)
            assert sched.output is synth  # no failure switched it off
    finally:
        synth.close()
