"""The conftest plugin: skips are listed with reasons; under CI=true only the CUDA one passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

PROBE_CONFTEST = f"""
import importlib.util, sys
sys.path.insert(0, {str(TESTS)!r})
spec = importlib.util.spec_from_file_location("project_conftest", {str(TESTS / "conftest.py")!r})
project = importlib.util.module_from_spec(spec)
spec.loader.exec_module(project)
pytest_runtest_logreport = project.pytest_runtest_logreport
pytest_sessionfinish = project.pytest_sessionfinish
pytest_terminal_summary = project.pytest_terminal_summary
"""

PROBE_TESTS = """
import pytest

def test_runs():
    assert True

def test_needs_a_service():
    pytest.skip("no such service on this machine")
"""


def run_probe(tmp_path: Path, ci: str | None):
    (tmp_path / "conftest.py").write_text(PROBE_CONFTEST)
    (tmp_path / "test_probe.py").write_text(PROBE_TESTS)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip


def test_skip_is_listed_and_fails_only_under_ci(tmp_path):
    local = run_probe(tmp_path, None)
    assert local.returncode == 0, local.stdout
    line = "SKIPPED test_probe.py::test_needs_a_service: no such service on this machine"
    assert line in local.stdout
    ci = run_probe(tmp_path, "true")
    assert ci.returncode == 1, ci.stdout
    assert line in ci.stdout
    assert "CI=true: 1 skip(s) outside tests/test_callback_cuda.py; the run fails" in ci.stdout
