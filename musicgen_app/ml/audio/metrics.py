"""Log-spectral distance between two aligned mono signals (numpy only).

Both signals are cut into 512-sample frames (hop 256, Hann window); each frame's power spectrum is
``|rfft(frame * w) / sum(w)|**2`` (a full-scale sine gives 0.25), floored at :data:`FLOOR_DB` dB
so that digital silence does not dominate, and the distance of a frame is the root-mean-square
over frequency of the difference of the two spectra in dB. The result is the mean over frames.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

FRAME = 512
HOP = 256
FLOOR_DB = -80.0


def power_frames(x: np.ndarray, frame: int = FRAME, hop: int = HOP) -> np.ndarray:
    """``(frames, frame // 2 + 1)`` power spectra of ``x`` (zero-padded to a whole frame)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = max(1, 1 + -(-max(0, len(x) - frame) // hop))
    padded = np.zeros((n - 1) * hop + frame)
    padded[: len(x)] = x
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    w = np.hanning(frame)
    spec = np.fft.rfft(padded[idx] * w, axis=1) / w.sum()
    return np.abs(spec) ** 2


def log_spectral_distance(
    a: np.ndarray, b: np.ndarray, floor_db: float = FLOOR_DB, *, band: float = 1.0
) -> float:
    """Mean over frames of the RMS (over frequency) dB difference of the power spectra of ``a``
    and ``b`` (cut to the shorter of the two). ``band``: only the lowest fraction of the
    frequencies (0.5: up to a quarter of the sample rate)."""
    n = min(len(a), len(b))
    if n == 0:
        raise ValueError("cannot compare empty signals")
    if not 0 < band <= 1:
        raise ValueError(f"band must be a fraction from above 0 to 1, not {band}")
    floor = 10.0 ** (floor_db / 10.0)
    bins = max(1, round((FRAME // 2 + 1) * band))
    pa = 10.0 * np.log10(np.maximum(power_frames(a[:n])[:, :bins], floor))
    pb = 10.0 * np.log10(np.maximum(power_frames(b[:n])[:, :bins], floor))
    return float(np.mean(np.sqrt(np.mean((pa - pb) ** 2, axis=1))))
