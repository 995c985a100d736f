"""``scaling.unique_tokens`` and ``scaling.epochs`` from the Lightning callback (live server)."""

from __future__ import annotations

import mlflow
import pytest
import torch
from _scaling_support import SEQ_LEN, PaddedBytes, history, tiny_gpt, token_loader, trainer, unique
from lightning.pytorch.loggers import MLFlowLogger
from torch.utils.data import DataLoader

from lightning_callbacks import ScalingLawCallback
from mlflow_scaling.integrations.unique_tokens import dataset_unique_tokens
from mlflow_scaling.tracking import schema


def _logged(server: str, run_id: str):
    run = mlflow.MlflowClient(server).get_run(run_id)
    return run.data.metrics, run.data.params


def test_unique_tokens_argument_logs_u_and_epochs_with_the_tokens(mlflow_server: str) -> None:
    steps, batch = 7, 4
    per_step = batch * SEQ_LEN
    u = 3.5 * per_step  # 224 unique tokens: 7 steps are exactly 2 epochs
    logger = MLFlowLogger(experiment_name=unique("cb-unique"), tracking_uri=mlflow_server)
    cb = ScalingLawCallback(family="u", log_every_n_steps=3, log_every_seconds=None,
                            unique_tokens=u)  # fmt: skip
    trainer(logger=logger, callbacks=[cb], max_steps=steps).fit(tiny_gpt(), token_loader(10, batch))

    metrics, params = _logged(mlflow_server, logger.run_id)
    assert metrics[schema.METRIC_UNIQUE_TOKENS] == 224.0
    assert metrics[schema.METRIC_EPOCHS] == 2.0
    assert params[schema.PARAM_UNIQUE_TOKENS_SOURCE] == "argument"  # not the dataset's 640
    client = mlflow.MlflowClient(mlflow_server)
    assert history(client, logger.run_id, schema.METRIC_EPOCHS) == [
        (s, s * per_step / 224.0) for s in (0, 3, 6, 7)
    ]
    assert cb.last_metrics[schema.METRIC_EPOCHS] == 2.0


def test_a_tensor_dataset_of_fixed_sequences_gives_u_exactly(mlflow_server: str) -> None:
    logger = MLFlowLogger(experiment_name=unique("cb-unique-ds"), tracking_uri=mlflow_server)
    cb = ScalingLawCallback(family="u-ds", log_every_n_steps=5)
    loader = token_loader(5, 4)  # 20 sequences of 16 token ids (and their labels)
    trainer(logger=logger, callbacks=[cb], max_epochs=3).fit(tiny_gpt(), loader)

    metrics, params = _logged(mlflow_server, logger.run_id)
    assert params[schema.PARAM_UNIQUE_TOKENS_SOURCE] == f"dataset:20x{SEQ_LEN}"
    assert metrics[schema.METRIC_UNIQUE_TOKENS] == 20 * SEQ_LEN
    assert metrics[schema.METRIC_TOKENS] == 3 * 20 * SEQ_LEN
    assert metrics[schema.METRIC_EPOCHS] == 3.0


def test_a_dataset_of_uneven_samples_logs_nothing_about_uniqueness(mlflow_tracking: str) -> None:
    cb = ScalingLawCallback(family="u-padded", log_every_n_steps=1)
    with mlflow.start_run(experiment_id=mlflow.create_experiment(unique("cb-unique-pad"))) as run:
        data = DataLoader(PaddedBytes([16, 3, 9, 12]), batch_size=2)
        trainer(callbacks=[cb], max_epochs=1).fit(tiny_gpt(), data)

    metrics, params = _logged(mlflow_tracking, run.info.run_id)
    assert metrics[schema.METRIC_TOKENS] == 40
    assert schema.METRIC_UNIQUE_TOKENS not in metrics and schema.METRIC_EPOCHS not in metrics
    assert schema.PARAM_UNIQUE_TOKENS_SOURCE not in params


def test_which_datasets_state_their_size_exactly() -> None:
    ids = torch.randint(0, 256, (6, 8))
    assert dataset_unique_tokens(ids).source == "dataset:6x8"
    assert dataset_unique_tokens(torch.utils.data.TensorDataset(ids, ids)).value == 48.0
    assert dataset_unique_tokens(torch.utils.data.TensorDataset(ids.float())) is None
    assert dataset_unique_tokens(torch.utils.data.TensorDataset(ids[0])) is None  # 1-D
    assert dataset_unique_tokens(PaddedBytes([3, 4])) is None
    assert dataset_unique_tokens([[1, 2], [3, 4]]) is None


@pytest.mark.parametrize("bad", [0, -5.0, float("nan"), float("inf"), True, "1e9"])
def test_unique_tokens_must_be_a_positive_number(bad) -> None:
    with pytest.raises(ValueError, match="unique_tokens must be a positive number or None"):
        ScalingLawCallback(family="u-bad", unique_tokens=bad)
