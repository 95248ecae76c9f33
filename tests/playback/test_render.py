"""Real FluidSynth, offline: a multi-track render is audible and of the right length; a stop with the
sustain pedal down falls below -60 dBFS within 200 ms."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from musicgen_app.core.song import ControlEvent, Note, Song, Track
from musicgen_app.playback.outputs import RecordingOutput
from musicgen_app.playback.render import level_dbfs, render_messages, render_song, render_wav
from musicgen_app.playback.scheduler import Scheduler

from .helpers import FakeClock, run_fake, two_track_song

pytestmark = pytest.mark.fluidsynth
SR = 44100


def test_multitrack_render_is_audible_and_of_the_right_length(tmp_path) -> None:
    song = two_track_song()
    path = tmp_path / "song.wav"
    seconds = render_wav(song, path, tail_s=1.0)
    assert seconds == pytest.approx(song.duration_seconds + 1.0, abs=1 / SR)
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 2 and w.getframerate() == SR
        frames = w.getnframes()
        pcm = np.frombuffer(w.readframes(frames), dtype="<i2").reshape(-1, 2) / 32768.0
    assert frames == round((song.duration_seconds + 1.0) * SR)
    level = level_dbfs(pcm[: int(song.duration_seconds * SR)])
    print(f"\nrender of {song.duration_seconds:.2f} s, 2 tracks: {level:.1f} dBFS RMS")
    assert level > -40.0
    # both tracks sound: each alone is audible, and the bass is lower than the melody
    for i in range(2):
        alone = Song(tracks=[song.tracks[i]], tempos=song.tempos)
        assert level_dbfs(render_song(alone, tail_s=0.0)) > -45.0
    # nothing before the first note (all notes start at 0 here, so check the end instead: it decays)
    assert level_dbfs(pcm[-int(0.1 * SR) :]) < level - 20


def test_stop_with_sustain_pedal_held_is_silent_within_200_ms() -> None:
    r = 480
    chord = [Note(0, p, 240, 110) for p in (48, 60, 64, 67, 72)]
    long_note = Note(0, 36, 16 * r, 110)
    song = Song(
        tracks=[
            Track(
                "piano",
                program=0,
                notes=[*chord, long_note],
                controls=[
                    ControlEvent(0, "control_change", 64, 127, 0),  # sustain pedal down, never released
                    ControlEvent(0, "control_change", 91, 127, 0),  # as much reverb as the synth gives
                ],
            )
        ]
    )
    clock = FakeClock(0.0)
    out = RecordingOutput(clock=clock)
    sched = Scheduler(out, clock=clock, threaded=False)
    sched.play(song)
    stop_at = 1.0
    run_fake(sched, clock, until=stop_at)
    assert sched.state == "playing"
    sched.stop()  # the real stop path: note-offs, sustain off, all notes off, all sound off
    assert not sched.sounding
    audio = render_messages(out.messages, stop_at + 1.0)
    before = level_dbfs(audio[int((stop_at - 0.1) * SR) : int(stop_at * SR)])
    after = level_dbfs(audio[int((stop_at + 0.2) * SR) : int((stop_at + 0.3) * SR)])
    later = level_dbfs(audio[int((stop_at + 0.5) * SR) :])
    print(
        f"\nsustained chord: {before:.1f} dBFS before stop, "
        f"{after:.1f} dBFS 200-300 ms after, {later:.1f} later"
    )
    assert before > -45.0  # the pedal really held the chord
    assert after < -60.0
    assert later < after
