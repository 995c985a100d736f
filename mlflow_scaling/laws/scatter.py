"""How runs scatter: which values are one value (budgets, model sizes, token counts), and the
robust scale of residuals. One home for both rules.

**One size.** Model sizes (and token counts) within :data:`SIZE_TOLERANCE_DECADES` = 0.01
decade (about 2 %) of each other are one size: :func:`size_labels` labels them with the kernel
density rule of :func:`cluster_log_values` at that bandwidth, and :func:`count_sizes` counts
them. Compute budgets use the same rule at a wider bandwidth (``isoflop.group_by_budget``).

**Robust scale.** σ̂ = 1.4826·MAD (median absolute deviation from the median): the standard
deviation of Gaussian residuals, unmoved by a few outliers (:func:`robust_scale`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.signal import fftconvolve

SIZE_TOLERANCE_DECADES = 0.01
"""Sizes within about 2 % of each other are one size (the scaling check, the analysis, the
family listings, the compute axis)."""
MAD_TO_SIGMA = 1.4826
"""1 / Φ⁻¹(3/4): the MAD of a Gaussian times this is its standard deviation."""


def robust_scale(residuals: ArrayLike) -> float:
    """1.4826·MAD: the standard deviation of Gaussian residuals, unmoved by a few outliers."""
    r = np.asarray(residuals, dtype=float)
    return float(MAD_TO_SIGMA * np.median(np.abs(r - np.median(r))))


def size_labels(n: ArrayLike) -> np.ndarray:
    """Labels 0, 1, … (in increasing size) of values that are one size (module docstring)."""
    return cluster_log_values(n, SIZE_TOLERANCE_DECADES)


def count_sizes(n: ArrayLike) -> int:
    """How many distinct sizes the values hold (0 for none)."""
    return int(np.unique(size_labels(n)).size) if np.size(n) else 0


# The kernel density is tabulated on a grid of bandwidth / _BINS_PER_BANDWIDTH steps; values
# more than _REACH bandwidths apart do not interact (their kernels overlap by < e^-32).
_BINS_PER_BANDWIDTH = 16
_REACH = 8


def _climb(density: np.ndarray) -> np.ndarray:
    """For every grid index, the local maximum of ``density`` reached by steepest ascent."""
    index = np.arange(density.size)
    left = np.concatenate([[-np.inf], density[:-1]])
    right = np.concatenate([density[1:], [-np.inf]])
    step = np.where(right > np.maximum(left, density), 1, np.where(left > density, -1, 0))
    target = index + step
    while True:  # pointer jumping: O(log length) rounds
        jumped = target[target]
        if np.array_equal(jumped, target):
            return target
        target = jumped


def cluster_log_values(values: ArrayLike, bandwidth_decades: float = 0.05) -> np.ndarray:
    """Label values that are the same up to scatter (compute budgets, model sizes).

    Each value climbs to a mode of a Gaussian kernel density of log10(value) (kernel width
    ``bandwidth_decades``); values that reach the same mode share a label, and modes closer than
    half a bandwidth are one. Exactly planned values (1e18, 3e18, …) form one group each;
    values read off a figure, with a few percent of scatter, still group by the value they
    were meant to have. Labels are 0, 1, … in increasing order.

    The density is tabulated on a grid of bandwidth/16 steps (by FFT convolution of the binned
    counts) over each stretch of values closer than 8 bandwidths, and each value climbs on
    that grid: O(n log n) in time and memory, never a values × values matrix.
    """
    logv = np.log10(np.asarray(values, dtype=float)).ravel()
    if logv.size == 0:
        return np.zeros(0, dtype=int)
    step = bandwidth_decades / _BINS_PER_BANDWIDTH
    pad = _REACH * _BINS_PER_BANDWIDTH
    kernel = np.exp(-0.5 * (np.arange(-pad, pad + 1) / _BINS_PER_BANDWIDTH) ** 2)
    order = np.argsort(logv, kind="stable")
    sorted_v = logv[order]
    modes = np.empty(logv.size)
    cuts = np.flatnonzero(np.diff(sorted_v) > _REACH * bandwidth_decades) + 1
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, logv.size], strict=True):
        stretch = sorted_v[lo:hi]
        bins = np.round((stretch - stretch[0]) / step).astype(int) + pad
        counts = np.bincount(bins, minlength=bins[-1] + pad + 1).astype(float)
        density = fftconvolve(counts, kernel, mode="same")
        modes[order[lo:hi]] = stretch[0] + (_climb(density)[bins] - pad) * step
    by_mode = np.argsort(modes, kind="stable")
    jumps = np.diff(modes[by_mode]) > bandwidth_decades / 2
    labels = np.empty(logv.size, dtype=int)
    labels[by_mode] = np.concatenate([[0], np.cumsum(jumps)])
    return labels
