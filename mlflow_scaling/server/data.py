"""What the scaling pages show, read from MLflow and never computed in the request.

Everything here reads what the refit job posted: the member runs' latest metrics (the same
reading as the job, :mod:`mlflow_scaling.tracking.reading`), the fit run's tags and latest
``scaling.fit.*`` metrics, its artifacts (``scaling/fit.json``, ``scaling/predictions.csv``)
and the metric history of the fitted exponents. Nothing is fitted.

Two sources give the same answers:

* :class:`StoreSource` inside ``mlflow server``: the server's own tracking store and its
  artifact resolution (proxied ``mlflow-artifacts:/`` roots map to ``--artifacts-destination``
  exactly as MLflow's ``/get-artifact`` route does), so no HTTP round trip and no credentials.
* :class:`ClientSource` anywhere else: an :class:`mlflow.MlflowClient`.

Both sources tell absence from failure: a thing that is not there (an unknown experiment or
run, a file the fit run does not have) is :class:`Absent`, and the callers turn it into "none"
(a 404 page, an empty section); anything else the store raises is :class:`StoreFailed`, which
the pages show as a 503 saying the store failed (and log), never as "not found".

``fit.json`` is read tolerantly: a key that is missing or of an unexpected type is shown as
missing, never an error, so a page keeps working across versions of the refit job; a document
that is not a :class:`~..tracking.fit_document.FitDocument` says so in a note on the page.

The sources are in :mod:`.sources`, the summary rows in :mod:`.summaries`, the index in
:mod:`.index`; this module reads one family's page and re-exports their names.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..tracking import schema
from ..tracking.fit_document import FitDocumentError, load_fit_document
from ..tracking.reading import (
    ExperimentRef,
    read_families,
    search_all_runs,
)
from .index import (  # noqa: F401  (re-exported: the pages and tests read them here)
    INDEX_ORDER,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    BadPageToken,
    FamilyPage,
    IndexQuery,
    UnknownExperiment,
    family_page,
    name_contains,
    name_contains_filter,
)
from .sources import (  # noqa: F401  (re-exported: the pages and tests read them here)
    SERVED_ARTIFACTS,
    Absent,
    AccessCheck,
    ClientSource,
    StoreFailed,
    StoreSource,
    TrackingSource,
    allow_all,
    fit_artifacts,
    is_served_artifact,
    read_fit_artifact,
    store_call,
)
from .summaries import (  # noqa: F401  (re-exported: the pages and tests read them here)
    FamilyDetail,
    FamilySummary,
    History,
    Span,
    readable_experiments,
    summarize,
    summarize_fit_run,
)

if TYPE_CHECKING:
    from mlflow.entities import Run

HISTORY_METRICS = ("alpha", "beta", "a", "b")
"""Fitted exponents whose history across refits is plotted."""

MAX_PREDICTION_ROWS = 1000


def find_experiment(source: TrackingSource, key: str) -> ExperimentRef | None:
    """The active experiment whose id is ``key``, else the one named ``key``."""
    exp = None
    if key.isdigit():
        try:
            exp = source.get_experiment(key)
        except Absent:
            exp = None
    if exp is None:
        try:
            exp = source.get_experiment_by_name(key)
        except Absent:
            exp = None
    if exp is None or exp.lifecycle_stage != "active":
        return None
    return ExperimentRef(exp.experiment_id, exp.name)


def comparisons_of(
    source: TrackingSource, experiment: ExperimentRef, family: str
) -> list[dict[str, str]]:
    """Comparison runs in ``experiment`` with ``family`` as candidate or baseline (for links)."""
    out = []
    for tag in (schema.TAG_COMPARE_CANDIDATE, schema.TAG_COMPARE_BASELINE):
        filt = (f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_COMPARE}' and "
                f"{schema.tag_filter(tag, family)}")  # fmt: skip
        runs = search_all_runs(source, [experiment.experiment_id], filt)  # type: ignore[arg-type]
        for run in runs:
            tags = run.data.tags
            base = tags.get(schema.TAG_COMPARE_BASELINE, "")
            cand = tags.get(schema.TAG_COMPARE_CANDIDATE, "")
            if tags.get(tag) != family:
                continue
            out.append({
                "baseline": base,
                "candidate": cand,
                "verdict": tags.get(schema.TAG_COMPARE_VERDICT, ""),
                "experiment_id": experiment.experiment_id,
            })  # fmt: skip
    unique = {(c["baseline"], c["candidate"]): c for c in out}
    return sorted(unique.values(), key=lambda c: (c["candidate"], c["baseline"]))


def family_detail(
    source: TrackingSource, experiment: ExperimentRef, family: str
) -> FamilyDetail | None:
    """The family page's data, or None when the experiment has no run of that family."""
    found = read_families(source, [experiment], [family])  # type: ignore[arg-type]
    # The filter may match a few other names (see schema.family_filter): pick ours exactly.
    fam = next((f for f in found if f.name == family), None)
    if fam is None or (not fam.members and not fam.excluded and not fam.fit_runs):
        return None
    detail = FamilyDetail(summary=summarize(fam), members=fam.members, excluded=fam.excluded)
    detail.comparisons = comparisons_of(source, experiment, family)
    run = fam.fit_run
    if run is None:
        return detail
    detail.fit_tags = dict(run.data.tags)
    detail.fit_metrics = dict(run.data.metrics)
    detail.artifacts = fit_artifacts(source, run)
    detail.doc, detail.doc_problem = _read_doc(source, run, detail.artifacts)
    detail.predictions, detail.predictions_truncated = _read_predictions(
        source, run, detail.artifacts
    )
    detail.history = [
        History(name, _history(source, run.info.run_id, schema.fit_metric(name)))
        for name in HISTORY_METRICS
    ]
    return detail


def _read_doc(
    source: TrackingSource, run: Run, artifacts: set[str]
) -> tuple[dict[str, Any] | None, str | None]:
    if schema.ARTIFACT_FIT_JSON not in artifacts:
        return None, f"the fit run has no published {schema.ARTIFACT_FIT_JSON} (yet)"
    raw = read_fit_artifact(source, run, schema.ARTIFACT_FIT_JSON)
    if raw is None:
        return None, f"{schema.ARTIFACT_FIT_JSON} could not be read"
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"{schema.ARTIFACT_FIT_JSON} is not valid JSON ({exc})"
    if not isinstance(doc, dict):
        return None, f"{schema.ARTIFACT_FIT_JSON} holds a {type(doc).__name__}, not an object"
    try:
        load_fit_document(doc, schema.ARTIFACT_FIT_JSON)
    except FitDocumentError as exc:  # shown tolerantly: what can be read, and what is wrong
        return doc, str(exc)
    return doc, None


def _read_predictions(
    source: TrackingSource, run: Run, artifacts: set[str]
) -> tuple[tuple[list[str], list[list[str]]] | None, bool]:
    if schema.ARTIFACT_PREDICTIONS_CSV not in artifacts:
        return None, False
    raw = read_fit_artifact(source, run, schema.ARTIFACT_PREDICTIONS_CSV)
    if raw is None:
        return None, False
    try:
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8", errors="replace"))))
    except csv.Error:
        return None, False
    if not rows:
        return None, False
    header, body = rows[0], rows[1:]
    truncated = len(body) > MAX_PREDICTION_ROWS
    return (header, body[:MAX_PREDICTION_ROWS]), truncated


def _history(source: TrackingSource, run_id: str, key: str) -> list[tuple[int, int, float]]:
    try:
        metrics = source.get_metric_history(run_id, key)
    except Absent:
        return []
    latest: dict[int, tuple[int, float]] = {}
    for m in metrics:
        step, stamp = int(m.step or 0), int(m.timestamp or 0)
        if step not in latest or stamp >= latest[step][0]:
            latest[step] = (stamp, float(m.value))
    return [(s, t, v) for s, (t, v) in sorted(latest.items())]


# --- tolerant fit.json access ----------------------------------------------------------------


def dig(doc: Any, *paths: Sequence[str] | str, kind: type | tuple[type, ...] | None = None) -> Any:
    """The value at the first of ``paths`` (dotted strings or key sequences) that exists.

    With ``kind``, a value of another type counts as missing. Returns None when none is found.
    """
    for path in paths:
        keys = path.split(".") if isinstance(path, str) else list(path)
        node = doc
        for key in keys:
            if isinstance(node, Mapping) and key in node:
                node = node[key]
            else:
                node = None
                break
        if node is None:
            continue
        if kind is not None and not isinstance(node, kind):
            continue
        return node
    return None
