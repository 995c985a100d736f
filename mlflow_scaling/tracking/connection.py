"""Connecting to a tracking server: which URI, and a clear error when it cannot be reached."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from ..tabular import InputError

if TYPE_CHECKING:
    from mlflow import MlflowClient

ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
PROBE_TIMEOUT_S = 10.0
REQUEST_BUDGET = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
"""The retry budget of the CLI's own requests (MLflow's defaults, 7 retries with a backoff
factor of 2 and 120 s timeouts, keep a pass waiting about 20 minutes on a dead server). With
these, a refused connection fails within seconds and a hung server within about 90 s; set the
variables yourself to choose other values."""


class TrackingUnavailable(InputError):
    """The tracking server or store cannot be reached; the message names the URI."""


def bound_request_retries() -> None:
    """Apply :data:`REQUEST_BUDGET` where the environment does not set the variable already."""
    for key, value in REQUEST_BUDGET.items():
        os.environ.setdefault(key, value)


def sqlite_path(uri: str) -> str | None:
    """The database file of a ``sqlite:///`` URI (None for other URIs and in-memory ones)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return None if path in ("", ":memory:") else path


def resolve_tracking_uri(option: str | None = None) -> str:
    """``option``, else ``MLFLOW_TRACKING_URI``, else MLflow's default (``sqlite:///mlflow.db``)."""
    if option:
        return option
    if os.environ.get(ENV_TRACKING_URI):
        return os.environ[ENV_TRACKING_URI]
    import mlflow

    return mlflow.get_tracking_uri()


def probe_http(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`TrackingUnavailable` when nothing answers HTTP at ``uri``.

    Any HTTP answer, even an error status (a proxy asking for credentials), means the server is
    there; only a refused, reset or timed-out connection counts as unreachable. MLflow's own
    client would retry such a connection for minutes before giving up.
    """
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingUnavailable(
            f"cannot reach the MLflow tracking server at {uri} ({reason})"
        ) from None


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Raise :class:`TrackingUnavailable` when the HTTP tracking server at ``uri`` is gone."""
    if uri.startswith(("http://", "https://")):
        probe_http(uri, timeout_s)


def connect(tracking_uri: str | None = None, *, must_exist: bool = False) -> MlflowClient:
    """An :class:`MlflowClient` for the resolved URI, after checking that the store answers.

    With ``must_exist`` (commands that only read, such as ``families`` and ``refit``), a
    ``sqlite:///`` URI whose file is absent is an error instead of a new, empty store: MLflow
    would create the file (and its folders) and report nothing, hiding a mistyped URI.
    """
    uri = resolve_tracking_uri(tracking_uri)
    path = sqlite_path(uri)
    if must_exist and path is not None and not os.path.isfile(path):
        raise TrackingUnavailable(
            f"no MLflow store at {uri}: {path} does not exist (a new store would be empty; "
            "check --tracking-uri or MLFLOW_TRACKING_URI)"
        )
    if uri.startswith(("http://", "https://")):
        probe_http(uri)  # before importing MLflow (seconds): fail fast
    from mlflow import MlflowClient

    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    except Exception as exc:  # the store's own error, whatever its type, in one line
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingUnavailable(
            f"cannot use the MLflow tracking store at {uri} ({detail})"
        ) from None
    return client
