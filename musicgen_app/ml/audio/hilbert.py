"""Paper 002's Hilbert-curve layout of audio: 4**k samples <-> a 2**k x 2**k image (numpy only).

The paper's encoder is "a recursive function that expects a 4^x number of samples, divides them
equally into four groups and calls itself with each group, then places the resulting 4 matrices
to their corresponding position, while rotating and mirroring the bottom 2". :func:`hilbert_encode`
is that function: the four groups are encoded by one recursive call (as a batch), then placed

* group 0 in the bottom-left quadrant, mirrored across its anti-diagonal (starts in the corner),
* group 1 top-left and group 2 top-right, as they are,
* group 3 in the bottom-right quadrant, mirrored across its main diagonal (ends in the corner),

so that the path of every level runs bottom-left -> top-left -> top-right -> bottom-right and
consecutive samples always land on neighbouring pixels (a Hilbert curve): 65,536 samples become a
256 x 256 picture in which a small convolution kernel sees samples that are close in time.
:func:`hilbert_decode` reverses it exactly (a bijection: no sample is lost or moved).

:func:`linear_encode` / :func:`linear_decode` are the plain row-major layout (256 consecutive samples
per row), the baseline the paper's claim is measured against. Every function works on the last
axis (or last two), so a batch of windows is encoded in one call. Arrays are row 0 at the top.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache

import numpy as np

logger = logging.getLogger(__name__)

LAYOUTS = ("hilbert", "linear")


def side_of(n: int) -> int:
    """The image side for ``n`` samples: ``2**k`` when ``n == 4**k`` (ValueError otherwise)."""
    if n < 1 or n & (n - 1) or (n.bit_length() - 1) % 2:
        raise ValueError(f"the Hilbert layout needs 4**k samples, not {n}")
    return 1 << ((n.bit_length() - 1) // 2)


def hilbert_encode(x: np.ndarray) -> np.ndarray:
    """``(..., 4**k)`` samples -> ``(..., 2**k, 2**k)`` image along a Hilbert curve (paper 002)."""
    n = x.shape[-1]
    side = side_of(n)
    if side == 1:
        return x.reshape(*x.shape[:-1], 1, 1)
    q = n // 4
    groups = hilbert_encode(x.reshape(*x.shape[:-1], 4, q))  # (..., 4, side/2, side/2)
    first, second, third, fourth = (groups[..., i, :, :] for i in range(4))
    top = np.concatenate([second, third], axis=-1)
    bottom = np.concatenate([_anti_transpose(first), _transpose(fourth)], axis=-1)
    return np.concatenate([top, bottom], axis=-2)


def hilbert_decode(img: np.ndarray) -> np.ndarray:
    """The inverse of :func:`hilbert_encode`: ``(..., 2**k, 2**k)`` -> ``(..., 4**k)``."""
    side = img.shape[-1]
    if img.shape[-2] != side:
        raise ValueError(f"the Hilbert layout needs a square image, not {img.shape[-2]} x {side}")
    side_of(side * side)
    if side == 1:
        return img.reshape(*img.shape[:-2], 1)
    h = side // 2
    first = _anti_transpose(img[..., h:, :h])  # both mirrors are their own inverse
    second = img[..., :h, :h]
    third = img[..., :h, h:]
    fourth = _transpose(img[..., h:, h:])
    groups = np.stack([first, second, third, fourth], axis=-3)  # (..., 4, h, h)
    return hilbert_decode(groups).reshape(*img.shape[:-2], side * side)


def _transpose(a: np.ndarray) -> np.ndarray:
    """Mirror across the main diagonal (top-left to bottom-right)."""
    return np.swapaxes(a, -1, -2)


def _anti_transpose(a: np.ndarray) -> np.ndarray:
    """Mirror across the anti-diagonal (bottom-left to top-right)."""
    return np.swapaxes(a, -1, -2)[..., ::-1, ::-1]


def linear_encode(x: np.ndarray) -> np.ndarray:
    """``(..., side**2)`` samples -> ``(..., side, side)`` row by row (the baseline layout)."""
    n = x.shape[-1]
    side = round(n**0.5)
    if side * side != n:
        raise ValueError(f"the linear layout needs a square number of samples, not {n}")
    return x.reshape(*x.shape[:-1], side, side)


def linear_decode(img: np.ndarray) -> np.ndarray:
    """The inverse of :func:`linear_encode`."""
    return img.reshape(*img.shape[:-2], img.shape[-2] * img.shape[-1])


def _codec(layout: str) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    if layout == "hilbert":
        return hilbert_encode, hilbert_decode
    if layout == "linear":
        return linear_encode, linear_decode
    raise ValueError(f"unknown layout {layout!r} (choose from {', '.join(LAYOUTS)})")


def encode(x: np.ndarray, layout: str) -> np.ndarray:
    """Samples -> image in ``layout`` (``hilbert`` or ``linear``)."""
    return _codec(layout)[0](x)


def decode(img: np.ndarray, layout: str) -> np.ndarray:
    """Image -> samples: the inverse of :func:`encode`."""
    return _codec(layout)[1](img)


@lru_cache(maxsize=8)
def hilbert_positions(n: int) -> np.ndarray:
    """``(n, 2)`` int array: the (row, column) where sample ``i`` of ``n`` lands."""
    side = side_of(n)
    where = hilbert_encode(np.arange(n, dtype=np.int64))
    pos = np.empty((n, 2), dtype=np.int64)
    rows, cols = np.divmod(np.arange(n), side)
    pos[where.ravel()] = np.stack([rows, cols], axis=1)
    pos.setflags(write=False)
    return pos
