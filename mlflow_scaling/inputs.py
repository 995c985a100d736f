"""The input contract: the physical range of every input, checked in one place.

Every command (and the refit job) reads its numbers through this module, so a value outside
its physical range is refused the same way everywhere, with one line naming the culprit (the
option, or the file, column and row). The ranges (docs/reference.md, "The input contract"):

* parameters N >= 1 and tokens D >= 1 (fewer is a unit or column error);
* budgets, FLOPs and every other positive quantity: finite and > 0;
* accuracies in [0, 1], and not far below chance (:func:`below_chance_problem`); evaluation
  examples >= 1;
* a plan's global batch at most its run's tokens, and a given model shape within
  :data:`SHAPE_TOLERANCE` of N;
* a prediction's compute within :data:`MAX_DECADES_BEYOND_DATA` of the largest run
  (:func:`check_within_reach`), and a check's target above its runs
  (:func:`check_extrapolates_up`);
* a product that overflows (training FLOPs N·D·6 past 1.8e308) is an error where it is made
  (:func:`finite_or_overflow`).

Command-line options use the argparse types of :mod:`.argtypes` (``params_count``,
``token_count``, ``positive_float``; the parser class reads ``-1e18`` as a value); columns of
a CSV use :func:`first_out_of_range` through :func:`mlflow_scaling.tabular.numeric_column`;
the refit's member runs through :func:`mlflow_scaling.tracking.reading.member_point`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .laws.fitting import MAX_BOOTSTRAP_WORK


class InputError(ValueError):
    """Bad user input. The message is one line naming the culprit; the CLI exits with 2."""


@dataclass(frozen=True)
class Quantity:
    """A physical quantity's range: ``least`` <= value (<= ``most``), finite."""

    name: str
    least: float
    most: float | None = None
    why: str = ""

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range (a phrase), or None when it is in range."""
        if not math.isfinite(value):
            return f"{value!r} is not a finite number"
        if value < self.least or (self.most is not None and value > self.most):
            span = f"at least {self.least:g}"
            if self.most is not None:
                span = f"in [{self.least:g}, {self.most:g}]"
            why = f" ({self.why})" if self.why else ""
            return f"{self.name} {value:g} is not {span}{why}"
        return None


PARAMS = Quantity("parameters", 1.0, why="fewer than one parameter is a unit or column error")
TOKENS = Quantity("tokens", 1.0, why="fewer than one token is a unit or column error")
ACCURACY = Quantity("accuracy", 0.0, 1.0)
SHAPE_TOLERANCE = 2.0
"""A given shape's parameter count (12·L·d² + vocab·d) must lie within this factor of N."""


def first_out_of_range(values: np.ndarray, quantity: Quantity) -> tuple[int, str] | None:
    """(index, phrase) of the first value outside ``quantity``'s range, or None."""
    for i, value in enumerate(np.asarray(values, dtype=float)):
        problem = quantity.problem(float(value))
        if problem is not None:
            return i, problem
    return None


def finite_or_overflow(value: float, what: str, formula: str) -> float:
    """``value`` when finite; else an :class:`InputError` saying ``what`` overflowed."""
    if math.isfinite(value):
        return value
    raise InputError(f"{what} overflow: {formula} is beyond the float range (1.8e308)")


def check_batch_within_run(batch_tokens: float, run_tokens: float, seq_len: int) -> None:
    """A global batch is at most the run's tokens and holds at least one sequence."""
    if batch_tokens > run_tokens:
        raise InputError(
            f"--global-batch-tokens {batch_tokens:g} is more than the run's {run_tokens:g} "
            "tokens: a batch cannot be larger than the run"
        )
    if batch_tokens < seq_len:
        raise InputError(
            f"--global-batch-tokens {batch_tokens:g} is less than one sequence of --seq-len "
            f"{seq_len}: a global batch holds whole sequences"
        )


def check_shape_matches(n_params: float, shape_params: float, given: str) -> None:
    """A given shape whose parameter count is more than :data:`SHAPE_TOLERANCE` from N."""
    ratio = shape_params / n_params
    if not (1 / SHAPE_TOLERANCE <= ratio <= SHAPE_TOLERANCE):
        raise InputError(
            f"{given} holds {shape_params:.3g} parameters (12·layers·d_model² + vocab·d_model), "
            f"{ratio:.3g}x the {n_params:.3g} planned; a shape must be within "
            f"{SHAPE_TOLERANCE:g}x of N"
        )


MAX_DECADES_BEYOND_DATA = 10.0
"""A prediction's compute may lie at most this many decades past the largest run's (beyond,
every term of the law but E has rounded away and the answer says nothing about the data)."""


def check_within_reach(flops: np.ndarray, largest_run_flops: float, label_of) -> None:
    """Each target compute finite and within :data:`MAX_DECADES_BEYOND_DATA` of the data.

    ``label_of(i)`` names target ``i`` (an option value, or a file's row).
    """
    with np.errstate(all="ignore"):
        decades = np.log10(np.asarray(flops, dtype=float) / largest_run_flops)
    for i, value in enumerate(np.asarray(flops, dtype=float)):
        if not math.isfinite(value):
            raise InputError(f"{label_of(i)}: training FLOPs overflow (C is beyond 1.8e308)")
        if decades[i] > MAX_DECADES_BEYOND_DATA:
            raise InputError(
                f"{label_of(i)}: C = {value:.3g} FLOPs is {decades[i]:.1f} decades past the "
                f"largest run ({largest_run_flops:.3g}); predictions reach at most "
                f"{MAX_DECADES_BEYOND_DATA:g} decades beyond the data"
            )


BELOW_CHANCE_P = 1e-3
"""An accuracy this improbably far below chance (one-sided binomial test) is a wrong
``--chance`` or accuracy column, not a model: guessing scores chance on average."""


def below_chance_problem(accuracy: float, chance: float, n_examples: int | None) -> str | None:
    """Why an accuracy is too far below chance to be a measurement, or None.

    With ``n_examples``: a one-sided binomial p-value under :data:`BELOW_CHANCE_P`; without:
    under half of chance.
    """
    if n_examples is None:
        if accuracy >= chance / 2:
            return None
        how = "under half of it"
    else:
        from scipy.stats import binom

        p = float(binom.cdf(round(accuracy * n_examples), n_examples, chance))
        if p >= BELOW_CHANCE_P:
            return None
        how = f"p = {p:.2g} on {n_examples} examples"
    return (
        f"accuracy {accuracy:g} is far below chance {chance:g} ({how}): a guess scores chance, "
        "so --chance or the accuracy column is wrong"
    )


def check_extrapolates_up(target_params: float, target_tokens: float | None, n, d) -> None:
    """The scaling check's target lies above its runs: N at least the largest trained size,
    tokens (when given) at least the fewest any run had. The check is about extrapolating up."""
    largest, fewest = float(np.max(n)), float(np.min(d))
    if target_params < largest:
        raise InputError(
            f"--target-params {target_params:g} is below the largest trained size "
            f"{largest:.3g}: the check is about extrapolating up"
        )
    if target_tokens is not None and target_tokens < fewest:
        raise InputError(
            f"--target-tokens {target_tokens:g} is fewer than any run's ({fewest:.3g}): the "
            "check is about extrapolating up"
        )


def check_bootstrap_work(n_boot: int, n_points: int) -> None:
    """Replicates × points beyond MAX_BOOTSTRAP_WORK take longer than anyone waits: say so."""
    if n_boot * n_points > MAX_BOOTSTRAP_WORK:
        most = MAX_BOOTSTRAP_WORK // n_points
        lower = f"--bootstrap {most} or fewer" if most >= 50 else "--bootstrap 0"
        raise InputError(
            f"--bootstrap {n_boot} on {n_points:,} points is {n_boot * n_points:.2g} point-refits, "
            f"more than the {MAX_BOOTSTRAP_WORK:.0e} that take about a minute; use {lower}, "
            "or aggregate per run first (one final loss per run)"
        )
