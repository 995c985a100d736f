"""The scaling pages tell a failing store from a real absence.

Each test runs ``mlflow server --app-name scaling`` on a SQLite store of its own, with one
family: member runs and a fit run published by the refit protocol (tiny artifacts, no fit).
Only what is really not there is a 404; when the store breaks for real (a published file
turned into a folder in the artifact store, then the SQLite file overwritten), every page is a
503 that says the store failed, and the server log has the traceback.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from _server_support import MlflowCliServer, log_family, start_cli_server
from mlflow import MlflowClient

from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.fit_run import ensure_fit_run, write_fit
from mlflow_scaling.tracking.published import PublishedFit
from mlflow_scaling.tracking.reading import ExperimentRef

FAMILY = "fam"
STORE_FAILED = "The MLflow store failed to answer"


@dataclass
class Store:
    server: MlflowCliServer
    experiment_id: str
    fit_run_id: str
    published_path: str
    db: Path
    artifacts: Path

    def get(self, path: str) -> tuple[int, str]:
        """The page's status and its text with HTML entities decoded."""
        page = requests.get(self.server.uri + path, timeout=60)
        return page.status_code, html.unescape(page.text)

    @property
    def family_url(self) -> str:
        return f"/scaling/family/{self.experiment_id}/{quote(FAMILY)}"

    @property
    def artifact_url(self) -> str:
        return f"/scaling/artifact/{self.fit_run_id}/{schema.ARTIFACT_FIT_JSON}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    db, artifacts = tmp_path / "mlflow.db", tmp_path / "artifacts"
    server = start_cli_server(
        root=tmp_path / "server", app_name="scaling", backend_store_uri=f"sqlite:///{db}",
        artifacts_dir=artifacts,
    )  # fmt: skip
    try:
        client = MlflowClient(server.uri)
        exp_id = client.create_experiment("pages")
        log_family(client, exp_id, FAMILY, sizes=(1e7, 1e8), tokens=(1e9,))
        run = ensure_fit_run(client, ExperimentRef(exp_id, "pages"), FAMILY)

        def make_artifacts(n: int, folder: Path) -> None:
            (folder / "fit.json").write_text(json.dumps({"family": FAMILY, "refit_number": n}))

        fit = write_fit(client, run, make_artifacts=make_artifacts,
                        record=PublishedFit(0, "", "in", "set", read_ms=1))  # fmt: skip
        yield Store(server, exp_id, run.info.run_id, fit.path, db, artifacts)
    finally:
        server.stop()


def test_only_a_real_absence_is_404(store: Store) -> None:
    assert store.get(store.family_url)[0] == 200
    assert store.get(store.artifact_url) == (200, json.dumps({"family": FAMILY,
                                                              "refit_number": 1}))  # fmt: skip
    for path, says in (
        ("/scaling/family/999999/fam", "No experiment '999999'"),
        ("/scaling/family/no-such-experiment/fam", "No experiment 'no-such-experiment'"),
        (f"/scaling/family/{store.experiment_id}/other", "has no runs of family 'other'"),
        (f"/scaling/artifact/{'0' * 32}/{schema.ARTIFACT_FIT_JSON}", f"No run '{'0' * 32}'"),
        (f"/scaling/artifact/{store.fit_run_id}/{schema.ARTIFACT_FIT_PNG}", "has no scaling/"),
    ):
        status, text = store.get(path)
        assert (status, says in text) == (404, True), path


def test_a_failing_store_is_a_503_that_says_so(store: Store) -> None:
    # The artifact store breaks: the published fit.json becomes a folder nobody can read.
    (published,) = store.artifacts.rglob(f"{store.published_path.rsplit('/', 1)[-1]}/fit.json")
    published.unlink()
    published.mkdir()
    for path in (store.family_url, store.artifact_url):
        status, text = store.get(path)
        assert (status, STORE_FAILED in text) == (503, True), path
        assert "IsADirectoryError" in text
    # The tracking store breaks: its SQLite file is overwritten.
    store.db.write_bytes(b"\0" * store.db.stat().st_size)
    for path in ("/scaling/", store.family_url, store.artifact_url,
                 f"/scaling/compare/{store.experiment_id}/a/b"):  # fmt: skip
        status, text = store.get(path)
        assert (status, STORE_FAILED in text) == (503, True), path
    log = store.server.log_path.read_text(errors="replace")
    assert log.count("the MLflow store failed") >= 6 and "Traceback" in log
