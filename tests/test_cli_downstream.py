"""``mlflow-scaling downstream`` on CSV files of simulated runs (tests/downstream_sim.py)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _refit_support import call_cli
from downstream_sim import simulate_task, true_accuracy


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("downstream")
    sim = simulate_task(0)
    runs = folder / "runs.csv"
    pd.DataFrame({"N": sim.n, "D": sim.d, "bpb": sim.task_loss, "acc": sim.accuracy}).to_csv(
        runs, index=False
    )
    ladder = simulate_task(0, tokens_per_param=(20.0,))
    compute = folder / "ladder.csv"
    pd.DataFrame({"N": ladder.n, "C": ladder.c, "bpb": ladder.task_loss,
                  "acc": ladder.accuracy}).to_csv(compute, index=False)  # fmt: skip
    targets = folder / "targets.csv"
    targets.write_text("N,D\n1e9,2e10\n6e8,1.2e10\n")
    return {"runs": runs, "ladder": compute, "targets": targets, "folder": folder, "sim": sim}


def test_json_has_the_phase_both_steps_and_predictions(files):
    out = call_cli("downstream", files["runs"], "--task-loss-col", "bpb", "--metric-col", "acc",
                   "--chance", "0.25", "--n-examples", "2000", "--predict", files["targets"],
                   "--bootstrap", "30", "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["phase"] == "scaling"
    assert doc["steps"]["loss_fit"]["kind"] == "chinchilla_ND"
    assert doc["steps"]["loss_fit"]["loss_source"] == "bpb"
    assert set(doc["steps"]["sigmoid"]) == {"chance", "ceiling", "k", "L0"}
    assert doc["steps"]["sigmoid"]["chance"] == 0.25
    assert [(r["N"], r["D"]) for r in doc["predictions"]] == [(1e9, 2e10), (6e8, 1.2e10)]
    for row in doc["predictions"]:
        assert set(row) == {"N", "D", "task_loss", "metric", "lo", "hi", "one_step"}
        assert row["lo"] < row["metric"] < row["hi"]
    truth = float(true_accuracy(0.55 + 60 / 1e9**0.32 + 300 / 2e10**0.32))
    assert abs(doc["predictions"][0]["metric"] - truth) < 0.02
    assert doc["largest_size_backtest"]["N"] == 2e8


def test_table_is_the_default(files):
    out = call_cli("downstream", files["runs"], "--task-loss-col", "bpb", "--metric-col", "acc",
                   "--chance", "0.25", "--bootstrap", "0")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("phase: scaling")
    assert "step 2: accuracy = 0.25 + (" in out.stdout
    assert "largest size (N=2e+08) from the smaller ones" in out.stdout


def test_compute_column_without_tokens_fits_step1_against_c(files):
    out = call_cli("downstream", files["ladder"], "--c-col", "C", "--task-loss-col", "bpb",
                   "--metric-col", "acc", "--chance", "0.25", "--bootstrap", "0",
                   "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["steps"]["loss_fit"]["kind"] == "frontier_C"
    assert doc["steps"]["loss_fit"]["n_points"] == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric-col", "nope"], "no column 'nope' (columns: N, D, bpb, acc)"),
        (["--metric-col", "bad"], "column 'bad', row 3 (line 4): accuracy 1.5 is not in [0, 1]"),
        (["--metric-col", "acc", "--d-col", "tokens"], "no column 'tokens' for tokens"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(files, args, message):
    frame = pd.read_csv(files["runs"])
    frame["bad"] = frame["acc"]
    frame.loc[2, "bad"] = 1.5
    path = files["folder"] / "with_bad.csv"
    frame[["N", "D", "bpb", "acc"] + (["bad"] if "bad" in args else [])].to_csv(path, index=False)
    out = call_cli("downstream", path, "--task-loss-col", "bpb", "--chance", "0.25", *args)
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith("mlflow-scaling downstream: error: ")
    assert message in out.stderr


def test_chance_out_of_range_is_refused(files):
    out = call_cli("downstream", files["runs"], "--task-loss-col", "bpb", "--metric-col", "acc",
                   "--chance", "1.5")  # fmt: skip
    assert out.returncode == 2
    assert "must lie in [0, 1)" in out.stderr
