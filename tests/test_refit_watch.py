"""``mlflow-scaling watch``: passes on a schedule, a graceful stop on SIGTERM."""

from __future__ import annotations

import signal
import time

import pytest
from _refit_support import RunSpec, fit_runs, log_runs, new_experiment, run_cli, start_cli
from mlflow import MlflowClient

from mlflow_scaling.jobs.watch import StopFlag, parse_interval, watch


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("1d", 86400), ("1h30m", 5400), ("90", 90),
     ("0.5s", 0.5), ("2M", 120)],
)  # fmt: skip
def test_parse_interval(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "15x", "m", "-5m", "0s", "1h 3q"])
def test_parse_interval_rejects(text):
    with pytest.raises(ValueError, match="interval"):
        parse_interval(text)


def test_watch_loop_survives_a_failing_pass():
    stop = StopFlag()
    calls = []

    def one_pass(client, cache):
        calls.append(client)
        if len(calls) == 1:
            raise ConnectionError("server down")
        if len(calls) == 3:
            stop.set()
        return []

    reports = []
    n = watch(lambda: "client", one_pass, interval_s=0.01, stop=stop,
              on_pass=lambda i, o, e: reports.append((i, e)))  # fmt: skip
    assert n == 3 and len(calls) == 3
    assert isinstance(reports[0][1], ConnectionError) and reports[1][1] is None


def test_watch_runs_passes_and_stops_on_sigterm(mlflow_server):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "watch")
    log_runs(client, exp_id, [RunSpec("w", 1e8, 1e9 * (i + 1), 3.0 - 0.1 * i) for i in range(3)])
    proc = start_cli("watch", "--tracking-uri", mlflow_server, "--experiment", exp_name,
                     "--interval", "1s", "--bootstrap", "0")  # fmt: skip
    lines = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if sum("refit pass:" in x for x in lines) >= 2:
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines) + out
    assert proc.returncode == 0, err
    assert "1 insufficient_data" in text and "1 skipped" in text  # pass 1 fits, pass 2 skips
    assert "stopped on SIGTERM" in text
    assert len(fit_runs(client, exp_id, "w")) == 1


def test_watch_exits_2_when_server_unreachable():
    from conftest import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    out = run_cli("watch", "--tracking-uri", uri, "--interval", "1s", timeout=60)
    assert out.returncode == 2
    assert uri in out.stderr and len(out.stderr.strip().splitlines()) == 1
