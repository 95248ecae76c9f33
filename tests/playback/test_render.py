"""Real FluidSynth, offline: a multi-track render is audible and of the right length; a stop with the
sustain pedal down falls below -60 dBFS within 200 ms."""

from __future__ import annotations

import gc
import os
import stat
import sys
import wave

import numpy as np
import pytest

from musicgen_app.core.song import ControlEvent, Note, Song, Track
from musicgen_app.errors import DeviceError, SoundFontError
from musicgen_app.playback.outputs import RecordingOutput
from musicgen_app.playback.render import (
    level_dbfs,
    peak_dbfs,
    render_messages,
    render_song,
    render_wav,
    write_wav,
)
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


def _wav_peak_dbfs(path) -> float:
    with wave.open(str(path), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768.0
    return peak_dbfs(pcm)


def test_rendered_wav_is_normalised_to_minus_1_dbfs(tmp_path, capsys) -> None:
    """`musicgen render` through real FluidSynth: the WAV peaks at -1 dBFS (loud enough to audition);
    --peak-db moves it, --no-normalize keeps the synth's own (quiet) level."""
    from musicgen_app.cli.main import main
    from musicgen_app.core.midi_io import write_midi

    song = two_track_song()
    write_midi(song, tmp_path / "song.mid")
    raw = peak_dbfs(render_song(song))
    peaks = {}
    for name, extra in (("default", []), ("peak-6", ["--peak-db", "-6"]), ("raw", ["--no-normalize"])):
        out = tmp_path / f"{name}.wav"
        assert main(["render", str(tmp_path / "song.mid"), "-o", str(out), *extra]) == 0
        assert "wrote" in capsys.readouterr().out
        peaks[name] = _wav_peak_dbfs(out)
    print(f"\npeak: synth's own {raw:.1f} dBFS; written {peaks}")
    assert peaks["default"] == pytest.approx(-1.0, abs=0.05)
    assert peaks["peak-6"] == pytest.approx(-6.0, abs=0.05)
    assert peaks["raw"] == pytest.approx(raw, abs=0.05) and raw < -10.0


def test_a_silent_render_is_refused_not_written(tmp_path) -> None:
    muted = two_track_song()
    for t in muted.tracks:
        t.controls = [ControlEvent(0, "control_change", 7, 0, t.channel)]  # volume 0 on every track
    with pytest.raises(SoundFontError, match="silent although the song has 12 notes"):
        render_wav(muted, tmp_path / "muted.wav")
    assert not (tmp_path / "muted.wav").exists()


def test_write_wav_refuses_cleanly(tmp_path, monkeypatch) -> None:
    """No folder, a folder or a link to a device in the way: DeviceError, nothing replaced, and no
    half-made wave writer whose destructor prints "Exception ignored"."""
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    samples = np.zeros((100, 2), dtype=np.float32)
    link = tmp_path / "null.wav"
    link.symlink_to("/dev/null")
    (tmp_path / "folder.wav").mkdir()
    for target, message in (
        (tmp_path / "no" / "x.wav", "folder .* does not exist"),
        (link, "character device"),
        (tmp_path / "folder.wav", "folder"),
    ):
        with pytest.raises(DeviceError, match=message):
            write_wav(samples, target)
    gc.collect()
    assert unraisable == []
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.wav", "null.wav"]
