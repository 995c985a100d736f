"""``mlflow server --app-name scaling``: scaling pages served by the MLflow server itself.

MLflow loads an app named with ``--app-name`` from the ``mlflow.app`` entry-point group; a
plain function there is a factory that uvicorn calls (``--factory``). The factories here add
the scaling routes to MLflow's **Flask** app (``mlflow.server.app``) and then wrap it the way
MLflow does for its own default app: under uvicorn, in the FastAPI app of
``mlflow.server.fastapi_app.create_fastapi_app``; under gunicorn or waitress, the Flask app as
it is. Routes must go on the Flask app: the FastAPI wrapper mounts Flask at ``/``, so a route
added to the wrapper afterwards never sees a request (Flask answers 404 first).

Entry points (``pyproject.toml``):

* ``scaling`` -> :func:`create_app`: MLflow plus the scaling pages.
* ``scaling-auth`` -> :func:`create_app_with_auth`: MLflow's ``basic-auth`` app (users,
  permissions) with the scaling pages behind the same login (see :mod:`.auth`).

The routes themselves are in :mod:`.routes`.
"""

from __future__ import annotations

from typing import Any

from .auth import create_app_with_auth
from .routes import (  # noqa: F401  (re-exported: the routes' names, as before)
    BLUEPRINT,
    BadArgument,
    index_query,
    register_routes,
    wrap_for_server,
)

__all__ = ["create_app", "create_app_with_auth"]


def create_app() -> Any:
    """Entry point ``scaling``: MLflow's server app with the scaling pages."""
    from mlflow.server import app as flask_app

    register_routes(flask_app)
    return wrap_for_server(flask_app)
