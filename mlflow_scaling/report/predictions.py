"""``scaling/predictions.csv``: loss, N_opt and D_opt with intervals for a ladder of budgets."""

from __future__ import annotations

import csv
import io
from typing import Any

COLUMNS = (
    "flops",
    "loss",
    "loss_lo",
    "loss_hi",
    "n_opt",
    "n_opt_lo",
    "n_opt_hi",
    "d_opt",
    "d_opt_lo",
    "d_opt_hi",
    "tokens_per_param",
)
_SOURCE = {"loss_lo": "lo", "loss_hi": "hi"}


def predictions_csv(doc: dict[str, Any]) -> str:
    """The budget rows of a fit document as CSV text (a header only when there is no fit).

    Interval columns are empty when the fit was not bootstrapped.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in doc.get("budgets") or []:
        values = [row.get(_SOURCE.get(col, col)) for col in COLUMNS]
        writer.writerow(["" if v is None else repr(float(v)) for v in values])
    return out.getvalue()
