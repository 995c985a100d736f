"""The hyperparameter part of a refit: which runs the Chinchilla law sees, and the ``hparams``
section of ``fit.json`` (docs/hparams.md, "In the refit").

**A sweep.** Member runs of one size and one token count form a cell
(:func:`..laws.hparams.group_cells`, about 2 %). When the peak learning rate η or the global
batch B varies within some cell, the family holds a learning-rate/batch sweep.

**The law sees each swept cell's best run.** Fitting the Chinchilla law on every run of a swept
cell would mix runs trained at a poor η or B into a law of the loss at good settings (it would
pull E, A and B up and the exponents with them). So in each cell where η or B varies, only the
run with the lowest loss enters the law; the cell's other runs are *sweep runs*: listed in the
section's ``runs`` with ``in_law`` false, never dropped silently. Cells without variation keep
every run, and a family without a sweep is analysed exactly as before (no ``hparams`` section).

**The section.** :func:`..laws.hparams.fit_hparams` on the runs that logged η (and B, where
every one of them did): its cells, laws and notes, and the prediction at the refit's target:
the scaling check's target model and tokens when the check made one, else the target size at
the largest run's tokens per parameter (``target.source`` says which).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..laws.hparams import HparamFit, fit_hparams, group_cells
from ..tracking.reading import MemberPoint

LAW_RUNS_RULE = (
    "the Chinchilla law is fitted on each swept cell's best run (lowest loss); the cell's other "
    "runs are sweep runs (in_law false), left out of the law, not of the sweep"
)


@dataclass(frozen=True)
class SweepSplit:
    """The points the law is fitted on, and whether the family holds a sweep."""

    law_points: list[MemberPoint]
    swept: frozenset[str]
    """Run ids of the runs in swept cells (each cell's best included)."""
    varied: bool


def _distinct(values: list[float | None]) -> int:
    known = np.array([v for v in values if v is not None], dtype=float)
    return np.unique(np.round(np.log(known), 9)).size if known.size else 0


def split_sweep(points: Sequence[MemberPoint]) -> SweepSplit:
    """Each swept cell reduced to its best run (module docstring); other runs kept."""
    if not points:
        return SweepSplit(list(points), frozenset(), False)
    n = np.array([p.n for p in points])
    d = np.array([p.d for p in points])
    labels = group_cells(n, d, 6 * n * d, "ND")
    keep, swept = np.ones(len(points), bool), set()
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        cell = [points[i] for i in idx]
        if _distinct([p.lr for p in cell]) < 2 and _distinct([p.batch for p in cell]) < 2:
            continue
        swept.update(p.run_id for p in cell)
        best = idx[int(np.argmin([p.loss for p in cell]))]
        keep[idx] = False
        keep[best] = True
    law = [p for p, k in zip(points, keep, strict=True) if k]
    return SweepSplit(law, frozenset(swept), bool(swept))


def hparam_target(
    points: Sequence[MemberPoint], prediction: dict | None, target_params: float
) -> dict:
    """Where the section predicts η and B: the check's target, else the target size at the
    largest run's tokens per parameter."""
    if prediction and prediction.get("N") and prediction.get("D"):
        how = ("tokens given" if prediction.get("tokens") == "given"
               else "compute-optimal tokens by the family's Chinchilla law")  # fmt: skip
        return {"N": float(prediction["N"]), "D": float(prediction["D"]),
                "source": f"the scaling check's target ({how})"}  # fmt: skip
    largest = max(points, key=lambda p: (p.n, p.d))
    return {
        "N": float(target_params),
        "D": float(target_params) * largest.d / largest.n,
        "source": "the target size at the largest run's tokens per parameter "
        f"({largest.d / largest.n:.3g}; no Chinchilla law to choose the tokens)",
    }


def _cell_doc(cell) -> dict:
    out = cell.to_dict()
    out["lr_status"] = cell.lr.status
    out["lr_grid"] = list(cell.lr.grid)
    out["batch_status"] = None if cell.batch is None else cell.batch.status
    out["batch_grid"] = None if cell.batch is None else list(cell.batch.grid)
    out["notes"] = list(cell.notes)
    return out


def _run_docs(sweep: list[MemberPoint], fit: HparamFit, law_ids: set[str]) -> list[dict]:
    """Each run with its cell (index into ``cells``) and whether the Chinchilla law uses it."""
    at = np.log([[c.n, c.d] for c in fit.cells])
    rows = []
    for p in sweep:
        cell = int(np.argmin(np.abs(at - np.log([p.n, p.d])).sum(axis=1)))
        rows.append({"run_id": p.run_id, "run_name": p.run_name, "N": p.n, "D": p.d,
                     "lr": p.lr, "batch_tokens": p.batch, "loss": p.loss, "cell": cell,
                     "in_law": p.run_id in law_ids})  # fmt: skip
    return rows


def hparam_section(
    points: Sequence[MemberPoint],
    split: SweepSplit,
    target: dict,
    *,
    n_boot: int,
    level: float,
    seed: int,
) -> dict:
    """The ``hparams`` section of ``fit.json`` (module docstring); ``error`` when the sweep
    cannot be fitted."""
    sweep = [p for p in points if p.lr is not None]
    notes = []
    if len(sweep) < len(points):
        notes.append(f"{len(points) - len(sweep)} member run(s) logged no learning rate "
                     "(scaling.lr_peak or a scaling.lr_key tag): not in the sweep")  # fmt: skip
    with_batch = sum(p.batch is not None for p in sweep)
    if 0 < with_batch < len(sweep):
        notes.append(f"{with_batch} of {len(sweep)} sweep runs logged a batch: only the "
                     "learning rate is fitted")  # fmt: skip
    base = {"by": "ND", "law_runs": LAW_RUNS_RULE, "target": target,
            "swept_runs": len(split.swept)}  # fmt: skip
    if not sweep:
        return {**base, "error": "no member run logged a learning rate", "notes": notes}
    batch = [p.batch for p in sweep] if with_batch == len(sweep) else None
    try:
        fit = fit_hparams(
            [p.n for p in sweep], [p.d for p in sweep], [p.lr for p in sweep],
            [p.loss for p in sweep], batch=batch, n_boot=n_boot, level=level, seed=seed,
        )  # fmt: skip
    except ValueError as exc:
        return {**base, "error": f"the sweep cannot be fitted: {exc}", "notes": notes}
    has_law = any(law is not None and law.law is not None for law in (fit.lr_law, fit.batch_law))
    predictions = (fit.predict(target["N"], target["D"]),) if has_law else ()
    doc = fit.to_dict(predictions)
    doc["cells"] = [_cell_doc(cell) for cell in fit.cells]
    law_ids = {p.run_id for p in split.law_points}
    return {
        **base,
        **doc,
        "axes": ["lr"] if batch is None else ["lr", "batch"],
        "law_choice": {
            law.target: law.describe() for law in (fit.lr_law, fit.batch_law) if law is not None
        },  # fmt: skip
        "notes": notes + list(fit.notes),
        "noise": fit.noise,
        "noise_source": fit.noise_source,
        "level": fit.level,
        "runs": _run_docs(sweep, fit, law_ids),
    }
