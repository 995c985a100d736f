"""Checks of the points every fitter takes: finite, positive, and not infinity in disguise."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

# MLflow's SQL stores keep an infinite metric as the largest double (1.797e308): a value that
# large is an infinity in disguise, never a measurement.
FLOAT_LIMIT = float(np.finfo(float).max)


def positive_finite(values: ArrayLike, name: str, *, item: str = "index") -> np.ndarray:
    """``values`` as a flat float array; raises ``ValueError`` naming the first bad entry.

    A value is bad when it is not finite, not > 0, or at the float limit. The message reads
    ``"{name} must be positive and finite; {item} 3 has {name}=-1.0 (2 bad values)"``.
    """
    arr = np.asarray(values, dtype=float).ravel()
    bad = np.flatnonzero(~np.isfinite(arr) | (arr <= 0) | (arr >= FLOAT_LIMIT))
    if bad.size:
        i = int(bad[0])
        at_limit = np.isfinite(arr[i]) and arr[i] >= FLOAT_LIMIT
        note = " (the float limit: an infinity as a database stores it)" if at_limit else ""
        raise ValueError(
            f"{name} must be positive and finite; {item} {i} has {name}={float(arr[i])!r}{note}"
            + (f" ({bad.size} bad values)" if bad.size > 1 else "")
        )
    return arr


def unit_exponent(values: np.ndarray, low: float, high: float, centre: float) -> int:
    """k such that ``values`` are fitted in units of 10**k: 0 while the log10 of their geometric
    mean lies in [low, high] (results stay in the caller's units), else the k that brings it to
    ``centre``. Fitting far from 1 (values near 1e300) would overflow a law's coefficients."""
    mean = float(np.mean(np.log10(values)))
    return 0 if low <= mean <= high else int(round(mean - centre))


def chinchilla_points(n, d, loss, weights=None):
    """(N, D, loss, weights) checked for a Chinchilla fit: equal lengths, positive and finite,
    at least 5 points and 2 distinct sizes and token counts; weights default to ones."""
    arrays = [np.asarray(v, dtype=float).ravel() for v in (n, d, loss)]
    if len({a.size for a in arrays}) != 1:
        raise ValueError(f"N, D and loss must have equal lengths, got {[a.size for a in arrays]}")
    arrays = [
        positive_finite(a, name, item="row")
        for a, name in zip(arrays, ("N", "D", "loss"), strict=True)
    ]
    if arrays[0].size < 5:
        raise ValueError(f"the Chinchilla law has 5 parameters; got only {arrays[0].size} points")
    for name, arr, what in (("N", arrays[0], "model sizes"), ("D", arrays[1], "token counts")):
        if np.unique(arr).size < 2:
            raise ValueError(
                f"the Chinchilla law needs at least 2 distinct {what}; every point has "
                f"{name}={arr[0]:.4g}, so its exponent cannot be fitted"
            )
    w = np.ones(arrays[0].size) if weights is None else np.asarray(weights, dtype=float)
    return (*arrays, w)
