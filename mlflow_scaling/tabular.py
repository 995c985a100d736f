"""Reading tables of runs (CSV) with errors that name the file, the column and the row.

No MLflow here: people with a CSV and no tracking server use this through the CLI.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .inputs import PARAMS, TOKENS, InputError, Quantity, first_out_of_range
from .laws.allocation import FLOPS_PER_PARAM_TOKEN
from .laws.compute_axis import ComputeAxis
from .laws.validation import FLOAT_LIMIT

__all__ = [
    "InputError",
    "Points",
    "cell",
    "numeric_column",
    "read_csv",
    "read_points",
    "read_targets",
]


def _show(names) -> str:
    """Column names for a one-line message: quoted (escaped) where not plainly printable."""
    return ", ".join(n if n.isprintable() and n.strip() == n else repr(n) for n in map(str, names))


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a CSV file")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})"
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None


def _checked_rows(path: Path, text: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows and each row's line number; every row must have one field per column.

    A trailing comma (one empty field past the last column, on the header or on a row) is
    tolerated; any other count of fields is an error naming the line, since pandas would read
    such a row shifted (its first field taken as an index).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for fields in reader:
            if not fields or all(not f.strip() for f in fields) and len(fields) <= 1:
                continue  # blank line
            if header is None:
                if len(fields) > 1 and fields[-1] == "":
                    fields = fields[:-1]  # trailing comma on the header
                header = fields
                continue
            if len(fields) == len(header) + 1 and fields[-1] == "":
                fields = fields[:-1]  # trailing comma
            if len(fields) != len(header):
                raise InputError(
                    f"{path}: line {reader.line_num} has {len(fields)} fields but the header "
                    f"has {len(header)} ({_show(header)}); every row needs one value per column"
                )
            rows.append(fields)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV at line {reader.line_num} ({exc})") from None
    if header is None:
        raise InputError(f"{path}: the file is empty")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputError(f"{path}: column {name!r} appears twice in the header")
        seen.add(name)
    return header, rows, lines


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV file, turning every way it can be unreadable into an :class:`InputError`.

    ``frame.attrs["lines"]`` holds each row's line number in the file.
    """
    path = Path(path)
    text = _read_text(path)
    header, rows, lines = _checked_rows(path, text)
    if not rows:
        raise InputError(f"{path}: no data rows")
    clean = io.StringIO()
    csv.writer(clean).writerows([header, *rows])
    clean.seek(0)
    try:
        frame = pd.read_csv(clean, skip_blank_lines=False)
    except (pd.errors.ParserError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: malformed CSV ({detail})") from None
    frame.attrs["lines"] = lines
    return frame


def numeric_column(
    frame: pd.DataFrame,
    column: str,
    path: str | Path,
    *,
    positive: bool = False,
    quantity: Quantity | None = None,
) -> np.ndarray:
    """One column as floats; a missing column or a bad value raises an :class:`InputError`.

    Rows are numbered as data rows from 1, with their line in the file (``frame.attrs``, else
    the row number plus one, for the header). Values at the float limit (1.797e308, how SQL
    stores keep an infinity) count as not finite. ``quantity`` (:mod:`.inputs`) adds its
    physical range.
    """
    if column not in frame.columns:
        raise InputError(f"{path}: no column {column!r} (columns: {_show(frame.columns)})")
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (np.abs(values) >= FLOAT_LIMIT)
    if positive:
        bad |= values <= 0
    if not bad.any():
        out_of_range = None if quantity is None else first_out_of_range(values, quantity)
        if out_of_range is not None:
            raise InputError(f"{cell(frame, column, path, out_of_range[0])}: {out_of_range[1]}")
        return values
    i = int(np.flatnonzero(bad)[0])
    text, value = raw.iloc[i], values[i]
    where = cell(frame, column, path, i)
    if isinstance(text, float) and np.isnan(text) or str(text).strip() == "":
        raise InputError(f"{where}: value is missing (empty or NaN)")
    if np.isnan(value) and str(text).strip().lower() not in ("nan", "-nan", "+nan"):
        raise InputError(f"{where}: {text!r} is not a number")
    if not np.isfinite(value) or abs(value) >= FLOAT_LIMIT:
        raise InputError(f"{where}: value is not finite ({text!r})")
    raise InputError(f"{where}: must be positive, got {text!r}")


def cell(frame: pd.DataFrame, column: str, path: str | Path, i: int) -> str:
    """Where row ``i`` of ``column`` is: the file, the column, the data row and its line."""
    lines = frame.attrs.get("lines")
    line = lines[i] if lines is not None and i < len(lines) else i + 2
    return f"{path}: column {column!r}, row {i + 1} (line {line})"


@dataclass(frozen=True)
class Points:
    """Runs as (N, D, loss) arrays, with their compute C when the file gave both C and D."""

    n: np.ndarray
    d: np.ndarray
    loss: np.ndarray | None
    c: np.ndarray | None = None
    warnings: tuple[str, ...] = ()

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
    (:meth:`Points.axis`); from C alone, D = C/(6N) and the axis is 6ND. N and D must be at
    least 1 (:mod:`.inputs`).
    """
    return points_from_frame(
        read_csv(path), n_col=n_col, d_col=d_col, c_col=c_col, loss_col=loss_col, source=path
    )


def points_from_frame(
    frame: pd.DataFrame,
    *,
    n_col: str = "N",
    d_col: str = "D",
    c_col: str | None = None,
    loss_col: str | None = "loss",
    source: str | Path = "DataFrame",
) -> Points:
    """:func:`read_points` of a table already in memory; errors name ``source``."""
    n, d, c = _axes(frame, source, n_col, d_col, c_col, c_optional=False)
    loss = None if loss_col is None else numeric_column(frame, loss_col, source, positive=True)
    columns = [v for v in (n, d, c, loss) if v is not None]
    warning = duplicate_rows_warning(np.column_stack(columns), frame.attrs.get("lines"), source)
    return Points(n=n, d=d, loss=loss, c=c, warnings=(warning,) if warning else ())


def read_targets(
    path: str | Path, *, n_col: str = "N", d_col: str = "D", c_col: str | None = None
) -> Points:
    """Targets to predict: N and D (C then comes from the learned axis), or N and C."""
    frame = read_csv(path)
    n, d, c = _axes(frame, path, n_col, d_col, c_col, c_optional=True)
    return Points(n=n, d=d, loss=None, c=c)


def _axes(frame, path, n_col, d_col, c_col, *, c_optional: bool):
    """(N, D, C or None) of a table; C is kept only where it sits beside D."""
    n = numeric_column(frame, n_col, path, positive=True, quantity=PARAMS)
    if d_col in frame.columns or c_col is None:
        if d_col not in frame.columns:
            raise InputError(
                f"{path}: no column {d_col!r} for tokens and no compute column given "
                f"(pass --c-col to derive D = C/(6N)); columns: {_show(frame.columns)}"
            )
        d = numeric_column(frame, d_col, path, positive=True, quantity=TOKENS)
        if c_col is None or (c_optional and c_col not in frame.columns):
            return n, d, None
        return n, d, numeric_column(frame, c_col, path, positive=True)
    c = numeric_column(frame, c_col, path, positive=True)
    d = c / (FLOPS_PER_PARAM_TOKEN * n)  # D on the 6ND axis; C carries no more information
    out_of_range = first_out_of_range(d, TOKENS)
    if out_of_range is not None:
        i, why = out_of_range
        raise InputError(f"{cell(frame, c_col, path, i)}: D = C/(6N): {why}")
    return n, d, None


def duplicate_rows_warning(rows: np.ndarray, lines: list[int] | None, path) -> str | None:
    """A one-line warning naming the rows that repeat an earlier row exactly, or None.

    They are kept (two runs can end identically), but a copied row weighs twice in the fit.
    """
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    repeats = np.flatnonzero(first[inverse.ravel()] != np.arange(rows.shape[0]))
    if repeats.size == 0:
        return None
    line_of = (lambda i: lines[i]) if lines is not None else (lambda i: i + 2)
    shown = ", ".join(
        f"{line_of(int(i))} (= line {line_of(int(first[inverse.ravel()[i]]))})" for i in repeats[:5]
    )
    more = f" and {repeats.size - 5} more" if repeats.size > 5 else ""
    rows_repeat = "1 row repeats" if repeats.size == 1 else f"{repeats.size} rows repeat"
    return (
        f"{path}: {rows_repeat} an earlier row exactly, at line {shown}{more}; kept, each "
        "weighs as a run (remove copies)"
    )
