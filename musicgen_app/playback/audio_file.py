"""Reading WAV files for the audio models: PCM WAV (8/16/24/32-bit integer or 32-bit float) to mono
float32, and resampling between rates (numpy only).

The file is read through :func:`musicgen_app.core.safe_io.read_capped`: a folder, device, FIFO or
socket is refused, and so is a file over :data:`MAX_WAV_BYTES`; a file that is not a WAV we can
read is one :class:`~musicgen_app.errors.AudioFileError` line.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np

from musicgen_app.core.safe_io import read_capped
from musicgen_app.errors import AudioFileError

logger = logging.getLogger(__name__)

MAX_WAV_BYTES = 256 << 20  # 256 MiB: about 25 minutes of 44.1 kHz 16-bit stereo
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


def read_wav(path: str | Path, max_bytes: int = MAX_WAV_BYTES) -> tuple[np.ndarray, int]:
    """``(samples, sample_rate)``: the WAV at ``path`` as float32 ``(frames, channels)`` in -1..1."""
    data = read_capped(path, max_bytes, AudioFileError, "WAV file")
    name = Path(path).name
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFileError(f"{name} is not a WAV file")
    pos, fmt, body = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        chunk = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt " and len(chunk) >= 16:
            fmt = struct.unpack_from("<HHIIHH", chunk)
            if fmt[0] == _EXTENSIBLE and len(chunk) >= 26:
                fmt = (struct.unpack_from("<H", chunk, 24)[0], *fmt[1:])
        elif cid == b"data":
            body = chunk
        pos += 8 + size + (size & 1)
    if fmt is None or body is None:
        raise AudioFileError(f"{name}: the WAV file has no {'format' if fmt is None else 'data'} chunk")
    code, channels, rate, _, _, bits = fmt
    if channels < 1 or not 1000 <= rate <= 384000:
        raise AudioFileError(f"{name}: the WAV file says {channels} channels at {rate} Hz")
    width = bits // 8
    usable = len(body) - len(body) % (width * channels) if width else 0
    if code == _PCM and bits in (8, 16, 32):
        kind = {8: "u1", 16: "<i2", 32: "<i4"}[bits]
        raw = np.frombuffer(body[:usable], dtype=kind).astype(np.float32)
        x = (raw - 128.0) / 128.0 if bits == 8 else raw / float(2 ** (bits - 1))
    elif code == _PCM and bits == 24:
        b = np.frombuffer(body[:usable], dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)).astype(np.float32)
    elif code == _FLOAT and bits == 32:
        x = np.nan_to_num(np.frombuffer(body[:usable], dtype="<f4").astype(np.float32))
    else:
        raise AudioFileError(f"{name}: WAV format {code} with {bits}-bit samples is not supported")
    return np.clip(x, -1.0, 1.0).reshape(-1, channels), int(rate)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """The mean of the channels of ``(frames, channels)`` samples (1-D input is returned as is)."""
    a = np.asarray(samples, dtype=np.float32)
    return a if a.ndim == 1 else a.mean(axis=1).astype(np.float32)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Mono ``x`` from ``rate_in`` to ``rate_out`` Hz (band-limited, by the FFT of the whole signal)."""
    x = np.asarray(x, dtype=np.float32)
    if rate_in == rate_out or len(x) == 0:
        return x.copy()
    n_out = max(1, round(len(x) * rate_out / rate_in))
    pad = 1 << max(0, (len(x) - 1).bit_length())  # a power of two: fast, and the zeros damp wrap-around
    spec = np.fft.rfft(x, pad)
    pad_out = round(pad * rate_out / rate_in)
    keep = min(len(spec), pad_out // 2 + 1)
    spec_out = np.zeros(pad_out // 2 + 1, dtype=np.complex128)
    spec_out[:keep] = spec[:keep]
    y = np.fft.irfft(spec_out, pad_out) * (pad_out / pad)
    return y[:n_out].astype(np.float32)
