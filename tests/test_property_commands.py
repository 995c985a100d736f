"""Property-based tests (Hypothesis) over every command's numeric options and CSV values.

Whatever number or text an option or a CSV cell holds, a command exits 0, 1 or 2, prints no
traceback and no numpy warning, writes strict JSON (no NaN or Infinity), and creates no file:
each example runs in an empty working folder that must stay empty, with the internal-error log
folder pointed at another that must stay absent. Examples are bounded (about 40 s in all).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_input_contract import gen

from mlflow_scaling.cli import main
from mlflow_scaling.crash_log import ENV_LOG_DIR

NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=-1e300, max_value=1e300).map(lambda v: f"{v:.6g}"),
    st.integers(-(10**6), 10**12).map(str),
    st.sampled_from(
        [
            "-1e18",
            "-7e9",
            "1e400",
            "-1e400",
            "1e-400",
            "0",
            "-0",
            "",
            " ",
            "--",
            "abc",
            "1e308",
            "-inf",
            "nan",
            "1,5",
            "0x10",
            "1e300",
            "3",
        ]
    ),  # fmt: skip
)


def some_of(options: list[str]):
    """Any subset of ``options``, each with a number (or not-quite-number) as text."""
    return st.fixed_dictionaries({}, optional=dict.fromkeys(options, NUMBER_TEXT))


def bounded(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])  # fmt: skip


def strict_json(text: str):
    def refuse(token):
        raise AssertionError(f"not strict JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def run_isolated(args: list[str]) -> tuple[int, str, str]:
    """``mlflow-scaling ARGS`` in an empty folder; asserts that nothing was created."""
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    with tempfile.TemporaryDirectory() as cwd, tempfile.TemporaryDirectory() as logs:
        crash_logs = Path(logs) / "crash"
        os.environ[ENV_LOG_DIR] = str(crash_logs)
        os.chdir(cwd)
        try:
            with (
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
                warnings.catch_warnings(record=True) as caught,
            ):
                warnings.simplefilter("always")
                try:
                    code = main(args)
                except SystemExit as exc:  # argparse
                    code = int(exc.code or 0)
        finally:
            os.chdir(previous)
            del os.environ[ENV_LOG_DIR]
        assert os.listdir(cwd) == [], (args, os.listdir(cwd))
        assert not crash_logs.exists(), (args, err.getvalue())
        numeric = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        assert numeric == [], (args, numeric)
    return code, out.getvalue(), err.getvalue()


def assert_contract(args: list[str]) -> None:
    code, stdout, stderr = run_isolated(args)
    assert code in (0, 1, 2), (args, code, stderr)
    assert "Traceback" not in stderr and "Warning" not in stderr, (args, stderr)
    if code == 2:
        assert stderr.strip().splitlines()[-1].startswith("mlflow-scaling"), (args, stderr)
    if code in (0, 1) and "json" in args:
        strict_json(stdout)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return gen(tmp_path_factory.mktemp("prop") / "base.csv")


@pytest.fixture(scope="module")
def task_csv(tmp_path_factory) -> Path:
    from downstream_sim import simulate_task

    sim = simulate_task(0)
    path = tmp_path_factory.mktemp("prop") / "task.csv"
    pd.DataFrame({"N": sim.n, "D": sim.d, "bpb": sim.task_loss, "acc": sim.accuracy}).to_csv(
        path, index=False
    )
    return path


PLAN_OPTIONS = ["--params", "--tokens", "--budget", "--gpu-memory", "--gpu-peak-flops",
                "--gpus", "--mfu", "--global-batch-tokens", "--gpu-hour-price", "--seq-len",
                "--vocab", "--gpus-per-node"]  # fmt: skip


@bounded(60)
@given(values=some_of(PLAN_OPTIONS),
       shape=st.none() | st.tuples(NUMBER_TEXT, NUMBER_TEXT, NUMBER_TEXT))  # fmt: skip
@example(values={"--params": "1e12", "--tokens": "1e300"}, shape=None)
@example(values={"--global-batch-tokens": "100"}, shape=("2", "128", "2"))
def test_plan_options(values, shape):
    args = ["plan", "--format", "json"]
    values.setdefault("--params", "1e9")
    for option, text in values.items():
        args.append(f"{option}={text}")
    if "--budget" not in values:
        args.append("--tokens=2e10" if "--tokens" not in values else "")
    if shape is not None:
        args += [f"--layers={shape[0]}", f"--d-model={shape[1]}", f"--heads={shape[2]}"]
    assert_contract([a for a in args if a])


PHASES_OPTIONS = ["--flat-drop-per-decade", "--chance-loss"]
CELLS = {"cell": NUMBER_TEXT, "row": st.integers(0, 19),
         "column": st.sampled_from(["N", "D", "loss"])}  # fmt: skip


@bounded(25)
@given(option=st.sampled_from(PHASES_OPTIONS), text=NUMBER_TEXT, **CELLS)
@example(option="--chance-loss", text="9", cell="2.5", row=3, column="loss")
def test_phases_options_and_values(base, tmp_path, option, text, cell, row, column):
    frame = pd.read_csv(base, dtype=str)
    frame.loc[row, column] = cell
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    assert_contract(["phases", str(path), f"{option}={text}", "--format", "json"])


@bounded(8)
@given(budgets=st.lists(NUMBER_TEXT, min_size=1, max_size=3), huber=NUMBER_TEXT,
       boot=st.sampled_from(["0", "-1e3", "49", "1e9", "x"]))  # fmt: skip
@example(budgets=["1e22", "1e40"], huber="auto", boot="0")
@example(budgets=["1e21"], huber="1e-3", boot="0")
def test_fit_options(base, budgets, huber, boot):
    args = ["fit", str(base), "--bootstrap", boot, "--huber-delta", huber, "--format", "json"]
    assert_contract(args + ["--budget", *budgets])


@bounded(8)
@given(target=st.tuples(NUMBER_TEXT, NUMBER_TEXT), **CELLS)
@example(cell="1e-3", row=0, column="D", target=("1e10", "2e11"))
@example(cell="3e7", row=5, column="N", target=("1e300", "1e300"))
def test_fit_csv_values_and_targets(base, tmp_path, cell, row, column, target):
    frame = pd.read_csv(base, dtype=str)
    frame.loc[row, column] = cell
    runs, targets = tmp_path / "runs.csv", tmp_path / "targets.csv"
    frame.to_csv(runs, index=False)
    targets.write_text(f"N,D\n{target[0]},{target[1]}\n")
    assert_contract(["fit", str(runs), "--bootstrap", "0", "--predict", str(targets),
                     "--format", "json"])  # fmt: skip


CHECK_OPTIONS = ["--target-tokens", "--min-sizes", "--min-span-decades", "--max-backtest-error",
                 "--max-exponent-gap", "--max-extrapolation"]  # fmt: skip


@bounded(5)
@given(target=NUMBER_TEXT, values=some_of(CHECK_OPTIONS))
@example(target="1e10", values={"--target-tokens": "1e300"})
@example(target="10", values={"--max-extrapolation": "1e3"})
def test_check_options(base, target, values):
    args = ["check", str(base), f"--target-params={target}", "--bootstrap", "0"]
    args += [f"{option}={text}" for option, text in values.items()]
    assert_contract([*args, "--format", "json"])


@bounded(5)
@given(chance=NUMBER_TEXT, examples=NUMBER_TEXT, cell=NUMBER_TEXT, row=st.integers(0, 14))
@example(chance="0.25", examples="1000", cell="0.01", row=0)
@example(chance="0.25", examples="2000", cell="0.5", row=4)
def test_downstream_options_and_accuracies(task_csv, tmp_path, chance, examples, cell, row):
    frame = pd.read_csv(task_csv, dtype=str)
    frame.loc[row, "acc"] = cell
    path = tmp_path / "task.csv"
    frame.to_csv(path, index=False)
    assert_contract(["downstream", str(path), "--task-loss-col", "bpb", "--metric-col", "acc",
                     f"--chance={chance}", f"--n-examples={examples}", "--bootstrap", "0",
                     "--format", "json"])  # fmt: skip


STORE_OPTIONS = {
    "refit": ["--budget", "--target-params", "--full-check-every", "--bootstrap", "--workers"],
    "watch": ["--interval", "--max-passes", "--budget", "--target-params", "--bootstrap"],
    "plan": ["--target-params", "--target-tokens", "--budget", "--mfu", "--gpus"],
    "families": ["--min-runs"],
}


@bounded(25)
@given(pair=st.sampled_from([(c, o) for c, opts in STORE_OPTIONS.items() for o in opts]),
       text=NUMBER_TEXT)  # fmt: skip
@example(pair=("refit", "--budget"), text="1e20")
@example(pair=("watch", "--interval"), text="30s")
def test_store_commands_never_create_a_store(pair, text):
    # A mistyped store is refused (exit 2) and never created, whatever the other options say.
    command, option = pair
    args = [command, "--tracking-uri", "sqlite:///absent.db", f"{option}={text}"]
    if command == "plan":
        args += ["--experiment", "E", "--family", "F"]
    if command == "watch":
        args += ["--max-passes", "1"]
    assert_contract(args)
