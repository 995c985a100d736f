"""The comparison run of two families: found by its tags, written like a fit run.

One comparison run per (baseline experiment, baseline family, candidate family) lives in the
candidate's experiment, tagged ``scaling.role = compare`` with both family names. It never
carries ``scaling.family`` (it is not a member of either family). It is written by the fit
run's publishing protocol (:func:`fit_run.write_fit`, called by
:func:`..jobs.compare_publish.write_comparison`): a refit number of its own, the artifacts
``compare.json`` and ``compare.png`` in a folder of their own, then the record that publishes
them with the digests; the refit job skips it while both digests of the published record match
(:mod:`..jobs.compare_refit`). Readers find the files with :mod:`.published`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..laws.compare import Comparison, FamilyRuns
from . import schema
from .digest import input_digest, settings_digest
from .family_axis import family_axis, member_flops
from .fit_run import MAX_RUN_NAME
from .reading import ExperimentRef, Family, fit_run_order, search_all_runs

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

COMPARE_DOC_SCHEMA = "mlflow-scaling/compare"
COMPARE_DOC_VERSION = 2
COMPARE_VERSION = 2
"""Bump when the comparison changes what it writes: every comparison is then redone."""


def family_runs(family: Family) -> FamilyRuns:
    """The member points of a family read from MLflow, one bootstrap group per run, on the
    family's compute axis (learned from the members' logged FLOPs, as the refit job does)."""
    members = family.members
    axis = family_axis(members)
    n = np.array([p.n for p in members], dtype=float)
    d = np.array([p.d for p in members], dtype=float)
    return FamilyRuns(
        name=family.name,
        n=n,
        d=d,
        loss=np.array([p.loss for p in members], dtype=float),
        flops=member_flops(members, axis),
        groups=np.array([p.run_id for p in members]),
        axis=axis,
    )


def compare_run_name(baseline: str, candidate: str) -> str:
    return f"scaling compare: {candidate} vs {baseline}"[:MAX_RUN_NAME]


def find_compare_runs(
    client: MlflowClient, candidate_experiment_id: str, baseline_experiment_id: str | None,
    baseline: str, candidate: str,
) -> list[Run]:  # fmt: skip
    """Active comparison runs of this pair, the one that counts (oldest) first.

    ``baseline_experiment_id`` None accepts a baseline from any experiment.
    """
    filt = (
        f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_COMPARE}' and "
        f"{schema.tag_filter(schema.TAG_COMPARE_CANDIDATE, candidate)}"
    )
    runs = search_all_runs(client, [candidate_experiment_id], filt)
    wanted = {schema.TAG_COMPARE_CANDIDATE: candidate, schema.TAG_COMPARE_BASELINE: baseline}
    if baseline_experiment_id is not None:
        wanted[schema.TAG_COMPARE_BASELINE_EXPERIMENT] = baseline_experiment_id
    runs = [r for r in runs if all(r.data.tags.get(k) == v for k, v in wanted.items())]
    return sorted(runs, key=fit_run_order)


def comparison_digest(baseline: Family, candidate: Family) -> str:
    """Digest of both families' member runs (each as :func:`input_digest` sees it)."""
    return settings_digest({"baseline": input_digest(baseline),
                            "candidate": input_digest(candidate)})  # fmt: skip


def comparison_settings(n_boot: int, level: float, seed: int, budgets) -> dict[str, Any]:
    return {
        "n_boot": int(n_boot),
        "level": float(level),
        "seed": int(seed),
        "budgets": [float(b) for b in budgets or ()],
        "compare_version": COMPARE_VERSION,
    }


def build_compare_document(
    comparison: Comparison,
    baseline: ExperimentRef,
    candidate: ExperimentRef,
    *,
    run_id: str | None,
    settings: Mapping[str, Any],
    digest: str | None,
    refit_number: int | None = None,
) -> dict:
    """``scaling/compare.json`` (and the CLI's JSON): the comparison plus where it came from."""
    doc = comparison.to_dict()
    doc["baseline"] = {**doc["baseline"], "experiment_id": baseline.experiment_id,
                       "experiment": baseline.name}  # fmt: skip
    doc["candidate"] = {**doc["candidate"], "experiment_id": candidate.experiment_id,
                        "experiment": candidate.name}  # fmt: skip
    return {
        "schema": COMPARE_DOC_SCHEMA,
        "version": COMPARE_DOC_VERSION,
        **doc,
        "compare_run_id": run_id,
        "refit_number": refit_number,
        "compared_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "input_digest": digest,
        "settings": dict(settings),
    }


def comparison_metrics(comparison: Comparison) -> dict[str, float]:
    """The multiplier (and its interval) at every budget, the target's, and the crossover."""
    out: dict[str, float] = {}
    for row in comparison.budgets:
        out[schema.compare_budget_metric(row["flops"])] = row["multiplier"]
        out[schema.compare_budget_metric(row["flops"], "lo")] = row["lo"]
        out[schema.compare_budget_metric(row["flops"], "hi")] = row["hi"]
    out[schema.METRIC_COMPARE_MULTIPLIER] = comparison.budgets[-1]["multiplier"]
    if comparison.crossover_flops is not None:
        out[schema.METRIC_COMPARE_CROSSOVER] = comparison.crossover_flops
    if comparison.shift_multiplier is not None:
        for key, suffix in (("value", ""), ("lo", "_lo"), ("hi", "_hi")):
            out[schema.METRIC_COMPARE_SHIFT + suffix] = comparison.shift_multiplier[key]
    return out
