"""A tracking server that dies mid-training must never hurt training."""

from __future__ import annotations

import threading
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
    (final,) = [m for m in messages if "could not be delivered" in m]
    assert f"tokens={steps * BATCH * SEQ_LEN}" in final
    # the real error, not "(last error: None)"
    assert "(last error: MlflowException: API request to" in final
    assert "Connection refused" in final
    assert elapsed < 30


class KillsQuietly(L.Callback):
    """At step ``at``: let the callback deliver all it has, then kill the server. What the next
    steps log goes out in a request still inside MLflow's HTTP retries when the final flush
    times out."""

    def __init__(self, server: MlflowServer, callback: ScalingLawCallback, at: int) -> None:
        self.server, self.callback, self.at = server, callback, at
        self.delivered: bool | None = None

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.at:
            assert self.callback.sink is not None
            self.delivered = self.callback.sink.flush(timeout_s=30.0)
            self.server.kill()


def test_a_flush_that_times_out_before_any_answer_says_what_is_known(
    mlflow_server_factory: Callable[..., MlflowServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow retries for about 14 s (0 + 2 + 4 + 8 s of backoff); the final flush waits 0.5 s.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "4")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    server = mlflow_server_factory()
    steps = 3
    cb = ScalingLawCallback(family="silent", log_every_n_steps=1, flush_timeout_s=0.5)
    chaos = KillsQuietly(server, cb, at=steps - 1)
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server.uri)
    run = mlflow.start_run(experiment_id=mlflow.create_experiment(unique("cb-silent")))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer(callbacks=[cb, chaos], max_steps=steps).fit(
                tiny_gpt(), token_loader(steps, BATCH)
            )
            # the request left behind fails later, in the sink's thread: wait for it here
            for thread in threading.enumerate():
                if thread.name == f"scaling-law-mlflow-sink-{run.info.run_id[:8]}":
                    thread.join(timeout=30)
    finally:
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # no more waiting
        try:
            mlflow.end_run()  # the server is gone: this one is allowed to fail
        except Exception:
            pass
        mlflow.set_tracking_uri(previous_uri)

    assert chaos.delivered is True
    messages = _scaling_warnings(caught)
    (final,) = [m for m in messages if "could not be delivered" in m]
    assert "last error: None" not in final
    assert "(no answer yet to a request sent " in final
    assert "still inside MLflow's HTTP retries (MLFLOW_HTTP_REQUEST_MAX_RETRIES)" in final
    assert f"a direct check of {server.uri}/health failed: URLError (" in final
    assert "Connection refused" in final
    assert f"tokens={steps * BATCH * SEQ_LEN}" in final
