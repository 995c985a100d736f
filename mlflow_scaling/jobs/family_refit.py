"""One family's refit: plan it (skip, or read its curves and settings), then write the analysis
to its fit run by the publishing protocol of :mod:`..tracking.fit_run` (retrying a write that
another pass superseded), or record why it failed. :mod:`.refit` runs these over a pass."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..compat import metric_steps
from ..crash_log import one_line, write_traceback
from ..planning.family_plan import refit_plan
from ..tabular import InputError
from ..tracking import schema
from ..tracking.digest import input_digest, settings_digest
from ..tracking.fit_run import (
    StepHook,
    Superseded,
    delete_duplicates,
    ensure_fit_run,
    find_fit_runs,
    is_active,
    mark_error,
    sync_mirrors,
    write_fit,
)
from ..tracking.published import PublishedFit, published_fit, read_published_json
from ..tracking.reading import (
    Curve,
    CurveCache,
    Family,
    may_have_curve,
    read_curves,
)
from ..tracking.retention import collect
from ..tracking.task_checkpoints import History, read_task_histories
from ..tracking.unique_history import exclude_changing_unique_tokens
from .analysis import STATUS_FITTED, RefitSettings
from .artifacts import (
    analyze_job,
    build_fit_document,
    span_metrics,
    write_artifacts,
)
from .family_settings import family_settings, settings_document, target_params_of
from .outcome import (
    STATUS_ERROR,
    STATUS_SKIPPED,
    STATUS_SUPERSEDED,
    FamilyOutcome,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

log = logging.getLogger(__name__)

MAX_WRITE_ATTEMPTS = 3


def _load_curve_cache(client: MlflowClient, run: Run | None, cache: CurveCache) -> None:
    """Add the curves stored on the fit run (``scaling/curves.json``) to ``cache``."""
    if run is None:
        return
    try:
        doc = read_published_json(client, run, schema.ARTIFACT_CURVES_JSON)
    except ValueError as exc:  # unreadable: read the histories again
        log.debug("no usable %s on %s: %s", schema.ARTIFACT_CURVES_JSON, run.info.run_id, exc)
        return
    if doc is not None:  # absent on a first fit
        cache.update_from_doc(doc)


@dataclass
class FitPlan:
    """A family that needs a fit, with everything read from MLflow for it."""

    family: Family
    digest: str
    target: float | None
    settings: RefitSettings
    settings_doc: dict
    settings_hash: str
    curves: dict[str, Curve]
    curves_doc: dict | None
    curves_fetched: int
    started: float
    approach1_off: str | None = None
    task_histories: dict[str, History] = field(default_factory=dict)

    def base(self) -> dict[str, Any]:
        return {
            "experiment_id": self.family.experiment.experiment_id,
            "experiment": self.family.experiment.name,
            "family": self.family.name,
            "n_members": len(self.family.members),
            "n_excluded": len(self.family.excluded),
        }

    def job(self) -> tuple:
        """The arguments of :func:`analyze_job` (picklable: no MLflow objects)."""
        fam = self.family
        light = Family(fam.experiment, fam.name, list(fam.members), list(fam.excluded), [])
        return (light, self.settings, self.curves, self.target, self.approach1_off,
                self.task_histories)  # fmt: skip


def plan_family(
    client: MlflowClient,
    family: Family,
    settings: RefitSettings,
    *,
    force: bool = False,
    curve_cache: CurveCache | None = None,
) -> FamilyOutcome | FitPlan:
    """Skip the family (an outcome) when its digests match, else gather what a fit needs."""
    start = time.monotonic()
    digest = input_digest(family)
    current = family.fit_run
    target = target_params_of(current)
    settings = family_settings(settings, current)
    settings_doc = settings_document(settings, target, current)
    settings_hash = settings_digest(settings_doc)
    published = published_fit(current)
    if (
        current is not None
        and published is not None
        and not force
        and published.input_digest == digest
        and published.settings_digest == settings_hash
        and not current.data.tags.get(schema.TAG_FIT_ERROR)
    ):
        return _skip_unchanged(client, family, current, published, start)
    family = exclude_changing_unique_tokens(client, family)  # reads histories: fits only
    cache = curve_cache if curve_cache is not None else CurveCache()
    curves: dict[str, Curve] = {}
    fetched = 0
    curve_ids = [p.run_id for p in family.members if may_have_curve(p)]
    approach1_off = None if metric_steps.available() else metric_steps.UNAVAILABLE
    if settings.curves and curve_ids and approach1_off is None:
        if any(r not in cache for r in curve_ids):
            _load_curve_cache(client, current, cache)
        curves, fetched = read_curves(client, family.members, cache)
    return FitPlan(
        family=family,
        digest=digest,
        target=target,
        settings=settings,
        settings_doc=settings_doc,
        settings_hash=settings_hash,
        curves=curves,
        curves_doc=cache.to_doc(curve_ids) if curve_ids and settings.curves else None,
        curves_fetched=fetched,
        started=start,
        approach1_off=approach1_off if settings.curves else None,
        task_histories=read_task_histories(client, family.members),
    )


def _skip_unchanged(
    client: MlflowClient, family: Family, current: Run, published: PublishedFit, start: float
) -> FamilyOutcome:
    """The outcome of a family whose digests match its published fit, after the chores a
    skipping pass does: duplicates deleted, mirrors repaired, orphans collected."""
    delete_duplicates(client, family.fit_runs)
    sync_mirrors(client, current.info.run_id, current)  # a pass that died at step 5
    collect(client, current)  # orphans of a pass that died (no call when there are none)
    return FamilyOutcome(
        experiment_id=family.experiment.experiment_id,
        experiment=family.experiment.name,
        family=family.name,
        n_members=len(family.members),
        n_excluded=len(family.excluded),
        status=STATUS_SKIPPED,
        fit_run_id=current.info.run_id,
        refit_number=published.number,
        phase=published.phase,
        check=published.check,
        seconds=time.monotonic() - start,
        message="unchanged since the last fit (same input and settings digests)",
    )


def write_family(
    client: MlflowClient,
    plan: FitPlan,
    analysis: dict,
    png: bytes,
    on_step: StepHook | None = None,
) -> FamilyOutcome:
    """Write one analysed family to its fit run (found or created; see :mod:`fit_run`)."""
    family = plan.family
    known: Sequence[Run] = family.fit_runs
    record = _record(plan, analysis)
    for _attempt in range(MAX_WRITE_ATTEMPTS):
        run = ensure_fit_run(client, family.experiment, family.name, known)
        run_id = run.info.run_id

        def make_artifacts(refit_number: int, folder: Path, run_id: str = run_id) -> None:
            doc = build_fit_document(
                family,
                analysis,
                fit_run_id=run_id,
                refit_number=refit_number,
                digest=plan.digest,
                settings_doc=plan.settings_doc,
                settings_hash=plan.settings_hash,
            )
            if plan.settings_doc.get("plan_gpu"):
                doc["plan"] = refit_plan(client, doc, plan.settings_doc["plan_gpu"])
            write_artifacts(folder, doc, png, plan.curves_doc)

        try:
            published = write_fit(
                client, run, make_artifacts=make_artifacts, record=record, on_step=on_step
            )
        except Exception:
            if is_active(client, run_id):  # raises itself when the store cannot tell
                raise
            # Another pass deleted this run as a duplicate: write to the one that counts.
            known = find_fit_runs(client, family.experiment.experiment_id, family.name)
            continue
        known = find_fit_runs(client, family.experiment.experiment_id, family.name)
        if isinstance(published, Superseded):
            return _superseded(plan, run_id, published)
        if known and known[0].info.run_id == run_id:
            delete_duplicates(client, known)
            return _written(plan, analysis, run_id, published.number)
        # An older fit run appeared (a concurrent pass created it): ours goes, write there.
    raise RuntimeError(
        f"family {family.name!r}: fit runs kept changing under {MAX_WRITE_ATTEMPTS} attempts "
        "to write (are many passes running at once?)"
    )


def _record(plan: FitPlan, analysis: dict) -> PublishedFit:
    """The record a write publishes (its number and folder are filled in by the protocol)."""
    family = plan.family
    metrics = dict(analysis["metrics"])
    metrics[schema.METRIC_FIT_POINTS] = float(len(family.members))
    metrics[schema.METRIC_FIT_EXCLUDED] = float(len(family.excluded))
    metrics.update(span_metrics(family))
    return PublishedFit(
        number=0,
        path="",
        input_digest=plan.digest,
        settings_digest=plan.settings_hash,
        read_ms=family.read_ms,
        phase=analysis["phase"],
        check=analysis["check_verdict"],
        status=analysis["status"],
        metrics=metrics,
        tags=dict(analysis.get("task_tags", {})),
    )


def _superseded(plan: FitPlan, run_id: str, published: Superseded) -> FamilyOutcome:
    return FamilyOutcome(
        **plan.base(),
        status=STATUS_SUPERSEDED,
        fit_run_id=run_id,
        refit_number=published.by.number,
        phase=published.by.phase,
        check=published.by.check,
        seconds=time.monotonic() - plan.started,
        message=published.message(plan.family.read_ms),
    )


def _written(plan: FitPlan, analysis: dict, run_id: str, number: int) -> FamilyOutcome:
    return FamilyOutcome(
        **plan.base(),
        status=analysis["status"],
        fit_run_id=run_id,
        refit_number=number,
        phase=analysis["phase"],
        check=analysis["check_verdict"],
        curves_fetched=plan.curves_fetched,
        seconds=time.monotonic() - plan.started,
        message=analysis["reason"] or ("fitted" if analysis["status"] == STATUS_FITTED else ""),
    )


def refit_family(
    client: MlflowClient,
    family: Family,
    settings: RefitSettings,
    *,
    force: bool = False,
    curve_cache: CurveCache | None = None,
) -> FamilyOutcome:
    """Fit one family and write its fit run, or skip it when nothing changed."""
    plan = plan_family(client, family, settings, force=force, curve_cache=curve_cache)
    if isinstance(plan, FamilyOutcome):
        return plan
    analysis, png = analyze_job(*plan.job())
    return write_family(client, plan, analysis, png)


def error_outcome(client: MlflowClient, family: Family, exc: BaseException, start: float):
    message = one_line(exc)
    if isinstance(exc, InputError):  # bad input (a tag): the one line says it all
        log.error("family %r in experiment %r: %s", family.name, family.experiment.name, message)
    else:
        log.error("family %r in experiment %r: %s (full traceback in %s)", family.name,
                  family.experiment.name, message, write_traceback(exc, family.name))  # fmt: skip
    run_id = _fit_run_id_for_error(client, family)
    recorded = run_id is not None and mark_error(client, run_id, message)
    return FamilyOutcome(
        experiment_id=family.experiment.experiment_id,
        experiment=family.experiment.name,
        family=family.name,
        status=STATUS_ERROR,
        fit_run_id=run_id,
        n_members=len(family.members),
        n_excluded=len(family.excluded),
        seconds=time.monotonic() - start,
        message=message,
        error_recorded=recorded,
    )


def _fit_run_id_for_error(client: MlflowClient, family: Family) -> str | None:
    """The fit run to carry the family's error: the one read, else one this pass created."""
    if family.fit_run is not None:
        return family.fit_run.info.run_id
    try:
        runs = find_fit_runs(client, family.experiment.experiment_id, family.name)
    except Exception as exc:
        log.warning("family %r: cannot look for its fit run: %s", family.name, exc)
        return None
    return runs[0].info.run_id if runs else None
