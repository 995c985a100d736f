"""Which families changed since the last pass: the refit job's quick no-change check.

(How it fits the protocol, and what it guarantees, is invariant 6 of :mod:`..tracking.fit_run`.)

Reading every member run of 1,000 families over REST takes about half a minute; a pass that
finds nothing changed should not pay for it. So each completed pass leaves a *watermark* on
every experiment it covered, the experiment tag ``scaling.refit_checked`` (``...checked.<i>of<n>``
for a shard), a JSON record::

    {"read_ms": T, "full_ms": F}

T is when that pass started reading (the job's clock, milliseconds); F is when the last *full*
check started (a pass that read every member run). The next pass reads instead:

1. the fit runs (one paged search): each has the published record of its last refit, whose
   settings digest is compared with the settings of this pass;
2. the member runs that started or ended after T less the clock margin (two searches on
   ``attributes.start_time`` and ``attributes.end_time``; the margin, ``refit --clock-margin``,
   10 minutes by default, absorbs training machines whose clocks run behind the job's: a run
   whose machine is further behind is seen by the next full check);
3. the families our commands re-tagged (``families --assign``), recorded on the experiment
   (:mod:`..tracking.touched`) later than T less the clock margin;
4. the deleted runs that carry ``scaling.family``: per family, the digest of their run ids is
   kept on the fit run (tag ``scaling.deleted_digest``), so a member deleted or restored since
   shows up as a different digest.

A family is then read in full, and compared by its input digest as before, when one of its runs
is in 2 or 3; its deleted digest differs; its fit run has a refit error, no published record, a
duplicate, or mirror tags that disagree with its record; its settings digest differs; or it
declares a comparison whose run is missing, differently set, or whose baseline is read. Every
other family is skipped without reading its members.

What the quick check cannot see: a metric logged to, or a tag changed by hand (in the MLflow
UI, or by a script of one's own) on, a run that had ended before the last pass, and a fit run
deleted by hand. The *full* check sees them (``refit --full-check`` after such an edit). It
runs when
the experiment's last full check is older than ``full_every_ms`` (``refit --full-check-every``,
24 hours by default), with ``refit --full-check`` or ``--force``, for a pass restricted to named
families, and for an experiment with no watermark yet (its first pass).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..tracking import schema
from ..tracking.fit_run import mirrors_agree
from ..tracking.published import published_fit
from ..tracking.reading import (
    ALL_FAMILIES_FILTER,
    FIT_RUNS_FILTER,
    ExperimentRef,
    FamilyKey,
    family_of,
    fit_run_order,
    search_all_runs,
)
from ..tracking.touched import touched_families

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from .shards import Shard

CLOCK_MARGIN_MS = 10 * 60 * 1000
"""How far behind the job's clock a training machine's clock may run, by default (10 minutes;
``refit --clock-margin``)."""
DEFAULT_FULL_CHECK_HOURS = 24.0
COMPARE_RUNS_FILTER = f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_COMPARE}'"


def now_ms() -> int:
    return int(time.time() * 1000)


# --- the watermark --------------------------------------------------------------------------


@dataclass(frozen=True)
class Watermark:
    """When the last completed pass started reading (``read_ms``) and when the last full
    check did (``full_ms``), both on the job's clock in milliseconds."""

    read_ms: int
    full_ms: int

    def to_tag(self) -> str:
        return json.dumps({"read_ms": self.read_ms, "full_ms": self.full_ms}, sort_keys=True)

    @classmethod
    def from_tag(cls, text: str | None) -> Watermark | None:
        """The watermark in a tag value; None when absent or unreadable (then: a full check)."""
        try:
            doc = json.loads(text or "")
            read_ms, full_ms = doc["read_ms"], doc["full_ms"]
        except (ValueError, TypeError, KeyError):
            return None
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (read_ms, full_ms)):
            return None
        return cls(read_ms, full_ms)


def watermark_key(shard: Shard | None) -> str:
    """The experiment tag of a pass over every family, or over one shard of them."""
    key = schema.TAG_REFIT_WATERMARK
    return key if shard is None else f"{key}.{shard.index}of{shard.count}"


def read_watermarks(
    client: MlflowClient, experiments: Sequence[ExperimentRef], shard: Shard | None
) -> dict[str, Watermark | None]:
    key = watermark_key(shard)
    return {
        e.experiment_id: Watermark.from_tag(client.get_experiment(e.experiment_id).tags.get(key))
        for e in experiments
    }


def write_watermark(
    client: MlflowClient, experiment_id: str, shard: Shard | None, mark: Watermark
) -> None:
    client.set_experiment_tag(experiment_id, watermark_key(shard), mark.to_tag())


# --- deleted runs ---------------------------------------------------------------------------


def deleted_digests(client: MlflowClient, experiment_ids: Sequence[str]) -> dict[FamilyKey, str]:
    """Per family, a digest of the ids of its deleted runs (members only: fit and comparison
    runs, which carry ``scaling.role``, are left out). Families without any are absent."""
    ids: dict[FamilyKey, list[str]] = {}
    for run in search_all_runs(client, experiment_ids, ALL_FAMILIES_FILTER, deleted=True):
        name = family_of(run)
        if name is None or run.data.tags.get(schema.TAG_ROLE):
            continue
        ids.setdefault((run.info.experiment_id, name), []).append(run.info.run_id)
    return {key: _ids_digest(v) for key, v in ids.items()}


def _ids_digest(run_ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(run_ids)).encode()).hexdigest()


def recorded_deleted_digest(run: Run | None) -> str:
    return "" if run is None else run.data.tags.get(schema.TAG_DELETED_DIGEST, "")


# --- the scan -------------------------------------------------------------------------------


@dataclass
class QuietFamily:
    """A family the quick check skips: its fit run (the one that counts) and its record."""

    experiment: ExperimentRef
    name: str
    fit_run: Run


@dataclass
class ChangeScan:
    """What the quick check found in the experiments that have a watermark."""

    to_read: dict[FamilyKey, str] = field(default_factory=dict)
    """Families to read in full, each with the first reason found."""
    quiet: list[QuietFamily] = field(default_factory=list)
    quiet_comparisons: list[Run] = field(default_factory=list)
    """Comparison runs of quiet families whose settings are unchanged."""


def scan_changes(
    client: MlflowClient,
    experiments: Sequence[ExperimentRef],
    marks: dict[str, Watermark],
    deleted: dict[FamilyKey, str],
    *,
    settings_digest_of: Callable[[Run], str],
    comparison_settings_digest: str,
    owns: Callable[[str, str], bool] = lambda exp_id, name: True,
    clock_margin_ms: int = CLOCK_MARGIN_MS,
) -> ChangeScan:
    """Sort the families of ``experiments`` (each with its watermark in ``marks``) into those
    to read and those unchanged. ``settings_digest_of(fit_run)`` is the settings digest this
    pass would write for that family (it may raise: the family is then read, and fails there).
    ``owns`` keeps a shard's families; ``clock_margin_ms`` is subtracted from each watermark."""
    by_id = {e.experiment_id: e for e in experiments}
    ids = list(by_id)
    scan = ChangeScan()

    def flag(key: FamilyKey, reason: str) -> None:
        if owns(*key):
            scan.to_read.setdefault(key, reason)

    fit_runs: dict[FamilyKey, list[Run]] = {}
    for run in search_all_runs(client, ids, FIT_RUNS_FILTER):
        name = family_of(run)
        if name is not None and owns(run.info.experiment_id, name):
            fit_runs.setdefault((run.info.experiment_id, name), []).append(run)

    for attribute, run in moved_runs(client, marks, clock_margin_ms):  # 2: runs that moved
        name = family_of(run)
        if name is not None and not run.data.tags.get(schema.TAG_ROLE):
            flag((run.info.experiment_id, name), f"a member run {attribute} since the last check")
    for exp_id, mark in marks.items():  # 3: families our commands re-tagged
        tags = client.get_experiment(exp_id).tags
        for name, at in touched_families(tags).items():
            if at > mark.read_ms - clock_margin_ms:
                flag((exp_id, name), "its runs were re-tagged (families --assign) since the check")

    for key, runs in fit_runs.items():
        runs.sort(key=fit_run_order)
        reason = _fit_run_reason(runs, deleted.get(key, ""), settings_digest_of)
        if reason:
            flag(key, reason)

    _scan_comparisons(client, ids, fit_runs, scan, flag, comparison_settings_digest)

    for key, runs in sorted(fit_runs.items()):
        if key not in scan.to_read:
            scan.quiet.append(QuietFamily(by_id[key[0]], key[1], runs[0]))
    return scan


def _scan_comparisons(
    client: MlflowClient,
    ids: list[str],
    fit_runs: dict[FamilyKey, list[Run]],
    scan: ChangeScan,
    flag: Callable[[FamilyKey, str], None],
    comparison_settings_digest: str,
) -> None:
    """Flag the families whose declared comparison is out of date (its baseline is read, its
    run is missing or has other settings); keep the up-to-date comparison runs as quiet."""
    compare_runs = _compare_runs(client, ids)
    for (exp_id, name), runs in fit_runs.items():
        baseline = runs[0].data.tags.get(schema.TAG_COMPARE_TO, "").strip()
        if not baseline:
            continue
        run = compare_runs.get((exp_id, name, baseline))
        if (exp_id, baseline) in scan.to_read:
            flag((exp_id, name), f"its baseline {baseline!r} is read")
        elif run is None:
            flag((exp_id, name), f"no comparison run with {baseline!r} yet")
        elif (fit := published_fit(run)) is None or fit.settings_digest != (
            comparison_settings_digest
        ):
            flag((exp_id, name), f"the comparison with {baseline!r} has other settings")
        elif (exp_id, name) not in scan.to_read:
            scan.quiet_comparisons.append(run)


def moved_runs(
    client: MlflowClient, marks: dict[str, Watermark], clock_margin_ms: int = CLOCK_MARGIN_MS
) -> Iterable[tuple[str, Run]]:
    """("started" or "ended", run) for each family-tagged run of the experiments in ``marks``
    that started or ended after its experiment's watermark less the clock margin: two searches
    over all the experiments (from the oldest watermark), then each run against its own."""
    if not marks:
        return
    since = {exp_id: mark.read_ms - clock_margin_ms for exp_id, mark in marks.items()}
    for attribute, verb in (("start_time", "started"), ("end_time", "ended")):
        recent = f"{ALL_FAMILIES_FILTER} and attributes.{attribute} > {min(since.values())}"
        for run in search_all_runs(client, list(marks), recent):
            if (getattr(run.info, attribute) or 0) > since[run.info.experiment_id]:
                yield verb, run


def _fit_run_reason(
    runs: Sequence[Run], deleted: str, settings_digest_of: Callable[[Run], str]
) -> str | None:
    """Why the family must be read although none of its runs moved (None: it need not be)."""
    run = runs[0]
    fit = published_fit(run)
    if len(runs) > 1:
        return "it has duplicate fit runs"
    if run.data.tags.get(schema.TAG_FIT_ERROR):
        return "its last refit failed"
    if fit is None:
        return "its fit run has no published fit"
    if not mirrors_agree(run, fit):
        return "its fit run's tags disagree with its published fit"
    if recorded_deleted_digest(run) != deleted:
        return "member runs were deleted or restored"
    try:
        settings = settings_digest_of(run)
    except Exception as exc:  # a bad tag: reading the family reports it as its error
        return f"its settings cannot be read ({type(exc).__name__})"
    if settings != fit.settings_digest:
        return "the fit settings changed"
    return None


def _compare_runs(client: MlflowClient, ids: Sequence[str]) -> dict[tuple[str, str, str], Run]:
    """The comparison run that counts (oldest) per (experiment, candidate, baseline) whose
    baseline is in the candidate's experiment (the ones ``scaling.compare_to`` declares)."""
    found: dict[tuple[str, str, str], Run] = {}
    for run in sorted(search_all_runs(client, ids, COMPARE_RUNS_FILTER), key=fit_run_order):
        tags = run.data.tags
        exp_id = run.info.experiment_id
        if tags.get(schema.TAG_COMPARE_BASELINE_EXPERIMENT, exp_id) != exp_id:
            continue
        key = (exp_id, tags.get(schema.TAG_COMPARE_CANDIDATE, ""),
               tags.get(schema.TAG_COMPARE_BASELINE, ""))  # fmt: skip
        found.setdefault(key, run)
    return found
