"""How ``mlflow server`` runs an app named by ``--app-name`` (private names).

``mlflow server`` tells its workers which server gateway interface runs them (uvicorn wants the
FastAPI wrapper, gunicorn and waitress the Flask app) and the static prefix through private
environment variables.
"""

from __future__ import annotations

from . import missing_names

REQUIRED = [
    ("mlflow.environment_variables", "_MLFLOW_SGI_NAME"),
    ("mlflow.server.handlers", "STATIC_PREFIX_ENV_VAR"),
    ("mlflow.server.fastapi_app", "create_fastapi_app"),
]
STATIC_PREFIX_ENV = "_MLFLOW_STATIC_PREFIX"
"""The value of ``mlflow.server.handlers.STATIC_PREFIX_ENV_VAR`` (read without importing the
server app; ``tests/test_compat.py`` checks that they agree)."""


def missing() -> list[str]:
    return missing_names(REQUIRED)


def sgi_name() -> str | None:
    """``uvicorn``, ``gunicorn`` or ``waitress`` when run by ``mlflow server``, else None."""
    from mlflow.environment_variables import _MLFLOW_SGI_NAME

    return _MLFLOW_SGI_NAME.get()
