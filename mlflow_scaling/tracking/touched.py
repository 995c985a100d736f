"""Families whose runs our commands re-tagged: a sign of change the quick check can read.

The quick check (``jobs/changes.py``) finds changed families by the runs that started or ended
since the last pass. Tagging old runs into a family (``mlflow-scaling families --assign``)
changes the family without moving any run's times, so each command that edits tags records
the families it touched on the experiment, one tag per family::

    scaling.touched.<first 16 hex of SHA-256 of the name> = {"family": F, "ms": T}

T is the editing machine's clock; the quick check reads F in full when T is later than its
watermark less the clock margin. One key per family keeps the tag small and the number of
tags bounded by the number of families; a later edit overwrites T with a later time. Edits
made by hand in the MLflow UI leave no such tag: ``refit --full-check`` reads them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from . import schema

if TYPE_CHECKING:
    from mlflow import MlflowClient


def touched_key(family: str) -> str:
    digest = hashlib.sha256(family.encode("utf-8")).hexdigest()[:16]
    return f"{schema.TAG_TOUCHED_PREFIX}{digest}"


def record_touched(
    client: MlflowClient, experiment_id: str, families: Iterable[str], at_ms: int | None = None
) -> None:
    """Record on the experiment that the runs of ``families`` were re-tagged at ``at_ms``."""
    at = int(time.time() * 1000) if at_ms is None else at_ms
    for family in dict.fromkeys(families):
        value = json.dumps({"family": family, "ms": at}, sort_keys=True)
        client.set_experiment_tag(experiment_id, touched_key(family), value)


def touched_families(experiment_tags: Mapping[str, str]) -> dict[str, int]:
    """``{family: when}`` from an experiment's tags (unreadable entries are left out)."""
    out: dict[str, int] = {}
    for key, value in experiment_tags.items():
        if not key.startswith(schema.TAG_TOUCHED_PREFIX):
            continue
        try:
            doc = json.loads(value)
            family, at = doc["family"], doc["ms"]
        except (ValueError, TypeError, KeyError):
            continue
        if isinstance(family, str) and isinstance(at, int) and not isinstance(at, bool):
            out[family] = max(at, out.get(family, at))
    return out
