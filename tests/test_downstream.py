"""Downstream accuracy prediction (laws/downstream.py) on simulated chains with a known sigmoid.

The floors here are on fixed seeds; ``benchmarks/bench_downstream.py`` prints the same numbers
over more seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
from downstream_sim import (
    FREE_SIGMOID,
    SIGMOID,
    SIZES,
    free_accuracy,
    simulate_checkpoints,
    simulate_task,
    true_accuracy,
)

from mlflow_scaling.laws.bootstrap import resample_weights
from mlflow_scaling.laws.check import FAIL, PASS, Criterion, scaling_check
from mlflow_scaling.laws.downstream import (
    STEP1_CHINCHILLA,
    STEP1_COMPUTE,
    Checkpoints,
    fit_loss_step,
    fit_sigmoid,
    fit_task,
    later_checkpoints,
    refit_sigmoids,
    spans_both_axes,
    task_criteria,
    task_phase,
)

LARGEST = max(SIZES)


def _fit(sim, targets=(), **kw):
    kw.setdefault("n_boot", 0)
    kw.setdefault("backtest", False)
    return fit_task("sim", sim.n, sim.d, sim.c, sim.accuracy, sim.task_loss, sim.chance,
                    n_examples=np.full(sim.n.size, sim.n_examples), targets=targets,
                    **kw)  # fmt: skip


def test_sigmoid_is_recovered_from_noiseless_points():
    loss = np.linspace(0.6, 1.6, 12)
    acc = true_accuracy(loss)
    sig = fit_sigmoid(loss, acc, SIGMOID["chance"])
    assert sig.chance == SIGMOID["chance"]
    assert sig.ceiling == pytest.approx(SIGMOID["ceiling"], abs=1e-4)
    assert sig.k == pytest.approx(SIGMOID["k"], rel=1e-3)
    assert sig.L0 == pytest.approx(SIGMOID["L0"], abs=1e-4)


def test_sigmoid_ceiling_never_exceeds_one():
    loss = np.linspace(0.2, 1.0, 8)
    acc = np.clip(1.3 - loss, 0.25, 1.0)  # points that would like a ceiling above 1
    assert fit_sigmoid(loss, acc, 0.25).ceiling <= 1.0


def test_batched_sigmoid_refits_match_one_at_a_time():
    sim = simulate_task(2)
    start = fit_sigmoid(sim.task_loss, sim.accuracy, 0.25)
    weights = resample_weights(np.arange(sim.n.size), 12, np.random.default_rng(1))
    batched = refit_sigmoids(sim.task_loss, sim.accuracy, start, weights)
    for w, b in zip(weights, batched, strict=True):
        one = fit_sigmoid(sim.task_loss, sim.accuracy, 0.25, weights=w, start=start)
        cost_b = np.sum(w * (b.predict(sim.task_loss) - sim.accuracy) ** 2)
        cost_1 = np.sum(w * (one.predict(sim.task_loss) - sim.accuracy) ** 2)
        assert cost_b <= cost_1 * (1 + 1e-3)
        assert b.ceiling == pytest.approx(one.ceiling, abs=1e-3)


def test_step1_uses_n_and_d_where_the_runs_span_both_axes():
    sim = simulate_task(0)
    assert spans_both_axes(sim.n, sim.d)
    step = fit_loss_step(sim.n, sim.d, sim.c, sim.task_loss)
    assert step.kind == STEP1_CHINCHILLA
    assert step.used.size == sim.n.size


def test_step1_falls_back_to_compute_on_a_fixed_ratio_ladder():
    sim = simulate_task(0, tokens_per_param=(20.0,))
    assert not spans_both_axes(sim.n, sim.d)
    step = fit_loss_step(sim.n, sim.d, sim.c, sim.task_loss)
    assert step.kind == STEP1_COMPUTE
    errors = []
    for seed in range(4):  # 5 runs only: the extrapolation in C is looser than in (N, D)
        sim = simulate_task(seed, tokens_per_param=(20.0,))
        n, d, true, _ = sim.target(5 * LARGEST)
        fit = _fit(sim, targets=[(n, d)])
        assert fit.step1.kind == STEP1_COMPUTE
        errors.append(abs(fit.predictions[0]["metric"] - true))
    assert np.mean(errors) < 0.04


def test_predictions_at_3_to_10x_recovered_within_about_two_points():
    errors = {3: [], 5: [], 10: []}
    for seed in range(5):
        sim = simulate_task(seed)
        targets = [sim.target(f * LARGEST) for f in errors]
        fit = _fit(sim, targets=[(t[0], t[1]) for t in targets])
        for f, t, row in zip(errors, targets, fit.predictions, strict=True):
            errors[f].append(abs(row["metric"] - t[2]))
    # Mean absolute error in points of accuracy; bench_downstream.py: 1.3, 1.7, 2.2 (30 seeds).
    assert np.mean(errors[3]) < 0.02
    assert np.mean(errors[5]) < 0.02
    assert np.mean(errors[10]) < 0.025
    assert max(max(v) for v in errors.values()) < 0.045


def test_interval_covers_measured_accuracy_over_seeds_and_one_step_is_worse():
    covered, two, one = [], [], []
    for seed in range(8):
        sim = simulate_task(seed)
        n, d, true, measured = sim.target(5 * LARGEST, seed=500 + seed)
        row = _fit(sim, targets=[(n, d)], n_boot=25, seed=seed).predictions[0]
        assert row["lo"] < row["metric"] < row["hi"]
        covered.append(row["lo"] <= measured <= row["hi"])
        two.append(abs(row["metric"] - true))
        one.append(abs(row["one_step"] - true))
    assert np.mean(covered) >= 0.85
    assert np.mean(two) < np.mean(one)


def test_largest_size_backtest_reports_prediction_and_measurement():
    sim = simulate_task(1)
    fit = _fit(sim, n_boot=20, backtest=True)
    bt = fit.backtest
    assert bt["N"] == LARGEST
    assert bt["n_fitted"] == sim.n.size - 3
    i = int(np.flatnonzero((sim.n == LARGEST) & (sim.c == sim.c[sim.n == LARGEST].max()))[0])
    assert bt["measured"] == sim.accuracy[i]
    assert abs(bt["predicted"] - bt["measured"]) < 0.03
    assert bt["lo"] < bt["predicted"] < bt["hi"]
    assert set(bt) >= {"N", "measured", "predicted", "lo", "hi", "one_step_predicted"}


def test_family_at_chance_is_cold_start_and_fails_a_gating_task():
    sim = simulate_task(3, at_chance=True)
    fit = _fit(sim, targets=[(5 * LARGEST, 100 * LARGEST)], n_boot=20)
    assert fit.phase.phase == "cold_start"
    assert [s["phase"] for s in fit.phase.segments] == ["cold_start"]
    assert all(not s["above_chance"] for s in fit.phase.sizes)
    docs = {"hard": fit.to_dict(), "other": fit.to_dict()}
    crit = {c.name: c for c in task_criteria(docs, gating=["hard"])}
    assert crit["task:hard"].passed is False
    assert crit["task:other"].passed is None  # reported, not gating
    assert "not gating (would fail)" in crit["task:other"].detail


def test_scaling_task_passes_gating():
    sim = simulate_task(0)
    fit = _fit(sim, targets=[(5 * LARGEST, 100 * LARGEST)], n_boot=20)
    assert fit.phase.phase == "scaling"
    (crit,) = task_criteria({"t": fit.to_dict()}, gating=["t"])
    assert crit.passed is True
    assert crit.value == pytest.approx(fit.predictions[0]["metric"])


def test_gating_task_without_result_fails():
    (crit,) = task_criteria({}, gating=["missing"])
    assert crit.name == "task:missing" and crit.passed is False


def test_cold_start_segments_then_scaling():
    # The two smallest sizes at chance, then take-off: cold start followed by scaling.
    n = np.array([1e7, 3e7, 1e8, 3e8, 1e9])
    acc = np.array([0.25, 0.252, 0.32, 0.45, 0.6])
    report = task_phase(n, 20 * n, 120 * n * n, acc, 0.25, np.full(5, 1000))
    assert report.phase == "scaling"
    assert [s["phase"] for s in report.segments] == ["cold_start", "scaling"]
    assert report.segments[0]["x_max"] == 120 * 3e7**2


def test_take_off_from_chance_is_cold_start_then_scaling_not_a_plateau():
    # Small models: the two smallest at chance, then accuracy rises slowly (below the
    # sigmoid's midpoint, where gains are small but growing).
    sim = simulate_task(0, sizes=(2e6, 4e6, 8e6, 1.6e7, 3.2e7), n_examples=4000)
    fit = _fit(sim)
    assert fit.phase.phase == "scaling"
    assert [s["phase"] for s in fit.phase.segments] == ["cold_start", "scaling"]


def test_saturated_accuracy_is_a_plateau():
    n = np.array([1e7, 3e7, 1e8, 3e8, 1e9, 3e9])
    d = 20 * n
    loss = 0.5 + 60 / n**0.32 + 300 / d**0.32
    acc = 0.25 + 0.45 * (1 - np.exp(-40 * (1.6 - loss)))  # saturates at 0.70 by the 4th size
    fit = fit_task("sat", n, d, 6 * n * d, acc, loss, 0.25, n_examples=np.full(6, 4000),
                   n_boot=0, backtest=False)  # fmt: skip
    assert fit.phase.phase == "plateau"
    assert fit.phase.segments[-1]["phase"] == "plateau"
    assert fit.phase.segments[0]["phase"] == "scaling"


def test_fit_task_names_the_bad_row():
    sim = simulate_task(0)
    acc = sim.accuracy.copy()
    acc[4] = 1.5
    with pytest.raises(ValueError, match="accuracy of row 4"):
        fit_task("t", sim.n, sim.d, sim.c, acc, sim.task_loss, 0.25)


def test_check_with_task_criteria_redoes_the_verdict():
    rng = np.random.default_rng(0)
    n = np.repeat([1e7, 3e7, 1e8, 3e8, 1e9], 3)
    d = n * np.tile([10.0, 20.0, 40.0], 5)
    loss = (1.7 + 400 / n**0.34 + 1800 / d**0.36) * np.exp(rng.normal(0, 0.003, n.size))
    check = scaling_check(n, d, loss, target_params=5e9, n_boot=0)
    assert check.verdict == PASS
    failing = Criterion("task:x", 0.25, "> 0.25", False)
    reported = Criterion("task:y", 0.25, "> 0.25", None)
    assert check.with_criteria([reported]).verdict == PASS
    worse = check.with_criteria([reported, failing])
    assert worse.verdict == FAIL and worse.criteria[-1] is failing


def test_free_floor_sigmoid_recovers_floor_height_k_and_midpoint():
    loss = np.linspace(0.4, 2.0, 20)
    sig = fit_sigmoid(loss, free_accuracy(loss), 0.25, free_floor=True)
    assert sig.chance == 0.25
    assert sig.floor == pytest.approx(FREE_SIGMOID["floor"], abs=1e-5)
    assert sig.ceiling == pytest.approx(FREE_SIGMOID["ceiling"], abs=1e-5)
    assert sig.k == pytest.approx(FREE_SIGMOID["k"], rel=1e-4)
    assert sig.L0 == pytest.approx(FREE_SIGMOID["L0"], abs=1e-5)
    doc = sig.to_dict()
    assert doc["free_floor"] is True
    assert doc["height"] == pytest.approx(0.55, abs=1e-5)


def test_batched_free_floor_refits_match_one_at_a_time():
    sim = simulate_checkpoints(1)
    start = fit_sigmoid(sim.task_loss, sim.accuracy, 0.25, free_floor=True)
    weights = resample_weights(sim.run, 8, np.random.default_rng(2))
    for w, b in zip(weights, refit_sigmoids(sim.task_loss, sim.accuracy, start, weights),
                    strict=True):  # fmt: skip
        one = fit_sigmoid(sim.task_loss, sim.accuracy, 0.25, weights=w, start=start,
                          free_floor=True)  # fmt: skip
        cost_b = np.sum(w * (b.predict(sim.task_loss) - sim.accuracy) ** 2)
        cost_1 = np.sum(w * (one.predict(sim.task_loss) - sim.accuracy) ** 2)
        assert cost_b <= cost_1 * (1 + 1e-3)
        assert b.floor == pytest.approx(one.floor, abs=2e-3)


def test_later_checkpoints_skip_the_early_fraction_and_keep_each_last_row():
    run = np.array(["a"] * 5 + ["b"] * 3)
    step = np.array([0, 10, 50, 90, 100, 3, 20, 40])
    keep = later_checkpoints(run, step, 0.1)
    assert keep.tolist() == [False, False, True, True, True, False, True, True]
    assert later_checkpoints(run, step, 0.95).tolist() == [False] * 4 + [True] + [False] * 2 + [
        True
    ]


def _checkpoint_fit(sim, **kw):
    final = sim.final()
    ck = Checkpoints.of(sim.run, sim.task_loss, sim.accuracy, np.full(sim.run.size, 2000))
    return fit_task("ck", sim.n[final], sim.d[final], 6 * sim.n[final] * sim.d[final],
                    sim.accuracy[final], sim.task_loss[final], 0.25,
                    n_examples=np.full(final.sum(), 2000), groups=sim.run[final],
                    checkpoints=ck, **kw)  # fmt: skip


def test_checkpoints_fit_step2_with_a_free_floor_and_step1_on_final_points():
    sim = simulate_checkpoints(0)
    target = 5 * LARGEST
    fit = _checkpoint_fit(sim, targets=[(target, 20 * target)], n_boot=30, backtest=False)
    doc = fit.to_dict()
    assert doc["steps"]["loss_fit"]["n_points"] == 15  # final points only
    assert doc["steps"]["sigmoid_points"] == {
        "on": "checkpoints", "n_points": 120, "n_runs": 15,
        "weights": "binomial (n_examples)",
    }  # fmt: skip
    assert fit.sigmoid.floor == pytest.approx(FREE_SIGMOID["floor"], abs=0.02)
    assert doc["warnings"] == [
        f"fitted floor {fit.sigmoid.floor:.3f} is {fit.sigmoid.floor - 0.25:.3f} from chance "
        "0.25 (more than 0.05)"
    ]
    row = fit.predictions[0]
    true = float(free_accuracy(0.55 + 60 / target**0.32 + 300 / (20 * target) ** 0.32))
    assert abs(row["metric"] - true) < 0.02
    assert row["lo"] < row["metric"] < row["hi"]
    assert row["share_step1"] + row["share_step2"] == pytest.approx(1.0)
    assert row["extrapolation_decades"] == pytest.approx(np.log10(5 * 5 * 20 / 40), abs=1e-9)


def test_checkpoint_backtest_leaves_the_largest_runs_checkpoints_out():
    sim = simulate_checkpoints(2)
    fit = _checkpoint_fit(sim, n_boot=0, backtest=True)
    assert fit.backtest["n_fitted"] == 12
    assert abs(fit.backtest["predicted"] - fit.backtest["measured"]) < 0.03


def test_bad_checkpoint_names_its_run():
    with pytest.raises(
        ValueError, match=r"checkpoint 2 of run 'b': task loss 0.8, accuracy 1.2 \("
    ):
        Checkpoints.of(["a", "a", "b"], [1.0, 0.9, 0.8], [0.3, 0.4, 1.2])
