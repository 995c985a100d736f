"""The main job, `mlflow-scaling demo` (README command 1).

Fits the Chinchilla runs (when the shared data folder is present) and prints the law, the
compute-optimal allocation and the best reachable loss for a ladder of budgets.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .datasets import CHINCHILLA_CSV, find_shared_data, load_chinchilla
from .laws.backtest import backtest_chinchilla
from .summary import summarize_chinchilla

BUDGET_LADDER = (1e21, 1e22, 1e23, 5.88e23, 1e24, 1e25)


def chinchilla_demo(echo: Callable[[str], None] = print, n_boot: int = 1000) -> dict | None:
    """Fit the Chinchilla family and print what it says; None when the data is absent."""
    from .cli import format_fit_table

    folder = find_shared_data()
    if folder is None:
        echo(
            f"chinchilla: skipped: {CHINCHILLA_CSV} not found (it lives in ../shared/data "
            "beside the repository; set MLFLOW_SCALING_SHARED_DATA to its folder)"
        )
        return None
    points = load_chinchilla(folder / CHINCHILLA_CSV)
    echo(f"chinchilla: {points.n.size} runs from {folder / CHINCHILLA_CSV} (Epoch's preprocessing)")
    summary, _ = summarize_chinchilla(
        points.n,
        points.d,
        points.loss,
        n_boot=n_boot,
        budgets=BUDGET_LADDER,
        targets=(np.array([7e10]), np.array([1.4e12])),
    )
    echo(format_fit_table(summary))
    bt = backtest_chinchilla(points.n, points.d, points.loss, split_n=1e9, n_boot=200)
    echo(
        f"backtest: fitted on N < 1e9 ({bt.fit.n_points} runs), predicted {bt.actual.size} runs "
        f"with N >= 1e9: mean |relative error| {bt.mean_abs_relative_error:.2%}, "
        f"95% interval coverage {bt.coverage:.0%}"
    )
    summary["backtest"] = bt.to_dict()
    return summary


def run_demo(echo: Callable[[str], None] = print) -> int:
    chinchilla_demo(echo)
    return 0
