"""Uncertainty for the Chinchilla fit: a bootstrap over runs, refitted all at once.

Each replicate resamples *runs* (groups of points) with replacement; the resample is a vector
of integer weights on the points, so all replicates are refitted together by the batched
optimiser in :mod:`fitting`, each started from the full-data optima.

A replicate is *degenerate* when it cannot determine the law: fewer distinct points than the
law's 5 parameters, a non-finite objective or parameters, or exponents that are not positive
and below :data:`MAX_EXPONENT`. Small families have many: their share is reported
(:attr:`BootstrapFit.degenerate_share`), and the intervals keep every replicate, so they are as
wide as the data honestly allows rather than narrowed by dropping the bad draws.

Prediction intervals beyond the trained range are widened by the family's own extrapolation
error when a calibration is attached (:mod:`extrapolation`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from .allocation import compute_optimal
from .chinchilla import PARAM_NAMES, ChinchillaLaw, log_predict
from .compute_axis import ComputeAxis
from .extrapolation import ExtrapolationCalibration
from .fitting import (
    DEFAULT_HUBER_DELTA,
    HUBER_AUTO,
    ChinchillaFit,
    _distinct,
    fit_chinchilla,
    refit_batch,
)

DERIVED_NAMES = ("a", "b")
MAX_EXPONENT = 5.0
DEGENERATE_WARNING = 0.1
N_LAW_PARAMS = 5


def resample_weights(groups: ArrayLike, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, P) point weights: each row draws the groups (runs) with replacement."""
    _, index = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = int(index.max()) + 1
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot)
    return counts[:, index].astype(float)


@dataclass(frozen=True)
class BootstrapFit:
    """A point fit together with its bootstrap replicates (parameter rows a, b, e, α, β)."""

    fit: ChinchillaFit
    thetas: np.ndarray
    residuals: np.ndarray
    n_groups: int
    seed: int
    degenerate: np.ndarray | None = None
    calibration: ExtrapolationCalibration | None = None

    @property
    def degenerate_share(self) -> float:
        """Share of replicates that could not determine the law (module docstring)."""
        return 0.0 if self.degenerate is None else float(self.degenerate.mean())

    def with_calibration(self, calibration: ExtrapolationCalibration | None) -> BootstrapFit:
        """The same replicates, with prediction intervals widened by ``calibration``."""
        return replace(self, calibration=calibration)

    def interval_method(self) -> str:
        """In words: what made the prediction intervals."""
        base = f"bootstrap over runs ({self.n_boot} replicates"
        if self.degenerate_share:
            base += f", {self.degenerate_share:.0%} underdetermined"
        base += ")"
        if self.calibration is None:
            return base + " plus in-sample residuals; extrapolation error not included"
        return base + "; " + self.calibration.describe()

    def uncertainty_dict(self) -> dict:
        """The bootstrap's health and the interval method, for fit.json."""
        out = {
            "n_boot": self.n_boot,
            "degenerate_share": self.degenerate_share,
            "interval_method": self.interval_method(),
            "extrapolation": None if self.calibration is None else self.calibration.to_dict(),
        }
        if self.degenerate_share > DEGENERATE_WARNING:
            out["warning"] = (
                f"{self.degenerate_share:.0%} of bootstrap replicates cannot determine the "
                f"5-parameter law (too few distinct runs, or no positive exponents): the family "
                f"is too small for precise intervals; they are kept wide on purpose"
            )
        return out

    @property
    def n_boot(self) -> int:
        return int(self.thetas.shape[0])

    def laws(self) -> ChinchillaLaw:
        """All replicate laws as one batched law with (R, 1) parameter arrays."""
        t = self.thetas
        return ChinchillaLaw(
            E=np.exp(t[:, 2:3]), A=np.exp(t[:, 0:1]), B=np.exp(t[:, 1:2]),
            alpha=t[:, 3:4], beta=t[:, 4:5],
        )  # fmt: skip

    def samples(self) -> dict[str, np.ndarray]:
        """Replicate values of E, A, B, alpha, beta and the allocation exponents a, b."""
        t = self.thetas
        out = {
            "E": np.exp(t[:, 2]),
            "A": np.exp(t[:, 0]),
            "B": np.exp(t[:, 1]),
            "alpha": t[:, 3],
            "beta": t[:, 4],
        }
        out["a"] = out["beta"] / (out["alpha"] + out["beta"])
        out["b"] = out["alpha"] / (out["alpha"] + out["beta"])
        return out

    def confidence_intervals(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Percentile intervals for every parameter and allocation exponent."""
        q = _quantiles(level)
        return {
            k: (float(np.quantile(v, q[0])), float(np.quantile(v, q[1])))
            for k, v in self.samples().items()
        }

    def predict_interval(
        self, n: ArrayLike, d: ArrayLike, level: float = 0.95, kind: str = "prediction"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point prediction and (lo, hi) for the loss at (n, d).

        ``kind="confidence"`` covers the fitted mean law only; ``kind="prediction"`` (default)
        adds the scatter of a single run: each replicate's log-prediction is shifted by a
        residual of the full fit drawn at random, so the interval is where a new run lands.
        """
        if kind not in ("prediction", "confidence"):
            raise ValueError(f"kind must be 'prediction' or 'confidence', got {kind!r}")
        n = np.atleast_1d(np.asarray(n, dtype=float))
        d = np.atleast_1d(np.asarray(d, dtype=float))
        n, d = np.broadcast_arrays(n, d)
        logs = log_predict(self.thetas, np.log(n.ravel()), np.log(d.ravel()))
        if kind == "prediction":
            rng = np.random.default_rng(self.seed + 1)
            logs = logs + rng.choice(self.residuals, size=logs.shape)
        q = _quantiles(level)
        lo, hi = np.quantile(np.exp(logs), q, axis=0)
        point = self.fit.law.predict(n.ravel(), d.ravel())
        if kind == "prediction" and self.calibration is not None:
            lo, hi = self.calibration.widen(point, lo, hi, n.ravel(), d.ravel(), level)
        return point.reshape(n.shape), lo.reshape(n.shape), hi.reshape(n.shape)

    def allocation_intervals(
        self, flops: ArrayLike, level: float = 0.95, axis: ComputeAxis | None = None
    ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(point, lo, hi) of N_opt, D_opt and the optimal loss for each budget on ``axis``."""
        point = compute_optimal(self.fit.law, flops, axis=axis)
        batch = compute_optimal(self.laws(), flops, axis=axis)
        q = _quantiles(level)
        out = {}
        for name in ("n_opt", "d_opt", "loss"):
            lo, hi = np.quantile(getattr(batch, name), q, axis=0)
            out[name] = (getattr(point, name), lo, hi)
        if self.calibration is not None:  # the optimum's loss beyond the data: widen it too
            mid, lo, hi = out["loss"]
            out["loss"] = (
                mid,
                *self.calibration.widen(mid, lo, hi, point.n_opt, point.d_opt, level),
            )
        return out


def _quantiles(level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    return (1 - level) / 2, 1 - (1 - level) / 2


def bootstrap_chinchilla(
    n: ArrayLike,
    d: ArrayLike,
    loss: ArrayLike,
    *,
    groups: ArrayLike | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    huber_delta: float | str = DEFAULT_HUBER_DELTA,
    fit: ChinchillaFit | None = None,
    n_starts: int = 3,
) -> BootstrapFit:
    """Fit the law and ``n_boot`` replicates that resample runs (``groups``, default: points).

    Pass ``fit`` to reuse an existing full-data fit. Each replicate starts from the
    ``n_starts`` best distinct optima of the full fit.
    """
    n, d, loss = (np.asarray(v, dtype=float).ravel() for v in (n, d, loss))
    groups = np.arange(n.size) if groups is None else np.asarray(groups).ravel()
    if groups.size != n.size:
        raise ValueError(f"groups has {groups.size} entries for {n.size} points")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if fit is None:
        fit = fit_chinchilla(n, d, loss, huber_delta=huber_delta)
    if huber_delta == HUBER_AUTO:  # replicates use the point fit's resolved δ
        huber_delta = fit.huber_delta
    optima = np.array(fit.local_optima) if fit.local_optima else fit.law.log_params[None]
    starts = optima[_distinct(optima, np.arange(len(optima), dtype=float), n_starts)]
    rng = np.random.default_rng(seed)
    weights = resample_weights(groups, n_boot, rng)
    thetas, objectives = refit_batch(n, d, loss, weights, starts, huber_delta=huber_delta)
    residuals = np.log(loss) - log_predict(fit.law.log_params, np.log(n), np.log(d))
    return BootstrapFit(
        fit=fit,
        thetas=thetas,
        residuals=residuals.ravel(),
        n_groups=int(np.unique(groups).size),
        seed=seed,
        degenerate=degenerate_replicates(thetas, objectives, weights),
    )


def degenerate_replicates(thetas: np.ndarray, objectives: np.ndarray, weights: np.ndarray):
    """Boolean per replicate: it cannot determine the law (module docstring)."""
    distinct = (weights > 0).sum(axis=1)
    alpha, beta = thetas[:, 3], thetas[:, 4]
    sane = (
        np.isfinite(objectives)
        & np.all(np.isfinite(thetas), axis=1)
        & (alpha > 0)
        & (beta > 0)
        & (alpha < MAX_EXPONENT)
        & (beta < MAX_EXPONENT)
    )
    return (distinct < N_LAW_PARAMS) | ~sane


__all__ = ["PARAM_NAMES", "BootstrapFit", "bootstrap_chinchilla", "resample_weights"]
