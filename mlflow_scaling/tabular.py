"""Reading tables of runs (CSV) with errors that name the file, the column and the row.

No MLflow here: people with a CSV and no tracking server use this through the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .laws.allocation import FLOPS_PER_PARAM_TOKEN
from .laws.compute_axis import ComputeAxis


class InputError(ValueError):
    """Bad user input. The message is one line naming the culprit; the CLI exits with 2."""


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV file, turning every way it can be unreadable into an :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: malformed CSV ({detail})") from None
    if frame.empty:
        raise InputError(f"{path}: no data rows")
    return frame


def numeric_column(
    frame: pd.DataFrame,
    column: str,
    path: str | Path,
    *,
    positive: bool = False,
) -> np.ndarray:
    """One column as floats; a missing column or a bad value raises an :class:`InputError`.

    Rows are numbered as data rows from 1 (the line in the file is that number plus one,
    for the header).
    """
    if column not in frame.columns:
        raise InputError(
            f"{path}: no column {column!r} (columns: {', '.join(map(str, frame.columns))})"
        )
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    for i, (text, value) in enumerate(zip(raw.tolist(), values, strict=True)):
        where = f"{path}: column {column!r}, row {i + 1} (line {i + 2})"
        if np.isnan(value) and not (isinstance(text, float) and np.isnan(text)):
            raise InputError(f"{where}: {text!r} is not a number")
        if not np.isfinite(value):
            raise InputError(f"{where}: value is missing or not finite ({text!r})")
        if positive and value <= 0:
            raise InputError(f"{where}: must be positive, got {text!r}")
    return values


@dataclass(frozen=True)
class Points:
    """Runs as (N, D, loss) arrays, with their compute C when the file gave both C and D."""

    n: np.ndarray
    d: np.ndarray
    loss: np.ndarray | None
    c: np.ndarray | None = None

    @property
    def flops(self) -> np.ndarray:
        """The runs' compute: as read when measured, else on the axis (6ND)."""
        return self.c if self.c is not None else self.axis().flops(self.n, self.d)

    def axis(self) -> ComputeAxis:
        """The compute axis: learned from C/D when the file has both, else 6ND."""
        if self.c is None:
            return ComputeAxis.six_nd()
        return ComputeAxis.from_runs(self.n, self.c, self.d)


def read_points(
    path: str | Path,
    *,
    n_col: str = "N",
    d_col: str = "D",
    c_col: str | None = None,
    loss_col: str | None = "loss",
) -> Points:
    """Read N, D (or C, giving D = C/(6N)) and, unless ``loss_col`` is None, the loss.

    D comes from ``d_col`` when the file has it; otherwise from ``c_col`` when given. When the
    file has both, C is kept and the compute axis f(N) = C/D is learned from it
    (:meth:`Points.axis`); from C alone, D = C/(6N) and the axis is 6ND.
    """
    frame = read_csv(path)
    n = numeric_column(frame, n_col, path, positive=True)
    c = None
    if d_col in frame.columns or c_col is None:
        if d_col not in frame.columns:
            raise InputError(
                f"{path}: no column {d_col!r} for tokens and no compute column given "
                f"(pass --c-col to derive D = C/(6N)); columns: {', '.join(frame.columns)}"
            )
        d = numeric_column(frame, d_col, path, positive=True)
        if c_col is not None:
            c = numeric_column(frame, c_col, path, positive=True)
    else:
        c = numeric_column(frame, c_col, path, positive=True)
        d = c / (FLOPS_PER_PARAM_TOKEN * n)
        c = None  # D was derived on the 6ND axis; C carries no more information
    loss = None if loss_col is None else numeric_column(frame, loss_col, path, positive=True)
    return Points(n=n, d=d, loss=loss, c=c)
