"""Digests that tell the refit job whether a family changed since its last fit.

``scaling.input_digest`` covers the member runs a fit used: every usable run's id, N, D, C,
loss, loss metric and end time (and its learning rate, batch and U, where logged), their
downstream-task declarations and task metrics, and every excluded run's id and reason (a run
that finishes or fails changes it). ``scaling.settings_digest`` covers how the fit was made
(bootstrap count, budgets, check target, the analysis version). A family is skipped when
both equal the tags on its fit run. Floats enter exactly (``float.hex``), so equal inputs give
equal digests on every machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .reading import Family
from .tasks import task_digest_items

DIGEST_VERSION = 1


def _canonical(value: Any) -> Any:
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _sha256(doc: Any) -> str:
    text = json.dumps(_canonical(doc), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def input_digest(family: Family) -> str:
    """Digest of the family's member runs as the refit job sees them."""
    members = [
        [p.run_id, p.n, p.d, p.c, p.c_source, p.loss, p.loss_metric, p.end_time]
        for p in sorted(family.members, key=lambda p: p.run_id)
    ]
    excluded = [[e.run_id, e.reason] for e in sorted(family.excluded, key=lambda e: e.run_id)]
    doc = {
        "version": DIGEST_VERSION,
        "experiment_id": family.experiment.experiment_id,
        "family": family.name,
        "members": members,
        "excluded": excluded,
    }
    hparams = [[p.run_id, p.lr, p.batch] for p in sorted(family.members, key=lambda p: p.run_id)
               if p.lr is not None or p.batch is not None]  # fmt: skip
    if hparams:  # learning rates and batches (none logged: digest as before)
        doc["hparams"] = hparams
    unique = [[p.run_id, p.unique_tokens] for p in sorted(family.members, key=lambda p: p.run_id)
              if p.unique_tokens is not None]  # fmt: skip
    if unique:  # runs that logged scaling.unique_tokens (none: digest as before)
        doc["unique_tokens"] = unique
    tasks = task_digest_items(family.members)
    if tasks:  # declared downstream tasks: their tags and metric values (none: digest as before)
        doc["tasks"] = tasks
    return _sha256(doc)


def settings_digest(settings: Mapping[str, Any]) -> str:
    """Digest of the fit settings (a JSON-ready mapping)."""
    return _sha256({"version": DIGEST_VERSION, "settings": dict(settings)})
