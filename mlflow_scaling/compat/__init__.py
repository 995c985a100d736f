"""Every private MLflow name the project relies on, one module per concern.

MLflow offers no public API for a few things the project needs: the server's own artifact
resolution (``server_artifacts``), basic-auth's permission lookup and request gate
(``auth_permissions``), the step of each latest metric in search results (``metric_steps``),
how ``mlflow server`` runs its app (``server_app``) and deleting a run's artifact folder
(``artifact_delete``). Each module lists the names it uses in
``REQUIRED`` and reports the missing ones with ``missing()``; ``tests/test_compat.py`` fails with
the module to update when an MLflow upgrade removes one. The supported MLflow range is pinned in
``pyproject.toml``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable


def missing_names(required: Iterable[tuple[str, str]]) -> list[str]:
    """``module.name`` for each (module, attribute) that cannot be imported or found."""
    out = []
    for module, name in required:
        try:
            found = hasattr(importlib.import_module(module), name)
        except ImportError:
            found = False
        if not found:
            out.append(f"{module}.{name}")
    return out
