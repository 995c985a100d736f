"""DDP on CPU, two processes over gloo, ranks with different batch sizes and padding."""

from __future__ import annotations

import lightning as L
import mlflow
import pytest
import torch
from _scaling_support import (
    SEQ_LEN,
    TINY_FLOPS_PER_TOKEN,
    PaddedBytes,
    history,
    tiny_gpt,
    trainer,
    unique,
)
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from torch.utils.data import DataLoader

from lightning_callbacks import ScalingLawCallback
from mlflow_scaling.tracking import schema

STEPS = 4
# Rank 0: batches of 3 sequences, rank 1: batches of 5; each rank STEPS batches.
BATCH = {0: 3, 1: 5}
LENGTHS = {
    rank: [1 + (7 * i + 5 * rank) % SEQ_LEN for i in range(STEPS * size)]
    for rank, size in BATCH.items()
}


class UnevenData(L.LightningDataModule):
    def train_dataloader(self) -> DataLoader:
        rank = self.trainer.global_rank
        return DataLoader(PaddedBytes(LENGTHS[rank], seed=rank), batch_size=BATCH[rank])


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_ddp_totals_are_sums_over_ranks_logged_once(mlflow_server: str, tmp_path) -> None:
    experiment = unique("cb-ddp")
    logger = MLFlowLogger(experiment_name=experiment, tracking_uri=mlflow_server)
    cb = ScalingLawCallback(family="ddp", log_every_n_steps=2, log_every_seconds=None)
    # A checkpoint between logging steps: the ranks synchronise first, so its state is exact.
    checkpoint = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=3, save_top_k=-1)
    trainer(
        devices=2,
        strategy="ddp_fork",  # processes forked from pytest itself: no script to relaunch
        use_distributed_sampler=False,  # each rank keeps its own uneven loader
        logger=logger,
        callbacks=[cb, checkpoint],
        enable_checkpointing=True,
        max_steps=STEPS,
    ).fit(tiny_gpt(), datamodule=UnevenData())

    client = mlflow.MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1
    run = runs[0]
    metrics = run.data.metrics

    all_lengths = LENGTHS[0] + LENGTHS[1]
    non_padding = sum(all_lengths)
    assert metrics[schema.METRIC_TOKENS] == non_padding
    assert metrics[schema.METRIC_TOKENS_TOTAL] == len(all_lengths) * SEQ_LEN
    assert metrics[schema.METRIC_TOKENS_LOSS] == sum(n - 1 for n in all_lengths)
    # not local x world_size: rank 0 alone would give a different number
    assert metrics[schema.METRIC_TOKENS] != 2 * sum(LENGTHS[0])
    assert metrics[schema.METRIC_FLOPS_PER_TOKEN] == TINY_FLOPS_PER_TOKEN
    assert metrics[schema.METRIC_FLOPS] == non_padding * TINY_FLOPS_PER_TOKEN
    positions = len(all_lengths) * SEQ_LEN
    assert metrics[schema.METRIC_FLOPS_HARDWARE] == positions * TINY_FLOPS_PER_TOKEN

    # Logged once per logging step (rank zero only): steps 2 and 4; the end is step 4 too.
    half = sum(LENGTHS[0][: 2 * BATCH[0]]) + sum(LENGTHS[1][: 2 * BATCH[1]])
    assert history(client, run.info.run_id, schema.METRIC_TOKENS) == [
        (2, float(half)),
        (4, float(non_padding)),
    ]
    assert len(client.get_metric_history(run.info.run_id, schema.METRIC_PARAMS)) == 1

    (ckpt,) = tmp_path.glob("*step=3.ckpt")
    state = torch.load(ckpt, weights_only=False)["callbacks"][cb.state_key]
    # Step 3 is no logging step, but ModelCheckpoint saves there: all ranks synchronised first.
    assert state["step"] == 3
    assert state["tokens"] == sum(LENGTHS[0][: 3 * BATCH[0]]) + sum(LENGTHS[1][: 3 * BATCH[1]])
