"""`musicgen audio restyle`: the shipped paper-002 autoencoder on real FluidSynth renders and WAV files."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from musicgen_app.cli.audio_restyle_cmd import DEFAULT_MODEL
from musicgen_app.cli.main import main
from musicgen_app.core import paths
from musicgen_app.core.song import Note, Song, TempoChange, Track
from musicgen_app.ml.audio.audio_file import read_audio
from musicgen_app.ml.audio.dataset import INSTRUMENTS, with_program
from musicgen_app.ml.audio.metrics import log_spectral_distance
from musicgen_app.playback.render import render_song, write_wav

MODEL = DEFAULT_MODEL
RATE = 16000

pytestmark = pytest.mark.skipif(
    not (paths.models_dir() / f"{MODEL}.safetensors").exists(), reason="the restyle model is not trained"
)


def _phrase() -> Song:
    """Six seconds of a held-out-style phrase: a C major melody over a held bass."""
    pitches = [60, 64, 67, 72, 71, 67, 65, 62, 60, 64, 62, 60]
    notes = [Note(i * 240, p, i * 240 + 220, 90) for i, p in enumerate(pitches)]
    notes.append(Note(0, 48, 240 * len(pitches), 80))
    return Song(resolution=480, tracks=[Track(notes=notes)], tempos=[TempoChange(0, 500_000)])


def to_mono(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 1 else a.mean(axis=1)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    audio = read_audio(path)
    return audio.samples, audio.sample_rate


def _render(program: int, rate: int = RATE) -> np.ndarray:
    a = render_song(with_program(_phrase(), program), sample_rate=rate, tail_s=0.5)
    return (a * (0.89 / np.max(np.abs(a)))).astype(np.float32)


def test_restyle_writes_mono_audio_of_the_same_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _render(INSTRUMENTS["guitar"])
    write_wav(src, tmp_path / "guitar.wav", RATE)
    code = main(
        ["audio", "restyle", str(tmp_path / "guitar.wav"), "-o", str(tmp_path / "out.wav"), "--to", "piano"]
    )
    assert code == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out
    with wave.open(str(tmp_path / "out.wav")) as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (1, RATE, len(src))
    out, _ = read_wav(tmp_path / "out.wav")
    peak_in = float(np.max(np.abs(to_mono(src))))
    assert float(np.max(np.abs(out))) <= peak_in + 0.01  # at most the input's level
    assert np.sqrt(np.mean(out**2)) > 0.01  # sound, not silence


def test_the_model_rebuilds_a_piano_render_it_never_saw(tmp_path: Path) -> None:
    # a piano phrase goes through the network and comes back as the same waveform (correlated
    # sample by sample), not as noise or silence
    piano = _render(INSTRUMENTS["piano"])
    write_wav(piano, tmp_path / "piano.wav", RATE)
    assert main(["audio", "restyle", str(tmp_path / "piano.wav"), "-o", str(tmp_path / "out.wav")]) == 0
    out, _ = read_wav(tmp_path / "out.wav")
    corr = float(np.corrcoef(to_mono(out), to_mono(piano))[0, 1])
    assert corr > 0.3, corr
    # ...and how far it is from the piano render is what `musicgen audio evaluate` reports
    assert np.isfinite(log_spectral_distance(to_mono(out), to_mono(piano)))


def test_other_rates_and_stereo_are_resampled_to_the_model_rate(tmp_path: Path) -> None:
    src = _render(INSTRUMENTS["organ"], rate=22050)[: 22050 * 2]  # stereo, 2 s at 22.05 kHz
    write_wav(src, tmp_path / "organ.wav", 22050)
    assert main(["audio", "restyle", str(tmp_path / "organ.wav"), "-o", str(tmp_path / "out.wav")]) == 0
    with wave.open(str(tmp_path / "out.wav")) as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (1, RATE, 2 * RATE)


def test_a_music_generator_is_refused_as_a_restyler(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_wav(np.zeros((1600, 2), np.float32), tmp_path / "quiet.wav", RATE)
    code = main(
        [
            "audio",
            "restyle",
            str(tmp_path / "quiet.wav"),
            "-o",
            str(tmp_path / "o.wav"),
            "--model",
            "melody-lstm",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "does not restyle audio" in err[0]
    assert not (tmp_path / "o.wav").exists()


def test_models_lists_the_restyler_with_its_paper_and_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert f"{MODEL}  (paper 002)" in out
    assert "restyled closer to piano" in out
