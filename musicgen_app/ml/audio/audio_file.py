"""Reading audio recordings: WAV files (PCM 8/16/24/32-bit, float 32/64-bit) to float samples.

The file is read through the app's file boundary (:func:`musicgen_app.core.safe_io.read_capped`):
a device, FIFO, socket or folder is refused before anything is opened, and at most
:data:`MAX_AUDIO_BYTES` are read. The RIFF chunks are parsed here (no audio library needed), so
every problem becomes one :class:`~musicgen_app.errors.AudioError` line that names the file:
a damaged header, a format we do not read (FLAC, MP3, Ogg, M4A, AIFF and MIDI are recognised by
their first bytes and named), no audio at all, or a recording longer than :data:`MAX_SECONDS`.

A recording cut short (a ``data`` chunk that claims more bytes than the file holds, as a recorder
that was killed leaves it) is read as far as it goes, and the shortfall is logged.
"""

from __future__ import annotations

import logging
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen_app.core.safe_io import read_capped
from musicgen_app.errors import AudioError

logger = logging.getLogger(__name__)

MAX_AUDIO_BYTES = 512 * 2**20  # about 45 minutes of 48 kHz 24-bit stereo
MAX_SECONDS = 20 * 60.0  # a sketch, not an album
MAX_CHANNELS = 64
SAMPLE_RATE_RANGE = (1000, 384_000)
AUDIO_SUFFIXES = (".wav", ".wave")

_PCM = 0x0001
_FLOAT = 0x0003
_EXTENSIBLE = 0xFFFE

# (first bytes, offset, name) of formats we recognise but do not read
_OTHER_FORMATS: tuple[tuple[bytes, int, str], ...] = (
    (b"fLaC", 0, "a FLAC file"),
    (b"OggS", 0, "an Ogg file"),
    (b"ID3", 0, "an MP3 file"),
    (b"ftyp", 4, "an MP4/M4A file"),
    (b"MThd", 0, "a MIDI file"),
    (b"RF64", 0, "an RF64 (64-bit WAV) file"),
    (b"#!SILK", 0, "a SILK voice-message file"),
    (b"#!AMR", 0, "an AMR voice-message file"),
)


@dataclass(frozen=True)
class Audio:
    """Samples of a recording: ``samples`` is float32 (frames, channels), full scale at 1.0."""

    samples: np.ndarray
    sample_rate: int

    @property
    def channels(self) -> int:
        """How many channels the recording has."""
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        """The recording's length in seconds."""
        return self.samples.shape[0] / self.sample_rate

    def mono(self) -> np.ndarray:
        """The channels mixed to one: float32 (frames,)."""
        if self.channels == 1:
            return self.samples[:, 0]
        return self.samples.mean(axis=1, dtype=np.float32)


def _what_else(head: bytes) -> str | None:
    for magic, offset, name in _OTHER_FORMATS:
        if head[offset : offset + len(magic)] == magic:
            return name
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "an AIFF file"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "an MP3 file"
    return None


def _chunks(data: bytes, name: str) -> dict[bytes, tuple[int, int]]:
    """``chunk id -> (start, size)`` of the RIFF chunks (the first of each id; sizes clipped)."""
    found: dict[bytes, tuple[int, int]] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        start = pos + 8
        if start + size > len(data):
            if cid == b"data":
                short = start + size - len(data)
                logger.warning(
                    "%s: the recording is cut short (%d bytes missing); reading what is there", name, short
                )
            size = len(data) - start
        found.setdefault(cid, (start, size))
        pos = start + size + (size & 1)
    return found


def _decode(raw: bytes, fmt: int, bits: int, block: int, channels: int) -> np.ndarray:
    """Interleaved sample bytes to float32 (frames, channels)."""
    frames = len(raw) // block
    raw = raw[: frames * block]
    width = block // channels
    if fmt == _FLOAT:
        dtype = "<f4" if bits == 32 else "<f8"
        x = np.frombuffer(raw, dtype=dtype).reshape(frames, channels).astype(np.float32)
        return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    if width == 1:  # 8-bit WAV is unsigned
        u8 = np.frombuffer(raw, dtype=np.uint8).reshape(frames, channels)
        return (u8.astype(np.float32) - 128.0) / 128.0
    if width in (2, 4):
        ints = np.frombuffer(raw, dtype=f"<i{width}").reshape(frames, channels)
        return (ints.astype(np.float64) / float(2 ** (8 * width - 1))).astype(np.float32)
    # 24-bit (or another odd width): assemble little-endian bytes into int32, sign-extended
    b = np.frombuffer(raw, dtype=np.uint8).reshape(frames * channels, width)
    acc = np.zeros(frames * channels, dtype=np.int64)
    for i in range(width):
        acc |= b[:, i].astype(np.int64) << (8 * i)
    sign = np.int64(1) << (8 * width - 1)
    acc = (acc ^ sign) - sign
    return (acc.astype(np.float64) / float(sign)).astype(np.float32).reshape(frames, channels)


def parse_wav(data: bytes, name: str = "the file", max_seconds: float = MAX_SECONDS) -> Audio:
    """Decode the bytes of a WAV file (raises AudioError with one line naming ``name``)."""
    if not data:
        raise AudioError(f"{name} is empty")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        other = _what_else(data[:16])
        if other is not None:
            raise AudioError(
                f"{name} is {other}; this app reads WAV recordings (.wav): convert it to WAV first"
            )
        raise AudioError(f"{name} is not a WAV file (it does not start with a RIFF/WAVE header)")
    chunks = _chunks(data, name)
    if b"fmt " not in chunks:
        raise AudioError(f"{name} is a damaged WAV file: it has no format chunk")
    fstart, fsize = chunks[b"fmt "]
    if fsize < 16:
        raise AudioError(f"{name} is a damaged WAV file: its format chunk is too short")
    fmt, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", data, fstart)
    if fmt == _EXTENSIBLE:
        if fsize < 40:
            raise AudioError(f"{name} is a damaged WAV file: its extensible format chunk is too short")
        (fmt,) = struct.unpack_from("<H", data, fstart + 24)  # the sub-format GUID's first two bytes
    if fmt not in (_PCM, _FLOAT):
        raise AudioError(
            f"{name} holds compressed WAV audio (format 0x{fmt:04x}); this app reads PCM or float WAV: "
            "convert it to 16-bit PCM WAV first"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{name} is a damaged WAV file: it claims {channels} channels")
    lo, hi = SAMPLE_RATE_RANGE
    if not lo <= rate <= hi:
        raise AudioError(f"{name} has a sample rate of {rate} Hz; this app reads {lo} to {hi} Hz")
    ok_bits = (32, 64) if fmt == _FLOAT else (8, 16, 24, 32)
    if bits not in ok_bits or block != channels * bits // 8:
        kind = "float" if fmt == _FLOAT else "PCM"
        raise AudioError(f"{name} has {bits}-bit {kind} samples, which this app does not read")
    if b"data" not in chunks:
        raise AudioError(f"{name} is a damaged WAV file: it has no audio data chunk")
    dstart, dsize = chunks[b"data"]
    frames = dsize // block
    if frames == 0:
        raise AudioError(f"{name} holds no audio (its data chunk is empty)")
    if frames / rate > max_seconds:
        raise AudioError(
            f"{name} is {frames / rate / 60:.1f} minutes long; this app takes recordings of up to "
            f"{max_seconds / 60:g} minutes"
        )
    samples = _decode(data[dstart : dstart + frames * block], fmt, bits, block, channels)
    return Audio(samples=samples, sample_rate=int(rate))


def read_audio(path: str | Path, *, max_seconds: float = MAX_SECONDS) -> Audio:
    """The recording in the WAV file ``path`` (raises AudioError with one line naming the file).

    The file must be a regular file of at most :data:`MAX_AUDIO_BYTES`; see the module docstring
    for what is read and what is refused.
    """
    p = Path(path)
    data = read_capped(p, MAX_AUDIO_BYTES, AudioError, "audio file")
    audio = parse_wav(data, str(p), max_seconds=max_seconds)
    peak = float(np.max(np.abs(audio.samples)))
    logger.info(
        "%s: %.2f s, %d Hz, %d channel(s), peak %.1f dBFS",
        p,
        audio.duration_s,
        audio.sample_rate,
        audio.channels,
        20 * math.log10(peak) if peak > 0 else float("-inf"),
    )
    return audio


# -- resampling -------------------------------------------------------------------------------------
def _sinc_taps(frac: np.ndarray, half: int, cutoff: float) -> np.ndarray:
    """Windowed-sinc weights (len(frac), 2*half) for the input samples around each position."""
    k = np.arange(-half + 1, half + 1, dtype=np.float64)
    d = frac[:, None] - k[None, :]  # distance from the output position to each input sample
    window = 0.5 * (1.0 + np.cos(np.pi * np.clip(d / half, -1.0, 1.0)))
    return cutoff * np.sinc(cutoff * d) * window


def resample(x: np.ndarray, rate_in: int, rate_out: int, *, zero_crossings: int = 16) -> np.ndarray:
    """``x`` (1-D) resampled from ``rate_in`` to ``rate_out`` Hz with a Hann-windowed sinc filter.

    The filter cuts at 95 % of the lower Nyquist frequency and spans ``zero_crossings`` zero
    crossings each side. Rational ratios with a small numerator (44.1 or 48 kHz to 22.05 kHz) use a
    table of filter phases; any other ratio computes the weights as it goes.
    """
    x = np.asarray(x, dtype=np.float32)
    if rate_in == rate_out or x.size == 0:
        return x.copy()
    ratio = rate_out / rate_in
    cutoff = 0.95 * min(1.0, ratio)
    half = math.ceil(zero_crossings / cutoff)
    n_out = math.floor(x.size * ratio)
    padded = np.concatenate([np.zeros(half, np.float32), x, np.zeros(half + 1, np.float32)])
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g  # output n sits at input position n * down / up
    table = _sinc_taps(np.arange(up) / up, half, cutoff).astype(np.float32) if up <= 4096 else None
    out = np.empty(n_out, dtype=np.float32)
    chunk = 1 << 16
    for s in range(0, n_out, chunk):
        n = np.arange(s, min(n_out, s + chunk), dtype=np.int64)
        base = (n * down) // up  # the input sample at or before each output position
        if table is not None:
            weights = table[(n * down) % up]
        else:
            weights = _sinc_taps((n * down % up) / up, half, cutoff).astype(np.float32)
        idx = base[:, None] + np.arange(-half + 1, half + 1)[None, :] + half  # into ``padded``
        out[s : s + n.size] = np.einsum("ij,ij->i", padded[idx], weights)
    return out
