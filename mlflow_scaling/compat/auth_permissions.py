"""MLflow's basic-auth app: the experiment permission lookup and the request gate (private).

The scaling pages authorize per experiment with auth's own permission lookup, and replace
auth's before-request gate for the scaling paths only (see ``server/auth.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import missing_names

AUTH = "mlflow.server.auth"
REQUIRED = [
    (AUTH, "_get_experiment_permission"),
    (AUTH, "_before_request"),
    (AUTH, "store"),
    (AUTH, "authenticate_request"),
    (AUTH, "create_app"),
]


def missing() -> list[str]:
    return missing_names(REQUIRED)


def experiment_permission(experiment_id: str, username: str) -> Any:
    """Auth's permission of ``username`` on the experiment (has ``can_read``)."""
    from mlflow.server import auth

    return auth._get_experiment_permission(experiment_id, username)


def before_request_gate() -> Callable[[], Any]:
    """Auth's before-request function, as registered on the Flask app."""
    from mlflow.server import auth

    return auth._before_request
