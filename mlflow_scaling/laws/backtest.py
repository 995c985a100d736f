"""Backtest: fit on the smaller models, predict the held-out larger ones.

The error is the mean absolute relative error on the held-out points (ARE, as in Choshen et
al. 2024, "A Hitchhiker's Guide to Scaling Law Estimation"); coverage is the share of held-out
losses inside their bootstrap prediction intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .bootstrap import bootstrap_chinchilla
from .extrapolation import calibrate_extrapolation
from .fitting import DEFAULT_HUBER_DELTA, ChinchillaFit, fit_chinchilla


@dataclass(frozen=True)
class Backtest:
    """Held-out predictions of a law fitted on models smaller than ``split_n``."""

    split_n: float
    fit: ChinchillaFit
    n: np.ndarray
    d: np.ndarray
    actual: np.ndarray
    predicted: np.ndarray
    lo: np.ndarray | None
    hi: np.ndarray | None
    level: float

    @property
    def relative_errors(self) -> np.ndarray:
        return np.abs(self.actual - self.predicted) / self.actual

    @property
    def mean_abs_relative_error(self) -> float:
        return float(self.relative_errors.mean())

    @property
    def max_abs_relative_error(self) -> float:
        return float(self.relative_errors.max())

    @property
    def coverage(self) -> float | None:
        if self.lo is None or self.hi is None:
            return None
        return float(np.mean((self.actual >= self.lo) & (self.actual <= self.hi)))

    def to_dict(self) -> dict:
        return {
            "split_n": self.split_n,
            "n_train": self.fit.n_points,
            "n_test": int(self.actual.size),
            "mean_abs_relative_error": self.mean_abs_relative_error,
            "max_abs_relative_error": self.max_abs_relative_error,
            "coverage": self.coverage,
            "level": self.level,
            "params": self.fit.law.to_dict(),
        }


def backtest_chinchilla(
    n: ArrayLike,
    d: ArrayLike,
    loss: ArrayLike,
    *,
    split_n: float,
    groups: ArrayLike | None = None,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    huber_delta: float | str = DEFAULT_HUBER_DELTA,
    calibrate: bool = True,
) -> Backtest:
    """Fit on points with N < ``split_n``; predict those with N ≥ ``split_n``.

    With ``n_boot > 0`` the held-out points also get prediction intervals, and the result
    reports their coverage; with ``calibrate`` (default) the intervals include the extrapolation
    error measured inside the training part (:mod:`extrapolation`).
    """
    n, d, loss = (np.asarray(v, dtype=float).ravel() for v in (n, d, loss))
    train = n < split_n
    if train.sum() < 5 or (~train).sum() < 1:
        raise ValueError(
            f"backtest split at N={split_n:g} leaves {int(train.sum())} training and "
            f"{int((~train).sum())} held-out points; need at least 5 and 1"
        )
    g = None if groups is None else np.asarray(groups).ravel()[train]
    fit = fit_chinchilla(n[train], d[train], loss[train], huber_delta=huber_delta)
    predicted = fit.law.predict(n[~train], d[~train])
    lo = hi = None
    if n_boot > 0:
        boot = bootstrap_chinchilla(
            n[train], d[train], loss[train], groups=g, n_boot=n_boot, seed=seed, fit=fit,
            huber_delta=huber_delta,
        )  # fmt: skip
        if calibrate:
            boot = boot.with_calibration(
                calibrate_extrapolation(
                    n[train], d[train], loss[train], fit=fit, huber_delta=huber_delta
                )
            )
        _, lo, hi = boot.predict_interval(n[~train], d[~train], level=level)
    return Backtest(
        split_n=float(split_n),
        fit=fit,
        n=n[~train],
        d=d[~train],
        actual=loss[~train],
        predicted=predicted,
        lo=lo,
        hi=hi,
        level=level,
    )
