"""A family's refit settings: the pass's settings with what its fit run's tags override
(``scaling.target_params``, ``scaling.max_halfwidth``, ``scaling.plan_gpu``), and the settings
document whose digest tells a pass whether the family must be refitted."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from ..planning.family_plan import plan_gpu_setting
from ..tabular import InputError
from ..tracking import schema
from .analysis import ANALYSIS_VERSION, RefitSettings

if TYPE_CHECKING:
    from mlflow.entities import Run


def _positive_tag(run: Run | None, tag: str) -> float | None:
    """A positive number people set as ``tag`` on the fit run, None when absent."""
    if run is None:
        return None
    text = run.data.tags.get(tag, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise InputError(
            f"fit run {run.info.run_id}: tag {tag} = {text!r} is not a positive number"
        )
    return value


def target_params_of(run: Run | None) -> float | None:
    """The check target people set on the fit run (tag ``scaling.target_params``), if any."""
    return _positive_tag(run, schema.TAG_TARGET_PARAMS)


def family_settings(settings: RefitSettings, run: Run | None) -> RefitSettings:
    """The pass's settings with the family's own precision bound (tag ``scaling.max_halfwidth``)."""
    bound = _positive_tag(run, schema.TAG_MAX_HALFWIDTH)
    return settings if bound is None else replace(settings, max_halfwidth=bound)


def settings_document(
    settings: RefitSettings, target: float | None, run: Run | None = None
) -> dict:
    doc = settings.to_dict()
    if target is not None:  # the family's own target (a tag on its fit run) wins
        doc["target_params"] = target
        doc["target_params_from"] = f"tag {schema.TAG_TARGET_PARAMS}"
    doc.update(plan_gpu_setting(run))
    doc["analysis_version"] = ANALYSIS_VERSION
    return doc
