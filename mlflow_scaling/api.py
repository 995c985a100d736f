"""The commands as Python functions, on pandas DataFrames (one row per run), for notebooks.

Each function returns the same typed result its command prints (``to_dict()`` is the command's
JSON), and raises :class:`~.tabular.InputError` with the same one-line message::

    from mlflow_scaling import api
    fitted = api.fit(runs, budgets=[1e21])           # FitResult: summary of the law
    verdict = api.check(runs, target_params=7e9)     # laws.check.CheckResult
    versus = api.compare(baseline, candidate)        # laws.compare.Comparison
    cluster = api.plan(params=7e9, tokens=1.4e11)    # PlanResult
    task = api.downstream(ladder, task_loss_col="bpb", metric_col="acc", chance=0.25)
    lr_batch = api.hparams(sweep, lr_col="peak_lr", targets=[(7e9, 1.4e11)])  # HparamsResult
    repeats = api.fit_data_constrained(runs, unique_col="U", unique_tokens=1e10,
                                       budgets=[1e21])  # DataConstrainedResult

Columns default to ``N``, ``D`` and ``loss``; give ``c_col`` for a compute column (with D, the
compute axis f(N) = C/D is learned from it; without D, D = C/(6N)), as on the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .checkpoint_table import checkpoint_rows
from .inputs import (
    ACCURACY,
    below_chance_problem,
    check_bootstrap_work,
    check_extrapolates_up,
    check_within_reach,
)
from .laws.check import DEFAULT_MAX_HALFWIDTH, CheckResult, scaling_check
from .laws.compare import MIN_BOOT, Comparison, FamilyRuns, compare_families
from .laws.data_constrained import DataBudgetAllocation, allocate_with_unique_tokens
from .laws.data_constrained_fit import DataConstrainedFit
from .laws.data_constrained_fit import fit_data_constrained as fit_repeats
from .laws.downstream import DEFAULT_SKIP_FRACTION, Checkpoints, TaskFit, fit_task
from .laws.fitting import DEFAULT_HUBER_DELTA
from .laws.hparams import DEFAULT_N_BOOT as HPARAM_N_BOOT
from .laws.hparams import FLOPS_PER_PARAM_TOKEN as HPARAM_FLOPS_PER_TOKEN
from .laws.hparams import HparamFit, HparamPrediction, fit_hparams
from .planning.family_plan import plan_args, standalone_plan
from .summary import summarize_chinchilla
from .tabular import InputError, Points, cell, numeric_column, points_from_frame
from .unique_table import unique_tokens_column

DataSource = pd.DataFrame | Points
"""A table of runs (columns named by ``n_col``, ``d_col``, ``c_col``, ``loss_col``), or points
already read (:func:`~.tabular.read_points`, what the commands pass)."""


@dataclass(frozen=True)
class FitResult:
    """``mlflow-scaling fit``'s result: the law, its intervals, allocation and predictions."""

    summary: dict[str, Any]

    @property
    def params(self) -> dict[str, float]:
        """E, A, B, alpha and beta."""
        return self.summary["params"]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.summary)


@dataclass(frozen=True)
class PlanResult:
    """``mlflow-scaling plan``'s result: GPUs, memory per GPU, days and cost."""

    plan: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.plan)


def points_of(
    runs: DataSource,
    *,
    n_col: str = "N",
    d_col: str = "D",
    c_col: str | None = None,
    loss_col: str | None = "loss",
    source: str | Path = "DataFrame",
) -> Points:
    if isinstance(runs, Points):
        return runs
    return points_from_frame(runs, n_col=n_col, d_col=d_col, c_col=c_col, loss_col=loss_col,
                             source=source)  # fmt: skip


def fit(
    runs: DataSource,
    *,
    budgets: Sequence[float] = (),
    targets: tuple[Sequence[float], Sequence[float]] | None = None,
    n_boot: int = 1000,
    huber_delta: float | str = DEFAULT_HUBER_DELTA,
    source: str = "DataFrame",
    **columns: str | None,
) -> FitResult:
    """Fit L(N, D) = E + A/N^α + B/D^β; predict at compute ``budgets`` and at ``targets``
    (N, D), each within reach of the runs (:func:`~.inputs.check_within_reach`)."""
    points = points_of(runs, **columns)
    check_bootstrap_work(n_boot, points.n.size)
    with np.errstate(over="ignore"):  # data past the float range: the fit says so itself
        largest = float(np.max(points.flops))
    given = np.array(budgets, dtype=float)
    check_within_reach(given, largest, lambda i: f"--budget {given[i]:g}")
    try:
        summary, _ = summarize_chinchilla(
            points.n, points.d, points.loss, huber_delta=huber_delta, n_boot=n_boot,
            budgets=budgets, targets=targets, axis=points.axis(),
        )  # fmt: skip
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from None
    return FitResult(summary)


def check(
    runs: DataSource,
    *,
    target_params: float,
    target_tokens: float | None = None,
    n_boot: int = 400,
    max_halfwidth: float = DEFAULT_MAX_HALFWIDTH,
    source: str = "DataFrame",
    options: dict[str, Any] | None = None,
    **columns: str | None,
) -> CheckResult:
    """The scaling check before a big run of ``target_params`` (and ``target_tokens``, default
    compute-optimal). ``options`` passes the other thresholds of :func:`~.laws.check.scaling_check`
    (``min_sizes``, ``min_span_decades``, ``max_backtest_error``, ...)."""
    points = points_of(runs, **columns)
    check_extrapolates_up(target_params, target_tokens, points.n, points.d)
    check_bootstrap_work(n_boot, points.n.size)
    try:
        return scaling_check(
            points.n, points.d, points.loss, target_params=target_params,
            target_tokens=target_tokens, flops=points.flops, axis=points.axis(),
            max_halfwidth=max_halfwidth, n_boot=n_boot, **(options or {}),
        )  # fmt: skip
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from None


def family_runs(runs: DataSource, name: str, **columns: str | None) -> FamilyRuns:
    """One family's points as :func:`compare` takes them."""
    p = points_of(runs, **columns)
    return FamilyRuns(name=name, n=p.n, d=p.d, loss=p.loss, flops=p.flops, axis=p.axis())


def compare(
    baseline: DataSource | FamilyRuns,
    candidate: DataSource | FamilyRuns,
    *,
    budgets: Sequence[float] | None = None,
    n_boot: int = 200,
    **columns: str | None,
) -> Comparison:
    """Does ``candidate`` scale better than ``baseline``? Multiplier, crossover and verdict."""
    pair = [
        runs if isinstance(runs, FamilyRuns) else family_runs(runs, name, **columns)
        for runs, name in ((baseline, "baseline"), (candidate, "candidate"))
    ]
    if n_boot < MIN_BOOT:
        raise InputError(f"--bootstrap {n_boot}: the comparison's intervals need at "
                         f"least {MIN_BOOT} replicates")  # fmt: skip
    try:
        return compare_families(*pair, budgets=budgets, n_boot=n_boot)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def plan(
    *, params: float, tokens: float | None = None, budget: float | None = None, **options: Any
) -> PlanResult:
    """The cluster plan of a model of ``params`` parameters trained on ``tokens`` (or on
    ``budget`` FLOPs): ``options`` are the ``plan`` command's (``gpu``, ``gpus``, ``mfu``,
    ``precision``, ``seq_len``, ...; ``mlflow-scaling plan --help``)."""
    args = plan_args(params=params, tokens=tokens, budget=budget, **options)
    return PlanResult(standalone_plan(args))


def accuracy_column(
    runs: pd.DataFrame,
    metric_col: str,
    chance: float,
    n_examples: int | None = None,
    *,
    source: str | Path = "DataFrame",
) -> np.ndarray:
    """The accuracy column: each in [0, 1] and none far below chance (:mod:`.inputs`)."""
    acc = numeric_column(runs, metric_col, source, quantity=ACCURACY)
    for i, value in enumerate(acc):
        problem = below_chance_problem(float(value), chance, n_examples)
        if problem:
            raise InputError(f"{cell(runs, metric_col, source, i)}: {problem}")
    return acc


def downstream(
    runs: pd.DataFrame,
    *,
    task_loss_col: str,
    metric_col: str,
    chance: float,
    targets: Sequence[tuple[float, ...]] = (),
    n_boot: int = 200,
    seed: int = 0,
    n_examples: int | None = None,
    source: str | Path = "DataFrame",
    run_col: str | None = None,
    step_col: str | None = None,
    skip_fraction: float = DEFAULT_SKIP_FRACTION,
    **columns: str | None,
) -> TaskFit:
    """A task's accuracy in two steps: the task loss against (N, D), then a sigmoid from
    ``chance`` to a fitted ceiling (:func:`~.laws.downstream.fit_task`).

    With ``run_col`` and ``step_col`` the rows are checkpoints (:mod:`.checkpoint_table`): each
    run's last row is its final point for step 1, and the rows past ``skip_fraction`` of its
    steps are step 2's points (floor and height free)."""
    points = points_of(runs, loss_col=task_loss_col, source=source, **columns)
    accuracy = accuracy_column(runs, metric_col, chance, n_examples, source=source)
    examples = None if n_examples is None else np.full(points.n.size, n_examples)
    final, checkpoints, groups = _split_checkpoints(
        runs, points, accuracy, examples, source,
        run_col=run_col, step_col=step_col, skip_fraction=skip_fraction,
    )  # fmt: skip
    n, d, flops, loss, acc, examples = final
    try:
        task = fit_task(
            metric_col, n, d, flops, acc, loss, chance,
            n_examples=examples, targets=targets, flops_of=points.axis().flops, n_boot=n_boot,
            groups=groups, checkpoints=checkpoints, loss_source=task_loss_col, seed=seed,
        )  # fmt: skip
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from None
    if task.error:
        raise InputError(f"{source}: {task.error}")
    return task


def _split_checkpoints(frame, points: Points, acc, examples, source, *, run_col: str | None,
                       step_col: str | None, skip_fraction: float):  # fmt: skip
    """(final points, step-2 checkpoints, run of each final point) of a checkpoint table, or
    every row as a final point when no run and step columns are named."""
    n, d, c, loss = points.n, points.d, points.flops, points.loss
    if (run_col is None) != (step_col is None):
        raise InputError(f"{source}: --run-col and --step-col go together (one names the "
                         "run, the other the step of each checkpoint)")  # fmt: skip
    if run_col is None:
        return (n, d, c, loss, acc, examples), None, None
    rows = checkpoint_rows(frame, run_col, step_col, n, skip_fraction, source)
    f, k = rows.final, rows.step2
    ck = Checkpoints(rows.run[k], loss[k], acc[k], None if examples is None else examples[k])
    final = (n[f], d[f], c[f], loss[f], acc[f], None if examples is None else examples[f])
    return final, ck, rows.run[f]


DEFAULT_BATCH_COL = "batch_tokens"


@dataclass(frozen=True)
class HparamsResult:
    """A sweep's cells and laws, the predictions at its targets, and what was named."""

    source: str
    fit: HparamFit
    predictions: tuple[HparamPrediction, ...]

    @property
    def notes(self) -> tuple[str, ...]:
        return self.fit.notes

    def to_dict(self) -> dict:
        """Exactly ``cells``, ``laws`` and ``predictions`` (docs/reference.md)."""
        return self.fit.to_dict(self.predictions)


def _batch_column(frame, source, batch_col: str | None) -> np.ndarray | None:
    if batch_col is None:
        if DEFAULT_BATCH_COL not in frame.columns:
            return None
        batch_col = DEFAULT_BATCH_COL
    return numeric_column(frame, batch_col, source, positive=True)


def hparams(
    runs: pd.DataFrame,
    *,
    n_col: str = "N",
    d_col: str = "D",
    lr_col: str = "lr",
    batch_col: str | None = None,
    loss_col: str = "loss",
    targets: tuple[tuple[float, float], ...] = (),
    n_boot: int = HPARAM_N_BOOT,
    seed: int = 0,
    source: str = "DataFrame",
) -> HparamsResult:
    """``mlflow-scaling hparams``: each cell's optimal learning rate (and batch, from
    ``batch_col``, default ``batch_tokens`` when the table has it), the laws across cells, and
    predictions at ``targets`` (N, D) pairs (:mod:`.laws.hparams`)."""
    n, d, lr = (numeric_column(runs, col, source, positive=True) for col in (n_col, d_col, lr_col))
    loss = numeric_column(runs, loss_col, source, positive=True)
    batch = _batch_column(runs, source, batch_col)
    largest = float(np.max(HPARAM_FLOPS_PER_TOKEN * n * d))
    target_flops = np.array([HPARAM_FLOPS_PER_TOKEN * tn * td for tn, td in targets])
    check_within_reach(target_flops, largest, lambda i: f"target {i + 1} (N, D) = {targets[i]}")
    try:
        fit = fit_hparams(n, d, lr, loss, batch=batch, n_boot=n_boot, seed=seed)
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from None
    if fit.lr_law.law is None and targets:
        raise InputError(
            f"{source}: no learning-rate law to predict with ({fit.lr_law.describe()})"
        )
    predictions = tuple(fit.predict(tn, td) for tn, td in targets)
    return HparamsResult(source, fit, predictions)


@dataclass(frozen=True)
class DataConstrainedResult:
    """``mlflow-scaling fit --unique-col``'s result: the data-constrained law (R*_D, R*_N
    with intervals) and, with ``unique_tokens``, the best split of each budget."""

    source: str
    fit: DataConstrainedFit
    unique_tokens: float | None = None
    allocations: tuple[DataBudgetAllocation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {**self.fit.to_dict(), "fresh_law": self.fit.chinchilla.law.to_dict()}
        if self.unique_tokens is not None:
            out["data_budget"] = [a.to_dict() for a in self.allocations]
        return out


DEFAULT_DC_N_BOOT = 200
"""Bootstrap replicates of the data-constrained fit (each is a 7-parameter L-BFGS-B)."""


def fit_data_constrained(
    runs: pd.DataFrame,
    *,
    unique_col: str,
    run_col: str | None = None,
    unique_tokens: float | None = None,
    budgets: Sequence[float] = (),
    n_boot: int = DEFAULT_DC_N_BOOT,
    level: float = 0.95,
    seed: int = 0,
    huber_delta: float = DEFAULT_HUBER_DELTA,
    source: str = "DataFrame",
    **columns: str | None,
) -> DataConstrainedResult:
    """Fit the data-constrained law (:mod:`.laws.data_constrained`) to runs with their unique
    tokens in ``unique_col`` (rows of one run share ``run_col``'s label; the bootstrap resamples
    runs). With ``unique_tokens`` U, each of ``budgets`` gets the best N, D and epochs and the
    loss given up against unlimited data
    (:func:`~.laws.data_constrained.allocate_with_unique_tokens`).
    """
    points = points_of(runs, source=source, **columns)
    d_col = columns.get("d_col") or "D"
    u, labels = unique_tokens_column(runs, unique_col, points.d, source, d_col=d_col,
                                     run_col=run_col)  # fmt: skip
    given = np.array(budgets, dtype=float)
    if (unique_tokens is None) != (given.size == 0):
        raise InputError("--unique-tokens and --budget go together: the best split of a budget "
                         "under a data budget of U unique tokens")  # fmt: skip
    if isinstance(huber_delta, str):
        raise InputError(f"--huber-delta {huber_delta}: the data-constrained fit takes a number")
    with np.errstate(over="ignore"):
        check_within_reach(given, float(np.max(points.flops)), lambda i: f"--budget {given[i]:g}")
    check_bootstrap_work(n_boot, points.n.size)
    try:
        fit = fit_repeats(points.n, points.d, u, points.loss, runs=labels, n_boot=n_boot,
                          level=level, seed=seed, huber_delta=huber_delta)  # fmt: skip
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from None
    if unique_tokens is None:
        return DataConstrainedResult(source, fit)
    if not fit.identified:
        raise InputError(f"{source}: every run is single-epoch, so the repetition terms were "
                         "not identified and the worth of repeated data is unknown: "
                         "--unique-tokens needs runs of more than one epoch")  # fmt: skip
    try:
        allocations = tuple(allocate_with_unique_tokens(fit.law, c, unique_tokens) for c in given)
    except ValueError as exc:
        raise InputError(f"--unique-tokens {unique_tokens:g}: {exc}") from None
    return DataConstrainedResult(source, fit, float(unique_tokens), allocations)
