"""Step 2 of the downstream chain: accuracy as a sigmoid of the task loss.

``acc(L) = b + a/(1 + e^(k(L − L0))) = b + a·σ(k·(L0 − L))`` with ``σ(z) = 1/(1 + e^(−z))``:
near the floor b for a high loss, rising as the loss falls past L0, saturating at the ceiling
b + a. Two variants:

* **floor at chance** (``free_floor=False``): b is the task's chance level (0.25 for four
  choices), fitted are the height a (so ``chance ≤ ceiling ≤ 1``), k > 0 and L0;
* **free floor and height** (``free_floor=True``; the four-parameter form of Bhagia et al.
  2024): b and a are fitted too (each in [0, 1]). Small models' length-normalised accuracy
  need not sit at chance, and the upper part of the curve is seen only on intermediate
  checkpoints, which is where this form is used. Chance stays a check
  (:func:`sigmoid_warnings`): a floor far from chance, or a ceiling above 1, is reported.

Fitting is weighted least squares on accuracy. With ``n_examples`` per point the weights are
the inverse binomial variances, ``w_i = n_i / (p_i·(1 − p_i))`` (:func:`binomial_weights`), so
a checkpoint scored on many questions, or near 0 or 1, counts more.

The one-step fit uses the same form with ``x = −log10 C`` (so ``L0 = −log10 C0``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import least_squares
from scipy.special import expit

FLOOR_FROM_CHANCE = 0.05
"""A free floor further than this (in accuracy) from chance is reported."""
_P_CLIP = 0.02  # binomial weights: p kept inside [0.02, 0.98] so no point weighs infinitely


@dataclass(frozen=True)
class Sigmoid:
    """``acc(x) = floor + (ceiling − floor)·σ(k·(L0 − x))``; x is the task loss.

    ``floor`` is None where it is fixed at ``chance`` (the chance-floor fit).
    """

    chance: float
    ceiling: float
    k: float
    L0: float
    floor: float | None = None

    @property
    def base(self) -> float:
        """The floor b: the fitted one, or chance."""
        return self.chance if self.floor is None else self.floor

    def predict(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return self.base + (self.ceiling - self.base) * expit(self.k * (self.L0 - x))

    def to_dict(self) -> dict:
        return {"chance": self.chance, "ceiling": self.ceiling, "k": self.k, "L0": self.L0,
                "floor": self.base, "height": self.ceiling - self.base,
                "free_floor": self.floor is not None}  # fmt: skip

    def one_step_dict(self) -> dict[str, float]:
        """The one-step parameters in compute terms: C0 where accuracy is half way up."""
        return {"chance": self.chance, "ceiling": self.ceiling, "k": self.k,
                "log10_C0": -self.L0}  # fmt: skip


def sigmoid_warnings(sig: Sigmoid) -> list[str]:
    """What a fitted sigmoid says against its chance level: a floor far from chance, a
    ceiling above 1 (then predictions are clipped at 1)."""
    out = []
    if sig.floor is not None and abs(sig.floor - sig.chance) > FLOOR_FROM_CHANCE:
        out.append(
            f"fitted floor {sig.floor:.3f} is {abs(sig.floor - sig.chance):.3f} from chance "
            f"{sig.chance:g} (more than {FLOOR_FROM_CHANCE:g})"
        )
    if sig.ceiling > 1.0:
        out.append(f"fitted ceiling {sig.ceiling:.3f} is above 1")
    return out


def binomial_weights(accuracy: ArrayLike, n_examples: ArrayLike | None) -> np.ndarray:
    """Inverse binomial variances ``n/(p(1 − p))`` (p clipped to [0.02, 0.98]), scaled to a
    mean of 1; ones where ``n_examples`` is None or not finite everywhere."""
    acc = np.asarray(accuracy, dtype=float).ravel()
    if n_examples is None:
        return np.ones_like(acc)
    n = np.asarray(n_examples, dtype=float).ravel()
    if not np.all(np.isfinite(n) & (n > 0)):
        return np.ones_like(acc)
    p = np.clip(acc, _P_CLIP, 1 - _P_CLIP)
    w = n / (p * (1 - p))
    return w / w.mean()


# Parameters θ = (b, a, log k, L0); the chance-floor fit keeps b fixed.
def _bounds(x: np.ndarray, chance: float, free_floor: bool):
    spread = max(float(np.ptp(x)), 1e-9)
    b_lo, b_hi = (0.0, 1.0) if free_floor else (chance, chance)
    lower = np.array([b_lo, 0.0, np.log(0.1 / spread), x.min() - 2 * spread])
    upper = np.array([b_hi, 1.0 if free_floor else 1.0 - chance, np.log(200.0 / spread),
                      x.max() + 2 * spread])  # fmt: skip
    return lower, upper, spread


def _model(theta: np.ndarray, x: np.ndarray):
    """Predictions (R, P) and Jacobian (R, P, 4) for parameter rows ``theta`` (R, 4)."""
    b, a, k, l0 = theta[:, :1], theta[:, 1:2], np.exp(theta[:, 2:3]), theta[:, 3:4]
    z = k * (l0 - x)
    p = expit(z)
    dp = a * p * (1 - p)
    jac = np.stack([np.ones_like(p), p, dp * z, dp * k], axis=2)
    return b + a * p, jac


def _starts(x, acc, chance, free_floor, spread):
    floors = (max(float(acc.min()) - 0.01, 0.0), chance) if free_floor else (chance,)
    out = []
    for b in floors:
        top = float(np.clip(acc.max() + 0.02, b + 1e-3, 1.0))
        for ceiling in (top, 1.0):
            for ks in (2.0, 8.0, 30.0):
                for l0 in np.quantile(x, [0.1, 0.5, 0.9]):
                    out.append(np.array([b, ceiling - b, np.log(ks / spread), l0]))
    return out


def fit_sigmoid(
    x: ArrayLike,
    accuracy: ArrayLike,
    chance: float,
    *,
    weights: ArrayLike | None = None,
    start: Sigmoid | None = None,
    free_floor: bool = False,
) -> Sigmoid:
    """Weighted least-squares fit of :class:`Sigmoid` (module docstring).

    Bounds: floor in [0, 1] (free) or at chance; height in [0, 1] (free) or up to 1 − chance;
    k between 0.1 and 200 per spread of x; L0 within two spreads of the observed x. Without
    ``start`` a grid of starts (floors, ceilings, three steepnesses, three midpoints) is tried
    and the best kept; with ``start`` only that one (the bootstrap). ``weights`` multiply each
    point's squared residual (binomial weights, bootstrap counts).
    """
    x = np.asarray(x, dtype=float).ravel()
    acc = np.asarray(accuracy, dtype=float).ravel()
    if x.size != acc.size:
        raise ValueError(f"x has {x.size} values but accuracy has {acc.size}")
    n_params = 4 if free_floor else 3
    if x.size < n_params:
        raise ValueError(f"the sigmoid has {n_params} free parameters; got only {x.size} points")
    if not 0.0 <= chance < 1.0:
        raise ValueError(f"chance must lie in [0, 1), got {chance!r}")
    sw = np.sqrt(np.ones_like(x) if weights is None else np.asarray(weights, float).ravel())
    lower, upper, spread = _bounds(x, chance, free_floor)
    free = slice(0, 4) if free_floor else slice(1, 4)

    def full(t):
        return np.concatenate([[chance], t]) if not free_floor else t

    def residuals(t):
        return sw * (_model(full(t)[None, :], x)[0][0] - acc)

    def jacobian(t):
        return sw[:, None] * _model(full(t)[None, :], x)[1][0][:, free]

    if start is not None:
        starts = [np.array([start.base, start.ceiling - start.base, np.log(start.k), start.L0])]
    else:
        starts = _starts(x, acc, chance, free_floor, spread)
    best, best_cost = None, np.inf
    for theta0 in starts:
        t0 = np.clip(theta0[free], lower[free] + 1e-12, upper[free] - 1e-12)
        res = least_squares(residuals, t0, jac=jacobian, bounds=(lower[free], upper[free]),
                            method="trf", max_nfev=200)  # fmt: skip
        if res.cost < best_cost:
            best, best_cost = res.x, res.cost
    assert best is not None
    return _from_theta(full(best), chance, free_floor)


def _from_theta(theta: np.ndarray, chance: float, free_floor: bool) -> Sigmoid:
    b, a, log_k, l0 = (float(v) for v in theta)
    return Sigmoid(chance=float(chance), ceiling=b + a, k=float(np.exp(log_k)), L0=l0,
                   floor=b if free_floor else None)  # fmt: skip


def refit_sigmoids(
    x: ArrayLike,
    accuracy: ArrayLike,
    start: Sigmoid,
    weights: np.ndarray,
    max_iter: int = 60,
) -> list[Sigmoid]:
    """:func:`fit_sigmoid` for many weight vectors at once (the bootstrap), from ``start``.

    A batched Levenberg–Marquardt on θ = (b, a, log k, L0), b held where ``start`` has its
    floor at chance: every row of ``weights`` (R, P) takes damped Gauss–Newton steps
    (JᵀWJ + λ·diag(JᵀWJ))Δ = −JᵀWr together, projected onto the same bounds; a step is kept
    only where it lowers that row's weighted sum of squares.
    """
    x = np.asarray(x, dtype=float).ravel()
    acc = np.asarray(accuracy, dtype=float).ravel()
    w = np.asarray(weights, dtype=float)
    free_floor = start.floor is not None
    lower, upper, _ = _bounds(x, start.chance, free_floor)
    t0 = [start.base, start.ceiling - start.base, np.log(start.k), start.L0]
    theta = np.tile(np.clip(t0, lower, upper), (w.shape[0], 1))
    fixed = np.array([not free_floor, False, False, False])

    def parts(th):
        pred, jac = _model(th, x)
        jac[:, :, fixed] = 0.0
        r = pred - acc
        return r, jac, (w * r**2).sum(axis=1)

    lam = np.full(w.shape[0], 1e-3)
    r, jac, cost = parts(theta)
    for _ in range(max_iter):
        jtw = np.swapaxes(jac, 1, 2) * w[:, None, :]
        a = jtw @ jac
        g = (jtw @ r[:, :, None])[:, :, 0]
        diag = np.einsum("rii->ri", a) + fixed  # a held parameter's row: Δ = 0
        damped = a + (lam[:, None] * (diag + 1e-12))[:, :, None] * np.eye(4) + np.diag(fixed)
        try:
            step = np.linalg.solve(damped, -g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            break
        trial = np.clip(theta + step, lower, upper)
        r_t, jac_t, cost_t = parts(trial)
        better = cost_t < cost
        theta[better], r[better], jac[better], cost[better] = (
            trial[better], r_t[better], jac_t[better], cost_t[better],
        )  # fmt: skip
        lam = np.where(better, lam / 3, lam * 4)
        if np.all(lam > 1e8):
            break
    return [_from_theta(t, start.chance, free_floor) for t in theta]
