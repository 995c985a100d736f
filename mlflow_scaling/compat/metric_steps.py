"""The step of each latest metric value in search results (private: ``RunData._metric_objs``).

``search_runs`` returns each metric's latest value with its step, but ``RunData.metrics`` keeps
only the values; the steps are on the Metric objects in ``_metric_objs``. The refit uses the
step of the final loss to tell a run with a training curve from a single point (Approach 1)
and the pages use the timestamps. When an MLflow version drops the attribute, :func:`latest`
returns None and Approach 1 says it is off, and why (:data:`UNAVAILABLE`), instead of silently
finding no curves.
"""

from __future__ import annotations

from typing import Any

ATTRIBUTE = "_metric_objs"
UNAVAILABLE = (
    "off: this MLflow version does not expose the steps of the latest metrics in search "
    f"results (RunData.{ATTRIBUTE}), so runs with training curves cannot be told apart"
)


def missing() -> list[str]:
    from mlflow.entities import RunData

    return [] if hasattr(RunData(), ATTRIBUTE) else [f"mlflow.entities.RunData.{ATTRIBUTE}"]


def available() -> bool:
    return not missing()


def latest(run: Any) -> list[Any] | None:
    """The run's latest Metric objects (key, value, timestamp, step), or None if unknown."""
    objs = getattr(run.data, ATTRIBUTE, None)
    return None if objs is None else list(objs)
