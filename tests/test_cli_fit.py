import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from reference_data import EPOCH, chinchilla


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mlflow_scaling.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    p = chinchilla()
    path = tmp_path_factory.mktemp("cli") / "runs.csv"
    pd.DataFrame({"params": p.n, "C": 6 * p.n * p.d, "final_loss": p.loss}).to_csv(
        path, index=False
    )
    return path


def test_fit_json_with_budgets_and_predictions(runs_csv, tmp_path):
    targets = tmp_path / "targets.csv"
    targets.write_text("params,C\n7e10,5.88e23\n1e9,1e21\n")
    out = run_cli(
        "fit", runs_csv, "--law", "chinchilla", "--n-col", "params", "--c-col", "C",
        "--loss-col", "final_loss", "--bootstrap", "200", "--budget", "1e22", "5.88e23",
        "--predict", targets, "--format", "json", "--huber-delta", "1e-3",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["law"] == "chinchilla" and doc["n_points"] == 240
    assert doc["params"]["alpha"] == pytest.approx(EPOCH["alpha"], abs=0.002)
    assert doc["objective"] == pytest.approx(1.018274e-3, rel=1e-5)
    assert set(doc["ci"]) == {"E", "A", "B", "alpha", "beta"}
    assert doc["allocation"]["a"] == pytest.approx(0.513, abs=0.002)
    assert [r["flops"] for r in doc["budgets"]] == [1e22, 5.88e23]
    for row in doc["budgets"] + doc["predictions"]:
        assert row["lo"] < row["loss"] < row["hi"]
    assert doc["predictions"][0]["N"] == 7e10
    assert doc["predictions"][0]["D"] == pytest.approx(5.88e23 / (6 * 7e10))


def test_fit_table_is_the_default(runs_csv):
    out = run_cli("fit", runs_csv, "--n-col", "params", "--c-col", "C", "--loss-col",
                  "final_loss", "--bootstrap", "0", "--budget", "1e24")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "alpha" in out.stdout and "N_opt" in out.stdout and "1e+24" in out.stdout
    assert "interval" not in out.stdout  # no bootstrap, no intervals


def _bad(tmp_path, text):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "N,D,loss\n1e8,1e9,3.0\n2e8,abc,2.9\n",
            "column 'D', row 2 (line 3): 'abc' is not a number",
        ),
        ("N,D,loss\n1e8,1e9,3.0\n-2e8,1e9,2.9\n", "column 'N', row 2 (line 3): must be positive"),
        ("N,D,loss\n1e8,1e9,3.0\n2e8,1e9,nan\n", "column 'loss', row 2 (line 3)"),
        ("N,D,loss\n1e8,1e9,3.0\n2e8,1e9,inf\n", "column 'loss', row 2 (line 3)"),
        ("N,loss\n1e8,3.0\n", "no column 'D'"),
        ("N,D,val\n1e8,1e9,3.0\n", "no column 'loss'"),
        ('N,D,loss\n1e8,1e9,3.0\n2e8,"1e9,2.9\n', "malformed CSV"),
        ("", "empty"),
    ],
)
def test_bad_input_is_one_line_naming_the_culprit(tmp_path, text, expected):
    path = _bad(tmp_path, text)
    out = run_cli("fit", path, "--bootstrap", "0")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert str(path) in lines[0] and expected in lines[0]


def test_too_few_runs_and_missing_file(tmp_path):
    rows = "\n".join(f"{n},{20 * n},{3 - i * 0.1}" for i, n in enumerate(np.geomspace(1e7, 1e8, 3)))
    out = run_cli("fit", _bad(tmp_path, "N,D,loss\n" + rows + "\n"))
    assert out.returncode == 2 and "only 3 points" in out.stderr
    out = run_cli("fit", tmp_path / "nope.csv")
    assert out.returncode == 2 and "no such file" in out.stderr


def test_bad_budget_option(runs_csv):
    out = run_cli("fit", runs_csv, "--budget", "-1")
    assert out.returncode == 2 and "must be a positive finite number" in out.stderr


def test_fit_the_bundled_chinchilla_dataset():
    out = run_cli("fit", "--dataset", "chinchilla", "--huber-delta", "1e-3", "--bootstrap", "0",
                  "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["dataset"] == "chinchilla" and summary["n_points"] == 240
    for name, value in EPOCH.items():
        assert summary["params"][name] == pytest.approx(value, rel=2e-3), name


def test_fit_needs_a_file_or_a_dataset(runs_csv):
    for args in (("fit",), ("fit", runs_csv, "--dataset", "chinchilla")):
        out = run_cli(*args)
        assert out.returncode == 2
        error = "give either a CSV file or --dataset, not both and not neither"
        assert out.stderr.strip().splitlines() == [f"mlflow-scaling fit: error: {error}"]


def test_version():
    from importlib.metadata import version

    out = run_cli("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"mlflow-scaling {version('mlflow-scaling')}"
