"""``mlflow-scaling fit --unique-col`` (and ``api.fit_data_constrained``) on simulated repeats."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from _refit_support import call_cli
from _repeats_support import TRUTH, repeated_runs

from mlflow_scaling import api
from mlflow_scaling.laws.data_constrained import allocate_with_unique_tokens


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("repeats") / "runs.csv"
    repeated_runs().to_csv(path, index=False)
    return str(path)


def _table(frame: pd.DataFrame, tmp_path, name: str = "t.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def test_fit_prints_r_star_with_intervals_and_the_worth_of_an_epoch(runs_csv) -> None:
    out = call_cli("fit", runs_csv, "--unique-col", "U", "--run-col", "run", "--bootstrap", "50",
                   "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["law"] == "data_constrained" and doc["identified"] is True
    assert (doc["n_points"], doc["n_repeated"]) == (36, 30)
    for name, true in (("r_star_d", 15.0), ("r_star_n", 5.0)):
        lo, hi = doc["intervals"][name]
        assert lo <= true <= hi and doc["params"][name] == pytest.approx(true, rel=0.35), name
    assert doc["epochs_worth_tenth"] == pytest.approx(1 + doc["params"]["r_star_d"] * math.log(10))
    assert "data_budget" not in doc and set(doc["fresh_law"]) == {"E", "A", "B", "alpha", "beta"}

    table = call_cli("fit", runs_csv, "--unique-col", "U", "--bootstrap", "50")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("law: data-constrained") and "30 repeat their data" in lines[0]
    (r_d,) = [line for line in lines if line.startswith("R*_D")]
    assert "(" in r_d  # with its interval
    (worth,) = [line for line in lines if "worth less than 10% of fresh data" in line]
    assert f"after {doc['epochs_worth_tenth']:.4g} epochs" in worth


def test_unique_tokens_and_budget_give_the_best_split(runs_csv) -> None:
    out = call_cli("fit", runs_csv, "--unique-col", "U", "--bootstrap", "0", "--unique-tokens",
                   "1e9", "--budget", "1e19", "1e20", "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["data_budget"]
    result = api.fit_data_constrained(repeated_runs(), unique_col="U", n_boot=0)
    for row, c in zip(rows, (1e19, 1e20), strict=True):
        want = allocate_with_unique_tokens(result.fit.law, c, 1e9).to_dict()
        assert row == pytest.approx(want, rel=1e-9)
        assert row["epochs"] == pytest.approx(row["d_opt"] / 1e9)
        assert row["loss_given_up"] > 0  # 1e9 unique tokens cost something at these budgets
    truth = allocate_with_unique_tokens(TRUTH, 1e20, 1e9)
    assert rows[1]["n_opt"] == pytest.approx(truth.n_opt, rel=0.3)

    table = call_cli("fit", runs_csv, "--unique-col", "U", "--bootstrap", "0", "--unique-tokens",
                     "1e9", "--budget", "1e20")  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "data budget: U = 1e+09 unique tokens" in table.stdout
    assert f"{rows[1]['epochs']:>10.4g}" in table.stdout.splitlines()[-2]


def test_single_epoch_runs_say_the_repetition_terms_were_not_identified(tmp_path) -> None:
    path = _table(repeated_runs(epochs=(1,)), tmp_path)
    out = call_cli("fit", path, "--unique-col", "U", "--bootstrap", "0")
    assert out.returncode == 0, out.stderr
    assert "every run is single-epoch: the repetition terms R*_D, R*_N were not identified" in (
        out.stdout
    )
    assert "R*_D" not in out.stdout.replace("R*_D, R*_N were", "")
    refused = call_cli("fit", path, "--unique-col", "U", "--unique-tokens", "1e9", "--budget",
                       "1e19")  # fmt: skip
    assert refused.returncode == 2 and "--unique-tokens needs runs of more than one epoch" in (
        refused.stderr
    )


def _bad(tmp_path, frame: pd.DataFrame, *extra: str) -> str:
    out = call_cli("fit", _table(frame, tmp_path), "--unique-col", "U", "--bootstrap", "0", *extra)
    assert out.returncode == 2, out.stdout
    return out.stderr.strip()


def test_bad_unique_tokens_are_named_by_row_and_run(tmp_path) -> None:
    runs = repeated_runs()
    more = runs.copy()
    more.loc[3, "U"] = more.loc[3, "D"] * 2
    assert _bad(tmp_path, more, "--run-col", "run").endswith(
        "column 'U', row 4 (line 5), run 'N3e+07-U1e+08-x8': unique tokens 1.6e+09 exceed the "
        "run's tokens 8e+08 (column 'D'); a run cannot see more distinct tokens than it trains on"
    )
    for value, phrase in ((0, "unique tokens 0 is not at least 1"),
                          (-5, "unique tokens -5 is not at least 1"),
                          ("many", "'many' is not a number")):  # fmt: skip
        bad = runs.astype({"U": object})
        bad.loc[2, "U"] = value
        assert f"column 'U', row 3 (line 4): {phrase}" in _bad(tmp_path, bad)
    missing = runs.astype({"U": object})
    missing.loc[[1, 7], "U"] = None
    message = _bad(tmp_path, missing, "--run-col", "run")
    assert "2 of 36 rows lack unique tokens in column 'U'" in message
    assert "row 2 (line 3), run 'N3e+07-U1e+08-x2'" in message
    assert "row 8 (line 9), run 'N3e+07-U1e+09-x2'" in message


def test_a_run_with_two_unique_counts_is_refused(tmp_path) -> None:
    runs = repeated_runs()
    twice = pd.concat([runs, runs.iloc[[5]].assign(U=runs.loc[5, "U"] / 2)], ignore_index=True)
    message = _bad(tmp_path, twice, "--run-col", "run")
    assert message.endswith(
        "run 'N3e+07-U1e+08-x40' has more than one unique-token count (1e+08 at row 6, 5e+07 at "
        "row 37); a run draws from one corpus"
    )


def test_options_that_need_unique_col(runs_csv, tmp_path) -> None:
    for extra, phrase in ((("--unique-tokens", "1e9"), "--unique-tokens goes with --unique-col"),
                          (("--run-col", "run"), "--run-col goes with --unique-col")):  # fmt: skip
        out = call_cli("fit", runs_csv, *extra)
        assert out.returncode == 2 and phrase in out.stderr
    out = call_cli("fit", runs_csv, "--unique-col", "U", "--unique-tokens", "1e9")
    assert out.returncode == 2 and "--unique-tokens and --budget go together" in out.stderr
    targets = _table(pd.DataFrame({"N": [1e9], "D": [1e10]}), tmp_path, "targets.csv")
    out = call_cli("fit", runs_csv, "--unique-col", "U", "--predict", targets)
    assert out.returncode == 2 and "--predict does not go with --unique-col" in out.stderr
    out = call_cli("fit", runs_csv, "--unique-col", "unique")
    assert out.returncode == 2 and "no column 'unique' for unique tokens" in out.stderr


def test_a_law_that_leans_on_the_prior_says_so(tmp_path) -> None:
    # repeats exactly as good as fresh data: alone, the runs put R*_D at its bound (1e8)
    fresh = repeated_runs()
    fresh["loss"] = TRUTH.base.predict(fresh["N"], fresh["D"])
    out = call_cli("fit", _table(fresh, tmp_path), "--unique-col", "U", "--bootstrap", "0")
    assert out.returncode == 0, out.stderr
    (note,) = [line for line in out.stdout.splitlines() if "leans on the prior" in line]
    assert note.startswith("note: R*_D leans on the prior: the runs alone put it at 1e+08 (R*_N")
    assert "Muennighoff et al.'s R*_D = 15.4, R*_N = 5.3 (σ = 0.25 in log)" in note
    same = call_cli("fit", _table(repeated_runs(), tmp_path, "r.csv"), "--unique-col", "U",
                    "--bootstrap", "0")  # fmt: skip
    assert same.returncode == 0 and "leans on the prior" not in same.stdout
