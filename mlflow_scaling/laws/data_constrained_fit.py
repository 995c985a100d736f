"""Fitting the data-constrained law (:mod:`data_constrained`) with intervals for R*_D, R*_N.

The method is the Chinchilla fit's (:mod:`fitting`), extended by two coordinates: the Huber
loss (δ = :data:`DEFAULT_HUBER_DELTA`) of the log-loss residuals, summed over runs, with

    log L̂ = logsumexp(a − α log N', b − β log D', e),

θ = (a, b, e, α, β, log R*_D, log R*_N), all runs (single- and multi-epoch) together.

Starts: the Chinchilla fit (Epoch's 4,500-start grid) of the runs with D' computed at the
paper's R*_D ≈ 15.4, its best distinct optima crossed with a grid of R*_D and R*_N; every start
is polished by L-BFGS-B in the Chinchilla fit's standardised coordinates, the best one kept.

When no run repeats its data (every D = U) the repetition terms cannot be identified: the
result is the Chinchilla fit of the same points, unchanged, and says so.

**The prior on R*.** A family's repeated runs often cannot tell R* apart from infinity (every
run well inside its first tens of epochs), and then an unpenalised fit lets R*_D run to its bound
and the law collapses to the fresh-data one. The fit therefore adds a log-normal prior centred
on the paper's constants (R*_D = 15.4, R*_N = 5.3, σ = :data:`DEFAULT_PRIOR_SIGMA` in log R*):

    Σ w·huber(r, δ) + δ·b·Σ_k (log R*_k − log R*_paper,k)² / (2σ²),

where b is the median |log residual| of the same law fitted without the prior (a first
pass). The Huber sum is about δ·Σ|r|, so this is the negative log posterior of a Laplace
likelihood of scale b, times δ·b: the penalty is weighed against the runs in the same units,
whatever their noise. Runs that pin R* down override it: families simulated with
(R*_D, R*_N) = (4, 40) and (60, 2) are recovered as (4.0, 39) and (59, 2.0). On the Misfitting
sweep, whose runs stay nearly fresh, it keeps the repetition terms finite instead of at the
bound (docs/decision-numbers.md). Its cost: a family whose repeats are exactly as good as fresh
data gets R*_D ≈ 400 rather than infinity (a 10 %-epoch count near 900), 2.5 % off at 128 epochs.
``prior_sigma=None`` fits without it.

Intervals: a bootstrap over runs (:func:`bootstrap.resample_weights`), each replicate refitted
by L-BFGS-B from the full fit's optimum; percentile intervals of R*_D, R*_N and the epoch
count 1 + R*_D·ln 10 (monotone in R*_D, so its interval is R*_D's mapped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize

from .bootstrap import _quantiles, resample_weights
from .data_constrained import (
    DataConstrainedLaw,
    check_unique_tokens,
    epochs_worth_fraction,
    log_effective,
    log_predict_constrained,
)
from .fitting import DEFAULT_HUBER_DELTA, ChinchillaFit, _Problem, fit_chinchilla, huber
from .validation import chinchilla_points

PAPER_R_STAR_D = 15.4
PAPER_R_STAR_N = 5.3
R_STAR_STARTS = (2.0, 15.0, 80.0)
LOG_R_STAR_BOUNDS = (math.log(1e-2), math.log(1e8))
"""R* beyond 1e8 repetitions is no discount at all for any run a family holds."""
_R_STAR_AT_BOUND = math.exp(LOG_R_STAR_BOUNDS[1]) * (1 - 1e-6)
"""An R* at least this is at its upper bound (the optimiser stops a hair below it)."""
EXPONENT_BOUNDS = (1e-3, 2.5)
"""α, β beyond Epoch's start grid (0–2) by a margin; an exponent at the bound is reported."""
DEFAULT_PRIOR_SIGMA = 0.25
"""Spread of the log-normal prior on R*_D and R*_N (log units: a factor e^0.25 ≈ 1.28 is 1σ),
chosen on the Misfitting splits (docs/decision-numbers.md): 0.25, 0.5, 1, 2 predicted runs of
more epochs from runs of ≤ 4 with 3.4, 4.4, 7.3, 9.8 % error (no prior: 12.4 %)."""
REPEAT_TOL = 1e-6
"""A run repeats its data when D/U − 1 exceeds this (float noise in U = D / epochs)."""


@dataclass(frozen=True)
class DataConstrainedFit:
    """The fitted law, whether its repetition terms were identified, and their intervals.

    ``identified`` is False when no run repeats its data: ``law`` then has R*_D = R*_N = ∞ and
    equals ``chinchilla``. ``r_star_n_identified`` is False when no run is larger than the
    compute-optimal size N_U for its unique tokens (nothing to discount).
    ``intervals`` maps r_star_d, r_star_n, epochs_worth_tenth (and E, A, B, alpha, beta) to
    (lo, hi) at ``level``; empty without a bootstrap.
    """

    law: DataConstrainedLaw
    chinchilla: ChinchillaFit
    identified: bool
    r_star_n_identified: bool
    objective: float
    n_points: int
    n_repeated: int
    huber_delta: float
    intervals: dict
    level: float
    n_boot: int
    prior_sigma: float | None = None
    without_prior: tuple[float, float] | None = None
    """(R*_D, R*_N) of the first, unpenalised pass: what the runs alone say."""

    @property
    def leans_on_prior(self) -> bool:
        """Whether R*_D is the prior's more than the runs': unpenalised, the runs put it at its
        bound or more than a factor e^σ away from the value reported. Bootstrap intervals then
        measure the runs' scatter around a value the prior chose, not how well the runs fix it."""
        if self.without_prior is None or self.prior_sigma is None or not self.identified:
            return False
        alone = self.without_prior[0]
        far = abs(math.log(alone / self.law.r_star_d)) > self.prior_sigma
        return alone >= _R_STAR_AT_BOUND or far

    @property
    def at_bound(self) -> tuple[str, ...]:
        """The repetition constants fitted at their upper bound: the runs show no discount there
        (a finite R* would fit worse), so the value is a floor, not an estimate."""
        if not self.identified:
            return ()
        pairs = (("r_star_d", self.law.r_star_d), ("r_star_n", self.law.r_star_n))
        return tuple(name for name, value in pairs if value >= _R_STAR_AT_BOUND)

    @property
    def epochs_worth_tenth(self) -> float:
        """1 + R*_D·ln 10 (∞ when not identified)."""
        return self.law.epochs_worth_tenth()

    def predict(self, n: ArrayLike, d: ArrayLike, u: ArrayLike) -> np.ndarray:
        """Loss of N parameters on D tokens from U unique ones (fresh-data law if unidentified)."""
        if not self.identified:
            return self.chinchilla.law.predict(n, d)
        return self.law.predict(n, d, u)

    def to_dict(self) -> dict:
        note = None if self.identified else (
            "every run is single-epoch: the repetition terms R*_D, R*_N were not identified; "
            "the law is the Chinchilla fit"
        )  # fmt: skip
        return {
            "law": "data_constrained",
            "identified": self.identified,
            "r_star_n_identified": self.r_star_n_identified,
            "at_bound": list(self.at_bound),
            "note": note,
            "params": self.law.to_dict() if self.identified else self.chinchilla.law.to_dict(),
            "epochs_worth_tenth": self.epochs_worth_tenth if self.identified else None,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "level": self.level,
            "n_boot": self.n_boot,
            "objective": self.objective,
            "n_points": self.n_points,
            "n_repeated": self.n_repeated,
            "huber_delta": self.huber_delta,
            "prior": None
            if self.prior_sigma is None or not self.identified
            else {
                "r_star_d": PAPER_R_STAR_D,
                "r_star_n": PAPER_R_STAR_N,
                "sigma_log": self.prior_sigma,
                "source": "Muennighoff et al. 2023",
                "without_prior": None
                if self.without_prior is None
                else {
                    "r_star_d": self.without_prior[0],
                    "r_star_n": self.without_prior[1],
                },
                "leans_on_prior": self.leans_on_prior,
            },
        }


def _validate(n, d, u, loss, runs):
    n, d, loss, _ = chinchilla_points(n, d, loss)
    return n, d, check_unique_tokens(d, u, runs), loss


class _Objective:
    """Σ w·huber(log L − log L̂) over runs, in the Chinchilla fit's standardised coordinates."""

    def __init__(self, n, d, u, loss, delta, prior_weight: float = 0.0):
        self.prob = _Problem.from_points(n, d, loss)
        self.logs = (np.log(n), np.log(d), np.log(u))
        self.t, self.delta = np.log(loss), delta
        self.prior_weight = prior_weight
        self.prior_centre = np.log([PAPER_R_STAR_D, PAPER_R_STAR_N])

    def bounds(self):
        s_n, s_d = self.prob.sigma
        lo, hi = EXPONENT_BOUNDS
        free = (None, None)
        return [free, free, free, (lo * s_n, hi * s_n), (lo * s_d, hi * s_d),
                LOG_R_STAR_BOUNDS, LOG_R_STAR_BOUNDS]  # fmt: skip

    def __call__(self, phi: np.ndarray, w: np.ndarray) -> float:
        theta = self.prob.to_user(phi)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            r = self.t - log_predict_constrained(theta, *self.logs)[0]
        value = float((w * huber(r, self.delta)).sum())
        if self.prior_weight:
            value += self.prior_weight * float(np.sum((theta[5:7] - self.prior_centre) ** 2))
        return value if np.isfinite(value) else 1e300

    def polish(self, theta0: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
        """L-BFGS-B from θ0 (user coordinates); returns (θ, objective)."""
        phi0 = self.prob.to_internal(np.asarray(theta0, dtype=float))
        res = minimize(self, phi0, args=(w,), method="L-BFGS-B", bounds=self.bounds(),
                       options={"ftol": 1e-13, "gtol": 1e-10, "maxiter": 2000})  # fmt: skip
        return self.prob.to_user(res.x), float(res.fun)


def _starts(n, d, u, loss, delta) -> np.ndarray:
    """Chinchilla optima on D'(R*_D = 15.4) crossed with the R* grid, as 7-column rows."""
    log_dp = log_effective(np.log(u), d / u - 1.0, math.log(PAPER_R_STAR_D))
    base = fit_chinchilla(n, np.exp(log_dp), loss, huber_delta=delta)
    optima = np.array(base.local_optima[:3]) if base.local_optima else base.law.log_params[None]
    optima[:, 3:5] = np.clip(optima[:, 3:5], 2 * EXPONENT_BOUNDS[0], EXPONENT_BOUNDS[1] / 2)
    grid = np.log(R_STAR_STARTS)
    rows = [np.r_[o, rd, rn] for o in optima for rd in grid for rn in grid]
    return np.array(rows)


def fit_data_constrained(
    n: ArrayLike,
    d: ArrayLike,
    unique_tokens: ArrayLike,
    loss: ArrayLike,
    *,
    runs: ArrayLike | None = None,
    huber_delta: float = DEFAULT_HUBER_DELTA,
    n_boot: int = 0,
    level: float = 0.95,
    seed: int = 0,
    prior_sigma: float | None = DEFAULT_PRIOR_SIGMA,
) -> DataConstrainedFit:
    """Fit L = E + A/N'^α + B/D'^β to runs (N, D, U, loss) (module docstring).

    ``runs`` label the runs for error messages and group points for the bootstrap (default:
    every point is its own run). ``n_boot`` > 0 adds bootstrap intervals at ``level``.
    ``prior_sigma`` is the spread of the log-normal prior on R*_D, R*_N (None: no prior).
    """
    n, d, u, loss = _validate(n, d, unique_tokens, loss, runs)
    chin = fit_chinchilla(n, d, loss, huber_delta=huber_delta)
    n_repeated = int(np.sum(d / u - 1.0 > REPEAT_TOL))
    if n_repeated == 0:
        inf = math.inf
        law = DataConstrainedLaw(**chin.law.to_dict(), r_star_d=inf, r_star_n=inf)
        return DataConstrainedFit(law, chin, False, False, chin.objective, int(n.size), 0,
                                  float(huber_delta), {}, level, 0)  # fmt: skip
    w = np.ones(n.size)
    obj = _Objective(n, d, u, loss, huber_delta)
    starts = _starts(n, d, u, loss, huber_delta)
    theta, value = min((obj.polish(s, w) for s in starts), key=lambda f: f[1])
    alone = None
    if prior_sigma is not None:
        alone = (float(np.exp(theta[5])), float(np.exp(theta[6])))
        obj = _Objective(n, d, u, loss, huber_delta, _prior_weight(obj, theta, prior_sigma))
        theta, value = min((obj.polish(s, w) for s in (theta, *starts)), key=lambda f: f[1])
    law = DataConstrainedLaw.from_log_params(theta)
    excess = bool(np.any(n > law.params_for_unique(u) * (1 + REPEAT_TOL)))
    intervals = {}
    if n_boot > 0:
        groups = np.arange(n.size) if runs is None else np.asarray(runs).ravel()
        thetas = _bootstrap(obj, theta, groups, n_boot, seed)
        intervals = _intervals(thetas, level)
    return DataConstrainedFit(law, chin, True, excess, value, int(n.size), n_repeated,
                              float(huber_delta), intervals, level, int(n_boot),
                              prior_sigma, alone)  # fmt: skip


def _prior_weight(obj: _Objective, theta: np.ndarray, sigma: float) -> float:
    """δ·b / (2σ²), b the median |log residual| of the unpenalised fit θ (module docstring)."""
    if not sigma > 0:
        raise ValueError(f"prior_sigma must be positive or None, got {sigma}")
    residuals = obj.t - log_predict_constrained(theta, *obj.logs)[0]
    return obj.delta * float(np.median(np.abs(residuals))) / (2.0 * sigma**2)


def _bootstrap(obj: _Objective, theta: np.ndarray, groups, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, 7) parameter rows refitted on run resamples from the full fit's optimum."""
    weights = resample_weights(groups, n_boot, np.random.default_rng(seed))
    return np.array([obj.polish(theta, w)[0] for w in weights])


def _intervals(thetas: np.ndarray, level: float) -> dict[str, tuple[float, float]]:
    """Percentile intervals of the parameters, R*_D, R*_N and the 10 %-epoch count."""
    q = _quantiles(level)
    samples = {
        "E": np.exp(thetas[:, 2]), "A": np.exp(thetas[:, 0]), "B": np.exp(thetas[:, 1]),
        "alpha": thetas[:, 3], "beta": thetas[:, 4],
        "r_star_d": np.exp(thetas[:, 5]), "r_star_n": np.exp(thetas[:, 6]),
    }  # fmt: skip
    samples["epochs_worth_tenth"] = epochs_worth_fraction(samples["r_star_d"])
    return {k: (float(np.quantile(v, q[0])), float(np.quantile(v, q[1])))
            for k, v in samples.items()}  # fmt: skip


__all__ = ["DataConstrainedFit", "fit_data_constrained"]
