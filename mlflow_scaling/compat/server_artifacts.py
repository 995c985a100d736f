"""Inside ``mlflow server``: its tracking store and its artifact resolution (private).

The scaling pages read runs and artifacts in the server process without an HTTP round trip or
credentials, resolving artifact paths exactly as MLflow's ``/get-artifact`` handler does
(proxied ``mlflow-artifacts:/`` roots map into ``--artifacts-destination``).
"""

from __future__ import annotations

from typing import Any

from . import missing_names

HANDLERS = "mlflow.server.handlers"
REQUIRED = [
    (HANDLERS, "_get_tracking_store"),
    (HANDLERS, "_is_servable_proxied_run_artifact_root"),
    (HANDLERS, "_get_artifact_repo_mlflow_artifacts"),
    (HANDLERS, "_get_proxied_run_artifact_destination_path"),
    (HANDLERS, "_get_workspace_scoped_repo_path_if_enabled"),
    (HANDLERS, "_get_artifact_repo"),
]


def missing() -> list[str]:
    return missing_names(REQUIRED)


def tracking_store() -> Any:
    """The tracking store the server process uses."""
    from mlflow.server import handlers

    return handlers._get_tracking_store()


def artifact_repo_and_path(run: Any, path: str) -> tuple[Any, str]:
    """The artifact repository holding ``path`` of ``run`` and the path within it."""
    from mlflow.server import handlers as h

    if h._is_servable_proxied_run_artifact_root(run.info.artifact_uri):
        repo = h._get_artifact_repo_mlflow_artifacts()
        full = h._get_proxied_run_artifact_destination_path(
            proxied_artifact_root=run.info.artifact_uri, relative_path=path
        )
        return repo, h._get_workspace_scoped_repo_path_if_enabled(full)
    return h._get_artifact_repo(run), path
