"""Paper 002's style autoencoder: the network of its table, the rendered dataset, training, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from musicgen_app.cli.audio_dataset_cmd import fluidsynth_renderer
from musicgen_app.errors import CheckpointError, DatasetError, GenerationError
from musicgen_app.ml.audio import dataset as ads
from musicgen_app.ml.audio import restyle as rs
from musicgen_app.ml.audio.audio_file import resample
from musicgen_app.ml.audio.metrics import log_spectral_distance
from musicgen_app.ml.registry import list_models, load_model


def test_the_network_is_the_paper_table() -> None:
    net = rs.HilbertAutoencoder(rs.RestyleConfig())
    assert sum(p.numel() for p in net.parameters()) == 148_081  # "Total params: 148,081"
    assert rs.parameter_count(rs.RestyleConfig()) == 148_081
    x = torch.rand(1, 1, 256, 256)
    net.requires_grad_(False)
    assert net.encoder(x).shape == (1, 64, 32, 32)  # the bottleneck row of the table
    y = net(x)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1


def test_pictures_round_trip_in_both_layouts() -> None:
    x = np.random.default_rng(0).uniform(-1, 1, (2, rs.WINDOW)).astype(np.float32)
    for layout in ("hilbert", "linear"):
        pics = rs.to_pictures(x, layout)
        assert pics.shape == (2, 1, 256, 256) and float(pics.min()) >= 0 and float(pics.max()) <= 1
        assert np.allclose(rs.from_pictures(pics, layout), x, atol=1e-6)
    assert not torch.equal(rs.to_pictures(x, "hilbert"), rs.to_pictures(x, "linear"))


def test_log_spectral_distance() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal(16000).astype(np.float32) * 0.1
    assert log_spectral_distance(a, a) == 0.0
    assert log_spectral_distance(a, 0.5 * a) == pytest.approx(20 * np.log10(2), abs=0.01)  # 6 dB everywhere
    t = np.arange(16000) / 16000
    low, high = np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 3000 * t)
    assert log_spectral_distance(low, high) > log_spectral_distance(low, low + 0.01 * high)
    # a 3 kHz tone is outside the lowest quarter of the band (0 to 2 kHz): only the tails differ
    assert log_spectral_distance(low, low + high, band=0.25) < 0.2 * log_spectral_distance(low, low + high)
    with pytest.raises(ValueError, match="band"):
        log_spectral_distance(low, low, band=0)


def test_resampling_keeps_a_tone_where_it_was() -> None:
    t = np.arange(44100) / 44100
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    y = resample(x, 44100, 16000)
    assert len(y) == 16000
    assert abs(int(np.argmax(np.abs(np.fft.rfft(y)))) - 1000) <= 1  # 1 Hz bins
    assert abs(np.sqrt(np.mean(y**2)) - np.sqrt(np.mean(x**2))) < 0.01
    assert np.array_equal(resample(x, 16000, 16000), x)


def _tiny_pieces() -> list[ads.Piece]:
    chord = [(0, 8, 60), (0, 8, 64), (8, 8, 67), (16, 16, 72)]
    tune = [(i * 2, 2, p) for i, p in enumerate([67, 69, 71, 72, 74, 72, 71, 69])]
    return [
        ads.Piece("test/chords", "chorales", ads._song(chord, 84, "chords")),
        ads.Piece("test/tune", "essen", ads._song(tune, 112, "tune")),
    ]


def test_dataset_renders_every_piece_on_every_instrument(tmp_path: Path) -> None:
    ds = ads.build_audio_dataset(
        fluidsynth_renderer(8000), sample_rate=8000, folder=tmp_path / "audio", source_pieces=_tiny_pieces()
    )
    assert len(ds) == 2 and set(ds.instruments) == {"piano", "guitar", "strings", "organ"}
    for i in range(2):
        renders = {name: ds.audio(name, i) for name in ds.instruments}
        assert len({len(a) for a in renders.values()}) == 1  # aligned sample for sample
        for a in renders.values():
            assert abs(float(np.max(np.abs(a))) - 10 ** (-1 / 20)) < 0.01  # peak -1 dBFS
        # the same notes on different instruments sound different
        assert log_spectral_distance(renders["piano"], renders["organ"]) > 3
    again = ads.load_audio_dataset(8000, folder=tmp_path / "audio")
    assert again.pieces == ds.pieces and again.stats()["pieces"] == 2
    assert ads.split_of("chorales/bwv66.6") == ads.split_of("chorales/bwv66.6")
    (tmp_path / "audio" / "organ.npy").write_bytes(b"damaged")
    with pytest.raises(DatasetError, match="damaged"):
        ads.load_audio_dataset(8000, folder=tmp_path / "audio")
    with pytest.raises(DatasetError, match="not built yet"):
        ads.load_audio_dataset(8000, folder=tmp_path / "nothing")


def test_train_save_load_and_restyle(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(2)
    audio = [rng.uniform(-0.5, 0.5, 70000).astype(np.float32) for _ in range(2)]
    config = rs.RestyleConfig(layout="linear", widths=(2, 2, 2, 2))
    net, report = rs.train_autoencoder(config, audio, audio[:1], seconds=0.5, batch=2, eval_every=1)
    assert report.steps >= 1 and report.history and np.isfinite(report.best_val_mse)
    card = rs.new_card(config, "tiny")
    path = rs.save_restyler(net, card, tmp_path / "tiny.safetensors")
    model = rs.as_restyler(load_model(path), "tiny")
    assert model.network.config == config and model.target == "piano"
    x = audio[0][:50000]
    y = model.restyle(x)
    assert y.shape == x.shape and np.all(np.isfinite(y))
    assert 0 < float(np.max(np.abs(y))) <= float(np.max(np.abs(x))) * (1 + 1e-5)
    assert model.restyle(np.zeros(0, np.float32)).shape == (0,)
    seen: list[tuple[int, int]] = []
    model.restyle(x, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] >= 1  # windows, reported as they finish
    with pytest.raises(GenerationError, match="cancelled"):
        model.restyle(x, cancelled=lambda: True)
    # a second run goes on from the saved weights and never ends worse than it started
    _, again = rs.train_autoencoder(
        config, audio, audio[:1], seconds=0.3, batch=2, eval_every=1, start=model.network
    )
    assert again.best_val_mse <= report.best_val_mse * (1 + 1e-4)
    # a restyler is not offered as a music generator, but `musicgen models` lists it
    assert list_models(tmp_path) == [] and [m.name for m in list_models(tmp_path, task=None)] == ["tiny"]
    # a card asking for a bad network is refused before anything is built
    cpath = tmp_path / "tiny.json"
    bad = json.loads(cpath.read_text())
    bad["config"]["widths"] = [2, 2, 2]
    cpath.write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match="tiny"):
        load_model(path)


def test_the_training_lsd_is_the_evaluation_metric_of_restyled_output() -> None:
    """The lsd loss on a network's pictures equals ``log_spectral_distance`` of what ``restyle``
    would make of them (mean removed, peak matched), in both layouts; training with it runs and
    keeps its best validation value."""
    rng = np.random.default_rng(4)
    t = np.arange(rs.WINDOW) / 16000
    target = (0.4 * np.sin(2 * np.pi * 330 * t) * np.exp(-2 * t)).astype(np.float32)
    other = (0.3 * np.sign(np.sin(2 * np.pi * 330 * t)) + 0.02 * rng.standard_normal(rs.WINDOW)).astype(
        np.float32
    )
    for layout in ("hilbert", "linear"):
        pics = rs.to_pictures(np.stack([other, target]), layout)
        back = rs.pictures_to_samples(pics, layout)
        np.testing.assert_allclose(back.numpy(), np.stack([other, target]), atol=1e-6)
        loss = float(rs.lsd_loss(back[:1], torch.from_numpy(target)[None]))
        made = other - other.mean()
        made = made * (np.abs(target).max() / np.abs(made).max())
        assert loss == pytest.approx(log_spectral_distance(made, target), rel=1e-4)
        assert float(rs.lsd_loss(back[1:], torch.from_numpy(target)[None])) < 0.01
    torch.set_num_threads(1)
    audio = [rng.uniform(-0.5, 0.5, 70000).astype(np.float32) for _ in range(2)]
    config = rs.RestyleConfig(layout="hilbert", widths=(2, 2, 2, 2))
    _, report = rs.train_autoencoder(config, audio, audio[:1], seconds=0.5, batch=2, eval_every=1, loss="lsd")
    assert report.steps >= 1 and 0 < report.best_val_mse < 100  # dB, not a picture MSE
    with pytest.raises(ValueError, match="unknown loss"):
        rs.train_autoencoder(config, audio, audio[:1], seconds=0.1, loss="l1")


def test_the_residual_variant_is_the_same_network_and_starts_as_the_identity(tmp_path: Path) -> None:
    """Residual: the same convolutions and parameter count as the paper's table (the skip adds
    none); before training its correction is zero, so restyled audio is the input (each window
    less its own mean); a card from before variants loads as the paper's network; an unknown
    variant is refused with the model's name."""
    paper, residual = rs.RestyleConfig(), rs.RestyleConfig(variant="residual")
    net = rs.HilbertAutoencoder(residual)
    assert sum(p.numel() for p in net.parameters()) == rs.parameter_count(residual) == 148_081
    assert [k for k in net.state_dict()] == [k for k in rs.HilbertAutoencoder(paper).state_dict()]
    x = (0.5 * np.sin(np.arange(100_000) * 0.03)).astype(np.float32)
    np.testing.assert_allclose(rs.restyle(net, x), x, atol=3e-3)
    torch.nn.init.normal_(net.decoder[7].weight, std=1.0)  # a correction: output moves, peak kept
    y = rs.restyle(net, x)
    assert np.abs(y - x).max() > 0.05 and float(np.abs(y).max()) <= float(np.abs(x).max()) * (1 + 1e-5)
    old = rs.new_card(paper, "old")
    del old["config"]["variant"]  # as cards were written before variants
    assert rs.config_from_card(old, "old") == paper
    assert "residual" in rs.new_card(residual, "res")["title"]
    bad = rs.new_card(residual, "res")
    bad["config"]["variant"] = "skip"
    with pytest.raises(CheckpointError, match="res"):
        rs.config_from_card(bad, "res")


def test_paired_windows_stay_aligned_and_paired_training_runs() -> None:
    """A (2, T) track (another instrument over its piano render) is cut at the same place in both;
    a paired run (half the batch from pairs, the output scaled to the input's peak) trains and
    keeps a finite best validation value; the lsd loss scaled to a given peak is the metric of
    the output scaled to that peak."""
    rng = np.random.default_rng(9)
    piano = rng.uniform(-0.5, 0.5, 90_000).astype(np.float32)
    pair = np.stack([piano[::-1] * 0.25, piano])  # the "instrument": piano reversed, quieter
    both = rs.random_windows([pair], 3, rng)
    assert both.shape == (3, 2, rs.WINDOW)
    for a, b in zip(both[:, 0], both[:, 1], strict=True):  # cut at the same place in both
        at = int(np.flatnonzero(piano == b[0])[0])
        np.testing.assert_array_equal(a, piano[::-1][at : at + rs.WINDOW] * 0.25)
    assert rs.fixed_windows([pair]).shape == (2, 2, rs.WINDOW)
    src, tgt = both[:1, 0], both[:1, 1]
    peak = torch.from_numpy(np.abs(src).max(axis=1, keepdims=True))
    made = tgt[0] - tgt[0].mean()
    made = made * (np.abs(src).max() / np.abs(made).max())
    loss = float(rs.lsd_loss(torch.from_numpy(tgt), torch.from_numpy(tgt), peak))
    assert loss == pytest.approx(log_spectral_distance(made, tgt[0]), rel=1e-4) and loss > 1.0
    torch.set_num_threads(1)
    config = rs.RestyleConfig(layout="hilbert", widths=(2, 2, 2, 2), variant="residual")
    _, report = rs.train_autoencoder(
        config, [piano], [piano], seconds=0.5, batch=2, eval_every=1, loss="lsd", augment=True,
        pairs=[pair], val_pairs=[pair], paired_share=0.5,
    )  # fmt: skip
    assert report.steps >= 1 and 0 < report.best_val_mse < 100
    with pytest.raises(ValueError, match="paired_share"):
        rs.train_autoencoder(config, [piano], [piano], seconds=0.1, pairs=[pair], paired_share=2.0)


def test_augmented_piano_stays_piano_shaped_but_moves_away_and_trains_back() -> None:
    """Denoising training's inputs: each window keeps its length and peak, the same seed gives the
    same changes, the changes move windows away from the clean one (log-spectral distance),
    p=0 changes nothing; training with them runs."""
    t = np.arange(rs.WINDOW) / 16000
    harmonics = sum(np.sin(2 * np.pi * 262 * k * t) / k**2 for k in range(1, 6))
    tone = (0.5 * harmonics * np.exp(-1.5 * (t % 1.0))).astype(np.float32)
    windows = np.stack([tone, 0.5 * tone[::-1].copy(), tone * 0.2, tone])
    a = rs.augment_windows(windows, np.random.default_rng(7))
    b = rs.augment_windows(windows, np.random.default_rng(7))
    assert a.shape == windows.shape and a.dtype == np.float32 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.abs(a).max(axis=1), np.abs(windows).max(axis=1), rtol=1e-4)
    moved = [log_spectral_distance(x, y) for x, y in zip(a, windows, strict=True)]
    assert max(moved) > 1.0 and min(moved) >= 0.0, moved
    np.testing.assert_allclose(
        rs.augment_windows(windows, np.random.default_rng(1), p=0.0), windows, atol=1e-6
    )
    everything = rs.augment_windows(windows, np.random.default_rng(3), p=1.0)
    assert min(log_spectral_distance(x, y) for x, y in zip(everything, windows, strict=True)) > 1.0
    torch.set_num_threads(1)
    audio = [tone, 0.5 * tone]
    config = rs.RestyleConfig(layout="linear", widths=(2, 2, 2, 2))
    _, denoise = rs.train_autoencoder(
        config, audio, audio[:1], seconds=0.3, batch=2, eval_every=1, loss="lsd", augment=True
    )
    assert denoise.steps >= 1 and 0 < denoise.best_val_mse < 100


def test_dead_channels_come_back_without_changing_the_output() -> None:
    """A channel killed (never above zero) is found, given fresh weights that make it active, and
    its outgoing weights are zeroed so that the network's output is the same as before."""
    torch.manual_seed(0)
    net = rs.HilbertAutoencoder(rs.RestyleConfig(layout="linear", widths=(4, 4, 4, 4)))
    bottleneck = net.encoder[9]
    with torch.no_grad():
        bottleneck.weight[1] = 0.0
        bottleneck.bias[1] = -1.0  # channel 1 of the bottleneck is dead
    windows = np.random.default_rng(5).uniform(-0.5, 0.5, (4, rs.WINDOW)).astype(np.float32)
    pics = rs.to_pictures(windows, "linear")
    with torch.no_grad():
        before = net(pics)
    counts = rs.revive_dead_channels(net, windows)
    assert counts["encoder.9"] == 1 and sum(counts.values()) >= 1
    with torch.no_grad():
        after = net(pics)
        torch.testing.assert_close(after, before)
        assert float(net.encoder(pics)[:, 1].max()) > 0  # alive again
    assert sum(p.numel() for p in net.parameters()) == rs.parameter_count(net.config)
    assert rs.revive_dead_channels(net, windows)["encoder.9"] == 0


RESTYLERS = [m for m in list_models(task="restyle")]


@pytest.mark.parametrize("info", RESTYLERS, ids=[m.name for m in RESTYLERS])
def test_shipped_restylers_are_verified_like_every_checkpoint(info, tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file

    from musicgen_app.ml import checkpoint_verify as cv

    assert info.seed_paper == "002" and info.card["family"] == rs.FAMILY
    record = info.card["weights"]
    assert (record["sha256"], record["bytes"]) == cv.file_digest(info.path)
    stored = sum(t.numel() for t in load_file(str(info.path)).values())
    assert cv.validate_config(*cv.card_config(info.card, info.name), info.name) == stored == 148_081
    assert info.path.stat().st_size < 2_000_000  # a small checkpoint
    for ext in (".json", ".safetensors"):
        shutil.copy(info.path.with_suffix(ext), tmp_path / f"{info.name}{ext}")
    assert cv.rehash_cards(tmp_path, load=load_model) == []  # up to date
    copy = tmp_path / f"{info.name}.safetensors"
    data = bytearray(copy.read_bytes())
    data[-5] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="changed or damaged"):
        load_model(copy)


class _SamePicture(torch.nn.Module):
    """A stand-in network that returns its picture (to check the windowing arithmetic alone)."""

    def __init__(self, layout: str) -> None:
        super().__init__()
        self.config = rs.RestyleConfig(layout=layout)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return img


@pytest.mark.parametrize("layout", ["hilbert", "linear"])
def test_windows_join_end_to_end_without_loss(layout: str) -> None:
    """Through a network that changes nothing, restyling gives the audio back: windows cover every
    sample once, their crossfades sum to one, each keeps its input's level."""
    rng = np.random.default_rng(7)
    x = (0.5 * np.sin(np.arange(150_000) * 0.05) + 0.05 * rng.standard_normal(150_000)).astype(np.float32)
    y = rs.restyle(_SamePicture(layout), x)  # type: ignore[arg-type]
    assert y.shape == x.shape
    # each window loses its own mean (a few thousandths here), nothing else
    np.testing.assert_allclose(y, x, atol=6e-3)
    assert np.abs(y - x).mean() < 2e-3
    # one window, mostly padding: its mean removed over the whole window, scaled to its peak
    short = x[:1000]
    r = np.concatenate([short, np.zeros(rs.WINDOW - 1000, np.float32)])
    r = r - r.mean()
    expected = (r * (np.abs(short).max() / np.abs(r).max()))[:1000]
    np.testing.assert_allclose(rs.restyle(_SamePicture(layout), short), expected, atol=1e-5)  # type: ignore[arg-type]
