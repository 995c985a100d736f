"""Our batched Chinchilla fitter against a plain per-start scipy fitter, on the same data.

The reference is Epoch's way: scipy L-BFGS-B, one call per start, the objective written
plainly (scipy's logsumexp, finite-difference gradients). Its time is measured on a random
sample of starts and scaled to the full 4,500-start grid. Both run in this process; the ratio
is printed, along with the time of 1,000 bootstrap refits.

    python benchmarks/bench_fit.py [--sample 40]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from mlflow_scaling.datasets import load_chinchilla
from mlflow_scaling.laws import bootstrap_chinchilla, epoch_grid, fit_chinchilla
from mlflow_scaling.laws.fitting import EPOCH_HUBER_DELTA


def reference_objective(theta, log_n, log_d, log_loss, delta=1e-3):
    a, b, e, alpha, beta = theta
    pred = logsumexp([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)], axis=0)
    r = log_loss - pred
    return np.sum(np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=40, help="reference starts to time")
    parser.add_argument(
        "--data", type=Path, default=None, help="Chinchilla CSV (default: the bundled copy)"
    )
    args = parser.parse_args()
    p = load_chinchilla(args.data)
    grid = epoch_grid()

    times = []
    for _ in range(3):  # median of three, so a stray load spike does not decide the ratio
        t0 = time.perf_counter()
        fit = fit_chinchilla(p.n, p.d, p.loss, huber_delta=EPOCH_HUBER_DELTA)
        times.append(time.perf_counter() - t0)
    ours = float(np.median(times))
    auto_times = []
    for _ in range(3):  # the default, δ scaled to the residuals: two fits, the second short
        t0 = time.perf_counter()
        auto = fit_chinchilla(p.n, p.d, p.loss)
        auto_times.append(time.perf_counter() - t0)

    rng = np.random.default_rng(0)
    sample = rng.choice(len(grid), size=args.sample, replace=False)
    logs = (np.log(p.n), np.log(p.d), np.log(p.loss))
    t0 = time.perf_counter()
    results = [minimize(reference_objective, grid[i], args=logs, method="L-BFGS-B") for i in sample]
    per_start = (time.perf_counter() - t0) / args.sample
    reference = per_start * len(grid)
    best_sampled = min(r.fun for r in results)

    boot_times = []
    for seed in range(3):
        t0 = time.perf_counter()
        boot = bootstrap_chinchilla(
            p.n, p.d, p.loss, n_boot=1000, fit=fit, seed=seed, huber_delta=EPOCH_HUBER_DELTA
        )
        boot_times.append(time.perf_counter() - t0)
    boot_time = float(np.median(boot_times))

    print(
        f"data: {args.data or 'bundled Chinchilla'} ({p.n.size} runs), grid of {len(grid)} starts"
    )
    print(f"ours:      {ours:8.2f} s (median of 3)  objective {fit.objective:.9e}  {fit.law}")
    print(
        f"reference: {reference:8.1f} s  (scaled from {args.sample} starts at "
        f"{per_start * 1e3:.1f} ms each; best sampled objective {best_sampled:.9e})"
    )
    print(f"speed-up:  {reference / ours:8.0f}x")
    print(
        f"default (huber_delta='auto', δ={auto.huber_delta:.4g}): "
        f"{float(np.median(auto_times)):.2f} s (median of 3)"
    )
    lo, hi = boot.confidence_intervals()["alpha"]
    print(
        f"bootstrap: 1000 refits in {boot_time:.2f} s, median of 3 (alpha 95% CI {lo:.4f}-{hi:.4f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
