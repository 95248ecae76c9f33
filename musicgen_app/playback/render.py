"""Offline rendering through FluidSynth: a song (or any timed messages) to samples or a WAV file.

No audio device is needed: the synth runs without a driver and samples are pulled block by block
between events, so event times are exact to the sample.

A rendered WAV is normalised by default: its loudest sample peaks at -1 dBFS
(:data:`DEFAULT_PEAK_DBFS`), loud enough to audition next to other music, with a little room for
the 16-bit conversion; FluidSynth's own level (gain 0.5) peaks around -20 dBFS. A render that comes
out silent although the song has notes is refused with a message (a damaged SoundFont, every track
muted), not written.
"""

from __future__ import annotations

import logging
import math
import os
import wave
from collections.abc import Iterable
from pathlib import Path

import mido
import numpy as np

from musicgen_app.core.safe_io import check_writable_target
from musicgen_app.core.song import Song
from musicgen_app.errors import DeviceError, MusicgenError, SoundFontError
from musicgen_app.playback import timeline as tl
from musicgen_app.playback.outputs import FluidSynthOutput

logger = logging.getLogger(__name__)

DEFAULT_TAIL_S = 1.0  # room for the last notes' release and the reverb
MAX_TAIL_S = 60.0
DEFAULT_PEAK_DBFS = -1.0  # where a rendered WAV's loudest sample lands (None: FluidSynth's own level)
# a render with notes whose peak stays below this is reported as silent: 2 steps of 16-bit audio
# (FluidSynth's output of a muted track is 1 step, -90.3 dBFS; a damaged SoundFont gives true zeros)
SILENCE_DBFS = -84.0
SAMPLE_RATE_RANGE = (8000, 96000)  # what FluidSynth's synth.sample-rate accepts
_BLOCK = 4096


def render_messages(
    timed: Iterable[tuple[float, mido.Message]],
    duration_s: float,
    *,
    soundfont: str | Path | None = None,
    sample_rate: int = 44100,
    gain: float = 0.5,
) -> np.ndarray:
    """Render ``(time_sec, msg)`` pairs (times from 0) for ``duration_s``: float32 array (frames, 2).

    Raises MusicgenError for a sample rate FluidSynth does not take or a duration that is not a
    finite number of seconds (checked before anything is allocated).
    """
    lo, hi = SAMPLE_RATE_RANGE
    if not lo <= sample_rate <= hi:
        raise MusicgenError(f"the sample rate must be from {lo} to {hi} Hz, not {sample_rate}")
    if not (math.isfinite(duration_s) and duration_s >= 0):
        raise MusicgenError(f"cannot render {duration_s} seconds")
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
    """The song rendered to a float32 (frames, 2) array: its duration plus ``tail_s`` (0 to 60 s)."""
    if not (math.isfinite(tail_s) and 0 <= tail_s <= MAX_TAIL_S):
        raise MusicgenError(f"the tail must be from 0 to {MAX_TAIL_S:g} seconds, not {tail_s}")
    return render_messages(
        song_messages(song), song.duration_seconds + tail_s, soundfont=soundfont, sample_rate=sample_rate
    )


def normalize_peak(samples: np.ndarray, peak_db: float = DEFAULT_PEAK_DBFS) -> np.ndarray:
    """``samples`` scaled so that the loudest one peaks at ``peak_db`` dBFS (silence is left as is)."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak <= 0.0 or not math.isfinite(peak):
        return samples
    return (samples * np.float32(10.0 ** (peak_db / 20.0) / peak)).astype(np.float32, copy=False)


def write_wav(samples: np.ndarray, path: str | Path, sample_rate: int = 44100) -> None:
    """Write float samples (frames, 2) as a 16-bit stereo WAV, or (frames,) as a mono one (written to
    a temporary file, then renamed).

    Raises DeviceError when it cannot be written (no such folder, no permission, a device node or a
    folder in the way); nothing is left behind then.
    """
    p = Path(path)
    check_writable_target(p, DeviceError)  # never replace /dev/null or a folder with a WAV
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    tmp = p.with_name(p.name + ".part")
    try:
        # the file is opened here, not by wave.open(name): a failed open must not leave a half-made
        # Wave_write whose destructor prints "Exception ignored" on stderr
        with open(tmp, "wb") as fh, wave.open(fh, "wb") as w:
            w.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
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
    peak_db: float | None = DEFAULT_PEAK_DBFS,
) -> float:
    """Render ``song`` to a WAV file normalised to a peak of ``peak_db`` dBFS (None: FluidSynth's own
    level); returns its length in seconds. SoundFontError when notes were played but the render is
    silent (peak below -84 dBFS, 2 steps of 16-bit audio); nothing is written then."""
    check_writable_target(Path(path), DeviceError)
    samples = render_song(song, soundfont=soundfont, sample_rate=sample_rate, tail_s=tail_s)
    if song.note_count and peak_dbfs(samples) < SILENCE_DBFS:
        n = song.note_count
        raise SoundFontError(
            f"the render is silent although the song has {n} note{'' if n == 1 else 's'}: "
            "the SoundFont may be damaged, or every track is muted"
        )
    if peak_db is not None:
        samples = normalize_peak(samples, peak_db)
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
