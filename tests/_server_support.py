"""A live ``mlflow server --app-name ...`` for the scaling-pages tests, and its data.

:class:`MlflowCliServer` reuses the life cycle of ``conftest.MlflowServer`` (start, readiness,
stop, log tail) but runs ``mlflow server`` itself, under uvicorn, as a user would: that is
what loads an ``--app-name`` app from the ``mlflow.app`` entry points.

:func:`log_family` writes member runs whose final losses follow a known Chinchilla law.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import MlflowServer

from mlflow_scaling.tracking import schema

# Chinchilla (Hoffmann et al. 2022) as the true law of the synthetic families.
TRUE_LAW = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
SIZES = (1e7, 3e7, 1e8, 3e8, 1e9)
TOKENS = (1e9, 3e9, 1e10, 3e10)


def true_loss(n: float, d: float) -> float:
    law = TRUE_LAW
    return law["E"] + law["A"] / n ** law["alpha"] + law["B"] / d ** law["beta"]


class MlflowCliServer(MlflowServer):
    """``mlflow server --app-name APP`` on a given store, with one uvicorn worker."""

    def __init__(
        self,
        root: Path,
        *,
        app_name: str,
        backend_store_uri: str,
        artifacts_dir: Path,
        extra_env: dict[str, str] | None = None,
        credentials: tuple[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__(root, port)
        self.app_name = app_name
        self._backend = backend_store_uri
        self.artifacts_dir = artifacts_dir
        self.extra_env = dict(extra_env or {})
        self.credentials = credentials

    @property
    def backend_store_uri(self) -> str:
        return self._backend

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "mlflow", "server",
            "--app-name", self.app_name,
            "--backend-store-uri", self.backend_store_uri,
            "--artifacts-destination", str(self.artifacts_dir),
            "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", "1",
        ]  # fmt: skip

    def _env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MLFLOW_TRACKING", "_MLFLOW_SERVER"))
        }
        env["PYTHONUNBUFFERED"] = "1"
        # No background job runner: the pages do not need it and the tests share 2 cores.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        env.update(self.extra_env)
        return env

    def auth_header(self, credentials: tuple[str, str] | None = None) -> dict[str, str]:
        user, password = credentials or self.credentials or ("", "")
        if not user:
            return {}
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                if r.status != 200:
                    return False
            search = urllib.request.Request(
                f"{self.uri}/api/2.0/mlflow/experiments/search?max_results=1",
                headers=self.auth_header(),
            )
            with urllib.request.urlopen(search, timeout=10) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """End the server at once: a test server has nothing to drain (and idle keep-alive
        connections would hold uvicorn's graceful shutdown for seconds)."""
        if self.alive:
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_cli_server(timeout_s: float = 240.0, attempts: int = 2, **kwargs) -> MlflowCliServer:
    """Start one; on a lost port race (another process took it) try a fresh port."""
    for attempt in range(attempts):
        server = MlflowCliServer(**kwargs)
        try:
            return server.start(timeout_s)  # type: ignore[return-value]
        except RuntimeError:
            server.stop()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def log_family(
    client,
    experiment_id: str,
    family: str,
    sizes: Iterable[float] = SIZES,
    tokens: Iterable[float] = TOKENS,
) -> list[str]:
    """One finished member run per (N, D), final loss on the true law; returns the run ids."""
    from mlflow.entities import Metric

    grid = [(n, d) for n in sizes for d in tokens]

    def one(nd: tuple[float, float]) -> str:
        n, d = nd
        run = client.create_run(
            experiment_id, run_name=f"N{n:.0e} D{d:.0e}", tags={schema.TAG_FAMILY: family}
        )
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[
                Metric(schema.METRIC_PARAMS, n, now, 0),
                Metric(schema.METRIC_TOKENS, d, now, 0),
                Metric(schema.METRIC_FLOPS, 6 * n * d, now, 0),
                Metric(schema.DEFAULT_LOSS_METRIC, true_loss(n, d), now, 0),
            ],
        )
        client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, grid))
