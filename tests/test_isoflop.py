import numpy as np
import pytest
from reference_data import chinchilla

from mlflow_scaling.laws import ChinchillaLaw, allocation_exponents, fit_isoflop, group_by_budget

LAW = ChinchillaLaw(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)


def synthetic_isoflops(budgets, sizes_per_budget=9, spread=1.5, centre_shift=0.0):
    n, c, loss = [], [], []
    for budget in budgets:
        centre = float(LAW_N_OPT(budget)) * np.exp(centre_shift)
        sizes = centre * np.exp(np.linspace(-spread, spread, sizes_per_budget))
        n += list(sizes)
        c += [budget] * sizes_per_budget
        loss += list(LAW.predict(sizes, budget / (6 * sizes)))
    return np.array(n), np.array(c), np.array(loss)


def LAW_N_OPT(budget):
    from mlflow_scaling.laws import compute_optimal

    return compute_optimal(LAW, budget).n_opt[0]


def test_chinchilla_exponent_inside_the_papers_interval():
    p = chinchilla()
    fit = fit_isoflop(p.n, 6 * p.n * p.d, p.loss)
    assert 0.462 < fit.a < 0.534
    assert fit.a + fit.b == pytest.approx(1.0, abs=1e-9)
    assert len(fit.profiles) >= 8
    # every excluded budget carries its reason
    assert all("reason" in e and e["reason"] for e in fit.excluded)


def test_group_by_budget_exact_and_scattered():
    budgets = np.repeat([1e18, 3e18, 1e19, 3e19], 5)
    assert np.array_equal(group_by_budget(budgets), np.repeat([0, 1, 2, 3], 5))
    rng = np.random.default_rng(0)
    scattered = budgets * np.exp(rng.normal(scale=0.04, size=budgets.size))
    assert np.array_equal(group_by_budget(scattered), np.repeat([0, 1, 2, 3], 5))


@pytest.mark.parametrize("method", ["parabola", "akima"])
def test_synthetic_profiles_recover_the_allocation_exponent(method):
    n, c, loss = synthetic_isoflops(np.geomspace(1e18, 1e22, 9))
    fit = fit_isoflop(n, c, loss, method=method)
    a, _ = allocation_exponents(LAW)
    assert fit.method == method
    assert fit.a == pytest.approx(a, abs=0.01)
    assert all(p.inside for p in fit.profiles)
    assert fit.n_opt(1e20) == pytest.approx(LAW_N_OPT(1e20), rel=0.1)


def test_off_centre_sampling_biases_the_parabola_and_is_flagged():
    n, c, loss = synthetic_isoflops(np.geomspace(1e18, 1e22, 5), spread=2.0, centre_shift=1.8)
    fit = fit_isoflop(n, c, loss, method="parabola")
    a, _ = allocation_exponents(LAW)
    errors = [abs(np.log(p.n_opt / LAW_N_OPT(p.flops))) for p in fit.profiles]
    assert max(errors) > 0.05  # the known bias
    akima = fit_isoflop(n, c, loss, method="akima")
    akima_errors = [abs(np.log(p.n_opt / LAW_N_OPT(p.flops))) for p in akima.profiles]
    assert max(akima_errors) < max(errors)


def test_budgets_without_a_minimum_are_excluded_with_a_reason():
    n, c, loss = synthetic_isoflops([1e19, 1e20, 1e21])
    n = np.append(n, [1e8, 2e8])
    c = np.append(c, [1e23, 1e23])
    loss = np.append(loss, [2.0, 1.9])
    fit = fit_isoflop(n, c, loss)
    assert len(fit.profiles) == 3
    assert fit.excluded[0]["reason"].startswith("only 2 distinct sizes")


def test_too_few_budgets_is_an_error():
    n, c, loss = synthetic_isoflops([1e19])
    with pytest.raises(ValueError, match="at least 2 budgets"):
        fit_isoflop(n, c, loss)
    with pytest.raises(ValueError, match="method"):
        fit_isoflop(n, c, loss, method="cubic")
