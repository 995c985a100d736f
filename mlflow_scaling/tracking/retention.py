"""Bounded fit runs: step 6 of the publishing protocol (:mod:`.fit_run`, invariant 5).

Every refit adds two params (its claim and its record), a folder ``scaling/fits/<n>-<token>/``
and one step of metrics to the family's fit run. Left alone, a family refitted every 15
minutes would hold 35,000 records a year, and every reader parses all of them. So each write
ends with :func:`collect`:

* **Orphans.** A folder whose refit never published (the pass died between claim and
  publish) is deleted once its claim is older than the grace period (:data:`ORPHAN_GRACE_MS`,
  one hour: far longer than a write takes, so a live writer's folder is never collected).
* **Roll-over.** When the run holds ``keep`` records (:data:`KEEP_RECORDS`, 20), MLflow cannot
  delete params, so the family moves to a fresh fit run of the next *generation*: it gets the
  published fit's record and folder, the metrics of the old run's records (the exponent
  history of the last ``keep`` refits), every tag but MLflow's own, and a claim of the highest
  number taken so that numbers and steps go on. It stays invisible (no ``scaling.role``) until
  all of that is written; then one ``log_batch`` gives it its tags, and the old run is
  deleted, its folders with it. Readers take the highest generation first
  (:func:`.reading.fit_run_order`). If the old run's published fit changed meanwhile (a
  writer published there during the copy), the new run is deleted instead and the next write
  tries again; a writer whose run was rolled away writes again to the new one (it checks after
  writing which run counts).

An active fit run thus holds at most ``keep`` records and published folders, and no orphan
folder older than the grace period after its next write. Deleted fit runs keep their params
in the store until ``mlflow gc``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..compat.artifact_delete import delete_folder
from . import schema
from .claims import claim_time, claim_value, highest_taken, is_active
from .published import PublishedFit, numbered_params, published_fit, published_fits
from .reading import fit_generation

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

log = logging.getLogger(__name__)

KEEP_RECORDS = 20
"""Published records (and folders) a fit run keeps before it rolls over."""
ORPHAN_GRACE_MS = 60 * 60 * 1000
"""How old an unpublished claim must be before its folder is collected (one hour)."""
METRICS_PER_BATCH = 900
"""Under MLflow's 1,000 metrics per ``log_batch``."""


@dataclass(frozen=True)
class Retention:
    """How much a fit run keeps: ``keep`` records, orphans younger than ``grace_ms``."""

    keep: int = KEEP_RECORDS
    grace_ms: int = ORPHAN_GRACE_MS

    def __post_init__(self) -> None:
        if self.keep < 1 or self.grace_ms < 0:
            raise ValueError(f"retention keep={self.keep} grace_ms={self.grace_ms}: keep >= 1 "
                             "and grace_ms >= 0 are needed")  # fmt: skip


@dataclass
class Collected:
    """What :func:`collect` did to one fit run."""

    orphans: list[str]
    """Folders of unpublished claims deleted."""
    rolled_to: str | None = None
    """The run id of the new generation, when the run rolled over."""


def needs_collect(run: Run, retention: Retention) -> bool:
    """Whether :func:`collect` has anything to look at (read from the run alone, no call)."""
    params = run.data.params
    claims = numbered_params(params, schema.PARAM_REFIT_CLAIM_PREFIX)
    records = numbered_params(params, schema.PARAM_PUBLISHED_PREFIX)
    return len(records) >= retention.keep or bool(set(claims) - set(records))


def collect(
    client: MlflowClient, run: Run, retention: Retention | None = None, now_ms: int | None = None
) -> Collected:
    """Delete the run's orphan folders past the grace period; roll it over at ``keep`` records.

    Failures are logged and leave things for the next write: retention never fails a refit.
    """
    retention = retention or Retention()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    out = Collected(orphans=[])
    if not needs_collect(run, retention):
        return out
    params = run.data.params
    claims = numbered_params(params, schema.PARAM_REFIT_CLAIM_PREFIX)
    published = {f.path for f in published_fits(run)}
    run_id = run.info.run_id
    try:
        folders = [f.path for f in client.list_artifacts(run_id, schema.ARTIFACT_FITS_DIR)]
    except Exception as exc:
        log.warning("fit run %s: cannot list %s: %s", run_id, schema.ARTIFACT_FITS_DIR, exc)
        folders = []
    for path in folders:
        if path in published:
            continue
        number, _, token = path.rsplit("/", 1)[-1].partition("-")
        claim = claims.get(int(number)) if number.isdigit() else None
        claimed = claim_time(claim) if claim and claim.startswith(f"{token}@") else 0
        if now - claimed > retention.grace_ms:
            try:
                delete_folder(client, run, path)
                out.orphans.append(path)
            except Exception as exc:
                log.warning("fit run %s: cannot delete orphan %s: %s", run.info.run_id, path, exc)
    if len(published) >= retention.keep:
        try:
            out.rolled_to = roll_over(client, run)
        except Exception as exc:  # the next write tries again
            log.warning("fit run %s: roll-over failed: %s", run.info.run_id, exc)
    return out


def roll_over(client: MlflowClient, run: Run) -> str | None:
    """Move the family to a fresh fit run of the next generation (module docstring); the new
    run's id, or None when it did not happen (nothing published, or the old run changed)."""
    from mlflow.entities import Param, RunTag

    run = client.get_run(run.info.run_id)  # as fresh as possible: its tags are copied
    current = published_fit(run)
    if current is None:
        return None
    old_id = run.info.run_id
    new = client.create_run(
        run.info.experiment_id,
        run_name=run.info.run_name,
        tags={schema.TAG_FIT_GENERATION: str(fit_generation(run) + 1)},
    )
    new_id = new.info.run_id
    try:
        _copy_folder(client, old_id, new_id, current.path)
        highest = highest_taken(run)
        params = [Param(f"{schema.PARAM_PUBLISHED_PREFIX}{current.number}", current.to_param())]
        if highest > current.number:  # numbers and metric steps go on past every claim
            params.append(Param(f"{schema.PARAM_REFIT_CLAIM_PREFIX}{highest}",
                                claim_value("rollover", int(time.time() * 1000))))  # fmt: skip
        client.log_batch(new_id, params=params)
        history = _history_metrics(run)
        for i in range(0, len(history), METRICS_PER_BATCH):
            client.log_batch(new_id, metrics=history[i : i + METRICS_PER_BATCH])
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        tags[schema.TAG_FIT_GENERATION] = str(fit_generation(run) + 1)
        client.log_batch(new_id, tags=[RunTag(k, v) for k, v in tags.items()])  # now visible
        client.set_terminated(new_id, "FINISHED")
        if published_fit(client.get_run(old_id)) != current and is_active(client, old_id):
            client.delete_run(new_id)  # a writer published on the old run meanwhile
            return None
    except BaseException:
        client.delete_run(new_id)
        raise
    client.delete_run(old_id)
    try:
        delete_folder(client, run, schema.ARTIFACT_FITS_DIR)
    except Exception as exc:  # the store keeps them until `mlflow gc`
        log.warning("fit run %s: folders of the rolled-over run kept: %s", old_id, exc)
    return new_id


def _copy_folder(client: MlflowClient, src_id: str, dst_id: str, path: str) -> None:
    with tempfile.TemporaryDirectory(prefix="mlflow-scaling-") as tmp:
        local = client.download_artifacts(src_id, path, tmp)
        client.log_artifacts(dst_id, local, artifact_path=path)


def _history_metrics(run: Run) -> list:
    """The metrics of every record of ``run`` at its step (the history a new run keeps)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    fits: list[PublishedFit] = published_fits(run)
    return [Metric(k, float(v), now, f.number) for f in fits for k, v in f.metrics.items()]
