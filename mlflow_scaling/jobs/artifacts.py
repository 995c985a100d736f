"""What one refit writes: ``fit.json`` (a :class:`~..tracking.fit_document.FitDocument`), the
figure, ``report.html``, ``predictions.csv``, ``tasks.png``, ``hparams.png``,
``data_constrained.png`` and ``plan.json`` into the write's own folder, and the span metrics of
the index; and the analysis of one family with its figure (:func:`analyze_job`, which runs in a
worker process when asked)."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from pathlib import Path

from ..rendering import render
from ..report.data_constrained_figure import write_data_constrained_png
from ..report.figures import fit_figure_png
from ..report.hparam_figures import write_hparams_png
from ..report.html import report_html
from ..report.predictions import predictions_csv
from ..report.task_figures import write_tasks_png
from ..strict_json import dumps as strict_dumps
from ..strict_json import to_strict
from ..tracking import schema
from ..tracking.fit_document import FIT_DOC_SCHEMA, FIT_DOC_VERSION, load_fit_document
from ..tracking.reading import (
    Curve,
    Family,
)
from ..tracking.task_checkpoints import History
from .analysis import STATUS_FITTED, RefitSettings, analyze_family

log = logging.getLogger(__name__)


def build_fit_document(
    family: Family,
    analysis: dict,
    *,
    fit_run_id: str,
    refit_number: int,
    digest: str,
    settings_doc: dict,
    settings_hash: str,
) -> dict:
    """``scaling/fit.json``: the analysis plus what it was made from, validated as a
    :class:`~..tracking.fit_document.FitDocument` (a key renamed here fails here)."""
    loss_metrics = sorted({p.loss_metric for p in family.members})
    doc = {
        "schema": FIT_DOC_SCHEMA,
        "version": FIT_DOC_VERSION,
        "family": family.name,
        "experiment_id": family.experiment.experiment_id,
        "experiment_name": family.experiment.name,
        "fit_run_id": fit_run_id,
        "refit_number": refit_number,
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "input_digest": digest,
        "settings_digest": settings_hash,
        "settings": settings_doc,
        "loss_metric": ", ".join(loss_metrics) or schema.DEFAULT_LOSS_METRIC,
        "n_members": len(family.members),
        "n_excluded": len(family.excluded),
        "member_run_ids": [p.run_id for p in family.members],
        "members": [p.to_dict() for p in family.members],
        "excluded": [e.to_dict() for e in family.excluded],
    }
    doc.update({k: v for k, v in analysis.items() if k not in ("metrics", "task_tags")})
    return load_fit_document(to_strict(doc), "the refit's fit.json").to_dict()


def write_artifacts(folder: Path, doc: dict, png: bytes, curves_doc: dict | None) -> None:
    try:
        report = report_html(doc, png)
    except Exception as exc:  # the report is one part: say it failed, keep the fit
        message = f"report.html unavailable: {type(exc).__name__}: {exc}"
        log.warning("family %r: %s", doc.get("family"), message)
        doc = {**doc, "unavailable": [*doc.get("unavailable", []), message]}
        report = render("report_unavailable.html", family=doc.get("family"), message=message)
    for name, write in (("tasks.png", write_tasks_png), ("hparams.png", write_hparams_png),
                        ("data_constrained.png", write_data_constrained_png)):  # fmt: skip
        try:
            write(folder, doc)
        except Exception as exc:  # each figure is one part too
            message = f"{name} unavailable: {type(exc).__name__}: {exc}"
            log.warning("family %r: %s", doc.get("family"), message)
            doc = {**doc, "unavailable": [*doc.get("unavailable", []), message]}
    doc = load_fit_document(doc, "the refit's fit.json").to_dict()
    (folder / "fit.json").write_text(strict_dumps(doc, indent=2))
    (folder / "fit.png").write_bytes(png)
    (folder / "report.html").write_text(report, encoding="utf-8")
    (folder / "predictions.csv").write_text(predictions_csv(doc))
    if "plan" in doc:
        (folder / "plan.json").write_text(strict_dumps(doc["plan"], indent=2))
    if curves_doc is not None:
        (folder / "curves.json").write_text(strict_dumps(curves_doc, separators=(",", ":")))


def analyze_job(
    family: Family,
    settings: RefitSettings,
    curves: dict[str, Curve],
    target: float | None,
    approach1_off: str | None = None,
    task_histories: dict[str, History] | None = None,
) -> tuple[dict, bytes]:
    """The analysis of one family and its figure (runs in a worker process when asked)."""
    analysis = analyze_family(
        family.members,
        settings,
        n_excluded=len(family.excluded),
        curves=curves,
        target_params=target,
        task_histories=task_histories,
    )
    if approach1_off and analysis.get("status") == STATUS_FITTED:
        analysis["approach1"] = {"applicable": False, "reason": approach1_off}
    preview = build_fit_document(
        family, analysis, fit_run_id="", refit_number=0, digest="", settings_doc={},
        settings_hash="",
    )  # fmt: skip
    problems: list[str] = []
    png = fit_figure_png(preview, problems)
    if problems:  # reported in fit.json (and on the figure), never fatal to the family
        analysis["unavailable"] = [*analysis.get("unavailable", []), *problems]
    return analysis, png


def span_metrics(family: Family) -> dict[str, float]:
    """The smallest and largest N, D and C of the members used: the index page's ranges."""
    out = {}
    for axis, values in (
        ("N", [p.n for p in family.members]),
        ("D", [p.d for p in family.members]),
        ("C", [p.c for p in family.members]),
    ):
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if finite:
            out[schema.span_metric(axis, "min")] = float(min(finite))
            out[schema.span_metric(axis, "max")] = float(max(finite))
    return out
