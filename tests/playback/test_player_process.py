"""The scheduler in its own process, driven from here, through a real JACK port."""

from __future__ import annotations

import time

import pytest

from musicgen_app.core.song import Note, Song, Track
from musicgen_app.errors import DeviceError
from musicgen_app.playback.live import play_session
from musicgen_app.playback.player_process import PlayerProcess

from .helpers import two_track_song, wait_until
from .test_jack import _expected_order, _no_hanging, _slow_stream

pytestmark = [pytest.mark.jack, pytest.mark.slow]


def test_player_process_plays_a_song_and_a_stream_completely(jack_receiver) -> None:
    song = two_track_song()
    with PlayerProcess(jack_receiver.port, midi_api="jack", record_timing=True) as player:
        player.wait_ready()
        assert player.name == jack_receiver.port
        time.sleep(0.1)
        player.play(song)
        assert player.wait(10.0)
        expected = _expected_order(song)
        assert wait_until(lambda: len(jack_receiver.note_events()) >= len(expected), 3.0)
        got = jack_receiver.note_events()
        assert [(k, ch, p) for _, k, ch, p in got] == expected, (got, jack_receiver.messages)
        assert player.timing is not None and len(player.timing) == len(expected) + 1  # + the volume CC
        # a streamed continuation through the same player
        n0 = len(got)
        r = 480
        seed = Song(tracks=[Track("m", notes=[Note(0, 60, r)])])
        cont = [Note(r + i * r // 4, 64 + i % 5, r + (i + 1) * r // 4) for i in range(8)]
        result = play_session(_slow_stream(cont, 0.03), seed, scheduler=player)
        assert result.reason == "done" and result.notes == cont
        assert wait_until(lambda: len(jack_receiver.note_events()) >= n0 + 2 * len(cont), 3.0)
    streamed = jack_receiver.note_events()[n0:]
    assert [p for _, k, _, p in streamed if k == "on"] == [n.pitch for n in cont]
    assert not _no_hanging(jack_receiver.note_events())


def test_player_process_switches_outputs_and_reports_position(jack_receiver) -> None:
    from musicgen_app.playback.scheduler import PlaybackError

    r = 480
    song = Song(tracks=[Track("m", notes=[Note(i * r, 60 + i, (i + 1) * r) for i in range(8)])])
    with PlayerProcess("none") as player:
        player.wait_ready()
        assert player.name == "no output"
        player.set_output("nope", midi_api="jack")  # refused: reported, the old output stays
        err = player.status.get(timeout=5)
        assert isinstance(err, PlaybackError) and "no MIDI output port called 'nope'" in err.message
        player.set_output(jack_receiver.port, midi_api="jack")
        assert wait_until(lambda: player.name == jack_receiver.port, 5.0)
        time.sleep(0.1)
        player.play(song)
        time.sleep(0.6)
        tick, state = player.position()
        assert state == "playing" and 480 <= tick <= 960 * 2
        player.stop()
        assert player.wait(5.0) and player.state == "stopped"
    got = jack_receiver.note_events()
    ons = [p for _, k, _, p in got if k == "on"]
    assert ons and ons == [60 + i for i in range(len(ons))] and len(ons) < 8  # stopped mid-song
    assert not _no_hanging(got)


def test_player_process_reports_a_missing_port(jack_server) -> None:
    with (
        PlayerProcess("nope", midi_api="jack") as player,
        pytest.raises(DeviceError, match="no MIDI output port"),
    ):
        player.wait_ready()


def test_the_player_pushes_the_playhead_while_it_plays(jack_receiver) -> None:
    r = 480
    song = Song(tracks=[Track("m", notes=[Note(i * r, 60 + i, (i + 1) * r) for i in range(8)])])
    with PlayerProcess(jack_receiver.port, midi_api="jack", background=True) as player:
        player.wait_ready()
        player.play(song)
        seen: list[int] = []
        end = time.monotonic() + 1.0
        while time.monotonic() < end:  # nothing asked: the reports come on their own
            pos = player.last_position
            if pos.seq == player.commands_sent and pos.state == "playing" and pos.tick not in seen:
                seen.append(pos.tick)
            time.sleep(0.005)
        assert len(seen) >= 10 and seen == sorted(seen), seen  # about every 20 ms, moving forward
        assert 480 <= seen[-1] <= 4 * 480
        player.stop()
        assert player.wait(5.0)


@pytest.mark.parametrize("background", [True, False])
def test_close_ends_the_reader_before_it_closes_the_pipe(background: bool) -> None:
    """close() returns with the reader thread ended (every report handled) and nothing raised in
    it. It used to close the pipe while the reader still slept in a read: the read then returned
    the child's last report's header and the rest was read with the handle gone (TypeError in
    the reader thread, a traceback on the app's stderr at quit, 3 of 20 closes under load)."""
    import threading

    raised: list[str] = []
    before = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        where = args.thread.name if args.thread else "?"
        raised.append(f"{where}: {args.exc_type.__name__}: {args.exc_value}")

    threading.excepthook = hook
    try:
        for _ in range(5):
            earlier = set(threading.enumerate())
            player = PlayerProcess("none", background=background)
            player.wait_ready()
            player.close()
            assert not player.alive
            assert [t.name for t in threading.enumerate() if t not in earlier] == []
    finally:
        threading.excepthook = before
    assert raised == []
