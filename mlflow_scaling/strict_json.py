"""Strict JSON for every document we write: no ``NaN`` or ``Infinity``, which JSON does not have.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, and other parsers reject them.
Here a non-finite number becomes ``null`` and the document gains a ``"non_finite"`` list saying
which fields were nulled and what they held. numpy scalars and arrays become plain numbers and
lists. The CLI's ``--format json`` and the refit's ``scaling/fit.json`` both go through this.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

NON_FINITE_KEY = "non_finite"


def _plain(value: Any) -> Any:
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def to_strict(value: Any) -> Any:
    """A copy of ``value`` that is strict JSON, with the nulled fields listed (see module)."""
    nulled: list[dict[str, str]] = []

    def walk(v: Any, where: str) -> Any:
        v = _plain(v)
        if isinstance(v, float) and not math.isfinite(v):
            nulled.append(
                {
                    "field": where or "(document)",
                    "value": repr(v),
                    "reason": "not a finite number (an overflow or an undefined quantity)",
                }
            )
            return None
        if isinstance(v, dict):
            return {str(k): walk(x, f"{where}.{k}" if where else str(k)) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x, f"{where}[{i}]") for i, x in enumerate(v)]
        return v

    out = walk(value, "")
    if nulled and isinstance(out, dict):
        out[NON_FINITE_KEY] = [*(out.get(NON_FINITE_KEY) or []), *nulled]
    return out


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`to_strict`; ``allow_nan=False`` makes a leftover NaN an error."""
    return json.dumps(to_strict(value), allow_nan=False, **kwargs)
