"""Reading WAV files for the audio models: formats, refusals, resampling."""

from __future__ import annotations

import os
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from musicgen_app.errors import AudioFileError
from musicgen_app.playback.audio_file import read_wav, resample, to_mono
from musicgen_app.playback.render import write_wav


def _tone(freq: float, rate: int, seconds: float) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_16_bit_stereo_and_mono_round_trip(tmp_path: Path) -> None:
    x = _tone(440, 16000, 0.5)
    write_wav(np.stack([x, -x], axis=1), tmp_path / "st.wav", 16000)
    write_wav(x, tmp_path / "mono.wav", 16000)
    st, rate = read_wav(tmp_path / "st.wav")
    assert rate == 16000 and st.shape == (8000, 2)
    assert np.max(np.abs(st[:, 0] - x)) < 1e-4 and np.max(np.abs(st[:, 1] + x)) < 1e-4
    mono, _ = read_wav(tmp_path / "mono.wav")
    assert mono.shape == (8000, 1) and np.max(np.abs(to_mono(mono) - x)) < 1e-4


def test_float_and_24_bit_files(tmp_path: Path) -> None:
    x = _tone(220, 8000, 0.25)
    body = x.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 8000 * 4, 4, 32)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(body)) + body
    (tmp_path / "f.wav").write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    y, rate = read_wav(tmp_path / "f.wav")
    assert rate == 8000 and np.array_equal(y[:, 0], x)
    with wave.open(str(tmp_path / "24.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(8000)
        v = np.round(x * (1 << 23)).astype(np.int32)
        w.writeframes(b"".join(int(s).to_bytes(3, "little", signed=True) for s in v))
    z, _ = read_wav(tmp_path / "24.wav")
    assert np.max(np.abs(z[:, 0] - x)) < 1e-6


def test_refusals_are_one_audio_file_error(tmp_path: Path) -> None:
    (tmp_path / "text.wav").write_text("not audio at all")
    with pytest.raises(AudioFileError, match="is not a WAV file"):
        read_wav(tmp_path / "text.wav")
    with pytest.raises(AudioFileError, match="folder"):
        read_wav(tmp_path)
    os.mkfifo(tmp_path / "fifo.wav")
    with pytest.raises(AudioFileError, match="pipe"):
        read_wav(tmp_path / "fifo.wav")  # refused without opening it (no hang)
    write_wav(_tone(440, 16000, 1.0), tmp_path / "big.wav", 16000)
    with pytest.raises(AudioFileError, match="MiB"):
        read_wav(tmp_path / "big.wav", max_bytes=1000)


def test_resampling_keeps_a_tone_where_it_was() -> None:
    x = _tone(1000, 44100, 1.0)
    y = resample(x, 44100, 16000)
    assert len(y) == 16000
    spec = np.abs(np.fft.rfft(y))
    assert abs(int(np.argmax(spec)) - 1000) <= 1  # 1 Hz bins
    assert abs(np.sqrt(np.mean(y**2)) - np.sqrt(np.mean(x**2))) < 0.01
    assert np.array_equal(resample(x, 16000, 16000), x)
