"""The fit run of a family: found by its tags, created once, written in a crash-safe order.

Each family has one fit run per experiment, tagged ``scaling.role = fit`` and
``scaling.family``. Two refit passes may start together and both find none; then both create
one. The rule that settles it: of all active fit runs of a family, the oldest (start time,
then run id) is *the* fit run, and every other one is deleted by whoever sees it. The oldest
is the oldest in every view that contains it, so it is never deleted, and every pass ends by
checking that it wrote to it (writing again if a run older than its own appeared meanwhile).

Writing order: metrics and tags (with the digests blanked), then the artifacts, then the
status (FINISHED, with the end time of this refit), and the digests last. A pass that dies
midway leaves blank digests, so the next pass fits again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import schema
from .reading import ExperimentRef, fit_run_order, search_all_runs

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

log = logging.getLogger(__name__)

RUN_NAME_PREFIX = "scaling fit: "
MAX_RUN_NAME = 250
MAX_TAG_VALUE = 5000


def fit_run_filter(family: str) -> str:
    return f"{schema.family_filter(family)} and tags.`{schema.TAG_ROLE}` = '{schema.ROLE_FIT}'"


def fit_run_name(family: str) -> str:
    return (RUN_NAME_PREFIX + family)[:MAX_RUN_NAME]


def find_fit_runs(client: MlflowClient, experiment_id: str, family: str) -> list[Run]:
    """Active fit runs of the family, the one that counts first."""
    runs = search_all_runs(client, [experiment_id], fit_run_filter(family))
    # The server matches the family filter; compare exactly here as well (LIKE-free, but a
    # store could fold case or trailing spaces).
    runs = [r for r in runs if r.data.tags.get(schema.TAG_FAMILY, "").strip() == family]
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
    """How many refits wrote ``run`` so far (0 for a new run or an unreadable tag)."""
    try:
        return max(0, int(run.data.tags.get(schema.TAG_REFIT_NUMBER, "0")))
    except ValueError:
        return 0


def write_fit(
    client: MlflowClient,
    run: Run,
    *,
    step: int,
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts_dir: Path,
    final_tags: Mapping[str, str],
) -> None:
    """Write one refit to ``run`` in the crash-safe order (module docstring)."""
    from mlflow.entities import Metric, RunTag

    run_id = run.info.run_id
    now = int(time.time() * 1000)
    # Blank digests first: if this pass dies before the end, the next one fits again.
    pending = {k: "" for k in final_tags}
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()],
        tags=[RunTag(k, str(v)[:MAX_TAG_VALUE]) for k, v in {**tags, **pending}.items()],
    )
    if schema.TAG_FIT_ERROR in run.data.tags and schema.TAG_FIT_ERROR not in tags:
        _quietly(client.delete_tag, run_id, schema.TAG_FIT_ERROR)
    client.log_artifacts(run_id, str(artifacts_dir), artifact_path=schema.ARTIFACT_DIR)
    client.set_terminated(run_id, "FINISHED")
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in final_tags.items()])


def mark_error(client: MlflowClient, run_id: str, message: str) -> None:
    """Best effort: say on the fit run that the last refit failed, and why."""
    _quietly(client.set_tag, run_id, schema.TAG_FIT_ERROR, message[:MAX_TAG_VALUE])
    _quietly(client.set_terminated, run_id, "FAILED")


def _quietly(fn: Callable, *args) -> None:
    try:
        fn(*args)
    except Exception as exc:
        log.debug("%s%r failed: %s", getattr(fn, "__name__", fn), args, exc)


def is_active(client: MlflowClient, run_id: str) -> bool:
    try:
        return client.get_run(run_id).info.lifecycle_stage == "active"
    except Exception:
        return False
