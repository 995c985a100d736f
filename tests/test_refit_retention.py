"""Bounded fit runs (``tracking/retention.py``): the protocol's writes driven directly.

Each cycle is a pass that claims a refit number, uploads its folder and dies before publishing,
then a pass that publishes. With a grace period of 0 every orphan is past it at the next write;
with the default grace an orphan of a moment ago stays. After 100 cycles the family's one
active fit run holds at most ``keep`` records and no orphan folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _refit_support import new_experiment
from mlflow import MlflowClient
from mlflow.entities import ViewType

from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.fit_run import ensure_fit_run, find_fit_runs, write_fit
from mlflow_scaling.tracking.published import PublishedFit, published_fit, published_fits
from mlflow_scaling.tracking.reading import ExperimentRef, fit_generation
from mlflow_scaling.tracking.retention import KEEP_RECORDS, Retention, collect

FAMILY = "kept"
CYCLES = 100


class PassDied(RuntimeError):
    """What a test pass raises where a real one would be killed."""


def _files(n: int, folder: Path) -> None:
    (folder / "fit.json").write_text(f'{{"refit_number": {n}}}')


def _record(i: int) -> PublishedFit:
    return PublishedFit(0, "", f"in{i}", "settings", read_ms=int(time.time() * 1000),
                        metrics={schema.fit_metric("alpha"): 0.3 + i / 1000})  # fmt: skip


def _die_at(where: str, exc: BaseException):
    def hook(step: str, number: int) -> None:
        if step == where:
            raise exc

    return hook


def _folders(client: MlflowClient, run_id: str) -> set[str]:
    return {f.path for f in client.list_artifacts(run_id, schema.ARTIFACT_FITS_DIR)}


def _setup(uri: str):
    client = MlflowClient(uri)
    exp_id, name = new_experiment(client, "retain")
    ensure_fit_run(client, ExperimentRef(exp_id, name), FAMILY)
    return client, exp_id


def _the_fit_run(client: MlflowClient, exp_id: str):
    (run,) = find_fit_runs(client, exp_id, FAMILY)
    return run


def test_100_cycles_leave_at_most_keep_records_and_no_orphans(mlflow_server):
    client, exp_id = _setup(mlflow_server)
    no_grace = Retention(grace_ms=0)
    started = time.monotonic()
    for i in range(CYCLES):
        run = _the_fit_run(client, exp_id)
        with pytest.raises(PassDied):
            write_fit(client, run, make_artifacts=_files, record=_record(i),
                      on_step=_die_at("artifacts", PassDied("killed")))  # fmt: skip
        assert client.get_run(run.info.run_id).info.status == "FAILED"
        write_fit(client, _the_fit_run(client, exp_id), make_artifacts=_files,
                  record=_record(i), retention=no_grace)  # fmt: skip
    seconds = time.monotonic() - started

    run = _the_fit_run(client, exp_id)
    records = published_fits(run)
    assert 1 <= len(records) <= KEEP_RECORDS
    fit = published_fit(run)
    assert (fit.number, fit.input_digest) == (2 * CYCLES, f"in{CYCLES - 1}")
    assert _folders(client, run.info.run_id) == {r.path for r in records}  # no orphan
    assert run.info.status == "FINISHED"
    # Rolled over every KEEP_RECORDS records; the old generations are deleted, folders too.
    generation = fit_generation(run)
    assert generation == (CYCLES - 1) // (KEEP_RECORDS - 1)
    everything = client.search_runs([exp_id], run_view_type=ViewType.ALL, max_results=1000)
    old = [r for r in everything if r.info.run_id != run.info.run_id]
    assert len(old) == generation and all(r.info.lifecycle_stage == "deleted" for r in old)
    assert all(_folders(client, r.info.run_id) == set() for r in old)
    # The exponent history goes on (the last generation's records and this one's), bounded.
    history = client.get_metric_history(run.info.run_id, schema.fit_metric("alpha"))
    steps = {m.step for m in history}
    assert {r.number for r in records} <= steps and len(steps) <= 2 * KEEP_RECORDS
    print(f"\n{CYCLES} cycles in {seconds:.1f} s: {len(records)} records, generation {generation}")


def test_orphans_stay_through_the_grace_period_then_go(mlflow_server):
    client, exp_id = _setup(mlflow_server)
    run = _the_fit_run(client, exp_id)
    with pytest.raises(PassDied):
        write_fit(client, run, make_artifacts=_files, record=_record(0),
                  on_step=_die_at("artifacts", PassDied("killed")))  # fmt: skip
    write_fit(client, run, make_artifacts=_files, record=_record(1))  # default grace: one hour
    run = client.get_run(run.info.run_id)
    (record,) = published_fits(run)
    orphan = f"{schema.ARTIFACT_FITS_DIR}/1-"
    assert [p.startswith(orphan) for p in sorted(_folders(client, run.info.run_id))] == [
        True, False]  # fmt: skip
    hour_later = int(time.time() * 1000) + Retention().grace_ms + 1
    collected = collect(client, run, now_ms=hour_later)
    assert [p.startswith(orphan) for p in collected.orphans] == [True]
    assert _folders(client, run.info.run_id) == {record.path}


def test_an_interrupted_write_ends_the_run_killed(mlflow_server):
    client, exp_id = _setup(mlflow_server)
    run = _the_fit_run(client, exp_id)
    with pytest.raises(KeyboardInterrupt):
        write_fit(client, run, make_artifacts=_files, record=_record(0),
                  on_step=_die_at("claimed", KeyboardInterrupt()))  # fmt: skip
    assert client.get_run(run.info.run_id).info.status == "KILLED"
    write_fit(client, run, make_artifacts=_files, record=_record(1))
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
