"""Turn a table of past runs (N, D or C, loss) into member runs of a scaling family.

Teams with history start at once: each row becomes a finished MLflow run carrying the data
contract's names, exactly as if the Lightning callback had logged it. Importing is idempotent:
each run remembers its source row (a digest of the file name and the row's values), and rows
already imported into the experiment are skipped.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from ..laws.allocation import FLOPS_PER_PARAM_TOKEN
from ..tabular import Points
from . import schema

TAG_IMPORT_ROW = "scaling.import_row"
"""Digest of (source file name, N, D, loss) of an imported row; makes re-imports no-ops."""


@dataclass(frozen=True)
class ImportResult:
    experiment_id: str
    created: list[str]
    skipped: int

    def to_dict(self) -> dict:
        return {
            "experiment_id": self.experiment_id,
            "created": len(self.created),
            "skipped_already_imported": self.skipped,
        }


def _row_digest(source: str, n: float, d: float, loss: float) -> str:
    text = f"{source}|{n!r}|{d!r}|{loss!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _experiment_id(client: MlflowClient, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name)


def _already_imported(client: MlflowClient, experiment_id: str, family: str) -> set[str]:
    seen: set[str] = set()
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=schema.family_filter(family), max_results=1000,
            page_token=token,
        )  # fmt: skip
        seen.update(r.data.tags[TAG_IMPORT_ROW] for r in page if TAG_IMPORT_ROW in r.data.tags)
        token = page.token
        if not token:
            return seen


def import_points(
    client: MlflowClient,
    points: Points,
    *,
    family: str,
    experiment: str,
    source: str | Path,
    loss_metric: str = "loss",
    params_convention: str = "as given in the source table",
) -> ImportResult:
    """Log one finished member run per row of ``points`` (rows already imported are skipped)."""
    if not family.strip():
        raise ValueError("family must be a non-empty name")
    if points.loss is None:
        raise ValueError(f"{source}: importing runs needs a loss for every row")
    experiment_id = _experiment_id(client, experiment)
    seen = _already_imported(client, experiment_id, family)
    name = Path(source).name
    created, skipped = [], 0
    for i, (n, d, loss) in enumerate(zip(points.n, points.d, points.loss, strict=True)):
        digest = _row_digest(name, float(n), float(d), float(loss))
        if digest in seen:
            skipped += 1
            continue
        run = client.create_run(
            experiment_id,
            run_name=f"{family}-row{i + 1}",
            tags={
                schema.TAG_FAMILY: family,
                schema.TAG_LOSS_METRIC: loss_metric,
                TAG_IMPORT_ROW: digest,
                "mlflow.source.name": name,
            },
        )
        flops = FLOPS_PER_PARAM_TOKEN * float(n) * float(d)
        values = {
            schema.METRIC_PARAMS: float(n),
            schema.METRIC_TOKENS: float(d),
            schema.METRIC_FLOPS: flops,
            loss_metric: float(loss),
        }
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, int(time.time() * 1000), 0) for k, v in values.items()],
            params=[
                Param(schema.PARAM_FLOPS_METHOD, "imported: 6*N*D"),
                Param(schema.PARAM_PARAMS_CONVENTION, params_convention),
            ],
            tags=[RunTag("scaling.import_source_row", str(i + 1))],
        )
        client.set_terminated(run.info.run_id, "FINISHED")
        created.append(run.info.run_id)
        seen.add(digest)
    return ImportResult(experiment_id, created, skipped)
