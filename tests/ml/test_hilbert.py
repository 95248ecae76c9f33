"""Paper 002's Hilbert layout: a lossless bijection whose neighbours in time are neighbours in space."""

from __future__ import annotations

import numpy as np
import pytest

from musicgen_app.ml.audio import hilbert


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, 8])
def test_hilbert_layout_is_a_lossless_bijection(k: int) -> None:
    n = 4**k
    img = hilbert.hilbert_encode(np.arange(n))
    assert img.shape == (2**k, 2**k)
    assert sorted(img.ravel().tolist()) == list(range(n))  # every sample exactly once
    x = np.random.default_rng(k).standard_normal((3, n)).astype(np.float32)
    assert np.array_equal(hilbert.hilbert_decode(hilbert.hilbert_encode(x)), x)  # bit-exact, batched
    assert np.array_equal(hilbert.linear_decode(hilbert.linear_encode(x)), x)


def test_the_paper_picture_of_16_samples() -> None:
    # level 1 runs bottom-left -> top-left -> top-right -> bottom-right; the bottom two quadrants
    # are mirrored so that each starts where the previous one ended
    assert hilbert.hilbert_encode(np.arange(16)).tolist() == [
        [5, 6, 9, 10],
        [4, 7, 8, 11],
        [3, 2, 13, 12],
        [0, 1, 14, 15],
    ]


def test_consecutive_samples_are_neighbouring_pixels_on_256x256() -> None:
    pos = hilbert.hilbert_positions(65536)
    steps = np.abs(np.diff(pos, axis=0)).sum(axis=1)
    assert steps.max() == 1  # a continuous curve: every step moves to a 4-neighbour
    assert pos[0].tolist() == [255, 0] and pos[-1].tolist() == [255, 255]
    # the linear layout jumps 255 columns at every row end; the curve never does
    lin = np.stack(np.divmod(np.arange(65536), 256), axis=1)
    assert np.abs(np.diff(lin, axis=0)).sum(axis=1).max() == 256


@pytest.mark.parametrize("n", [0, 2, 8, 32, 65535, 65537])
def test_refuses_a_count_that_is_not_a_power_of_four(n: int) -> None:
    with pytest.raises(ValueError, match="4\\*\\*k"):
        hilbert.hilbert_encode(np.zeros(n))


def test_encode_by_layout_name() -> None:
    x = np.arange(64.0)
    for layout in hilbert.LAYOUTS:
        assert np.array_equal(hilbert.decode(hilbert.encode(x, layout), layout), x)
    with pytest.raises(ValueError, match="unknown layout"):
        hilbert.encode(x, "spiral")
