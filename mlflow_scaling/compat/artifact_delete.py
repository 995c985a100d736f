"""Deleting a folder of a run's artifacts (``MlflowClient`` has no public call for it).

The artifact repository a run's ``artifact_uri`` resolves to (``get_artifact_repository``, as
``MlflowClient`` resolves it for uploads) has ``delete_artifacts``; for a proxied
``mlflow-artifacts:/`` store it is an HTTP ``DELETE`` that the tracking server serves. The
retention of fit runs (:mod:`mlflow_scaling.tracking.retention`) uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import missing_names

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

REQUIRED = [("mlflow.store.artifact.artifact_repository_registry", "get_artifact_repository")]


def missing() -> list[str]:
    return missing_names(REQUIRED)


def delete_folder(client: MlflowClient, run: Run, path: str) -> None:
    """Delete the artifact folder ``path`` of ``run`` and everything under it."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(run.info.artifact_uri, tracking_uri=client.tracking_uri)
    repo.delete_artifacts(path)
