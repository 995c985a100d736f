"""Shared test fixtures: real MLflow tracking servers on this machine.

``mlflow_server`` (session scope) is one live server for the whole session; tests keep apart by
using their own experiment names. ``mlflow_server_factory`` (function scope) starts servers a
test owns and may kill, restart or stop; they are stopped at the end of the test.

Servers run MLflow's Flask app under Flask's own development server
(``python -m flask --app mlflow.server:app run``), configured through the environment variables
that ``mlflow server`` itself hands to its workers: a temporary SQLite backend store, artifacts
proxied by the server (``mlflow-artifacts:/``) into a temporary folder. That answers in about
5 s here, against 10-25 s for ``mlflow server`` with its uvicorn workers, and behaves the same for
the REST API. A server counts as ready when ``/health`` answers and an experiment search
succeeds (the store's tables exist).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests import examples.tiny_gpt
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """One MLflow tracking server process with its own SQLite store and artifact folder.

    ``start()`` may be called again after ``kill()`` or ``stop()``: the server comes back on the
    same port with the same store, like a restarted production server.
    """

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.db_path = self.root / "mlflow.db"
        self.artifacts_dir = self.root / "artifacts"
        self.log_path = self.root / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backend_store_uri(self) -> str:
        return f"sqlite:///{self.db_path}"

    def _env(self) -> dict[str, str]:
        # The variables `mlflow server` sets for its workers (mlflow/server/constants.py);
        # importing them from there would load the whole server app into the test process.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
        env.update(
            {
                "_MLFLOW_SERVER_FILE_STORE": self.backend_store_uri,
                "_MLFLOW_SERVER_ARTIFACT_ROOT": "mlflow-artifacts:/",
                "_MLFLOW_SERVER_SERVE_ARTIFACTS": "true",
                "_MLFLOW_SERVER_ARTIFACT_DESTINATION": str(self.artifacts_dir),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def command(self) -> list[str]:
        """The server's command line (subclasses run ``mlflow server`` itself instead)."""
        return [sys.executable, "-m", "flask", "--app", "mlflow.server:app", "run",
                "--host", "127.0.0.1", "--port", str(self.port)]  # fmt: skip

    def start(self, timeout_s: float = 90.0) -> MlflowServer:
        if self.alive:
            return self
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), env=self._env(), stdout=log, stderr=subprocess.STDOUT,
                cwd=self.root, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"MLflow server on port {self.port} exited with code "
                    f"{self.process.returncode}:\n{self.log_tail()}"
                )
            if self._ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"MLflow server on port {self.port} not ready after {timeout_s:g} s:\n"
                           f"{self.log_tail()}")  # fmt: skip

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                if r.status != 200:
                    return False
            search = f"{self.uri}/api/2.0/mlflow/experiments/search?max_results=1"
            with urllib.request.urlopen(search, timeout=10) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """End the server abruptly (SIGKILL), as a crash would."""
        if self.alive:
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """End the server politely, then forcefully."""
        if self.alive:
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"


def start_mlflow_server(root: Path, port: int | None = None, timeout_s: float = 90.0,
                        attempts: int = 3) -> MlflowServer:  # fmt: skip
    """Start a server in ``root``; on a port clash (another process took it) try a new port."""
    for attempt in range(attempts):
        server = MlflowServer(root, port if attempt == 0 else None)
        try:
            return server.start(timeout_s)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[str]:
    """URI (``http://127.0.0.1:PORT``) of one live MLflow tracking server for the session."""
    with tempfile.TemporaryDirectory(prefix="mlflow-server-") as tmp:
        server = start_mlflow_server(Path(tmp))
        try:
            yield server.uri
        finally:
            server.stop()


@pytest.fixture
def mlflow_server_factory(tmp_path: Path) -> Iterator[Callable[..., MlflowServer]]:
    """Start servers that this test owns (to kill or restart); all are stopped afterwards."""
    servers: list[MlflowServer] = []

    def make(**kwargs: object) -> MlflowServer:
        server = start_mlflow_server(tmp_path / f"server{len(servers)}", **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def mlflow_tracking(mlflow_server: str) -> Iterator[str]:
    """Point MLflow's fluent API at the session server for one test, then restore it."""
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")  # set_tracking_uri mirrors it there
    mlflow.set_tracking_uri(mlflow_server)
    try:
        yield mlflow_server
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None: back to default


# --- order: MLFLOW_SCALING_TEST_ORDER=reverse runs the collected tests back to front ----------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``MLFLOW_SCALING_TEST_ORDER=reverse``, run the tests in reverse order (the CI runs
    each refit test file alone, forwards and backwards: scripts/ci_refit_isolation.sh)."""
    order = os.environ.get("MLFLOW_SCALING_TEST_ORDER", "")
    if order == "reverse":
        items.reverse()
    elif order:
        raise pytest.UsageError(f"MLFLOW_SCALING_TEST_ORDER={order!r}: only 'reverse' is known")


# --- skips: listed at the end, and fatal under CI=true (tests/_ci.py) ---------------------------

_skipped: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        _skipped.append((report.nodeid, reason.removeprefix("Skipped: ")))


def _forbidden_skips() -> list[tuple[str, str]]:
    from _ci import allowed_skip

    return [(nodeid, reason) for nodeid, reason in _skipped if not allowed_skip(nodeid)]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from _ci import IN_CI

    if IN_CI and _forbidden_skips() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    from _ci import ALLOWED_SKIPS, IN_CI

    if not _skipped:
        return
    terminalreporter.section(f"{len(_skipped)} skipped test(s), with reasons")
    for nodeid, reason in _skipped:
        terminalreporter.write_line(f"SKIPPED {nodeid}: {reason}")
    forbidden = _forbidden_skips()
    if IN_CI and forbidden:
        allowed = ", ".join(ALLOWED_SKIPS)
        terminalreporter.write_line(
            f"CI=true: {len(forbidden)} skip(s) outside {allowed}; the run fails", red=True
        )
