"""Issue 22: nonsense refused, unsupported answers withheld (the commands without MLflow).

Each test is one case of the issue, reproduced with its recipe (gen.py: a family from a known
law, 5 sizes × 4 tokens-per-parameter) in tmp_path, and its outcome pinned: the exit code and
the one line that names the culprit.
"""

from __future__ import annotations

import json
import math
import random
import re

import numpy as np
import pandas as pd
import pytest
from _refit_support import call_cli
from downstream_sim import simulate_task, task_loss, true_accuracy

SIZES = (1e7, 3e7, 1e8, 3e8, 1e9)
RATIOS = (5, 10, 20, 40)


def gen(path, law=(1.8, 400, 0.34, 2000, 0.37), sizes=SIZES, ratios=RATIOS, noise=0.005):
    """The issue's gen.py: N, D, loss of E + A/N^alpha + B/D^beta with log-normal noise."""
    e, a, alpha, b, beta = law
    random.seed(0)
    lines = ["N,D,loss"]
    for n in sizes:
        for m in ratios:
            d = m * n
            loss = (e + a / n**alpha + b / d**beta) * math.exp(random.gauss(0, noise))
            lines.append(f"{n!r},{d!r},{loss!r}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return gen(tmp_path_factory.mktemp("contract") / "base.csv")


def error_line(out, code: int = 2) -> str:
    assert out.returncode == code, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert "Traceback" not in out.stderr and "Warning" not in out.stderr, out.stderr
    return lines[-1]


# --- plan (standalone) -----------------------------------------------------------------------


def test_8_a_given_shape_far_from_n_is_refused():
    out = call_cli("plan", "--params", "7e9", "--tokens", "1.4e11", "--layers", "2",
                   "--d-model", "128", "--heads", "2")  # fmt: skip
    assert error_line(out) == (
        "mlflow-scaling plan: error: --layers 2 --d-model 128 --heads 2 holds 4.49e+06 "
        "parameters (12·layers·d_model² + vocab·d_model), 0.000641x the 7e+09 planned; a shape "
        "must be within 2x of N"
    )


def test_8_a_shape_near_n_still_plans():
    out = call_cli("plan", "--params", "7e9", "--tokens", "1.4e11", "--layers", "32",
                   "--d-model", "4096", "--heads", "32", "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["shape"]["source"] == "given"


def test_9_overflowing_training_flops_are_refused():
    out = call_cli("plan", "--params", "1e12", "--tokens", "1e300")
    assert error_line(out) == (
        "mlflow-scaling plan: error: training FLOPs overflow: 6e+12 FLOPs per token × 1e+300 "
        "tokens is beyond the float range (1.8e308)"
    )


def test_11_a_batch_under_one_sequence_is_refused():
    out = call_cli("plan", "--params", "1e9", "--tokens", "2e10", "--global-batch-tokens", "100")
    assert error_line(out) == (
        "mlflow-scaling plan: error: --global-batch-tokens 100 is less than one sequence of "
        "--seq-len 2048: a global batch holds whole sequences"
    )


def test_21_a_batch_larger_than_the_run_is_refused():
    out = call_cli("plan", "--params", "1e9", "--tokens", "2e10", "--global-batch-tokens", "1e30")
    assert error_line(out) == (
        "mlflow-scaling plan: error: --global-batch-tokens 1e+30 is more than the run's 2e+10 "
        "tokens: a batch cannot be larger than the run"
    )


def test_25_memory_columns_stay_apart_past_10000_gb():
    out = call_cli("plan", "--params", "1e13", "--tokens", "2e14")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("strategy "))
    table = lines[header : header + 21]
    assert all(len(line.split()) == 17 for line in table), "\n".join(table)
    assert table[1].split()[3:8] == ["20000.0", "20000.0", "120000.0", "0.0", "160000.0"]
    # every column ends where its header does
    ends = [m.end() for m in re.finditer(r"\S+", table[0])][3:13]
    for row in table[1:]:
        row_ends = [m.end() for m in re.finditer(r"\S+", row)][3:13]
        assert row_ends == ends, row


# --- numeric options: a negative number in scientific notation is a value -------------------

NEGATIVE_OPTIONS = [
    ("fit", "--budget"),
    ("check", "--target-params"),
    ("check", "--target-tokens"),
    ("check", "--min-span-decades"),
    ("check", "--max-backtest-error"),
    ("check", "--max-exponent-gap"),
    ("check", "--max-extrapolation"),
    ("phases", "--flat-drop-per-decade"),
    ("phases", "--chance-loss"),
    ("plan", "--params"),
    ("plan", "--tokens"),
    ("plan", "--budget"),
    ("plan", "--target-params"),
    ("plan", "--target-tokens"),
    ("plan", "--gpu-memory"),
    ("plan", "--gpu-peak-flops"),
    ("plan", "--mfu"),
    ("plan", "--global-batch-tokens"),
    ("plan", "--gpu-hour-price"),
    ("refit", "--budget"),
    ("refit", "--target-params"),
    ("refit", "--full-check-every"),
    ("watch", "--full-check-every"),
]


@pytest.mark.parametrize(("command", "option"), NEGATIVE_OPTIONS)
def test_19_negative_scientific_values_are_named(base, command, option):
    head = {"fit": [base], "check": [base, "--target-params", "1e10"], "phases": [base]}
    out = call_cli(command, *head.get(command, []), option, "-1e18")
    line = error_line(out)
    assert line.startswith(f"mlflow-scaling {command}: error: argument {option}: '-1e18' "), line
    assert line.endswith(
        "must be a finite number, 0 or more" if option == "--full-check-every"
        else "must be a positive finite number"
    ), line  # fmt: skip


@pytest.mark.parametrize(
    ("command", "option", "text"),
    [("downstream", "--chance", "-2.5e-1"), ("downstream", "--n-examples", "-1e3")],
)
def test_19_downstream_negative_values_are_named(base, command, option, text):
    out = call_cli(command, base, "--task-loss-col", "loss", "--metric-col", "loss",
                   "--chance", "0.25", option, text)  # fmt: skip
    assert f"argument {option}: '{text}'" in error_line(out)


# --- fit -------------------------------------------------------------------------------------


def test_10_fewer_than_one_token_is_a_unit_error(tmp_path):
    path = tmp_path / "tiny.csv"
    frame = pd.read_csv(gen(tmp_path / "b.csv"))
    frame["D"] = 0.001
    frame.to_csv(path, index=False)
    out = call_cli("fit", path, "--bootstrap", "0")
    assert error_line(out) == (
        f"mlflow-scaling fit: error: {path}: column 'D', row 1 (line 2): tokens 0.001 is not at "
        "least 1 (fewer than one token is a unit or column error)"
    )


def test_10_tokens_derived_from_compute_below_one_name_the_compute_column(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("N,C,loss\n1e8,6e7,3.0\n2e8,1e20,2.9\n")
    out = call_cli("fit", path, "--c-col", "C", "--bootstrap", "0")
    assert error_line(out) == (
        f"mlflow-scaling fit: error: {path}: column 'C', row 1 (line 2): D = C/(6N): tokens "
        "0.1 is not at least 1 (fewer than one token is a unit or column error)"
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("1e300,1e300", "target row 1: training FLOPs overflow (C is beyond 1.8e308)"),
        ("1e9,2e10\n1e20,1e21", "target row 2: C = 6e+41 FLOPs is 21.4 decades past the "
         "largest run (2.4e+20); predictions reach at most 10 decades beyond the data"),
    ],
)  # fmt: skip
def test_17_targets_past_the_float_range_or_far_past_the_data_are_refused(
    base, tmp_path, rows, message
):
    targets = tmp_path / "t.csv"
    targets.write_text(f"N,D\n{rows}\n")
    out = call_cli("fit", base, "--bootstrap", "0", "--predict", targets)
    assert error_line(out) == f"mlflow-scaling fit: error: {targets}: {message}"


def test_17_budgets_far_past_the_data_are_refused(base):
    out = call_cli("fit", base, "--bootstrap", "0", "--budget", "1e22", "1e40")
    assert error_line(out) == (
        "mlflow-scaling fit: error: --budget 1e+40: C = 1e+40 FLOPs is 19.6 decades past the "
        "largest run (2.4e+20); predictions reach at most 10 decades beyond the data"
    )


def test_20_n_d_targets_are_accepted_with_a_compute_column(tmp_path):
    frame = pd.read_csv(gen(tmp_path / "b.csv"))
    frame["C"] = 7.2 * frame["N"] * frame["D"]
    runs = tmp_path / "x.csv"
    frame.to_csv(runs, index=False)
    targets = tmp_path / "targets.csv"
    targets.write_text("N,D\n3e9,6e10\n")
    out = call_cli("fit", runs, "--c-col", "C", "--bootstrap", "0", "--predict", targets,
                   "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)["predictions"]
    assert (row["N"], row["D"]) == (3e9, 6e10)


# --- check -----------------------------------------------------------------------------------


def test_18_overflowing_target_tokens_are_refused(base):
    out = call_cli("check", base, "--target-params", "1e10", "--target-tokens", "1e300",
                   "--format", "json")  # fmt: skip
    assert error_line(out) == (
        f"mlflow-scaling check: error: {base}: training FLOPs overflow at the target N = 1e+10, "
        "D = 1e+300 (C is beyond 1.8e308)"
    )
    assert out.stdout == ""


def test_22_a_target_below_the_data_is_refused(base):
    out = call_cli("check", base, "--target-params", "10", "--bootstrap", "0")
    assert error_line(out) == (
        "mlflow-scaling check: error: --target-params 10 is below the largest trained size "
        "1e+09: the check is about extrapolating up"
    )


def test_22_target_tokens_below_every_run_are_refused(base):
    out = call_cli("check", base, "--target-params", "1e10", "--target-tokens", "1",
                   "--bootstrap", "0")  # fmt: skip
    assert error_line(out) == (
        "mlflow-scaling check: error: --target-tokens 1 is fewer than any run's (5e+07): the "
        "check is about extrapolating up"
    )


# --- phases ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rising(tmp_path_factory):
    """Loss 2 + 0.3·(N/1e6)^0.3: more parameters, worse loss."""
    path = tmp_path_factory.mktemp("rising") / "rising.csv"
    rows = [(n, m * n, 2 + 0.3 * (n / 1e6) ** 0.3)
            for n in (1e6, 3e6, 1e7, 3e7, 1e8, 3e8) for m in (10, 20, 40)]  # fmt: skip
    pd.DataFrame(rows, columns=["N", "D", "loss"]).to_csv(path, index=False)
    return path


def test_13_rising_loss_is_inverse_scaling_in_phases(rising):
    out = call_cli("phases", rising, "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["phase"] == "inverse_scaling"
    assert doc["reason"] == (
        "loss rises 20.5 % per decade over the last 2.48 decade: inverse scaling [model power_law]"
    )
    assert [s["phase"] for s in doc["segments"]] == ["inverse_scaling"]


def test_13_rising_loss_is_inverse_scaling_in_the_check(rising):
    out = call_cli("check", rising, "--target-params", "1e9", "--bootstrap", "0",
                   "--format", "json")  # fmt: skip
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["phase"] == "inverse_scaling"
    phase = next(c for c in doc["criteria"] if c["name"] == "phase")
    assert (phase["value"], phase["passed"]) == ("inverse_scaling", False)


def test_13_inverse_scaling_is_named_wherever_phases_are():
    from mlflow_scaling.laws.phases import PHASES
    from mlflow_scaling.rendering import PHASE_CLASSES, PHASE_LABELS
    from mlflow_scaling.tracking import schema

    assert set(PHASES) == set(schema.PHASES) == set(PHASE_LABELS) == set(PHASE_CLASSES)
    assert PHASE_LABELS["inverse_scaling"] == "inverse scaling"


# --- downstream ------------------------------------------------------------------------------


def _downstream(path, *extra, n_examples="1000", boot="50"):
    return call_cli("downstream", path, "--task-loss-col", "bpb", "--metric-col", "acc",
                    "--chance", "0.25", "--n-examples", n_examples, "--bootstrap", boot,
                    "--format", "json", *extra)  # fmt: skip


def _task_csv(path, n, d, loss, acc):
    pd.DataFrame({"N": n, "D": d, "bpb": loss, "acc": acc}).to_csv(path, index=False)
    return path


def test_12_isoflop_grid_segments_run_along_n(tmp_path):
    grid = [(c / (6 * n), n) for c in (1e17, 1e18, 1e19) for n in (1e7, 2e7, 5e7, 1e8)]
    d, n = (np.array(v) for v in zip(*grid, strict=True))
    loss = task_loss(n, d)
    path = _task_csv(tmp_path / "iso.csv", n, d, loss, true_accuracy(loss))
    out = _downstream(path, boot="0")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["segments"] == [
        {"phase": "scaling", "x_min": 1e7, "x_max": 1e8, "axis": "N"}
    ]


def test_13_a_backtest_outside_its_interval_says_so(tmp_path):
    sim = simulate_task(0)
    acc = sim.accuracy.copy()
    acc[sim.n == sim.n.max()] -= 0.2
    path = _task_csv(tmp_path / "drop.csv", sim.n, sim.d, sim.task_loss, acc)
    doc = json.loads(_downstream(path).stdout)
    bt = doc["largest_size_backtest"]
    assert bt["measured"] < bt["lo"] and bt["measured_outside_interval"] is True
    table = call_cli("downstream", path, "--task-loss-col", "bpb", "--metric-col", "acc",
                     "--chance", "0.25", "--bootstrap", "50")  # fmt: skip
    assert table.stdout.splitlines()[-1].endswith("; measured outside the interval")


def test_13_a_backtest_inside_its_interval_says_so_too(tmp_path):
    sim = simulate_task(0)
    path = _task_csv(tmp_path / "ok.csv", sim.n, sim.d, sim.task_loss, sim.accuracy)
    bt = json.loads(_downstream(path).stdout)["largest_size_backtest"]
    assert bt["lo"] <= bt["measured"] <= bt["hi"] and bt["measured_outside_interval"] is False


def test_14_accuracy_far_below_chance_is_a_wrong_chance_or_column(tmp_path):
    sim = simulate_task(0)
    acc = sim.accuracy.copy()
    acc[0] = 0.01
    path = _task_csv(tmp_path / "low.csv", sim.n, sim.d, sim.task_loss, acc)
    assert error_line(_downstream(path)) == (
        f"mlflow-scaling downstream: error: {path}: column 'acc', row 1 (line 2): accuracy 0.01 "
        "is far below chance 0.25 (p = 5.3e-107 on 1000 examples): a guess scores chance, so "
        "--chance or the accuracy column is wrong"
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (slice(0, 9, 3), "step 1 (frontier_C) has 3 parameters; 3 runs cannot support them: "
         "more runs than parameters are needed (at least 4)"),
        (slice(0, 5), "step 1 (chinchilla_ND) has 5 parameters; 5 runs cannot support them: "
         "more runs than parameters are needed (at least 6)"),
    ],
)  # fmt: skip
def test_15_fewer_runs_than_parameters_are_refused(tmp_path, rows, message):
    sim = simulate_task(0)
    path = _task_csv(tmp_path / "few.csv", sim.n[rows], sim.d[rows], sim.task_loss[rows],
                     sim.accuracy[rows])  # fmt: skip
    assert error_line(_downstream(path)) == f"mlflow-scaling downstream: error: {path}: {message}"


def test_16_zero_examples_is_refused(tmp_path):
    sim = simulate_task(0)
    path = _task_csv(tmp_path / "r.csv", sim.n, sim.d, sim.task_loss, sim.accuracy)
    assert error_line(_downstream(path, n_examples="0")).endswith(
        "error: argument --n-examples: '0' must be 1 or more"
    )


def test_20_downstream_n_d_targets_with_a_compute_column(tmp_path):
    sim = simulate_task(0)
    frame = pd.DataFrame({"N": sim.n, "D": sim.d, "C": 7.2 * sim.n * sim.d,
                          "bpb": sim.task_loss, "acc": sim.accuracy})  # fmt: skip
    runs = tmp_path / "runs.csv"
    frame.to_csv(runs, index=False)
    targets = tmp_path / "targets.csv"
    targets.write_text("N,D\n1e9,2e10\n")
    out = _downstream(runs, "--c-col", "C", "--predict", targets, boot="0")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)["predictions"]
    assert (row["N"], row["D"]) == (1e9, 2e10)


def test_23_a_negative_step1_exponent_is_inverse_scaling(tmp_path):
    rng = np.random.default_rng(0)
    n = np.repeat([1e7, 2e7, 5e7, 1e8, 2e8], 3)
    d = n * np.tile([10.0, 20.0, 40.0], 5)
    loss = (0.5 + 0.1 * (n / 1e7) ** 0.3 + 300 / d**0.32) * np.exp(rng.normal(0, 0.005, n.size))
    acc = rng.binomial(2000, true_accuracy(loss)) / 2000
    doc = json.loads(_downstream(_task_csv(tmp_path / "r.csv", n, d, loss, acc)).stdout)
    assert doc["phase"] == "inverse_scaling"
    assert doc["phase_reason"] == (
        "the task loss rises with scale (step-1 alpha = -0.223): inverse scaling"
    )


# --- unexpected errors -----------------------------------------------------------------------


def test_an_unexpected_error_is_one_line_and_a_file_with_its_traceback(tmp_path, monkeypatch):
    from mlflow_scaling.crash_log import ENV_LOG_DIR, one_line, write_traceback

    monkeypatch.setenv(ENV_LOG_DIR, str(tmp_path / "logs"))
    try:
        {}["missing"]
    except KeyError as exc:
        error = exc
    assert one_line(error) == "KeyError: 'missing'"
    path = write_traceback(error, "plan/x y")
    assert path.parent == tmp_path / "logs" and path.name.startswith("plan_x_y-")
    text = path.read_text()
    assert text.startswith("Traceback (most recent call last):")
    assert "test_an_unexpected_error_is_one_line" in text and text.endswith("KeyError: 'missing'\n")
