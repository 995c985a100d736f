"""``scaling/report.html``: one self-contained page per fit, built from the fit document.

Everything is inline (the figure as a base64 PNG, the style sheet in the page), so the MLflow
UI's artifact view shows it as it is. Every string that comes from runs, tags or the analysis
goes through :func:`html.escape`, and a Content-Security-Policy forbids scripts altogether: a
run or family named ``<script>…</script>`` shows up as text.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

from ..planning.section import plan_section

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em;color:#222;
max-width:1300px}
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid
#ddd}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.pass{color:#176b21;font-weight:600}.fail{color:#b3261e;font-weight:600}.na{color:#777}
.box{padding:.6em 1em;border-radius:4px;background:#fff4e5;border:1px solid #f0c36d}
.meta{color:#555;font-size:.85em}img{max-width:100%}
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def esc(value: Any) -> str:
    """Escape anything for HTML text or attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def num(value: Any, fmt: str = ".4g") -> str:
    """A number formatted and escaped; '-' for None, text for non-numbers."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return esc(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return esc(value)
        return esc(format(value, fmt))
    return esc(value)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    left: int = 0,
    text: Iterable[int] = (),
) -> str:
    """An HTML table; cells are already-escaped HTML.

    The first ``left`` columns, and the columns numbered in ``text``, align left (words);
    the others right (numbers).
    """
    lefts = set(range(left)) | set(text)

    def cls(i: int) -> str:
        return ' class="l"' if i in lefts else ""

    head = "".join(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(passed: Any) -> str:
    if passed is True:
        return '<span class="pass">pass</span>'
    if passed is False:
        return '<span class="fail">fail</span>'
    return '<span class="na">n/a</span>'


def _interval(ci: dict, name: str) -> str:
    if name not in ci:
        return "-"
    lo, hi = ci[name]
    return f"{num(lo)} – {num(hi)}"


def _law_section(doc: dict) -> str:
    a3 = doc.get("approach3")
    if not a3:
        return ""
    if "params" not in a3:
        return f"<h2>Law (Approach 3)</h2><p class=box>No law: {esc(a3.get('error'))}</p>"
    ci = a3.get("ci", {})
    level = int(round(100 * a3.get("ci_level", 0.95)))
    rows = [
        [esc(k), num(a3["params"][k]), _interval(ci, k)] for k in ("E", "A", "B", "alpha", "beta")
    ]
    alloc = a3["allocation"]
    aci = alloc.get("ci", {})
    rows += [
        [esc("a (N_opt ∝ C^a)"), num(alloc["a"]), _interval(aci, "a")],
        [esc("b (D_opt ∝ C^b)"), num(alloc["b"]), _interval(aci, "b")],
    ]
    boot = f"{a3['n_boot']} bootstrap replicates over runs" if a3.get("n_boot") else "no bootstrap"
    note = (
        ""
        if a3.get("extrapolates", True)
        else (
            '<p class="box">The fitted exponents are not positive: '
            "the law does not extrapolate.</p>"
        )
    )
    return (
        "<h2>Law (Approach 3): L(N, D) = E + A/N<sup>α</sup> + B/D<sup>β</sup></h2>"
        f"<p class=meta>{num(a3['n_points'], 'd')} runs, Huber δ = {num(a3['huber_delta'])}, "
        f"objective {num(a3['objective'], '.6e')}; {esc(boot)}.</p>{note}"
        + table(["parameter", "value", f"{level}% interval"], rows, left=1)
    )


def _check_section(doc: dict) -> str:
    check = doc.get("check") or {}
    verdict = check.get("verdict", "fail")
    out = [f"<h2>Scaling check: {_verdict(verdict == 'pass')}</h2>"]
    if check.get("reason"):
        out.append(f"<p>{esc(check['reason'])}</p>")
    criteria = check.get("criteria") or []
    if criteria:
        out.append(
            table(
                ["criterion", "value", "threshold", "result", "detail"],
                (
                    [
                        esc(c["name"]),
                        num(c["value"]),
                        num(c["threshold"]),
                        _verdict(c["passed"]),
                        esc(c.get("detail", "")),
                    ]
                    for c in criteria
                ),
                left=1,
                text=(4,),
            )
        )
    pred = check.get("prediction")
    if pred:
        interval = (
            f" ({num(pred['lo'])} – {num(pred['hi'])}, {esc(pred.get('interval', ''))})"
            if pred.get("lo") is not None
            else ""
        )
        out.append(
            f"<p>Predicted loss at N = {num(pred['N'], '.3g')}, D = {num(pred['D'], '.3g')} "
            f"({esc(pred.get('tokens', ''))} tokens): <b>{num(pred['loss'])}</b>{interval}</p>"
        )
    return "".join(out)


def _phase_section(doc: dict) -> str:
    ph = doc.get("phases") or {}
    out = [
        "<h2>Phase at the compute frontier</h2>",
        f"<p><b>{esc(ph.get('phase', ''))}</b>: {esc(ph.get('reason', ''))}</p>",
    ]
    segments = ph.get("segments") or []
    if segments:
        out.append(
            table(
                [
                    "segment",
                    "C from (FLOPs)",
                    "C to (FLOPs)",
                    "slope d log L / d log C",
                    "loss drop per decade",
                ],
                (
                    [
                        esc(s["phase"]),
                        num(s["x_min"]),
                        num(s["x_max"]),
                        num(s["slope"], ".4f"),
                        num(100 * s["drop_per_decade"], ".1f") + " %",
                    ]
                    for s in segments
                ),
                left=1,
            )
        )
    if ph.get("model"):
        out.append(
            f"<p class=meta>model chosen by {esc(ph.get('criterion', ''))}: {esc(ph['model'])}</p>"
        )
    return "".join(out)


def _budget_section(doc: dict) -> str:
    rows = doc.get("budgets") or []
    if not rows:
        return ""
    return "<h2>Predictions for a ladder of budgets (scaling/predictions.csv)</h2>" + table(
        [
            "budget C (FLOPs)",
            "N_opt",
            "N_opt interval",
            "D_opt (tokens)",
            "D_opt interval",
            "tokens/param",
            "loss",
            "loss interval",
        ],
        (
            [
                num(r["flops"], ".3g"),
                num(r["n_opt"], ".3g"),
                f"{num(r.get('n_opt_lo'), '.3g')} – {num(r.get('n_opt_hi'), '.3g')}",
                num(r["d_opt"], ".3g"),
                f"{num(r.get('d_opt_lo'), '.3g')} – {num(r.get('d_opt_hi'), '.3g')}",
                num(r["tokens_per_param"], ".1f"),
                num(r["loss"]),
                f"{num(r.get('lo'))} – {num(r.get('hi'))}",
            ]
            for r in rows
        ),
    )


def _approaches_section(doc: dict) -> str:
    out = ["<h2>Other approaches</h2>"]
    a2 = doc.get("approach2") or {}
    if a2.get("applicable"):
        out.append(
            f"<p><b>Approach 2 (isoFLOP, {esc(a2['method'])})</b>: N_opt ∝ C^{num(a2['a'])}, "
            f"D_opt ∝ C^{num(a2['b'])} from {len(a2['profiles'])} budgets.</p>"
        )
        out.append(
            table(
                ["budget C", "runs", "N from", "N to", "N_opt", "loss at N_opt", "inside range"],
                (
                    [
                        num(p["flops"], ".3g"),
                        num(p["n_runs"], "d"),
                        num(p["n_min"], ".3g"),
                        num(p["n_max"], ".3g"),
                        num(p["n_opt"], ".3g"),
                        num(p["loss_opt"]),
                        esc(p["inside_sampled_range"]),
                    ]
                    for p in a2["profiles"]
                ),
            )
        )
    else:
        out.append(f"<p><b>Approach 2 (isoFLOP)</b>: not applicable: {esc(a2.get('reason'))}</p>")
    a1 = doc.get("approach1") or {}
    if a1.get("applicable"):
        out.append(
            f"<p><b>Approach 1 (training-curve envelope)</b>: N_opt ∝ C^{num(a1['a'])} from "
            f"{num(a1['n_curves'], 'd')} curves ({num(a1['n_fit_points'], 'd')} envelope "
            "points inside the sizes tried).</p>"
        )
    else:
        out.append(
            f"<p><b>Approach 1 (training curves)</b>: not applicable: {esc(a1.get('reason'))}</p>"
        )
    return "".join(out)


def _runs_section(doc: dict) -> str:
    members = doc.get("members") or []
    excluded = doc.get("excluded") or []
    out = [f"<h2>Member runs used ({len(members)})</h2>"]
    if members:
        out.append(
            table(
                [
                    "run name",
                    "run id",
                    "N (params)",
                    "D (tokens)",
                    "C (FLOPs)",
                    "C from",
                    "loss",
                    "loss metric",
                ],
                (
                    [
                        esc(m["run_name"]),
                        esc(m["run_id"]),
                        num(m["N"], ".4g"),
                        num(m["D"], ".4g"),
                        num(m["C"], ".4g"),
                        esc(m["C_source"]),
                        num(m["loss"]),
                        esc(m["loss_metric"]),
                    ]
                    for m in members
                ),
                left=2,
                text=(5, 7),
            )
        )
    out.append(f"<h2>Excluded runs ({len(excluded)})</h2>")
    if excluded:
        out.append(
            table(
                ["run name", "run id", "status", "reason"],
                (
                    [esc(e["run_name"]), esc(e["run_id"]), esc(e["status"]), esc(e["reason"])]
                    for e in excluded
                ),
                left=4,
            )
        )
    else:
        out.append("<p>None.</p>")
    return "".join(out)


def report_html(doc: dict[str, Any], png: bytes | None = None) -> str:
    """The report page of a fit document, with ``png`` (the figure) inlined."""
    family = esc(doc.get("family", ""))
    status = doc.get("status", "")
    header = [
        f"<h1>Scaling family {family}</h1>",
        f"<p class=meta>experiment {esc(doc.get('experiment_name'))} "
        f"(id {esc(doc.get('experiment_id'))}), fit run {esc(doc.get('fit_run_id'))}, "
        f"refit #{esc(doc.get('refit_number'))} at {esc(doc.get('fitted_at'))}, "
        f"input digest {esc(str(doc.get('input_digest', ''))[:16])}…</p>",
        f"<p>Status <b>{esc(status)}</b>, phase <b>{esc(doc.get('phase'))}</b>, scaling check "
        f"{_verdict(doc.get('check_verdict') == 'pass')}.</p>",
    ]
    if doc.get("reason"):
        header.append(f'<p class="box">Insufficient data: {esc(doc["reason"])}</p>')
    figure = ""
    if png:
        data = base64.b64encode(png).decode("ascii")
        figure = (
            f'<img alt="{esc("loss vs compute and allocation for " + doc.get("family", ""))}" '
            f'src="data:image/png;base64,{data}">'
        )
    settings = doc.get("settings") or {}
    settings_html = table(
        ["setting", "value"], ([esc(k), esc(v)] for k, v in sorted(settings.items())), left=2
    )
    body = "".join(
        header
        + [
            figure,
            _law_section(doc),
            _check_section(doc),
            _phase_section(doc),
            _budget_section(doc),
            _approaches_section(doc),
            _runs_section(doc),
            plan_section(doc),
            "<h2>Settings</h2>",
            settings_html,
        ]
    )
    title = esc(f"scaling fit: {doc.get('family', '')}")
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{title}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )
