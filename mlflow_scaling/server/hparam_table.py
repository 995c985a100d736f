"""The family page's learning-rate and batch section, rendered from ``fit.json``'s ``hparams``.

The chosen laws (form, coefficient, exponents, leave-one-cell-out error), the predicted η and B
at the target with their intervals and 0.25 % bands, one row per cell (an edge cell's optimum is
shown as the bound it is), the notes, and ``scaling/hparams.png``. Values are read tolerantly
(a key missing or of another type shows as a dash) and preformatted here; the template escapes
them.
"""

from __future__ import annotations

from typing import Any

from ..formatting import MISSING, fmt_or_missing
from ..rendering import render
from ..tracking import schema

NAMES = {"lr": "peak learning rate η", "batch": "global batch B (tokens)"}


def _g(value: Any) -> str:
    return MISSING if isinstance(value, bool) else fmt_or_missing(value, ".3g")


def _span(pair: Any) -> str:
    if isinstance(pair, list) and len(pair) == 2:
        return f"{_g(pair[0])} – {_g(pair[1])}"
    return MISSING


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _optimum(cell: dict, key: str) -> str:
    """The cell's optimum on one axis; an edge cell's is a bound, said so."""
    value, status = cell.get(f"{key}_opt"), cell.get(f"{key}_status")
    if value is None:
        return MISSING
    if status == "edge_high":
        return f"> {_g(cell.get(f'{key}_lo'))} (bound: best run on the grid's largest value)"
    if status == "edge_low":
        return f"< {_g(cell.get(f'{key}_hi'))} (bound: best run on the grid's smallest value)"
    if status in ("too_few", "not_convex"):
        return f"{_g(value)} (best run; {str(status).replace('_', ' ')})"
    return _g(value)


def _law_rows(h: dict) -> list[dict[str, str]]:
    rows = []
    for key, law in _dict(h.get("laws")).items():
        law = _dict(law)
        exponents = _dict(law.get("exponents"))
        rows.append({
            "name": NAMES.get(key, str(key)),
            "form": str(law.get("form") or "no law"),
            "coef": _g(law.get("coef")),
            "exponents": " · ".join(f"{v}^{_g(e)}" for v, e in exponents.items()) or MISSING,
            "loo_error": _g(law.get("loo_error")),
            "choice": str(_dict(h.get("law_choice")).get(key) or ""),
        })  # fmt: skip
    return rows


def _prediction(h: dict) -> dict[str, str] | None:
    preds = h.get("predictions")
    p = _dict(preds[0]) if isinstance(preds, list) and preds else {}
    if not p:
        return None
    band = _dict(p.get("band_025"))
    return {
        "N": _g(p.get("N")), "D": _g(p.get("D")),
        "source": str(_dict(h.get("target")).get("source") or ""),
        "lr": _g(p.get("lr")), "lr_interval": _span([p.get("lr_lo"), p.get("lr_hi")]),
        "lr_band": _span(band.get("lr")),
        "batch": _g(p.get("batch_tokens")),
        "batch_interval": _span([p.get("batch_lo"), p.get("batch_hi")]),
        "batch_band": _span(band.get("batch")),
        "penalty": _g(100 * v) + " %" if isinstance(
            v := _dict(p.get("loss_penalty")).get("max"), int | float) else MISSING,
    }  # fmt: skip


def _cell_rows(h: dict) -> list[dict[str, str]]:
    rows = []
    for cell in h.get("cells") or []:
        if not isinstance(cell, dict):
            continue
        band = _dict(cell.get("band_025"))
        rows.append({
            "N": _g(cell.get("N")), "D": _g(cell.get("D")), "runs": _g(cell.get("runs")),
            "lr": _optimum(cell, "lr"), "lr_interval": _span([cell.get("lr_lo"),
                                                               cell.get("lr_hi")])
            if cell.get("lr_status") == "fitted" else MISSING,
            "lr_band": _span(band.get("lr")),
            "batch": _optimum(cell, "batch"), "batch_band": _span(band.get("batch")),
            "loss": f"{cell['loss_opt']:.4f}" if isinstance(cell.get("loss_opt"), float)
            else MISSING,
            "status": " / ".join(str(cell.get(f"{k}_status")) for k in ("lr", "batch")
                                 if cell.get(f"{k}_status")),
        })  # fmt: skip
    return rows


def hparam_view(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """Preformatted values for ``_hparams.html``; None when the fit has no sweep."""
    h = (doc or {}).get("hparams") if isinstance(doc, dict) else None
    if not isinstance(h, dict):
        return None
    runs = [r for r in h.get("runs") or [] if isinstance(r, dict)]
    return {
        "error": str(h.get("error") or ""),
        "law_runs": str(h.get("law_runs") or ""),
        "swept": _g(h.get("swept_runs")),
        "out_of_law": [
            str(r.get("run_name") or r.get("run_id")) for r in runs if r.get("in_law") is False
        ],  # fmt: skip
        "laws": _law_rows(h),
        "prediction": _prediction(h),
        "cells": _cell_rows(h),
        "notes": [str(n) for n in h.get("notes") or []],
        "two_axes": "batch" in (h.get("axes") or []),
    }


def hparams_section(detail: Any, links: Any) -> str:
    """The section's HTML for a family page ('' when the fit has no sweep)."""
    view = hparam_view(detail.doc)
    if view is None:
        return ""
    figure = detail.published_url(links, schema.ARTIFACT_HPARAMS_PNG)
    return render("_hparams.html", h=view, figure=figure)
