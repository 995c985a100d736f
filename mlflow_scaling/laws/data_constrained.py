"""The data-constrained scaling law: repeated tokens and excess parameters are worth less.

After Muennighoff et al. 2023 ("Scaling Data-Constrained Language Models"). A run sees D
tokens in all, drawn from U unique tokens; N is its parameter count. The law is Chinchilla's
with N and D replaced by effective values,

    L(N, D, U) = E + A / N'^α + B / D'^β.

**Effective data.** R_D = D/U − 1 is the number of repetitions (epochs beyond the first):

    D' = U + U·R*_D·(1 − e^(−R_D/R*_D)).

A repeated token is worth e^(−R_D/R*_D) of a fresh one (dD'/dD = e^(−R_D/R*_D)), and D'
saturates at U·(1 + R*_D). With R_D = 0 (one epoch) D' = D.

**Effective parameters.** U_N is the largest model that U unique tokens can feed: the
compute-optimal size of the base law for D = U tokens (for C = 6ND,
N_U = (α·A·U^β / (β·B))^(1/α), the N whose optimal token count is U), capped at N, so
U_N = min(N_U, N). R_N = N/U_N − 1 ≥ 0 counts the parameters beyond it, in multiples of U_N:

    N' = U_N + U_N·R*_N·(1 − e^(−R_N/R*_N)).

A model no larger than N_U has N' = N. With R*_D, R*_N → ∞ the law is the Chinchilla law.

**The worth of one more epoch.** dD'/dD = e^(−R/R*) falls below 10 % when R > R*·ln 10, so
one more epoch is worth less than a tenth of fresh data after 1 + R*_D·ln 10 epochs
(:func:`epochs_worth_fraction`).

The fit lives in :mod:`data_constrained_fit`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from .allocation import FLOPS_PER_PARAM_TOKEN, compute_optimal
from .chinchilla import ChinchillaLaw, log_predict
from .validation import positive_finite

WORTH_FRACTION = 0.1
"""One more epoch is 'worth less than fresh data' below this fraction of a fresh token."""


def epochs_worth_fraction(r_star: ArrayLike, fraction: float = WORTH_FRACTION) -> np.ndarray:
    """Epochs after which one more epoch is worth less than ``fraction`` of fresh data.

    dD'/dD = e^(−R/R*) = fraction ⇔ R = R*·ln(1/fraction); epochs = 1 + R (for 10 %:
    1 + R*·ln 10). Infinite R* gives infinity (repeats never lose value).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    return 1.0 + np.asarray(r_star, dtype=float) * math.log(1.0 / fraction)


def log_effective(log_unique: np.ndarray, repetitions: np.ndarray, log_r_star) -> np.ndarray:
    """log of U + U·R*·(1 − e^(−R/R*)) = log U + log1p(R*·(−expm1(−R/R*))), stable for all R*.

    ``log_r_star`` = +inf means repeats are as good as fresh: the result is log(U·(1 + R)).
    """
    r_star = np.exp(np.asarray(log_r_star, dtype=float))
    with np.errstate(over="ignore", invalid="ignore"):
        gain = np.where(np.isinf(r_star), repetitions, r_star * -np.expm1(-repetitions / r_star))
    return log_unique + np.log1p(gain)


def log_params_for_unique(theta: np.ndarray, log_u: np.ndarray) -> np.ndarray:
    """log N_U, the compute-optimal size for U tokens: (log α + a + β log U − log β − b)/α.

    ``theta`` is (..., ≥5) in the order (a, b, e, α, β, …); broadcasts against ``log_u``.
    """
    a, b, alpha, beta = (np.asarray(theta, float)[..., i, None] for i in (0, 1, 3, 4))
    return (np.log(alpha) + a + beta * log_u - np.log(beta) - b) / alpha


def log_effective_inputs(theta: np.ndarray, log_n, log_d, log_u):
    """(log N', log D') for rows θ = (a, b, e, α, β, log R*_D, log R*_N) (module docstring)."""
    theta = np.asarray(theta, dtype=float)
    log_d_prime = log_effective(log_u, np.expm1(log_d - log_u), theta[..., 5, None])
    log_un = np.minimum(log_params_for_unique(theta, log_u), log_n)
    log_n_prime = log_effective(log_un, np.expm1(log_n - log_un), theta[..., 6, None])
    return log_n_prime, log_d_prime


def log_predict_constrained(theta: np.ndarray, log_n, log_d, log_u) -> np.ndarray:
    """log L̂ = logsumexp(a − α log N', b − β log D', e) for rows of 7 parameters."""
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    log_np, log_dp = log_effective_inputs(theta, log_n, log_d, log_u)
    rows = [log_predict(t[:5], ln, ld) for t, ln, ld in zip(theta, log_np, log_dp, strict=True)]
    return np.array(rows)


def check_unique_tokens(d: ArrayLike, u: ArrayLike, runs=None, tol: float = 1e-9) -> np.ndarray:
    """U as a float array; raises naming the run when U is missing, ≤ 0 or more than D.

    ``runs`` (optional labels, one per point) name the culprit; else its row index is named.
    A run cannot see more unique tokens than tokens: U ≤ D·(1 + ``tol``).
    """
    d = np.asarray(d, dtype=float).ravel()
    u_arr = np.asarray(u, dtype=float).ravel()
    if u_arr.size != d.size:
        raise ValueError(f"unique tokens have {u_arr.size} entries for {d.size} runs")
    labels = None if runs is None else [str(r) for r in np.asarray(runs).ravel()]
    bad = np.flatnonzero(~np.isfinite(u_arr) | (u_arr <= 0))
    if bad.size:
        raise ValueError(_culprit("unique tokens must be positive and finite", bad, u_arr, labels))
    more = np.flatnonzero(u_arr > d * (1 + tol))
    if more.size:
        i = int(more[0])
        raise ValueError(
            _culprit("unique tokens cannot exceed tokens", more, u_arr, labels)
            + f"; its tokens D={d[i]:.6g}"
        )
    return u_arr


def _culprit(what: str, bad: np.ndarray, values: np.ndarray, labels) -> str:
    i = int(bad[0])
    who = f"row {i}" if labels is None else f"run {labels[i]!r}"
    extra = f" ({bad.size} bad values)" if bad.size > 1 else ""
    return f"{what}; {who} has unique tokens U={float(values[i])!r}{extra}"


@dataclass(frozen=True)
class DataConstrainedLaw:
    """L = E + A/N'^α + B/D'^β with effective N', D' (module docstring).

    ``r_star_d`` / ``r_star_n`` = ``math.inf`` means that term does not discount (fresh data,
    no excess-parameter penalty): the law is then Chinchilla's.
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    r_star_d: float
    r_star_n: float

    @property
    def base(self) -> ChinchillaLaw:
        """The law with unlimited fresh data (U → ∞): Chinchilla's."""
        return ChinchillaLaw(E=self.E, A=self.A, B=self.B, alpha=self.alpha, beta=self.beta)

    @property
    def log_params(self) -> np.ndarray:
        """(a, b, e, α, β, log R*_D, log R*_N), the fitting coordinates."""
        return np.concatenate([self.base.log_params, np.log([self.r_star_d, self.r_star_n])])

    @classmethod
    def from_log_params(cls, theta: ArrayLike) -> DataConstrainedLaw:
        t = np.asarray(theta, dtype=float)
        base = ChinchillaLaw.from_log_params(t[:5])
        return cls(**base.to_dict(), r_star_d=float(np.exp(t[5])), r_star_n=float(np.exp(t[6])))

    def effective(self, n: ArrayLike, d: ArrayLike, u: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """(N', D') for runs of N parameters on D tokens from U unique tokens (broadcasts)."""
        n, d, u = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (n, d, u)))
        log_np, log_dp = log_effective_inputs(
            self.log_params, np.log(n.ravel()), np.log(d.ravel()), np.log(u.ravel())
        )
        return np.exp(log_np).reshape(n.shape), np.exp(log_dp).reshape(n.shape)

    def predict(self, n: ArrayLike, d: ArrayLike, u: ArrayLike) -> np.ndarray:
        """Predicted loss for N parameters trained on D tokens drawn from U unique tokens."""
        n_prime, d_prime = self.effective(n, d, u)
        return self.base.predict(n_prime, d_prime)

    def params_for_unique(self, u: ArrayLike) -> np.ndarray:
        """N_U: the compute-optimal model size for U tokens (6ND; module docstring)."""
        log_u = np.log(np.asarray(u, dtype=float))
        return np.exp(log_params_for_unique(self.log_params, log_u.ravel())).reshape(log_u.shape)

    def epochs_worth_tenth(self) -> float:
        """1 + R*_D·ln 10: after this many epochs one more is worth < 10 % of fresh data."""
        return float(epochs_worth_fraction(self.r_star_d))

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class DataBudgetAllocation:
    """The best model size and epochs for compute ``flops`` and ``unique_tokens`` U.

    ``loss_given_up`` = loss − ``unlimited_loss``: what the finite corpus costs against the
    compute-optimal run on unlimited fresh data (the base law's optimum).
    """

    flops: float
    unique_tokens: float
    n_opt: float
    d_opt: float
    epochs: float
    loss: float
    unlimited_n_opt: float
    unlimited_d_opt: float
    unlimited_loss: float

    @property
    def loss_given_up(self) -> float:
        return self.loss - self.unlimited_loss

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "loss_given_up": self.loss_given_up}


_DECADES = 4.0
_GRID = 161


def allocate_with_unique_tokens(
    law: DataConstrainedLaw,
    flops: float,
    unique_tokens: float,
    flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN,
) -> DataBudgetAllocation:
    """argmin over N of L(N, D = C/(k·N), U): the best size, epochs D/U and the loss.

    One-dimensional in log N: a grid of ±4 decades around the unlimited-data optimum, then a
    bounded Brent search in the best cell. With D < U only D unique tokens are seen, so the
    run is one (partial) epoch of fresh data: U_seen = min(U, D).
    """
    from scipy.optimize import minimize_scalar

    c = float(positive_finite([flops], "flops")[0])
    u = float(positive_finite([unique_tokens], "unique_tokens")[0])
    free = compute_optimal(law.base, [c], flops_per_param_token)
    n0 = float(free.n_opt[0])

    def loss_at(log_n):
        n = np.exp(np.asarray(log_n, dtype=float))
        d = c / (flops_per_param_token * n)
        return law.predict(n, d, np.minimum(u, d))

    grid = np.log(n0) + np.linspace(-_DECADES, _DECADES, _GRID) * math.log(10)
    best = int(np.argmin(loss_at(grid)))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, _GRID - 1)]
    res = minimize_scalar(lambda x: float(loss_at(x)), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-10})  # fmt: skip
    n_opt = float(np.exp(res.x))
    d_opt = c / (flops_per_param_token * n_opt)
    return DataBudgetAllocation(
        flops=c, unique_tokens=u, n_opt=n_opt, d_opt=d_opt, epochs=d_opt / u,
        loss=float(loss_at(res.x)), unlimited_n_opt=n0, unlimited_d_opt=float(free.d_opt[0]),
        unlimited_loss=float(free.loss[0]),
    )  # fmt: skip
