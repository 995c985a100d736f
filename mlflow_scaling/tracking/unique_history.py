"""Runs whose ``scaling.unique_tokens`` changed between steps: excluded, with the values named.

A run's unique tokens U are its corpus, fixed for the run: the callback logs one value at
every logging step. A run whose logged U takes two values (a corpus swapped mid-run, a value
logged by hand) has no single U for the data-constrained law, so the refit lists it as
excluded with the values and the steps where they were logged, instead of guessing which one
holds. Only members that logged U are read (one metric history each), and only when the family
is being fitted (its input digest changed), never on a skipped pass.
"""

from __future__ import annotations

from dataclasses import replace

from mlflow import MlflowClient

from . import schema
from .reading import ExcludedRun, Family, MemberPoint


def _changed(client: MlflowClient, p: MemberPoint) -> ExcludedRun | None:
    history = client.get_metric_history(p.run_id, schema.METRIC_UNIQUE_TOKENS)
    first: dict[float, int] = {}
    for m in sorted(history, key=lambda m: (m.step, m.timestamp)):
        first.setdefault(float(m.value), int(m.step))
    if len(first) < 2:
        return None
    seen = ", ".join(f"{value:.6g} from step {step}" for value, step in first.items())
    reason = f"{schema.METRIC_UNIQUE_TOKENS} changed between steps ({seen}): a run has one U"
    return ExcludedRun(p.run_id, p.run_name, "FINISHED", reason)


def exclude_changing_unique_tokens(client: MlflowClient, family: Family) -> Family:
    """``family`` with the members whose logged U changed moved to its excluded runs."""
    moved = {}
    for p in family.members:
        if p.unique_tokens is not None:
            bad = _changed(client, p)
            if bad is not None:
                moved[p.run_id] = bad
    if not moved:
        return family
    members = [p for p in family.members if p.run_id not in moved]
    return replace(family, members=members, excluded=[*family.excluded, *moved.values()])
