"""``mlflow-scaling downstream`` on CSV files of simulated runs (tests/downstream_sim.py)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _refit_support import call_cli
from downstream_sim import simulate_checkpoints, simulate_task, true_accuracy


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
    ck = simulate_checkpoints(0)
    table = pd.DataFrame({"run": [f"r{r}" for r in ck.run], "step": ck.step, "N": ck.n,
                          "D": ck.d, "bpb": ck.task_loss, "acc": ck.accuracy})  # fmt: skip
    checkpoints = folder / "checkpoints.csv"
    table.iloc[::-1].to_csv(checkpoints, index=False)  # newest first: the step decides
    finals = folder / "finals.csv"
    table[ck.final()].iloc[::-1].drop(columns=["run", "step"]).to_csv(finals, index=False)
    return {"runs": runs, "ladder": compute, "targets": targets, "folder": folder, "sim": sim,
            "checkpoints": checkpoints, "finals": finals}  # fmt: skip


def test_json_has_the_phase_both_steps_and_predictions(files):
    out = call_cli("downstream", files["runs"], "--task-loss-col", "bpb", "--metric-col", "acc",
                   "--chance", "0.25", "--n-examples", "2000", "--predict", files["targets"],
                   "--bootstrap", "30", "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["phase"] == "scaling"
    assert doc["steps"]["loss_fit"]["kind"] == "chinchilla_ND"
    assert doc["steps"]["loss_fit"]["loss_source"] == "bpb"
    assert set(doc["steps"]["sigmoid"]) == {
        "chance", "ceiling", "k", "L0", "floor", "height", "free_floor",
    }  # fmt: skip
    assert doc["steps"]["sigmoid"]["free_floor"] is False
    assert doc["steps"]["sigmoid"]["chance"] == 0.25
    assert [(r["N"], r["D"]) for r in doc["predictions"]] == [(1e9, 2e10), (6e8, 1.2e10)]
    for row in doc["predictions"]:
        assert set(row) == {"N", "D", "task_loss", "metric", "lo", "hi", "one_step",
                            "share_step1", "share_step2"}  # fmt: skip
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


CHECKPOINT_ARGS = ("--task-loss-col", "bpb", "--metric-col", "acc", "--chance", "0.25",
                   "--n-examples", "2000", "--bootstrap", "0", "--format", "json")  # fmt: skip


def test_checkpoint_table_uses_final_rows_for_step1_and_checkpoints_for_step2(files):
    out = call_cli("downstream", files["checkpoints"], "--run-col", "run", "--step-col", "step",
                   *CHECKPOINT_ARGS)  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    finals = call_cli("downstream", files["finals"], *CHECKPOINT_ARGS)
    assert finals.returncode == 0, finals.stderr
    final_doc = json.loads(finals.stdout)
    # Step 1 sees exactly the 15 final rows: the same fit as the file of final rows alone.
    assert doc["steps"]["loss_fit"] == final_doc["steps"]["loss_fit"]
    assert doc["steps"]["loss_fit"]["n_points"] == 15
    # Step 2: the checkpoints past the first 10 % of the steps (steps 200 to 1000: 6 of 8).
    assert doc["steps"]["sigmoid_points"]["on"] == "checkpoints"
    assert doc["steps"]["sigmoid_points"]["n_points"] == 15 * 6
    assert doc["steps"]["sigmoid"]["free_floor"] is True
    assert final_doc["steps"]["sigmoid"]["free_floor"] is False
    assert doc["steps"]["sigmoid"]["floor"] == pytest.approx(0.35, abs=0.02)
    assert any(w.startswith("fitted floor 0.3") and w.endswith("from chance 0.25 (more than "
               "0.05)") for w in doc["warnings"])  # fmt: skip
    wider = call_cli("downstream", files["checkpoints"], "--run-col", "run", "--step-col",
                     "step", "--skip-fraction", "0.6", *CHECKPOINT_ARGS)  # fmt: skip
    assert json.loads(wider.stdout)["steps"]["sigmoid_points"]["n_points"] == 15 * 3


def test_checkpoint_table_in_the_table_format_says_so(files):
    out = call_cli("downstream", files["checkpoints"], "--run-col", "run", "--step-col", "step",
                   "--task-loss-col", "bpb", "--metric-col", "acc", "--chance", "0.25",
                   "--bootstrap", "0")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "on 90 checkpoints of 15 runs (floor free)" in out.stdout
    assert "warning: fitted floor 0.3" in out.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--run-col", "run"], "--run-col and --step-col go together"),
        (["--run-col", "nope", "--step-col", "step"], "no column 'nope' for the run"),
        (["--run-col", "run", "--step-col", "step", "--skip-fraction", "1"],
         "argument --skip-fraction: '1' must lie in [0, 1)"),
    ],
)  # fmt: skip
def test_checkpoint_options_refuse_bad_input(files, extra, message):
    out = call_cli("downstream", files["checkpoints"], *extra, *CHECKPOINT_ARGS)
    assert out.returncode == 2
    assert message in out.stderr


def test_checkpoint_table_with_a_repeated_step_names_the_run_and_rows(files):
    frame = pd.read_csv(files["checkpoints"])
    frame.loc[1, ["run", "step"]] = frame.loc[0, ["run", "step"]].to_numpy()
    frame.loc[1, "N"] = frame.loc[0, "N"]
    path = files["folder"] / "repeated.csv"
    frame.to_csv(path, index=False)
    out = call_cli("downstream", path, "--run-col", "run", "--step-col", "step",
                   *CHECKPOINT_ARGS)  # fmt: skip
    assert out.returncode == 2
    run, step = frame.loc[0, "run"], frame.loc[0, "step"]
    assert f"run {run!r} has two rows at step {step:g} (rows 1 and 2)" in out.stderr
