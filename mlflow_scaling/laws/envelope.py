"""Approach 1: the envelope of training curves (Hoffmann et al. 2022, §3.1).

From loss-versus-FLOPs curves of several model sizes, take at each FLOP level the lowest loss
any size reaches and the size that reaches it; fit N_opt ∝ C^a (and D_opt ∝ C^b with
D = C / (6N)) through those points.

Caveat from the paper: with a cosine schedule an intermediate checkpoint of a long run is not
the final loss of a shorter run. Feed final points of runs of several lengths, or curves whose
schedules match their length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Envelope:
    """The lowest loss per FLOP level, the size that reaches it, and the fitted exponents."""

    flops: np.ndarray
    loss: np.ndarray
    n_opt: np.ndarray
    a: float
    b: float
    n_coefficient: float
    n_fit_points: int

    def predict_n_opt(self, flops: ArrayLike) -> np.ndarray:
        return self.n_coefficient * np.asarray(flops, dtype=float) ** self.a

    def to_dict(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "n_coefficient": self.n_coefficient,
            "n_fit_points": self.n_fit_points,
            "flops": self.flops.tolist(),
            "loss": self.loss.tolist(),
            "n_opt": self.n_opt.tolist(),
        }


def training_curve_envelope(
    n: ArrayLike,
    flops: ArrayLike,
    loss: ArrayLike,
    curve: ArrayLike,
    *,
    n_grid: int = 200,
) -> Envelope:
    """Approach 1 from points of several curves.

    ``n``, ``flops`` and ``loss`` give each point's model size, cumulative FLOPs and loss;
    ``curve`` names the curve (run) it belongs to. Each curve is interpolated linearly in
    (log C, log L) on a shared log grid, only within its own FLOP range. Grid levels whose
    winner is the smallest or largest size are left out of the power-law fit: there the true
    optimum may lie beyond the sizes tried.
    """
    n, flops, loss = (np.asarray(v, dtype=float).ravel() for v in (n, flops, loss))
    curve = np.asarray(curve).ravel()
    if not (n.size == flops.size == loss.size == curve.size):
        raise ValueError("n, flops, loss and curve must have equal lengths")
    for name, arr in (("n", n), ("flops", flops), ("loss", loss)):
        bad = np.flatnonzero(~np.isfinite(arr) | (arr <= 0))
        if bad.size:
            raise ValueError(
                f"{name} must be positive and finite; point {int(bad[0])} has {arr[bad[0]]!r}"
            )
    ids = np.unique(curve)
    if ids.size < 2:
        raise ValueError(f"the envelope needs curves of at least 2 model sizes, got {ids.size}")
    grid = np.geomspace(flops.min(), flops.max(), n_grid)
    logg = np.log(grid)
    curves = np.full((ids.size, n_grid), np.inf)
    sizes = np.empty(ids.size)
    for i, cid in enumerate(ids):
        sel = curve == cid
        size = np.unique(n[sel])
        if size.size != 1:
            raise ValueError(f"curve {cid!r} mixes model sizes {size.tolist()}")
        sizes[i] = size[0]
        order = np.argsort(flops[sel])
        lc, ll = np.log(flops[sel][order]), np.log(loss[sel][order])
        inside = (logg >= lc[0]) & (logg <= lc[-1])
        curves[i, inside] = np.exp(np.interp(logg[inside], lc, ll))
    best = np.argmin(curves, axis=0)
    env_loss = curves[best, np.arange(n_grid)]
    covered = np.isfinite(env_loss)
    n_opt = np.where(covered, sizes[best], np.nan)
    interior = covered & (n_opt > sizes.min()) & (n_opt < sizes.max())
    if np.unique(n_opt[interior]).size < 2:
        raise ValueError(
            "the envelope's optimal size changes too little inside the sizes tried to fit "
            "N_opt(C); train a wider range of sizes or longer curves"
        )
    a, log_k = np.polyfit(logg[interior], np.log(n_opt[interior]), 1)
    return Envelope(
        flops=grid[covered],
        loss=env_loss[covered],
        n_opt=n_opt[covered],
        a=float(a),
        b=float(1.0 - a),
        n_coefficient=float(np.exp(log_k)),
        n_fit_points=int(interior.sum()),
    )
