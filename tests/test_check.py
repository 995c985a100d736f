import json

import numpy as np
import pandas as pd
import pytest
from reference_data import chinchilla
from test_cli_fit import run_cli

from mlflow_scaling.laws import ChinchillaLaw, fit_chinchilla
from mlflow_scaling.laws.check import scaling_check

LAW = ChinchillaLaw(E=1.9, A=400.0, B=1200.0, alpha=0.34, beta=0.32)


def grid_family(sizes, tokens_per_size=4, noise=0.003, seed=0, law=LAW):
    rng = np.random.default_rng(seed)
    n = np.repeat(sizes, tokens_per_size)
    d = np.concatenate([s * np.geomspace(5, 80, tokens_per_size) for s in sizes])
    loss = law.predict(n, d) * np.exp(rng.normal(scale=noise, size=n.size))
    return n, d, loss


@pytest.fixture(scope="module")
def chinchilla_small():
    p = chinchilla()
    keep = p.n <= 3e9
    return p, keep


def test_chinchilla_small_runs_pass_and_predict_7b(chinchilla_small):
    p, keep = chinchilla_small
    result = scaling_check(
        p.n[keep], p.d[keep], p.loss[keep], target_params=7e9, target_tokens=1.4e11, n_boot=300
    )
    assert result.verdict == "pass", [c for c in result.criteria if c.passed is False]
    assert result.phase.phase == "scaling"
    names = [c.name for c in result.criteria]
    assert names == [
        "distinct_sizes", "size_span_decades", "phase", "backtest", "approaches_agree",
        "extrapolation", "precision", "law_fit",
    ]  # fmt: skip
    assert all(c.passed for c in result.criteria)
    full = fit_chinchilla(p.n, p.d, p.loss).law.predict(7e9, 1.4e11)
    pred = result.prediction
    assert pred["lo"] < full < pred["hi"]
    assert pred["lo"] < pred["loss"] < pred["hi"]
    doc = result.to_dict()
    assert json.loads(json.dumps(doc))["verdict"] == "pass"
    assert set(doc["criteria"][0]) == {"name", "value", "threshold", "passed", "detail"}


def test_clean_synthetic_family_passes_with_compute_optimal_target():
    n, d, loss = grid_family(np.geomspace(2e7, 1e9, 6))
    strict = scaling_check(n, d, loss, target_params=5e9, n_boot=100)
    # every criterion but precision passes: the interval at 5× past the data is ±5–10 %
    assert [c.name for c in strict.failed] == ["precision"]
    precision = strict.failed[0]
    assert 0.05 < precision.value < 0.10 and precision.threshold == 0.05
    result = scaling_check(n, d, loss, target_params=5e9, n_boot=100, max_halfwidth=0.10)
    assert result.verdict == "pass", result.failed
    assert result.phase.phase == "scaling"
    assert result.prediction["tokens"] == "compute_optimal"
    # the compute-optimal target lands on the fitted law's allocation
    from mlflow_scaling.laws import compute_optimal

    flops = 6 * 5e9 * result.prediction["D"]
    assert compute_optimal(result.fit.law, flops).n_opt[0] == pytest.approx(5e9, rel=1e-6)


def test_cold_start_family_at_uniform_guess_fails():
    rng = np.random.default_rng(0)
    sizes = np.geomspace(1e6, 1e8, 6)
    n = np.repeat(sizes, 3)
    d = np.tile([1e8, 3e8, 1e9], 6)
    loss = np.log(256) * np.exp(rng.normal(scale=0.002, size=n.size))
    result = scaling_check(n, d, loss, target_params=1e9, n_boot=50)
    assert result.verdict == "fail"
    assert result.phase.phase == "cold_start"
    phase = next(c for c in result.criteria if c.name == "phase")
    assert phase.passed is False and phase.value == "cold_start"


def test_plateau_family_fails_on_phase():
    law = ChinchillaLaw(E=2.0, A=1e4, B=3e4, alpha=0.8, beta=0.8)  # saturates within 2 decades
    n, d, loss = grid_family(np.geomspace(1e5, 1e8, 7), law=law)
    result = scaling_check(n, d, loss, target_params=5e8, n_boot=0)
    assert result.verdict == "fail"
    assert result.phase.phase == "plateau"
    assert [c.name for c in result.failed] == ["phase"]
    approaches = next(c for c in result.criteria if c.name == "approaches_agree")
    assert approaches.passed is None and approaches.detail.startswith("not applicable")


def test_one_size_is_a_clear_failure_not_a_crash():
    n = np.full(6, 1e8)
    d = np.geomspace(1e9, 1e10, 6)
    loss = LAW.predict(n, d)
    result = scaling_check(n, d, loss, target_params=1e9, n_boot=0)
    assert result.verdict == "fail"
    failed = {c.name for c in result.failed}
    assert failed == {"distinct_sizes", "size_span_decades", "backtest", "fit"}
    # The loss still falls along D (compute), so the compute frontier is scaling.
    assert result.phase.phase == "scaling"
    fit = next(c for c in result.criteria if c.name == "fit")
    assert fit.detail.startswith("the Chinchilla law needs at least 2 distinct model sizes")


def test_far_extrapolation_fails_that_criterion_only():
    n, d, loss = grid_family(np.geomspace(2e7, 1e9, 6))
    result = scaling_check(n, d, loss, target_params=1e11, n_boot=0)
    assert [c.name for c in result.failed] == ["extrapolation"]
    extrapolation = next(c for c in result.criteria if c.name == "extrapolation")
    assert extrapolation.value == pytest.approx(100.0)
    assert result.prediction["lo"] is None  # no bootstrap, no interval


def test_check_cli_exit_codes(tmp_path, chinchilla_small):
    p, keep = chinchilla_small
    path = tmp_path / "small.csv"
    pd.DataFrame({"N": p.n[keep], "C": 6 * p.n[keep] * p.d[keep], "loss": p.loss[keep]}).to_csv(
        path, index=False
    )
    out = run_cli("check", path, "--c-col", "C", "--target-params", "7e9", "--target-tokens",
                  "1.4e11", "--bootstrap", "100", "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["verdict"] == "pass" and doc["phase"] == "scaling"
    assert {"loss", "lo", "hi"} <= set(doc["prediction"])
    assert all({"name", "value", "threshold", "passed"} <= set(c) for c in doc["criteria"])

    out = run_cli("check", path, "--c-col", "C", "--target-params", "1e12", "--bootstrap", "0")
    assert out.returncode == 1
    assert "FAIL" in out.stdout and "extrapolation" in out.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("N,D,loss\n1e8,1e9,3.0\n2e8,1e9,\n")
    out = run_cli("check", bad, "--target-params", "7e9")
    assert out.returncode == 2 and "column 'loss', row 2" in out.stderr


def test_phases_cli_json(tmp_path):
    from reference_data import bnsl_csv

    out = run_cli("phases", bnsl_csv(), "--x-col", "train_dataset_size", "--loss-col",
                  "test_cross_entropy", "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["phase"] == "cold_start"
    assert doc["segments"][0]["phase"] == "cold_start"
    assert {"phase", "x_min", "x_max", "slope"} <= set(doc["segments"][0])
    out = run_cli("phases", bnsl_csv(), "--x-col", "nope")
    assert out.returncode == 2 and "no column 'nope'" in out.stderr
