"""The comparison page, ``/scaling/compare/<experiment>/<baseline>/<candidate>``, and the links
to it from each family page.

Like the other pages it reads what was posted (the comparison run written by
``mlflow-scaling compare`` or the refit job, and its ``scaling/compare.json``) and computes
nothing. ``<experiment>`` is the candidate's experiment (id or name), where the run lives.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from ..formatting import as_float
from ..rendering import render
from ..tracking import schema
from ..tracking.compare_run import find_compare_runs
from ..tracking.reading import ExperimentRef
from .data import TrackingSource, fit_artifacts, read_fit_artifact
from .links import Links

if TYPE_CHECKING:
    from mlflow.entities import Run


VERDICT_CLASSES = {
    "better": "check-pass",
    "worse": "check-fail",
    "crosses": "phase-plateau",
    "no_difference": "check-none",
}


def compare_url(prefix: str, experiment_id: str, baseline: str, candidate: str) -> str:
    """The page's URL; names a path would mangle (a ``/``, ``.``, ``..``) go in the query."""
    exp = quote(str(experiment_id), safe="")
    names = (baseline, candidate)
    if any("/" in n or n in ("", ".", "..") for n in names):
        query = urlencode({"baseline": baseline, "candidate": candidate})
        return f"{prefix}/scaling/compare/{exp}?{query}"
    return f"{prefix}/scaling/compare/{exp}/{quote(baseline, safe='')}/{quote(candidate, safe='')}"


@dataclass
class ComparisonDetail:
    """What the comparison page shows."""

    experiment: ExperimentRef
    baseline: str
    candidate: str
    run: Run | None = None
    runs: int = 0
    doc: dict[str, Any] | None = None
    problem: str | None = None
    artifacts: set[str] = field(default_factory=set)


def comparison_detail(
    source: TrackingSource, experiment: ExperimentRef, baseline: str, candidate: str
) -> ComparisonDetail | None:
    """The comparison run of the pair in ``experiment`` and its document, or None."""
    runs = find_compare_runs(source, experiment.experiment_id, None, baseline, candidate)  # type: ignore[arg-type]
    if not runs:
        return None
    detail = ComparisonDetail(experiment, baseline, candidate, run=runs[0], runs=len(runs))
    detail.artifacts = fit_artifacts(source, runs[0])  # the published comparison's files
    if schema.ARTIFACT_COMPARE_JSON not in detail.artifacts:
        detail.problem = f"the comparison run has no published {schema.ARTIFACT_COMPARE_JSON} (yet)"
        return detail
    raw = read_fit_artifact(source, runs[0], schema.ARTIFACT_COMPARE_JSON)
    try:
        doc = json.loads((raw or b"").decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        detail.problem = f"{schema.ARTIFACT_COMPARE_JSON} is not valid JSON ({exc})"
        return detail
    if isinstance(doc, dict) and isinstance(doc.get("budgets"), list):
        detail.doc = doc
    else:
        detail.problem = f"{schema.ARTIFACT_COMPARE_JSON} does not hold a comparison"
    return detail


def _num(value: Any, spec: str) -> str:
    number = as_float(value)
    return "—" if number is None else format(number, spec)


def _text(value: Any) -> str:
    return "" if value is None or isinstance(value, dict | list) else str(value)


def _shift_view(shift: Any) -> dict[str, str]:
    shift = shift if isinstance(shift, dict) else {}
    return {k: _num(shift.get(k), ".3g") for k in ("value", "lo", "hi")}


def _slope_view(slope: Any) -> dict[str, str]:
    slope = slope if isinstance(slope, dict) else {}
    return {"decision": _text(slope.get("decision")) or "—",
            "statistic": _num(slope.get("statistic"), ".3g"),
            "p_value": _num(slope.get("p_value"), ".3g")}  # fmt: skip


def _measured_view(measured: Any) -> list[dict[str, str]]:
    rows = measured.get("rows") if isinstance(measured, dict) else None
    out = []
    for r in rows if isinstance(rows, list) else []:
        if not isinstance(r, dict):
            continue
        diff = as_float(r.get("diff"))
        out.append({
            "flops": _num(r.get("flops"), ".3g"),
            "loss_baseline": _num(r.get("loss_baseline"), ".4f"),
            "loss_candidate": _num(r.get("loss_candidate"), ".4f"),
            "lower": "—" if diff is None else format(-math.expm1(-diff), "+.2%"),
            "noise": _num(r.get("threshold"), ".2%"),
            "sign": {1: "lower", -1: "higher", 0: "within noise"}.get(r.get("sign"), "—"),
        })  # fmt: skip
    return out


def page_view(doc: dict[str, Any]) -> dict[str, Any]:
    """``compare.json`` as the template shows it: strings only, a missing key shown as —."""
    rows = []
    for r in doc.get("budgets") or []:
        if not isinstance(r, dict):
            continue
        rows.append({
            "flops": _num(r.get("flops"), ".3g"),
            "flops_value": as_float(r.get("flops")),
            "loss_baseline": _num(r.get("loss_baseline"), ".4f"),
            "loss_candidate": _num(r.get("loss_candidate"), ".4f"),
            "multiplier": _num(r.get("multiplier"), ".3f"),
            "multiplier_value": as_float(r.get("multiplier")),
            "interval": f"{_num(r.get('lo'), '.3f')} – {_num(r.get('hi'), '.3f')}",
            "scope": _text(r.get("scope")) or "—",
        })  # fmt: skip
    families = {}
    for role in ("baseline", "candidate"):
        info = doc.get(role) if isinstance(doc.get(role), dict) else {}
        families[role] = {
            k: _text(info.get(k)) or "—" for k in ("family", "phase", "check", "runs")
        }
        law_fit = info.get("law_fit") if isinstance(info.get("law_fit"), dict) else {}
        families[role]["law_fit"] = _text(law_fit.get("status")) or "—"
        if law_fit.get("status") == "misfit":
            families[role]["law_fit"] += f" ({_num(law_fit.get('largest_miss'), '+.1%')})"
    level = as_float(doc.get("level")) or 0.95
    return {
        "verdict": _text(doc.get("verdict")),
        "note": _text(doc.get("note")),
        "verdict_extrapolated": _text(doc.get("verdict_extrapolated")) or "—",
        "extrapolated_note": _text(doc.get("extrapolated_note")),
        "extrapolated_to": _num(doc.get("extrapolated_to"), ".3g"),
        "shift": _shift_view(doc.get("shift_multiplier")),
        "slope": _slope_view(doc.get("slope_test")),
        "measured": _measured_view(doc.get("measured")),
        "crossover": as_float(doc.get("crossover_flops")),
        "crossover_text": _num(doc.get("crossover_flops"), ".3g"),
        "warnings": [_text(w) for w in doc.get("warnings") or [] if _text(w)],
        "families": families,
        "level": f"{100 * level:.0f}%",
        "budgets": rows,
    }


def render_compare_links(comparisons: list[dict[str, str]], links: Links) -> str:
    """The family page's section listing its comparisons (empty when there are none)."""
    items = [{**c, "url": compare_url(links.prefix, c["experiment_id"], c["baseline"],
                                      c["candidate"])} for c in comparisons]  # fmt: skip
    return render("_compare_links.html", comparisons=items, classes=VERDICT_CLASSES)


def render_comparison(d: ComparisonDetail, links: Links) -> str:
    """The whole comparison page."""
    exp = d.experiment
    run_id = d.run.info.run_id if d.run is not None else None
    title = f"{d.candidate} vs {d.baseline}"
    return render(
        "compare.html",
        title=title,
        crumbs=(exp.name, title),
        links=links,
        d=d,
        doc=page_view(d.doc) if d.doc else None,
        classes=VERDICT_CLASSES,
        baseline_url=links.family(exp.experiment_id, d.baseline),
        candidate_url=links.family(exp.experiment_id, d.candidate),
        run_url=links.ui_run(exp.experiment_id, run_id) if run_id else None,
        png_url=links.artifact(run_id, schema.ARTIFACT_COMPARE_PNG)
        if run_id and schema.ARTIFACT_COMPARE_PNG in d.artifacts
        else None,
        json_url=links.artifact(run_id, schema.ARTIFACT_COMPARE_JSON)
        if run_id and schema.ARTIFACT_COMPARE_JSON in d.artifacts
        else None,
    )
