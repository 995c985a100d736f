"""A table of runs with intermediate checkpoints, for ``mlflow-scaling downstream``.

With ``--run-col`` and ``--step-col`` a file holds one row per (run, checkpoint): N, D (the
tokens seen at that step), the task loss and the accuracy as for final points. Each run's row
of largest step is its final point, the only one step 1 uses; step 2 uses the rows past the
first ``skip_fraction`` of the run's steps (:func:`..laws.downstream.later_checkpoints`), its
final row always included. Without these options a file is final points only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .laws.downstream import later_checkpoints
from .tabular import InputError, cell, numeric_column


@dataclass(frozen=True)
class CheckpointRows:
    """Row indices of a checkpoint table: each run's final row, and step 2's rows."""

    run: np.ndarray
    final: np.ndarray
    step2: np.ndarray

    def to_dict(self) -> dict:
        return {"runs": int(self.final.size), "final_rows": int(self.final.size),
                "step2_rows": int(self.step2.size)}  # fmt: skip


def run_labels(frame: pd.DataFrame, run_col: str, path: str | Path) -> np.ndarray:
    if run_col not in frame.columns:
        raise InputError(f"{path}: no column {run_col!r} for the run (columns: "
                         f"{', '.join(map(str, frame.columns))})")  # fmt: skip
    raw = frame[run_col]
    missing = np.flatnonzero(raw.isna().to_numpy() | (raw.astype(str).str.strip() == ""))
    if missing.size:
        raise InputError(f"{cell(frame, run_col, path, int(missing[0]))}: the run is missing")
    return raw.astype(str).str.strip().to_numpy()


def checkpoint_rows(
    frame: pd.DataFrame,
    run_col: str,
    step_col: str,
    n: np.ndarray,
    skip_fraction: float,
    path: str | Path = "DataFrame",
) -> CheckpointRows:
    """Split a checkpoint table (module docstring) read from ``path``; ``n`` is its N column,
    which must be one value per run. A run with two rows at one step is refused, naming both
    rows."""
    run = run_labels(frame, run_col, path)
    step = numeric_column(frame, step_col, path)
    if (step < 0).any():
        i = int(np.flatnonzero(step < 0)[0])
        raise InputError(f"{cell(frame, step_col, path, i)}: a step cannot be negative")
    final = []
    for r in pd.unique(run):
        idx = np.flatnonzero(run == r)
        if np.unique(n[idx]).size > 1:
            raise InputError(f"{path}: run {r!r} has more than one N "
                             f"({', '.join(f'{v:g}' for v in np.unique(n[idx]))})")  # fmt: skip
        _, first, counts = np.unique(step[idx], return_index=True, return_counts=True)
        if (counts > 1).any():
            twice = step[idx][first[counts > 1][0]]
            rows = idx[step[idx] == twice][:2]
            raise InputError(
                f"{path}: run {r!r} has two rows at step {twice:g} (rows {rows[0] + 1} and "
                f"{rows[1] + 1})"
            )
        final.append(int(idx[np.argmax(step[idx])]))
    keep = later_checkpoints(run, step, skip_fraction)
    return CheckpointRows(run, np.array(sorted(final)), np.flatnonzero(keep))
