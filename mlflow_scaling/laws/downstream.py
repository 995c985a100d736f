"""Downstream performance: predict a task's accuracy at a target from small runs, in two steps.

Teams are judged on benchmark accuracy, not on validation loss. The labs that publish their
method (Llama 3 report §3.2.1; Bhagia et al. 2024, OLMo's model ladder) predict it in two steps:

1. **Task loss** (:mod:`downstream_loss`): the loss on the task's correct answers against
   (N, D), or against C on the compute frontier, fitted on each run's final point. Without a
   task loss the training loss is the step-1 variable.
2. **Accuracy** (:mod:`downstream_sigmoid`): ``acc(L) = b + a/(1 + e^(k(L − L0)))``, with the
   floor b at chance on final points, and free floor and height where the runs logged
   intermediate **checkpoints** (:class:`Checkpoints`), which are step-2 points.

For comparison, the **one-step** fit puts accuracy directly against compute with the same
sigmoid in ``x = log10 C`` and its floor at chance (Krajewski et al. 2025 argue for such
direct fits in some regimes).

**Uncertainty** (:mod:`downstream_chain`): a bootstrap over runs through the whole chain, with
step 1's extrapolation error and step 2's residuals drawn by run, and each step's share of the
interval. **Phases** (:mod:`downstream_phase`): cold start, scaling or plateau along compute,
and the task's criterion for the scaling check.

This module is the entry point: :func:`fit_task` and the names of the modules above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike

from .compute_axis import ComputeAxis
from .downstream_chain import (
    DEFAULT_SKIP_FRACTION,
    Chain,
    Checkpoints,
    fit_chain,
    later_checkpoints,
)
from .downstream_loss import (
    STEP1_CHINCHILLA,
    STEP1_COMPUTE,
    FlopsOf,
    LossStep,
    fit_loss_step,
    rising_task_loss,
    spans_both_axes,
)
from .downstream_phase import TaskPhase, above_chance_p_value, task_criteria, task_phase
from .downstream_sigmoid import Sigmoid, fit_sigmoid, refit_sigmoids, sigmoid_warnings
from .fitting import DEFAULT_HUBER_DELTA
from .phases import INVERSE_SCALING
from .scatter import size_labels

__all__ = [
    "DEFAULT_SKIP_FRACTION",
    "STEP1_CHINCHILLA",
    "STEP1_COMPUTE",
    "Checkpoints",
    "LossStep",
    "Sigmoid",
    "TaskFit",
    "TaskPhase",
    "above_chance_p_value",
    "fit_loss_step",
    "fit_sigmoid",
    "fit_task",
    "later_checkpoints",
    "refit_sigmoids",
    "rising_task_loss",
    "spans_both_axes",
    "task_criteria",
    "task_phase",
]

_CURVE_POINTS = 60


@dataclass(frozen=True)
class TaskFit:
    """Everything fitted for one task: both steps, the one-step fit, phase, predictions."""

    name: str
    chance: float
    loss_source: str
    step1: LossStep | None
    sigmoid: Sigmoid | None
    one_step: Sigmoid | None
    phase: TaskPhase
    predictions: tuple[dict, ...]
    backtest: dict | None
    curve: dict = field(default_factory=dict)
    n_points: int = 0
    error: str = ""
    chain: Chain | None = None
    warnings: tuple[str, ...] = ()

    @property
    def prediction(self) -> dict | None:
        return self.predictions[0] if self.predictions else None

    def to_dict(self) -> dict:
        steps = None
        if self.step1 is not None and self.sigmoid is not None:
            steps = {
                "loss_fit": {**self.step1.to_dict(), "loss_source": self.loss_source},
                "sigmoid": self.sigmoid.to_dict(),
            }
            if self.chain is not None:
                s2 = self.chain.step2
                steps["loss_fit"]["extrapolation"] = self.chain.calibration.to_dict()
                steps["sigmoid_points"] = {
                    "on": "checkpoints" if s2.on_checkpoints else "final points",
                    "n_points": int(s2.loss.size),
                    "n_runs": int(np.unique(s2.run).size),
                    "weights": s2.weighting,
                }
        return {
            "phase": self.phase.phase,
            "phase_reason": self.phase.reason,
            "segments": list(self.phase.segments),
            "sizes": list(self.phase.sizes),
            "chance": self.chance,
            "n_points": self.n_points,
            "steps": steps,
            "one_step": None if self.one_step is None else self.one_step.one_step_dict(),
            "predictions": [dict(p) for p in self.predictions],
            "prediction": None if self.prediction is None else dict(self.prediction),
            "largest_size_backtest": self.backtest,
            "curve": self.curve,
            "error": self.error or None,
            "warnings": list(self.warnings),
        }


def _validated(name, n, d, c, accuracy, step1_loss, chance):
    n, d, c, acc, loss = (np.asarray(v, dtype=float).ravel() for v in
                          (n, d, c, accuracy, step1_loss))  # fmt: skip
    if not (n.size == d.size == c.size == acc.size == loss.size):
        raise ValueError("N, D, C, accuracy and loss must have equal lengths")
    for label, arr, ok in (
        ("N", n, n > 0), ("D", d, d > 0), ("C", c, c > 0), ("task loss", loss, loss > 0),
        ("accuracy", acc, (acc >= 0) & (acc <= 1)),
    ):  # fmt: skip
        bad = np.flatnonzero(~np.isfinite(arr) | ~ok)
        if bad.size:
            raise ValueError(
                f"task {name!r}: {label} of row {int(bad[0])} is {float(arr[bad[0]])!r}"
            )
    if not 0 <= chance < 1:
        raise ValueError(f"task {name!r}: chance must lie in [0, 1), got {chance!r}")
    return n, d, c, acc, loss


def _gain_at(chain: Chain, flops_of: FlopsOf):
    """The chain's accuracy gain per decade of compute through plans (N, D): up and down the
    ladder through the run, N and D both scaled by 10^(±1/4); infinite below the sigmoid's
    midpoint (a slow gain there is an early take-off, not saturation)."""

    def gain_at(ns: np.ndarray, ds: np.ndarray) -> np.ndarray:
        step = 10.0**0.25
        lo_c, lo_l = chain.step1.along_ladder(ns / step, ds / step, flops_of)
        hi_c, hi_l = chain.step1.along_ladder(ns * step, ds * step, flops_of)
        decades = np.log10(hi_c / lo_c)
        gain = (chain.sigmoid.predict(hi_l) - chain.sigmoid.predict(lo_l)) / decades
        below_mid = chain.step1.predict(ns, ds, flops_of(ns, ds)) > chain.sigmoid.L0
        return np.where(below_mid, np.inf, gain)

    return gain_at


def _predict_targets(chain: Chain, targets, flops_of: FlopsOf, level: float, n_boot: int):
    if not targets:
        return ()
    tn = np.array([t[0] for t in targets], dtype=float)
    td = np.array([t[1] for t in targets], dtype=float)
    tc = np.asarray(flops_of(tn, td), dtype=float)
    tc = np.array([t[2] if len(t) > 2 else x for t, x in zip(targets, tc, strict=True)])
    predictions = tuple(chain.predict(tn, td, tc, level))
    for row in predictions:
        row["interval"] = (
            f"{level:.0%} bootstrap prediction interval over runs through both steps "
            f"({n_boot} replicates), step 1 widened by its extrapolation error" if n_boot else None
        )  # fmt: skip
    return predictions


# Over 60 lines only by its documented keyword options and docstring; the body is short.
def fit_task(
    name: str,
    n: ArrayLike,
    d: ArrayLike,
    c: ArrayLike,
    accuracy: ArrayLike,
    step1_loss: ArrayLike,
    chance: float,
    *,
    n_examples: ArrayLike | None = None,
    groups: ArrayLike | None = None,
    targets: Sequence[tuple[float, ...]] = (),
    flops_of: FlopsOf | None = None,
    loss_source: str = "task loss",
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    huber_delta: float | str = DEFAULT_HUBER_DELTA,
    backtest: bool = True,
    checkpoints: Checkpoints | None = None,
    free_floor: bool | None = None,
) -> TaskFit:
    """Fit one task's chain (module docstring) and predict accuracy at each target (N, D) or
    (N, D, C).

    The arrays n … step1_loss are each run's **final** point. ``step1_loss`` is the task loss
    of each run, or the training loss where the task logs none (say which in
    ``loss_source``). ``checkpoints`` (their ``run`` labelled as ``groups``) are step 2's
    points instead of the final points; ``free_floor`` (default: with checkpoints) fits the
    sigmoid's floor and height. ``flops_of(N, D)`` places a target without its own C on the
    runs' compute axis ``c`` (default 6·N·D). A chain that cannot be fitted is reported in
    ``error`` with the phase still measured.
    """
    n, d, c, acc, loss = _validated(name, n, d, c, accuracy, step1_loss, chance)
    groups = np.arange(n.size) if groups is None else np.asarray(groups).ravel()
    flops_of = flops_of or ComputeAxis.six_nd().flops
    free = checkpoints is not None if free_floor is None else bool(free_floor)
    fit_args = (chance, n_boot, seed, huber_delta, checkpoints, free)
    chain, error = None, ""
    try:
        chain = _chain(n, d, c, loss, acc, groups, *fit_args)
    except ValueError as exc:
        error = str(exc)
    gain_at = None if chain is None else _gain_at(chain, flops_of)
    phase = task_phase(n, d, c, acc, chance, n_examples, gain_at=gain_at, task_loss=loss)
    rising = None if chain is None else rising_task_loss(chain.step1)
    if rising:
        phase = replace(phase, phase=INVERSE_SCALING, reason=rising)
    predictions: tuple[dict, ...] = ()
    backtest_doc, curve = None, {}
    if chain is not None:
        predictions = _predict_targets(chain, targets, flops_of, level, n_boot)
        if backtest:
            backtest_doc = _largest_size_backtest(n, d, c, loss, acc, groups, fit_args, level)
        curve = _curve(chain, n, d, loss, predictions, flops_of)
    return TaskFit(
        name=name, chance=float(chance), loss_source=loss_source,
        step1=None if chain is None else chain.step1,
        sigmoid=None if chain is None else chain.sigmoid,
        one_step=None if chain is None else chain.one_step,
        phase=phase, predictions=predictions, backtest=backtest_doc, curve=curve,
        n_points=int(n.size), error=error, chain=chain,
        warnings=() if chain is None else tuple(sigmoid_warnings(chain.sigmoid)),
    )  # fmt: skip


def _chain(n, d, c, loss, acc, groups, chance, n_boot, seed, huber_delta, checkpoints,
           free) -> Chain:  # fmt: skip
    return fit_chain(n, d, c, loss, acc, chance, groups, n_boot, seed, huber_delta,
                     checkpoints=checkpoints, free_floor=free)  # fmt: skip


def _without(checkpoints: Checkpoints | None, runs: np.ndarray) -> Checkpoints | None:
    """The checkpoints of every run but ``runs``."""
    if checkpoints is None:
        return None
    keep = ~np.isin(checkpoints.run, runs)
    ex = None if checkpoints.n_examples is None else checkpoints.n_examples[keep]
    return Checkpoints(checkpoints.run[keep], checkpoints.loss[keep], checkpoints.accuracy[keep],
                       ex)  # fmt: skip


def _largest_size_backtest(n, d, c, loss, acc, groups, fit_args, level) -> dict:
    """Fit the chain without the largest size (and its checkpoints); predict its run of
    largest compute."""
    sizes = size_labels(n)
    largest = sizes == sizes.max()
    idx = np.flatnonzero(largest)
    i = int(idx[np.argmax(c[idx])])
    out: dict = {"N": float(n[i]), "D": float(d[i]), "C": float(c[i]),
                 "measured": float(acc[i]), "predicted": None, "lo": None, "hi": None,
                 "one_step_predicted": None, "n_fitted": int((~largest).sum())}  # fmt: skip
    keep = ~largest
    chance, n_boot, seed, huber_delta, checkpoints, free = fit_args
    args = (chance, n_boot, seed, huber_delta, _without(checkpoints, groups[largest]), free)
    try:
        chain = _chain(n[keep], d[keep], c[keep], loss[keep], acc[keep], groups[keep], *args)
    except ValueError as exc:
        out["error"] = f"fit without the largest size: {exc}"
        return out
    row = chain.predict(n[i : i + 1], d[i : i + 1], c[i : i + 1], level)[0]
    out.update(predicted=row["metric"], lo=row["lo"], hi=row["hi"],
               one_step_predicted=row["one_step"], task_loss_predicted=row["task_loss"],
               task_loss_measured=float(loss[i]))  # fmt: skip
    out["measured_outside_interval"] = (
        None if row["lo"] is None else not row["lo"] <= float(acc[i]) <= row["hi"]
    )
    out["error_two_step"] = abs(row["metric"] - float(acc[i]))
    out["error_one_step"] = abs(row["one_step"] - float(acc[i]))
    return out


def _curve(chain: Chain, n, d, loss, predictions, flops_of: FlopsOf) -> dict:
    """Arrays for the figure: the chain and the one-step fit along the family's ladder (the
    median tokens per parameter, from below the smallest run to past the targets), and the
    sigmoid over the task losses seen and predicted."""
    ratio = float(np.median(d / n))
    n_hi = max([float(n.max())] + [p["N"] for p in predictions])
    grid_n = np.geomspace(float(n.min()) / 1.5, n_hi * 1.5, _CURVE_POINTS)
    fc, fl = chain.step1.along_ladder(grid_n, ratio * grid_n, flops_of)
    spread = max(float(np.ptp(loss)), 1e-6)
    losses = [float(loss.min())] + [p["task_loss"] for p in predictions]
    lgrid = np.linspace(min(losses) - 0.3 * spread, float(loss.max()) + 0.3 * spread,
                        _CURVE_POINTS)  # fmt: skip
    return {
        "tokens_per_param": ratio,
        "C": fc.tolist(),
        "task_loss": fl.tolist(),
        "accuracy": chain.sigmoid.predict(fl).tolist(),
        "one_step": chain.one_step.predict(-np.log10(fc)).tolist(),
        "sigmoid_loss": lgrid.tolist(),
        "sigmoid_accuracy": chain.sigmoid.predict(lgrid).tolist(),
    }
