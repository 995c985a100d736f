"""Downstream phases of a task along compute, and its criterion for the scaling check.

**Phases** (:func:`task_phase`), per task:

* ``cold_start``: none of the ``cold_start_sizes`` largest sizes is *clear of chance*: above
  it by a one-sided binomial test of ``round(acc·n_examples)`` correct answers out of
  ``n_examples`` against ``p = chance`` (p-value < ``significance``, default 0.05) **and** at
  least ``min_gain`` (:data:`MIN_GAIN_ABOVE_CHANCE`, 5 points) above chance. The segments
  (which sizes are at chance) use the binomial test alone. The margin was set on Pythia's
  ladder (``benchmarks/pythia_downstream.py``): on 14,042 MMLU questions a 2.8B model's 0.283
  is significant yet no scaling follows (the tasks at chance wander up to 3–5 points above it
  through answer-format effects), while every task that scales there is 7 or more points
  above chance by 2.8B. Accuracy at chance everywhere is
  where "emergence" claims come from (Schaeffer et al. 2023): the task loss may well be falling;
* ``plateau``: above chance, but past the sigmoid's midpoint the fitted chain gains less than
  ``flat_gain_per_decade`` (1 point of accuracy per decade of compute) at the largest sizes
  (accuracy saturating below its ceiling), or the task loss itself is flat at its frontier
  (:func:`detect_phases`);
* ``scaling``: otherwise;

with segments: the leading sizes at chance are ``cold_start``, trailing flat ones ``plateau``.
Each size is judged on its final point (its run of largest compute), never on a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import binomtest

from .check import Criterion
from .phases import detect_phases
from .scatter import count_sizes, size_labels


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


MIN_GAIN_ABOVE_CHANCE = 0.05
"""A size is above chance only when its accuracy is also this far above it (module docstring)."""
SAME_COMPUTE_DECADES = 0.1
"""Sizes whose largest runs span less compute than this (in decades) are one budget."""


def above_chance_p_value(accuracy: float, chance: float, n_examples: int) -> float:
    """One-sided binomial test: P(at least this many correct | every answer a guess)."""
    correct = int(round(accuracy * n_examples))
    return float(binomtest(correct, n_examples, chance, alternative="greater").pvalue)


def _size_rows(n, d, c, acc, chance, examples, significance, chance_tolerance,
               margin) -> list[dict]:  # fmt: skip
    """Each size's run of largest compute (then best accuracy), tested against chance: above
    it by a binomial test where ``examples`` are known (else by ``chance_tolerance``), and
    clear of it when also at least ``margin`` above."""
    sizes = size_labels(n)
    rows = []
    for s in np.unique(sizes):
        idx = np.flatnonzero(sizes == s)
        i = int(idx[np.lexsort((acc[idx], c[idx]))[-1]])  # largest compute, then best accuracy
        row = {"N": float(n[i]), "D": float(d[i]), "C": float(c[i]), "accuracy": float(acc[i])}
        if examples is not None and np.isfinite(examples[i]) and examples[i] >= 1:
            p = above_chance_p_value(acc[i], chance, int(examples[i]))
            row.update(n_examples=int(examples[i]), p_value=p, above_chance=p < significance)
        else:
            row.update(n_examples=None, p_value=None,
                       above_chance=bool(acc[i] > chance + chance_tolerance))  # fmt: skip
        row["clear_of_chance"] = bool(row["above_chance"] and acc[i] - chance >= margin)
        rows.append(row)
    return rows


def _test_words(rows, significance: float, chance_tolerance: float, min_gain: float) -> str:
    """How the sizes were judged against chance, in the reason's words."""
    if all(r["n_examples"] for r in rows):
        return f"binomial test at {significance:g}, and {min_gain:g} above chance"
    return (f"within {chance_tolerance:g} of chance (no n_examples for every size), and "
            f"{min_gain:g} above it")  # fmt: skip


def _flat_sizes(rows, c, task_loss, gain_at, flat_gain_per_decade) -> tuple[np.ndarray, bool]:
    """Which sizes gain less than ``flat_gain_per_decade`` (or sit where the task loss is
    flat at its frontier), and whether the task loss is flat."""
    xs = np.array([r["C"] for r in rows])
    flat = np.zeros(len(rows), bool)
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
    return flat, loss_flat


def _trailing(flat: np.ndarray, most: int) -> int:
    """How many sizes at the end are flat (at most ``most``): after some scaling, the plateau."""
    trailing = 0
    for f in flat[::-1][:most]:
        if not f:
            break
        trailing += 1
    return trailing


def _segments(rows: list[dict], labels_out: np.ndarray) -> tuple[dict, ...]:
    axis, xs = _segment_axis(rows, np.array([r["C"] for r in rows]))
    segments: list[dict] = []
    for j, lab in enumerate(labels_out):
        if segments and segments[-1]["phase"] == lab:
            segments[-1]["x_max"] = float(xs[j])
        else:
            segments.append({"phase": str(lab), "x_min": float(xs[j]), "x_max": float(xs[j])})
    for seg in segments:
        seg["axis"] = axis
    return tuple(segments)


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
    min_gain: float = MIN_GAIN_ABOVE_CHANCE,
) -> TaskPhase:
    """Cold start, scaling or plateau for one task (module docstring), with segments in C.

    Each model size is represented by its run of largest compute. ``n_examples`` (per run, or
    None) sizes the binomial test; without it a size is at chance when its accuracy is within
    ``chance_tolerance`` of chance. The cold-start call also asks for ``min_gain``.
    ``gain_at(N, D)`` is the fitted chain's accuracy gain per decade of compute through the
    plans (N, D) (None: no accuracy plateau test);
    ``task_loss`` enables the flat-task-loss test.
    """
    n, d, c, acc = (np.asarray(v, dtype=float).ravel() for v in (n, d, c, accuracy))
    n_sizes = count_sizes(n)
    if n_sizes < 3:
        return TaskPhase("insufficient_data", f"{n_sizes} model sizes; 3 are needed", (), ())
    examples = None if n_examples is None else np.asarray(n_examples, dtype=float).ravel()
    rows = _size_rows(n, d, c, acc, chance, examples, significance, chance_tolerance, min_gain)
    above = np.array([r["above_chance"] for r in rows])
    test = _test_words(rows, significance, chance_tolerance, min_gain)
    clear = np.array([r["clear_of_chance"] for r in rows])
    labels_out = np.where(above, "scaling", "cold_start").astype(object)
    first_above = int(np.argmax(above)) if above.any() else above.size
    labels_out[first_above:] = "scaling"
    if not clear[-cold_start_sizes:].any():
        labels_out[:] = "cold_start"
        phase = "cold_start"
        reason = (
            f"accuracy of the {min(cold_start_sizes, above.size)} largest sizes is not "
            f"clear of chance {chance:g} ({test})"
        )
        return TaskPhase(phase, reason, _segments(rows, labels_out), tuple(rows))
    phase, reason = "scaling", f"accuracy above chance {chance:g} at the largest sizes ({test})"
    flat, loss_flat = _flat_sizes(rows, c, task_loss, gain_at, flat_gain_per_decade)
    trailing = _trailing(flat, above.size - first_above - 1)
    if trailing and flat[-1]:
        labels_out[above.size - trailing :] = "plateau"
        phase = "plateau"
        reason = (
            "task loss is flat at its frontier"
            if loss_flat
            else f"accuracy gains under {flat_gain_per_decade:g} per decade of compute at "
            f"the largest sizes (saturating at {float(acc.max()):.3g})"
        )
    return TaskPhase(phase, reason, _segments(rows, labels_out), tuple(rows))


def _segment_axis(rows: list[dict], compute: np.ndarray) -> tuple[str, np.ndarray]:
    """Segments run along C, unless every size's largest run has about the same compute
    (an isoFLOP grid, each size trained at every budget): then along N, which they span."""
    if np.ptp(np.log10(compute)) >= SAME_COMPUTE_DECADES:
        return "C", compute
    return "N", np.array([r["N"] for r in rows])


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
