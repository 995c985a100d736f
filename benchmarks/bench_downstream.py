"""Downstream accuracy prediction on simulated chains with a known sigmoid.

For each seed, a family of 5 sizes × 3 token budgets (tests/downstream_sim.py) gets a task loss
from a known law and an accuracy measured on ``--examples`` questions through a known sigmoid.
The two-step chain and the one-step fit (accuracy against compute) are fitted on the family and
predict targets 3×, 5× and 10× the largest size (20 tokens per parameter). Printed, per target:
the mean and largest absolute error against the true accuracy (in points of accuracy), both
fits side by side, and how often the 95 % interval covers the true and a measured accuracy.
Also: the largest-size backtest, and how many families at chance are called cold start (and
fail the gating criterion).

The real section (benchmarks/pythia_downstream.py) predicts the two largest Pythia sizes' final
accuracy from the five smaller ones, whole chain, per task: two-step on final points (floor at
chance), two-step with step 2 on checkpoints (free floor and height), one-step; relative error
and whether the 95 % intervals cover; each step's share of the interval; the cold-start calls
on MMLU, LogiQA and WSC; and the mean error for each skipped early fraction of checkpoints.
It reads ``../shared/data/dev_sweeps/pythia_evals.csv`` and says so when that is absent.

    python benchmarks/bench_downstream.py              # 30 seeds, 100 bootstrap replicates
    python benchmarks/bench_downstream.py --seeds 100 --bootstrap 200
    python benchmarks/bench_downstream.py --section real
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from downstream_sim import SIZES, simulate_task  # noqa: E402
from pythia_downstream import report as real_report  # noqa: E402

from mlflow_scaling.laws.downstream import (  # noqa: E402
    DEFAULT_SKIP_FRACTION,
    fit_task,
    task_criteria,
)

FACTORS = (3.0, 5.0, 10.0)
SKIPS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--section", choices=["sim", "real", "all"], default="all")
    parser.add_argument("--skip-fraction", type=float, default=DEFAULT_SKIP_FRACTION)
    args = parser.parse_args(argv)
    if args.section != "real":
        simulated(args)
    if args.section != "sim":
        real_report(args.bootstrap, args.skip_fraction, SKIPS)


def simulated(args: argparse.Namespace) -> None:
    """The simulated section (module docstring)."""
    largest = max(SIZES)
    err2 = {f: [] for f in FACTORS}
    err1 = {f: [] for f in FACTORS}
    cover_true = {f: [] for f in FACTORS}
    cover_meas = {f: [] for f in FACTORS}
    cover_one = {f: [] for f in FACTORS}
    width = {f: [] for f in FACTORS}
    back2, back1, train2 = [], [], []
    phases: dict[str, int] = {}
    elapsed = 0.0
    for seed in range(args.seeds):
        sim = simulate_task(seed, n_examples=args.examples)
        targets = [sim.target(f * largest, seed=10_000 + seed) for f in FACTORS]
        examples = np.full(sim.n.size, sim.n_examples)
        t0 = time.perf_counter()
        fit = fit_task("sim", sim.n, sim.d, sim.c, sim.accuracy, sim.task_loss, sim.chance,
                       n_examples=examples, targets=[(t[0], t[1]) for t in targets],
                       n_boot=args.bootstrap, seed=seed)  # fmt: skip
        elapsed += time.perf_counter() - t0
        phases[fit.phase.phase] = phases.get(fit.phase.phase, 0) + 1
        for f, (_, _, true, measured), row in zip(FACTORS, targets, fit.predictions, strict=True):
            err2[f].append(abs(row["metric"] - true))
            err1[f].append(abs(row["one_step"] - true))
            cover_true[f].append(row["lo"] <= true <= row["hi"])
            cover_meas[f].append(row["lo"] <= measured <= row["hi"])
            cover_one[f].append(row["one_step_lo"] <= measured <= row["one_step_hi"])
            width[f].append(row["hi"] - row["lo"])
        bt = fit.backtest or {}
        if bt.get("predicted") is not None:
            back2.append(bt["error_two_step"])
            back1.append(bt["error_one_step"])
        # Training loss as the step-1 variable (the task logs no task loss).
        tfit = fit_task("sim", sim.n, sim.d, sim.c, sim.accuracy, sim.train_loss, sim.chance,
                        n_examples=examples, targets=[(targets[1][0], targets[1][1])],
                        n_boot=0, backtest=False)  # fmt: skip
        train2.append(abs(tfit.predictions[0]["metric"] - targets[1][2]))

    print(f"{args.seeds} seeds, {args.bootstrap} bootstrap replicates, {args.examples} "
          f"examples per evaluation; {elapsed / args.seeds:.2f} s per task fit")  # fmt: skip
    print(f"phase of the simulated scaling tasks: {phases}")
    print(f"{'target':>8} {'two-step err':>22} {'one-step err':>22} {'coverage true':>14} "
          f"{'coverage meas':>14} {'one-step cov':>13} {'width':>7}")  # fmt: skip
    for f in FACTORS:
        e2, e1 = 100 * np.array(err2[f]), 100 * np.array(err1[f])
        print(
            f"{f:>7g}× {e2.mean():>9.2f} pt (max {e2.max():>5.2f}) {e1.mean():>9.2f} pt "
            f"(max {e1.max():>5.2f}) {np.mean(cover_true[f]):>14.0%} "
            f"{np.mean(cover_meas[f]):>14.0%} {np.mean(cover_one[f]):>13.0%} "
            f"{100 * np.mean(width[f]):>5.1f}pt"
        )
    print(f"largest-size backtest: two-step {100 * np.mean(back2):.2f} pt, one-step "
          f"{100 * np.mean(back1):.2f} pt (mean absolute error, {len(back2)} seeds)")  # fmt: skip
    print(f"training loss as the step-1 variable, 5× target: {100 * np.mean(train2):.2f} pt")

    ladder = []
    for seed in range(args.seeds):  # one token budget per size: step 1 against C
        sim = simulate_task(seed, n_examples=args.examples, tokens_per_param=(20.0,))
        n, d, true, _ = sim.target(5 * largest, seed=10_000 + seed)
        lfit = fit_task("ladder", sim.n, sim.d, sim.c, sim.accuracy, sim.task_loss, sim.chance,
                        targets=[(n, d)], n_boot=0, backtest=False)  # fmt: skip
        ladder.append(abs(lfit.predictions[0]["metric"] - true))
    print(f"5-run ladder at 20 tokens per parameter (step 1 against C), 5× target: "
          f"{100 * np.mean(ladder):.2f} pt (max {100 * np.max(ladder):.2f})")  # fmt: skip

    cold, failed = 0, 0
    n_chance = max(10, args.seeds // 3)
    for seed in range(n_chance):
        sim = simulate_task(seed, n_examples=args.examples, at_chance=True)
        target = sim.target(5 * largest)
        fit = fit_task("chance", sim.n, sim.d, sim.c, sim.accuracy, sim.task_loss, sim.chance,
                       n_examples=np.full(sim.n.size, sim.n_examples),
                       targets=[(target[0], target[1])], n_boot=20, backtest=False)  # fmt: skip
        cold += fit.phase.phase == "cold_start"
        crit = task_criteria({"chance": fit.to_dict()}, ["chance"])[0]
        failed += crit.passed is False
    print(f"families at chance: {cold}/{n_chance} cold start, {failed}/{n_chance} fail gating")


if __name__ == "__main__":
    main()
