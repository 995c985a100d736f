"""Publishing a comparison to its comparison run (found or created), by the fit run's protocol:
the artifacts ``compare.json`` and ``compare.png`` in a numbered folder, then the record."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..laws.compare import Comparison
from ..report.compare_figure import compare_figure_png
from ..strict_json import dumps as strict_dumps
from ..tracking import schema
from ..tracking.compare_run import (
    build_compare_document,
    compare_run_name,
    comparison_digest,
    comparison_metrics,
    find_compare_runs,
)
from ..tracking.digest import settings_digest
from ..tracking.fit_run import delete_duplicates, write_fit
from ..tracking.published import PublishedFit
from ..tracking.reading import Family

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run


def write_comparison(
    client: MlflowClient,
    comparison: Comparison,
    baseline: Family,
    candidate: Family,
    *,
    settings: Mapping[str, Any],
    known: list[Run] | None = None,
) -> dict:
    """Write the comparison to the pair's comparison run (found or created); its document."""
    exp_id = candidate.experiment.experiment_id
    base_exp = baseline.experiment.experiment_id
    runs = known if known is not None else find_compare_runs(
        client, exp_id, base_exp, baseline.name, candidate.name)  # fmt: skip
    if runs:
        delete_duplicates(client, runs)
        run = runs[0]
    else:
        run = client.create_run(
            exp_id,
            run_name=compare_run_name(baseline.name, candidate.name),
            tags={
                schema.TAG_ROLE: schema.ROLE_COMPARE,
                schema.TAG_COMPARE_BASELINE: baseline.name,
                schema.TAG_COMPARE_CANDIDATE: candidate.name,
                schema.TAG_COMPARE_BASELINE_EXPERIMENT: base_exp,
            },
        )
    digest = comparison_digest(baseline, candidate)
    docs: list[dict] = []

    def make_artifacts(number: int, folder: Path) -> None:
        doc = build_compare_document(comparison, baseline.experiment, candidate.experiment,
                                     run_id=run.info.run_id, settings=settings, digest=digest,
                                     refit_number=number)  # fmt: skip
        (folder / "compare.json").write_text(strict_dumps(doc, indent=2))
        (folder / "compare.png").write_bytes(compare_figure_png(doc))
        docs.append(doc)

    record = PublishedFit(
        number=0,
        path="",
        input_digest=digest,
        settings_digest=settings_digest(settings),
        status=comparison.verdict,
        metrics=comparison_metrics(comparison),
        tags={
            schema.TAG_COMPARE_VERDICT: comparison.verdict,
            schema.TAG_COMPARE_VERDICT_EXTRAPOLATED: comparison.verdict_extrapolated,
            schema.TAG_COMPARE_SLOPE: (comparison.slope_test or {}).get("decision", ""),
        },
    )
    write_fit(client, run, make_artifacts=make_artifacts, record=record)
    return docs[-1]
