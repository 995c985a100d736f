"""ScalingLawCallback against a live MLflow server: names, values, accumulation, resume."""

from __future__ import annotations

import warnings

import mlflow
import pytest
from _scaling_support import (
    SEQ_LEN,
    TINY_FLOPS_PER_TOKEN,
    TINY_NON_EMBEDDING,
    TINY_TOTAL,
    PaddedBytes,
    history,
    tiny_gpt,
    token_loader,
    trainer,
    unique,
)
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from torch.utils.data import DataLoader

from examples.tiny_gpt import GPTConfig, TinyGPT
from lightning_callbacks import ScalingLawCallback, ScalingLawWarning
from mlflow_scaling.tracking import schema


def test_unpadded_run_has_contract_metrics_tags_and_params(mlflow_server: str) -> None:
    steps, batch = 7, 4
    model = tiny_gpt()
    logger = MLFlowLogger(experiment_name=unique("cb-basic"), tracking_uri=mlflow_server)
    cb = ScalingLawCallback(family="tiny-gpt", loss_metric="train_loss", log_every_n_steps=3)
    trainer(logger=logger, callbacks=[cb], max_steps=steps).fit(model, token_loader(10, batch))

    client = mlflow.MlflowClient(mlflow_server)
    run = client.get_run(logger.run_id)
    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags

    # hand counts (see _scaling_support): the tied head counts once, as embedding
    assert metrics[schema.METRIC_PARAMS_TOTAL] == TINY_TOTAL
    assert metrics[schema.METRIC_PARAMS_NON_EMBEDDING] == TINY_NON_EMBEDDING
    assert metrics[schema.METRIC_PARAMS] == TINY_NON_EMBEDDING

    tokens = steps * batch * SEQ_LEN
    fpt = TINY_FLOPS_PER_TOKEN
    assert metrics[schema.METRIC_TOKENS] == tokens
    assert metrics[schema.METRIC_TOKENS_TOTAL] == tokens
    assert metrics[schema.METRIC_TOKENS_LOSS] == tokens
    assert metrics[schema.METRIC_FLOPS] == pytest.approx(tokens * fpt, rel=1e-12)
    assert metrics[schema.METRIC_FLOPS_PER_TOKEN] == fpt
    measured = metrics[schema.METRIC_FLOPS_PER_TOKEN_MEASURED]
    assert abs(measured - fpt) / fpt < 0.05
    assert metrics[schema.METRIC_TOKENS_PER_SECOND] > 0
    assert metrics[schema.METRIC_FLOPS_PER_SECOND] > 0
    assert schema.METRIC_MFU not in metrics  # no known peak on a CPU

    assert tags[schema.TAG_FAMILY] == "tiny-gpt"
    assert tags[schema.TAG_LOSS_METRIC] == "train_loss"
    assert params[schema.PARAM_FLOPS_METHOD].startswith("analytic: 6*(N_non_embedding")
    assert "n_layer=2, n_head=2, head_dim=16" in params[schema.PARAM_FLOPS_METHOD]
    assert params[schema.PARAM_PARAMS_CONVENTION].startswith("scaling.params = non_embedding")

    # Cumulative tokens at step 1 (first point), every 3 optimizer steps, and at the end.
    assert history(client, logger.run_id, schema.METRIC_TOKENS) == [
        (s, float(s * batch * SEQ_LEN)) for s in (1, 3, 6, 7)
    ]
    flops_history = history(client, logger.run_id, schema.METRIC_FLOPS)
    assert [s for s, _ in flops_history] == [1, 3, 6, 7]
    assert flops_history[-1][1] == pytest.approx(tokens * fpt)
    assert cb.totals.tokens == tokens


def test_padded_batches_are_counted_by_mask_and_labels(mlflow_tracking: str) -> None:
    lengths = [16, 3, 9, 12, 1, 16, 7, 5]
    data = PaddedBytes(lengths)
    cb = ScalingLawCallback(family="padded", log_every_n_steps=1, params_for_law="total")
    model = tiny_gpt()
    with mlflow.start_run(experiment_id=mlflow.create_experiment(unique("cb-padded"))) as run:
        trainer(callbacks=[cb], max_epochs=1).fit(model, DataLoader(data, batch_size=4))

    client = mlflow.MlflowClient(mlflow_tracking)
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics[schema.METRIC_TOKENS] == sum(lengths)
    assert metrics[schema.METRIC_TOKENS_TOTAL] == len(lengths) * SEQ_LEN
    assert metrics[schema.METRIC_TOKENS_LOSS] == sum(n - 1 for n in lengths)
    assert metrics[schema.METRIC_PARAMS] == metrics[schema.METRIC_PARAMS_TOTAL]
    assert metrics[schema.METRIC_FLOPS_PER_TOKEN] == TINY_FLOPS_PER_TOKEN
    # C counts the non-padding tokens; the compute spent counts every position
    assert metrics[schema.METRIC_FLOPS] == sum(lengths) * TINY_FLOPS_PER_TOKEN
    assert metrics[schema.METRIC_FLOPS_HARDWARE] == len(lengths) * SEQ_LEN * TINY_FLOPS_PER_TOKEN
    assert history(client, run.info.run_id, schema.METRIC_TOKENS) == [
        (1, float(sum(lengths[:4]))),
        (2, float(sum(lengths))),  # also the end: not written twice
    ]


def test_gradient_accumulation_counts_every_micro_batch(mlflow_server: str) -> None:
    accumulate, batch, optimizer_steps = 3, 2, 4
    logger = MLFlowLogger(experiment_name=unique("cb-accum"), tracking_uri=mlflow_server)
    cb = ScalingLawCallback(family="accum", log_every_n_steps=2, log_every_seconds=None)
    trainer(
        logger=logger, callbacks=[cb], max_steps=optimizer_steps, accumulate_grad_batches=accumulate
    ).fit(tiny_gpt(), token_loader(20, batch))

    client = mlflow.MlflowClient(mlflow_server)
    per_step = accumulate * batch * SEQ_LEN
    assert history(client, logger.run_id, schema.METRIC_TOKENS) == [
        (2, 2.0 * per_step),
        (4, 4.0 * per_step),
    ]


def test_counters_survive_resume_from_checkpoint(mlflow_server: str, tmp_path) -> None:
    batch, epoch_steps = 4, 4
    loader = token_loader(epoch_steps, batch)
    experiment = unique("cb-resume")
    first_logger = MLFlowLogger(experiment_name=experiment, tracking_uri=mlflow_server)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, every_n_train_steps=epoch_steps)
    trainer(
        logger=first_logger,
        callbacks=[ScalingLawCallback(family="resume", log_every_n_steps=2), checkpoint],
        enable_checkpointing=True,
        max_steps=epoch_steps,
    ).fit(tiny_gpt(), loader)
    (ckpt,) = tmp_path.glob("*.ckpt")

    # A fresh callback and Trainer continue the same run from the checkpoint.
    resumed_logger = MLFlowLogger(
        experiment_name=experiment, tracking_uri=mlflow_server, run_id=first_logger.run_id
    )
    cb = ScalingLawCallback(family="resume", log_every_n_steps=2)
    trainer(logger=resumed_logger, callbacks=[cb], max_steps=2 * epoch_steps).fit(
        tiny_gpt(), loader, ckpt_path=ckpt
    )

    per_step = batch * SEQ_LEN
    assert cb.totals.tokens == 2 * epoch_steps * per_step
    client = mlflow.MlflowClient(mlflow_server)
    points = history(client, first_logger.run_id, schema.METRIC_TOKENS)
    assert points[-1] == (2 * epoch_steps, 2.0 * epoch_steps * per_step)
    assert all(v == s * per_step for s, v in points)  # cumulative across the resume
    metrics = client.get_run(first_logger.run_id).data.metrics
    assert metrics[schema.METRIC_FLOPS] == 2 * epoch_steps * per_step * TINY_FLOPS_PER_TOKEN
    assert metrics[schema.METRIC_FLOPS_HARDWARE] == metrics[schema.METRIC_FLOPS]  # no padding


def test_without_a_run_it_counts_and_says_so_once() -> None:
    assert mlflow.active_run() is None
    cb = ScalingLawCallback(family="no-run", log_every_n_steps=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(callbacks=[cb], max_steps=3).fit(tiny_gpt(), token_loader(3, 2))
    mine = [w for w in caught if issubclass(w.category, ScalingLawWarning)]
    assert len(mine) == 1 and "found no MLflow run" in str(mine[0].message)
    assert cb.totals.tokens == 3 * 2 * SEQ_LEN
    assert cb.last_metrics[schema.METRIC_TOKENS] == 3 * 2 * SEQ_LEN


def test_a_rejected_param_is_dropped_alone_and_training_goes_on(mlflow_server: str) -> None:
    client = mlflow.MlflowClient(mlflow_server)
    run_id = client.create_run(client.create_experiment(unique("cb-conflict"))).info.run_id
    client.log_param(run_id, schema.PARAM_PARAMS_CONVENTION, "counted by hand")  # params are final
    logger = MLFlowLogger(tracking_uri=mlflow_server, run_id=run_id)
    cb = ScalingLawCallback(family="conflict", log_every_n_steps=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(logger=logger, callbacks=[cb], max_steps=3).fit(tiny_gpt(), token_loader(3, 2))

    messages = [str(w.message) for w in caught if issubclass(w.category, ScalingLawWarning)]
    assert len(messages) == 1 and "MLflow rejected 1 values" in messages[0], messages
    data = client.get_run(run_id).data
    assert data.params[schema.PARAM_PARAMS_CONVENTION] == "counted by hand"
    assert data.params[schema.PARAM_FLOPS_METHOD].startswith("analytic")
    assert data.tags[schema.TAG_FAMILY] == "conflict"
    assert data.metrics[schema.METRIC_TOKENS] == 3 * 2 * SEQ_LEN


class FailsAtStep3(TinyGPT):
    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        if self.global_step == 2:
            raise RuntimeError("boom at step 3")
        return super().training_step(batch, batch_idx)


def test_a_failing_training_keeps_what_was_logged(mlflow_server: str) -> None:
    logger = MLFlowLogger(experiment_name=unique("cb-boom"), tracking_uri=mlflow_server)
    cb = ScalingLawCallback(family="boom", log_every_n_steps=1)
    model = FailsAtStep3(GPTConfig(n_layer=1, n_head=2, d_model=32, seq_len=SEQ_LEN))
    with pytest.raises(RuntimeError, match="boom at step 3"):  # the model's error, unchanged
        trainer(logger=logger, callbacks=[cb], max_steps=5).fit(model, token_loader(5, 2))
    client = mlflow.MlflowClient(mlflow_server)
    assert history(client, logger.run_id, schema.METRIC_TOKENS) == [
        (1, 2.0 * SEQ_LEN),
        (2, 4.0 * SEQ_LEN),
    ]
    assert client.get_run(logger.run_id).info.status == "FAILED"
