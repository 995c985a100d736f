"""The refit job on a live MLflow server: 1,000 member runs in 10 families.

Measures one full refit pass (every family fitted: Approaches 3 and 2, phases, scaling check,
bootstrap intervals, figure, report, writes) and one no-change pass (every family skipped by
its digest), each in this process, plus the no-change pass as a fresh ``mlflow-scaling refit``
process (interpreter and MLflow start-up included), and a forced full pass with two worker
processes. Targets: full pass <= 60 s and no-change
pass <= 5 s on 2 cores.

Reference, in the same process: reading the same 1,000 runs one ``get_run`` call at a time,
the naive way; the no-change pass (a few paged searches) is compared with it.

    python benchmarks/bench_refit.py [--tracking-uri http://...] [--bootstrap 200]

Without ``--tracking-uri`` a server (SQLite store, temporary folders) is started here, the way
the tests start theirs. The machine is shared, so the load average is printed with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

FULL_TARGET_S = 60.0
NOCHANGE_TARGET_S = 5.0


def family_runs(index: int, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """100 (N, D, loss) runs. Even families: a size x tokens grid; odd: 5 isoFLOP budgets."""
    law = {
        "E": 1.7 + 0.05 * index,
        "A": 400.0 * (1 + 0.1 * index),
        "B": 2000.0 * (1 - 0.05 * index),
        "alpha": 0.33 + 0.005 * index,
        "beta": 0.36 - 0.004 * index,
    }

    def loss(n, d):
        return law["E"] + law["A"] / n ** law["alpha"] + law["B"] / d ** law["beta"]

    rows = []
    if index % 2 == 0:
        for n in np.geomspace(1e7, 3e9, 10):
            for k in np.geomspace(2, 200, 10):
                rows.append((n, k * n))
    else:
        for c in np.geomspace(1e18, 1e21, 5):
            n_opt = 0.1 * np.sqrt(c)
            for n in n_opt * np.geomspace(0.1, 10, 20):
                rows.append((n, c / (6 * n)))
    return [(n, d, loss(n, d) * float(np.exp(rng.normal(0, 0.005)))) for n, d in rows]


def log_family(client, experiment_id: str, family: str, rows, workers: int = 6) -> None:
    from mlflow.entities import Metric

    from mlflow_scaling.tracking import schema

    def one(i_row):
        i, (n, d, loss) = i_row
        run = client.create_run(
            experiment_id, run_name=f"{family}-{i}", tags={schema.TAG_FAMILY: family}
        )
        ts = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[
                Metric(schema.METRIC_PARAMS, n, ts, 0),
                Metric(schema.METRIC_TOKENS, d, ts, 0),
                Metric(schema.METRIC_FLOPS, 6 * n * d, ts, 0),
                Metric(schema.DEFAULT_LOSS_METRIC, loss, ts, 0),
            ],
        )
        client.set_terminated(run.info.run_id)
        return run.info.run_id

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, enumerate(rows)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=None, help="use this server (default: start one)")
    parser.add_argument("--families", type=int, default=10)
    parser.add_argument("--bootstrap", type=int, default=None, help="default: the refit default")
    args = parser.parse_args()

    from mlflow import MlflowClient

    from mlflow_scaling.jobs.analysis import RefitSettings
    from mlflow_scaling.jobs.refit import refit_pass

    server = None
    if args.tracking_uri is None:
        from conftest import start_mlflow_server

        server = start_mlflow_server(Path(tempfile.mkdtemp(prefix="bench-refit-")))
        uri = server.uri
    else:
        uri = args.tracking_uri
    try:
        client = MlflowClient(uri)
        exp_name = f"bench-refit-{uuid.uuid4().hex[:8]}"
        exp_id = client.create_experiment(exp_name)
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        ids = []
        for i in range(args.families):
            ids += log_family(client, exp_id, f"family-{i:02d}", family_runs(i, rng))
        setup_s = time.perf_counter() - t0
        print(f"logged {len(ids)} runs in {args.families} families in {setup_s:.1f} s ({uri})")

        settings = (
            RefitSettings() if args.bootstrap is None else RefitSettings(n_boot=args.bootstrap)
        )
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        full = refit_pass(client, experiments=[exp_name], settings=settings)
        full_s = time.perf_counter() - t0
        bad = [o for o in full if o.status != "fitted"]
        if bad:
            print("families not fitted:", [(o.family, o.status, o.message) for o in bad])
            return 1

        t0 = time.perf_counter()
        again = refit_pass(client, experiments=[exp_name], settings=settings)
        nochange_s = time.perf_counter() - t0
        assert all(o.status == "skipped" for o in again), [o.status for o in again]

        cmd = [
            sys.executable,
            "-m",
            "mlflow_scaling.cli",
            "refit",
            "--tracking-uri",
            uri,
            "--experiment",
            exp_name,
            "--bootstrap",
            str(settings.n_boot),
            "--format",
            "json",
        ]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
        cli_s = time.perf_counter() - t0
        cli = json.loads(out.stdout)
        assert {o["status"] for o in cli["families"]} == {"skipped"}

        t0 = time.perf_counter()
        forced = refit_pass(
            client, experiments=[exp_name], settings=settings, force=True, workers=2
        )
        workers2_s = time.perf_counter() - t0
        assert all(o.status == "fitted" for o in forced), [o.message for o in forced]

        t0 = time.perf_counter()
        for run_id in ids:
            client.get_run(run_id)
        naive_s = time.perf_counter() - t0
        load_after = os.getloadavg()[0]

        per_family = [o.seconds for o in full]
        print(f"bootstrap replicates per family: {settings.n_boot}")
        print(
            f"full pass ({len(full)} families fitted): {full_s:7.1f} s   "
            f"target <= {FULL_TARGET_S:g} s  "
            f"({'ok' if full_s <= FULL_TARGET_S else 'OVER'}; per family "
            f"{min(per_family):.1f}-{max(per_family):.1f} s analysis and writes)"
        )
        print(
            f"no-change pass (digest skip):     {nochange_s:7.2f} s   target <= "
            f"{NOCHANGE_TARGET_S:g} s  ({'ok' if nochange_s <= NOCHANGE_TARGET_S else 'OVER'})"
        )
        print(
            f"no-change pass, fresh CLI process:{cli_s:7.2f} s   (in-pass {cli['seconds']:.2f} s)"
        )
        print(f"full pass, --workers 2 (forced):  {workers2_s:7.1f} s")
        print(
            f"reference: get_run per run (1,000 calls): {naive_s:.2f} s; "
            f"no-change pass / reference = {nochange_s / naive_s:.3f}"
        )
        print(
            f"load average (1 min) before/after: {load_before:.1f} / {load_after:.1f} "
            f"on {os.cpu_count()} cores"
        )
        print(
            json.dumps(
                {
                    "full_pass_s": round(full_s, 2),
                    "no_change_pass_s": round(nochange_s, 3),
                    "no_change_cli_s": round(cli_s, 2),
                    "full_pass_workers2_s": round(workers2_s, 2),
                    "reference_get_run_s": round(naive_s, 2),
                    "n_boot": settings.n_boot,
                    "runs": len(ids),
                }
            )
        )
        return 0 if full_s <= FULL_TARGET_S and nochange_s <= NOCHANGE_TARGET_S else 1
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
