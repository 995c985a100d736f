"""Compute-optimal allocation and return from a fitted Chinchilla law, in closed form.

With C = k·N·D (k = 6 by default), minimising E + A/N^α + B/D^β gives
G = (αA / (βB))^(1/(α+β)), N_opt = G·(C/k)^a, D_opt = (C/k)^b / G with a = β/(α+β),
b = α/(α+β).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .chinchilla import ChinchillaLaw

FLOPS_PER_PARAM_TOKEN = 6.0


@dataclass(frozen=True)
class Allocation:
    """The best split of compute budget(s) ``flops`` and the loss it reaches."""

    flops: np.ndarray
    n_opt: np.ndarray
    d_opt: np.ndarray
    loss: np.ndarray

    @property
    def tokens_per_param(self) -> np.ndarray:
        return self.d_opt / self.n_opt

    def rows(self) -> list[dict[str, float]]:
        """One plain dict per budget, for tables and JSON."""
        return [
            {
                "flops": float(c),
                "n_opt": float(n),
                "d_opt": float(d),
                "tokens_per_param": float(d / n),
                "loss": float(lo),
            }
            for c, n, d, lo in zip(self.flops, self.n_opt, self.d_opt, self.loss, strict=True)
        ]


def allocation_exponents(law: ChinchillaLaw) -> tuple[float, float]:
    """(a, b) with N_opt ∝ C^a and D_opt ∝ C^b."""
    total = np.asarray(law.alpha + law.beta)
    if not np.all(total > 0):
        raise ValueError(f"allocation needs alpha + beta > 0, got {law.alpha} + {law.beta}")
    return law.beta / total, law.alpha / total


def _split_constant(law: ChinchillaLaw):
    """G = (αA / (βB))^(1/(α+β)), so that N_opt = G·(C/k)^a and D_opt = (C/k)^b / G."""
    return (law.alpha * law.A / (law.beta * law.B)) ** (1.0 / (law.alpha + law.beta))


def budget_for_size(
    law: ChinchillaLaw, n: ArrayLike, flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN
) -> np.ndarray:
    """The compute budget C at which a model of size ``n`` is compute-optimal (N_opt(C) = n)."""
    a, _ = allocation_exponents(law)
    return flops_per_param_token * (np.asarray(n, dtype=float) / _split_constant(law)) ** (1 / a)


def compute_optimal(
    law: ChinchillaLaw, flops: ArrayLike, flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN
) -> Allocation:
    """N_opt, D_opt and the loss reached for each compute budget in ``flops``.

    The law's parameters may be arrays of shape (R, 1) (a batch of bootstrap laws); the
    results then have shape (R, len(flops)).
    """
    c = np.atleast_1d(np.asarray(flops, dtype=float))
    if np.any(~np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"compute budgets must be positive and finite, got {c.tolist()}")
    a, b = allocation_exponents(law)
    g = _split_constant(law)
    base = c / flops_per_param_token
    n_opt = g * base**a
    d_opt = base**b / g
    return Allocation(flops=c, n_opt=n_opt, d_opt=d_opt, loss=law.predict(n_opt, d_opt))


def plan_loss(law: ChinchillaLaw, n: ArrayLike, d: ArrayLike) -> np.ndarray:
    """The loss of any plan (N parameters trained on D tokens)."""
    return law.predict(n, d)


def tokens_for_budget(
    n: ArrayLike, flops: ArrayLike, flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN
) -> np.ndarray:
    """D = C / (k·N): the tokens a model of size N can see with budget C."""
    return np.asarray(flops, dtype=float) / (flops_per_param_token * np.asarray(n, dtype=float))
