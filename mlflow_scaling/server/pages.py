"""The scaling pages: plain server-rendered HTML from Jinja2 templates, no JavaScript.

The markup lives in ``mlflow_scaling/templates`` (``index.html``, ``family.html`` and its
``_family_*.html`` sections, ``message.html``) and is rendered with autoescape on, so every
string that comes from MLflow (experiment, family and run names, tag values, ``fit.json``
contents, CSV cells) is escaped by the template engine, in text and attributes alike. URLs are
built here with ``urllib.parse.quote``; CSS classes come from fixed tables, never from data.

This module reads a :class:`~.data.FamilyDetail` tolerantly (``fit.json`` keys may be missing
or of another type) into plain values for the templates. Numbers carry their full value in
``data-value`` attributes next to the rounded text, so tests and scripts read them back exactly.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from ..formatting import MISSING, as_float, fmt_sci, fmt_span  # noqa: F401  (re-exported)
from ..planning.section import plan_section
from ..rendering import render
from ..tracking import schema
from .charts import data_uri, history_png
from .compare_page import render_compare_links
from .data import MAX_PAGE_SIZE, PAGE_SIZE, FamilyDetail, FamilyPage, IndexQuery, dig
from .data_constrained_section import data_constrained_section
from .hparam_table import hparams_section
from .links import Links  # noqa: F401  (re-exported: the pages take it)
from .task_table import tasks_section

FIT_ROWS = (
    ("E", "E", "irreducible loss"),
    ("A", "A", "parameter term coefficient"),
    ("B", "B", "data term coefficient"),
    ("alpha", "α", "parameter exponent"),
    ("beta", "β", "data exponent"),
    ("a", "a", "N_opt ∝ C^a"),
    ("b", "b", "D_opt ∝ C^b"),
)
HISTORY_SYMBOLS = {"alpha": "α", "beta": "β", "a": "a", "b": "b"}
ARTIFACT_LINKS = {
    schema.ARTIFACT_REPORT_HTML: "HTML report",
    schema.ARTIFACT_FIT_JSON: "fit.json",
    schema.ARTIFACT_PREDICTIONS_CSV: "predictions.csv",
    schema.ARTIFACT_FIT_PNG: "fit.png",
    schema.ARTIFACT_PLAN_JSON: "plan.json",
    schema.ARTIFACT_HPARAMS_PNG: "hparams.png",
}


# --- index ---------------------------------------------------------------------------------


def _filter_args(query: IndexQuery) -> dict[str, str | int | None]:
    """The query args every link of the index keeps: the filters and a chosen page size."""
    return {
        "per_page": None if query.per_page == PAGE_SIZE else query.per_page,
        "experiment": query.experiment,
        "q": query.name_contains,
    }


def render_index(page: FamilyPage, query: IndexQuery, links: Links) -> str:
    """One index page: its families, the filter form, and links to the first and next page."""
    shown = len(page.families)
    keep = _filter_args(query)
    next_url = None
    if page.next_token:
        next_url = links.index_page(**keep, page_token=page.next_token, start=query.start + shown)
    return render(
        "index.html", title="Scaling families", crumbs=(), links=links,
        page=page, query=query, first_number=query.start, last_number=query.start + shown - 1,
        next_url=next_url, first_url=links.index_page(**keep) if query.page_token else None,
        clear_url=links.index_page(per_page=keep["per_page"]), max_per_page=MAX_PAGE_SIZE,
    )  # fmt: skip


def render_message(title: str, message: str, links: Links) -> str:
    """A small page for not-found and error answers."""
    return render("message.html", title=title, message=message, links=links, crumbs=())


# --- family page: fit.json read tolerantly into plain values ---------------------------------


def _pair(value: Any) -> tuple[float | None, float | None]:
    if isinstance(value, list) and len(value) == 2:
        return as_float(value[0]), as_float(value[1])
    return None, None


def _fit_view(d: FamilyDetail) -> dict[str, Any]:
    doc = d.doc or {}
    rows = []
    for key, symbol, meaning in FIT_ROWS:
        value = d.summary.fit.get(key)
        if value is None:  # the metric is missing: fall back to the document
            value = as_float(
                dig(doc, f"approach3.params.{key}", f"metrics.{schema.fit_metric(key)}")
                if key not in ("a", "b")
                else dig(doc, f"approach3.allocation.{key}")
            )
        ci = dig(doc, f"approach3.ci.{key}", f"approach3.allocation.ci.{key}", kind=list)
        lo, hi = _pair(ci)
        rows.append({"key": key, "symbol": symbol, "meaning": meaning, "value": value,
                     "lo": lo, "hi": hi})  # fmt: skip
    level = as_float(dig(doc, "approach3.ci_level"))
    points = as_float(d.fit_metrics.get(schema.METRIC_FIT_POINTS))
    excluded = as_float(d.fit_metrics.get(schema.METRIC_FIT_EXCLUDED))
    s = d.summary
    facts = [
        ("refit number", MISSING if s.refit_number is None else str(s.refit_number)),
        ("last refit", s.refitted_ms),
        ("runs used by the fit", MISSING if points is None else f"{points:.0f}"),
        ("runs excluded by the fit", MISSING if excluded is None else f"{excluded:.0f}"),
        ("status", dig(doc, "status", kind=str) or MISSING),
        ("input digest", (s.digest or "(being written)") if s.digest is not None else MISSING),
    ]
    reason = dig(doc, "reason", kind=str)
    if reason:
        facts.append(("reason", reason))
    return {
        "rows": rows,
        "ci_head": f"{level:.0%} interval" if level else "interval",
        "n_boot": dig(doc, "approach3.n_boot"),
        "facts": facts,
    }


def _phase_view(d: FamilyDetail) -> dict[str, Any]:
    phases = dig(d.doc or {}, "phases", "check.phases", kind=dict) or {}
    segments = []
    for seg in dig(phases, "segments", kind=list) or []:
        if isinstance(seg, dict):
            segments.append({
                "phase": seg.get("phase") if isinstance(seg.get("phase"), str) else None,
                **{k: as_float(seg.get(k)) for k in ("x_min", "x_max", "slope")},
                "drop": as_float(seg.get("drop_per_decade")),
            })  # fmt: skip
    return {
        "phase": d.summary.phase or dig(phases, "phase", kind=str),
        "reason": dig(phases, "reason", kind=str),
        "segments": segments,
        "model": dig(phases, "model", kind=str) or MISSING,
        "frontier_loss": as_float(dig(phases, "frontier_loss")),
        "span_decades": as_float(dig(phases, "span_decades")),
    }


def _check_view(d: FamilyDetail) -> dict[str, Any]:
    check = dig(d.doc or {}, "check", kind=dict) or {}
    criteria = [
        {k: c.get(k) for k in ("name", "value", "threshold", "passed", "detail")}
        for c in dig(check, "criteria", kind=list) or []
        if isinstance(c, dict)
    ]
    pred = dig(check, "prediction", kind=dict)
    prediction = None
    if pred:
        prediction = {k: as_float(pred.get(k)) for k in ("N", "D", "loss", "lo", "hi")}
        prediction["interval"] = pred.get("interval") if isinstance(pred.get("interval"), str) \
            else None  # fmt: skip
    return {
        "verdict": d.summary.check or dig(check, "verdict", kind=str),
        "reason": dig(check, "reason", kind=str),
        "criteria": criteria,
        "prediction": prediction,
    }


def _predictions_view(d: FamilyDetail) -> dict[str, Any]:
    if d.predictions:
        header, rows = d.predictions
        return {"source": "csv", "header": header, "rows": rows,
                "truncated": d.predictions_truncated}  # fmt: skip
    budgets = dig(d.doc or {}, "budgets", "approach3.budgets", kind=list) or []
    budgets = [b for b in budgets if isinstance(b, dict)]
    keys = list(dict.fromkeys(k for b in budgets for k in b))
    rows = [[b.get(k) for k in keys] for b in budgets]
    return {"source": "fit.json" if budgets else None, "header": keys, "rows": rows,
            "truncated": False}  # fmt: skip


def _history_view(d: FamilyDetail) -> dict[str, Any]:
    series = {h.name: h for h in d.history}
    steps = sorted({p[0] for h in d.history for p in h.points})
    names = [n for n in HISTORY_SYMBOLS if n in series]
    by_step = {n: {p[0]: p for p in series[n].points} for n in names}
    rows = [
        {
            "step": step,
            "values": {n: by_step[n][step][2] if step in by_step[n] else None for n in names},
            "stamp": max((by_step[n][step][1] for n in names if step in by_step[n]), default=0),
        }
        for step in steps
    ]
    png = history_png(d.history) if steps else b""
    return {
        "names": names,
        "symbols": [HISTORY_SYMBOLS[n] for n in names],
        "rows": rows,
        "png": data_uri(png) if png else None,
    }


def render_family(d: FamilyDetail, links: Links) -> str:
    s = d.summary
    fitted = s.fit_run_id is not None
    context: dict[str, Any] = {
        "title": s.name,
        "crumbs": (s.experiment.name, s.name),
        "links": links,
        "d": d,
        "s": s,
        "members": sorted(d.members, key=lambda p: (p.n, p.d)),
        "compare_links": Markup(render_compare_links(d.comparisons, links)),  # escaped there
    }
    if fitted:
        context.update(
            artifact_links=[(links.artifact(s.fit_run_id, p), t)
                            for p, t in ARTIFACT_LINKS.items() if p in d.artifacts],
            figure=links.artifact(s.fit_run_id, schema.ARTIFACT_FIT_PNG)
            if schema.ARTIFACT_FIT_PNG in d.artifacts else None,
            fit=_fit_view(d),
            phases=_phase_view(d),
            check=_check_view(d),
            predictions=_predictions_view(d),
            predictions_csv=schema.ARTIFACT_PREDICTIONS_CSV,
            history=_history_view(d),
            plan=Markup(plan_section(d.doc)),  # rendered by _plan.html, escaped there
            tasks=Markup(tasks_section(d, links)),  # rendered by _tasks.html, escaped there
            hparams=Markup(hparams_section(d, links)),  # by _hparams.html, escaped there
            data_constrained=Markup(data_constrained_section(d, links)),  # escaped there too
        )  # fmt: skip
    return render("family.html", fitted=fitted, **context)
