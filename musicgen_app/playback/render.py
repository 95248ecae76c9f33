"""Offline rendering through FluidSynth: a song (or any timed messages) to samples or a WAV file.

No audio device is needed: the synth runs without a driver and samples are pulled block by block
between events, so event times are exact to the sample.
"""

from __future__ import annotations

import logging
import os
import wave
from collections.abc import Iterable
from pathlib import Path

import mido
import numpy as np

from musicgen_app.core.safe_io import check_writable_target
from musicgen_app.core.song import Song
from musicgen_app.errors import DeviceError
from musicgen_app.playback import timeline as tl
from musicgen_app.playback.outputs import FluidSynthOutput

logger = logging.getLogger(__name__)

DEFAULT_TAIL_S = 1.0  # room for the last notes' release and the reverb
_BLOCK = 4096


def render_messages(
    timed: Iterable[tuple[float, mido.Message]],
    duration_s: float,
    *,
    soundfont: str | Path | None = None,
    sample_rate: int = 44100,
    gain: float = 0.5,
) -> np.ndarray:
    """Render ``(time_sec, msg)`` pairs (times from 0) for ``duration_s``: float32 array (frames, 2)."""
    frames_total = max(0, round(duration_s * sample_rate))
    out = np.zeros((frames_total, 2), dtype=np.float32)
    items = sorted(((max(0.0, t), i, m) for i, (t, m) in enumerate(timed)), key=lambda x: (x[0], x[1]))
    synth = FluidSynthOutput(soundfont=soundfont, audio=False, sample_rate=sample_rate, gain=gain)
    try:
        pos = 0
        k = 0
        while pos < frames_total:
            while k < len(items) and round(items[k][0] * sample_rate) <= pos:
                synth.send(items[k][2])
                k += 1
            nxt = round(items[k][0] * sample_rate) if k < len(items) else frames_total
            n = max(1, min(_BLOCK, nxt - pos, frames_total - pos))
            out[pos : pos + n] = synth.render_frames(n).astype(np.float32) / 32768.0
            pos += n
    finally:
        synth.close()
    return out


def song_messages(song: Song) -> list[tuple[float, mido.Message]]:
    """Every message of ``song`` with its time in seconds (programs first)."""
    timed: list[tuple[float, mido.Message]] = [(0.0, m) for m in tl.setup_messages(song)]
    timed += [(ev[3], ev[4]) for ev in tl.Timeline(song.tempo_map()).song_events(song)]
    return timed


def render_song(
    song: Song,
    *,
    soundfont: str | Path | None = None,
    sample_rate: int = 44100,
    tail_s: float = DEFAULT_TAIL_S,
) -> np.ndarray:
    """The song rendered to a float32 (frames, 2) array: its duration plus ``tail_s``."""
    return render_messages(
        song_messages(song), song.duration_seconds + tail_s, soundfont=soundfont, sample_rate=sample_rate
    )


def write_wav(samples: np.ndarray, path: str | Path, sample_rate: int = 44100) -> None:
    """Write float samples (frames, 2) as a 16-bit stereo WAV (written to a temporary file, then renamed)."""
    p = Path(path)
    check_writable_target(p, DeviceError)  # never replace /dev/null or a folder with a WAV
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    tmp = p.with_name(p.name + ".part")
    try:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(sample_rate)
            w.writeframes(pcm.tobytes())
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DeviceError(f"cannot write {p}: {exc.strerror or exc}") from exc


def render_wav(
    song: Song,
    path: str | Path,
    soundfont: str | Path | None = None,
    sample_rate: int = 44100,
    tail_s: float = DEFAULT_TAIL_S,
) -> float:
    """Render ``song`` to a WAV file; returns its length in seconds."""
    samples = render_song(song, soundfont=soundfont, sample_rate=sample_rate, tail_s=tail_s)
    write_wav(samples, path, sample_rate)
    return len(samples) / sample_rate


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of ``samples`` in dBFS (-inf for silence)."""
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def peak_dbfs(samples: np.ndarray) -> float:
    """Peak level of ``samples`` in dBFS (-inf for silence)."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")
