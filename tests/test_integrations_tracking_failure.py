"""Tracking that fails never stops training: the Trainer callback and the plain-loop counter."""

from __future__ import annotations

import warnings

import mlflow
import pytest
from _loops_support import N_SAMPLES, STEPS, lengths, train_trainer
from conftest import free_port

from mlflow_scaling.integrations import ScalingLawWarning


@pytest.fixture
def unreachable_tracking(monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    mlflow.set_tracking_uri(uri)
    return uri


def test_the_trainer_trains_and_counts_when_its_run_cannot_be_opened(
    unreachable_tracking: str, tmp_path
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        callback = train_trainer("unreachable", str(tmp_path), report_to="none", cross_check=False)
    mine = [str(w.message) for w in caught if issubclass(w.category, ScalingLawWarning)]
    assert len(mine) == 1
    assert mine[0].startswith("ScalingLawTrainerCallback could not find its MLflow run (")
    assert mine[0].endswith("it keeps counting but logs nothing")
    assert (callback.core.target, callback.opened_run_id, mlflow.active_run()) == (None, None, None)
    assert callback.totals.tokens == sum(lengths(N_SAMPLES))  # trained to the end, counted
    assert callback.core.synced_step == STEPS
