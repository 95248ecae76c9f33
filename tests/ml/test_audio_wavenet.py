"""Paper 004's raw-audio WaveNet: mu-law, fast generation, NLL figures, the baseline, the CLI."""

from __future__ import annotations

import math
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from musicgen_app.core.midi_io import write_midi
from musicgen_app.core.song import Note, Song, TempoChange, Track
from musicgen_app.ml.audio import raw_wavenet as rw

REPO = Path(__file__).resolve().parents[2]


def _random_net(seed: int = 0, scale: float = 3.0) -> rw.AudioWaveNet:
    """A small network with large random weights (so a mistake in the queues shows)."""
    torch.manual_seed(seed)
    net = rw.AudioWaveNet(
        rw.AudioWaveNetConfig(channels=8, skip_channels=16, dilations=(1, 2, 4, 8, 1, 2, 4, 8))
    )
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(scale)
    return net.eval()


def test_mu_law_round_trip_and_classes() -> None:
    x = np.linspace(-1, 1, 10001)
    q = rw.mu_law_encode(x)
    assert q.min() == 0 and q.max() == 255 and rw.SILENCE == 128
    assert np.all(np.diff(q) >= 0)
    # companding: the quantisation step is fine near zero, coarse near full scale
    err = np.abs(rw.mu_law_decode(q) - x)
    assert err[np.abs(x) < 0.01].max() < 5e-4 and err.max() < 0.025


def test_the_card_counts_the_network_parameters() -> None:
    cfg = rw.AudioWaveNetConfig()
    assert rw.parameter_count(cfg) == sum(p.numel() for p in rw.AudioWaveNet(cfg).parameters())
    assert cfg.receptive_field == 512 and cfg.hop == 160


def test_piano_roll_and_the_held_condition() -> None:
    cfg = rw.AudioWaveNetConfig()
    notes = [Note(0, 60, 480, 90), Note(480, 64, 960, 90), Note(480, 100, 960, 90)]  # 120 bpm
    song = Song(
        resolution=480, tracks=[Track(name="t", program=0, notes=notes)], tempos=[TempoChange(0, 500000)]
    )
    roll = rw.piano_roll(song, cfg, 8000)  # one second = 50 frames of 20 ms
    assert roll.shape == (51, 61)
    assert roll[:25, 60 - 36].all() and not roll[25:, 60 - 36].any()
    assert roll[25:50, 64 - 36].all() and roll[25:50, 88 - 36].all()  # 100 folded down an octave
    held = rw.held_condition(roll)
    assert set(np.flatnonzero(held) + 36) == {64, 88}
    assert not rw.held_condition(np.zeros((5, 61), np.float32)).any()
    # a recording's condition: the pitch of a tone
    t = np.arange(8000) / 8000
    cond = rw.pitches_of_audio(0.5 * np.sin(2 * np.pi * 440 * t), cfg)
    assert set(np.flatnonzero(cond) + 36) == {69}


def test_fast_queue_generation_equals_the_full_causal_forward() -> None:
    net = _random_net()
    cfg = net.cfg
    T = 3 * cfg.receptive_field + 50
    rng = np.random.default_rng(1)
    q = rng.integers(0, 256, T)
    roll = (rng.random((T // cfg.hop + 2, cfg.cond_dim)) < 0.2).astype(np.float32)
    with torch.no_grad():
        full = net(torch.from_numpy(q)[None], torch.from_numpy(roll)[None])[0].T.numpy()  # (T, 256)
    fast = rw.FastAudioWaveNet(net)
    steps = []
    for t in range(T):
        fast.set_condition(roll[t // cfg.hop])
        steps.append(fast.step(int(q[t])))
    assert np.abs(np.stack(steps) - full).max() < 1e-3 * np.abs(full).max()
    # a prefill over a seed, then steps, gives the same logits as the full forward
    n = 2 * cfg.receptive_field + 7
    out = rw.FastAudioWaveNet(net)
    first = out.prefill(q[:n], roll[np.arange(n) // cfg.hop])
    assert np.allclose(first, full[n - 1], atol=1e-3 * np.abs(full).max())
    for t in range(n, n + 20):
        out.set_condition(roll[t // cfg.hop])
        assert np.allclose(out.step(int(q[t])), full[t], atol=1e-3 * np.abs(full).max())


def test_nll_figure_is_the_per_sample_nll_of_fast_generation() -> None:
    """``nll_bits`` (chunked full forward, condition one sample ahead) equals the bits that
    step-by-step generation assigns to each sample from the track's start."""
    net = _random_net(2, scale=1.0)
    cfg = net.cfg
    rng = np.random.default_rng(3)
    T = 700
    track = rw.Track(
        rng.integers(0, 256, T), (rng.random((T // cfg.hop + 2, cfg.cond_dim)) < 0.2).astype(np.float32)
    )
    bits, n = rw.nll_bits(net, [track], chunk=97)  # chunks that do not line up with the frames
    assert n == T
    fast = rw.FastAudioWaveNet(net)
    for _ in range(cfg.receptive_field + 1):
        fast.set_condition(np.zeros(cfg.cond_dim, dtype=np.float32))
        logits = fast.step(rw.SILENCE)
    total = 0.0
    for t in range(T):
        lse = np.log(np.sum(np.exp(logits - logits.max()))) + logits.max()
        total += (lse - logits[track.classes[t]]) / math.log(2)
        fast.set_condition(track.roll[(t + 1) // cfg.hop])
        logits = fast.step(int(track.classes[t]))
    assert bits == pytest.approx(total / T, rel=1e-4)


def test_the_n_gram_baseline_is_a_distribution_and_learns_repetition() -> None:
    rng = np.random.default_rng(0)
    wave_classes = rw.mu_law_encode(0.5 * np.sin(np.arange(4000) * 2 * np.pi / 40))
    noise = rng.integers(0, 256, 4000)
    model, choices = rw.fit_baseline([wave_classes], [wave_classes[:800]])
    assert model.order == 3 and len(choices) == 1 + 2 * 7
    # probabilities over the 256 next classes sum to one for a seen and an unseen context
    for ctx in ([wave_classes[10], wave_classes[11]], [3, 250]):
        total = sum(2.0 ** -model.bits(np.array([*ctx, x]))[2] for x in range(256))
        assert total == pytest.approx(1.0, abs=1e-6)
    assert model.bits(wave_classes).mean() < 1.0 < 7.0 < model.bits(noise).mean()


def _sketch(path: Path) -> Path:
    notes = [Note(i * 240, p, (i + 1) * 240, 90) for i, p in enumerate([60, 64, 67, 72, 67, 64, 60, 64])]
    song = Song(
        resolution=480, tracks=[Track(name="s", program=0, notes=notes)], tempos=[TempoChange(0, 500000)]
    )
    write_midi(song, path)
    return path


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "musicgen_app", "audio", "continue", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=240,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
    )


def _wav(path: Path) -> tuple[int, int, int]:
    with wave.open(str(path)) as w:
        return w.getnframes(), w.getframerate(), w.getnchannels()


def test_cli_continues_a_midi_and_a_wav_sketch_with_the_shipped_model(tmp_path: Path) -> None:
    mid = _sketch(tmp_path / "sketch.mid")
    out = tmp_path / "out.wav"
    res = _run_cli(str(mid), "-o", str(out), "--seconds", "0.25")
    assert res.returncode == 0, res.stderr
    assert _wav(out) == (2000, 8000, 1)  # 0.25 s at the model's 8 kHz, mono
    assert "real-time factor" in res.stdout
    with wave.open(str(out)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    assert np.abs(samples).max() > 0  # sound, not silence
    # the generated audio as a WAV sketch: continued again
    out2 = tmp_path / "again.wav"
    res = _run_cli(str(out), "-o", str(out2), "--seconds", "0.05", "--seed", "3")
    assert res.returncode == 0, res.stderr
    assert _wav(out2) == (400, 8000, 1)


def test_cli_refuses_a_bad_value_with_one_line(tmp_path: Path) -> None:
    mid = _sketch(tmp_path / "sketch.mid")
    res = _run_cli(str(mid), "-o", str(tmp_path / "x.wav"), "--seconds", "-2")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--seconds" in lines[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "x.wav").exists()
    res = _run_cli(str(mid), "-o", str(tmp_path / "x.wav"), "--model", "melody-lstm")
    assert res.returncode != 0 and "does not continue raw audio" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def _model(net: rw.AudioWaveNet) -> rw.AudioWaveNetModel:
    return rw.AudioWaveNetModel("random", {}, Path("random"), net)


def test_the_stream_is_the_continuation_in_blocks_with_a_looped_condition() -> None:
    """Blocks of the stream joined are ``continue_audio``'s samples; a looped condition equals
    stepping the queues by hand frame by frame; a cancel stops before the next block."""
    net = _random_net(scale=1.0)
    cfg, m = net.cfg, _model(net)
    rng = np.random.default_rng(2)
    seed = rng.uniform(-0.5, 0.5, 700).astype(np.float32)
    roll = (rng.random((700 // cfg.hop + 2, cfg.cond_dim)) < 0.2).astype(np.float32)
    loop = (rng.random((3, cfg.cond_dim)) < 0.3).astype(np.float32)  # 3 frames, looped
    blocks = list(m.stream_audio(seed, roll, 1000, hold=loop, seed_rng=5, block=300))
    assert [len(b) for b in blocks] == [300, 300, 300, 100]
    joined = np.concatenate(blocks)
    np.testing.assert_array_equal(joined, m.continue_audio(seed, roll, 1000, hold=loop, seed_rng=5))
    # by hand: the same queues, the loop's frame (k // hop) % 3 for sample k
    fast = rw.FastAudioWaveNet(net)
    first = max(0, len(seed) - cfg.receptive_field)
    frame = np.minimum((np.arange(first, len(seed)) + 1) // cfg.hop, len(roll) - 1)
    logits = fast.prefill(rw.mu_law_encode(seed[first:]), roll[frame])
    r = np.random.default_rng(5)
    by_hand = []
    for k in range(1000):
        if k % cfg.hop == 0:
            fast.set_condition(loop[(k // cfg.hop) % 3])
        q = rw.sample_logits(logits, r)
        by_hand.append(q)
        logits = fast.step(q)
    np.testing.assert_array_equal(joined, rw.mu_law_decode(np.array(by_hand)))
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 2

    stream = m.stream_audio(seed, roll, 10_000, hold=loop, cancelled=cancelled, block=100)
    assert len(next(stream)) == 100 and len(next(stream)) == 100
    with pytest.raises(rw.GenerationError, match="cancelled"):
        next(stream)


def test_the_continuation_condition_is_the_sketch_last_bar() -> None:
    cfg = rw.AudioWaveNetConfig()
    # 120 bpm, 4/4: a bar is 2 s = 100 frames; bar 1: C E G quarters, bar 2: D F A C
    pitches = [60, 64, 67, 64, 62, 65, 69, 72]
    notes = [Note(i * 480, p, i * 480 + 400, 90) for i, p in enumerate(pitches)]
    song = Song(
        resolution=480, tracks=[Track(name="t", program=0, notes=notes)], tempos=[TempoChange(0, 500000)]
    )
    n = 4 * 8000  # the render: 4 s
    roll = rw.piano_roll(song, cfg, n)
    cond = rw.last_bar_condition(song, roll, cfg, n)
    assert cond.shape == (100, cfg.cond_dim)
    np.testing.assert_array_equal(cond, roll[100:200])
    assert set(np.flatnonzero(cond.any(axis=0)) + 36) == {62, 65, 69, 72}
    # a sketch whose last bar starts no note: its last sounding notes, held
    held_song = Song(
        resolution=480,
        tracks=[Track(name="t", program=0, notes=[Note(0, 60, 3840, 90)])],
        tempos=[TempoChange(0, 500000)],
    )
    roll2 = rw.piano_roll(held_song, cfg, n)
    held = rw.last_bar_condition(held_song, roll2, cfg, n)
    assert held.shape == (1, cfg.cond_dim) and set(np.flatnonzero(held[0]) + 36) == {60}
    # the first 1.4 s (1344 ticks) of the song: a note sounding at the cut ends there, later ones gone
    cut = rw.cut_song(song, 1.4)
    assert [(x.start_tick, x.end_tick) for x in cut.tracks[0].notes] == [(0, 400), (480, 880), (960, 1344)]


def test_pitch_statistics_count_the_diatonic_pitch_classes() -> None:
    from musicgen_app.ml.keys import Key

    stats = rw.pitch_stats([60, 62, 61, 71, 70], Key(0, "major"), 2.0)
    assert stats == {"notes": 5, "notes_per_second": 2.5, "in_key": 0.6}
    # A minor: G# (the raised 7th) counts as out of key, strictly
    assert rw.pitch_stats([68, 69], Key(9, "minor"), 1.0)["in_key"] == 0.5
    assert rw.pitch_stats([], Key(0, "major"), 1.0)["in_key"] is None


def test_the_shipped_model_card_names_paper_004() -> None:
    from musicgen_app.ml.registry import list_models

    infos = {m.name: m for m in list_models(task=None)}
    info = infos["audio-wavenet"]
    assert info.seed_paper == "004" and info.card["family"] == rw.FAMILY
    assert info.card["config"]["sample_rate"] == 8000
    c = info.card["metrics"]["continuations"]
    assert c["sketches"] == 20 and len(c["pieces"]) == 20


def test_training_runs_through_the_one_loop_and_learns_a_tone() -> None:
    """``train_audio_wavenet`` uses the families' loop: it validates every ``eval_every`` steps,
    keeps the best weights, and a sine's mu-law classes become much cheaper than uniform."""
    cfg = rw.AudioWaveNetConfig(channels=8, skip_channels=16, dilations=(1, 2, 4, 8))
    t = np.arange(6000) / cfg.sample_rate
    tone = rw.mu_law_encode(0.5 * np.sin(2 * np.pi * 220 * t))
    roll = np.zeros((len(tone) // cfg.hop + 1, cfg.cond_dim), np.float32)
    tracks = [rw.Track(tone, roll)]
    torch.set_num_threads(1)
    net, rep = rw.train_audio_wavenet(cfg, tracks, tracks, seconds=120, batch=2, length=256, eval_every=20,
                                      max_steps=120)  # fmt: skip
    assert rep.steps == 120
    assert [h[0] for h in rep.history] == [20, 40, 60, 80, 100, 120]
    assert rep.best_val_bits == min(h[2] for h in rep.history)
    assert rep.best_val_bits < 0.7 * 8  # uniform over 256 classes is 8 bits a sample
    assert rep.best_val_bits < rep.history[0][2] - 0.3  # it learns as it goes
    assert not net.training
