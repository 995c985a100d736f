import os
import subprocess
import sys

from reference_data import chinchilla_csv


def run_demo(env_extra, cwd):
    env = {**os.environ, **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "mlflow_scaling.cli", "demo"],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600,
    )  # fmt: skip


def test_demo_fits_chinchilla_and_prints_allocation(tmp_path):
    folder = chinchilla_csv().parent
    out = run_demo({"MLFLOW_SCALING_SHARED_DATA": str(folder)}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "240 runs" in out.stdout
    assert "1.8172" in out.stdout and "0.34731" in out.stdout
    assert "5.88e+23" in out.stdout and "N_opt" in out.stdout
    assert "backtest:" in out.stdout


def test_demo_without_shared_data_says_it_skips(tmp_path):
    out = run_demo({"MLFLOW_SCALING_SHARED_DATA": str(tmp_path / "absent")}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "chinchilla: skipped" in out.stdout and "MLFLOW_SCALING_SHARED_DATA" in out.stdout
