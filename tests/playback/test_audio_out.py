"""The sample-stream output on a private JACK server: what it is given arrives at a JACK audio port
(recorded by JACK's own ``jack_rec``), in real time, and no server is one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from musicgen_app.errors import DeviceError
from musicgen_app.playback.audio_out import JackAudioOutput, StreamResampler

from .helpers import wait_until


def test_chunked_resampling_equals_one_pass_and_keeps_the_tone() -> None:
    t = np.arange(8000) / 8000
    x = 0.5 * np.sin(2 * np.pi * 440 * t)
    whole = StreamResampler(8000, 48000)(x)
    rs = StreamResampler(8000, 48000)
    chunks = np.concatenate([rs(x[i : i + 333]) for i in range(0, len(x), 333)])
    assert len(whole) == len(chunks) and abs(len(whole) - 48000) <= 6
    np.testing.assert_allclose(chunks, whole, atol=1e-6)
    spec = np.abs(np.fft.rfft(whole[:48000] if len(whole) >= 48000 else whole))
    peak_hz = np.argmax(spec) * 48000 / (2 * (len(spec) - 1))
    assert abs(peak_hz - 440) < 3


@pytest.mark.jack
def test_written_samples_arrive_at_a_jack_port_in_real_time(jack_server, tmp_path: Path) -> None:
    rec_bin = shutil.which("jack_rec")
    if rec_bin is None:
        pytest.fail("jack_rec is missing (apt package jackd2)")
    out = JackAudioOutput("musicgen-audio-test")
    try:
        assert out.sample_rate == 48000
        assert out.connected == ["system:playback_1", "system:playback_2"]
        wav = tmp_path / "rec.wav"
        rec = subprocess.Popen(
            [rec_bin, "-f", str(wav), "-d", "3", "-b", "16", out.port_name],
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # jack_rec is connected and recording silence
        # one second at 8 kHz: a 440 Hz tone whose loudness rises (so the recording can be aligned)
        t = np.arange(8000) / 8000
        x = (0.1 + 0.6 * t) * np.sin(2 * np.pi * 440 * t)
        for i in range(0, 8000, 400):  # block by block, as a generator hands them over
            out.write(x[i : i + 400], 8000)
        out.finish()
        t0 = time.monotonic()
        out.start()
        assert wait_until(lambda: out.consumed_frames > 0, 2.0)
        halfway = wait_until(lambda: out.consumed_frames >= 24000, 5.0)
        t_half = time.monotonic() - t0
        assert halfway and out.wait_done(timeout=5.0)
        wall = time.monotonic() - t0
        assert out.consumed_frames == out.written_frames
        # the dummy driver runs in real time: half a second after half a second, not at once
        assert t_half > 0.35 and 0.85 < wall < 3.0, (t_half, wall)
        assert out.underruns == 0
        rec.wait(timeout=10)
    finally:
        out.close()
    with wave.open(str(wav)) as w:
        assert w.getframerate() == 48000
        got = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768
    sent = StreamResampler(8000, 48000)(x).astype(np.float64)
    first = int(np.argmax(np.abs(got) > 0.02))
    # align on the first sound, then sample by sample (16-bit recording: 1e-3 is a few LSB)
    lag = max(range(first - 20, first + 20), key=lambda k: float(np.dot(got[k : k + 4800], sent[:4800])))
    seg = got[lag : lag + len(sent)]
    assert len(seg) == len(sent), "the recording stopped before the take ended"
    assert np.max(np.abs(seg - sent)) < 2e-3
    assert np.max(np.abs(got[lag + len(sent) + 10 :])) < 1e-3  # silence after the end


def test_no_jack_server_is_one_line(no_midi_system) -> None:
    with pytest.raises(DeviceError, match=r"^no audio output: the JACK server is not running$"):
        JackAudioOutput("musicgen-audio-none")


@pytest.mark.jack
def test_stop_silences_at_once_and_close_twice_is_harmless(jack_server) -> None:
    out = JackAudioOutput("musicgen-audio-stop", connect=False)
    out.write(np.full(8000, 0.25), 8000)
    out.start()
    assert wait_until(lambda: out.consumed_frames > 2000, 3.0)
    out.stop()
    time.sleep(0.05)
    held = out.consumed_frames
    time.sleep(0.2)
    assert out.consumed_frames == held < out.written_frames
    with pytest.raises(DeviceError, match="holds at most"):
        out.write(np.zeros(8000 * 200), 8000)
    out.close()
    out.close()


@pytest.mark.jack
def test_a_released_client_is_reused_silent_and_empty(jack_server) -> None:
    """Continue as Audio hands its client back (deactivating a client with a Python callback can
    deadlock the interpreter); the next take gets the same client, emptied and silent."""
    out = JackAudioOutput.acquire()
    out.write(np.full(4800, 0.5, dtype=np.float32), out.sample_rate)
    out.start()
    time.sleep(0.2)
    out.release()
    again = JackAudioOutput.acquire()
    assert again is out
    assert (again.written_frames, again.consumed_frames, again.playing, again.done) == (0, 0, False, False)
    again.release()
