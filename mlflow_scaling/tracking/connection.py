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


class TrackingUnavailable(InputError):
    """The tracking server or store cannot be reached; the message names the URI."""


def resolve_tracking_uri(option: str | None = None) -> str:
    """``option``, else ``MLFLOW_TRACKING_URI``, else MLflow's default (``sqlite:///mlflow.db``)."""
    if option:
        return option
    if os.environ.get(ENV_TRACKING_URI):
        return os.environ[ENV_TRACKING_URI]
    from mlflow.tracking._tracking_service.utils import get_tracking_uri

    return get_tracking_uri()


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


def connect(tracking_uri: str | None = None) -> MlflowClient:
    """An :class:`MlflowClient` for the resolved URI, after checking that the store answers."""
    uri = resolve_tracking_uri(tracking_uri)
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
