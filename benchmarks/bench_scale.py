"""Team scale: 20,000 member runs in 1,000 families across 10 experiments on PostgreSQL.

Against ``mlflow server --app-name scaling`` backed by PostgreSQL (artifacts proxied by the
server, ``--artifacts-destination``), it measures:

* the full refit pass (``--force``) as a fresh ``mlflow-scaling refit`` process over
  ``--fit-families`` families (default 10) with ``--workers 1`` and over as many others with
  ``--workers 2``, each with the peak memory of its process tree (RSS summed over the pass and
  its worker processes, sampled every 0.1 s); seconds per family scale to the 1,000;
* the no-change pass over all 1,000 families as a fresh process twice: first with
  ``--full-check`` (every member run read, as every pass did before the quick check), then the
  quick check of ``jobs/changes.py`` (target <= 10 s), each with its memory;
* the ``/scaling/`` index (target <= 1 s: it reads one page of fit runs) and one family page
  (target <= 1 s), median of 5 requests each.

Member runs are written in bulk straight into MLflow's own tables with MLflow's SQLAlchemy
models (a few thousand rows per statement): logging 20,000 runs through the REST API one run at
a time would take longer than everything measured. Each run is what the Lightning callback
leaves: tags ``scaling.family`` and ``scaling.loss_metric``, metrics ``scaling.params``,
``scaling.tokens``, ``scaling.flops`` and ``val_loss`` (latest values included), FINISHED two
hours ago (runs the team logged before this pass).

Fitting 1,000 families takes long on a small shared machine (the full pass is measured on a
sample instead), so every other family then gets a *seeded* fit run, written in bulk the same
way: a copy of a real fit run made by the measured pass (its tags, params with the published
record, latest metrics; no artifacts), with the family's own name, input digest (computed by
the refit job's own function from the runs read back through the server), member count and
spans, as if written by the team's refit an hour ago. The no-change passes then skip exactly
the families they would skip after a real full pass.

    eval "$(MLFLOW_SCALING_PG_DIR=/tmp/pg-bench MLFLOW_SCALING_PG_PORT=55912 \\
             scripts/ci_postgres.sh)"
    python benchmarks/bench_scale.py --postgres-uri "$MLFLOW_SCALING_TEST_POSTGRES_URI"

The machine may be shared: the load average is printed before and after each measurement.
The refit passes run with ``--bootstrap 0 --no-curves`` (intervals off: the fit, isoFLOP,
phases, check, figure, report and writes remain) unless ``--bootstrap`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

INDEX_TARGET_S = 1.0
FAMILY_TARGET_S = 1.0
NOCHANGE_TARGET_S = 10.0
POSTGRES_ENV = "MLFLOW_SCALING_TEST_POSTGRES_URI"
RUN_AGE_MS = 2 * 3600 * 1000


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def family_rows(
    index: int, runs: int, rng: np.random.Generator
) -> list[tuple[float, float, float]]:
    """``runs`` (N, D, loss) points of a Chinchilla-like law that varies with the family."""
    e, a, b = 1.7 + 0.001 * (index % 100), 400.0 + index % 37, 2000.0 - 3 * (index % 50)
    alpha, beta = 0.33 + 0.0002 * (index % 50), 0.36 - 0.0002 * (index % 40)
    sizes = np.geomspace(1e7, 1e9, 5)
    ratios = np.geomspace(5, 80, max(1, runs // len(sizes)))
    out = []
    for n in sizes:
        for k in ratios:
            d = k * n
            loss = (e + a / n**alpha + b / d**beta) * float(np.exp(rng.normal(0, 0.004)))
            out.append((float(n), float(d), loss))
    return out[:runs]


def bulk_log(pg_uri: str, experiments: dict[str, str], families: int, runs: int) -> int:
    """Insert the member runs with MLflow's SQLAlchemy models; returns how many."""
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import (
        SqlExperiment,
        SqlLatestMetric,
        SqlMetric,
        SqlRun,
        SqlTag,
    )

    from mlflow_scaling.tracking import schema

    engine = sa.create_engine(pg_uri)
    rng = np.random.default_rng(0)
    total = 0
    now = int(time.time() * 1000) - RUN_AGE_MS  # runs the team logged earlier
    with engine.begin() as conn:
        locations = dict(
            conn.execute(
                sa.select(SqlExperiment.experiment_id, SqlExperiment.artifact_location).where(
                    SqlExperiment.experiment_id.in_([int(i) for i in experiments.values()])
                )
            ).all()
        )
    for e_index, (exp_name, exp_id) in enumerate(experiments.items()):
        run_rows, tag_rows, metric_rows = [], [], []
        for f in range(families):
            family = f"{exp_name}-family-{f:03d}"
            for i, (n, d, loss) in enumerate(family_rows(e_index * families + f, runs, rng)):
                run_id = uuid.uuid4().hex
                run_rows.append(
                    {
                        "run_uuid": run_id,
                        "name": f"{family}-{i:02d}",
                        "source_type": "LOCAL",
                        "source_name": "bench_scale",
                        "entry_point_name": "",
                        "user_id": "bench",
                        "status": "FINISHED",
                        "start_time": now,
                        "end_time": now + 1000,
                        "source_version": "",
                        "lifecycle_stage": "active",
                        "artifact_uri": f"{locations[int(exp_id)]}/{run_id}/artifacts",
                        "experiment_id": int(exp_id),
                    }
                )
                tag_rows += [
                    {"key": schema.TAG_FAMILY, "value": family, "run_uuid": run_id},
                    {"key": schema.TAG_LOSS_METRIC, "value": "val_loss", "run_uuid": run_id},
                    {"key": "mlflow.runName", "value": f"{family}-{i:02d}", "run_uuid": run_id},
                ]
                for key, value in (
                    (schema.METRIC_PARAMS, n),
                    (schema.METRIC_TOKENS, d),
                    (schema.METRIC_FLOPS, 6 * n * d),
                    ("val_loss", loss),
                ):
                    metric_rows.append(
                        {
                            "key": key,
                            "value": value,
                            "timestamp": now,
                            "step": 0,
                            "is_nan": False,
                            "run_uuid": run_id,
                        }
                    )
        with engine.begin() as conn:
            conn.execute(sa.insert(SqlRun.__table__), run_rows)
            conn.execute(sa.insert(SqlTag.__table__), tag_rows)
            conn.execute(sa.insert(SqlMetric.__table__), metric_rows)
            conn.execute(sa.insert(SqlLatestMetric.__table__), metric_rows)
        total += len(run_rows)
    engine.dispose()
    return total


def seed_fit_runs(pg_uri: str, client, experiments: dict[str, str], settings, template_id: str,
                  skip: set[tuple[str, str]]) -> int:  # fmt: skip
    """A fit run per family not in ``skip``: a copy of the real fit run ``template_id`` (its
    tags, params with the published record, latest metrics) with the family's own name, input
    digest (computed by the refit job's own function from the runs read back through the
    server), member count and spans. Artifacts are not copied (module docstring)."""
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import (
        SqlExperiment,
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )

    from mlflow_scaling.jobs.refit import span_metrics
    from mlflow_scaling.tracking import schema
    from mlflow_scaling.tracking.digest import input_digest
    from mlflow_scaling.tracking.published import PublishedFit, numbered_params
    from mlflow_scaling.tracking.reading import read_families, resolve_experiments

    template = client.get_run(template_id)
    records = numbered_params(template.data.params, schema.PARAM_PUBLISHED_PREFIX)
    number = max(records)
    record = PublishedFit.from_param(number, records[number])
    start = time.perf_counter()
    families = read_families(client, resolve_experiments(client, list(experiments)))
    print(f"read every member run of the {len(families)} families through the server in "
          f"{time.perf_counter() - start:.1f} s (what every no-change pass did before the "
          f"quick check)  [{load()}]")  # fmt: skip
    engine = sa.create_engine(pg_uri)
    with engine.begin() as conn:
        locations = dict(
            conn.execute(
                sa.select(SqlExperiment.experiment_id, SqlExperiment.artifact_location)
            ).all()
        )
    now = int(time.time() * 1000) - RUN_AGE_MS // 2  # the team's refit an hour ago
    run_rows, tag_rows, param_rows, metric_rows = [], [], [], []
    for fam in families:
        if (fam.experiment.experiment_id, fam.name) in skip:
            continue
        run_id, exp_id = uuid.uuid4().hex, int(fam.experiment.experiment_id)
        name = f"scaling fit: {fam.name}"
        run_rows.append({
            "run_uuid": run_id, "name": name, "source_type": "LOCAL",
            "source_name": "bench_scale", "entry_point_name": "", "user_id": "bench",
            "status": "FINISHED", "start_time": now, "end_time": now + 1000,
            "source_version": "", "lifecycle_stage": "active",
            "artifact_uri": f"{locations[exp_id]}/{run_id}/artifacts", "experiment_id": exp_id,
        })  # fmt: skip
        metrics = {**record.metrics, **span_metrics(fam),
                   schema.METRIC_FIT_POINTS: float(len(fam.members)),
                   schema.METRIC_FIT_EXCLUDED: float(len(fam.excluded))}  # fmt: skip
        mine = PublishedFit(**{**record.__dict__, "input_digest": input_digest(fam),
                               "metrics": metrics})  # fmt: skip
        tags = {**template.data.tags, **mine.mirror_tags(), "mlflow.runName": name,
                schema.TAG_FAMILY: fam.name}  # fmt: skip
        tag_rows += [{"key": k, "value": v, "run_uuid": run_id} for k, v in tags.items()]
        params = {**template.data.params, f"{schema.PARAM_PUBLISHED_PREFIX}{number}":
                  mine.to_param()}  # fmt: skip
        param_rows += [{"key": k, "value": v, "run_uuid": run_id} for k, v in params.items()]
        values = {**template.data.metrics, **metrics}
        metric_rows += [
            {"key": k, "value": 0.0 if v != v else v, "timestamp": now, "step": number,
             "is_nan": v != v, "run_uuid": run_id}
            for k, v in values.items()
        ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(sa.insert(SqlRun.__table__), run_rows)
        conn.execute(sa.insert(SqlTag.__table__), tag_rows)
        conn.execute(sa.insert(SqlParam.__table__), param_rows)
        conn.execute(sa.insert(SqlMetric.__table__), metric_rows)
        conn.execute(sa.insert(SqlLatestMetric.__table__), metric_rows)
    engine.dispose()
    return len(run_rows)


def _tree_rss(pid: int) -> int:
    """Resident memory (bytes) of ``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a command; returns (seconds, peak RSS of its process tree, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}:\n{err[-3000:]}")
    return seconds, peak[0], out


def timed_get(url: str, repeat: int = 5) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=300) as resp:
            body = resp.read()
            assert resp.status == 200
        times.append(time.perf_counter() - start)
        size = len(body)
    return statistics.median(times), size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-uri", default=os.environ.get("MLFLOW_SCALING_TEST_POSTGRES_URI")
    )
    parser.add_argument("--experiments", type=int, default=10)
    parser.add_argument("--families", type=int, default=100, help="per experiment")
    parser.add_argument("--runs", type=int, default=20, help="per family")
    parser.add_argument("--bootstrap", type=int, default=0)
    parser.add_argument(
        "--fit-families", type=int, default=10, help="families fitted by each measured full pass"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="FILE",
        help="run the quick no-change pass under cProfile and write its stats here",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not args.postgres_uri:
        raise SystemExit("bench_scale: give --postgres-uri (scripts/ci_postgres.sh starts one)")
    import sqlalchemy as sa
    from _server_support import MlflowCliServer
    from mlflow import MlflowClient

    # A fresh database for this run, so the numbers are for exactly this many runs.
    base, _, _ = args.postgres_uri.rpartition("/")
    db = f"bench_scale_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.postgres_uri, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
    pg_uri = f"{base}/{db}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    print(f"bench_scale: {os.cpu_count()} CPUs, {load()}; database {db}; files in {tmp}")

    server = MlflowCliServer(
        tmp / "server",
        app_name="scaling",
        backend_store_uri=pg_uri,
        artifacts_dir=tmp / "artifacts",
    )
    server.start(300)
    try:
        client = MlflowClient(server.uri)
        experiments = {}
        for e in range(args.experiments):
            name = f"scale-{e:02d}"
            experiments[name] = client.create_experiment(name)
        start = time.perf_counter()
        n_runs = bulk_log(pg_uri, experiments, args.families, args.runs)
        took = time.perf_counter() - start
        print(
            f"logged {n_runs} member runs in {args.families * args.experiments} families, "
            f"{args.experiments} experiments, in {took:.1f} s (bulk)"
        )

        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
        env["MLFLOW_TRACKING_URI"] = server.uri
        cli = [
            sys.executable,
            "-m",
            "mlflow_scaling.cli",
            "refit",
            "--format",
            "json",
            "--bootstrap",
            str(args.bootstrap),
            "--no-curves",
        ]
        names = list(experiments)
        k = args.fit_families
        fitted: set[tuple[str, str]] = set()
        for label, picked, workers in (
            ("full pass, --workers 1", range(0, k), 1),
            ("full pass, --workers 2", range(k, 2 * k), 2),
        ):
            chosen = [f"{names[0]}-family-{i:03d}" for i in picked]
            fitted |= {(experiments[names[0]], name) for name in chosen}
            before = load()
            seconds, peak, out = run_measured(
                cli + ["--force", "--workers", str(workers), "--experiment", names[0],
                       *(a for name in chosen for a in ("--family", name))],
                env,
            )  # fmt: skip
            done = out.count('"status": "fitted"')
            print(
                f"{label} (--force): {done} of {len(picked)} families fitted in {seconds:.1f} s "
                f"({seconds / len(picked):.1f} s per family; x1,000 families: "
                f"{seconds / len(picked) * 1000 / 3600:.1f} h), peak memory "
                f"{peak / 2**20:.0f} MiB  [{before} -> {load()}]"
            )
        from mlflow_scaling.jobs.analysis import RefitSettings
        from mlflow_scaling.tracking.fit_run import find_fit_runs

        template = find_fit_runs(client, experiments[names[0]], f"{names[0]}-family-000")[0]
        start = time.perf_counter()
        seeded = seed_fit_runs(pg_uri, client, experiments,
                               RefitSettings(n_boot=args.bootstrap, curves=False),
                               template.info.run_id, fitted)  # fmt: skip
        print(f"seeded {seeded} fit runs, copies of a real one ({len(template.data.metrics)} "
              f"metrics, {len(template.data.tags)} tags, {len(template.data.params)} params), "
              f"in {time.perf_counter() - start:.1f} s  [{load()}]")  # fmt: skip
        for label, extra, target in (
            ("no-change pass, full check (--full-check)", ["--full-check"], None),
            ("no-change pass, quick check", [], NOCHANGE_TARGET_S),
        ):
            before = load()
            command = cli + extra
            if args.profile is not None and not extra:
                command = [sys.executable, "-m", "cProfile", "-o", str(args.profile),
                           *cli[1:]]  # fmt: skip
            seconds, peak, out = run_measured(command, env)
            skipped = out.count('"status": "skipped"')
            quick = out.count("(quick check)")
            aim = "" if target is None else f" (target <= {target:.0f} s)"
            print(
                f"{label}, fresh process, all experiments: {skipped} families skipped "
                f"({quick} without reading their members) in {seconds:.2f} s{aim}, peak memory "
                f"{peak / 2**20:.0f} MiB  [{before} -> {load()}]"
            )

        index_s, index_size = timed_get(f"{server.uri}/scaling/")
        print(
            f"/scaling/ index: {index_s:.3f} s median of 5 ({index_size / 1024:.0f} KiB; "
            f"target <= {INDEX_TARGET_S:.0f} s)  [{load()}]"
        )
        family_s, family_size = timed_get(
            f"{server.uri}/scaling/family/{experiments[names[0]]}/{names[0]}-family-000"
        )
        print(
            f"family page: {family_s:.3f} s median of 5 ({family_size / 1024:.0f} KiB; "
            f"target <= {FAMILY_TARGET_S:.0f} s)  [{load()}]"
        )
    finally:
        server.stop()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
