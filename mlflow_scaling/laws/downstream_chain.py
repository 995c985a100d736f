"""The downstream chain fitted on all runs, its bootstrap, and where its interval comes from.

Step 1 (:mod:`downstream_loss`) is fitted on each run's final point; step 2
(:mod:`downstream_sigmoid`) on the step-2 points: the final points, or the runs' intermediate
**checkpoints** (:class:`Checkpoints`) where they were logged. The mapping from task loss to
accuracy does not depend on the learning-rate schedule, so a checkpoint is a valid step-2 point
even where it is not a valid step-1 point (Bhagia et al. 2024).

**Uncertainty.** A replicate r draws the runs with replacement (one draw for both steps: a
run's final point and its checkpoints go together, so the checkpoints of one run count as one
cluster), refits step 1 and step 2 on the draw, and predicts

    L_r = L̂_r(N, D)·exp(ε1 + s·δ·T),     acc_r = sig_r(L_r) + ε2,

with ε1 a log residual of the full step-1 fit, s·δ·T step 1's extrapolation error at the
target's distance δ (:func:`downstream_loss.calibrate_loss_step`; T a Student t), and ε2 a
step-2 residual drawn by cluster: a run at random, then one of its residuals. The percentile
interval of acc_r is where a new run's measured accuracy lands.

**Each step's share.** The same replicates give acc computed with only step 1 varied
(sig at the full fit applied to L_r) and with only step 2 varied (sig_r + ε2 applied to the
full fit's L̂). Each step's share is its variance over the sum of both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from .bootstrap import resample_weights
from .downstream_loss import (
    STEP1_PARAMS,
    LossCalibration,
    LossStep,
    calibrate_loss_step,
    fit_loss_step,
    loss_replicates,
    no_calibration,
)
from .downstream_sigmoid import Sigmoid, binomial_weights, fit_sigmoid, refit_sigmoids

DEFAULT_SKIP_FRACTION = 0.1
"""Checkpoints in the first 10 % of a run's steps are left out of step 2 (docs: decision
numbers, chosen on the Pythia ladder)."""


@dataclass(frozen=True)
class Checkpoints:
    """Step-2 points logged during training: each row a (run, task loss, accuracy) at a step.

    ``run`` names the run of each row with the same labels as the final points' ``groups``;
    ``n_examples`` (per row, or None) gives the binomial weights.
    """

    run: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    n_examples: np.ndarray | None = None

    @classmethod
    def of(cls, run: ArrayLike, loss: ArrayLike, accuracy: ArrayLike,
           n_examples: ArrayLike | None = None) -> Checkpoints:  # fmt: skip
        run, loss, acc = np.asarray(run).ravel(), np.asarray(loss, float).ravel(), \
            np.asarray(accuracy, float).ravel()  # fmt: skip
        if not run.size == loss.size == acc.size:
            raise ValueError("checkpoints: run, task loss and accuracy must have equal lengths")
        bad = np.flatnonzero(~np.isfinite(loss) | (loss <= 0) | ~np.isfinite(acc) | (acc < 0)
                             | (acc > 1))  # fmt: skip
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"checkpoint {i} of run {str(run[i])!r}: task loss {float(loss[i])!r}, "
                f"accuracy {float(acc[i])!r} (a positive task loss and an accuracy in [0, 1])"
            )
        ex = None if n_examples is None else np.asarray(n_examples, float).ravel()
        return cls(run, loss, acc, ex)


def later_checkpoints(run: ArrayLike, step: ArrayLike, skip_fraction: float) -> np.ndarray:
    """Mask of the rows past the first ``skip_fraction`` of their run's steps
    (``step > skip_fraction·last step``); each run's last row is always kept."""
    run, step = np.asarray(run).ravel(), np.asarray(step, dtype=float).ravel()
    keep = np.zeros(run.size, bool)
    for r in np.unique(run):
        idx = np.flatnonzero(run == r)
        last = step[idx].max()
        keep[idx] = (step[idx] > skip_fraction * last) | (step[idx] == last)
    return keep


@dataclass(frozen=True)
class _Step2Data:
    loss: np.ndarray
    acc: np.ndarray
    run: np.ndarray
    weights: np.ndarray
    on_checkpoints: bool
    weighting: str = "equal"


def _step2_data(loss, acc, groups, checkpoints: Checkpoints | None) -> _Step2Data:
    """Step 2's points: the checkpoints with binomial weights, or the final points unweighted
    (as in round 2: on 15 simulated final points the binomial weights cost 0.04 points of
    accuracy at 10×, benchmarks/bench_downstream.py)."""
    if checkpoints is None:
        return _Step2Data(loss, acc, groups, np.ones_like(acc), False)
    w = binomial_weights(checkpoints.accuracy, checkpoints.n_examples)
    how = "equal" if checkpoints.n_examples is None else "binomial (n_examples)"
    return _Step2Data(checkpoints.loss, checkpoints.accuracy, checkpoints.run, w, True, how)


@dataclass(frozen=True)
class Chain:
    """Both steps and the one-step fit on all runs, with their bootstrap replicates
    (module docstring)."""

    step1: LossStep
    calibration: LossCalibration
    sigmoid: Sigmoid
    one_step: Sigmoid
    step2: _Step2Data
    acc_residuals: np.ndarray
    one_step_residuals: np.ndarray
    replicates: list[tuple[LossStep, Sigmoid, Sigmoid]]
    seed: int

    def predict(
        self, n: np.ndarray, d: np.ndarray, c: np.ndarray, level: float
    ) -> list[dict[str, float | None]]:
        loss = self.step1.predict(n, d, c)
        acc = np.clip(self.sigmoid.predict(loss), 0.0, 1.0)
        one = self.one_step.predict(-np.log10(c))
        rows = [
            {"N": float(a), "D": float(b), "C": float(cc), "task_loss": float(tl),
             "metric": float(m), "lo": None, "hi": None, "one_step": float(o),
             "one_step_lo": None, "one_step_hi": None}
            for a, b, cc, tl, m, o in zip(n, d, c, loss, acc, one, strict=True)
        ]  # fmt: skip
        if self.replicates:
            self._intervals(rows, n, d, c, loss, level)
        return rows

    def _step2_noise(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        """ε2 drawn by cluster: a run at random, then one of that run's residuals."""
        runs = np.unique(self.step2.run)
        by_run = [self.acc_residuals[self.step2.run == r] for r in runs]
        pick = rng.integers(0, runs.size, size=shape)
        u = rng.random(shape)
        out = np.empty(shape)
        for j, res in enumerate(by_run):
            sel = pick == j
            out[sel] = res[np.minimum((u[sel] * res.size).astype(int), res.size - 1)]
        return out

    def _intervals(self, rows, n, d, c, loss, level) -> None:
        rng = np.random.default_rng(self.seed + 1)
        r, m = len(self.replicates), n.size
        res1 = rng.choice(self.step1.residuals, size=(r, m))
        far = self.calibration.growth_per_decade * self.calibration.distance(n, c)
        res1 = res1 + far[None, :] * stats.t.rvs(self.calibration.dof, size=(r, m),
                                                 random_state=rng)  # fmt: skip
        res2 = self._step2_noise(rng, (r, m))
        res_one = rng.choice(self.one_step_residuals, size=(r, m))
        chain, only1, only2, direct = (np.empty((r, m)) for _ in range(4))
        for i, (s1, sig, one_sig) in enumerate(self.replicates):
            loss_i = s1.predict(n, d, c) * np.exp(res1[i])
            chain[i] = sig.predict(loss_i) + res2[i]
            only1[i] = self.sigmoid.predict(loss_i)
            only2[i] = sig.predict(loss) + res2[i]
            direct[i] = one_sig.predict(-np.log10(c)) + res_one[i]
        q = ((1 - level) / 2, 1 - (1 - level) / 2)
        lo, hi = np.quantile(np.clip(chain, 0, 1), q, axis=0)
        olo, ohi = np.quantile(np.clip(direct, 0, 1), q, axis=0)
        v1, v2 = np.var(only1, axis=0), np.var(np.clip(only2, 0, 1), axis=0)
        share1 = np.where(v1 + v2 > 0, v1 / np.maximum(v1 + v2, 1e-300), 0.5)
        for j, row in enumerate(rows):
            row.update(lo=float(lo[j]), hi=float(hi[j]),
                       one_step_lo=float(olo[j]), one_step_hi=float(ohi[j]),
                       share_step1=float(share1[j]), share_step2=float(1 - share1[j]),
                       extrapolation_decades=float(self.calibration.distance(n, c)[j]))  # fmt: skip


def _check_support(step1: LossStep, n_points1: int, n_points2: int, sig_params: int) -> None:
    for what, params, points in (
        (f"step 1 ({step1.kind})", STEP1_PARAMS[step1.kind], n_points1),
        ("the sigmoid (step 2)", sig_params, n_points2),
    ):
        if points <= params:
            raise ValueError(
                f"{what} has {params} parameters; {points} runs cannot support them: more "
                f"runs than parameters are needed (at least {params + 1})"
            )


def fit_chain(
    n, d, c, loss, acc, chance, groups, n_boot, seed, huber_delta, *,
    checkpoints: Checkpoints | None = None, free_floor: bool = False,
) -> Chain:  # fmt: skip
    """Fit both steps and the one-step fit, and draw ``n_boot`` replicates (module docstring;
    without replicates step 1's extrapolation error is not measured: it only widens them)."""
    step1 = fit_loss_step(n, d, c, loss, huber_delta=huber_delta)
    s2 = _step2_data(loss, acc, groups, checkpoints)
    sig_params = 4 if free_floor else 3
    _check_support(step1, step1.used.size, s2.loss.size, sig_params)
    calibration = calibrate_loss_step(step1, n, d, c, loss) if n_boot > 0 else no_calibration(n, c)
    sigmoid = fit_sigmoid(s2.loss, s2.acc, chance, weights=s2.weights, free_floor=free_floor)
    one_step = fit_sigmoid(-np.log10(c), acc, chance)
    acc_res = s2.acc - sigmoid.predict(s2.loss)
    one_res = acc - one_step.predict(-np.log10(c))
    replicates = []
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        both = resample_weights(np.concatenate([np.asarray(groups), np.asarray(s2.run)]),
                                n_boot, rng)  # fmt: skip
        weights, w2 = both[:, : n.size], both[:, n.size :]
        steps1 = loss_replicates(step1, n, d, c, loss, weights)
        sigs = refit_sigmoids(s2.loss, s2.acc, sigmoid, w2 * s2.weights)
        ones = refit_sigmoids(-np.log10(c), acc, one_step, weights)
        for w, v, s1, sig, one in zip(weights, w2, steps1, sigs, ones, strict=True):
            if np.unique(s2.loss[v > 0]).size < sig_params:  # a draw too thin for the sigmoid
                sig = sigmoid
            if np.unique(loss[w > 0]).size < 3:
                one = one_step
            replicates.append((s1, sig, one))
    return Chain(step1, calibration, sigmoid, one_step, s2, acc_res, one_res, replicates, seed)
