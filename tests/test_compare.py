"""The comparison of two families: exact quantities on true laws, the verdict rules, and a
seeded floor on simulated pairs (the full rates are in benchmarks/bench_compare.py)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.compare_simulation import (
    BASE_LAW,
    BUDGETS,
    CROSSOVER,
    MULTIPLIER,
    constant_multiplier_law,
    crossing_law,
    simulate_pair,
)
from mlflow_scaling.laws.compare import (
    BETTER,
    CROSSES,
    NO_DIFFERENCE,
    WORSE,
    budget_ladder,
    compare_families,
    compute_multiplier,
    decide,
    find_crossover,
    frontier_loss,
    inverse_frontier,
    local_slope,
    replicate_crossovers,
)
from mlflow_scaling.laws.measured_frontier import compare_measured, measured_frontier

GAMMA = BASE_LAW.alpha * BASE_LAW.beta / (BASE_LAW.alpha + BASE_LAW.beta)


def _reducible_constant() -> float:
    """K in L*(C) = E + K·C^(−γ) for the 6ND frontier (closed form)."""
    c = 1e18
    return float((frontier_loss(BASE_LAW, c)[0] - BASE_LAW.E) * c**GAMMA)


def test_inverse_frontier_matches_the_closed_form():
    k = _reducible_constant()
    budgets = np.array([3e15, 1e17, 7e18, 2e21])
    target = BASE_LAW.E + k * budgets**-GAMMA
    grid = 10.0 ** np.linspace(10, 27, 17 * 24 + 1)
    found = inverse_frontier(BASE_LAW, target, grid)
    np.testing.assert_allclose(found, budgets, rtol=2e-3)


def test_inverse_frontier_clips_to_the_grid():
    grid = 10.0 ** np.linspace(15, 20, 121)
    below_floor, above_start = BASE_LAW.E * 0.99, 100.0
    found = inverse_frontier(BASE_LAW, [below_floor, above_start], grid)
    assert found.tolist() == [grid[-1], grid[0]]


def test_constant_multiplier_is_recovered_exactly_on_true_laws():
    cand = constant_multiplier_law(BASE_LAW, MULTIPLIER)
    m = compute_multiplier(BASE_LAW, cand, BUDGETS)
    np.testing.assert_allclose(m, MULTIPLIER, rtol=1e-3)
    np.testing.assert_allclose(compute_multiplier(cand, BASE_LAW, BUDGETS), 1 / MULTIPLIER,
                               rtol=1e-3)  # fmt: skip
    assert find_crossover(BASE_LAW, cand, 1e15, 1e21) is None


def test_each_family_on_its_own_compute_axis():
    """Same law in (N, D), but the candidate spends half the FLOPs per token: worth 2x."""
    from mlflow_scaling.laws.compute_axis import ComputeAxis

    n = np.array([1e7, 1e8, 1e9])
    d = 20 * n
    half = ComputeAxis.from_runs(n, 3.0 * n * d, d)
    assert half.kind == "measured"
    m = compute_multiplier(BASE_LAW, BASE_LAW, [1e17, 1e19], candidate_axis=half)
    np.testing.assert_allclose(m, 2.0, rtol=2e-3)


def test_batched_laws_pair_replicates_row_by_row():
    cands = [constant_multiplier_law(BASE_LAW, m) for m in (0.5, 2.0, 3.0)]

    def stack(laws, name):
        return np.array([[getattr(law, name)] for law in laws])

    from mlflow_scaling.laws.chinchilla import ChinchillaLaw

    names = ("E", "A", "B", "alpha", "beta")
    batch_c = ChinchillaLaw(**{n: stack(cands, n) for n in names})
    batch_b = ChinchillaLaw(**{n: stack([BASE_LAW] * 3, n) for n in names})
    m = compute_multiplier(batch_b, batch_c, [1e17, 1e19])
    np.testing.assert_allclose(m, [[0.5, 0.5], [2.0, 2.0], [3.0, 3.0]], rtol=1e-3)


def test_crossover_of_a_crossing_pair_is_where_the_frontiers_meet():
    cand = crossing_law(BASE_LAW, 0.85, CROSSOVER)
    found = find_crossover(BASE_LAW, cand, 1e15, 1e21)
    assert found == pytest.approx(CROSSOVER, rel=1e-3)
    m = compute_multiplier(BASE_LAW, cand, [1e16, 1e20])
    assert m[0] > 1 > m[1]


def test_replicate_crossovers_of_batched_true_laws():
    from mlflow_scaling.laws.chinchilla import ChinchillaLaw

    cands = [crossing_law(BASE_LAW, 0.85, c) for c in (1e17, 3e18)] + [BASE_LAW]
    names = ("E", "A", "B", "alpha", "beta")
    batch_c = ChinchillaLaw(**{n: np.array([[getattr(c, n)] for c in cands]) for n in names})
    batch_b = ChinchillaLaw(**{n: np.full((3, 1), getattr(BASE_LAW, n)) for n in names})
    got = replicate_crossovers(batch_b, batch_c, 1e15, 1e21)
    np.testing.assert_allclose(got[:2], [1e17, 3e18], rtol=2e-3)
    assert np.isnan(got[2])  # the same law never crosses (log m = 0 exactly is no crossing)


def test_local_slope_matches_the_derivative():
    k = _reducible_constant()
    c = np.array([1e16, 1e19, 1e22])
    exact = -GAMMA * k * c**-GAMMA / (BASE_LAW.E + k * c**-GAMMA)
    np.testing.assert_allclose(local_slope(BASE_LAW, c), exact, rtol=1e-3)


@pytest.mark.parametrize(
    ("lo", "hi", "verdict"),
    [
        ([1.1, 1.2, 1.3], [1.5, 1.6, 1.9], BETTER),
        ([0.5, 0.6, 0.7], [0.8, 0.9, 0.95], WORSE),
        ([0.8, 0.9, 0.7], [1.2, 1.1, 1.4], NO_DIFFERENCE),
        ([1.2, 1.0, 0.5], [1.6, 1.2, 0.9], CROSSES),
        ([0.5, 0.9, 1.1], [0.9, 1.2, 1.5], CROSSES),
        ([1.2, 0.9, 0.8], [1.5, 1.1, 1.3], NO_DIFFERENCE),  # better only at small budgets
        ([0.9, 0.95, 1.01], [1.1, 1.05, 1.2], BETTER),
    ],
)
def test_verdict_rules(lo, hi, verdict):
    assert decide(lo, hi)[0] == verdict


def test_default_ladder_spans_the_shared_range_to_ten_times_past():
    ladder = budget_ladder(np.array([1e16, 1e19]), np.array([3e16, 2e18]))
    assert ladder[0] == pytest.approx(3e16) and ladder[-1] == pytest.approx(1e20)
    assert np.all(np.diff(np.log10(ladder)) <= 0.5 + 1e-9)


def test_bad_input_is_named():
    pair = simulate_pair("same", 0)
    with pytest.raises(ValueError, match="at least 10 bootstrap"):
        compare_families(pair.baseline, pair.candidate, n_boot=3)
    with pytest.raises(ValueError, match="budgets must be positive"):
        compare_families(pair.baseline, pair.candidate, budgets=[1e18, -1.0], n_boot=10)


SEEDS = range(2)
N_BOOT = 30


def _run(scenario):
    out = []
    for seed in SEEDS:
        pair = simulate_pair(scenario, seed)
        out.append(
            (
                pair,
                compare_families(
                    pair.baseline,
                    pair.candidate,
                    n_boot=N_BOOT,
                    seed=seed,
                    budgets=[1e17, 1e18],
                    check=False,
                ),
            )
        )
    return out  # fmt: skip


def test_seeded_floor_on_simulated_pairs():
    """Few seeds and replicates (seconds); the benchmark measures the rates on 50 seeds."""
    for _, r in _run("constant"):
        for row in r.budgets:
            assert abs(row["multiplier"] / MULTIPLIER - 1) <= 0.10
            assert row["lo"] <= MULTIPLIER <= row["hi"]
    for pair, r in _run("crosses"):
        assert 0.5 <= r.crossover_flops / pair.true_crossover <= 2.0


def test_measured_verdicts_of_ten_seeded_pairs():
    """The measured frontiers alone (no fit), ten seeds a scenario. The Bonferroni rule lets two
    families from one law differ at some budget 5 % of the time: seed 0 is such a draw (one
    budget, a 3σ gap between two isoFLOP minima). The crossing pair's frontiers differ by at
    most ~1 % within the grid's ends, under 1 % noise: mostly not established by the runs."""
    verdicts = {}
    for scenario in ("same", "constant", "crosses"):
        found = []
        for seed in range(10):
            pair = simulate_pair(scenario, seed)
            fronts = [measured_frontier(f.n, f.d, f.loss, f.compute(), noise=0.01)
                      for f in (pair.baseline, pair.candidate)]  # fmt: skip
            found.append(compare_measured(*fronts).verdict)
        verdicts[scenario] = found
    assert verdicts["same"] == [WORSE] + [NO_DIFFERENCE] * 9
    assert verdicts["constant"] == [BETTER] * 10
    assert verdicts["crosses"].count(CROSSES) == 2
    assert verdicts["crosses"].count(NO_DIFFERENCE) == 8


def test_the_report_lists_phase_check_and_the_json_keys():
    pair = simulate_pair("crosses", 0)
    r = compare_families(pair.baseline, pair.candidate, n_boot=20, seed=0)
    doc = r.to_dict()
    assert doc["verdict"] == CROSSES
    for role in ("baseline", "candidate"):
        assert doc[role]["family"] == role
        assert doc[role]["phase"] == "scaling"
    # Noise of 1 % puts the candidate's isoFLOP (Approach 2) exponent off Approach 3's.
    assert (doc["baseline"]["check"], doc["baseline"]["check_failed"]) == ("pass", [])
    assert (doc["candidate"]["check"], doc["candidate"]["check_failed"]) == (
        "fail", ["approaches_agree"])  # fmt: skip
    assert doc["warnings"] == []
    required = {"flops", "loss_baseline", "loss_candidate", "multiplier", "lo", "hi"}
    assert all(required <= set(row) for row in doc["budgets"])
    assert doc["budgets"][0]["flops"] == pytest.approx(1e16)
    assert doc["budgets"][-1]["flops"] == pytest.approx(1e20)


def test_compare_page_escapes_names_and_tolerates_odd_documents():
    from mlflow_scaling.server.compare_page import (
        ComparisonDetail,
        compare_url,
        render_compare_links,
        render_comparison,
    )
    from mlflow_scaling.server.pages import Links
    from mlflow_scaling.tracking.reading import ExperimentRef

    evil = "<script>alert(1)</script>"
    doc = {"verdict": evil, "budgets": [{"flops": 1e18, "multiplier": "x"}, 3],
           "baseline": {"family": evil}, "warnings": [evil]}  # fmt: skip
    d = ComparisonDetail(ExperimentRef("7", evil), baseline=evil, candidate="a/b", doc=doc)
    html = render_comparison(d, Links())
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'data-value="1e+18"' in html and "—" in html
    assert compare_url("", "7", "x", "a/b") == "/scaling/compare/7?baseline=x&candidate=a%2Fb"
    links = render_compare_links([{"baseline": evil, "candidate": "c", "verdict": "better",
                                   "experiment_id": "7"}], Links())  # fmt: skip
    assert "<script>" not in links and "/scaling/compare/7?baseline=%3Cscript%3E" in links
    assert render_compare_links([], Links()).strip() == ""


def test_small_sample_widening():
    from mlflow_scaling.laws.compare import small_sample_widening

    assert small_sample_widening(35) == pytest.approx((35 / 30) ** 0.5)
    assert small_sample_widening(6) == pytest.approx(6**0.5)
    with pytest.raises(ValueError, match="more than 5 runs per family, got 5"):
        small_sample_widening(5)
