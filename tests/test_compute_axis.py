"""One compute axis: f(N) learned from the runs, and allocation that spends its budget on it."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar
from simulated_families import TRUE_LAW, attention_family, attention_flops_per_token
from test_cli_fit import run_cli

from mlflow_scaling.jobs.analysis import RefitSettings, analyze_family
from mlflow_scaling.laws import compute_optimal
from mlflow_scaling.laws.allocation import budget_for_size
from mlflow_scaling.laws.compute_axis import ComputeAxis
from mlflow_scaling.summary import summarize_chinchilla
from mlflow_scaling.tracking.reading import C_FROM_6ND, C_FROM_METRIC, MemberPoint

BUDGETS = [1e15, 1e16, 1e17]


def true_best_loss(budget: float) -> float:
    """The true law's best loss at ``budget`` on the true axis, found independently (scipy)."""
    res = minimize_scalar(
        lambda x: TRUE_LAW.predict(np.exp(x), budget / attention_flops_per_token(np.exp(x))),
        bounds=(np.log(1e3), np.log(1e12)),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return float(res.fun)


@pytest.fixture(scope="module")
def family():
    return attention_family(np.random.default_rng(0))


def test_axis_is_exact_at_the_trained_sizes_and_follows_attention_beyond(family):
    n, d, c, _ = family
    axis = ComputeAxis.from_runs(n, c, d)
    assert axis.kind == "measured"
    sizes = np.unique(n)
    np.testing.assert_allclose(axis.flops_per_token(sizes), attention_flops_per_token(sizes))
    np.testing.assert_allclose(axis.ratio_to_6nd(sizes[[0, -1]]), [3.6667, 1.1667], rtol=1e-3)
    far = sizes.max() * np.array([10.0, 100.0])  # extrapolated by 6N + c·N^γ
    np.testing.assert_allclose(axis.flops_per_token(far), attention_flops_per_token(far), rtol=0.01)
    between = np.sqrt(sizes[1] * sizes[2])
    assert axis.flops_per_token(between) == pytest.approx(
        attention_flops_per_token(between), rel=0.02
    )
    again = ComputeAxis.from_dict(json.loads(json.dumps(axis.to_dict())))
    np.testing.assert_allclose(again.flops_per_token(far), axis.flops_per_token(far))
    np.testing.assert_allclose(axis.tokens(far, axis.flops(far, [3e9, 4e9])), [3e9, 4e9])


def test_without_logged_flops_the_axis_is_6nd():
    axis = ComputeAxis.from_runs([1e8, 2e8], [np.nan, -1.0], [1e9, 1e9])
    assert axis.kind == "6ND" and axis.to_dict() == {"kind": "6ND", "formula": "C = 6*N*D"}
    assert axis.flops(1e9, 2e10) == 6 * 1e9 * 2e10
    assert ComputeAxis.from_dict(None).kind == "6ND"


def test_compute_optimal_rows_spend_their_budget_on_the_family_axis(family):
    """Acceptance: within 3 % of the budget on the true axis, within 1 % of the true best loss."""
    n, d, c, loss = family
    axis = ComputeAxis.from_runs(n, c, d)
    summary, _ = summarize_chinchilla(n, d, loss, n_boot=0, budgets=BUDGETS, axis=axis)
    assert summary["compute_axis"]["kind"] == "measured"
    for row in summary["budgets"]:
        spent = attention_flops_per_token(row["n_opt"]) * row["d_opt"]
        assert spent == pytest.approx(row["flops"], rel=0.03)
        reached = TRUE_LAW.predict(row["n_opt"], row["d_opt"])
        assert reached == pytest.approx(true_best_loss(row["flops"]), rel=0.01)
    # the 6ND closed form on the same law overspends these budgets by 24-60 %
    six = compute_optimal(_law(summary), BUDGETS)
    overspend = attention_flops_per_token(six.n_opt) * six.d_opt / np.array(BUDGETS)
    assert np.all(overspend > 1.2)


def _law(summary):
    from mlflow_scaling.laws import ChinchillaLaw

    return ChinchillaLaw(**summary["params"])


def test_budget_for_size_inverts_the_numeric_optimum(family):
    n, d, c, loss = family
    axis = ComputeAxis.from_runs(n, c, d)
    law = _law(summarize_chinchilla(n, d, loss, n_boot=0)[0])
    for size in (3e6, 5e8, 2e10):
        budget = budget_for_size(law, size, axis=axis)
        assert compute_optimal(law, budget, axis=axis).n_opt[0] == pytest.approx(size, rel=1e-4)


def test_fit_json_names_the_axis_and_members_without_flops_join_it(family):
    n, d, c, loss = family

    def point(i, measured):
        source = C_FROM_METRIC if measured else C_FROM_6ND
        flops = c[i] if measured else 6 * n[i] * d[i]
        return MemberPoint(f"r{i}", f"run {i}", n[i], d[i], flops, source, loss[i], "loss", 0, 0)

    points = [point(i, measured=i % 5 != 0) for i in range(n.size)]
    doc = analyze_family(points, RefitSettings(n_boot=0, budgets=tuple(BUDGETS)))
    assert doc["compute_axis"]["kind"] == "measured"
    for row in doc["budgets"]:
        spent = attention_flops_per_token(row["n_opt"]) * row["d_opt"]
        assert spent == pytest.approx(row["flops"], rel=0.03)
    target = doc["check"]["prediction"]
    assert target["C"] == pytest.approx(attention_flops_per_token(target["N"]) * target["D"], 0.01)
    six = analyze_family(
        [point(i, measured=False) for i in range(n.size)], RefitSettings(n_boot=0, budgets=(1e16,))
    )
    assert six["compute_axis"]["kind"] == "6ND"
    row = six["budgets"][0]
    assert 6 * row["n_opt"] * row["d_opt"] == pytest.approx(1e16, rel=1e-9)


def test_cli_learns_the_axis_from_c_and_d_columns(tmp_path, family):
    n, d, c, loss = family
    path = tmp_path / "runs.csv"
    pd.DataFrame({"N": n, "D": d, "C": c, "loss": loss}).to_csv(path, index=False)
    out = run_cli("fit", path, "--c-col", "C", "--bootstrap", "0", "--budget", "1e16",
                  "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["compute_axis"]["kind"] == "measured"
    row = doc["budgets"][0]
    assert attention_flops_per_token(row["n_opt"]) * row["d_opt"] == pytest.approx(1e16, rel=0.03)
    only_c = tmp_path / "only_c.csv"
    pd.DataFrame({"N": n, "C": c, "loss": loss}).to_csv(only_c, index=False)
    out = run_cli("fit", only_c, "--c-col", "C", "--bootstrap", "0", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["compute_axis"]["kind"] == "6ND"


def test_report_names_the_axis_and_the_interval_method(family):
    from mlflow_scaling.report.html import report_html

    n, d, c, loss = family
    points = [
        MemberPoint(f"r{i}", f"run {i}", n[i], d[i], c[i], C_FROM_METRIC, loss[i], "loss", 0, 0)
        for i in range(n.size)
    ]
    doc = analyze_family(points, RefitSettings(n_boot=50, budgets=(1e16,)))
    doc.update(family="attention", members=[p.to_dict() for p in points], excluded=[])
    html = report_html(doc)
    assert 'data-kind="measured"' in html and "f/6N from 3.67 " in html
    assert "widened beyond the trained range by" in html
