"""The family page's repeated-data section, rendered from ``fit.json``'s ``data_constrained``.

R*_D and R*_N with their intervals, the epoch count after which one more epoch is worth less
than 10 % of fresh data, the check's target at the family's unique tokens, whether the
frontier's plateau is ``data_limited``, the runs that did not log them, and
``scaling/data_constrained.png``.
"""

from __future__ import annotations

from typing import Any

from ..formatting import MISSING
from ..formatting import fmt_or_missing as _num
from ..rendering import render
from ..tracking import schema

ROWS = (
    ("R*_D (repetitions of data worth 1/e of fresh)", "r_star_d"),
    ("R*_N (excess parameters, in multiples of N_U)", "r_star_n"),
    ("epochs after which one more is worth < 10 % of fresh data", "epochs_worth_tenth"),
)


def _row(label: str, key: str, params: dict, intervals: dict, value: Any = None) -> dict:
    value = params.get(key) if value is None else value
    ci = intervals.get(key)
    ok = isinstance(ci, list) and len(ci) == 2
    return {"label": label, "key": key, "value": _num(value),
            "lo": _num(ci[0]) if ok else MISSING, "hi": _num(ci[1]) if ok else MISSING}  # fmt: skip


def data_constrained_view(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """Preformatted values for ``_data_constrained.html``, or None without the section."""
    section = (doc or {}).get("data_constrained")
    if not isinstance(section, dict):
        return None
    params = section.get("params") if isinstance(section.get("params"), dict) else {}
    intervals = section.get("intervals") if isinstance(section.get("intervals"), dict) else {}
    rows = []
    if section.get("identified"):
        worth = section.get("epochs_worth_tenth")
        rows = [_row(label, key, params, intervals, worth if key == "epochs_worth_tenth" else None)
                for label, key in ROWS]  # fmt: skip
    target = section.get("target")
    without = section.get("runs_without_unique_tokens") or []
    return {
        "rows": rows,
        "note": str(section.get("note") or ""),
        "error": str(section.get("error") or ""),
        "at_bound": [str(a) for a in section.get("at_bound") or []],
        "r_star_n_identified": section.get("r_star_n_identified") is not False,
        "unique_tokens": _num(section.get("unique_tokens")),
        "target": _target_view(target) if isinstance(target, dict) else None,
        "without": [r for r in without if isinstance(r, dict)],
        "phase": _phase_view(section.get("phase")),
        "prior": _prior_view(section.get("prior")),
    }


def _prior_view(prior: Any) -> str:
    """A sentence when R*_D leans on the prior more than on the runs ('' otherwise)."""
    if not isinstance(prior, dict) or prior.get("leans_on_prior") is not True:
        return ""
    alone = prior.get("without_prior") if isinstance(prior.get("without_prior"), dict) else {}
    return (
        f"R*_D leans on the prior (Muennighoff et al.: R*_D = {_num(prior.get('r_star_d'))}, "
        f"R*_N = {_num(prior.get('r_star_n'))}, σ = {_num(prior.get('sigma_log'))} in log): the "
        f"runs alone put it at {_num(alone.get('r_star_d'))}, and the interval is their scatter "
        "around the prior's value, not how well they fix it."
    )


def _phase_view(phase: Any) -> dict[str, str] | None:
    """Whether the frontier's plateau is data-limited, and why (None without the rule)."""
    if not isinstance(phase, dict) or not isinstance(phase.get("data_limited"), bool):
        return None
    return {"verdict": "yes" if phase["data_limited"] else "no",
            "reason": str(phase.get("reason") or "")}  # fmt: skip


def _target_view(target: dict[str, Any]) -> dict[str, str]:
    worth = target.get("more_than_worth_training")
    verdict = "no: beyond the 10 % epoch count" if worth else "yes"
    return {
        "N": _num(target.get("N"), ".3g"),
        "D": _num(target.get("D"), ".3g"),
        "epochs": _num(target.get("epochs")),
        "loss": _num(target.get("loss"), ".4f"),
        "fresh_loss": _num(target.get("fresh_loss"), ".4f"),
        "worth": MISSING if worth is None else verdict,
    }


def data_constrained_section(detail: Any, links: Any) -> str:
    """The section's HTML for a family page ('' when the fit has no such section)."""
    view = data_constrained_view(detail.doc)
    if view is None:
        return ""
    figure = detail.published_url(links, schema.ARTIFACT_DATA_CONSTRAINED_PNG)
    return render("_data_constrained.html", v=view, figure=figure)
