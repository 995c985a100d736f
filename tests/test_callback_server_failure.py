"""A tracking server that dies mid-training must never hurt training."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import lightning as L
import mlflow
import pytest
from _scaling_support import SEQ_LEN, history, tiny_gpt, token_loader, trainer, unique
from conftest import MlflowServer
from lightning.pytorch.loggers import MLFlowLogger

from lightning_callbacks import ScalingLawCallback, ScalingLawWarning
from mlflow_scaling.tracking import schema

BATCH = 2


class ServerChaos(L.Callback):
    """Kills the server after optimizer step ``kill_at``; restarts it after ``restart_at``.

    Before the restart it makes the callback try to deliver (``flush``), so that the outage is
    seen whatever the timing of the callback's batched requests."""

    def __init__(
        self,
        server: MlflowServer,
        kill_at: int,
        restart_at: int | None = None,
        callback: ScalingLawCallback | None = None,
    ) -> None:
        self.server, self.kill_at, self.restart_at = server, kill_at, restart_at
        self.callback = callback
        self.delivered_during_outage: bool | None = None

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.kill_at:
            self.server.kill()
        if trainer.global_step == self.restart_at:
            if self.callback is not None and self.callback.sink is not None:
                self.delivered_during_outage = self.callback.sink.flush(timeout_s=2.0)
            self.server.start()


@pytest.fixture
def fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    # One HTTP attempt per call instead of MLflow's 7 retries with backoff (about 4 minutes).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


def _scaling_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, ScalingLawWarning)]


def test_server_killed_and_restarted_mid_training_loses_nothing(
    mlflow_server_factory: Callable[..., MlflowServer], fail_fast: None
) -> None:
    server = mlflow_server_factory()
    steps = 12
    logger = MLFlowLogger(experiment_name=unique("cb-outage"), tracking_uri=server.uri)
    cb = ScalingLawCallback(
        family="outage", log_every_n_steps=1, log_every_seconds=None, retry_interval_s=0.2,
        flush_timeout_s=30,
    )  # fmt: skip
    chaos = ServerChaos(server, kill_at=3, restart_at=8, callback=cb)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(logger=logger, callbacks=[cb, chaos], max_steps=steps).fit(
            tiny_gpt(), token_loader(steps, BATCH)
        )

    assert chaos.delivered_during_outage is False
    messages = _scaling_warnings(caught)
    assert len(messages) == 1, messages  # warned once, although every retry failed until step 8
    assert "failed for run" in messages[0] and server.uri in messages[0]
    client = mlflow.MlflowClient(server.uri)
    points = history(client, logger.run_id, schema.METRIC_TOKENS)
    # Every logging step made it, those queued during the outage included.
    assert points == [(s, float(s * BATCH * SEQ_LEN)) for s in range(1, steps + 1)]


def test_server_killed_for_good_training_finishes_with_a_warning(
    mlflow_server_factory: Callable[..., MlflowServer], fail_fast: None
) -> None:
    server = mlflow_server_factory()
    steps = 8
    cb = ScalingLawCallback(
        family="dead", log_every_n_steps=1, retry_interval_s=0.2, flush_timeout_s=1.0
    )
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server.uri)
    mlflow.start_run(experiment_id=mlflow.create_experiment(unique("cb-dead")))
    try:
        started = time.monotonic()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer(callbacks=[cb, ServerChaos(server, kill_at=3)], max_steps=steps).fit(
                tiny_gpt(), token_loader(steps, BATCH)
            )
        elapsed = time.monotonic() - started
    finally:
        try:
            mlflow.end_run()  # the server is gone: this one is allowed to fail
        except Exception:
            pass
        mlflow.set_tracking_uri(previous_uri)

    assert cb.totals.tokens == steps * BATCH * SEQ_LEN  # counting went on
    messages = _scaling_warnings(caught)
    assert any("failed for run" in m for m in messages)
    assert sum("failed for run" in m for m in messages) == 1
    assert any("could not be delivered" in m and f"tokens={steps * BATCH * SEQ_LEN}" in m
               for m in messages)  # fmt: skip
    assert elapsed < 30
