"""How numbers and times are written in the HTML: the Jinja2 filters of :mod:`.rendering`.

Plain functions of plain values (no HTML: the templates escape what these return), shared by
the scaling pages and ``report.html`` so both round the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

MISSING = "—"
EXPONENTS = ("E", "alpha", "beta", "a", "b")
"""Fitted quantities shown with fixed decimals; the others (A, B) in scientific notation."""


def as_float(value: Any) -> float | None:
    """A finite float, or None (booleans and text that is not a number count as None)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def fmt_sci(value: Any) -> str:
    """3 significant digits, scientific for large or small values: ``1.23e9``."""
    value = as_float(value)
    if value is None:
        return MISSING
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.4g}"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_fixed(value: Any, digits: int = 4) -> str:
    value = as_float(value)
    return MISSING if value is None else f"{value:.{digits}f}"


def fmt_percent(value: Any, digits: int = 1) -> str:
    value = as_float(value)
    return MISSING if value is None else f"{value:.{digits}%}"


def fmt_value(value: Any, name: str) -> str:
    """How a fitted quantity is shown: exponents and E fixed, A and B scientific."""
    return fmt_fixed(value) if name in EXPONENTS else fmt_sci(value)


def fmt_span(span: Any) -> str:
    """``lo – hi`` of anything with ``lo`` and ``hi`` (one number when they are equal)."""
    if span is None:
        return MISSING
    if span.lo == span.hi:
        return fmt_sci(span.lo)
    return f"{fmt_sci(span.lo)} – {fmt_sci(span.hi)}"


def fmt_time(ms: Any) -> str:
    """Milliseconds since the epoch as UTC date and time."""
    if not ms:
        return MISSING
    when = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_num(value: Any, spec: str = ".4g") -> str:
    """A number with a format spec; ``-`` for None; anything else as its text (report style)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return format(value, spec)
    return str(value)


def fmt_or_missing(value: Any, spec: str = ".4g") -> str:
    """A number with a format spec, or :data:`MISSING` for anything else (page style)."""
    return format(value, spec) if isinstance(value, int | float) else MISSING


def full_repr(value: Any) -> str:
    """The exact float for a ``data-value`` attribute (reads back to the same number)."""
    number = as_float(value)
    return "" if number is None else repr(number)


def short_json(value: Any, limit: int = 300) -> str:
    return json.dumps(value, default=str)[:limit]


FILTERS = {
    "sci": fmt_sci,
    "fixed": fmt_fixed,
    "percent": fmt_percent,
    "fitvalue": fmt_value,
    "span": fmt_span,
    "utc": fmt_time,
    "num": fmt_num,
    "full": full_repr,
    "as_float": as_float,
    "short_json": short_json,
}
