"""One refit pass: read every family, fit the changed ones, post the fits back to MLflow.

A pass is idempotent and safe to run from cron, a Kubernetes CronJob or two places at once:

1. one paged search reads the families of the experiments (members and fit runs together);
   runs that cannot be points are listed with a reason;
2. a family whose input and settings digests equal the tags on its fit run is skipped
   (unless ``force``);
   The digests compared are those of the fit run's *published* record
   (:mod:`..tracking.published`), and a fit run whose last refit failed is never skipped;
3. otherwise the family is analysed (:func:`analyze_family`: Approaches 3, 2 and 1, phases,
   scaling check, bootstrap intervals) and written to its fit run by the publishing protocol
   of :mod:`..tracking.fit_run`: a refit number of its own, the artifacts ``fit.json``,
   ``fit.png``, ``report.html``, ``predictions.csv`` (and ``curves.json`` when training
   curves were read, ``tasks.png`` when the family declares downstream tasks) in a folder of
   its own, then the record that publishes them with their digests, metrics at step = refit
   number and the mirror tags;
4. comparisons declared with ``scaling.compare_to`` are brought up to date the same way
   (:mod:`.compare_refit`).

An error in one family is recorded in its outcome (and on its fit run) and the pass goes on,
except when the tracking server stops answering: then the pass stops writing at once and
raises :class:`~..tracking.connection.TrackingUnavailable` naming the URI (the CLI exits 2).
Families written before stay consistent (the protocol never publishes half a write).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..compat import metric_steps
from ..crash_log import one_line, write_traceback
from ..planning.command import plan_gpu_setting, refit_plan
from ..strict_json import dumps as strict_dumps
from ..strict_json import to_strict
from ..tabular import InputError
from ..tracking import schema
from ..tracking.connection import TrackingUnavailable, check_reachable
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
    resolve_experiments,
)
from ..tracking.retention import collect
from ..tracking.task_checkpoints import History, read_task_histories
from .analysis import ANALYSIS_VERSION, STATUS_FITTED, RefitSettings, analyze_family
from .changes import CLOCK_MARGIN_MS
from .compare_refit import refresh_comparisons
from .pass_reading import DEFAULT_FULL_EVERY_MS, read_pass, record_deleted_digest
from .shards import Shard

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

log = logging.getLogger(__name__)

FIT_DOC_SCHEMA = "mlflow-scaling/fit"
FIT_DOC_VERSION = 1
STATUS_SKIPPED = "skipped"
STATUS_SUPERSEDED = "superseded"
"""Another pass published a fit of runs it read later; this pass's fit is not the fit."""
STATUS_ERROR = "error"
MAX_WRITE_ATTEMPTS = 3


@dataclass(frozen=True)
class FamilyOutcome:
    """What a pass did with one family.

    ``status``: ``fitted``, ``insufficient_data`` (a fit run saying why was written),
    ``skipped`` (nothing changed since the last fit), ``superseded`` (a pass that read the runs
    later published first: ``message`` says which refit stays the fit) or ``error``
    (``message`` says why; ``error_recorded`` whether the fit run's error tag read back).
    """

    experiment_id: str
    experiment: str
    family: str
    status: str
    fit_run_id: str | None = None
    refit_number: int | None = None
    phase: str | None = None
    check: str | None = None
    n_members: int = 0
    n_excluded: int = 0
    curves_fetched: int = 0
    seconds: float = 0.0
    message: str = ""
    error_recorded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive_tag(run: Run | None, tag: str) -> float | None:
    """A positive number people set as ``tag`` on the fit run, None when absent."""
    if run is None:
        return None
    text = run.data.tags.get(tag, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise InputError(
            f"fit run {run.info.run_id}: tag {tag} = {text!r} is not a positive number"
        )
    return value


def target_params_of(run: Run | None) -> float | None:
    """The check target people set on the fit run (tag ``scaling.target_params``), if any."""
    return _positive_tag(run, schema.TAG_TARGET_PARAMS)


def family_settings(settings: RefitSettings, run: Run | None) -> RefitSettings:
    """The pass's settings with the family's own precision bound (tag ``scaling.max_halfwidth``)."""
    bound = _positive_tag(run, schema.TAG_MAX_HALFWIDTH)
    return settings if bound is None else replace(settings, max_halfwidth=bound)


def _settings_doc(settings: RefitSettings, target: float | None, run: Run | None = None) -> dict:
    doc = settings.to_dict()
    if target is not None:  # the family's own target (a tag on its fit run) wins
        doc["target_params"] = target
        doc["target_params_from"] = f"tag {schema.TAG_TARGET_PARAMS}"
    doc.update(plan_gpu_setting(run))
    doc["analysis_version"] = ANALYSIS_VERSION
    return doc


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
    """``scaling/fit.json``: the analysis plus what it was made from."""
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
    return to_strict(doc)


def _write_artifacts(folder: Path, doc: dict, png: bytes, curves_doc: dict | None) -> None:
    from ..rendering import render
    from ..report.html import report_html
    from ..report.predictions import predictions_csv
    from ..report.task_figures import write_tasks_png

    try:
        report = report_html(doc, png)
    except Exception as exc:  # the report is one part: say it failed, keep the fit
        message = f"report.html unavailable: {type(exc).__name__}: {exc}"
        log.warning("family %r: %s", doc.get("family"), message)
        doc = {**doc, "unavailable": [*doc.get("unavailable", []), message]}
        report = render("report_unavailable.html", family=doc.get("family"), message=message)
    try:
        write_tasks_png(folder, doc)
    except Exception as exc:  # the task figure is one part too
        message = f"tasks.png unavailable: {type(exc).__name__}: {exc}"
        log.warning("family %r: %s", doc.get("family"), message)
        doc = {**doc, "unavailable": [*doc.get("unavailable", []), message]}
    (folder / "fit.json").write_text(strict_dumps(doc, indent=2))
    (folder / "fit.png").write_bytes(png)
    (folder / "report.html").write_text(report, encoding="utf-8")
    (folder / "predictions.csv").write_text(predictions_csv(doc))
    if "plan" in doc:
        (folder / "plan.json").write_text(strict_dumps(doc["plan"], indent=2))
    if curves_doc is not None:
        (folder / "curves.json").write_text(strict_dumps(curves_doc, separators=(",", ":")))


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


def analyze_job(
    family: Family,
    settings: RefitSettings,
    curves: dict[str, Curve],
    target: float | None,
    approach1_off: str | None = None,
    task_histories: dict[str, History] | None = None,
) -> tuple[dict, bytes]:
    """The analysis of one family and its figure (runs in a worker process when asked)."""
    from ..report.figures import fit_figure_png

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
    settings_doc = _settings_doc(settings, target, current)
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
    metrics = dict(analysis["metrics"])
    metrics[schema.METRIC_FIT_POINTS] = float(len(family.members))
    metrics[schema.METRIC_FIT_EXCLUDED] = float(len(family.excluded))
    metrics.update(span_metrics(family))
    record = PublishedFit(
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
            _write_artifacts(folder, doc, png, plan.curves_doc)

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
            return FamilyOutcome(
                **plan.base(),
                status=STATUS_SUPERSEDED,
                fit_run_id=run_id,
                refit_number=published.by.number,
                phase=published.by.phase,
                check=published.by.check,
                seconds=time.monotonic() - plan.started,
                message=published.message(family.read_ms),
            )
        if known and known[0].info.run_id == run_id:
            delete_duplicates(client, known)
            return FamilyOutcome(
                **plan.base(),
                status=analysis["status"],
                fit_run_id=run_id,
                refit_number=published.number,
                phase=analysis["phase"],
                check=analysis["check_verdict"],
                curves_fetched=plan.curves_fetched,
                seconds=time.monotonic() - plan.started,
                message=analysis["reason"]
                or ("fitted" if analysis["status"] == STATUS_FITTED else ""),
            )
        # An older fit run appeared (a concurrent pass created it): ours goes, write there.
    raise RuntimeError(
        f"family {family.name!r}: fit runs kept changing under {MAX_WRITE_ATTEMPTS} attempts "
        "to write (are many passes running at once?)"
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


def _error_outcome(client: MlflowClient, family: Family, exc: BaseException, start: float):
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


def stop_if_unreachable(client: MlflowClient, exc: BaseException) -> None:
    """Re-raise a lost tracking server as :class:`TrackingUnavailable`: the pass stops."""
    if isinstance(exc, TrackingUnavailable):
        raise exc
    check_reachable(client.tracking_uri)


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops the pass between families."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def refit_pass(
    client: MlflowClient,
    *,
    experiments: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    force: bool = False,
    settings: RefitSettings | None = None,
    curve_cache: CurveCache | None = None,
    on_outcome: Callable[[FamilyOutcome], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    workers: int = 1,
    shard: Shard | None = None,
    on_step: StepHook | None = None,
    on_family_start: Callable[[str, int, int], None] | None = None,
    full_check: bool = False,
    full_every_ms: int = DEFAULT_FULL_EVERY_MS,
    clock_margin_ms: int = CLOCK_MARGIN_MS,
) -> list[FamilyOutcome]:
    """One pass over the families of ``experiments`` (all active ones by default).

    ``families`` restricts the pass to those names; one that has no run in any of the
    experiments is an :class:`InputError`. Errors within a family become its outcome.
    ``should_stop`` is asked before each family; when it says yes the pass ends early (the
    families left are fitted by the next pass). ``workers`` > 1 analyses that many families at
    once in worker processes (the writes stay in this process, in family order). ``shard``
    keeps only the families of that shard (:mod:`.shards`). ``on_family_start(name, index,
    total)`` is called as each family to fit starts (index from 0 of ``total`` families to
    fit), for progress displays (:mod:`.progress`).

    Outcomes come in two groups: the families skipped or failed while reading, then the
    fitted ones, each group in family order. A tracking server that stops answering ends the
    pass with :class:`TrackingUnavailable` (nothing more is written). ``on_step`` is handed to
    :func:`~..tracking.fit_run.write_fit` (tests use it to interleave passes).

    What is read (:mod:`.pass_reading`): experiments whose last completed pass left a
    watermark get the quick check of :mod:`.changes` and only their changed families are read;
    the others (and all with ``force``, ``full_check``, or a full check older than
    ``full_every_ms`` milliseconds) are read in full. Families skipped unread come first among
    the outcomes. A pass that completes (not stopped) moves the watermarks. ``clock_margin_ms``
    is how far behind this machine's clock the training machines' clocks may run.
    """
    settings = settings or RefitSettings()
    exps = resolve_experiments(client, experiments)
    reading = read_pass(client, exps, families, settings, force=force, full_check=full_check,
                        full_every_ms=full_every_ms, shard=shard,
                        clock_margin_ms=clock_margin_ms)  # fmt: skip
    found = [f for f in reading.found if f.n_runs or f.fit_runs]
    if families:
        missing = sorted(set(families) - {f.name for f in found})
        if missing:
            where = ", ".join(repr(e.name) for e in exps) or "(no experiments)"
            raise InputError(
                f"no runs with {schema.TAG_FAMILY} = {', '.join(map(repr, missing))} in "
                f"experiment(s) {where} at {client.tracking_uri}"
            )
    if shard is not None:
        found = [f for f in found if shard.owns(f.experiment.experiment_id, f.name)]
    outcomes: list[FamilyOutcome] = []
    by_key = {(f.experiment.experiment_id, f.name): f for f in found}

    def emit(outcome: FamilyOutcome) -> None:
        outcomes.append(outcome)
        family = by_key.get((outcome.experiment_id, outcome.family))
        if family is not None:
            record_deleted_digest(client, family, outcome, reading.deleted)
        if on_outcome is not None:
            on_outcome(outcome)

    stopped = False

    def stopping() -> bool:
        nonlocal stopped
        asked = should_stop is not None and should_stop()
        stopped = stopped or asked
        return asked

    for outcome in reading.quiet:
        emit(outcome)
    _fit_families(client, found, settings, force=force, curve_cache=curve_cache, emit=emit,
                  stopping=stopping, workers=workers, on_step=on_step,
                  on_family_start=on_family_start)  # fmt: skip
    if not stopped:  # every family of the experiments read was seen: move their watermarks
        reading.write_watermarks(client, outcomes)
    return outcomes


def _fit_families(
    client: MlflowClient,
    found: Sequence[Family],
    settings: RefitSettings,
    *,
    force: bool,
    curve_cache: CurveCache | None,
    emit: Callable[[FamilyOutcome], None],
    stopping: Callable[[], bool],
    workers: int,
    on_step: StepHook | None,
    on_family_start: Callable[[str, int, int], None] | None,
) -> None:
    """Plan, analyse and write the families read in full, then their comparisons."""

    plans: list[FitPlan] = []
    for family in found:
        if stopping():
            log.info("stopping the pass before family %r", family.name)
            return
        start = time.monotonic()
        try:
            plan = plan_family(client, family, settings, force=force, curve_cache=curve_cache)
        except Exception as exc:
            stop_if_unreachable(client, exc)
            emit(_error_outcome(client, family, exc, start))
            continue
        if isinstance(plan, FamilyOutcome):
            emit(plan)
        else:
            plans.append(plan)
    if not plans:
        refresh_comparisons(client, found, settings, force=force, emit=emit, should_stop=stopping)
        return

    pool = None
    if workers > 1 and len(plans) > 1:
        import multiprocessing

        pool = ProcessPoolExecutor(
            min(workers, len(plans)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_ignore_sigint,
        )
    try:
        futures = [pool.submit(analyze_job, *p.job()) for p in plans] if pool else []
        for i, plan in enumerate(plans):
            if stopping():
                log.info("stopping the pass before family %r", plan.family.name)
                break
            if on_family_start is not None:
                on_family_start(plan.family.name, i, len(plans))
            plan.started = time.monotonic()  # seconds: this family's analysis and writes
            try:
                if pool is not None:
                    analysis, png = futures[i].result()
                else:
                    analysis, png = analyze_job(*plan.job())
                emit(write_family(client, plan, analysis, png, on_step=on_step))
            except Exception as exc:
                stop_if_unreachable(client, exc)
                emit(_error_outcome(client, plan.family, exc, plan.started))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    refresh_comparisons(client, found, settings, force=force, emit=emit, should_stop=stopping)
