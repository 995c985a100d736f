"""What a plan takes from a family: its target, its check, its compute axis and measured MFU.

The functions on ``doc`` read a family's ``scaling/fit.json`` (a dict) and need no MLflow;
:func:`read_fit_doc` and :func:`read_run_facts` read from an MLflow client.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..laws.allocation import tokens_at_optimum
from ..laws.check import extrapolation_criterion
from ..laws.chinchilla import ChinchillaLaw
from ..laws.compute_axis import ComputeAxis
from ..tabular import InputError
from ..tracking import schema
from ..tracking.fit_document import FitDocumentError, load_fit_document
from ..tracking.fit_run import find_fit_runs
from ..tracking.published import read_published_json
from ..tracking.reading import is_fit_run, search_all_runs
from .compute import FlopsPerToken

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from ..tracking.reading import ExperimentRef

LARGEST_BAND = 0.02
"""Runs within 2 % of the largest size that logged an MFU count as "the largest runs"."""


# --- from fit.json (no MLflow) --------------------------------------------------------------


def check_summary(doc: dict, plan_params: float | None = None) -> dict:
    """The family's latest check: ``verdict``, ``criteria`` and the names that failed.

    With ``plan_params`` (a planned N other than the check's target) the target's criterion,
    ``extrapolation``, is measured again at that N: the gate holds for what is planned.
    """
    check = doc.get("check") or {}
    criteria = _at_plan_target(doc, list(check.get("criteria") or []), plan_params)
    failing = [c["name"] for c in criteria if c.get("passed") is False]
    if not criteria and check.get("reason"):
        failing = [f"insufficient_data ({check['reason']})"]
    verdict = check.get("verdict") or doc.get("check_verdict") or schema.CHECK_FAIL
    if criteria and plan_params is not None:
        verdict = schema.CHECK_FAIL if failing else schema.CHECK_PASS
    if verdict != schema.CHECK_PASS and not failing:
        failing = ["verdict " + str(verdict)]
    return {
        "verdict": verdict,
        "criteria": criteria,
        "failing": failing,
        "refit_number": doc.get("refit_number"),
        "fit_run_id": doc.get("fit_run_id"),
    }


def _at_plan_target(doc: dict, criteria: list[dict], plan_params: float | None) -> list[dict]:
    """``criteria`` with ``extrapolation`` measured at ``plan_params`` (when given)."""
    settings = (doc.get("check") or {}).get("settings") or {}
    sizes = [float(m["N"]) for m in doc.get("members") or [] if m.get("N")]
    if plan_params is None or not sizes or "max_extrapolation" not in settings:
        return criteria
    checked = settings.get("target_params")
    again = extrapolation_criterion(
        plan_params, np.array(sizes), float(settings["max_extrapolation"])
    ).to_dict()
    again["detail"] += f" (at the plan's target; the refit checked N = {checked:.3g})"
    return [again if c.get("name") == "extrapolation" else c for c in criteria]


def describe_failures(summary: dict) -> str:
    """One line naming each failing criterion with its value and threshold."""
    by_name = {c["name"]: c for c in summary["criteria"]}
    parts = []
    for name in summary["failing"]:
        c = by_name.get(name)
        if c is not None and c.get("value") is not None:
            value, threshold = c["value"], c["threshold"]
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            parts.append(f"{name} ({shown}, threshold {threshold})")
        else:
            parts.append(name)
    return ", ".join(parts)


def family_law(doc: dict) -> ChinchillaLaw | None:
    params = (doc.get("approach3") or {}).get("params")
    if not params:
        return None
    try:
        return ChinchillaLaw(**{k: float(params[k]) for k in ("E", "A", "B", "alpha", "beta")})
    except (KeyError, TypeError, ValueError):
        return None


def family_axis(doc: dict):
    """The family's compute axis: as its fit recorded it, else rebuilt from its member runs."""
    if doc.get("compute_axis"):
        return ComputeAxis.from_dict(doc["compute_axis"]), "recorded in its fit"
    members = doc.get("members") or []
    if not members:
        return ComputeAxis.six_nd(), "no member runs: 6ND"
    axis = ComputeAxis.from_runs(
        np.array([m["N"] for m in members], float),
        np.array([m["C"] for m in members], float),
        np.array([m["D"] for m in members], float),
    )
    return axis, "rebuilt from its member runs"


def family_flops_per_token(doc: dict, n: float) -> FlopsPerToken:
    """FLOPs per token at N on the family's compute axis (the axis of its fits)."""
    axis, where = family_axis(doc)
    value = float(np.asarray(axis.flops_per_token(n)).ravel()[0])
    return FlopsPerToken(value, f"the family's compute axis ({axis.kind}, {where})")


@dataclass(frozen=True)
class Target:
    params: float
    tokens: float
    sources: dict


def family_target(
    doc: dict,
    fpt_of,
    *,
    target_params: float | None = None,
    target_tokens: float | None = None,
    budget: float | None = None,
) -> Target:
    """The model and tokens to plan: given, else the family's check target.

    ``fpt_of(n)`` gives FLOPs per token at N (for ``budget``). Without tokens or a budget, a
    target N other than the check's is trained compute-optimally by the family's law, the way
    the check computes its own target's tokens.
    """
    prediction = (doc.get("check") or {}).get("prediction") or {}
    n, n_source = target_params, "given (--target-params)"
    if n is None:
        if not prediction.get("N"):
            raise InputError(
                f"family {doc.get('family')!r}: its fit has no check target (status "
                f"{doc.get('status')}); give --target-params and --target-tokens"
            )
        n, n_source = float(prediction["N"]), "the family's check target"
    if target_tokens is not None:
        return Target(n, target_tokens, {"params_source": n_source,
                                         "tokens_source": "given (--target-tokens)"})  # fmt: skip
    if budget is not None:
        d = budget / fpt_of(n).value
        why = f"--budget {budget:g} FLOPs / FLOPs per token"
        return Target(n, d, {"params_source": n_source, "tokens_source": why})
    if target_params is None or math.isclose(n, float(prediction.get("N") or 0), rel_tol=1e-9):
        if prediction.get("D"):
            return Target(n, float(prediction["D"]), {
                "params_source": n_source,
                "tokens_source": f"the family's check target ({prediction.get('tokens')})",
            })  # fmt: skip
    law = family_law(doc)
    if law is None:
        raise InputError(
            f"family {doc.get('family')!r} has no fitted law to choose tokens for N = {n:g}; "
            "give --target-tokens or --budget"
        )
    d = float(np.asarray(tokens_at_optimum(law, n, family_axis(doc)[0])).ravel()[0])
    return Target(n, d, {"params_source": n_source,
                         "tokens_source": "compute-optimal by the family's law"})  # fmt: skip


# --- from MLflow ----------------------------------------------------------------------------


def read_fit_doc(client: MlflowClient, experiment: ExperimentRef, family: str) -> tuple[dict, str]:
    """The family's latest ``scaling/fit.json`` and its fit run id."""
    runs = find_fit_runs(client, experiment.experiment_id, family)
    if not runs:
        raise InputError(
            f"family {family!r} in experiment {experiment.name!r} has no fit run: run "
            "'mlflow-scaling refit' first"
        )
    run_id = runs[0].info.run_id
    try:
        doc = read_published_json(client, runs[0], schema.ARTIFACT_FIT_JSON)
    except ValueError as exc:
        raise InputError(
            f"family {family!r}: fit run {run_id} has no readable "
            f"{schema.ARTIFACT_FIT_JSON} ({type(exc).__name__})"
        ) from None
    if doc is None:
        raise InputError(
            f"family {family!r}: fit run {run_id} has no published {schema.ARTIFACT_FIT_JSON} "
            "yet: run 'mlflow-scaling refit' first"
        )
    if not isinstance(doc, dict):
        raise InputError(f"family {family!r}: {schema.ARTIFACT_FIT_JSON} is not a JSON object")
    try:
        return load_fit_document(doc, f"family {family!r}: fit run {run_id}").to_dict(), run_id
    except FitDocumentError as exc:
        raise InputError(str(exc)) from None


@dataclass(frozen=True)
class RunFacts:
    """What the family's member runs say beyond their points: MFU and how N was counted."""

    mfu: float | None
    mfu_source: str
    n_counts_embedding: bool = False
    """True when the runs logged ``scaling.params`` as the total count (with embeddings)."""


TOTAL_CONVENTION = "scaling.params = total"
"""How the callback's ``scaling.params_convention`` param starts when N counts everything."""


def read_run_facts(client: MlflowClient, experiment_id: str, family: str) -> RunFacts:
    """The median ``scaling.throughput.mfu`` of the family's largest runs that logged one,
    and whether its N counts the embedding (``scaling.params_convention``)."""
    runs = search_all_runs(client, [experiment_id], schema.family_filter(family))
    found, total = [], False
    for run in runs:
        if is_fit_run(run) or run.data.tags.get(schema.TAG_FAMILY) != family:
            continue
        convention = run.data.params.get(schema.PARAM_PARAMS_CONVENTION, "")
        total = total or convention.startswith(TOTAL_CONVENTION)
        mfu = run.data.metrics.get(schema.METRIC_MFU)
        n = run.data.metrics.get(schema.METRIC_PARAMS)
        if mfu is None or n is None or not (0 < mfu <= 1 and n > 0):
            continue
        found.append((float(n), float(mfu)))
    if not found:
        return RunFacts(None, f"no member run logged {schema.METRIC_MFU}", total)
    largest = max(n for n, _ in found)
    chosen = [m for n, m in found if n >= largest * (1 - LARGEST_BAND)]
    source = (
        f"measured: median {schema.METRIC_MFU} of the {len(chosen)} largest run(s) that logged "
        f"it (N ≈ {largest:.3g})"
    )
    return RunFacts(statistics.median(chosen), source, total)
