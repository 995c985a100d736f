"""Helpers for the families/refit/report tests: log member runs over REST, read fits back.

Runs are logged the way any user would through ``MlflowClient``: create the run with its
tags, one ``log_batch`` with the metrics (and params), then set the final status.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.published import read_published_artifact

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

# Epoch's fit of the Chinchilla runs, used as the true law of synthetic families.
TRUE_LAW = {"E": 1.82, "A": 478.0, "B": 2143.0, "alpha": 0.347, "beta": 0.367}


def true_loss(n, d):
    law = TRUE_LAW
    return (
        law["E"]
        + law["A"] / np.asarray(n) ** law["alpha"]
        + law["B"] / np.asarray(d) ** (law["beta"])
    )


@dataclass
class RunSpec:
    """One run to log. ``loss=None`` leaves the loss metric out; ``d=None`` the tokens."""

    family: str | None
    n: float | None
    d: float | None
    loss: float | None
    status: str = "FINISHED"
    name: str | None = None
    loss_metric: str | None = None
    flops: float | None = None
    params: dict[str, str] = field(default_factory=dict)
    curve_steps: int = 0  # > 0: log loss, tokens and flops at this many steps (a curve)
    age_s: float = 0.0  # > 0: the run started and ended this many seconds ago (its times)
    metrics: dict[str, float] = field(default_factory=dict)  # more final metrics (step 0)


def synthetic_family(
    family: str,
    sizes: Sequence[float] = (2e7, 6e7, 2e8, 6e8, 2e9),
    tokens_per_param: Sequence[float] = (5.0, 20.0, 80.0),
    noise: float = 0.004,
    seed: int = 0,
    **kw,
) -> list[RunSpec]:
    """Runs whose final loss follows :data:`TRUE_LAW` with multiplicative noise."""
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        for k in tokens_per_param:
            d = k * n
            loss = float(true_loss(n, d) * np.exp(rng.normal(0.0, noise)))
            out.append(RunSpec(family, n, d, loss, name=f"{family}-N{n:.0e}-D{d:.0e}", **kw))
    return out


def _log_one(client: MlflowClient, experiment_id: str, spec: RunSpec) -> str:
    tags = {}
    if spec.family is not None:
        tags[schema.TAG_FAMILY] = spec.family
    if spec.loss_metric:
        tags[schema.TAG_LOSS_METRIC] = spec.loss_metric
    start = int((time.time() - spec.age_s) * 1000) if spec.age_s else None
    run = client.create_run(experiment_id, run_name=spec.name, tags=tags, start_time=start)
    run_id = run.info.run_id
    metric = spec.loss_metric or schema.DEFAULT_LOSS_METRIC
    ts = int(time.time() * 1000)
    metrics = []
    steps = max(spec.curve_steps, 1)
    if spec.curve_steps > 0:
        assert spec.n is not None and spec.d is not None
        for i in range(1, steps + 1):
            tokens = spec.d * i / steps
            metrics.append(Metric(schema.METRIC_TOKENS, tokens, ts, i))
            metrics.append(Metric(schema.METRIC_FLOPS, 6 * spec.n * tokens, ts, i))
            metrics.append(Metric(metric, float(true_loss(spec.n, tokens)), ts, i))
        metrics.append(Metric(schema.METRIC_PARAMS, spec.n, ts, 0))
    else:
        for key, value in (
            (schema.METRIC_PARAMS, spec.n),
            (schema.METRIC_TOKENS, spec.d),
            (schema.METRIC_FLOPS, spec.flops),
            (metric, spec.loss),
            *spec.metrics.items(),
        ):
            if value is not None:
                metrics.append(Metric(key, float(value), ts, 0))
    params = [Param(k, str(v)) for k, v in spec.params.items()]
    for i in range(0, len(metrics), 900):
        client.log_batch(run_id, metrics=metrics[i : i + 900], params=params if i == 0 else [])
    if not metrics and params:
        client.log_batch(run_id, params=params)
    if spec.status != "RUNNING":
        client.set_terminated(run_id, spec.status, end_time=start and start + 1000)
    return run_id


def log_runs(
    client: MlflowClient, experiment_id: str, specs: Iterable[RunSpec], workers: int = 4
) -> list[str]:
    """Log every spec as a run (in parallel); returns the run ids in order."""
    specs = list(specs)
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda s: _log_one(client, experiment_id, s), specs))


def new_experiment(client: MlflowClient, prefix: str) -> tuple[str, str]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return client.create_experiment(name), name


def fit_runs(client: MlflowClient, experiment_id: str, family: str | None = None) -> list:
    filt = f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_FIT}'"
    runs = client.search_runs([experiment_id], filt, max_results=1000)
    return [r for r in runs if family is None or r.data.tags.get(schema.TAG_FAMILY) == family]


def read_artifact(client: MlflowClient, run_id: str, path: str, tmp: Path | None = None) -> bytes:
    """The published fit's file ``path`` (``scaling/fit.json``, ...) of the fit run."""
    content = read_published_artifact(client, client.get_run(run_id), path)
    assert content is not None, f"fit run {run_id} has no published {path}"
    return content


def fit_json(client: MlflowClient, run_id: str, tmp: Path | None = None) -> dict:
    """The published ``fit.json`` of the fit run."""
    return json.loads(read_artifact(client, run_id, schema.ARTIFACT_FIT_JSON, tmp))


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    env.update(extra or {})
    return env


def run_cli(*args, timeout: float = 300, env: dict[str, str] | None = None):
    """``python -m mlflow_scaling.cli ARGS`` in a subprocess (no MLflow env leaking in)."""
    return subprocess.run(
        [sys.executable, "-m", "mlflow_scaling.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(env),
        cwd=ROOT,
    )


def start_cli(*args, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mlflow_scaling.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(env),
        cwd=ROOT,
    )


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def call_cli(*args) -> CliResult:
    """``mlflow-scaling ARGS`` in this process (no interpreter start-up): exit code and output."""
    import contextlib
    import io

    from mlflow_scaling.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse errors
            code = int(exc.code or 0)
    return CliResult(code, out.getvalue(), err.getvalue())


def race_claims(uri: str, writers: int = 6) -> None:
    """``writers`` threads claim refit numbers on one run at the same instant: each must get
    its own number, 1 to ``writers``, held by its own token."""
    import threading

    from mlflow_scaling.tracking.fit_run import claim_refit_number

    client = MlflowClient(uri)
    exp_id, _ = new_experiment(client, "claims")
    run = client.create_run(exp_id)
    barrier = threading.Barrier(writers)
    got: dict[str, int] = {}

    def writer(token: str) -> None:
        own = MlflowClient(uri)
        barrier.wait()
        got[token] = claim_refit_number(own, run, token)

    threads = [threading.Thread(target=writer, args=(f"token{i}",)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(got.values()) == list(range(1, writers + 1))
    params = client.get_run(run.info.run_id).data.params
    held = {params[f"{schema.PARAM_REFIT_CLAIM_PREFIX}{n}"]: n for n in range(1, writers + 1)}
    assert {value.partition("@")[0]: n for value, n in held.items()} == got
