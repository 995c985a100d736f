"""Hugging Face ``Trainer`` with DDP on CPU: two gloo processes started by ``torchrun``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
from _loops_support import SEQ_LEN, lengths
from _scaling_support import history, unique
from _trainer_ddp_worker import DDP_SAMPLES, DDP_STEPS
from conftest import ROOT, free_port
from mlflow import MlflowClient

from mlflow_scaling.tracking import schema


def test_trainer_ddp_with_accumulation_counts_every_rank_and_logs_once(
    mlflow_server: str, tmp_path: Path
) -> None:
    experiment, family = unique("trainer-ddp"), unique("gpt")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MLFLOW_EXPERIMENT_NAME": experiment,
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        str(ROOT / "tests" / "_trainer_ddp_worker.py"),
        str(tmp_path),
        family,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    tokens = sum(lengths(DDP_SAMPLES))  # by hand: every sample once, over both ranks
    for report in ranks:  # every rank holds the all-reduced totals
        assert (report["world_size"], report["tokens"]) == (2, tokens)
        assert report["tokens_total"] == DDP_SAMPLES * SEQ_LEN
    assert ranks[1]["opened_run_id"] is None  # only rank zero opens a run
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name(experiment)
    (run,) = client.search_runs([exp.experiment_id])  # one run, logged once
    assert run.info.run_id == ranks[0]["opened_run_id"]
    assert run.info.status == "FINISHED"
    assert run.data.tags[schema.TAG_FAMILY] == family
    points = history(client, run.info.run_id, schema.METRIC_TOKENS)
    assert [s for s, _ in points] == list(range(1, DDP_STEPS + 1))  # one point per step
    assert points[-1][1] == tokens
    assert history(client, run.info.run_id, schema.METRIC_BATCH_TOKENS)[-1] == (
        DDP_STEPS,
        tokens / DDP_STEPS,
    )
    assert mlflow.active_run() is None
