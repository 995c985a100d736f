"""The scaling pages behind MLflow's ``basic-auth`` app: ``mlflow server --app-name scaling-auth``.

MLflow's own ``basic-auth`` app (``mlflow.server.auth:create_app``) adds login, users and
permissions to the same Flask app the scaling pages live on. :func:`create_app_with_auth`
registers the scaling routes first, then lets auth build its app around them, so:

* every scaling request needs a valid login (HTTP basic auth, the same users as the UI and API);
* a person sees only the experiments they may READ (admins see all); families and fit-run
  artifacts of other experiments answer 404, as if absent.

Auth decides per route with validators keyed by exact API paths; with
``MLFLOW_BASIC_AUTH_FAIL_CLOSED`` (on by default) a route without one is refused to everyone
but admins. The scaling routes have path parameters, so instead of a validator their requests
are authenticated by auth's own ``authenticate_request`` (whatever authorization function is
configured) and authorized per experiment inside the pages, with auth's permission lookup.
Every other request still goes through auth's unchanged gate.

Configuration is auth's: ``MLFLOW_FLASK_SERVER_SECRET_KEY``, ``MLFLOW_AUTH_CONFIG_PATH``,
``MLFLOW_AUTH_ADMIN_USERNAME`` / ``MLFLOW_AUTH_ADMIN_PASSWORD`` for the first start.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request

from ..compat import auth_permissions
from .data import AccessCheck, allow_all
from .routes import BLUEPRINT, register_routes, static_prefix

log = logging.getLogger(__name__)


def _is_scaling_path(path: str) -> bool:
    root = f"{static_prefix()}/scaling"
    return path == root or path.startswith(root + "/")


def _username() -> str:
    from mlflow.server import auth

    name = getattr(g, "mlflow_authenticated_user", None)
    if name:
        return name
    authorization = auth.authenticate_request()
    if isinstance(authorization, Response):  # not logged in (the gate stops this earlier)
        raise PermissionError("not authenticated")
    return authorization.username


def experiment_access() -> AccessCheck:
    """Read check for the person behind the current request (admins read everything)."""
    from mlflow.server import auth

    username = _username()
    if auth.store.get_user(username).is_admin:
        return allow_all
    answers: dict[str, bool] = {}

    def can_read(experiment_id: str) -> bool:
        if experiment_id not in answers:
            try:
                permission = auth_permissions.experiment_permission(experiment_id, username)
                answers[experiment_id] = bool(permission.can_read)
            except Exception as exc:  # unknown to auth, or auth changed: deny
                log.debug("no read permission on experiment %s for %s: %s",
                          experiment_id, username, exc)  # fmt: skip
                answers[experiment_id] = False
        return answers[experiment_id]

    return can_read


def _gate_for_scaling(original: Callable[[], Any]) -> Callable[[], Any]:
    """Auth's before-request gate, with scaling paths only authenticated (module docstring)."""
    from mlflow.server import auth

    @functools.wraps(original)
    def gate() -> Any:
        if not _is_scaling_path(request.path):
            return original()
        authorization = auth.authenticate_request()
        if isinstance(authorization, Response):
            return authorization  # 401 with the basic-auth challenge
        g.mlflow_authenticated_user = authorization.username
        return None

    gate.__scaling_gate__ = True  # type: ignore[attr-defined]
    return gate


def compose(flask_app: Flask) -> Any:
    """Scaling routes plus MLflow's basic-auth on ``flask_app``; returns the server's app."""
    from mlflow.server import auth

    already = BLUEPRINT in flask_app.blueprints
    register_routes(flask_app, access=experiment_access)
    if already:
        log.warning("scaling routes were registered without auth; they stay open")
    server_app = auth.create_app(flask_app)
    auth_gate = auth_permissions.before_request_gate()
    funcs = flask_app.before_request_funcs.setdefault(None, [])
    for i, func in enumerate(funcs):
        if func is auth_gate:
            funcs[i] = _gate_for_scaling(func)
            break
    else:
        # Auth's gate was not found (a different MLflow): leave auth as it is. The scaling pages
        # then follow auth's default for unknown routes (admins only when failing closed).
        log.warning("MLflow's basic-auth gate not found; scaling pages use auth's defaults")
    return server_app


def create_app_with_auth() -> Any:
    """Entry point ``scaling-auth`` (:mod:`.app`): MLflow's ``basic-auth`` app with the scaling
    pages behind the same login."""
    from mlflow.server import app as flask_app

    return compose(flask_app)
