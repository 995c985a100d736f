"""One JSON-ready summary of a Chinchilla fit: the law, intervals, allocation and predictions.

Shared by the CLI (``mlflow-scaling fit``) and the refit job (``scaling/fit.json``), so the two
always report the same numbers under the same keys.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .laws.allocation import allocation_exponents, compute_optimal
from .laws.bootstrap import BootstrapFit, bootstrap_chinchilla
from .laws.compute_axis import ComputeAxis
from .laws.extrapolation import calibrate_extrapolation
from .laws.fitting import DEFAULT_HUBER_DELTA, ChinchillaFit, fit_chinchilla


def summarize_chinchilla(
    n: ArrayLike,
    d: ArrayLike,
    loss: ArrayLike,
    *,
    groups: ArrayLike | None = None,
    huber_delta: float | str = DEFAULT_HUBER_DELTA,
    n_boot: int = 1000,
    level: float = 0.95,
    budgets: ArrayLike = (),
    targets: tuple[ArrayLike, ArrayLike] | None = None,
    seed: int = 0,
    fit: ChinchillaFit | None = None,
    axis: ComputeAxis | None = None,
    calibrate: bool = True,
) -> tuple[dict, BootstrapFit | None]:
    """Fit, bootstrap (when ``n_boot`` > 0) and summarise. Returns (summary, bootstrap).

    Pass ``fit`` to reuse a fit of the same points (the scaling check makes one) instead of
    fitting again. ``axis`` is the family's compute axis (default 6ND); budgets are on it.
    With ``calibrate`` (default) the bootstrap's prediction intervals beyond the trained range
    include the family's measured extrapolation error (:mod:`laws.extrapolation`).
    """
    axis = axis or ComputeAxis.six_nd()
    if fit is None:
        fit = fit_chinchilla(n, d, loss, huber_delta=huber_delta)
    a, b = allocation_exponents(fit.law)
    out = fit.to_dict()
    out["allocation"] = {"a": float(a), "b": float(b)}
    out["compute_axis"] = axis.to_dict()
    boot = None
    if n_boot > 0:
        boot = bootstrap_chinchilla(
            n, d, loss, groups=groups, n_boot=n_boot, seed=seed, fit=fit, huber_delta=huber_delta
        )
        if calibrate:
            boot = boot.with_calibration(
                calibrate_extrapolation(n, d, loss, fit=fit, axis=axis, huber_delta=huber_delta)
            )
        out["uncertainty"] = boot.uncertainty_dict()
        ci = boot.confidence_intervals(level)
        out["ci"] = {k: list(v) for k, v in ci.items() if k not in ("a", "b")}
        out["allocation"]["ci"] = {k: list(ci[k]) for k in ("a", "b")}
        out["ci_level"] = level
        out["n_boot"] = n_boot
    budgets = np.atleast_1d(np.asarray(budgets, dtype=float))
    if budgets.size:
        out["budgets"] = budget_rows(fit.law, budgets, boot, level, axis)
    if targets is not None:
        out["predictions"] = prediction_rows(fit.law, targets[0], targets[1], boot, level)
    return out, boot


def budget_rows(
    law, budgets: np.ndarray, boot: BootstrapFit | None, level: float, axis: ComputeAxis | None
) -> list[dict]:
    """Compute-optimal allocation and loss per budget (on ``axis``), with interval bounds when
    bootstrapped."""
    rows = compute_optimal(law, budgets, axis=axis).rows()
    if boot is not None:
        intervals = boot.allocation_intervals(budgets, level, axis)
        for i, row in enumerate(rows):
            for name, key in (("loss", ""), ("n_opt", "n_opt_"), ("d_opt", "d_opt_")):
                row[f"{key}lo"] = float(intervals[name][1][i])
                row[f"{key}hi"] = float(intervals[name][2][i])
    else:
        for row in rows:
            row["lo"] = row["hi"] = None
    return rows


def prediction_rows(
    law, n: ArrayLike, d: ArrayLike, boot: BootstrapFit | None, level: float
) -> list[dict]:
    """Predicted loss per (N, D) target, with prediction-interval bounds when bootstrapped."""
    n, d = np.broadcast_arrays(np.atleast_1d(n).astype(float), np.atleast_1d(d).astype(float))
    point = law.predict(n, d)
    lo = hi = [None] * n.size
    method = None
    if boot is not None:
        _, lo, hi = boot.predict_interval(n, d, level=level, kind="prediction")
        method = boot.interval_method()
    return [
        {
            "N": float(ni),
            "D": float(di),
            "loss": float(p),
            "lo": None if l_ is None else float(l_),
            "hi": None if h_ is None else float(h_),
            "interval": method,
        }
        for ni, di, p, l_, h_ in zip(n, d, point, lo, hi, strict=True)
    ]
