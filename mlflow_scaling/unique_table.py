"""The unique-tokens column of a table of runs, for ``mlflow-scaling fit --unique-col``.

Each row's U is the number of distinct tokens the run drew its D tokens from (its epochs are
D/U). The column is all or nothing: a table that has it must give it on every row, and a row
that lacks it is named, never guessed (left out, the run would silently count as fresh data).
Bad values are named by file, column, row, line and (with ``--run-col``) run:

* missing (empty, NaN), not a number, not finite, or under one token;
* more unique tokens than tokens (U > D): a run cannot see more distinct tokens than it trains
  on (use the unique tokens it saw, at most D);
* with a run column, two rows of one run with different U: a run draws from one corpus.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .checkpoint_table import run_labels
from .inputs import TOKENS
from .tabular import InputError, cell

UNIQUE_TOL = 1e-9
"""U may exceed D by this relative amount (float noise in U = D / epochs)."""


def _where(frame: pd.DataFrame, column: str, path, i: int, runs: np.ndarray | None) -> str:
    run = f", run {runs[i]!r}" if runs is not None else ""
    return f"{cell(frame, column, path, i)}{run}"


def _missing(frame: pd.DataFrame, column: str, path, runs: np.ndarray | None) -> None:
    raw = frame[column]
    gone = np.flatnonzero(raw.isna().to_numpy() | (raw.astype(str).str.strip() == ""))
    if gone.size == 0:
        return
    shown = "; ".join(_where(frame, column, path, int(i), runs) for i in gone[:5])
    more = f" and {gone.size - 5} more" if gone.size > 5 else ""
    raise InputError(
        f"{path}: {gone.size} of {len(frame)} rows lack unique tokens in column {column!r} "
        f"({shown}{more}); give every run its unique tokens, or leave --unique-col out (every "
        "token then counts as fresh)"
    )


def unique_tokens_column(
    frame: pd.DataFrame,
    column: str,
    d: np.ndarray,
    path: str | Path = "DataFrame",
    *,
    d_col: str = "D",
    run_col: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(U per row, run label per row or None) of ``frame`` (module docstring); ``d`` is the
    table's tokens column (``d_col`` names it in messages)."""
    if column not in frame.columns:
        raise InputError(f"{path}: no column {column!r} for unique tokens (columns: "
                         f"{', '.join(map(str, frame.columns))})")  # fmt: skip
    runs = None if run_col is None else run_labels(frame, run_col, path)
    _missing(frame, column, path, runs)
    u = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    for i, value in enumerate(u):
        if np.isnan(value):
            text = frame[column].iloc[i]
            raise InputError(f"{_where(frame, column, path, i, runs)}: {text!r} is not a number")
        if not np.isfinite(value):
            raise InputError(f"{_where(frame, column, path, i, runs)}: unique tokens {value} "
                             "are not finite")  # fmt: skip
        problem = TOKENS.problem(float(value))
        if problem is not None:
            raise InputError(f"{_where(frame, column, path, i, runs)}: unique {problem}")
        if value > d[i] * (1 + UNIQUE_TOL):
            raise InputError(
                f"{_where(frame, column, path, i, runs)}: unique tokens {value:g} exceed the "
                f"run's tokens {d[i]:g} (column {d_col!r}); a run cannot see more distinct "
                "tokens than it trains on"
            )
    if runs is not None:
        _one_per_run(u, runs, path)
    return u, runs


def _one_per_run(u: np.ndarray, runs: np.ndarray, path) -> None:
    for run in pd.unique(runs):
        rows = np.flatnonzero(runs == run)
        values = u[rows]
        if np.ptp(values) > UNIQUE_TOL * values.max():
            j = int(rows[np.flatnonzero(values != values[0])[0]])
            raise InputError(
                f"{path}: run {run!r} has more than one unique-token count ({values[0]:g} at "
                f"row {rows[0] + 1}, {u[j]:g} at row {j + 1}); a run draws from one corpus"
            )
