"""One refit pass: read every family, fit the changed ones, post the fits back to MLflow.

A pass is idempotent and safe to run from cron, a Kubernetes CronJob or two places at once:

1. one paged search reads the families of the experiments (members and fit runs together);
   runs that cannot be points are listed with a reason;
2. a family whose input and settings digests equal those of its fit run's *published* record
   (:mod:`..tracking.published`; never the mirror tags) is skipped unless ``force``; a fit run
   whose last refit failed is never skipped;
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

The protocol's invariants (claim, publish, mirrors, retention, watermark, quick check) are
stated once, in the docstring of :mod:`..tracking.fit_run`.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

from ..tabular import InputError
from ..tracking import schema
from ..tracking.fit_run import (
    StepHook,
)
from ..tracking.reading import (
    CurveCache,
    ExperimentRef,
    Family,
    resolve_experiments,
)
from .analysis import RefitSettings
from .artifacts import (  # noqa: F401  (re-exported: tests and benchmarks use them here)
    analyze_job,
    build_fit_document,
    span_metrics,
    write_artifacts,
)
from .changes import CLOCK_MARGIN_MS
from .compare_refit import refresh_comparisons
from .family_refit import (  # noqa: F401  (re-exported: tests use them here)
    FitPlan,
    error_outcome,
    plan_family,
    refit_family,
    write_family,
)
from .outcome import (  # noqa: F401  (re-exported: the pass's outcome names)
    STATUS_ERROR,
    STATUS_SKIPPED,
    STATUS_SUPERSEDED,
    FamilyOutcome,
    stop_if_unreachable,
)
from .pass_reading import DEFAULT_FULL_EVERY_MS, read_pass, record_deleted_digest
from .shards import Shard

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


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
    found = _families_to_fit(client, reading.found, exps, families, shard)
    out = _PassOutcomes(client, found, reading.deleted, on_outcome, should_stop)
    for outcome in reading.quiet:
        out.emit(outcome)
    _fit_families(client, found, settings, force=force, curve_cache=curve_cache, emit=out.emit,
                  stopping=out.stopping, workers=workers, on_step=on_step,
                  on_family_start=on_family_start)  # fmt: skip
    if not out.stopped:  # every family of the experiments read was seen: move their watermarks
        reading.write_watermarks(client, out.outcomes)
    return out.outcomes


class _PassOutcomes:
    """The pass's outcomes as they come (each family's deleted-runs digest recorded with its
    outcome), and whether the pass was asked to stop."""

    def __init__(self, client, found, deleted, on_outcome, should_stop) -> None:
        self.client, self.deleted = client, deleted
        self.by_key = {(f.experiment.experiment_id, f.name): f for f in found}
        self.on_outcome, self.should_stop = on_outcome, should_stop
        self.outcomes: list[FamilyOutcome] = []
        self.stopped = False

    def emit(self, outcome: FamilyOutcome) -> None:
        self.outcomes.append(outcome)
        family = self.by_key.get((outcome.experiment_id, outcome.family))
        if family is not None:
            record_deleted_digest(self.client, family, outcome, self.deleted)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def stopping(self) -> bool:
        asked = self.should_stop is not None and self.should_stop()
        self.stopped = self.stopped or asked
        return asked


def _families_to_fit(
    client: MlflowClient,
    read: Sequence[Family],
    exps: Sequence[ExperimentRef],
    families: Sequence[str] | None,
    shard: Shard | None,
) -> list[Family]:
    """The families read that have runs, this shard's only; a named family that has no run in
    the experiments is an :class:`InputError`."""
    found = [f for f in read if f.n_runs or f.fit_runs]
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
    return found


def _plan_families(
    client: MlflowClient,
    found: Sequence[Family],
    settings: RefitSettings,
    *,
    force: bool,
    curve_cache: CurveCache | None,
    emit: Callable[[FamilyOutcome], None],
    stopping: Callable[[], bool],
) -> list[FitPlan] | None:
    """The families that need a fit, planned (the others' outcomes emitted); None when the
    pass is asked to stop."""
    plans: list[FitPlan] = []
    for family in found:
        if stopping():
            log.info("stopping the pass before family %r", family.name)
            return None
        start = time.monotonic()
        try:
            plan = plan_family(client, family, settings, force=force, curve_cache=curve_cache)
        except Exception as exc:
            stop_if_unreachable(client, exc)
            emit(error_outcome(client, family, exc, start))
            continue
        if isinstance(plan, FamilyOutcome):
            emit(plan)
        else:
            plans.append(plan)
    return plans


def _worker_pool(workers: int, jobs: int) -> ProcessPoolExecutor | None:
    """Worker processes for the analyses (spawned: no fork of MLflow's threads), or None."""
    if workers <= 1 or jobs <= 1:
        return None
    return ProcessPoolExecutor(
        min(workers, jobs),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_ignore_sigint,
    )


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
    plans = _plan_families(client, found, settings, force=force, curve_cache=curve_cache,
                           emit=emit, stopping=stopping)  # fmt: skip
    if plans is None:
        return
    if not plans:
        refresh_comparisons(client, found, settings, force=force, emit=emit, should_stop=stopping)
        return
    pool = _worker_pool(workers, len(plans))
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
                emit(error_outcome(client, plan.family, exc, plan.started))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    refresh_comparisons(client, found, settings, force=force, emit=emit, should_stop=stopping)
