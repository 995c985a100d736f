"""Simulated (η × B) sweeps with a known optimum law, for benchmarks and tests.

The truth: η_opt = 1.79·N^−0.713·D^0.307 and B_opt = 0.58·D^0.571 tokens (Step Law's
published fits, used here only as a plausible shape), and a loss surface around the optimum

    L = L0(N, D)·(1 + ½·ΔᵀH·Δ)·(1 + σ·ε),  Δ = (log η/η_opt, log B/B_opt),  ε ~ N(0, 1)

with L0 = 1.7 + 400/N^0.34 + 410/D^0.28 and H = :data:`CURVATURE` (a 2x learning rate off the
optimum costs about 1.4 %, as on Misfitting's grid). Each cell's grid is 5 values a factor
:data:`STEP` apart on each axis, centred a random fraction of a step off the optimum.
"""

from __future__ import annotations

import numpy as np

CURVATURE = np.array([[0.06, 0.01], [0.01, 0.03]])
STEP = 2.0
SIZES = (1e7, 3e7, 1e8, 3e8)
TOKENS_PER_PARAM = (10.0, 40.0)


def true_lr(n, d):
    return 1.79 * np.asarray(n, dtype=float) ** -0.713 * np.asarray(d, dtype=float) ** 0.307


def true_batch(n, d):
    return 0.58 * np.asarray(d, dtype=float) ** 0.571 + 0 * np.asarray(n, dtype=float)


def base_loss(n, d):
    return 1.7 + 400 / np.asarray(n, dtype=float) ** 0.34 + 410 / np.asarray(d, dtype=float) ** 0.28


def true_penalty(n, d, lr, batch, lr_opt=None, batch_opt=None) -> np.ndarray:
    """The fraction by which the loss at (lr, batch) exceeds the cell's optimum (by default the
    law's)."""
    lr_opt = true_lr(n, d) if lr_opt is None else lr_opt
    batch_opt = true_batch(n, d) if batch_opt is None else batch_opt
    delta = np.stack([np.log(lr / lr_opt), np.log(batch / batch_opt)], axis=-1)
    return 0.5 * np.einsum("...i,ij,...j->...", delta, CURVATURE, delta)


def simulate_grid(
    seed: int,
    *,
    noise: float = 0.002,
    sizes=SIZES,
    tokens_per_param=TOKENS_PER_PARAM,
    with_batch: bool = True,
    values: int = 5,
    scatter: float = 0.0,
) -> dict[str, np.ndarray]:
    """One sweep: columns N, D, lr, batch (absent when ``with_batch`` is False), loss.

    ``scatter``: each cell's optimum lies off the law by a factor exp(scatter·ε) on each axis
    (real cells scatter: schedules, seeds, data order), so the law is the optima's trend."""
    rng = np.random.default_rng(seed)
    rows = []
    k = np.arange(values) - (values - 1) / 2
    for n in sizes:
        for ratio in tokens_per_param:
            d = ratio * n
            lr_opt, b_opt = np.array([true_lr(n, d), true_batch(n, d)]) * np.exp(
                scatter * rng.standard_normal(2)
            )
            lrs = lr_opt * STEP ** (k + rng.uniform(-0.5, 0.5))
            batches = b_opt * STEP ** (k + rng.uniform(-0.5, 0.5))
            for lr in lrs:
                for b in batches if with_batch else [b_opt]:
                    loss = base_loss(n, d) * (1 + true_penalty(n, d, lr, b, lr_opt, b_opt))
                    rows.append((n, d, lr, b, loss * (1 + noise * rng.standard_normal())))
    n, d, lr, b, loss = (np.array(col) for col in zip(*rows, strict=True))
    out = {"N": n, "D": d, "lr": lr, "loss": loss}
    if with_batch:
        out["batch"] = b
    return out
