"""Coverage and width of prediction intervals when extrapolating, before and after calibration.

"Before" is the bootstrap over runs with in-sample residuals (what main had); "after" adds the
family's own extrapolation error (``mlflow_scaling.laws.extrapolation``). For each case the
script prints the share of held-out losses inside their nominal 95 % intervals (coverage) and
the median relative half-width (hi − lo) / 2 / prediction.

Cases:
* Chinchilla (bundled, Epoch's preprocessing): fit on N < 1e9, predict the runs with N ≥ 1e9.
* Simulated families from known laws (tests/simulated_families.py): 6–40 runs, 1–2.5 decades
  of N, 0.5–3 % noise, the Chinchilla form or a bent law it cannot express; targets 3, 10 and
  30× past the largest size at their true compute-optimal tokens, compared with a fresh noisy
  draw of the true loss.

    python benchmarks/bench_calibration.py [--seeds 6] [--n-boot 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from simulated_families import TRUE_LAW, simulate_family  # noqa: E402

from mlflow_scaling.datasets import load_chinchilla  # noqa: E402
from mlflow_scaling.laws import bootstrap_chinchilla, fit_chinchilla  # noqa: E402
from mlflow_scaling.laws.allocation import tokens_at_optimum  # noqa: E402
from mlflow_scaling.laws.extrapolation import calibrate_extrapolation  # noqa: E402

LEVEL = 0.95
TARGET_FACTORS = (3.0, 10.0, 30.0)
CASES = [  # (runs, span in decades, noise)
    (6, 1.0, 0.005),
    (6, 2.5, 0.03),
    (12, 1.0, 0.015),
    (12, 2.5, 0.005),
    (20, 1.5, 0.03),
    (20, 2.5, 0.015),
    (40, 1.0, 0.03),
    (40, 2.5, 0.005),
]


def intervals(n, d, loss, tn, td, n_boot, seed):
    """(point, (lo, hi) before, (lo, hi) after, calibration) for targets (tn, td)."""
    fit = fit_chinchilla(n, d, loss)
    boot = bootstrap_chinchilla(n, d, loss, n_boot=n_boot, seed=seed, fit=fit)
    point, lo, hi = boot.predict_interval(tn, td, level=LEVEL)
    cal = calibrate_extrapolation(n, d, loss, fit=fit)
    _, lo2, hi2 = boot.with_calibration(cal).predict_interval(tn, td, level=LEVEL)
    return point, (lo, hi), (lo2, hi2), cal, boot


def summarize(name, actual, point, before, after, extra=""):
    def cov(b):
        return float(np.mean((actual >= b[0]) & (actual <= b[1])))

    def width(b):
        return float(np.median((b[1] - b[0]) / 2 / point))

    print(
        f"{name:<34} n={actual.size:>4}  coverage {cov(before):6.1%} -> {cov(after):6.1%}   "
        f"median half-width {width(before):6.2%} -> {width(after):6.2%}  {extra}"
    )
    return cov(before), cov(after), width(before), width(after)


def chinchilla_case(n_boot):
    p = load_chinchilla()
    train = p.n < 1e9
    point, before, after, cal, _ = intervals(
        p.n[train], p.d[train], p.loss[train], p.n[~train], p.d[~train], n_boot, 0
    )
    are = float(np.mean(np.abs(point - p.loss[~train]) / p.loss[~train]))
    return summarize(
        "chinchilla N<1e9 -> N>=1e9",
        p.loss[~train],
        point,
        before,
        after,
        f"ARE {are:.2%}, growth {cal.growth_per_decade:.4f}/decade ({cal.method})",
    )


def simulated_case(runs, span, noise, truth, seeds, n_boot):
    actual, points, before, after = [], [], ([], []), ([], [])
    degenerate = []
    for seed in range(seeds):
        rng = np.random.default_rng(1000 * runs + seed)
        fam = simulate_family(rng, n_runs=runs, span_decades=span, noise=noise, truth=truth)
        tn = fam.n.max() * np.array(TARGET_FACTORS)
        td = tokens_at_optimum(TRUE_LAW, tn)
        try:
            point, b, a, _, boot = intervals(fam.n, fam.d, fam.loss, tn, td, n_boot, seed)
        except ValueError as exc:
            print(f"  seed {seed}: no fit ({exc})")
            continue
        degenerate.append(boot.degenerate_share)
        actual.append(fam.true_loss(tn, td) * np.exp(rng.normal(0, noise, tn.size)))
        points.append(point)
        for i in range(2):
            before[i].append(b[i])
            after[i].append(a[i])
    cat = np.concatenate
    return summarize(
        f"{truth:<10} {runs:>2} runs {span:.1f} dec {noise:.1%}",
        cat(actual),
        cat(points),
        (cat(before[0]), cat(before[1])),
        (cat(after[0]), cat(after[1])),
        f"degenerate replicates {np.mean(degenerate):.0%}",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--n-boot", type=int, default=200)
    args = parser.parse_args()
    start = time.perf_counter()
    print(f"nominal level {LEVEL:.0%}; coverage before -> after calibration")
    chinchilla_case(args.n_boot)
    rows = []
    for truth in ("chinchilla", "bent"):
        for runs, span, noise in CASES:
            rows.append(simulated_case(runs, span, noise, truth, args.seeds, args.n_boot))
    rows = np.array(rows)
    print(
        f"{'simulated, all cases':<34} mean coverage {rows[:, 0].mean():6.1%} -> "
        f"{rows[:, 1].mean():6.1%}; worst case {rows[:, 0].min():6.1%} -> {rows[:, 1].min():6.1%}"
    )
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
