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
missing, never an error, so a page keeps working across versions of the refit job.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..compat import metric_steps, server_artifacts
from ..formatting import as_float
from ..tracking import schema
from ..tracking.fit_document import FitDocumentError, load_fit_document
from ..tracking.published import (
    artifact_name,
    is_missing,
    published_artifact_path,
    published_fit,
    published_metrics,
)
from ..tracking.reading import (
    FIT_RUNS_FILTER,
    ExcludedRun,
    ExperimentRef,
    Family,
    FamilyKey,
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

PAGE_SIZE = 100
"""Families on one index page unless ``?per_page=`` says otherwise."""
MAX_PAGE_SIZE = 500

INDEX_ORDER = (
    f"tags.`{schema.TAG_FAMILY}` ASC",
    "attributes.start_time ASC",
    "attributes.run_id ASC",
)
"""The index's order across experiments, the same on every page: family name (as the database
collates it), then the fit run's start time, then its run id, so the order is total and a page
token continues exactly where the last page ended. (``search_runs`` cannot order by
experiment.)"""

LIKE_SPECIALS = "%_\\'\""
"""Characters a ``LIKE`` pattern in an MLflow filter cannot hold literally."""

AccessCheck = Callable[[str], bool]
"""Whether the person asking may read the experiment with this id."""


def allow_all(experiment_id: str) -> bool:
    return True


# --- sources ---------------------------------------------------------------------------------


class Absent(LookupError):
    """The store answered that the thing asked for does not exist."""


class StoreFailed(RuntimeError):
    """The tracking or artifact store failed to answer (not: the thing is absent)."""


def store_call(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a source method; what the store raises becomes :class:`Absent` or
    :class:`StoreFailed` (the one place that tells them apart)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (Absent, StoreFailed):
            raise
        except Exception as exc:
            if is_missing(exc):
                raise Absent(str(exc)) from exc
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise StoreFailed(f"{type(exc).__name__}: {first}") from exc

    return wrapper


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
        self._artifacts = server_artifacts
        self._store = server_artifacts.tracking_store()

    @store_call
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

    @store_call
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

    @store_call
    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._store.get_experiment(experiment_id)

    @store_call
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._store.get_experiment_by_name(name)

    @store_call
    def get_run(self, run_id: str) -> Run:
        return self._store.get_run(run_id)

    @store_call
    def get_metric_history(self, run_id: str, key: str) -> Sequence[Metric]:
        return list(self._store.get_metric_history(run_id, key))

    def _repo_and_path(self, run: Run, path: str) -> tuple[Any, str]:
        # The same resolution as MLflow's /get-artifact handler.
        return self._artifacts.artifact_repo_and_path(run, path)

    @store_call
    def list_artifacts(self, run: Run, path: str) -> set[str]:
        repo, full = self._repo_and_path(run, path)
        prefix = full[: len(full) - len(path)] if full.endswith(path) else ""
        names = set()
        for info in repo.list_artifacts(full):
            names.add(
                info.path[len(prefix) :] if prefix and info.path.startswith(prefix) else info.path
            )
        return names

    @store_call
    def read_artifact(self, run: Run, path: str) -> bytes | None:
        repo, full = self._repo_and_path(run, path)
        try:
            return _read_from_repo(repo, full)
        except Exception as exc:
            if is_missing(exc):
                return None
            raise


class ClientSource:
    """An :class:`mlflow.MlflowClient` (outside the server: tests, scripts)."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client
        self.tracking_uri = client.tracking_uri

    @store_call
    def search_runs(self, experiment_ids: Sequence[str], **kwargs: Any) -> Any:
        return self._client.search_runs(list(experiment_ids), **kwargs)

    @store_call
    def search_experiments(self, **kwargs: Any) -> Any:
        return self._client.search_experiments(**kwargs)

    @store_call
    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._client.get_experiment(experiment_id)

    @store_call
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._client.get_experiment_by_name(name)

    @store_call
    def get_run(self, run_id: str) -> Run:
        return self._client.get_run(run_id)

    @store_call
    def get_metric_history(self, run_id: str, key: str) -> Sequence[Metric]:
        return self._client.get_metric_history(run_id, key)

    @store_call
    def list_artifacts(self, run: Run, path: str) -> set[str]:
        return {a.path for a in self._client.list_artifacts(run.info.run_id, path)}

    @store_call
    def read_artifact(self, run: Run, path: str) -> bytes | None:
        with tempfile.TemporaryDirectory(prefix="scaling-artifact-") as tmp:
            try:
                local = self._client.download_artifacts(run.info.run_id, path, tmp)
            except Exception as exc:
                if is_missing(exc):
                    return None
                raise
            return _read_local(local)


def _read_from_repo(repo: Any, path: str) -> bytes | None:
    """The file's bytes; None when absent; what else the repository raises goes up."""
    local = repo.get_local_path(path) if hasattr(repo, "get_local_path") else None
    if local is not None:
        return _read_local(local)
    with tempfile.TemporaryDirectory(prefix="scaling-artifact-") as tmp:
        return _read_local(repo.download_artifacts(path, dst_path=tmp))


def _read_local(path: str) -> bytes | None:
    """A local file's bytes; None when there is no such file (or it is over the size limit);
    a file that exists but cannot be read raises."""
    if not os.path.lexists(path):
        return None
    if os.path.isfile(path) and os.path.getsize(path) > MAX_ARTIFACT_BYTES:
        return None
    with open(path, "rb") as f:
        return f.read()


def is_served_artifact(path: str) -> bool:
    """Whether the artifact route may serve ``path`` (one of :data:`SERVED_ARTIFACTS`)."""
    return posixpath.normpath(path) == path and path in SERVED_ARTIFACTS


def fit_artifacts(source: TrackingSource, run: Run) -> set[str]:
    """Logical names (``scaling/fit.json``, ...) of the files of the run's published fit."""
    fit = published_fit(run)
    if fit is None:
        return set()
    try:
        found = source.list_artifacts(run, fit.path)
    except Absent:
        return set()
    return {f"{schema.ARTIFACT_DIR}/{artifact_name(p)}" for p in found}


def read_fit_artifact(source: TrackingSource, run: Run, name: str) -> bytes | None:
    """The bytes of the published fit's file ``name`` (a logical name), or None."""
    path = published_artifact_path(run, name)
    return None if path is None else source.read_artifact(run, path)


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


def _refit_time(run: Run) -> int | None:
    stamps = [
        int(m.timestamp)
        for m in metric_steps.latest(run) or []
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
    metrics = published_metrics(run)
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
    tags = run.data.tags
    out.fit_run_id = run.info.run_id
    out.refitted_ms = _refit_time(run)
    out.fit_error = tags.get(schema.TAG_FIT_ERROR) or None
    fit = published_fit(run)  # the record, not the mirror tags (see tracking.fit_run)
    if fit is None:
        return
    values = published_metrics(run)
    for name in schema.FIT_METRIC_NAMES:
        value = values.get(schema.fit_metric(name))
        if value is not None and math.isfinite(value):
            out.fit[name] = float(value)
    out.phase = fit.phase or None
    out.check = fit.check or None
    out.refit_number = fit.number
    out.digest = fit.input_digest


def readable_experiments(source: TrackingSource, can_read: AccessCheck) -> list[ExperimentRef]:
    """Every active experiment the person may read, by name (one cheap search, no runs)."""
    return [e for e in all_experiments(source) if can_read(e.experiment_id)]  # type: ignore[arg-type]


# --- the index, one page at a time -----------------------------------------------------------


class UnknownExperiment(LookupError):
    """``?experiment=`` names no experiment the person may read."""


class BadPageToken(ValueError):
    """The store cannot continue from this page token (garbled, or cut short when copied)."""


@dataclass(frozen=True)
class IndexQuery:
    """What one index page asks for: the query args of ``/scaling/``."""

    per_page: int = PAGE_SIZE
    page_token: str | None = None
    """The store's opaque token of this page (None: the first page)."""
    start: int = 1
    """Number of the page's first family, counted from the first page (for the heading)."""
    experiment: str | None = None
    """Only this experiment (its id, else its name)."""
    name_contains: str | None = None
    """Only families whose name contains this text, ignoring case."""

    @property
    def filtered(self) -> bool:
        return bool(self.experiment or self.name_contains)


@dataclass
class FamilyPage:
    """One page of the index."""

    families: list[FamilySummary]
    next_token: str | None
    """The store's token of the next page; None on the last page."""
    readable: list[ExperimentRef]
    """Every experiment the person may read (the filter form offers them)."""
    experiment: ExperimentRef | None = None
    """The experiment the page is restricted to, if any."""

    @property
    def searched(self) -> int:
        """How many experiments the page's search covered."""
        return 1 if self.experiment is not None else len(self.readable)


def pick_experiment(experiments: Sequence[ExperimentRef], key: str) -> ExperimentRef | None:
    """The experiment of ``experiments`` whose id is ``key``, else the one named ``key``."""
    by_id = next((e for e in experiments if e.experiment_id == key), None)
    return by_id or next((e for e in experiments if e.name == key), None)


def name_contains_filter(text: str) -> str:
    """A ``search_runs`` filter for family names containing ``text``, ignoring case.

    MLflow hands a ``LIKE`` pattern to the database as it is (SQLite knows no escape character
    there) and its filter parser has no escape for quotes, so each ``%``, ``_``, backslash and
    quote of ``text`` becomes ``_`` (any one character): the pattern may match a few more names,
    and :func:`name_contains` keeps the exact ones.
    """
    pattern = "".join("_" if ch in LIKE_SPECIALS else ch for ch in text)
    return f"tags.`{schema.TAG_FAMILY}` ILIKE '%{pattern}%'"


def name_contains(name: str, text: str) -> bool:
    return text.lower() in name.lower()


def index_filter(query: IndexQuery) -> str:
    """The fit runs an index page searches: all of them, or those whose name may match."""
    if not query.name_contains:
        return FIT_RUNS_FILTER
    return f"{FIT_RUNS_FILTER} and {name_contains_filter(query.name_contains)}"


def family_page(
    source: TrackingSource, query: IndexQuery, can_read: AccessCheck = allow_all
) -> FamilyPage:
    """One page of the index: at most ``query.per_page`` fit runs in :data:`INDEX_ORDER`,
    grouped into families, from the experiments the person may read.

    Reads only that page of fit runs (one search), never the member runs: each fit run carries
    the numbers of its row; a family appears after its first refit. A page after the first also
    looks up its first family's fit runs, so a family whose duplicate fit runs (two refits
    racing) straddle a page boundary is listed once, on the page of its oldest fit run.
    Raises :class:`UnknownExperiment` or :class:`BadPageToken`.
    """
    readable = readable_experiments(source, can_read)
    page = FamilyPage(families=[], next_token=None, readable=readable)
    if query.experiment is not None:
        page.experiment = pick_experiment(readable, query.experiment)
        if page.experiment is None:
            raise UnknownExperiment(query.experiment)
    searched = {e.experiment_id: e for e in ([page.experiment] if page.experiment else readable)}
    if not searched:
        return page
    runs = _search_index_page(source, list(searched), query)
    groups = _group_fit_runs(runs, searched, query.name_contains)
    if query.page_token and groups:
        _drop_family_begun_earlier(source, list(searched), groups)
    page.families = [
        summarize_fit_run(searched[exp_id], name, sorted(fits, key=fit_run_order))
        for (exp_id, name), fits in groups.items()
    ]
    page.next_token = _token_text(runs.token)
    return page


def _token_text(token: str | bytes | None) -> str | None:
    # The SQL store's own tokens are bytes (base64); over REST they arrive as text.
    if isinstance(token, bytes):
        token = token.decode("ascii", errors="replace")
    return token or None


def _search_index_page(source: TrackingSource, experiment_ids: list[str], query: IndexQuery) -> Any:
    search = functools.partial(
        source.search_runs,
        experiment_ids,
        filter_string=index_filter(query),
        max_results=query.per_page,
        order_by=list(INDEX_ORDER),
    )
    try:
        return search(page_token=query.page_token)
    except Exception as exc:
        if not query.page_token:
            raise
        search(page_token=None, max_results=1)  # raises when the search fails token or not
        raise BadPageToken(query.page_token) from exc


def _group_fit_runs(
    runs: Iterable[Run], experiments: Mapping[str, ExperimentRef], text: str | None
) -> dict[FamilyKey, list[Run]]:
    """The page's fit runs by family, in the order of each family's first run on the page."""
    groups: dict[FamilyKey, list[Run]] = {}
    for run in runs:
        name = family_of(run)
        if name is None or run.info.experiment_id not in experiments:
            continue
        if text and not name_contains(name, text):
            continue
        groups.setdefault((run.info.experiment_id, name), []).append(run)
    return groups


def _drop_family_begun_earlier(
    source: TrackingSource, experiment_ids: list[str], groups: dict[FamilyKey, list[Run]]
) -> None:
    """Drop the families whose oldest fit run (the family's) lies on an earlier page.

    The order is by name first, so only the page's first name can have begun on an earlier
    page; its fit runs here are then duplicates that page has already grouped.
    """
    first_name = next(iter(groups))[1]
    filter_string = f"{FIT_RUNS_FILTER} and {schema.family_filter(first_name)}"
    oldest: dict[str, Run] = {}
    for run in search_all_runs(source, experiment_ids, filter_string):  # type: ignore[arg-type]
        exp_id = run.info.experiment_id
        if family_of(run) == first_name and (
            exp_id not in oldest or fit_run_order(run) < fit_run_order(oldest[exp_id])
        ):
            oldest[exp_id] = run
    for exp_id, name in [key for key in groups if key[1] == first_name]:
        on_this_page = {r.info.run_id for r in groups[(exp_id, name)]}
        if exp_id in oldest and oldest[exp_id].info.run_id not in on_this_page:
            del groups[(exp_id, name)]


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
