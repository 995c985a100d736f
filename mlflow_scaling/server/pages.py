"""HTML of the scaling pages: plain server-rendered markup, no JavaScript.

Every string that comes from MLflow (experiment, family, run names, tag values, ``fit.json``
contents, CSV cells) goes through :func:`esc` (``html.escape`` with quotes) before it is
written, in text and in attributes alike; URLs are built with ``urllib.parse.quote`` and then
escaped as attributes. CSS classes are chosen from fixed tables, never taken from data.

Numbers carry their full value in ``data-value`` attributes next to the rounded text, so tests
and scripts can read them back exactly.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..planning.section import plan_section
from ..tracking import schema
from .charts import data_uri, history_png
from .data import FamilyDetail, FamilySummary, Span, as_float, dig

MISSING = "—"
PHASE_LABELS = {
    schema.PHASE_COLD_START: "cold start",
    schema.PHASE_SCALING: "scaling",
    schema.PHASE_PLATEAU: "plateau",
    schema.PHASE_INSUFFICIENT_DATA: "insufficient data",
}
PHASE_CLASSES = {
    schema.PHASE_COLD_START: "phase-cold",
    schema.PHASE_SCALING: "phase-scaling",
    schema.PHASE_PLATEAU: "phase-plateau",
    schema.PHASE_INSUFFICIENT_DATA: "phase-insufficient",
}
FIT_ROWS = (
    ("E", "E", "irreducible loss"),
    ("A", "A", "parameter term coefficient"),
    ("B", "B", "data term coefficient"),
    ("alpha", "α", "parameter exponent"),
    ("beta", "β", "data exponent"),
    ("a", "a", "N_opt ∝ C^a"),
    ("b", "b", "D_opt ∝ C^b"),
)
EXPONENTS = ("E", "alpha", "beta", "a", "b")

CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#f6f8fa; --link:#0969da; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
       color:var(--fg); background:#fff; }
header { background:#0e1116; color:#fff; padding:10px 24px; }
header a { color:#fff; text-decoration:none; font-weight:600; }
header .sep { color:#8b949e; margin:0 6px; }
main { padding:16px 24px 40px; max-width:1400px; }
h1 { font-size:22px; margin:8px 0 4px; word-break:break-word; }
h2 { font-size:17px; margin:28px 0 8px; border-bottom:1px solid var(--line); padding-bottom:4px; }
.sub { color:var(--muted); margin:0 0 10px; }
a { color:var(--link); }
table { border-collapse:collapse; margin:6px 0 10px; }
th, td { border:1px solid var(--line); padding:4px 8px; text-align:left; vertical-align:top; }
th { background:var(--bg); font-weight:600; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.name { word-break:break-word; max-width:360px; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px;
         font-weight:600; border:1px solid transparent; white-space:nowrap; }
.phase-scaling { background:#dafbe1; color:#116329; border-color:#4ac26b; }
.phase-cold { background:#ddf4ff; color:#0550ae; border-color:#54aeff; }
.phase-plateau { background:#fff1e5; color:#953800; border-color:#fb8f44; }
.phase-insufficient, .phase-unknown { background:#eff2f5; color:#59636e; border-color:#d1d9e0; }
.check-pass { background:#dafbe1; color:#116329; border-color:#4ac26b; }
.check-fail { background:#ffebe9; color:#a40e26; border-color:#ff8182; }
.check-none { background:#eff2f5; color:#59636e; }
.note { background:#fff8c5; border:1px solid #d4a72c; padding:6px 10px; margin:8px 0;
        border-radius:6px; word-break:break-word; }
.error { background:#ffebe9; border:1px solid #ff8182; padding:6px 10px; margin:8px 0;
         border-radius:6px; word-break:break-word; }
.muted { color:var(--muted); }
.links a { margin-right:10px; white-space:nowrap; }
img.figure { max-width:100%; border:1px solid var(--line); }
footer { color:var(--muted); padding:0 24px 24px; font-size:12px; }
code { background:var(--bg); padding:0 4px; border-radius:4px; }
"""


def esc(value: object) -> str:
    """Text or attribute value, HTML-escaped (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


# --- links ---------------------------------------------------------------------------------


def _has_unsafe_path_parts(name: str) -> bool:
    parts = name.split("/")
    return name.startswith("/") or "" in parts[:-1] or any(p in (".", "..") for p in parts)


@dataclass(frozen=True)
class Links:
    """URLs of the pages and of the normal MLflow UI, under the server's static prefix."""

    prefix: str = ""

    def home(self) -> str:
        return f"{self.prefix}/"

    def index(self) -> str:
        return f"{self.prefix}/scaling/"

    def family(self, experiment_id: str, family: str) -> str:
        exp = quote(str(experiment_id), safe="")
        if _has_unsafe_path_parts(family):  # a path the browser or router would normalise
            return f"{self.prefix}/scaling/family/{exp}?name={quote(family, safe='')}"
        return f"{self.prefix}/scaling/family/{exp}/{quote(family, safe='')}"

    def artifact(self, run_id: str, path: str) -> str:
        return f"{self.prefix}/scaling/artifact/{quote(run_id, safe='')}/{quote(path)}"

    def ui_experiment(self, experiment_id: str) -> str:
        return f"{self.prefix}/#/experiments/{quote(str(experiment_id), safe='')}"

    def ui_run(self, experiment_id: str, run_id: str) -> str:
        exp, run = quote(str(experiment_id), safe=""), quote(run_id, safe="")
        return f"{self.prefix}/#/experiments/{exp}/runs/{run}"

    def ui_members(self, experiment_id: str, family: str) -> str:
        filt = f"{schema.family_filter(family)} and tags.`{schema.TAG_ROLE}` IS NULL"
        return f"{self.ui_experiment(experiment_id)}?searchFilter={quote(filt, safe='')}"


def link(href: str, text: object, *, title: str | None = None) -> str:
    t = f' title="{esc(title)}"' if title else ""
    return f'<a href="{esc(href)}"{t}>{esc(text)}</a>'


# --- numbers -------------------------------------------------------------------------------


def fmt_sci(value: float | None) -> str:
    """3 significant digits, scientific for large or small values: ``1.23e9``."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.4g}"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_fixed(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:.{digits}f}"


def fmt_value(name: str, value: float | None) -> str:
    """How a fitted quantity is shown: exponents and E fixed, A and B scientific."""
    return fmt_fixed(value) if name in EXPONENTS else fmt_sci(value)


def fmt_span(span: Span | None) -> str:
    if span is None:
        return MISSING
    if span.lo == span.hi:
        return fmt_sci(span.lo)
    return f"{fmt_sci(span.lo)} – {fmt_sci(span.hi)}"


def fmt_time(ms: int | None) -> str:
    if not ms:
        return MISSING
    when = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def num_cell(field: str, value: float | None, text: str | None = None) -> str:
    shown = text if text is not None else fmt_value(field, value)
    data = "" if value is None else f' data-value="{esc(repr(float(value)))}"'
    return f'<td class="num" data-field="{esc(field)}"{data}>{esc(shown)}</td>'


def generic_cell(value: Any) -> str:
    """A cell of unknown content: numbers right-aligned and rounded, anything else as text."""
    if isinstance(value, bool):
        return f"<td>{esc(value)}</td>"
    number = as_float(value)
    if number is not None:
        return f'<td class="num" data-value="{esc(repr(number))}">{esc(fmt_sci(number))}</td>'
    if value is None or value == "":
        return f"<td>{MISSING}</td>"
    if isinstance(value, list | dict):
        import json

        return f"<td><code>{esc(json.dumps(value, default=str)[:300])}</code></td>"
    return f'<td class="name">{esc(value)}</td>'


# --- badges --------------------------------------------------------------------------------


def phase_badge(phase: str | None) -> str:
    if not phase:
        return f'<span class="badge phase-unknown">{MISSING}</span>'
    cls = PHASE_CLASSES.get(phase, "phase-unknown")
    label = PHASE_LABELS.get(phase, phase)
    return f'<span class="badge {cls}" data-phase="{esc(phase)}">{esc(label)}</span>'


def check_badge(verdict: str | None) -> str:
    if verdict == schema.CHECK_PASS:
        return '<span class="badge check-pass" data-check="pass">✓ pass</span>'
    if verdict == schema.CHECK_FAIL:
        return '<span class="badge check-fail" data-check="fail">✗ fail</span>'
    if not verdict:
        return f'<span class="badge check-none">{MISSING}</span>'
    return f'<span class="badge check-none" data-check="{esc(verdict)}">{esc(verdict)}</span>'


def passed_badge(passed: Any) -> str:
    if passed is True:
        return '<span class="badge check-pass">✓ pass</span>'
    if passed is False:
        return '<span class="badge check-fail">✗ fail</span>'
    return '<span class="badge check-none">n/a</span>'


# --- page frame ----------------------------------------------------------------------------


def page(title: str, body: str, links: Links, crumbs: Sequence[tuple[str, str | None]] = ()) -> str:
    trail = [link(links.home(), "MLflow"), link(links.index(), "Scaling families")]
    for text, href in crumbs:
        trail.append(link(href, text) if href else f"<span>{esc(text)}</span>")
    sep = '<span class="sep">›</span>'
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)} · MLflow scaling</title><style>{CSS}</style></head>"
        f"<body><header>{sep.join(trail)}</header><main>{body}</main>"
        "<footer>Read-only: these pages show what <code>mlflow-scaling refit</code> posted to "
        "the fit runs; nothing is fitted here.</footer></body></html>\n"
    )


def table(headers: Sequence[str] | None, rows: Iterable[str], *, cls: str = "") -> str:
    c = f' class="{esc(cls)}"' if cls else ""
    head = ""
    if headers:
        head = "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>"
    return f"<table{c}>{head}<tbody>{''.join(rows)}</tbody></table>"


# --- index ---------------------------------------------------------------------------------

INDEX_HEADERS = (
    "Experiment", "Family", "Members", "N (params)", "D (tokens)", "C (FLOPs)",
    "α", "β", "E", "Phase", "Check", "Last refit", "Runs in MLflow",
)  # fmt: skip


def index_row(s: FamilySummary, links: Links) -> str:
    exp_id = s.experiment.experiment_id
    members = str(s.members) + (f" (+{s.excluded} excluded)" if s.excluded else "")
    run_links = []
    if s.fit_run_id:
        run_links.append(link(links.ui_run(exp_id, s.fit_run_id), "fit run"))
    run_links.append(link(links.ui_members(exp_id, s.name), "members"))
    refit = fmt_time(s.refitted_ms)
    if s.refit_number is not None:
        refit += f" (#{s.refit_number})"
    if s.fit_run_id is None:
        refit = "not fitted yet"
    cells = [
        f'<td class="name">{link(links.ui_experiment(exp_id), s.experiment.name)}</td>',
        f'<td class="name family">{link(links.family(exp_id, s.name), s.name)}'
        + (' <span class="badge check-fail">last refit failed</span>' if s.fit_error else "")
        + "</td>",
        f'<td class="num" data-field="members" data-value="{s.members}">{esc(members)}</td>',
        f'<td class="num" data-field="N">{esc(fmt_span(s.n_span))}</td>',
        f'<td class="num" data-field="D">{esc(fmt_span(s.d_span))}</td>',
        f'<td class="num" data-field="C">{esc(fmt_span(s.c_span))}</td>',
        num_cell("alpha", s.fit.get("alpha")),
        num_cell("beta", s.fit.get("beta")),
        num_cell("E", s.fit.get("E")),
        f'<td data-field="phase">{phase_badge(s.phase)}</td>',
        f'<td data-field="check">{check_badge(s.check)}</td>',
        f'<td data-field="refit">{esc(refit)}</td>',
        f'<td class="links">{"".join(run_links)}</td>',
    ]
    return (
        f'<tr class="family-row" data-experiment-id="{esc(exp_id)}" data-family="{esc(s.name)}">'
        + "".join(cells)
        + "</tr>"
    )


def render_index(families: Sequence[FamilySummary], links: Links) -> str:
    experiments = {f.experiment.experiment_id for f in families}
    body = [
        "<h1>Scaling families</h1>",
        f'<p class="sub">{len(families)} families in {len(experiments)} experiments. '
        "A family is the runs tagged <code>scaling.family</code>; its fit run is written by "
        "<code>mlflow-scaling refit</code>.</p>",
    ]
    if families:
        body.append(table(INDEX_HEADERS, (index_row(f, links) for f in families), cls="families"))
    else:
        body.append(
            '<p class="note">No scaling families yet. Tag runs with <code>scaling.family</code> '
            "(the Lightning callback does) and run <code>mlflow-scaling refit</code>.</p>"
        )
    return page("Scaling families", "".join(body), links)


# --- family page ---------------------------------------------------------------------------


def _fit_section(d: FamilyDetail) -> str:
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
        lo = as_float(ci[0]) if ci and len(ci) == 2 else None
        hi = as_float(ci[1]) if ci and len(ci) == 2 else None
        interval = f"{fmt_value(key, lo)} – {fmt_value(key, hi)}" if lo is not None else MISSING
        rows.append(
            f"<tr><th>{esc(symbol)}</th>{num_cell(key, value)}<td>{esc(interval)}</td>"
            f'<td class="muted">{esc(meaning)}</td></tr>'
        )
    level = as_float(dig(doc, "approach3.ci_level"))
    ci_head = f"{level:.0%} interval" if level else "interval"
    n_boot = dig(doc, "approach3.n_boot")
    note = f" ({esc(n_boot)} bootstrap replicates)" if n_boot is not None else ""
    formula = (
        '<p class="sub">L(N, D) = E + A / N<sup>α</sup> + B / D<sup>β</sup>; compute-optimal '
        "N<sub>opt</sub> ∝ C<sup>a</sup>, D<sub>opt</sub> ∝ C<sup>b</sup> with C ≈ 6·N·D. "
        f"Values are the fit run's latest <code>scaling.fit.*</code> metrics{note}.</p>"
    )
    return (
        "<h2>Fitted law</h2>"
        + formula
        + table(("", "value", ci_head, ""), rows, cls="fit")
        + _facts(d)
    )


def _facts(d: FamilyDetail) -> str:
    s, doc = d.summary, d.doc or {}
    points = as_float(d.fit_metrics.get(schema.METRIC_FIT_POINTS))
    excluded = as_float(d.fit_metrics.get(schema.METRIC_FIT_EXCLUDED))
    facts = [
        ("refit number", MISSING if s.refit_number is None else str(s.refit_number)),
        ("last refit", fmt_time(s.refitted_ms)),
        ("runs used by the fit", MISSING if points is None else f"{points:.0f}"),
        ("runs excluded by the fit", MISSING if excluded is None else f"{excluded:.0f}"),
        ("status", dig(doc, "status", kind=str) or MISSING),
        ("input digest", (s.digest or "(being written)") if s.digest is not None else MISSING),
    ]
    reason = dig(doc, "reason", kind=str)
    if reason:
        facts.append(("reason", reason))
    rows = [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts]
    return table(None, rows, cls="facts")


def _figure_section(d: FamilyDetail, links: Links) -> str:
    if not d.summary.fit_run_id or schema.ARTIFACT_FIT_PNG not in d.artifacts:
        return '<h2>Figure</h2><p class="muted">No figure posted yet.</p>'
    src = links.artifact(d.summary.fit_run_id, schema.ARTIFACT_FIT_PNG)
    return (
        "<h2>Figure</h2>"
        f'<img class="figure" src="{esc(src)}" alt="fit figure of the family (scaling/fit.png)">'
    )


def _phase_section(d: FamilyDetail) -> str:
    doc = d.doc or {}
    phases = dig(doc, "phases", "check.phases", kind=dict) or {}
    phase = d.summary.phase or dig(phases, "phase", kind=str)
    out = [f"<h2>Phase</h2><p>At the compute frontier: {phase_badge(phase)}</p>"]
    reason = dig(phases, "reason", kind=str)
    if reason:
        out.append(f'<p class="sub">{esc(reason)}</p>')
    segments = dig(phases, "segments", kind=list) or []
    rows = []
    for seg in segments:
        if not isinstance(seg, dict):
            continue
        drop = as_float(seg.get("drop_per_decade"))
        seg_phase = seg.get("phase") if isinstance(seg.get("phase"), str) else None
        rows.append(
            f"<tr><td>{phase_badge(seg_phase)}</td>"
            + num_cell("x_min", as_float(seg.get("x_min")), fmt_sci(as_float(seg.get("x_min"))))
            + num_cell("x_max", as_float(seg.get("x_max")), fmt_sci(as_float(seg.get("x_max"))))
            + num_cell("slope", as_float(seg.get("slope")), fmt_fixed(as_float(seg.get("slope"))))
            + num_cell("drop", drop, MISSING if drop is None else f"{drop:.1%}")
            + "</tr>"
        )
    if rows:
        out.append(
            table(
                (
                    "phase",
                    "from C (FLOPs)",
                    "to C (FLOPs)",
                    "slope d log L / d log C",
                    "loss drop per decade",
                ),
                rows,
                cls="segments",
            )  # fmt: skip
        )
    else:
        out.append(f'<p class="muted">No phase segments posted. {MISSING}</p>')
    extras = [
        ("model", dig(phases, "model", kind=str)),
        ("frontier loss", fmt_fixed(as_float(dig(phases, "frontier_loss")))),
        ("span (decades of C)", fmt_fixed(as_float(dig(phases, "span_decades")), 2)),
    ]
    out.append(
        '<p class="sub">'
        + "; ".join(f"{esc(k)}: {esc(v if v not in (None, '') else MISSING)}" for k, v in extras)
        + "</p>"
    )
    return "".join(out)


def _check_section(d: FamilyDetail) -> str:
    doc = d.doc or {}
    check = dig(doc, "check", kind=dict) or {}
    verdict = d.summary.check or dig(check, "verdict", kind=str)
    out = [f"<h2>Scaling check</h2><p>Verdict: {check_badge(verdict)}</p>"]
    reason = dig(check, "reason", kind=str)
    if reason:
        out.append(f'<p class="sub">{esc(reason)}</p>')
    rows = []
    for crit in dig(check, "criteria", kind=list) or []:
        if not isinstance(crit, dict):
            continue
        value, threshold = crit.get("value"), crit.get("threshold")
        rows.append(
            f'<tr class="criterion" data-name="{esc(crit.get("name"))}">'
            f'<td class="name">{esc(crit.get("name") or MISSING)}</td>'
            + generic_cell(value)
            + generic_cell(threshold)
            + f"<td>{passed_badge(crit.get('passed'))}</td>"
            + f'<td class="name">{esc(crit.get("detail") or "")}</td></tr>'
        )
    if rows:
        out.append(table(("criterion", "value", "threshold", "result", "detail"), rows,
                         cls="criteria"))  # fmt: skip
    else:
        out.append(f'<p class="muted">No criteria posted. {MISSING}</p>')
    pred = dig(check, "prediction", kind=dict)
    if pred:
        cells = "".join(
            num_cell(k, as_float(pred.get(k)), fmt_sci(as_float(pred.get(k))))
            if k in ("N", "D")
            else num_cell(k, as_float(pred.get(k)), fmt_fixed(as_float(pred.get(k))))
            for k in ("N", "D", "loss", "lo", "hi")
        )
        out.append(
            "<p>Prediction at the check's target:</p>"
            + table(("N", "D", "loss", "low", "high"), [f"<tr>{cells}</tr>"], cls="target")
        )
        if isinstance(pred.get("interval"), str):
            out.append(f'<p class="sub">{esc(pred["interval"])}</p>')
    return "".join(out)


def _predictions_section(d: FamilyDetail) -> str:
    out = ["<h2>Predictions</h2>"]
    if d.predictions:
        header, rows = d.predictions
        body = ["<tr>" + "".join(generic_cell(c) for c in row) + "</tr>" for row in rows]
        out.append(f'<p class="sub">From <code>{esc(schema.ARTIFACT_PREDICTIONS_CSV)}</code>.</p>')
        out.append(table(header, body, cls="predictions"))
        if d.predictions_truncated:
            out.append('<p class="muted">Only the first rows are shown; see the CSV file.</p>')
        return "".join(out)
    budgets = dig(d.doc or {}, "budgets", "approach3.budgets", kind=list) or []
    budgets = [b for b in budgets if isinstance(b, dict)]
    if budgets:
        keys = list(dict.fromkeys(k for b in budgets for k in b))
        out.append('<p class="sub">Compute-optimal budgets from <code>scaling/fit.json</code>.</p>')
        out.append(
            table(
                keys,
                ("<tr>" + "".join(generic_cell(b.get(k)) for k in keys) + "</tr>" for b in budgets),
                cls="predictions",
            )  # fmt: skip
        )
    else:
        out.append(f'<p class="muted">No predictions posted. {MISSING}</p>')
    return "".join(out)


def _history_section(d: FamilyDetail) -> str:
    out = ["<h2>Exponents across refits</h2>"]
    series = {h.name: h for h in d.history}
    steps = sorted({p[0] for h in d.history for p in h.points})
    if not steps:
        out.append(f'<p class="muted">No metric history yet. {MISSING}</p>')
        return "".join(out)
    png = history_png(d.history)
    if png:
        out.append(
            f'<img class="figure history" src="{data_uri(png)}" '
            'alt="fitted exponents against the refit number">'
        )
    names = [n for n in ("alpha", "beta", "a", "b") if n in series]
    by_step = {n: {p[0]: p for p in series[n].points} for n in names}
    rows = []
    for step in steps:
        stamp = max((by_step[n][step][1] for n in names if step in by_step[n]), default=0)
        cells = "".join(
            num_cell(n, by_step[n][step][2] if step in by_step[n] else None) for n in names
        )
        rows.append(f'<tr data-step="{step}"><td class="num">{step}</td>{cells}'
                    f"<td>{esc(fmt_time(stamp))}</td></tr>")  # fmt: skip
    symbols = {"alpha": "α", "beta": "β", "a": "a", "b": "b"}
    out.append(table(("refit", *(symbols[n] for n in names), "logged"), rows, cls="history"))
    return "".join(out)


def _members_section(d: FamilyDetail, links: Links) -> str:
    exp_id = d.summary.experiment.experiment_id
    out = [f"<h2>Member runs ({len(d.members)} usable, {len(d.excluded)} excluded)</h2>"]
    rows = []
    for p in sorted(d.members, key=lambda p: (p.n, p.d)):
        rows.append(
            "<tr>"
            f'<td class="name">{link(links.ui_run(exp_id, p.run_id), p.run_name or p.run_id)}</td>'
            + num_cell("N", p.n, fmt_sci(p.n))
            + num_cell("D", p.d, fmt_sci(p.d))
            + num_cell("C", p.c, fmt_sci(p.c))
            + num_cell("loss", p.loss, fmt_fixed(p.loss))
            + f'<td class="name">{esc(p.loss_metric)}</td></tr>'
        )
    if rows:
        out.append(table(("run", "N", "D", "C", "loss", "loss metric"), rows, cls="members"))
    if d.excluded:
        ex_rows = [
            f'<tr><td class="name">{link(links.ui_run(exp_id, e.run_id), e.run_name or e.run_id)}'
            f'</td><td>{esc(e.status)}</td><td class="name">{esc(e.reason)}</td></tr>'
            for e in d.excluded
        ]
        out.append("<p>Excluded runs:</p>")
        out.append(table(("run", "status", "reason"), ex_rows, cls="excluded"))
    return "".join(out)


def _artifact_links(d: FamilyDetail, links: Links) -> str:
    run_id = d.summary.fit_run_id
    if not run_id:
        return ""
    names = {
        schema.ARTIFACT_REPORT_HTML: "HTML report",
        schema.ARTIFACT_FIT_JSON: "fit.json",
        schema.ARTIFACT_PREDICTIONS_CSV: "predictions.csv",
        schema.ARTIFACT_FIT_PNG: "fit.png",
        schema.ARTIFACT_PLAN_JSON: "plan.json",
    }
    items = [link(links.artifact(run_id, p), t) for p, t in names.items() if p in d.artifacts]
    return f'<p class="links">Artifacts: {"".join(items)}</p>' if items else ""


def render_family(d: FamilyDetail, links: Links) -> str:
    s = d.summary
    exp_id = s.experiment.experiment_id
    head = [
        f'<h1 class="family-name">{esc(s.name)}</h1>',
        f'<p class="sub">Experiment {link(links.ui_experiment(exp_id), s.experiment.name)} · '
        f"{phase_badge(s.phase)} {check_badge(s.check)}</p>",
    ]
    run_links = [link(links.ui_members(exp_id, s.name), "member runs in MLflow")]
    if s.fit_run_id:
        run_links.insert(0, link(links.ui_run(exp_id, s.fit_run_id), "fit run in MLflow"))
    head.append(f'<p class="links">{"".join(run_links)}</p>')
    if s.fit_error:
        head.append(f'<p class="error">The last refit failed: {esc(s.fit_error)}</p>')
    if s.fit_runs > 1:
        head.append(
            f'<p class="note">{s.fit_runs} fit runs carry this family; the oldest is shown '
            "(the next refit deletes the others).</p>"
        )
    if s.digest == "":
        head.append('<p class="note">A refit is writing this fit run right now; reload soon.</p>')
    if s.fit_run_id is None:
        body = "".join(head) + (
            '<p class="note">Not fitted yet: run <code>mlflow-scaling refit</code>.</p>'
            + _members_section(d, links)
        )
        return page(s.name, body, links, [(s.experiment.name, None), (s.name, None)])
    if d.doc_problem:
        head.append(f'<p class="note">{esc(d.doc_problem)}</p>')
    head.append(_artifact_links(d, links))
    sections = [
        _fit_section(d),
        _figure_section(d, links),
        _phase_section(d),
        _check_section(d),
        _predictions_section(d),
        _history_section(d),
        plan_section(d.doc),
        _members_section(d, links),
    ]
    return page(s.name, "".join(head + sections), links,
                [(s.experiment.name, None), (s.name, None)])  # fmt: skip


def render_message(title: str, message: str, links: Links) -> str:
    """A small page for not-found and error answers; ``message`` is escaped."""
    return page(title, f"<h1>{esc(title)}</h1><p>{esc(message)}</p>", links)
