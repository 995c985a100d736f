"""Scaling families: list them, and propose families for runs that have none.

A family is the set of runs of one experiment that share a ``scaling.family`` tag. Runs
without the tag can be grouped by their hyperparameters (MLflow params) *apart from the scale
ones*: runs that differ only in model size, training steps or tokens belong together.
:data:`DEFAULT_SCALE_PARAMS` lists the names treated as scale (case-insensitive, shell-style
patterns allowed); callers replace or extend it.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..laws.scatter import count_sizes
from . import schema
from .digest import input_digest
from .published import published_fit
from .reading import (
    ExperimentRef,
    Family,
    family_of,
    is_fit_run,
    read_families,
    search_all_runs,
)
from .touched import record_touched

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

DEFAULT_SCALE_PARAMS: tuple[str, ...] = (
    # model size
    "n_layer",
    "n_layers",
    "num_layers",
    "num_hidden_layers",
    "depth",
    "n_head",
    "n_heads",
    "num_heads",
    "num_attention_heads",
    "n_kv_head",
    "n_kv_heads",
    "n_embd",
    "d_model",
    "hidden_size",
    "hidden_dim",
    "width",
    "dim",
    "d_ff",
    "ffn_dim",
    "intermediate_size",
    "d_head",
    "head_dim",
    "params",
    "n_params",
    "num_params",
    "model_size",
    "model_name",
    "size",
    # training length
    "max_steps",
    "steps",
    "num_steps",
    "train_steps",
    "total_steps",
    "training_steps",
    "max_epochs",
    "epochs",
    "num_epochs",
    "warmup_steps",
    "lr_decay_steps",
    # tokens and compute
    "tokens",
    "num_tokens",
    "train_tokens",
    "max_tokens",
    "token_budget",
    "total_tokens",
    "flops",
    "compute",
    "compute_budget",
    "flops_budget",
    "budget",
    # repetitions
    "seed",
)
"""Hyperparameters that vary *within* a family (sizes, steps, tokens, seeds)."""


def is_scale_param(name: str, scale_params: Sequence[str]) -> bool:
    low = name.lower()
    return any(fnmatch.fnmatchcase(low, p.lower()) for p in scale_params)


# --- listing --------------------------------------------------------------------------------


def _range(values: Sequence[float]) -> list[float] | None:
    return [float(min(values)), float(max(values))] if values else None


def _iso_ms(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class FamilyInfo:
    """One family as ``mlflow-scaling families`` shows it."""

    experiment_id: str
    experiment: str
    family: str
    n_runs: int
    n_members: int
    n_excluded: int
    n_sizes: int
    params_range: list[float] | None
    tokens_range: list[float] | None
    flops_range: list[float] | None
    last_fit: dict[str, Any] | None
    fit_runs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def describe_family(family: Family) -> FamilyInfo:
    members = family.members
    last_fit = None
    run = family.fit_run
    if run is not None:
        fit = published_fit(run)  # the published record, not the mirror tags
        last_fit = {
            "fit_run_id": run.info.run_id,
            "refit_number": 0 if fit is None else fit.number,
            "phase": None if fit is None else fit.phase,
            "check": None if fit is None else fit.check,
            "status": run.info.status,
            "finished_at": _iso_ms(run.info.end_time),
            "up_to_date": None if fit is None else fit.input_digest == input_digest(family),
            "error": run.data.tags.get(schema.TAG_FIT_ERROR) or None,
        }
    n = [p.n for p in members]
    sizes = count_sizes(n)
    return FamilyInfo(
        experiment_id=family.experiment.experiment_id,
        experiment=family.experiment.name,
        family=family.name,
        n_runs=family.n_runs,
        n_members=len(members),
        n_excluded=len(family.excluded),
        n_sizes=int(sizes),
        params_range=_range([p.n for p in members]),
        tokens_range=_range([p.d for p in members]),
        flops_range=_range([p.c for p in members]),
        last_fit=last_fit,
        fit_runs=len(family.fit_runs),
    )


def list_families(
    client: MlflowClient,
    experiments: Sequence[ExperimentRef],
    families: Sequence[str] | None = None,
) -> list[FamilyInfo]:
    """Every family of ``experiments`` (or the named ones) with counts, ranges and last fit."""
    return [
        describe_family(f)
        for f in read_families(client, experiments, families)
        if f.n_runs or f.fit_runs
    ]


# --- suggesting ----------------------------------------------------------------------------


@dataclass
class Suggestion:
    """A proposed family: runs that share every hyperparameter apart from the scale ones."""

    experiment: ExperimentRef
    name: str
    shared: dict[str, str]
    varying: list[str]
    run_ids: list[str] = field(default_factory=list)
    run_names: list[str] = field(default_factory=list)
    n_sizes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment.experiment_id,
            "experiment": self.experiment.name,
            "family": self.name,
            "n_runs": len(self.run_ids),
            "n_sizes": self.n_sizes,
            "shared_params": self.shared,
            "varying_params": self.varying,
            "run_ids": self.run_ids,
            "run_names": self.run_names,
        }


@dataclass
class SuggestResult:
    """Proposed families and the untagged runs left out of them, with the reason."""

    suggestions: list[Suggestion]
    left_alone: list[dict[str, str]]
    scale_params: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "suggestions": [s.to_dict() for s in self.suggestions],
            "left_alone": self.left_alone,
            "scale_params": self.scale_params,
        }


def _short_hash(items: Any) -> str:
    return hashlib.sha256(repr(items).encode()).hexdigest()[:8]


def _name_groups(
    groups: dict[tuple, list[Run]], experiment: ExperimentRef, taken: set[str]
) -> dict[tuple, str]:
    """Readable names: the hyperparameters that tell the groups of an experiment apart."""
    keys = list(groups)
    all_names = sorted({k for key in keys for k, _ in key[1]})
    telling = [name for name in all_names if len({dict(key[1]).get(name) for key in keys}) > 1]
    names: dict[tuple, str] = {}
    for key in keys:
        params = dict(key[1])
        parts = [f"{k}={params.get(k, '-')}" for k in telling[:4]]
        if key[0] != schema.DEFAULT_LOSS_METRIC:
            parts.append(f"loss={key[0]}")
        base = experiment.name + (" " + ",".join(parts) if parts else "")
        name = base[:200]
        if name in taken or name in names.values():
            name = f"{base[:190]}#{_short_hash(key)}"
        names[key] = name
    return names


def suggest_families(
    client: MlflowClient,
    experiments: Sequence[ExperimentRef],
    scale_params: Sequence[str] = DEFAULT_SCALE_PARAMS,
    min_runs: int = 2,
) -> SuggestResult:
    """Group the untagged runs of each experiment into proposed families.

    A run is considered when it has no ``scaling.family`` tag, is not a fit run and has a
    ``scaling.params`` metric. Runs group when every non-scale param (and the loss metric tag)
    is equal. A group is proposed when it has ``min_runs`` runs and at least two model sizes;
    the others are listed in ``left_alone`` with the reason.
    """
    suggestions: list[Suggestion] = []
    left: list[dict[str, str]] = []
    for exp in experiments:
        runs = search_all_runs(client, [exp.experiment_id])
        taken = {f for r in runs if (f := family_of(r))}
        groups = _group_untagged(runs, exp, scale_params, left)
        names = _name_groups(groups, exp, taken)
        for key, members in groups.items():
            n = [r.data.metrics[schema.METRIC_PARAMS] for r in members]
            n = [v for v in n if np.isfinite(v) and v > 0]
            n_sizes = count_sizes(n)
            if len(members) < min_runs or n_sizes < 2:
                why = (
                    f"only {len(members)} run(s) share its hyperparameters (< {min_runs})"
                    if len(members) < min_runs
                    else f"its group of {len(members)} runs has one model size"
                )
                left.extend(_left(r, exp, why) for r in members)
                continue
            varying = sorted(
                {k for r in members for k in r.data.params if is_scale_param(k, scale_params)}
            )
            members.sort(key=lambda r: (r.data.metrics[schema.METRIC_PARAMS], r.info.run_id))
            suggestions.append(
                Suggestion(
                    experiment=exp,
                    name=names[key],
                    shared=dict(key[1]),
                    varying=varying,
                    run_ids=[r.info.run_id for r in members],
                    run_names=[r.info.run_name or "" for r in members],
                    n_sizes=int(n_sizes),
                )
            )
    suggestions.sort(key=lambda s: (s.experiment.name, s.name))
    return SuggestResult(suggestions, left, list(scale_params))


def _group_untagged(
    runs: Sequence[Run],
    exp: ExperimentRef,
    scale_params: Sequence[str],
    left: list[dict[str, str]],
) -> dict[tuple, list[Run]]:
    """The untagged scaling runs grouped by (loss metric, non-scale params); runs without
    ``scaling.params`` are added to ``left`` with the reason."""
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        if family_of(run) is not None or is_fit_run(run):
            continue
        if schema.METRIC_PARAMS not in run.data.metrics:
            left.append(_left(run, exp, f"no {schema.METRIC_PARAMS} metric (not a scaling run)"))
            continue
        loss_metric = (
            run.data.tags.get(schema.TAG_LOSS_METRIC, "").strip() or schema.DEFAULT_LOSS_METRIC
        )
        shared = tuple(
            sorted(
                (k, v) for k, v in run.data.params.items() if not is_scale_param(k, scale_params)
            )
        )
        groups[(loss_metric, shared)].append(run)
    return groups


def _left(run: Run, exp: ExperimentRef, reason: str) -> dict[str, str]:
    return {
        "experiment": exp.name,
        "run_id": run.info.run_id,
        "run_name": run.info.run_name or "",
        "reason": reason,
    }


def assign_families(
    client: MlflowClient, suggestions: Sequence[Suggestion], max_workers: int = 8
) -> int:
    """Tag every run of every suggestion with its family; returns the number of runs tagged.

    Each experiment then records the families it touched (:mod:`.touched`), so the next quick
    refit pass reads them although none of their runs started or ended.
    """
    jobs = [(run_id, s.name) for s in suggestions for run_id in s.run_ids]
    if not jobs:
        return 0
    with ThreadPoolExecutor(min(max_workers, len(jobs))) as pool:
        list(pool.map(lambda j: client.set_tag(j[0], schema.TAG_FAMILY, j[1]), jobs))
    by_experiment: dict[str, list[str]] = {}
    for s in suggestions:
        if s.run_ids:
            by_experiment.setdefault(s.experiment.experiment_id, []).append(s.name)
    for experiment_id, names in by_experiment.items():
        record_touched(client, experiment_id, names)
    return len(jobs)
