"""The fit run of a family: found by its tags, created once, written so that no interleaving
of passes can publish a fit that does not match its own digests.

**Which run.** Each family has one fit run per experiment, tagged ``scaling.role = fit`` and
``scaling.family``. Two refit passes may start together and both find none; then both create
one. The rule that settles it: of all active fit runs of a family, the one of the highest
generation (:mod:`.retention` raises it when it rolls a full run over), then the oldest (start
time, then run id) is *the* fit run, and every other one is deleted by whoever sees it. The oldest
is the oldest in every view that contains it, so it is never deleted, and every pass ends by
checking that it wrote to it (writing again if a run older than its own appeared meanwhile).

**Publishing protocol.** MLflow has no lock and no compare-and-swap on tags, but a param can
never change: logging ``key = other value`` fails (the SQL stores enforce it with the params
table's primary key). A write of one refit goes:

1. *claim* a refit number: n = 1 + the highest number claimed or published so far; log the
   param ``scaling.refit_claim.<n>`` = a token unique to this write and the claim time, then
   read the run back (verify after write). If the param holds another value, another writer
   has n: take the next. So every write has its own number, and the metrics' steps never
   collide.
2. *compare*: if the run already holds a record read later than this write's runs were read,
   the write is dropped here (nothing more is written; the pass says "superseded").
3. *artifacts*: ``fit.json`` (which names n, the member runs and the input digest),
   ``fit.png``, ``report.html``, ``predictions.csv``, ``curves.json`` go to the folder
   ``scaling/fits/<n>-<token>/``, which no other write touches: passes with other inputs or
   settings never mix files.
4. *publish*: one ``log_batch`` with the param ``scaling.published.<n>`` (a JSON record naming
   the folder, the input and settings digests, the read time, phase, check and fitted
   values), the metrics at step n, the mirror tags and an empty ``scaling.fit_error``; then
   the run is read back and the record verified.
5. *mirror*: tags cannot be swapped atomically, so a slow writer may overwrite a newer
   writer's mirror tags; every writer (and every pass that skips the family) re-reads the run
   and rewrites the mirrors from the published fit until they agree.
6. *retain* (:mod:`.retention`): keep the last ``keep`` records' folders, delete the folders
   of claims that never published once older than the grace period, and roll the family over
   to a fresh fit run when the records pass ``keep``.

**Invariants** (the one statement of them; ``docs/architecture.md`` points here):

1. *The published fit is the record with the latest read time, then the highest number*
   (:func:`.published.current_record`). The read time is when the pass started reading the
   family's runs (``Family.read_ms``, the job's clock). A pass therefore never replaces a fit
   made from a later reading of the runs, whatever order the passes claim, publish or finish
   in; step 2 only saves the work of a write that could not become the fit. (The jobs' clocks
   must agree: one running S ahead holds its fit against the others for up to S.)
2. Each refit has its own number and its own folder; a record and the files it names always
   belong together (params never change).
3. The published ``fit.json`` lists exactly the members its input digest covers; a pass skips
   the family only when that digest and the settings digest equal what it reads now and no
   ``scaling.fit_error`` is set.
4. An experiment's watermark (:mod:`..jobs.changes`) moves past a family's change only when
   the pass published a fit of it, found it unchanged, found a fit of a later reading
   published, or wrote the family's error tag and read it back: an error that could not be
   recorded keeps the old watermark.
5. After each write (and each full read that skips the family) an active fit run holds at
   most ``keep`` records and published folders and no unpublished folder older than the grace
   period; every write ends the run's status (``FINISHED`` once published or dropped,
   ``FAILED`` after an error, ``KILLED`` when the pass was interrupted).
6. *Quick check* (:mod:`..jobs.changes`): a pass skips a family without reading its members
   only when none of the signs of change listed there appears (a run started or ended after
   the watermark less the clock margin, a re-tag, a changed deleted-runs digest, a refit
   error, a missing or duplicate fit run or record, mirrors that disagree, other settings, a
   declared comparison out of date). What it cannot see (edits by hand to runs that had
   ended, a fit run deleted by hand) waits at most ``full_every_ms`` for the next full check,
   which reads every member run.

Readers never look at the mirrors to find files: :mod:`.published` reads the record. A pass
that dies before step 4 leaves the published fit as it was (its claim is a gap in the
numbers, its folder an orphan that step 6 of a later write collects); one that dies between
4 and 5 leaves mirrors that the next pass repairs.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import schema
from .claims import (  # noqa: F401  (is_active re-exported: the job and tests use it here)
    claim_value,
    highest_taken,
    is_active,
)
from .published import PublishedFit, published_fit
from .reading import ExperimentRef, fit_run_order, search_all_runs
from .retention import Retention, collect

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

log = logging.getLogger(__name__)

RUN_NAME_PREFIX = "scaling fit: "
MAX_RUN_NAME = 250
MAX_TAG_VALUE = 5000
MAX_CLAIM_ATTEMPTS = 20
MIRROR_ROUNDS = 4

StepHook = Callable[[str, int], None]
"""Called after each step of a write with the step's name and the refit number (tests use
it to drive two writers through a chosen interleaving)."""


def fit_run_filter(family: str) -> str:
    return f"{schema.family_filter(family)} and tags.`{schema.TAG_ROLE}` = '{schema.ROLE_FIT}'"


def fit_run_name(family: str) -> str:
    return (RUN_NAME_PREFIX + family)[:MAX_RUN_NAME]


def find_fit_runs(client: MlflowClient, experiment_id: str, family: str) -> list[Run]:
    """Active fit runs of the family, the one that counts first."""
    runs = search_all_runs(client, [experiment_id], fit_run_filter(family))
    # The server matches the family filter; compare exactly here as well (LIKE-free, but a
    # store could fold case or trailing spaces).
    runs = [r for r in runs if r.data.tags.get(schema.TAG_FAMILY) == family]
    return sorted(runs, key=fit_run_order)


def delete_duplicates(client: MlflowClient, runs: Sequence[Run]) -> list[str]:
    """Delete every run but the first (already sorted by :func:`fit_run_order`)."""
    deleted = []
    for run in runs[1:]:
        try:
            client.delete_run(run.info.run_id)
            deleted.append(run.info.run_id)
        except Exception as exc:  # another pass deleted it first, or it is gone: fine
            log.debug("could not delete duplicate fit run %s: %s", run.info.run_id, exc)
    return deleted


def ensure_fit_run(
    client: MlflowClient, experiment: ExperimentRef, family: str, known: Sequence[Run] = ()
) -> Run:
    """The family's fit run: the oldest of ``known`` (sorted), else a new one; duplicates go.

    Right after a race the run returned may lose to an older one that was not visible yet
    (start times come from the clients); callers check again after writing
    (:func:`find_fit_runs`) and write to the older one, as the refit job does.
    """
    runs = sorted(known, key=fit_run_order)
    for _ in range(3):
        if runs:
            delete_duplicates(client, runs)
            return runs[0]
        client.create_run(
            experiment.experiment_id,
            run_name=fit_run_name(family),
            tags={schema.TAG_FAMILY: family, schema.TAG_ROLE: schema.ROLE_FIT},
        )
        runs = find_fit_runs(client, experiment.experiment_id, family)
    raise RuntimeError(
        f"fit run of family {family!r} in experiment {experiment.name!r} vanished right after "
        "being created three times (is another process deleting runs?)"
    )


def refit_number_of(run: Run) -> int:
    """The number of the run's published fit (0 when nothing is published)."""
    fit = published_fit(run)
    return 0 if fit is None else fit.number


def claim_refit_number(client: MlflowClient, run: Run, token: str) -> int:
    """Take the next free refit number on ``run`` for the write ``token`` (step 1)."""
    from mlflow.exceptions import MlflowException

    run_id = run.info.run_id
    n = highest_taken(run) + 1
    value = claim_value(token, int(time.time() * 1000))
    for _ in range(MAX_CLAIM_ATTEMPTS):
        key = f"{schema.PARAM_REFIT_CLAIM_PREFIX}{n}"
        try:
            client.log_param(run_id, key, value)
        except MlflowException as exc:
            if exc.error_code != "INVALID_PARAMETER_VALUE":  # not "taken": a real error
                raise
        run = client.get_run(run_id)
        if run.data.params.get(key) == value:
            return n
        n = max(n, highest_taken(run)) + 1
    raise RuntimeError(
        f"fit run {run_id}: no free refit number after {MAX_CLAIM_ATTEMPTS} claims "
        "(are many passes writing this family at once?)"
    )


@dataclass(frozen=True)
class Superseded:
    """A write that is not the published fit: a record read later exists (invariant 1).

    ``published`` says whether the write got as far as publishing its own record (it was
    overtaken after step 2) or was dropped at step 2.
    """

    number: int
    by: PublishedFit
    published: bool

    def message(self, read_ms: int) -> str:
        what = f"published as refit {self.number} but" if self.published else "dropped:"
        return (
            f"superseded: {what} refit {self.by.number} read the runs later "
            f"({utc_text(self.by.read_ms)}, this pass at {utc_text(read_ms)}) and stays the fit"
        )


def utc_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _read_later(run: Run, read_ms: int) -> PublishedFit | None:
    """The run's published fit when it was read later than ``read_ms`` (else None)."""
    fit = published_fit(run)
    return fit if fit is not None and fit.read_ms > read_ms else None


def write_fit(
    client: MlflowClient,
    run: Run,
    *,
    make_artifacts: Callable[[int, Path], None],
    record: PublishedFit,
    on_step: StepHook | None = None,
    retention: Retention | None = None,
) -> PublishedFit | Superseded:
    """Write one refit to ``run`` by the publishing protocol (module docstring).

    ``make_artifacts(n, folder)`` writes the files of refit ``n`` into ``folder``; ``record``
    carries everything of the published record but the number and folder, which are filled
    in here. Returns the record as published, or :class:`Superseded` when a record read later
    than ``record.read_ms`` is the fit. ``retention`` (default: keep 20 records, collect
    orphans after an hour) bounds the run (step 6). The run always ends with a final status.
    """
    run_id = run.info.run_id
    token = uuid.uuid4().hex[:12]
    step = (lambda name, n: None) if on_step is None else on_step
    final = "FAILED"
    try:
        n = claim_refit_number(client, run, token)
        step("claimed", n)
        later = _read_later(client.get_run(run_id), record.read_ms)
        if later is not None:  # step 2: this write could never be the fit
            final = "FINISHED"
            return Superseded(n, later, published=False)
        folder = f"{schema.ARTIFACT_FITS_DIR}/{n}-{token}"
        with tempfile.TemporaryDirectory(prefix="mlflow-scaling-") as tmp:
            make_artifacts(n, Path(tmp))
            client.log_artifacts(run_id, tmp, artifact_path=folder)
        step("artifacts", n)
        published = PublishedFit(**{**record.__dict__, "number": n, "path": folder})
        _publish(client, run_id, published)
        final = "FINISHED"
        step("published", n)
        after = client.get_run(run_id)  # one fresh view for the mirrors, the verdict, step 6
        sync_mirrors(client, run_id, after)
        step("mirrored", n)
        later = _read_later(after, published.read_ms)
        collect(client, after, retention)
        return published if later is None else Superseded(n, later, published=True)
    except BaseException as exc:
        if not isinstance(exc, Exception):
            final = "KILLED"  # interrupted (Ctrl-C, SystemExit): say so on the run
        raise
    finally:
        _quietly(client.set_terminated, run_id, final)


def _publish(client: MlflowClient, run_id: str, published: PublishedFit) -> None:
    """Step 4: the record, the metrics at step n and the mirror tags in one batch, read back."""
    from mlflow.entities import Metric, Param, RunTag

    n = published.number
    key, value = f"{schema.PARAM_PUBLISHED_PREFIX}{n}", published.to_param()
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        params=[Param(key, value)],
        metrics=[Metric(k, float(v), now, n) for k, v in published.metrics.items()],
        tags=[
            *(RunTag(k, v) for k, v in published.mirror_tags().items()),
            RunTag(schema.TAG_FIT_ERROR, ""),
        ],
    )
    if client.get_run(run_id).data.params.get(key) != value:
        raise RuntimeError(f"fit run {run_id}: the record of refit {n} did not read back")


def mirrors_agree(run: Run, fit: PublishedFit) -> bool:
    tags = run.data.tags
    return all(tags.get(k) == v for k, v in fit.mirror_tags().items())


def sync_mirrors(client: MlflowClient, run_id: str, run: Run | None = None) -> None:
    """Make the mirror tags (and latest metrics) repeat the published fit (step 4).

    Reads the run (unless ``run`` is given, as fresh as the caller's view), compares and writes
    only when they differ, then reads again; a few rounds settle any interleaving of writers.
    """
    from mlflow.entities import Metric, RunTag

    for _ in range(MIRROR_ROUNDS):
        run = run if run is not None else client.get_run(run_id)
        fit = published_fit(run)
        if fit is None or mirrors_agree(run, fit):
            return
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, fit.number) for k, v in fit.metrics.items()],
            tags=[RunTag(k, v) for k, v in fit.mirror_tags().items()],
        )
        run = None
    log.warning("fit run %s: mirror tags still changing after %d rounds", run_id, MIRROR_ROUNDS)


def mark_error(client: MlflowClient, run_id: str, message: str) -> bool:
    """Say on the fit run that the last refit failed, and why; True once the tag reads back.

    The error tag stops the next pass from skipping the family, whatever the digests say, so
    only a tag that read back lets the pass move its watermark past the family (invariant 4).
    Failures are logged, not raised: the pass goes on with the other families.
    """
    value = message[:MAX_TAG_VALUE] or "error"
    try:
        client.set_tag(run_id, schema.TAG_FIT_ERROR, value)
        recorded = client.get_run(run_id).data.tags.get(schema.TAG_FIT_ERROR) == value
    except Exception as exc:
        log.warning("fit run %s: could not record the refit error: %s", run_id, exc)
        recorded = False
    _quietly(client.set_terminated, run_id, "FAILED")
    return recorded


def _quietly(fn: Callable, *args) -> None:
    try:
        fn(*args)
    except Exception as exc:
        log.debug("%s%r failed: %s", getattr(fn, "__name__", fn), args, exc)
