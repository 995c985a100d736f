"""Families of runs drawn from known laws, for tests and benchmarks of the law engine.

A family has ``n_sizes`` model sizes spread over ``span_decades`` and a few token counts per size
(tokens per parameter from 5 to 80), losses from a true law times log-normal noise. The true
law is either the Chinchilla form (``"chinchilla"``) or one the Chinchilla form cannot express
exactly (``"bent"``: the model term steepens smoothly past a break in mid-range, as broken
power laws do), so that extrapolating carries an error of the form as well as of the noise.

Also the compute axis of the round-2 acceptance family: f(N) = 6N + 12·n_layer·d_model·seq with
n_layer = d_model / 64 and seq 1024, so f/6N runs from 3.7 (d_model 64) to 1.2 (d_model 1024).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlflow_scaling.laws import ChinchillaLaw

TRUE_LAW = ChinchillaLaw(E=1.7, A=400.0, B=2000.0, alpha=0.34, beta=0.37)
BEND_DECADES_ABOVE_SMALLEST = 1.0
BEND_EXTRA_EXPONENT = 0.05


@dataclass(frozen=True)
class Family:
    n: np.ndarray
    d: np.ndarray
    loss: np.ndarray
    truth: str
    noise: float

    def true_loss(self, n, d) -> np.ndarray:
        return true_loss(self.truth, n, d, float(self.n.min()))


def true_loss(truth: str, n, d, n_smallest: float) -> np.ndarray:
    """The noiseless loss of the true law ``truth`` at (n, d)."""
    n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    law = TRUE_LAW
    model_term = law.A * n ** (-law.alpha)
    if truth == "bent":
        n_break = n_smallest * 10**BEND_DECADES_ABOVE_SMALLEST
        model_term = model_term * (1 + n / n_break) ** (-BEND_EXTRA_EXPONENT)
    elif truth != "chinchilla":
        raise ValueError(f"unknown truth {truth!r}")
    return law.E + model_term + law.B * d ** (-law.beta)


def simulate_family(
    rng: np.random.Generator,
    *,
    n_runs: int,
    span_decades: float,
    noise: float,
    truth: str = "chinchilla",
    n_smallest: float = 1e7,
    outliers: int = 0,
) -> Family:
    """A family of ``n_runs`` runs (sizes × token counts) from the true law, with noise.

    ``outliers`` runs get their loss raised by 10–20 % (a diverged or mis-logged run).
    """
    n_sizes = max(3, min(8, n_runs // 3))
    per_size = int(np.ceil(n_runs / n_sizes))
    sizes = n_smallest * np.logspace(0, span_decades, n_sizes)
    tpp = np.geomspace(5, 80, per_size)
    n = np.repeat(sizes, per_size)[:n_runs]
    d = (np.tile(tpp, n_sizes) * np.repeat(sizes, per_size))[:n_runs]
    clean = true_loss(truth, n, d, n_smallest)
    loss = clean * np.exp(rng.normal(0.0, noise, n_runs))
    if outliers:
        bad = rng.choice(n_runs, size=outliers, replace=False)
        loss[bad] *= 1 + rng.uniform(0.1, 0.2, outliers)
    return Family(n=n, d=d, loss=loss, truth=truth, noise=noise)


def attention_flops_per_token(n, seq: int = 1024) -> np.ndarray:
    """f(N) = 6N + 12·n_layer·d_model·seq with n_layer = d_model/64 and N = 12·n_layer·d_model²."""
    n = np.asarray(n, dtype=float)
    d_model = (64 * n / 12) ** (1 / 3)
    n_layer = d_model / 64
    return 6 * n + 12 * n_layer * d_model * seq


def attention_family(rng: np.random.Generator, noise: float = 0.01):
    """The acceptance family: d_model 64…1024, 5 token counts each, logged C = f(N)·D.

    Returns (n, d, c, loss).
    """
    d_model = np.array([64, 128, 256, 512, 768, 1024], dtype=float)
    sizes = 12 * (d_model / 64) * d_model**2
    n = np.repeat(sizes, 5)
    d = n * np.tile([50.0, 100.0, 200.0, 400.0, 800.0], sizes.size)
    loss = TRUE_LAW.predict(n, d) * np.exp(rng.normal(0.0, noise, n.size))
    return n, d, attention_flops_per_token(n) * d, loss
