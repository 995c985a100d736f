"""The commands as Python functions (mlflow_scaling.api): the README's "From Python" snippet runs
as written, and a function returns what its command prints as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from _refit_support import call_cli
from downstream_sim import simulate_task

from benchmarks.compare_simulation import simulate_pair
from mlflow_scaling import api
from mlflow_scaling.tabular import InputError

README = Path(__file__).resolve().parents[1] / "README.md"


def _snippet() -> str:
    text = README.read_text()
    section = text[text.index("## From Python") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("python_api")
    pair = simulate_pair("constant", 0)
    for runs, name in ((pair.baseline, "runs"), (pair.baseline, "baseline"),
                       (pair.candidate, "candidate")):  # fmt: skip
        pd.DataFrame({"N": runs.n, "D": runs.d, "loss": runs.loss}).to_csv(
            out / f"{name}.csv", index=False
        )
    sim = simulate_task(0)
    pd.DataFrame({"N": sim.n, "D": sim.d, "bpb": sim.task_loss, "acc": sim.accuracy}).to_csv(
        out / "ladder.csv", index=False
    )
    return out


def test_the_readme_snippet_runs_as_written(folder, monkeypatch, capsys):
    monkeypatch.chdir(folder)
    names: dict = {}
    exec(compile(_snippet(), str(README), "exec"), names)  # noqa: S102 (our own README)
    assert isinstance(names["fitted"], api.FitResult)
    assert names["verdict"].verdict in ("pass", "fail")
    assert names["versus"].verdict == "better"  # the candidate is the baseline shifted down
    assert names["cluster"].to_dict()["gpus"] >= 1
    assert names["task"].phase.phase == "scaling"
    assert len(capsys.readouterr().out.splitlines()) == 5


def test_fit_returns_what_the_command_prints(folder):
    out = call_cli("fit", folder / "runs.csv", "--bootstrap", "0", "--budget", "1e20",
                   "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    printed.pop("file")
    result = api.fit(pd.read_csv(folder / "runs.csv"), budgets=[1e20], n_boot=0).to_dict()
    assert json.loads(json.dumps(result)) == printed


def test_plan_returns_what_the_command_prints():
    out = call_cli("plan", "--params", "7e9", "--tokens", "2e12", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(json.dumps(api.plan(params=7e9, tokens=2e12).to_dict())) == json.loads(
        out.stdout
    )


def test_bad_input_names_the_column_and_row():
    frame = pd.DataFrame({"N": [1e8, 2e8], "D": [2e9, -1.0], "loss": [3.0, 2.9]})
    with pytest.raises(InputError, match=r"DataFrame: column 'D', row 2"):
        api.fit(frame, n_boot=0)
