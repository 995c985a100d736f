"""Finding the active MLflow run, and delivering to it without ever blocking training.

:class:`MlflowSink` queues metrics, params and tags in memory and a daemon thread sends them
with ``MlflowClient.log_batch``, all that queued up in one request at most every
``min_interval_s`` (a request costs a few ms of CPU with an in-process SQLite store, mostly
under the GIL, however few values it holds). Training only appends to a list. When the server is
unreachable the sink warns once, keeps everything queued (up to ``max_pending`` metric values,
oldest dropped first) and retries every ``retry_interval_s``; ``flush`` waits a bounded time.
Errors the server will never accept (a param logged again with another value, say) are dropped
with a warning rather than retried.

Each attempt goes through the MLflow client's own HTTP retries
(``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, 7 by default, about 4 minutes with backoff), so an outage
shows up as a warning only after those are spent; the queue keeps everything meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
import warnings
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ScalingLawWarning

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

_MAX_METRICS_PER_CALL = 1000


@dataclass(frozen=True)
class RunTarget:
    """Where to log: a run on a tracking server, and how it was found."""

    tracking_uri: str
    run_id: str
    source: str


def active_run_target() -> RunTarget | None:
    """The active MLflow run (``mlflow.start_run``) as a :class:`RunTarget`, else ``None``."""
    import mlflow

    active = mlflow.active_run()
    if active is None:
        return None
    return RunTarget(mlflow.get_tracking_uri(), active.info.run_id, "active MLflow run")


def _probe(tracking_uri: str, timeout_s: float = 2.0) -> str:
    """One request to an HTTP tracking server's ``/health``, without retries, described."""
    if not tracking_uri.startswith(("http://", "https://")):
        return f"{tracking_uri} is not an HTTP server to check"
    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return f"{url} answers (HTTP {response.status})"
    except Exception as err:  # what the check found is the message
        reason = getattr(err, "reason", None)
        detail = f"{type(reason).__name__}: {reason}" if reason is not None else str(err)
        return f"a direct check of {url} failed: {type(err).__name__} ({detail})"


def _is_permanent(err: BaseException) -> bool:
    """True for errors that retrying cannot fix (client-side 4xx other than throttling)."""
    try:
        from mlflow.exceptions import MlflowException
    except ImportError:  # pragma: no cover
        return False
    if isinstance(err, MlflowException):
        status = err.get_http_status_code()
        return 400 <= status < 500 and status not in (408, 429)
    return isinstance(err, TypeError | ValueError)


class MlflowSink:
    """Asynchronous, batched, retrying delivery to one MLflow run (module docstring)."""

    def __init__(
        self,
        target: RunTarget,
        *,
        retry_interval_s: float = 10.0,
        min_interval_s: float = 5.0,
        max_pending: int = 100_000,
        client: MlflowClient | None = None,
    ) -> None:
        self.target = target
        self.retry_interval_s = retry_interval_s
        self.min_interval_s = min_interval_s
        self.max_pending = max_pending
        self._client = client
        self._cond = threading.Condition()
        self._metrics: deque[Any] = deque()  # (key, value, timestamp, step), or a Metric
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._in_flight = 0
        self._stop = False
        self._flush_requested = False
        self._next_attempt = 0.0  # monotonic time before which the worker does not send
        self._failing = False
        self._warned = False
        self.last_error: BaseException | None = None
        self._sending_since: float | None = None  # monotonic start of the request in flight
        self.dropped = 0
        self.delivered = 0
        self.requests = 0
        self.cpu_seconds = 0.0
        """CPU time the worker thread spent delivering (what it can take from training)."""
        self._thread = threading.Thread(
            target=self._run, name=f"scaling-law-mlflow-sink-{target.run_id[:8]}", daemon=True
        )
        self._thread.start()

    # Producer side (training thread): never blocks on the network. -------------------------
    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Queue ``metrics`` at ``step``: plain tuples (the worker makes MLflow's entities), and
        the worker is woken only when it sleeps with nothing to send (otherwise it wakes at its
        next attempt): a logging step costs the training thread no GIL hand-over."""
        ts, step = int(time.time() * 1000), int(step)
        items = [(k, float(v), ts, step) for k, v in metrics.items()]
        with self._cond:
            idle = not self._has_work()
            self._metrics.extend(items)
            self._bound()
            if idle:
                self._cond.notify()

    def _bound(self) -> None:
        """Drop the oldest metric values beyond ``max_pending`` (call with the lock held)."""
        for _ in range(max(len(self._metrics) - self.max_pending, 0)):
            self._metrics.popleft()
            self.dropped += 1

    def log_params(self, params: Mapping[str, Any]) -> None:
        with self._cond:
            self._params.update({k: str(v) for k, v in params.items()})
            self._cond.notify()

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        with self._cond:
            self._tags.update({k: str(v) for k, v in tags.items()})
            self._cond.notify()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._metrics) + len(self._params) + len(self._tags) + self._in_flight

    def flush(self, timeout_s: float) -> bool:
        """Ask for an immediate attempt and wait until all is delivered or ``timeout_s`` pass.

        Returns whether nothing is left to deliver."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._has_work():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    break
                self._cond.wait(min(remaining, 0.05))
            return not self._has_work()

    def close(self, timeout_s: float) -> bool:
        """Flush, then stop the worker thread. Returns whether everything was delivered."""
        done = self.flush(timeout_s)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if done:
            self._thread.join(timeout=1.0)
        return done

    def describe_failure(self) -> str:
        """What went wrong, for a warning after a flush that timed out.

        The last error a request returned; when none has returned yet (the first request is
        still inside MLflow's HTTP retries, minutes by default), how long it has waited and what
        a direct, single check of the server's ``/health`` says."""
        err = self.last_error
        if err is not None:
            return f"last error: {type(err).__name__}: {err}"
        since = self._sending_since
        if since is None:
            return "no request has failed; the values were still queued"
        waited = time.monotonic() - since
        return (
            f"no answer yet to a request sent {waited:.1f} s ago, still inside MLflow's HTTP "
            f"retries (MLFLOW_HTTP_REQUEST_MAX_RETRIES); {_probe(self.target.tracking_uri)}"
        )

    # Worker side. ---------------------------------------------------------------------------
    def _has_work(self) -> bool:
        return bool(self._metrics or self._params or self._tags or self._in_flight)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop:
                    if self._has_work():
                        wait = self._next_attempt - time.monotonic()
                        if wait <= 0 or self._flush_requested:
                            break
                        self._cond.wait(wait)
                    else:
                        self._flush_requested = False
                        self._cond.wait()
                if self._stop:
                    return
                self._flush_requested = False
                params, tags = self._params, self._tags
                self._params, self._tags = {}, {}
                queued = [self._metrics.popleft() for _ in range(len(self._metrics))]
                self._in_flight = len(queued) + len(params) + len(tags)
            cpu_start = time.thread_time()
            metrics = [_as_metric(m) for m in queued]
            self._sending_since = time.monotonic()
            left_metrics, left_params, left_tags = self._send(metrics, params, tags)
            self._sending_since = None
            self.cpu_seconds += time.thread_time() - cpu_start
            with self._cond:
                # What could not be sent goes back in front of anything newer.
                self._metrics.extendleft(reversed(left_metrics))
                self._bound()
                self._params = {**left_params, **self._params}
                self._tags = {**left_tags, **self._tags}
                self._in_flight = 0
                self._cond.notify_all()

    def _send(
        self, metrics: list[Any], params: dict[str, str], tags: dict[str, str]
    ) -> tuple[list[Any], dict[str, str], dict[str, str]]:
        """Deliver; return what is left to retry."""
        from mlflow.entities import Param, RunTag

        if params or tags:  # the client splits these into requests of at most 100
            n = len(params) + len(tags)
            outcome = self._attempt(
                n,
                params=[Param(k, v) for k, v in params.items()],
                tags=[RunTag(k, v) for k, v in tags.items()],
                report_rejection=n == 1,
            )
            if outcome == "retry":
                return metrics, params, tags
            if outcome == "dropped" and n > 1:
                # One bad value (a param logged before with another value, say) must not take
                # the others with it: send them one request each, dropping only the rejected.
                singles = [{"tags": [RunTag(k, v)]} for k, v in tags.items()]
                singles += [{"params": [Param(k, v)]} for k, v in params.items()]
                for i, single in enumerate(singles):
                    if self._attempt(1, **single) == "retry":
                        left = singles[i:]
                        return (
                            metrics,
                            {p.key: p.value for b in left for p in b.get("params", [])},
                            {t.key: t.value for b in left for t in b.get("tags", [])},
                        )
            params, tags = {}, {}
        while metrics:  # one request per chunk, so that progress survives a failure
            chunk = metrics[:_MAX_METRICS_PER_CALL]
            outcome = self._attempt(len(chunk), metrics=chunk)
            if outcome == "retry":
                return metrics, {}, {}
            del metrics[: len(chunk)]
        if self._failing:
            self._failing = False
            log.info("MLflow tracking at %s reachable again", self.target.tracking_uri)
        # Whatever arrives in the next min_interval_s goes out together in one request.
        self._next_attempt = time.monotonic() + self.min_interval_s
        return [], {}, {}

    def _attempt(self, n: int, report_rejection: bool = True, **batch: Any) -> str:
        """One ``log_batch`` call: ``"ok"``, ``"dropped"`` (rejected for good) or ``"retry"``."""
        try:
            self._call(self._get_client(), **batch)
        except Exception as err:  # never let anything escape the worker
            self.last_error = err
            if _is_permanent(err):
                if not report_rejection:
                    return "dropped"
                self.dropped += n
                warnings.warn(
                    f"MLflow rejected {n} values for run {self.target.run_id} at "
                    f"{self.target.tracking_uri}; they are dropped: {err}",
                    ScalingLawWarning,
                    stacklevel=1,
                )
                return "dropped"
            self._failing = True
            self._next_attempt = time.monotonic() + self.retry_interval_s
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"MLflow tracking at {self.target.tracking_uri} failed for run "
                    f"{self.target.run_id} ({type(err).__name__}: {err}). Training goes on; "
                    "the scaling-law callback keeps counting, keeps its metrics queued and "
                    f"retries every {self.retry_interval_s:g} s.",
                    ScalingLawWarning,
                    stacklevel=1,
                )
            return "retry"
        if "metrics" in batch:
            self.delivered += n
        return "ok"

    def _call(self, client: MlflowClient, **kwargs: Any) -> None:
        self.requests += 1
        client.log_batch(self.target.run_id, synchronous=True, **kwargs)

    def _get_client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(self.target.tracking_uri)
        return self._client


def _as_metric(item: Any) -> Any:
    """An ``mlflow.entities.Metric`` from a queued ``(key, value, timestamp, step)`` (a metric
    that went back to the queue after a failed request already is one)."""
    from mlflow.entities import Metric

    if isinstance(item, Metric):
        return item
    key, value, timestamp, step = item
    return Metric(key=key, value=value, timestamp=timestamp, step=step)
