"""Downstream performance: predict a task's accuracy at a target from small runs, in two steps.

Teams are judged on benchmark accuracy, not on validation loss. The labs that publish their
method (Llama 3 report §3.2.1; Bhagia et al. 2024, OLMo's model ladder) predict it in two steps:

1. **Task loss** (:func:`fit_loss_step`). The loss on the task's correct answers (bits per
   byte) against (N, D) with the same engine as the training loss (:mod:`fitting`):
   ``L(N, D) = E + A/N^α + B/D^β``. Where the runs do not span both axes (one token count per
   size, or D ∝ N), N and D cannot be told apart and the task loss is fitted against compute on
   the frontier instead: ``L(C) = E + A·C^(−α)`` (:mod:`power_law`). Without a task loss the
   training loss is the step-1 variable.
2. **Accuracy** (:func:`fit_sigmoid`). ``acc(L) = chance + (ceiling − chance)·σ(k·(L0 − L))``
   with ``σ(z) = 1/(1 + e^(−z))``: at chance for a high loss, rising as the loss falls past
   L0, saturating at the ceiling. The chance level is fixed (0.25 for four choices);
   ``ceiling ≤ 1``, ``k > 0`` and ``L0`` are fitted by least squares on accuracy.

For comparison, the **one-step** fit puts accuracy directly against compute with the same
sigmoid in ``x = log10 C``: ``acc(C) = chance + (ceiling − chance)·σ(k·(log10 C − log10 C0))``
(Krajewski et al. 2025 argue for such direct fits in some regimes).

**Uncertainty** (:func:`fit_task`). A bootstrap over runs through the whole chain: each replicate
draws the runs with replacement, refits step 1 and step 2 on the same draw, predicts the task
loss at the target, adds a step-1 residual of the full fit drawn at random, maps that loss
through its own sigmoid and adds a step-2 residual. The percentile interval is where a new run's
measured accuracy lands; the errors of both steps compound in it, as they do in reality.

**Phases** (:func:`task_phase`), per task, along compute:

* ``cold_start``: none of the ``cold_start_sizes`` largest sizes has an accuracy
  distinguishable from chance: a one-sided binomial test of ``round(acc·n_examples)`` correct
  answers out of ``n_examples`` against ``p = chance`` (p-value ≥ ``significance``, default
  0.05). Accuracy at chance everywhere is where "emergence" claims come from (Schaeffer et al.
  2023): the task loss may well be falling;
* ``plateau``: above chance, but past the sigmoid's midpoint the fitted chain gains less than
  ``flat_gain_per_decade`` (1 point of accuracy per decade of compute) at the largest sizes
  (accuracy saturating below its ceiling), or the task loss itself is flat at its frontier
  (:func:`detect_phases`);
* ``scaling``: otherwise;

with segments: the leading sizes at chance are ``cold_start``, trailing flat ones ``plateau``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import least_squares
from scipy.special import expit
from scipy.stats import binomtest

from .bootstrap import resample_weights
from .check import Criterion
from .chinchilla import ChinchillaLaw, log_predict
from .compute_axis import ComputeAxis
from .fitting import (
    DEFAULT_HUBER_DELTA,
    EPOCH_HUBER_DELTA,
    HUBER_AUTO,
    fit_chinchilla,
    refit_batch,
)
from .isoflop import cluster_log_values
from .phases import INVERSE_SCALING, detect_phases
from .power_law import SaturatingPowerLaw, fit_saturating_power_law

__all__ = [
    "LossStep",
    "Sigmoid",
    "TaskFit",
    "TaskPhase",
    "fit_loss_step",
    "fit_sigmoid",
    "fit_task",
    "refit_sigmoids",
    "spans_both_axes",
    "task_criteria",
    "task_phase",
]

FlopsOf = Callable[[np.ndarray, np.ndarray], np.ndarray]
SIZE_BANDWIDTH_DECADES = 0.01  # sizes within ~2 % are one size (as the check groups them)
STEP1_CHINCHILLA = "chinchilla_ND"
STEP1_COMPUTE = "frontier_C"
_CURVE_POINTS = 60


# --- step 2: the sigmoid -------------------------------------------------------------------


@dataclass(frozen=True)
class Sigmoid:
    """``acc(x) = chance + (ceiling − chance)·σ(k·(L0 − x))``; x is the task loss.

    The one-step fit uses the same form with ``x = −log10 C`` (so ``L0 = −log10 C0``).
    """

    chance: float
    ceiling: float
    k: float
    L0: float

    def predict(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return self.chance + (self.ceiling - self.chance) * expit(self.k * (self.L0 - x))

    def to_dict(self) -> dict[str, float]:
        return {"chance": self.chance, "ceiling": self.ceiling, "k": self.k, "L0": self.L0}

    def one_step_dict(self) -> dict[str, float]:
        """The one-step parameters in compute terms: C0 where accuracy is half way up."""
        return {"chance": self.chance, "ceiling": self.ceiling, "k": self.k,
                "log10_C0": -self.L0}  # fmt: skip


def _sigmoid_bounds(x: np.ndarray, chance: float) -> tuple[np.ndarray, np.ndarray, float]:
    spread = max(float(np.ptp(x)), 1e-9)
    lower = np.array([chance, np.log(0.1 / spread), x.min() - 2 * spread])
    upper = np.array([1.0, np.log(200.0 / spread), x.max() + 2 * spread])
    return lower, upper, spread


def fit_sigmoid(
    x: ArrayLike,
    accuracy: ArrayLike,
    chance: float,
    *,
    weights: ArrayLike | None = None,
    start: Sigmoid | None = None,
) -> Sigmoid:
    """Least-squares fit of :class:`Sigmoid` with the chance level fixed.

    Parameters are (ceiling, log k, L0) with ``chance ≤ ceiling ≤ 1``, k between 0.1 and 200
    per spread of x, and L0 within two spreads of the observed x. Without ``start`` a small
    grid of starts is tried (ceilings near the best accuracy and at 1, three steepnesses,
    three midpoints) and the best result kept; with ``start`` only that one (the bootstrap).
    ``weights`` multiply each point's squared residual (bootstrap counts).
    """
    x = np.asarray(x, dtype=float).ravel()
    acc = np.asarray(accuracy, dtype=float).ravel()
    if x.size != acc.size:
        raise ValueError(f"x has {x.size} values but accuracy has {acc.size}")
    if x.size < 3:
        raise ValueError(f"the sigmoid has 3 free parameters; got only {x.size} points")
    if not 0.0 <= chance < 1.0:
        raise ValueError(f"chance must lie in [0, 1), got {chance!r}")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
    sw = np.sqrt(w)
    lower, upper, spread = _sigmoid_bounds(x, chance)

    def residuals(theta):
        ceiling, log_k, l0 = theta
        return sw * (chance + (ceiling - chance) * expit(np.exp(log_k) * (l0 - x)) - acc)

    def jacobian(theta):
        ceiling, log_k, l0 = theta
        k = np.exp(log_k)
        z = k * (l0 - x)
        p = expit(z)
        dp = (ceiling - chance) * p * (1 - p)
        return sw[:, None] * np.column_stack([p, dp * z, dp * k])

    if start is not None:
        starts = [np.array([start.ceiling, np.log(start.k), start.L0])]
    else:
        top = float(np.clip(acc.max() + 0.02, chance + 1e-3, 1.0))
        starts = [
            np.array([c, np.log(ks / spread), l0])
            for c in (top, 1.0)
            for ks in (2.0, 8.0, 30.0)
            for l0 in np.quantile(x, [0.1, 0.5, 0.9])
        ]
    best, best_cost = None, np.inf
    for theta0 in starts:
        theta0 = np.clip(theta0, lower + 1e-12, upper - 1e-12)
        res = least_squares(residuals, theta0, jac=jacobian, bounds=(lower, upper),
                            method="trf", max_nfev=200)  # fmt: skip
        if res.cost < best_cost:
            best, best_cost = res.x, res.cost
    assert best is not None
    ceiling, log_k, l0 = (float(v) for v in best)
    return Sigmoid(chance=float(chance), ceiling=ceiling, k=float(np.exp(log_k)), L0=l0)


def refit_sigmoids(
    x: ArrayLike,
    accuracy: ArrayLike,
    start: Sigmoid,
    weights: np.ndarray,
    max_iter: int = 60,
) -> list[Sigmoid]:
    """:func:`fit_sigmoid` for many weight vectors at once (the bootstrap), from ``start``.

    A batched Levenberg–Marquardt on (ceiling, log k, L0): every row of ``weights`` (R, P)
    takes damped Gauss–Newton steps (JᵀWJ + λ·diag(JᵀWJ))Δ = −JᵀWr together, projected onto the
    same bounds; a step is kept only where it lowers that row's weighted sum of squares.
    """
    x = np.asarray(x, dtype=float).ravel()
    acc = np.asarray(accuracy, dtype=float).ravel()
    w = np.asarray(weights, dtype=float)
    chance = start.chance
    lower, upper, _ = _sigmoid_bounds(x, chance)
    theta = np.tile(np.clip([start.ceiling, np.log(start.k), start.L0], lower, upper),
                    (w.shape[0], 1))  # fmt: skip

    def parts(th):
        ceiling, k, l0 = th[:, :1], np.exp(th[:, 1:2]), th[:, 2:3]
        z = k * (l0 - x)
        p = expit(z)
        r = chance + (ceiling - chance) * p - acc
        dp = (ceiling - chance) * p * (1 - p)
        jac = np.stack([p, dp * z, dp * k], axis=2)  # (R, P, 3)
        return r, jac, (w * r**2).sum(axis=1)

    lam = np.full(w.shape[0], 1e-3)
    r, jac, cost = parts(theta)
    for _ in range(max_iter):
        jtw = np.swapaxes(jac, 1, 2) * w[:, None, :]
        a = jtw @ jac
        g = (jtw @ r[:, :, None])[:, :, 0]
        diag = np.einsum("rii->ri", a)
        damped = a + (lam[:, None] * (diag + 1e-12))[:, :, None] * np.eye(3)
        try:
            step = np.linalg.solve(damped, -g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            break
        trial = np.clip(theta + step, lower, upper)
        r_t, jac_t, cost_t = parts(trial)
        better = cost_t < cost
        theta[better], r[better], jac[better], cost[better] = (
            trial[better],
            r_t[better],
            jac_t[better],
            cost_t[better],
        )
        lam = np.where(better, lam / 3, lam * 4)
        if np.all(lam > 1e8):
            break
    return [Sigmoid(chance, float(c), float(np.exp(lk)), float(l0)) for c, lk, l0 in theta]


# --- step 1: the task loss -----------------------------------------------------------------


def spans_both_axes(n: ArrayLike, d: ArrayLike) -> bool:
    """Whether N and D vary independently enough for L(N, D): at least 5 runs, and at least
    two model sizes that were each trained on two or more token counts."""
    n = np.asarray(n, dtype=float).ravel()
    d = np.asarray(d, dtype=float).ravel()
    if n.size < 5:
        return False
    sizes = cluster_log_values(n, SIZE_BANDWIDTH_DECADES)
    tokens = cluster_log_values(d, SIZE_BANDWIDTH_DECADES)
    varied = [np.unique(tokens[sizes == s]).size >= 2 for s in np.unique(sizes)]
    return int(np.sum(varied)) >= 2


def _pareto(c: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Indices of the runs that beat every run of smaller compute (the compute frontier)."""
    order = np.lexsort((loss, c))
    best_before = np.concatenate([[np.inf], np.minimum.accumulate(loss[order])[:-1]])
    return np.sort(order[loss[order] < best_before])


@dataclass(frozen=True)
class LossStep:
    """Step 1: the task loss as a function of (N, D), or of C on the frontier.

    ``law`` is a :class:`ChinchillaLaw` (``kind = "chinchilla_ND"``) or a
    :class:`SaturatingPowerLaw` in C (``kind = "frontier_C"``); ``residuals`` are the full
    fit's log residuals on the points it used (``used``); ``huber_delta`` the δ it was fitted
    with (``"auto"`` resolved), which the bootstrap reuses.
    """

    kind: str
    law: ChinchillaLaw | SaturatingPowerLaw
    residuals: np.ndarray
    used: np.ndarray
    huber_delta: float = EPOCH_HUBER_DELTA

    def predict(self, n: ArrayLike, d: ArrayLike, c: ArrayLike) -> np.ndarray:
        if self.kind == STEP1_CHINCHILLA:
            assert isinstance(self.law, ChinchillaLaw)
            return self.law.predict(n, d)
        return np.asarray(self.law.predict(c), dtype=float)

    def along_ladder(
        self, n: np.ndarray, d: np.ndarray, flops_of: FlopsOf
    ) -> tuple[np.ndarray, np.ndarray]:
        """(compute, task loss) at the plans (n, d), placed on the family's compute axis."""
        c = np.asarray(flops_of(n, d), dtype=float)
        return c, self.predict(n, d, c)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "variable": "N, D" if self.kind == STEP1_CHINCHILLA else "C (compute frontier)",
            "params": self.law.to_dict(),
            "n_points": int(self.used.size),
        }


def fit_loss_step(
    n: ArrayLike,
    d: ArrayLike,
    c: ArrayLike,
    loss: ArrayLike,
    *,
    huber_delta: float | str = DEFAULT_HUBER_DELTA,
) -> LossStep:
    """Step 1 (module docstring): Chinchilla in (N, D) where the runs span both axes, else the
    saturating power law in C fitted to the compute frontier (at least 3 points)."""
    n, d, c, loss = (np.asarray(v, dtype=float).ravel() for v in (n, d, c, loss))
    if spans_both_axes(n, d):
        fit = fit_chinchilla(n, d, loss, huber_delta=huber_delta)
        res = np.log(loss) - log_predict(fit.law.log_params, np.log(n), np.log(d))
        return LossStep(STEP1_CHINCHILLA, fit.law, res.ravel(), np.arange(n.size),
                        fit.huber_delta)  # fmt: skip
    used = _pareto(c, loss)
    if used.size < 3:
        raise ValueError(
            f"the task loss needs 3 runs on the compute frontier (the runs do not span N and D "
            f"separately); found {used.size}"
        )
    delta = EPOCH_HUBER_DELTA if huber_delta == HUBER_AUTO else float(huber_delta)
    law, _ = fit_saturating_power_law(c[used], loss[used], huber_delta=delta)
    res = np.log(loss[used]) - np.log(law.predict(c[used]))
    return LossStep(STEP1_COMPUTE, law, res, used, delta)


def _loss_replicates(
    step: LossStep,
    n: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    loss: np.ndarray,
    weights: np.ndarray,
) -> list[LossStep]:
    """Step 1 refitted on every bootstrap draw (rows of ``weights``), started from the fit."""
    if step.kind == STEP1_CHINCHILLA:
        assert isinstance(step.law, ChinchillaLaw)
        starts = step.law.log_params[None, :]
        thetas, _ = refit_batch(n, d, loss, weights, starts, huber_delta=step.huber_delta)
        return [
            LossStep(
                step.kind,
                ChinchillaLaw.from_log_params(t),
                step.residuals,
                step.used,
                step.huber_delta,
            )  # fmt: skip
            for t in thetas
        ]
    out = []
    used = step.used
    for w in weights:
        wu = w[used]
        if np.count_nonzero(wu) < 2 or np.unique(c[used][wu > 0]).size < 2:
            out.append(step)  # a draw without two frontier points cannot refit; keep the fit
            continue
        law, _ = fit_saturating_power_law(c[used], loss[used], weights=wu,
                                          huber_delta=step.huber_delta)  # fmt: skip
        out.append(LossStep(step.kind, law, step.residuals, used, step.huber_delta))
    return out


# --- phases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskPhase:
    """The downstream phase of one task, its segments along compute and the per-size tests."""

    phase: str
    reason: str
    segments: tuple[dict, ...]
    sizes: tuple[dict, ...]

    def to_dict(self) -> dict:
        return {
            "phase": self.phase,
            "reason": self.reason,
            "segments": [dict(s) for s in self.segments],
            "sizes": [dict(s) for s in self.sizes],
        }


SAME_COMPUTE_DECADES = 0.1
"""Sizes whose largest runs span less compute than this (in decades) are one budget."""


def above_chance_p_value(accuracy: float, chance: float, n_examples: int) -> float:
    """One-sided binomial test: P(at least this many correct | every answer a guess)."""
    correct = int(round(accuracy * n_examples))
    return float(binomtest(correct, n_examples, chance, alternative="greater").pvalue)


def task_phase(
    n: ArrayLike,
    d: ArrayLike,
    c: ArrayLike,
    accuracy: ArrayLike,
    chance: float,
    n_examples: ArrayLike | None,
    *,
    gain_at: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    task_loss: ArrayLike | None = None,
    significance: float = 0.05,
    cold_start_sizes: int = 2,
    flat_gain_per_decade: float = 0.01,
    chance_tolerance: float = 0.01,
) -> TaskPhase:
    """Cold start, scaling or plateau for one task (module docstring), with segments in C.

    Each model size is represented by its run of largest compute. ``n_examples`` (per run, or
    None) sizes the binomial test; without it a size is at chance when its accuracy is within
    ``chance_tolerance`` of chance. ``gain_at(N, D)`` is the fitted chain's accuracy gain per
    decade of compute through the plans (N, D) (None: no accuracy plateau test);
    ``task_loss`` enables the flat-task-loss test.
    """
    n, d, c, acc = (np.asarray(v, dtype=float).ravel() for v in (n, d, c, accuracy))
    sizes = cluster_log_values(n, SIZE_BANDWIDTH_DECADES) if n.size else np.zeros(0, int)
    labels = np.unique(sizes)
    if labels.size < 3:
        return TaskPhase("insufficient_data", f"{labels.size} model sizes; 3 are needed", (), ())
    examples = None if n_examples is None else np.asarray(n_examples, dtype=float).ravel()
    rows = []
    for s in labels:
        idx = np.flatnonzero(sizes == s)
        i = int(idx[np.lexsort((acc[idx], c[idx]))[-1]])  # largest compute, then best accuracy
        row = {"N": float(n[i]), "D": float(d[i]), "C": float(c[i]), "accuracy": float(acc[i])}
        if examples is not None and np.isfinite(examples[i]) and examples[i] >= 1:
            p = above_chance_p_value(acc[i], chance, int(examples[i]))
            row.update(n_examples=int(examples[i]), p_value=p, above_chance=p < significance)
        else:
            row.update(n_examples=None, p_value=None,
                       above_chance=bool(acc[i] > chance + chance_tolerance))  # fmt: skip
        rows.append(row)
    above = np.array([r["above_chance"] for r in rows])
    xs = np.array([r["C"] for r in rows])
    test = (
        f"binomial test at {significance:g}"
        if all(r["n_examples"] for r in rows)
        else f"within {chance_tolerance:g} of chance (no n_examples for every size)"
    )
    labels_out = np.where(above, "scaling", "cold_start").astype(object)
    first_above = int(np.argmax(above)) if above.any() else above.size
    labels_out[first_above:] = "scaling"
    top = above[-cold_start_sizes:]
    if not top.any():
        labels_out[:] = "cold_start"
        phase = "cold_start"
        reason = (
            f"accuracy of the {min(cold_start_sizes, above.size)} largest sizes is "
            f"indistinguishable from chance {chance:g} ({test})"
        )
    else:
        phase, reason = "scaling", f"accuracy above chance {chance:g} at the largest sizes ({test})"
        flat = np.zeros(above.size, bool)
        if gain_at is not None:
            plans = np.array([[r["N"], r["D"]] for r in rows])
            gains = np.asarray(gain_at(plans[:, 0], plans[:, 1]), dtype=float)
            for r, g in zip(rows, gains, strict=True):
                r["gain_per_decade"] = float(g) if np.isfinite(g) else None
            flat = gains < flat_gain_per_decade
        loss_flat = False
        if task_loss is not None:
            try:
                lp = detect_phases(c, task_loss, reduce="envelope")
                loss_flat = lp.phase == "plateau"
            except ValueError:
                loss_flat = False
            if loss_flat:
                start = next(s.x_min for s in reversed(lp.segments) if s.phase == "plateau")
                flat |= xs >= start
        # Trailing flat sizes after some scaling are the plateau.
        trailing = 0
        for f in flat[::-1][: above.size - first_above - 1]:
            if not f:
                break
            trailing += 1
        if trailing and flat[-1]:
            labels_out[above.size - trailing :] = "plateau"
            phase = "plateau"
            reason = (
                "task loss is flat at its frontier"
                if loss_flat
                else f"accuracy gains under {flat_gain_per_decade:g} per decade of compute at "
                f"the largest sizes (saturating at {float(acc.max()):.3g})"
            )
    axis, xs = _segment_axis(rows, xs)
    segments = []
    for j, lab in enumerate(labels_out):
        if segments and segments[-1]["phase"] == lab:
            segments[-1]["x_max"] = float(xs[j])
        else:
            segments.append({"phase": str(lab), "x_min": float(xs[j]), "x_max": float(xs[j])})
    for seg in segments:
        seg["axis"] = axis
    return TaskPhase(phase, reason, tuple(segments), tuple(rows))


def _segment_axis(rows: list[dict], compute: np.ndarray) -> tuple[str, np.ndarray]:
    """Segments run along C, unless every size's largest run has about the same compute
    (an isoFLOP grid, each size trained at every budget): then along N, which they span."""
    if np.ptp(np.log10(compute)) >= SAME_COMPUTE_DECADES:
        return "C", compute
    return "N", np.array([r["N"] for r in rows])


# --- the whole chain -----------------------------------------------------------------------


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
        }


@dataclass(frozen=True)
class _Chain:
    """Both steps and the one-step fit on all runs, with their bootstrap replicates.

    A replicate r predicts acc_r = sig_r(L_r(N, D)·e^(ε1)) + ε2 with ε1 a log residual of the
    full step-1 fit and ε2 a residual of the full sigmoid fit, drawn at random: the percentile
    interval of acc_r is where a new run's measured accuracy lands.
    """

    step1: LossStep
    sigmoid: Sigmoid
    one_step: Sigmoid
    acc_residuals: np.ndarray
    one_step_residuals: np.ndarray
    replicates: list[tuple[LossStep, Sigmoid, Sigmoid]]
    seed: int

    def predict(
        self, n: np.ndarray, d: np.ndarray, c: np.ndarray, level: float
    ) -> list[dict[str, float | None]]:
        loss = self.step1.predict(n, d, c)
        acc = self.sigmoid.predict(loss)
        one = self.one_step.predict(-np.log10(c))
        rows = [
            {"N": float(a), "D": float(b), "C": float(cc), "task_loss": float(tl),
             "metric": float(m), "lo": None, "hi": None, "one_step": float(o),
             "one_step_lo": None, "one_step_hi": None}
            for a, b, cc, tl, m, o in zip(n, d, c, loss, acc, one, strict=True)
        ]  # fmt: skip
        if not self.replicates:
            return rows
        rng = np.random.default_rng(self.seed + 1)
        r = len(self.replicates)
        res1 = rng.choice(self.step1.residuals, size=(r, n.size))
        res2 = rng.choice(self.acc_residuals, size=(r, n.size))
        res_one = rng.choice(self.one_step_residuals, size=(r, n.size))
        chain = np.empty((r, n.size))
        direct = np.empty((r, n.size))
        for i, (s1, sig, one_sig) in enumerate(self.replicates):
            chain[i] = sig.predict(s1.predict(n, d, c) * np.exp(res1[i])) + res2[i]
            direct[i] = one_sig.predict(-np.log10(c)) + res_one[i]
        q = ((1 - level) / 2, 1 - (1 - level) / 2)
        lo, hi = np.quantile(np.clip(chain, 0, 1), q, axis=0)
        olo, ohi = np.quantile(np.clip(direct, 0, 1), q, axis=0)
        for j, row in enumerate(rows):
            row.update(lo=float(lo[j]), hi=float(hi[j]),
                       one_step_lo=float(olo[j]), one_step_hi=float(ohi[j]))  # fmt: skip
        return rows


SIGMOID_PARAMS = 3
STEP1_PARAMS = {STEP1_CHINCHILLA: 5, STEP1_COMPUTE: 3}


def _fit_chain(n, d, c, loss, acc, chance, groups, n_boot, seed, huber_delta) -> _Chain:
    step1 = fit_loss_step(n, d, c, loss, huber_delta=huber_delta)
    for what, params, points in (
        (f"step 1 ({step1.kind})", STEP1_PARAMS[step1.kind], step1.used.size),
        ("the sigmoid (step 2)", SIGMOID_PARAMS, n.size),
    ):
        if points <= params:
            raise ValueError(
                f"{what} has {params} parameters; {points} runs cannot support them: more "
                f"runs than parameters are needed (at least {params + 1})"
            )
    sigmoid = fit_sigmoid(loss, acc, chance)
    one_step = fit_sigmoid(-np.log10(c), acc, chance)
    acc_res = acc - sigmoid.predict(loss)
    one_res = acc - one_step.predict(-np.log10(c))
    replicates = []
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        weights = resample_weights(groups, n_boot, rng)
        steps1 = _loss_replicates(step1, n, d, c, loss, weights)
        sigs = refit_sigmoids(loss, acc, sigmoid, weights)
        ones = refit_sigmoids(-np.log10(c), acc, one_step, weights)
        for w, s1, sig, one in zip(weights, steps1, sigs, ones, strict=True):
            if np.unique(loss[w > 0]).size < 3:  # a draw too thin for 3 parameters
                sig, one = sigmoid, one_step
            replicates.append((s1, sig, one))
    return _Chain(step1, sigmoid, one_step, acc_res, one_res, replicates, seed)


def rising_task_loss(step1: LossStep) -> str | None:
    """Why the fitted task loss rises with scale (a negative exponent), or None."""
    law = step1.law
    exponents = {"alpha": law.alpha, "beta": getattr(law, "beta", 0.0)}
    negative = {k: v for k, v in exponents.items() if v < 0}
    if not negative:
        return None
    shown = ", ".join(f"{k} = {v:.3g}" for k, v in negative.items())
    return f"the task loss rises with scale (step-1 {shown}): inverse scaling"


def _largest_size_backtest(
    n, d, c, loss, acc, chance, groups, n_boot, seed, huber_delta, level
) -> dict:
    """Fit the chain without the largest size; predict its run of largest compute."""
    sizes = cluster_log_values(n, SIZE_BANDWIDTH_DECADES)
    largest = sizes == sizes.max()
    idx = np.flatnonzero(largest)
    i = int(idx[np.argmax(c[idx])])
    out: dict = {"N": float(n[i]), "D": float(d[i]), "C": float(c[i]),
                 "measured": float(acc[i]), "predicted": None, "lo": None, "hi": None,
                 "one_step_predicted": None, "n_fitted": int((~largest).sum())}  # fmt: skip
    keep = ~largest
    try:
        chain = _fit_chain(n[keep], d[keep], c[keep], loss[keep], acc[keep], chance,
                           groups[keep], n_boot, seed, huber_delta)  # fmt: skip
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
) -> TaskFit:
    """Fit one task's chain (module docstring) and predict accuracy at each target (N, D) or
    (N, D, C).

    ``step1_loss`` is the task loss of each run, or the training loss where the task logs
    none (say which in ``loss_source``). ``flops_of(N, D)`` places a target without its own C
    on the runs' compute axis ``c`` (default 6·N·D). A chain that cannot be fitted is
    reported in ``error`` with the phase still measured; nothing raises for lack of data.
    """
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
    groups = np.arange(n.size) if groups is None else np.asarray(groups).ravel()
    flops_of = flops_of or ComputeAxis.six_nd().flops
    chain, error = None, ""
    try:
        chain = _fit_chain(n, d, c, loss, acc, chance, groups, n_boot, seed, huber_delta)
    except ValueError as exc:
        error = str(exc)

    gain_at = None
    if chain is not None:
        ch = chain

        def gain_at(ns: np.ndarray, ds: np.ndarray) -> np.ndarray:
            # Up and down the ladder through the run: N and D both scaled by 10^(±1/4).
            step = 10.0**0.25
            lo_c, lo_l = ch.step1.along_ladder(ns / step, ds / step, flops_of)
            hi_c, hi_l = ch.step1.along_ladder(ns * step, ds * step, flops_of)
            decades = np.log10(hi_c / lo_c)
            gain = (ch.sigmoid.predict(hi_l) - ch.sigmoid.predict(lo_l)) / decades
            # Below the sigmoid's midpoint a slow gain is an early take-off, not saturation.
            below_mid = ch.step1.predict(ns, ds, flops_of(ns, ds)) > ch.sigmoid.L0
            return np.where(below_mid, np.inf, gain)

    phase = task_phase(n, d, c, acc, chance, n_examples, gain_at=gain_at, task_loss=loss)
    rising = None if chain is None else rising_task_loss(chain.step1)
    if rising:
        phase = replace(phase, phase=INVERSE_SCALING, reason=rising)
    predictions: tuple[dict, ...] = ()
    backtest_doc = None
    curve: dict = {}
    if chain is not None:
        if targets:
            tn = np.array([t[0] for t in targets], dtype=float)
            td = np.array([t[1] for t in targets], dtype=float)
            tc = np.asarray(flops_of(tn, td), dtype=float)
            tc = np.array([t[2] if len(t) > 2 else x for t, x in zip(targets, tc, strict=True)])
            predictions = tuple(chain.predict(tn, td, tc, level))
            for row in predictions:
                row["interval"] = (
                    f"{level:.0%} bootstrap prediction interval over runs through both steps "
                    f"({n_boot} replicates)" if n_boot else None
                )  # fmt: skip
        if backtest:
            backtest_doc = _largest_size_backtest(
                n, d, c, loss, acc, chance, groups, n_boot, seed, huber_delta, level
            )
        curve = _curve(chain, n, d, loss, predictions, flops_of)
    return TaskFit(
        name=name,
        chance=float(chance),
        loss_source=loss_source,
        step1=None if chain is None else chain.step1,
        sigmoid=None if chain is None else chain.sigmoid,
        one_step=None if chain is None else chain.one_step,
        phase=phase,
        predictions=predictions,
        backtest=backtest_doc,
        curve=curve,
        n_points=int(n.size),
        error=error,
    )


def _curve(chain: _Chain, n, d, loss, predictions, flops_of: FlopsOf) -> dict:
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


# --- the check -----------------------------------------------------------------------------


def task_criteria(tasks: Mapping[str, dict], gating: Sequence[str]) -> list[Criterion]:
    """One criterion per task for the scaling check, from :meth:`TaskFit.to_dict` documents.

    A gating task passes when it is not in cold start at the largest trained size and its
    predicted accuracy at the target lies above chance with its interval (``lo > chance``; the
    point prediction where there is no interval). Other tasks are reported with
    ``passed = None``: they do not change the verdict. A gating task with no result fails.
    """
    out = []
    gating_set = set(gating)
    for name in sorted(set(tasks) | gating_set):
        doc = tasks.get(name)
        label = f"task:{name}"
        is_gating = name in gating_set
        if doc is None or doc.get("prediction") is None:
            why = "no task result" if doc is None else (doc.get("error") or "no prediction")
            phase = None if doc is None else doc.get("phase")
            out.append(Criterion(label, phase, "not cold start; accuracy above chance",
                                 False if is_gating else None,
                                 f"{'gating' if is_gating else 'not gating'}: {why}"))  # fmt: skip
            continue
        pred = doc["prediction"]
        chance = float(doc["chance"])
        bound = pred["lo"] if pred.get("lo") is not None else pred["metric"]
        cold = doc["phase"] == "cold_start"
        ok = (not cold) and bound > chance
        interval = f" ({pred['lo']:.3f}–{pred['hi']:.3f})" if pred.get("lo") is not None else ""
        detail = (
            f"phase {doc['phase']}; predicted accuracy {pred['metric']:.3f}{interval} at "
            f"N={pred['N']:.3g}, D={pred['D']:.3g}; chance {chance:g}"
        )
        if not is_gating:
            detail = f"not gating (would {'pass' if ok else 'fail'}): {detail}"
        out.append(Criterion(label, float(pred["metric"]), f"> {chance:g}, not cold start",
                             bool(ok) if is_gating else None, detail))  # fmt: skip
    return out
