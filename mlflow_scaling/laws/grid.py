"""The starting points of the Chinchilla fit: Epoch's grid of 4,500 starts (Besiroglu et al.
2024, after Hoffmann et al. 2022 App. D), and the same grid read in the data's own units when
the data lies far from language-model scales."""

from __future__ import annotations

import itertools

import numpy as np

from .validation import unit_exponent


def epoch_grid() -> np.ndarray:
    """Epoch's 4,500 starts as rows (a, b, e, alpha, beta).

    α, β ∈ {0, 0.5, …, 2}, e ∈ {−1, −0.5, …, 1}, a, b ∈ {0, 5, …, 25}.
    """
    alphas = np.arange(0.0, 2.01, 0.5)
    es = np.arange(-1.0, 1.01, 0.5)
    abs_ = np.arange(0.0, 25.01, 5.0)
    rows = [
        (a, b, e, alpha, beta)
        for alpha, beta, e, a, b in itertools.product(alphas, alphas, es, abs_, abs_)
    ]
    return np.array(rows, dtype=float)


# Epoch's grid was laid out for language-model runs: N and D between ~1e3 and ~1e15 and losses
# between ~1e-3 and ~1e3 (geometric means). Data far outside is fitted from the same grid laid
# out in units of a power of ten that brings it to these centres (see grid_in_data_units).
GRID_RANGES = {"N": (3.0, 15.0, 9.0), "D": (3.0, 15.0, 11.0), "loss": (-3.0, 3.0, 0.0)}


def grid_in_data_units(grid: np.ndarray, n, d, loss) -> np.ndarray:
    """Starts (a, b, e, α, β) read in units of 10^k N, 10^m D and 10^j loss, in plain units.

    L/s_L = E' + A'/(N/s_N)^α + B'/(D/s_D)^β is L = s_L·E' + s_L·s_N^α·A'/N^α + …, so
    a = a' + α·log s_N + log s_L, b = b' + β·log s_D + log s_L, e = e' + log s_L.
    For data within :data:`GRID_RANGES` every scale is 1 and the grid is Epoch's.
    """
    ln10 = np.log(10.0)
    log_sn, log_sd, log_sl = (
        ln10 * unit_exponent(v, *GRID_RANGES[k]) for v, k in ((n, "N"), (d, "D"), (loss, "loss"))
    )
    out = np.array(grid, dtype=float, copy=True)
    out[:, 0] += out[:, 3] * log_sn + log_sl
    out[:, 1] += out[:, 4] * log_sd + log_sl
    out[:, 2] += log_sl
    return out
