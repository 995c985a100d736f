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

``fit.json`` is read tolerantly: a key that is missing or of an unexpected type is shown as
missing, never an error, so a page keeps working across versions of the refit job.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..formatting import as_float
from ..tracking import schema
from ..tracking.reading import (
    ExcludedRun,
    ExperimentRef,
    Family,
    MemberPoint,
    all_experiments,
    family_of,
    fit_run_order,
    read_families,
    search_all_runs,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Experiment, Metric, Run

SERVED_ARTIFACTS = (
    schema.ARTIFACT_FIT_JSON,
    schema.ARTIFACT_FIT_PNG,
    schema.ARTIFACT_REPORT_HTML,
    schema.ARTIFACT_PREDICTIONS_CSV,
    schema.ARTIFACT_TASKS_PNG,
    schema.ARTIFACT_COMPARE_JSON,
    schema.ARTIFACT_COMPARE_PNG,
    schema.ARTIFACT_PLAN_JSON,
)
"""The fit-run (and comparison-run) artifacts the pages link to; the artifact route serves
these and no others."""

HISTORY_METRICS = ("alpha", "beta", "a", "b")
"""Fitted exponents whose history across refits is plotted."""

MAX_PREDICTION_ROWS = 1000
MAX_ARTIFACT_BYTES = 20 * 1024 * 1024

FIT_RUNS_FILTER = f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_FIT}'"

AccessCheck = Callable[[str], bool]
"""Whether the person asking may read the experiment with this id."""


def allow_all(experiment_id: str) -> bool:
    return True


# --- sources ---------------------------------------------------------------------------------


class TrackingSource(Protocol):
    """The part of :class:`mlflow.MlflowClient` the pages use, plus reading one artifact."""

    tracking_uri: str

    def search_runs(self, experiment_ids: Sequence[str], **kwargs: Any) -> Any: ...

    def search_experiments(self, **kwargs: Any) -> Any: ...

    def get_experiment(self, experiment_id: str) -> Experiment: ...

    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    def get_run(self, run_id: str) -> Run: ...

    def get_metric_history(self, run_id: str, key: str) -> Sequence[Metric]: ...

    def list_artifacts(self, run: Run, path: str) -> set[str]: ...

    def read_artifact(self, run: Run, path: str) -> bytes | None: ...


class StoreSource:
    """The tracking store and artifact repositories of the ``mlflow server`` we run in."""

    tracking_uri = "the MLflow server's own store"

    def __init__(self) -> None:
        from mlflow.server import handlers

        self._handlers = handlers
        self._store = handlers._get_tracking_store()

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        run_view_type: int | None = None,
        max_results: int = 1000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> Any:
        from mlflow.entities import ViewType

        return self._store.search_runs(
            list(experiment_ids),
            filter_string,
            run_view_type or ViewType.ACTIVE_ONLY,
            max_results,
            order_by,
            page_token,
        )

    def search_experiments(
        self,
        view_type: int | None = None,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> Any:
        from mlflow.entities import ViewType

        return self._store.search_experiments(
            view_type=view_type or ViewType.ACTIVE_ONLY,
            max_results=max_results,
            filter_string=filter_string,
            order_by=order_by,
            page_token=page_token,
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._store.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._store.get_experiment_by_name(name)

    def get_run(self, run_id: str) -> Run:
        return self._store.get_run(run_id)

    def get_metric_history(self, run_id: str, key: str) -> Sequence[Metric]:
        return list(self._store.get_metric_history(run_id, key))

    def _repo_and_path(self, run: Run, path: str) -> tuple[Any, str]:
        # The same resolution as MLflow's /get-artifact handler.
        h = self._handlers
        if h._is_servable_proxied_run_artifact_root(run.info.artifact_uri):
            repo = h._get_artifact_repo_mlflow_artifacts()
            full = h._get_proxied_run_artifact_destination_path(
                proxied_artifact_root=run.info.artifact_uri, relative_path=path
            )
            return repo, h._get_workspace_scoped_repo_path_if_enabled(full)
        return h._get_artifact_repo(run), path

    def list_artifacts(self, run: Run, path: str) -> set[str]:
        repo, full = self._repo_and_path(run, path)
        prefix = full[: len(full) - len(path)] if full.endswith(path) else ""
        names = set()
        for info in repo.list_artifacts(full):
            names.add(
                info.path[len(prefix) :] if prefix and info.path.startswith(prefix) else info.path
            )
        return names

    def read_artifact(self, run: Run, path: str) -> bytes | None:
        repo, full = self._repo_and_path(run, path)
        return _read_from_repo(repo, full)


class ClientSource:
    """An :class:`mlflow.MlflowClient` (outside the server: tests, scripts)."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client
        self.tracking_uri = client.tracking_uri

    def search_runs(self, experiment_ids: Sequence[str], **kwargs: Any) -> Any:
        return self._client.search_runs(list(experiment_ids), **kwargs)

    def search_experiments(self, **kwargs: Any) -> Any:
        return self._client.search_experiments(**kwargs)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._client.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._client.get_experiment_by_name(name)

    def get_run(self, run_id: str) -> Run:
        return self._client.get_run(run_id)

    def get_metric_history(self, run_id: str, key: str) -> Sequence[Metric]:
        return self._client.get_metric_history(run_id, key)

    def list_artifacts(self, run: Run, path: str) -> set[str]:
        return {a.path for a in self._client.list_artifacts(run.info.run_id, path)}

    def read_artifact(self, run: Run, path: str) -> bytes | None:
        with tempfile.TemporaryDirectory(prefix="scaling-artifact-") as tmp:
            try:
                local = self._client.download_artifacts(run.info.run_id, path, tmp)
            except Exception:
                return None
            return _read_local(local)


def _read_from_repo(repo: Any, path: str) -> bytes | None:
    local = repo.get_local_path(path) if hasattr(repo, "get_local_path") else None
    if local is not None:
        return _read_local(local)
    with tempfile.TemporaryDirectory(prefix="scaling-artifact-") as tmp:
        try:
            local = repo.download_artifacts(path, dst_path=tmp)
        except Exception:
            return None
        return _read_local(local)


def _read_local(path: str) -> bytes | None:
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_ARTIFACT_BYTES:
            return None
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def is_served_artifact(path: str) -> bool:
    """Whether the artifact route may serve ``path`` (one of :data:`SERVED_ARTIFACTS`)."""
    return posixpath.normpath(path) == path and path in SERVED_ARTIFACTS


# --- what a page shows -----------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """Smallest and largest value of an axis over a family's usable members."""

    lo: float
    hi: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Span | None:
        vals = [v for v in values if v is not None and math.isfinite(v)]
        return cls(min(vals), max(vals)) if vals else None


@dataclass
class FamilySummary:
    """One row of the index page."""

    experiment: ExperimentRef
    name: str
    members: int
    excluded: int
    n_span: Span | None
    d_span: Span | None
    c_span: Span | None
    fit_run_id: str | None = None
    fit: dict[str, float] = field(default_factory=dict)
    """Latest ``scaling.fit.*`` values by short name (``E``, ``alpha``, ...)."""
    phase: str | None = None
    check: str | None = None
    refit_number: int | None = None
    refitted_ms: int | None = None
    fit_error: str | None = None
    digest: str | None = None
    fit_runs: int = 0


@dataclass
class History:
    """One fitted quantity across refits: (step, timestamp ms, value), by step."""

    name: str
    points: list[tuple[int, int, float]]


@dataclass
class FamilyDetail:
    """Everything the family page shows."""

    summary: FamilySummary
    members: list[MemberPoint]
    excluded: list[ExcludedRun]
    fit_tags: dict[str, str] = field(default_factory=dict)
    fit_metrics: dict[str, float] = field(default_factory=dict)
    doc: dict[str, Any] | None = None
    doc_problem: str | None = None
    predictions: tuple[list[str], list[list[str]]] | None = None
    predictions_truncated: bool = False
    history: list[History] = field(default_factory=list)
    artifacts: set[str] = field(default_factory=set)
    comparisons: list[dict[str, str]] = field(default_factory=list)


def _refit_number(tags: Mapping[str, str]) -> int | None:
    try:
        return int(tags.get(schema.TAG_REFIT_NUMBER, ""))
    except ValueError:
        return None


def _refit_time(run: Run) -> int | None:
    stamps = [
        int(m.timestamp)
        for m in getattr(run.data, "_metric_objs", None) or []
        if m.key.startswith(schema.FIT_METRIC_PREFIX) and m.timestamp
    ]
    if run.info.end_time:
        stamps.append(int(run.info.end_time))
    return max(stamps) if stamps else None


def summarize(family: Family) -> FamilySummary:
    """The family page's summary: counts and ranges from the member runs just read."""
    members = family.members
    out = FamilySummary(
        experiment=family.experiment,
        name=family.name,
        members=len(members),
        excluded=len(family.excluded),
        n_span=Span.of(p.n for p in members),
        d_span=Span.of(p.d for p in members),
        c_span=Span.of(p.c for p in members),
        fit_runs=len(family.fit_runs),
    )
    if family.fit_run is not None:
        _add_fit_run(out, family.fit_run)
    return out


def _count(metrics: Mapping[str, float], key: str) -> int:
    value = as_float(metrics.get(key))
    return 0 if value is None else int(value)


def _span(metrics: Mapping[str, float], axis: str) -> Span | None:
    lo = as_float(metrics.get(schema.span_metric(axis, "min")))
    hi = as_float(metrics.get(schema.span_metric(axis, "max")))
    return None if lo is None or hi is None else Span(lo, hi)


def summarize_fit_run(
    experiment: ExperimentRef, name: str, fit_runs: Sequence[Run]
) -> FamilySummary:
    """The index page's summary of a family, from its fit run alone (oldest of ``fit_runs``):
    counts and ranges are what the last refit used (``scaling.fit_points``, ``scaling.span.*``)."""
    run = fit_runs[0]
    metrics = run.data.metrics
    out = FamilySummary(
        experiment=experiment,
        name=name,
        members=_count(metrics, schema.METRIC_FIT_POINTS),
        excluded=_count(metrics, schema.METRIC_FIT_EXCLUDED),
        n_span=_span(metrics, "N"),
        d_span=_span(metrics, "D"),
        c_span=_span(metrics, "C"),
        fit_runs=len(fit_runs),
    )
    _add_fit_run(out, run)
    return out


def _add_fit_run(out: FamilySummary, run: Run) -> None:
    tags, metrics = run.data.tags, run.data.metrics
    out.fit_run_id = run.info.run_id
    for name in schema.FIT_METRIC_NAMES:
        value = metrics.get(schema.fit_metric(name))
        if value is not None and math.isfinite(value):
            out.fit[name] = float(value)
    out.phase = tags.get(schema.TAG_PHASE) or None
    out.check = tags.get(schema.TAG_CHECK) or None
    out.refit_number = _refit_number(tags)
    out.refitted_ms = _refit_time(run)
    out.fit_error = tags.get(schema.TAG_FIT_ERROR) or None
    out.digest = tags.get(schema.TAG_INPUT_DIGEST)


def _experiments(source: TrackingSource, can_read: AccessCheck) -> list[ExperimentRef]:
    return [e for e in all_experiments(source) if can_read(e.experiment_id)]  # type: ignore[arg-type]


def list_families(source: TrackingSource, can_read: AccessCheck = allow_all) -> list[FamilySummary]:
    """Every fitted family of every experiment the person may read, by experiment and name.

    Reads only the fit runs (one paged search), never the member runs: each fit run carries
    the numbers of its row. A family appears after its first refit.
    """
    experiments = {e.experiment_id: e for e in _experiments(source, can_read)}
    if not experiments:
        return []
    runs = search_all_runs(source, list(experiments), FIT_RUNS_FILTER)  # type: ignore[arg-type]
    grouped: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        name = family_of(run)
        if name is not None and run.info.experiment_id in experiments:
            grouped.setdefault((run.info.experiment_id, name), []).append(run)
    out = [
        summarize_fit_run(experiments[exp_id], name, sorted(fits, key=fit_run_order))
        for (exp_id, name), fits in grouped.items()
    ]
    return sorted(out, key=lambda s: (s.experiment.name, s.experiment.experiment_id, s.name))


def find_experiment(source: TrackingSource, key: str) -> ExperimentRef | None:
    """The active experiment whose id is ``key``, else the one named ``key``."""
    exp = None
    if key.isdigit():
        try:
            exp = source.get_experiment(key)
        except Exception:
            exp = None
    if exp is None:
        try:
            exp = source.get_experiment_by_name(key)
        except Exception:
            exp = None
    if exp is None or exp.lifecycle_stage != "active":
        return None
    return ExperimentRef(exp.experiment_id, exp.name)


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
    from .compare_page import comparisons_of  # (it imports this module)

    detail.comparisons = comparisons_of(source, experiment, family)
    run = fam.fit_run
    if run is None:
        return detail
    detail.fit_tags = dict(run.data.tags)
    detail.fit_metrics = dict(run.data.metrics)
    try:
        detail.artifacts = source.list_artifacts(run, schema.ARTIFACT_DIR)
    except Exception:
        detail.artifacts = set()
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
        return None, f"the fit run has no {schema.ARTIFACT_FIT_JSON} (yet)"
    raw = source.read_artifact(run, schema.ARTIFACT_FIT_JSON)
    if raw is None:
        return None, f"{schema.ARTIFACT_FIT_JSON} could not be read"
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"{schema.ARTIFACT_FIT_JSON} is not valid JSON ({exc})"
    if not isinstance(doc, dict):
        return None, f"{schema.ARTIFACT_FIT_JSON} holds a {type(doc).__name__}, not an object"
    return doc, None


def _read_predictions(
    source: TrackingSource, run: Run, artifacts: set[str]
) -> tuple[tuple[list[str], list[list[str]]] | None, bool]:
    if schema.ARTIFACT_PREDICTIONS_CSV not in artifacts:
        return None, False
    raw = source.read_artifact(run, schema.ARTIFACT_PREDICTIONS_CSV)
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
    except Exception:
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
