"""Does `compare` find known answers? Rates over seeded simulated pairs of families.

Three scenarios (benchmarks/compare_simulation.py), each over ``--seeds`` seeds:

* constant multiplier 1.5×: per budget, how often the point multiplier is within 10 % of 1.5
  and how often its interval covers 1.5 (targets: ≥ 90 % coverage), and the verdict counts;
* same law: how often the verdict is ``no_difference`` (target ≥ 90 %);
* better constant, worse exponent: how often the verdict is ``crosses`` and the crossover
  lies within a factor of 2 of the true one.

    .venv/bin/python benchmarks/bench_compare.py --seeds 50 --bootstrap 200
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.compare_simulation import MULTIPLIER, simulate_pair  # noqa: E402
from mlflow_scaling.laws.compare import CROSSES, NO_DIFFERENCE, compare_families  # noqa: E402


def run(scenario: str, seeds: range, n_boot: int) -> list:
    out = []
    for seed in seeds:
        pair = simulate_pair(scenario, seed)
        result = compare_families(pair.baseline, pair.candidate, n_boot=n_boot, seed=seed,
                                  check=False)  # fmt: skip
        out.append((pair, result))
    return out


def constant_report(results: list) -> dict:
    flops = np.array([b["flops"] for b in results[0][1].budgets])
    m = np.array([[b["multiplier"] for b in r.budgets] for _, r in results])
    lo = np.array([[b["lo"] for b in r.budgets] for _, r in results])
    hi = np.array([[b["hi"] for b in r.budgets] for _, r in results])
    within = np.abs(m / MULTIPLIER - 1) <= 0.10
    covered = (lo <= MULTIPLIER) & (MULTIPLIER <= hi)
    print(f"constant multiplier {MULTIPLIER}x ({len(results)} seeds)")
    print(f"{'budget C':>10} {'median m':>9} {'within 10%':>11} {'covered':>8} {'width':>7}")
    for k, c in enumerate(flops):
        print(f"{c:>10.3g} {np.median(m[:, k]):>9.3f} {within[:, k].mean():>11.0%} "
              f"{covered[:, k].mean():>8.0%} {np.median(hi[:, k] / lo[:, k]):>7.2f}")  # fmt: skip
    print("verdicts:", dict(Counter(r.verdict for _, r in results)))
    return {"within": within.mean(axis=0), "covered": covered.mean(axis=0), "flops": flops}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args(argv)
    seeds = range(args.seeds)
    start = time.monotonic()

    const = constant_report(run("constant", seeds, args.bootstrap))
    in_range = const["flops"] <= 1e19 * 1.0001
    print(f"within fitted range: recovered within 10 % in {const['within'][in_range].min():.0%}"
          f"–{const['within'][in_range].max():.0%}, covered in "
          f"{const['covered'][in_range].min():.0%}–{const['covered'][in_range].max():.0%} "
          "of seeds (worst–best budget)\n")  # fmt: skip

    same = run("same", seeds, args.bootstrap)
    verdicts = Counter(r.verdict for _, r in same)
    print(f"same law ({len(same)} seeds): no_difference in "
          f"{verdicts[NO_DIFFERENCE] / len(same):.0%}; verdicts {dict(verdicts)}\n")  # fmt: skip

    cross = run("crosses", seeds, args.bootstrap)
    truth = cross[0][0].true_crossover
    verdicts = Counter(r.verdict for _, r in cross)
    found = [r.crossover_flops for _, r in cross]
    ok = [c is not None and 0.5 <= c / truth <= 2.0 for c in found]
    both = [r.verdict == CROSSES and k for (_, r), k in zip(cross, ok, strict=True)]
    bands = [r.crossover_interval for _, r in cross]
    covered = [b is not None and b[0] <= truth <= b[1] for b in bands]
    print(f"  crossover interval covers the truth in {np.mean(covered):.0%}")
    ratios = [c / truth for c in found if c is not None]
    print(
        f"better constant, worse exponent ({len(cross)} seeds; true crossover {truth:.3g}): "
        f"crosses in {verdicts[CROSSES] / len(cross):.0%}, crossover within 2x in "
        f"{np.mean(ok):.0%}, both in {np.mean(both):.0%}; verdicts {dict(verdicts)}"
    )
    if ratios:
        print(f"  crossover / truth: median {np.median(ratios):.2f}, "
              f"range {min(ratios):.2f}–{max(ratios):.2f}")  # fmt: skip
    print(
        f"\n{3 * len(seeds)} comparisons, {args.bootstrap} replicates each, "
        f"in {time.monotonic() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
