"""What the pages show of a family: its summary row (from the fit run's tags and metrics, or
from its member runs), its detail, and the experiments a person may read."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..compat import metric_steps
from ..formatting import as_float
from ..tracking import schema
from ..tracking.published import (
    published_fit,
    published_metrics,
)
from ..tracking.reading import (
    ExcludedRun,
    ExperimentRef,
    Family,
    MemberPoint,
    all_experiments,
)
from .sources import (
    AccessCheck,
    TrackingSource,
)

if TYPE_CHECKING:
    from mlflow.entities import Run


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

    def published_url(self, links: Any, path: str) -> str | None:
        """The served URL of the fit run's published ``path`` (e.g. ``scaling/tasks.png``), or
        None when the fit run has not published it."""
        if self.summary.fit_run_id and path in self.artifacts:
            return links.artifact(self.summary.fit_run_id, path)
        return None


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
