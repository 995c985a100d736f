"""The run-context plugin: tag every run started in an environment with its scaling family.

MLflow asks every registered run-context provider for tags when a run is created through
``mlflow.start_run`` or Lightning's ``MLFlowLogger`` (both call ``resolve_tags``); a bare
``MlflowClient.create_run`` does not. This provider is registered under the
``mlflow.run_context_provider`` entry point in ``pyproject.toml``, so with

    MLFLOW_SCALING_FAMILY=gpt-small python train.py

every run of ``train.py`` carries ``scaling.family = gpt-small`` without a code change.
``MLFLOW_SCALING_LOSS_METRIC`` additionally sets ``scaling.loss_metric``. Tags given
explicitly to ``start_run`` win over these (MLflow applies them last).

This module must stay cheap to import: MLflow loads it whenever it loads its providers.
"""

from __future__ import annotations

import os

from mlflow.tracking.context.abstract_context import RunContextProvider

from .schema import ENV_FAMILY, ENV_LOSS_METRIC, TAG_FAMILY, TAG_LOSS_METRIC


def family_from_environment() -> str | None:
    """The family named by ``MLFLOW_SCALING_FAMILY``, stripped; None when unset or blank."""
    value = os.environ.get(ENV_FAMILY, "").strip()
    return value or None


class ScalingFamilyContext(RunContextProvider):
    """Adds ``scaling.family`` (and ``scaling.loss_metric``) from the environment."""

    def in_context(self) -> bool:
        return family_from_environment() is not None

    def tags(self) -> dict[str, str]:
        family = family_from_environment()
        if family is None:
            return {}
        out = {TAG_FAMILY: family}
        loss_metric = os.environ.get(ENV_LOSS_METRIC, "").strip()
        if loss_metric:
            out[TAG_LOSS_METRIC] = loss_metric
        return out
