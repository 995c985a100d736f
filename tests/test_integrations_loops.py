"""Lightning, Hugging Face ``Trainer`` and a plain PyTorch loop count the same N, D and C."""

from __future__ import annotations

import warnings

import mlflow
from _loops_support import (
    ACCUMULATION,
    LR,
    N_SAMPLES,
    SEQ_LEN,
    STEPS,
    CausalLM,
    batches,
    lengths,
    train_lightning,
    train_torch,
    train_trainer,
)
from _scaling_support import history, unique
from mlflow import MlflowClient

from mlflow_scaling.integrations import ScalingLawWarning
from mlflow_scaling.integrations.torch import ScalingCounter
from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.refit import refit_pass
from mlflow_scaling.tracking import schema

# The tiny GPT with 257 ids (bytes and padding) counted by hand: embeddings 257*32 + 16*32, the
# same two blocks as _scaling_support's (25,472 non-embedding), the head tied to the token table.
NON_EMBEDDING = 25_472
TOTAL = NON_EMBEDDING + 257 * 32 + SEQ_LEN * 32
FLOPS_PER_TOKEN = 6 * (NON_EMBEDDING + 257 * 32) + 12 * 2 * 2 * 16 * SEQ_LEN
EXACT = (
    schema.METRIC_PARAMS,
    schema.METRIC_PARAMS_TOTAL,
    schema.METRIC_PARAMS_NON_EMBEDDING,
    schema.METRIC_TOKENS,
    schema.METRIC_TOKENS_TOTAL,
    schema.METRIC_TOKENS_LOSS,
    schema.METRIC_FLOPS,
    schema.METRIC_FLOPS_HARDWARE,
    schema.METRIC_BATCH_TOKENS,
    schema.METRIC_LR_PEAK,
    schema.METRIC_UNIQUE_TOKENS,
    schema.METRIC_EPOCHS,
)
UNIQUE = 37.0  # unique tokens, fewer than the run's: epochs = tokens / 37


def test_three_loops_log_identical_counts_and_refit_as_one_family(
    mlflow_server: str, tmp_path, monkeypatch
) -> None:
    experiment = unique("three-loops")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)  # report_to="mlflow" reads these
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment(experiment)
    family = unique("gpt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's and transformers' advice on tiny runs
        every = {"log_every_n_steps": 1, "log_every_seconds": None, "unique_tokens": UNIQUE}
        runs = {
            "lightning": train_lightning(family, **every),
            "trainer": train_trainer(family, str(tmp_path), **every).core.target.run_id,
            "torch": train_torch(family, **every),
        }
    client = MlflowClient(mlflow_server)
    finals = {loop: client.get_run(run_id).data.metrics for loop, run_id in runs.items()}
    tokens = sum(lengths(N_SAMPLES))  # the collator's attention mask: padding excluded
    expected = {
        schema.METRIC_PARAMS: NON_EMBEDDING,
        schema.METRIC_PARAMS_TOTAL: TOTAL,
        schema.METRIC_PARAMS_NON_EMBEDDING: NON_EMBEDDING,
        schema.METRIC_TOKENS: tokens,
        schema.METRIC_TOKENS_TOTAL: N_SAMPLES * SEQ_LEN,
        schema.METRIC_TOKENS_LOSS: tokens,  # the collator's labels: -100 on padding only
        schema.METRIC_FLOPS: tokens * FLOPS_PER_TOKEN,
        schema.METRIC_FLOPS_HARDWARE: N_SAMPLES * SEQ_LEN * FLOPS_PER_TOKEN,
        schema.METRIC_BATCH_TOKENS: tokens / STEPS,  # 2 micro-batches of 2 sequences a step
        schema.METRIC_LR_PEAK: LR,
        schema.METRIC_UNIQUE_TOKENS: UNIQUE,  # the same unique_tokens= argument everywhere
        schema.METRIC_EPOCHS: tokens / UNIQUE,
    }
    for loop, metrics in finals.items():
        assert {k: metrics[k] for k in EXACT} == expected, loop
        assert client.get_run(runs[loop]).data.params[schema.PARAM_UNIQUE_TOKENS_SOURCE] == (
            "argument"
        ), loop
    # Same steps: optimizer steps, one point each, whatever the loop's accumulation mechanics.
    for loop, run_id in runs.items():
        steps = [s for s, _ in history(client, run_id, schema.METRIC_TOKENS)]
        assert steps == list(range(1, STEPS + 1)), loop
        assert history(client, run_id, schema.METRIC_PARAMS) == [(0, NON_EMBEDDING)], loop
    # The Trainer callback joined the run report_to="mlflow" opened (its arguments are there).
    trainer_run = client.get_run(runs["trainer"])
    assert trainer_run.data.params["gradient_accumulation_steps"] == str(ACCUMULATION)
    assert trainer_run.data.tags[schema.TAG_FAMILY] == family

    for run_id in runs.values():  # the loss the refit reads
        client.log_metric(run_id, schema.DEFAULT_LOSS_METRIC, 5.0, step=STEPS)
    (outcome,) = refit_pass(client, experiments=[experiment], settings=RefitSettings(n_boot=0))
    assert (outcome.family, outcome.n_members, outcome.n_excluded) == (family, 3, 0)


def test_a_plain_loop_without_a_run_counts_and_says_so_once() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert mlflow.active_run() is None
        model = CausalLM()
        batch = batches(2)[0]
        with ScalingCounter(model, family="no-run", cross_check=False) as counter:
            counter.step(batch["input_ids"], attention_mask=batch["attention_mask"])
    mine = [str(w.message) for w in caught if issubclass(w.category, ScalingLawWarning)]
    assert mine == [
        "ScalingCounter found no MLflow run: no MLflow run is active (mlflow.start_run). It "
        "counts tokens and FLOPs but logs nothing"
    ]
    assert counter.totals.tokens == sum(lengths(2))
    assert counter.last_metrics[schema.METRIC_TOKENS] == sum(lengths(2))
