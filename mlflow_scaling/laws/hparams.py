"""Hyperparameter scaling laws from a family's own sweeps: the learning rate and batch to use.

Three steps (numpy/scipy only):

1. **Cells.** Runs of one size and one token count (the project's size rule, about 2 %) form a
   cell; with ``by="C"`` (an isoFLOP grid) runs of one compute budget do. Each cell's loss
   surface over (log η, log B) gives its optimum, bootstrap interval and near-optimal bands
   (:mod:`.hparam_cells`).
2. **Laws.** The cells with a fitted optimum give η_opt and B_opt as power laws in (N, D) and
   in C, with the edge cells' bounds as censored observations; leave-one-cell-out error chooses
   the form (:mod:`.hparam_laws`).
3. **Targets.** At (N, D): η and B with intervals calibrated for extrapolation, the near-optimal
   band, and the loss penalty at the interval's corners. The penalty uses the relative curvature
   H_rel of the cells' surfaces (the median over fitted cells): at a corner Δ from the
   predicted optimum, the loss rises by the fraction ½·ΔᵀH_rel·Δ, and the 0.25 % band on η is
   η·exp(±sqrt(2·0.0025·(H_rel⁻¹)_ηη)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from .hparam_cells import (
    BANDS,
    EDGE_HIGH,
    EDGE_LOW,
    FITTED,
    MIN_VALUES,
    TOO_FEW,
    AxisOptimum,
    CellFit,
    features,
    fit_surface,
    optimise_cell,
    pooled_noise,
)
from .hparam_laws import ChosenLaw, LawCells, choose_law
from .isoflop import group_by_budget
from .scatter import size_labels

DEFAULT_LEVEL = 0.95
DEFAULT_N_BOOT = 400
FLOPS_PER_PARAM_TOKEN = 6.0


@dataclass(frozen=True)
class HparamPrediction:
    """Learning rate and batch at one target, with intervals, band and corner penalties."""

    n: float
    d: float
    lr: float | None
    lr_lo: float | None
    lr_hi: float | None
    batch: float | None
    batch_lo: float | None
    batch_hi: float | None
    band_025: dict
    loss_penalty: dict

    def to_dict(self) -> dict:
        return {
            "N": self.n,
            "D": self.d,
            "lr": self.lr,
            "lr_lo": self.lr_lo,
            "lr_hi": self.lr_hi,
            "batch_tokens": self.batch,
            "batch_lo": self.batch_lo,
            "batch_hi": self.batch_hi,
            "band_025": self.band_025,
            "loss_penalty": self.loss_penalty,
        }


@dataclass(frozen=True)
class HparamFit:
    """Cells, the chosen laws and the shared curvature; :meth:`predict` at targets."""

    cells: tuple[CellFit, ...]
    lr_law: ChosenLaw
    batch_law: ChosenLaw | None
    hessian_rel: np.ndarray | None
    noise: float
    noise_source: str
    level: float
    notes: tuple[str, ...] = field(default=())

    def predict(self, n: float, d: float) -> HparamPrediction:
        c = FLOPS_PER_PARAM_TOKEN * n * d
        lr = _law_at(self.lr_law, n, d, c, self.level)
        batch = _law_at(self.batch_law, n, d, c, self.level)
        band, penalty = _band_and_penalty(self.hessian_rel, lr, batch)
        return HparamPrediction(float(n), float(d), *lr, *batch, band, penalty)

    def to_dict(self, predictions: tuple[HparamPrediction, ...] = ()) -> dict:
        return {
            "cells": [cell.to_dict() for cell in self.cells],
            "laws": {
                "lr": self.lr_law.to_dict(),
                "batch": None if self.batch_law is None else self.batch_law.to_dict(),
            },
            "predictions": [p.to_dict() for p in predictions],
        }


def _law_at(chosen: ChosenLaw | None, n, d, c, level) -> tuple:
    if chosen is None or chosen.law is None:
        return None, None, None
    value, lo, hi = chosen.law.interval(np.array([n]), np.array([d]), np.array([c]), level)
    return float(value[0]), float(lo[0]), float(hi[0])


def _band_and_penalty(hess: np.ndarray | None, lr: tuple, batch: tuple) -> tuple[dict, dict]:
    """The 0.25 % band around the predicted point and the relative loss rise at its corners."""
    if hess is None or lr[0] is None:
        return {"lr": None, "batch": None}, {"max": None, "corners": []}
    axes = [lr] + ([batch] if hess.shape[0] == 2 and batch[0] is not None else [])
    hess = hess[: len(axes), : len(axes)]
    inverse = np.linalg.inv(hess)
    half = [float(np.sqrt(2 * BANDS[0] * inverse[k, k])) for k in range(len(axes))]
    bands = [[a[0] * np.exp(-h), a[0] * np.exp(h)] for a, h in zip(axes, half, strict=True)]
    corners = []
    for picks in np.ndindex(*(2,) * len(axes)):
        delta = np.array([np.log(a[1 + p] / a[0]) for a, p in zip(axes, picks, strict=True)])
        point = {name: a[1 + p] for name, a, p in zip(("lr", "batch"), axes, picks, strict=False)}
        corners.append({**point, "relative": float(0.5 * delta @ hess @ delta)})
    band = {"lr": [float(v) for v in bands[0]],
            "batch": [float(v) for v in bands[1]] if len(bands) > 1 else None}  # fmt: skip
    return band, {"max": max(c["relative"] for c in corners), "corners": corners}


def group_cells(n, d, c, by: str) -> np.ndarray:
    """Cell label per run: one size and one token count (:func:`.scatter.size_labels`, about
    2 %), or one compute budget (``by="C"``, :func:`.isoflop.group_by_budget`)."""
    if by == "C":
        return group_by_budget(c)
    keys = np.column_stack([size_labels(n), size_labels(d)])
    return np.unique(keys, axis=0, return_inverse=True)[1].ravel()


def _cell_axes(lr, batch) -> tuple[np.ndarray | None, str | None]:
    """The batch axis to fit (None: η only) and why a cell cannot be fitted, if it cannot."""
    n_lr = np.unique(lr).size
    if batch is None or np.unique(batch).size == 1:
        if n_lr < MIN_VALUES:
            return None, f"{n_lr} learning rate(s) (a fit needs {MIN_VALUES})"
        return None, None
    n_b = np.unique(batch).size
    if n_lr < MIN_VALUES or n_b < MIN_VALUES:
        need = f"a fit needs {MIN_VALUES} of each"
        return batch, f"{n_lr} learning rates and {n_b} batch sizes ({need})"
    return batch, None


def _checked(name: str, values: ArrayLike, size: int | None) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    if size is not None and v.size != size:
        raise ValueError(f"{name} has {v.size} values, N has {size}")
    bad = np.flatnonzero(~(np.isfinite(v) & (v > 0)))
    if bad.size:
        raise ValueError(f"{name} of run {bad[0] + 1} is {v[bad[0]]!r}: must be positive")
    return v


def _unfitted(n, d, c, lr, batch, loss, reason) -> CellFit:
    """A cell too small to fit: its best run, named; no interval, no band."""
    i = int(np.argmin(loss))

    def axis(values):
        return AxisOptimum(float(values[i]), None, None, None, tuple(np.unique(values)), TOO_FEW)

    b = None if batch is None else axis(batch)
    return CellFit(n, d, c, loss.size, float(loss[i]), axis(lr), b, None, (reason,))


def _cell_note(cell: CellFit) -> str | None:
    where = f"cell N={cell.n:.4g}, D={cell.d:.4g}"
    if cell.notes:
        return f"{where}: not fitted: {cell.notes[0]}"
    named = [
        f"{name} optimum {'below' if ax.status == 'edge_low' else 'above'} the grid's "
        f"{'smallest' if ax.status == 'edge_low' else 'largest'} value {ax.value:.4g} (a bound)"
        if ax.status.startswith("edge")
        else f"{name}: {len(ax.grid)} value(s) in the cell (a fit needs {MIN_VALUES})"
        if ax.status == TOO_FEW
        else f"{name} surface {ax.status.replace('_', ' ')}"
        for name, ax in (("lr", cell.lr), ("batch", cell.batch))
        if ax is not None and ax.status != FITTED
    ]  # fmt: skip
    return f"{where}: " + "; ".join(named) if named else None


def fit_hparams(
    n: ArrayLike,
    d: ArrayLike,
    lr: ArrayLike,
    loss: ArrayLike,
    *,
    batch: ArrayLike | None = None,
    c: ArrayLike | None = None,
    by: str = "ND",
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> HparamFit:
    """Cells, their optima and the laws across them (module docstring); one run per element."""
    n = _checked("N", n, None)
    d, lr, loss = (_checked(k, v, n.size) for k, v in (("D", d), ("lr", lr), ("loss", loss)))
    batch = None if batch is None else _checked("batch", batch, n.size)
    c = FLOPS_PER_PARAM_TOKEN * n * d if c is None else _checked("C", c, n.size)
    labels = group_cells(n, d, c, by)
    plans = []
    for label in range(int(labels.max()) + 1):
        i = np.flatnonzero(labels == label)
        b = None if batch is None else batch[i]
        y_axis, reason = _cell_axes(lr[i], b)
        surface = None
        if reason is None:
            surface = fit_surface(lr[i], y_axis, loss[i])
            if surface.coef.size == 6 and _rank_short(surface):
                reason, surface = "the runs do not span the (lr, batch) grid", None
        plans.append((i, b, surface, reason))
    noise, source = pooled_noise([p[2] for p in plans if p[2] is not None])
    rng = np.random.default_rng(seed)
    cells = [
        _cell(n, d, c, lr, loss, plan, noise=noise, n_boot=n_boot, level=level, rng=rng)
        for plan in plans
    ]
    cells.sort(key=lambda cell: (cell.n, cell.d))
    notes = tuple(note for note in map(_cell_note, cells) if note)
    lr_law = _law("lr", cells, lambda cell: cell.lr)
    batch_law = None if batch is None else _law("batch", cells, lambda cell: cell.batch)
    hess = _median_hessian(cells, two_axes=batch_law is not None and batch_law.law is not None)
    return HparamFit(tuple(cells), lr_law, batch_law, hess, noise, source, level, notes)


def _rank_short(surface) -> bool:
    design = features(surface.x, surface.y)
    return np.linalg.matrix_rank(design) < design.shape[1]


def _cell(n, d, c, lr, loss, plan, *, noise, n_boot, level, rng) -> CellFit:
    i, b, surface, reason = plan
    at = (float(np.exp(np.mean(np.log(n[i])))), float(np.exp(np.mean(np.log(d[i])))),
          float(np.exp(np.mean(np.log(c[i])))))  # fmt: skip
    if surface is None:
        return _unfitted(*at, lr[i], b, loss[i], reason)
    loss_opt, (lr_opt, b_opt), hess = optimise_cell(
        surface, noise=noise, n_boot=n_boot, level=level, rng=rng
    )
    if b is not None and b_opt is None:  # one batch size in this cell: named, not fitted
        b_opt = AxisOptimum(float(b[0]), None, None, None, (float(b[0]),), TOO_FEW)
    return CellFit(*at, i.size, loss_opt, lr_opt, b_opt, hess)


def _law(target: str, cells, axis_of) -> ChosenLaw:
    """The law on the fitted cells, with the edge cells' bounds as censored observations."""
    axes = [(cell, axis_of(cell)) for cell in cells if axis_of(cell) is not None]
    used = [cell for cell, ax in axes if ax.fitted]
    edges = [(cell, ax) for cell, ax in axes if ax.status in (EDGE_HIGH, EDGE_LOW)]

    def column(group, k):
        return np.array([getattr(cell, k) for cell in group], dtype=float)

    bounded = [cell for cell, _ in edges]
    law_cells = LawCells(
        *(column(used, k) for k in ("n", "d", "c")),
        np.array([axis_of(cell).value for cell in used], dtype=float),
        *(column(bounded, k) for k in ("n", "d", "c")),
        np.array([ax.lo if ax.status == EDGE_HIGH else ax.hi for _, ax in edges], dtype=float),
        np.array([1.0 if ax.status == EDGE_HIGH else -1.0 for _, ax in edges]),
    )
    return choose_law(target, law_cells)


def _median_hessian(cells, *, two_axes: bool) -> np.ndarray | None:
    """Element-wise median of the fitted cells' relative Hessians (1x1 for η alone)."""
    size = 2 if two_axes else 1
    stack = [
        cell.hessian_rel[:size, :size]
        for cell in cells
        if cell.hessian_rel is not None
        and cell.lr.fitted
        and cell.hessian_rel.shape[0] >= size
        and (size == 1 or cell.batch.fitted)
    ]
    return np.median(np.stack(stack), axis=0) if stack else None
