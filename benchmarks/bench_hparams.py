"""Hyperparameter laws (mlflow_scaling.laws.hparams): simulated truth and a real grid.

1. **Simulated** (benchmarks/hparam_simulation.py): (η × B) grids of 5 x 5 runs at 4 sizes x 2
   token budgets, with a known optimum law; fit, predict at 10x the largest size, and measure
   (a) the true loss penalty at the predicted (η, B) against the 0.25 % band, (b) how often the
   95 % intervals hold the true η_opt and B_opt, over many seeds; then the same with η alone.
2. **Real**: Misfitting's grid (../shared/data/dev_sweeps/misfitting2025_final.csv, `peak_lr`
   only, 3–4 rates per cell). Fit the sizes below 1.18B, predict η at the 1.18B cell with three
   rates, and measure the loss gap at the predicted η against the cell's best on that cell's own
   quadratic, next to the published formulas of DeepSeek (η = 0.3118·C^−0.125, C = 6ND) and Step
   Law (η = 1.79·N^−0.713·D^0.307). Also: the quadratic's residuals on the one cell with four
   rates. Says so plainly when ../shared is absent.

Run: PYTHONPATH=. python benchmarks/bench_hparams.py [--seeds 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.hparam_simulation import (  # noqa: E402
    simulate_grid,
    true_batch,
    true_lr,
    true_penalty,
)
from mlflow_scaling.laws.hparam_cells import fit_surface  # noqa: E402
from mlflow_scaling.laws.hparams import fit_hparams  # noqa: E402

MISFITTING = Path(__file__).resolve().parents[2] / "shared/data/dev_sweeps/misfitting2025_final.csv"
TARGET_N = 3e9  # 10x the largest simulated size
TARGET_D = 20 * TARGET_N
SCATTER = 0.1
"""Cell optima off the law by exp(0.1·ε) on each axis (10 % in one standard deviation)."""


def simulated(seeds: int, with_batch: bool, scatter: float = 0.0) -> dict:
    inside = cover_lr = cover_b = cover_both = 0
    log_err_lr, log_err_b, penalties = [], [], []
    t0 = time.perf_counter()
    for seed in range(seeds):
        g = simulate_grid(seed, with_batch=with_batch, scatter=scatter)
        fit = fit_hparams(g["N"], g["D"], g["lr"], g["loss"], batch=g.get("batch"), seed=seed)
        p = fit.predict(TARGET_N, TARGET_D)
        lr_true, b_true = true_lr(TARGET_N, TARGET_D), true_batch(TARGET_N, TARGET_D)
        b_used = p.batch if with_batch else b_true
        penalty = float(true_penalty(TARGET_N, TARGET_D, p.lr, b_used))
        penalties.append(penalty)
        inside += penalty <= 0.0025
        ok_lr = p.lr_lo <= lr_true <= p.lr_hi
        ok_b = (not with_batch) or (p.batch_lo <= b_true <= p.batch_hi)
        cover_lr += ok_lr
        cover_b += ok_b
        cover_both += ok_lr and ok_b
        log_err_lr.append(abs(np.log(p.lr / lr_true)))
        if with_batch:
            log_err_b.append(abs(np.log(p.batch / b_true)))
    return {
        "seeds": seeds,
        "inside_band": inside / seeds,
        "median_penalty": float(np.median(penalties)),
        "max_penalty": float(np.max(penalties)),
        "cover_lr": cover_lr / seeds,
        "cover_batch": cover_b / seeds if with_batch else None,
        "cover_both": cover_both / seeds,
        "median_log_err_lr": float(np.median(log_err_lr)),
        "median_log_err_batch": float(np.median(log_err_b)) if log_err_b else None,
        "seconds_per_fit": (time.perf_counter() - t0) / seeds,
    }


def _cell_gap(surface, lr: float) -> tuple[float, bool]:
    """Relative loss above the cell's minimum at ``lr`` on the cell's quadratic; inside grid?"""
    c = surface.coef
    x = np.log(lr)
    xs = np.linspace(surface.x.min(), surface.x.max(), 2001)
    floor = float(np.min(c[0] + c[1] * xs + c[2] * xs**2))
    at = float(c[0] + c[1] * x + c[2] * x**2)
    return at / floor - 1, bool(surface.x.min() <= x <= surface.x.max())


HELD_OUT_SIZES = (522374400, 1182757632)
"""Misfitting's two largest sizes with a cell whose own optimum is inside its grid (the 419M
cells all have theirs on the edge)."""


def _rules(n_value: float, d_value: float, ours: float) -> dict[str, float]:
    return {
        "ours": ours,
        "deepseek": 0.3118 * (6 * n_value * d_value) ** -0.125,
        "step_law": 1.79 * n_value**-0.713 * d_value**0.307,
    }


def _measurable(cell) -> tuple[object | None, str]:
    """The cell's own quadratic when its optimum is inside the grid, else why not."""
    if cell["peak_lr"].nunique() < 3:
        return None, f"{cell['peak_lr'].nunique()} rates"
    surface = fit_surface(cell["peak_lr"].to_numpy(), None, cell["loss"].to_numpy())
    c = surface.coef
    if c[2] <= 0 or not (surface.x.min() < -c[1] / (2 * c[2]) < surface.x.max()):
        return None, "its own optimum is on the grid's edge"
    return surface, ""


def _held_out(f, size: int, gaps: dict[str, list[float]]) -> None:
    train, test = f[f["N"] < size], f[f["N"] == size]
    fit = fit_hparams(train["N"], train["D"], train["peak_lr"], train["loss"])
    statuses: dict[str, int] = {}
    for cell in fit.cells:
        statuses[cell.lr.status] = statuses.get(cell.lr.status, 0) + 1
    print(f"\n  fit on N < {size:.3g}: {len(train)} runs, {len(fit.cells)} cells {statuses}; "
          f"noise {fit.noise:.3g}")  # fmt: skip
    print("    " + fit.lr_law.describe())
    for d_value, cell in test.groupby("D"):
        n_value, d_value = float(size), float(d_value)
        surface, why = _measurable(cell)
        if surface is None:
            print(f"    N={n_value:.3g} D={d_value:.3g}: no gap to measure ({why})")
            continue
        p = fit.predict(n_value, d_value)
        best = float(cell.loc[cell["loss"].idxmin(), "peak_lr"])
        for name, lr in {**_rules(n_value, d_value, p.lr), "best run": best}.items():
            gap, in_grid = _cell_gap(surface, lr)
            gaps.setdefault(name, []).append(gap)
            within, grid = ("yes" if gap <= 0.0025 else "no"), ("yes" if in_grid else "no")
            print(f"    N={n_value:.3g} D={d_value:.3g}  {name:<9} {lr:>9.3g} {gap:>8.3%} "
                  f"{within:>9} {grid:>8}")  # fmt: skip
        print(f"      ours: interval {p.lr_lo:.3g}..{p.lr_hi:.3g}, 0.25 % band "
              f"{p.band_025['lr'][0]:.3g}..{p.band_025['lr'][1]:.3g}, corner penalty "
              f"{p.loss_penalty['max']:.3%}")  # fmt: skip


def misfitting() -> None:
    if not MISFITTING.exists():
        print(f"real grid: {MISFITTING} is absent (../shared is not in this clone): skipped")
        return
    import pandas as pd

    f = pd.read_csv(MISFITTING)
    print(f"\nreal grid: Misfitting ({MISFITTING}), peak_lr only; gap = loss at the rule's lr "
          "over the cell's best, both on the cell's own quadratic")  # fmt: skip
    four = f[(f["N"] == 62052928) & (f["D"] == 4194304000)]
    s4 = fit_surface(four["peak_lr"].to_numpy(), None, four["loss"].to_numpy())
    resid = (s4.loss - (s4.coef[0] + s4.coef[1] * s4.x + s4.coef[2] * s4.x**2)) / s4.loss
    print(f"  quadratic on the one 4-rate cell (N=62M, D=4.2e9): largest |residual| "
          f"{np.max(np.abs(resid)):.3%} of the loss")  # fmt: skip
    print(f"  {'':<30} {'rule':<9} {'lr':>9} {'gap':>8} {'in 0.25%':>9} {'in grid':>8}")
    gaps: dict[str, list[float]] = {}
    for size in HELD_OUT_SIZES:
        _held_out(f, size, gaps)
    print("\n  summary over the measurable held-out cells:")
    for name, values in gaps.items():
        v = np.array(values)
        print(f"    {name:<9} mean gap {v.mean():.3%}, max {v.max():.3%}, within 0.25 %: "
              f"{int(np.sum(v <= 0.0025))}/{v.size}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=200)
    args = parser.parse_args()
    print(f"simulated: 4 sizes x 2 budgets, 5x5 (lr, B) grids, predict at N={TARGET_N:.0e}, "
          f"D={TARGET_D:.0e} (10x the largest size); {args.seeds} seeds")  # fmt: skip
    header = (f"  {'axes':<16} {'in 0.25% band':>14} {'median pen.':>12} {'max pen.':>9} "
              f"{'cover lr':>9} {'cover B':>8} {'cover both':>11} {'|log err| lr':>13} "
              f"{'|log err| B':>12} {'s/fit':>6}")  # fmt: skip
    print(header)
    for with_batch, scatter in ((True, 0.0), (False, 0.0), (True, SCATTER), (False, SCATTER)):
        r = simulated(args.seeds, with_batch, scatter)
        cover_b = "-" if r["cover_batch"] is None else f"{r['cover_batch']:.1%}"
        err_b = "-" if r["median_log_err_batch"] is None else f"{r['median_log_err_batch']:.3f}"
        axes = ("lr, B" if with_batch else "lr only") + (" ±scatter" if scatter else "")
        print(f"  {axes:<16} {r['inside_band']:>14.1%} "
              f"{r['median_penalty']:>12.4%} {r['max_penalty']:>9.3%} {r['cover_lr']:>9.1%} "
              f"{cover_b:>8} {r['cover_both']:>11.1%} {r['median_log_err_lr']:>13.3f} "
              f"{err_b:>12} {r['seconds_per_fit']:>6.2f}")  # fmt: skip
    misfitting()


if __name__ == "__main__":
    main()
