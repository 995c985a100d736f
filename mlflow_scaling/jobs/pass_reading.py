"""What one refit pass reads: every member run (a full check), or only what changed.

:func:`read_pass` decides per experiment (:mod:`.changes` explains the watermark and what the
quick check sees): an experiment without a watermark, with a full check older than
``full_every_ms``, or in a ``--force`` or ``--full-check`` pass is read in full, as every pass
did before; the others get the quick check, and only their changed families are read. A pass
restricted to named families reads those families and leaves the watermarks alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..tracking import schema
from ..tracking.digest import settings_digest
from ..tracking.published import published_fit, published_metrics
from ..tracking.reading import ExperimentRef, Family, FamilyKey, read_families
from .changes import (
    CLOCK_MARGIN_MS,
    DEFAULT_FULL_CHECK_HOURS,
    QuietFamily,
    Watermark,
    deleted_digests,
    now_ms,
    read_watermarks,
    recorded_deleted_digest,
    scan_changes,
    write_watermark,
)
from .compare_refit import comparison_settings_digest
from .family_settings import family_settings, settings_document, target_params_of
from .outcome import STATUS_ERROR, STATUS_SKIPPED, STATUS_SUPERSEDED, FamilyOutcome

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from .analysis import RefitSettings
    from .shards import Shard

DEFAULT_FULL_EVERY_MS = int(DEFAULT_FULL_CHECK_HOURS * 3600 * 1000)
READ_WHOLE_EXPERIMENT_ABOVE = 50
"""More changed families than this in one experiment: one paged search reads them all (cheaper
than a search per family)."""


@dataclass
class PassReading:
    """The families a pass read in full, the ones it skipped unread, and what to record."""

    found: list[Family]
    quiet: list[FamilyOutcome] = field(default_factory=list)
    deleted: dict[FamilyKey, str] = field(default_factory=dict)
    marks: dict[str, Watermark] = field(default_factory=dict)
    """The watermark each experiment gets when the pass completes."""
    shard: Shard | None = None

    def write_watermarks(self, client: MlflowClient, outcomes: Sequence[FamilyOutcome]) -> None:
        """Move the watermarks of the experiments read. An experiment where a family failed
        and its error tag was not written and read back keeps its old one (the next pass reads
        it again; invariant 4 of ``tracking/fit_run.py``)."""

        unrecorded = {o.experiment_id for o in outcomes
                      if o.status == STATUS_ERROR and not o.error_recorded}  # fmt: skip
        for exp_id, mark in self.marks.items():
            if exp_id not in unrecorded:
                write_watermark(client, exp_id, self.shard, mark)


def read_pass(
    client: MlflowClient,
    experiments: Sequence[ExperimentRef],
    families: Sequence[str] | None,
    settings: RefitSettings,
    *,
    force: bool = False,
    full_check: bool = False,
    full_every_ms: int = DEFAULT_FULL_EVERY_MS,
    shard: Shard | None = None,
    clock_margin_ms: int = CLOCK_MARGIN_MS,
) -> PassReading:
    started = now_ms()  # before anything is read: runs that move later are newer than it
    deleted = deleted_digests(client, [e.experiment_id for e in experiments])
    if families:
        return PassReading(read_families(client, experiments, families), deleted=deleted)
    old = read_watermarks(client, experiments, shard)

    def needs_full(exp: ExperimentRef) -> bool:
        mark = old[exp.experiment_id]
        return force or full_check or mark is None or started - mark.full_ms > full_every_ms

    full = [e for e in experiments if needs_full(e)]
    quick = [e for e in experiments if not needs_full(e)]
    reading = PassReading(read_families(client, full) if full else [], deleted=deleted,
                          shard=shard)  # fmt: skip
    reading.marks = {e.experiment_id: Watermark(started, started) for e in full}
    if not quick:
        return reading
    marks = {e.experiment_id: old[e.experiment_id] for e in quick}
    scan = scan_changes(
        client, quick, marks, deleted,  # type: ignore[arg-type]
        settings_digest_of=lambda run: family_settings_digest(settings, run),
        comparison_settings_digest=comparison_settings_digest(settings),
        owns=(lambda e, n: True) if shard is None else shard.owns,
        clock_margin_ms=clock_margin_ms,
    )  # fmt: skip
    for exp in quick:
        names = [name for (exp_id, name) in scan.to_read if exp_id == exp.experiment_id]
        reading.found += read_changed(client, exp, names)
        reading.marks[exp.experiment_id] = Watermark(started, marks[exp.experiment_id].full_ms)
    reading.found.sort(key=lambda f: (f.experiment.name, f.experiment.experiment_id, f.name))
    checked = {e: _utc(m.read_ms) for e, m in marks.items()}  # type: ignore[union-attr]
    reading.quiet = [quiet_outcome(q, checked[q.experiment.experiment_id]) for q in scan.quiet]
    reading.quiet += [quiet_comparison(run, quick) for run in scan.quiet_comparisons]
    return reading


def family_settings_digest(settings: RefitSettings, run: Run | None) -> str:
    """The settings digest a refit of the family (fit run ``run``) writes in this pass."""

    own = family_settings(settings, run)
    return settings_digest(settings_document(own, target_params_of(run), run))


def read_changed(client: MlflowClient, exp: ExperimentRef, names: Sequence[str]) -> list[Family]:
    """The named families of one experiment: one search each, or one for the whole experiment
    when there are many."""
    if not names:
        return []
    if len(names) > READ_WHOLE_EXPERIMENT_ABOVE:
        wanted = set(names)
        return [f for f in read_families(client, [exp]) if f.name in wanted]
    return read_families(client, [exp], sorted(names))


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _count(run: Run, key: str) -> int:
    value = published_metrics(run).get(key)
    return int(value) if value is not None and math.isfinite(value) else 0


def quiet_outcome(q: QuietFamily, checked: str) -> FamilyOutcome:

    fit = published_fit(q.fit_run)
    return FamilyOutcome(
        experiment_id=q.experiment.experiment_id,
        experiment=q.experiment.name,
        family=q.name,
        status=STATUS_SKIPPED,
        fit_run_id=q.fit_run.info.run_id,
        refit_number=None if fit is None else fit.number,
        phase=None if fit is None else fit.phase,
        check=None if fit is None else fit.check,
        n_members=_count(q.fit_run, schema.METRIC_FIT_POINTS),
        n_excluded=_count(q.fit_run, schema.METRIC_FIT_EXCLUDED),
        message=f"unchanged: no member run started, ended or was deleted since the check at "
        f"{checked} (quick check)",
    )


def quiet_comparison(run: Run, experiments: Sequence[ExperimentRef]) -> FamilyOutcome:

    tags = run.data.tags
    pair = f"{tags.get(schema.TAG_COMPARE_CANDIDATE)} vs {tags.get(schema.TAG_COMPARE_BASELINE)}"
    exp = next(e for e in experiments if e.experiment_id == run.info.experiment_id)
    fit = published_fit(run)
    return FamilyOutcome(
        experiment_id=exp.experiment_id,
        experiment=exp.name,
        family=pair,
        status=STATUS_SKIPPED,
        fit_run_id=run.info.run_id,
        refit_number=None if fit is None else fit.number,
        check=tags.get(schema.TAG_COMPARE_VERDICT),
        message="unchanged since the last comparison (neither family changed; quick check)",
    )


def record_deleted_digest(
    client: MlflowClient, family: Family, outcome: FamilyOutcome, deleted: dict[FamilyKey, str]
) -> None:
    """Keep on the family's fit run the digest of its deleted runs as this pass saw them, once
    the family was read in full and brought up to date (or found unchanged)."""

    if outcome.status in (STATUS_ERROR, STATUS_SUPERSEDED) or outcome.fit_run_id is None:
        return
    current = deleted.get((family.experiment.experiment_id, family.name), "")
    known = family.fit_run
    if known is not None and known.info.run_id == outcome.fit_run_id:
        if recorded_deleted_digest(known) == current:
            return
    elif not current:
        return  # a new fit run and no deleted runs: nothing to record
    client.set_tag(outcome.fit_run_id, schema.TAG_DELETED_DIGEST, current)
