"""Which Huber δ predicts better: Epoch's fixed 1e-3, or one scaled to the family's residuals?

δ = 1e-3 on log residuals is Epoch's choice for Chinchilla's data (residuals there are ~0.3 %):
for noisier families it makes the fit almost an L1 (median) regression. The alternative is the
classical Huber tuning, δ = 1.345·σ̂ (95 % efficiency under Gaussian noise), with σ̂ the robust
scale (1.4826·MAD) of the residuals of a first fit at δ = 1e-3.

On simulated families (tests/simulated_families.py: 12–40 runs, 1–2.5 decades of N, 0.5–3 %
noise, 0–2 outliers raised by 10–20 %, the Chinchilla form and a bent law), each fit predicts
targets 3, 10 and 30× past the largest size at their compute-optimal tokens; the error is
|log predicted − log true| against the noiseless true loss. Prints the mean error per case for
both choices and the share of families where the scaled δ is better.

    python benchmarks/bench_huber_delta.py [--seeds 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from simulated_families import TRUE_LAW, simulate_family  # noqa: E402

from mlflow_scaling.laws import fit_chinchilla  # noqa: E402
from mlflow_scaling.laws.allocation import tokens_at_optimum  # noqa: E402
from mlflow_scaling.laws.fitting import DEFAULT_HUBER_DELTA, scaled_huber_delta  # noqa: E402

CASES = [  # (runs, span in decades, noise, outliers)
    (12, 1.0, 0.005, 0),
    (12, 2.5, 0.03, 1),
    (20, 1.5, 0.015, 0),
    (20, 2.5, 0.03, 2),
    (40, 1.0, 0.005, 2),
    (40, 2.5, 0.015, 1),
    (40, 2.0, 0.03, 0),
]
FACTORS = np.array([3.0, 10.0, 30.0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    print(f"{'case':<40} {'fixed 1e-3':>11} {'scaled':>9}  scaled better")
    all_fixed, all_scaled = [], []
    for truth in ("chinchilla", "bent"):
        for runs, span, noise, outliers in CASES:
            fixed, scaled = [], []
            for seed in range(args.seeds):
                rng = np.random.default_rng(7000 + 100 * runs + seed)
                fam = simulate_family(
                    rng, n_runs=runs, span_decades=span, noise=noise, truth=truth,
                    outliers=outliers,
                )  # fmt: skip
                tn = fam.n.max() * FACTORS
                td = tokens_at_optimum(TRUE_LAW, tn)
                true = np.log(fam.true_loss(tn, td))
                first = fit_chinchilla(fam.n, fam.d, fam.loss, huber_delta=DEFAULT_HUBER_DELTA)
                delta = scaled_huber_delta(first, fam.n, fam.d, fam.loss)
                second = fit_chinchilla(
                    fam.n, fam.d, fam.loss, huber_delta=delta, starts=first.local_optima
                )
                fixed.append(np.mean(np.abs(np.log(first.law.predict(tn, td)) - true)))
                scaled.append(np.mean(np.abs(np.log(second.law.predict(tn, td)) - true)))
            fixed, scaled = np.array(fixed), np.array(scaled)
            all_fixed.append(fixed)
            all_scaled.append(scaled)
            name = f"{truth} {runs} runs {span:.1f} dec {noise:.1%} {outliers} outl."
            print(
                f"{name:<40} {fixed.mean():>10.2%} {scaled.mean():>9.2%}  "
                f"{np.mean(scaled < fixed):.0%}"
            )
    f, s = np.concatenate(all_fixed), np.concatenate(all_scaled)
    print(
        f"{'all':<40} {f.mean():>10.2%} {s.mean():>9.2%}  {np.mean(s < f):.0%}   "
        f"(median {np.median(f):.2%} vs {np.median(s):.2%})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
