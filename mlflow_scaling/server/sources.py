"""Where the pages read from: the ``mlflow server``'s own store (:class:`StoreSource`) or a
client of any tracking URI (:class:`ClientSource`), behind one protocol
(:class:`TrackingSource`), with the store's failures told apart from what is absent
(:func:`store_call`), and the fit run's published artifacts the pages may serve."""

from __future__ import annotations

import functools
import os
import posixpath
import tempfile
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..compat import server_artifacts
from ..tracking import schema
from ..tracking.published import artifact_name, is_missing, published_artifact_path, published_fit

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Experiment, Metric, Run

SERVED_ARTIFACTS = (
    schema.ARTIFACT_FIT_JSON,
    schema.ARTIFACT_FIT_PNG,
    schema.ARTIFACT_REPORT_HTML,
    schema.ARTIFACT_PREDICTIONS_CSV,
    schema.ARTIFACT_TASKS_PNG,
    schema.ARTIFACT_HPARAMS_PNG,
    schema.ARTIFACT_DATA_CONSTRAINED_PNG,
    schema.ARTIFACT_COMPARE_JSON,
    schema.ARTIFACT_COMPARE_PNG,
    schema.ARTIFACT_PLAN_JSON,
)
"""The fit-run (and comparison-run) artifacts the pages link to; the artifact route serves
these and no others."""

MAX_ARTIFACT_BYTES = 20 * 1024 * 1024


# --- sources ---------------------------------------------------------------------------------


class Absent(LookupError):
    """The store answered that the thing asked for does not exist."""


class StoreFailed(RuntimeError):
    """The tracking or artifact store failed to answer (not: the thing is absent)."""


def store_call(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a source method; what the store raises becomes :class:`Absent` or
    :class:`StoreFailed` (the one place that tells them apart)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (Absent, StoreFailed):
            raise
        except Exception as exc:
            if is_missing(exc):
                raise Absent(str(exc)) from exc
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise StoreFailed(f"{type(exc).__name__}: {first}") from exc

    return wrapper


class TrackingSource(Protocol):
    """The part of :class:`mlflow.MlflowClient` the pages use, plus reading one artifact."""

    tracking_uri: str

    def search_runs(self, experiment_ids: Sequence[str], **kwargs: Any) -> Any: ...

    def search_experiments(self, **kwargs: Any) -> Any: ...

    def get_experiment(self, experiment_id: str) -> Experiment: ...

    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    def get_run(self, run_id: str) -> Run: ...

    def get_metric_history(self, run_id: str, key: str) -> Sequence[Metric]: ...

    def list_artifacts(self, run: Run, path: str) -> set[str]: ...

    def read_artifact(self, run: Run, path: str) -> bytes | None: ...


class StoreSource:
    """The tracking store and artifact repositories of the ``mlflow server`` we run in."""

    tracking_uri = "the MLflow server's own store"

    def __init__(self) -> None:
        self._artifacts = server_artifacts
        self._store = server_artifacts.tracking_store()

    @store_call
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        run_view_type: int | None = None,
        max_results: int = 1000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> Any:
        from mlflow.entities import ViewType

        return self._store.search_runs(
            list(experiment_ids),
            filter_string,
            run_view_type or ViewType.ACTIVE_ONLY,
            max_results,
            order_by,
            page_token,
        )

    @store_call
    def search_experiments(
        self,
        view_type: int | None = None,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> Any:
        from mlflow.entities import ViewType

        return self._store.search_experiments(
            view_type=view_type or ViewType.ACTIVE_ONLY,
            max_results=max_results,
            filter_string=filter_string,
            order_by=order_by,
            page_token=page_token,
        )

    @store_call
    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._store.get_experiment(experiment_id)

    @store_call
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._store.get_experiment_by_name(name)

    @store_call
    def get_run(self, run_id: str) -> Run:
        return self._store.get_run(run_id)

    @store_call
    def get_metric_history(self, run_id: str, key: str) -> Sequence[Metric]:
        return list(self._store.get_metric_history(run_id, key))

    def _repo_and_path(self, run: Run, path: str) -> tuple[Any, str]:
        # The same resolution as MLflow's /get-artifact handler.
        return self._artifacts.artifact_repo_and_path(run, path)

    @store_call
    def list_artifacts(self, run: Run, path: str) -> set[str]:
        repo, full = self._repo_and_path(run, path)
        prefix = full[: len(full) - len(path)] if full.endswith(path) else ""
        names = set()
        for info in repo.list_artifacts(full):
            names.add(
                info.path[len(prefix) :] if prefix and info.path.startswith(prefix) else info.path
            )
        return names

    @store_call
    def read_artifact(self, run: Run, path: str) -> bytes | None:
        repo, full = self._repo_and_path(run, path)
        try:
            return _read_from_repo(repo, full)
        except Exception as exc:
            if is_missing(exc):
                return None
            raise


class ClientSource:
    """An :class:`mlflow.MlflowClient` (outside the server: tests, scripts)."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client
        self.tracking_uri = client.tracking_uri

    @store_call
    def search_runs(self, experiment_ids: Sequence[str], **kwargs: Any) -> Any:
        return self._client.search_runs(list(experiment_ids), **kwargs)

    @store_call
    def search_experiments(self, **kwargs: Any) -> Any:
        return self._client.search_experiments(**kwargs)

    @store_call
    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._client.get_experiment(experiment_id)

    @store_call
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._client.get_experiment_by_name(name)

    @store_call
    def get_run(self, run_id: str) -> Run:
        return self._client.get_run(run_id)

    @store_call
    def get_metric_history(self, run_id: str, key: str) -> Sequence[Metric]:
        return self._client.get_metric_history(run_id, key)

    @store_call
    def list_artifacts(self, run: Run, path: str) -> set[str]:
        return {a.path for a in self._client.list_artifacts(run.info.run_id, path)}

    @store_call
    def read_artifact(self, run: Run, path: str) -> bytes | None:
        with tempfile.TemporaryDirectory(prefix="scaling-artifact-") as tmp:
            try:
                local = self._client.download_artifacts(run.info.run_id, path, tmp)
            except Exception as exc:
                if is_missing(exc):
                    return None
                raise
            return _read_local(local)


def _read_from_repo(repo: Any, path: str) -> bytes | None:
    """The file's bytes; None when absent; what else the repository raises goes up."""
    local = repo.get_local_path(path) if hasattr(repo, "get_local_path") else None
    if local is not None:
        return _read_local(local)
    with tempfile.TemporaryDirectory(prefix="scaling-artifact-") as tmp:
        return _read_local(repo.download_artifacts(path, dst_path=tmp))


def _read_local(path: str) -> bytes | None:
    """A local file's bytes; None when there is no such file (or it is over the size limit);
    a file that exists but cannot be read raises."""
    if not os.path.lexists(path):
        return None
    if os.path.isfile(path) and os.path.getsize(path) > MAX_ARTIFACT_BYTES:
        return None
    with open(path, "rb") as f:
        return f.read()


def is_served_artifact(path: str) -> bool:
    """Whether the artifact route may serve ``path`` (one of :data:`SERVED_ARTIFACTS`)."""
    return posixpath.normpath(path) == path and path in SERVED_ARTIFACTS


def fit_artifacts(source: TrackingSource, run: Run) -> set[str]:
    """Logical names (``scaling/fit.json``, ...) of the files of the run's published fit."""
    fit = published_fit(run)
    if fit is None:
        return set()
    try:
        found = source.list_artifacts(run, fit.path)
    except Absent:
        return set()
    return {f"{schema.ARTIFACT_DIR}/{artifact_name(p)}" for p in found}


def read_fit_artifact(source: TrackingSource, run: Run, name: str) -> bytes | None:
    """The bytes of the published fit's file ``name`` (a logical name), or None."""
    path = published_artifact_path(run, name)
    return None if path is None else source.read_artifact(run, path)


AccessCheck = Callable[[str], bool]
"""Whether the person asking may read the experiment with this id."""


def allow_all(experiment_id: str) -> bool:
    return True
