"""The Chinchilla loss law L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022, Approach 3)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

PARAM_NAMES = ("E", "A", "B", "alpha", "beta")


@dataclass(frozen=True)
class ChinchillaLaw:
    """Loss as a function of parameters N and training tokens D.

    ``E`` is the irreducible loss, ``A/N^alpha`` the cost of a finite model and ``B/D^beta``
    the cost of finite data.
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def predict(self, n: ArrayLike, d: ArrayLike) -> np.ndarray:
        """Predicted loss for model size(s) ``n`` trained on ``d`` tokens (broadcasts)."""
        n = np.asarray(n, dtype=float)
        d = np.asarray(d, dtype=float)
        return self.E + self.A * n ** (-self.alpha) + self.B * d ** (-self.beta)

    @property
    def log_params(self) -> np.ndarray:
        """The fitting coordinates (a, b, e, alpha, beta) with A = e^a, B = e^b, E = e^e."""
        return np.array(
            [np.log(self.A), np.log(self.B), np.log(self.E), self.alpha, self.beta], dtype=float
        )

    @classmethod
    def from_log_params(cls, theta: ArrayLike) -> ChinchillaLaw:
        a, b, e, alpha, beta = (float(v) for v in np.asarray(theta, dtype=float))
        return cls(E=np.exp(e), A=np.exp(a), B=np.exp(b), alpha=alpha, beta=beta)

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def log_predict(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """log L̂ = logsumexp(a − α log N, b − β log D, e) for a batch of parameter rows.

    ``theta`` has shape (..., 5) in the order (a, b, e, alpha, beta); the result has shape
    (..., P) for P points.
    """
    theta = np.asarray(theta, dtype=float)
    a, b, e, alpha, beta = (theta[..., i, None] for i in range(5))
    z1 = a - alpha * log_n
    z2 = b - beta * log_d
    m = np.maximum(np.maximum(z1, z2), e)
    return m + np.log(np.exp(z1 - m) + np.exp(z2 - m) + np.exp(e - m))
