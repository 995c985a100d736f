"""The refit job against an MLflow server whose backend store is PostgreSQL, as teams run it.

Needs a PostgreSQL server: ``eval "$(scripts/ci_postgres.sh)"`` starts one on loopback and sets
``MLFLOW_SCALING_TEST_POSTGRES_URI`` (CI does this). Without the variable the test is skipped
(under ``CI=true`` it fails).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from _ci import skip_or_fail
from _refit_support import (
    RunSpec,
    call_cli,
    fit_json,
    fit_runs,
    log_runs,
    new_experiment,
    race_claims,
    synthetic_family,
)
from conftest import MlflowServer
from mlflow import MlflowClient

from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.refit import refit_pass
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.fit_run import ensure_fit_run
from mlflow_scaling.tracking.reading import ExperimentRef

PG_URI = os.environ.get("MLFLOW_SCALING_TEST_POSTGRES_URI", "")


@pytest.fixture(scope="module", autouse=True)
def _needs_postgres() -> None:
    if not PG_URI:  # CI=true starts PostgreSQL first; a missing one fails there
        skip_or_fail(
            'MLFLOW_SCALING_TEST_POSTGRES_URI is not set; run `eval "$(scripts/ci_postgres.sh)"` '
            "to start PostgreSQL and test the refit against a PostgreSQL-backed mlflow server"
        )


class PostgresMlflowServer(MlflowServer):
    """The conftest server process with a PostgreSQL backend store instead of SQLite."""

    def __init__(self, root: Path, backend_store_uri: str) -> None:
        super().__init__(root)
        self._backend = backend_store_uri

    @property
    def backend_store_uri(self) -> str:
        return self._backend


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory):
    server = PostgresMlflowServer(tmp_path_factory.mktemp("pg-mlflow"), PG_URI)
    server.start(timeout_s=180)  # the first start creates MLflow's tables
    try:
        yield server.uri
    finally:
        server.stop()


def test_refit_on_postgres(pg_server, tmp_path):
    client = MlflowClient(pg_server)
    exp_id, exp_name = new_experiment(client, "postgres")
    specs = synthetic_family("pg-good", sizes=(1e7, 1e8, 1e9), tokens_per_param=(10, 40))
    specs.append(RunSpec("pg-good", 1e8, 1e9, 3.0, status="FAILED", name="crashed"))
    specs += [RunSpec("pg-small", 1e8, 1e9 * (i + 1), 3.0 - 0.1 * i) for i in range(3)]
    log_runs(client, exp_id, specs)

    out = call_cli("refit", "--tracking-uri", pg_server, "--experiment", exp_name,
                   "--bootstrap", "20", "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = {o["family"]: o for o in json.loads(out.stdout)["families"]}
    assert got["pg-good"]["status"] == "fitted" and got["pg-good"]["n_excluded"] == 1
    assert got["pg-small"]["status"] == "insufficient_data"

    (run,) = fit_runs(client, exp_id, "pg-good")
    doc = fit_json(client, run.info.run_id, tmp_path)
    assert doc["input_digest"] == run.data.tags[schema.TAG_INPUT_DIGEST]
    assert len(doc["member_run_ids"]) == 6
    assert doc["excluded"][0]["reason"] == "run failed (status FAILED)"
    assert run.data.metrics[schema.fit_metric("alpha")] == doc["approach3"]["params"]["alpha"]

    again = refit_pass(client, experiments=[exp_name], settings=RefitSettings(n_boot=20))
    assert {o.status for o in again} == {"skipped"}


def test_racing_creators_on_postgres(pg_server):
    client = MlflowClient(pg_server)
    exp_id, exp_name = new_experiment(client, "pg-race")
    barrier = threading.Barrier(4)
    chosen: list[str] = []

    def worker():
        own = MlflowClient(pg_server)
        barrier.wait()
        chosen.append(ensure_fit_run(own, ExperimentRef(exp_id, exp_name), "f").info.run_id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(chosen) == 4
    (survivor,) = fit_runs(client, exp_id, "f")  # see test_refit_concurrency
    assert survivor.info.run_id in chosen


def test_racing_claims_on_postgres(pg_server):
    """The refit-number claim relies on the params table's primary key: PostgreSQL too."""
    race_claims(pg_server)
