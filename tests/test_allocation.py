import numpy as np
import pytest
from reference_data import EPOCH, HOFFMANN
from scipy.optimize import minimize_scalar

from mlflow_scaling.laws import ChinchillaLaw, allocation_exponents, compute_optimal, plan_loss

EPOCH_LAW = ChinchillaLaw(**EPOCH)


@pytest.mark.parametrize("budget", [1e19, 1e21, 5.88e23, 1e26])
def test_closed_form_matches_numeric_minimum_on_the_isoflop(budget):
    alloc = compute_optimal(EPOCH_LAW, budget)

    def loss_at(log_n):
        n = np.exp(log_n)
        return float(EPOCH_LAW.predict(n, budget / (6 * n)))

    res = minimize_scalar(loss_at, bounds=(np.log(1e5), np.log(1e15)), method="bounded",
                          options={"xatol": 1e-10})  # fmt: skip
    assert alloc.n_opt[0] == pytest.approx(np.exp(res.x), rel=1e-4)
    assert alloc.loss[0] == pytest.approx(res.fun, rel=1e-9)
    assert 6 * alloc.n_opt[0] * alloc.d_opt[0] == pytest.approx(budget, rel=1e-12)


def test_epoch_law_at_chinchilla_budget():
    alloc = compute_optimal(EPOCH_LAW, 5.88e23)
    assert 15 < alloc.tokens_per_param[0] < 25  # "about 20 tokens per parameter"
    assert plan_loss(EPOCH_LAW, 70e9, 1.4e12) == pytest.approx(1.9734, abs=2e-4)
    # Hoffmann's rounded published values predict a lower loss for Chinchilla than Epoch's fit.
    assert plan_loss(ChinchillaLaw(**HOFFMANN), 70e9, 1.4e12) < 1.9734 - 0.03


def test_exponents_and_their_sum():
    a, b = allocation_exponents(EPOCH_LAW)
    assert a == pytest.approx(0.513, abs=1e-3)
    assert a + b == pytest.approx(1.0)
    ladder = compute_optimal(EPOCH_LAW, [1e20, 1e22])
    assert np.log(ladder.n_opt[1] / ladder.n_opt[0]) / np.log(100) == pytest.approx(a)
    assert np.all(np.diff(ladder.loss) < 0)


def test_rows_and_batched_laws():
    rows = compute_optimal(EPOCH_LAW, [1e21, 1e22]).rows()
    assert [set(r) for r in rows] == [{"flops", "n_opt", "d_opt", "tokens_per_param", "loss"}] * 2
    batch = ChinchillaLaw(
        E=np.array([[1.8], [1.9]]), A=np.array([[480.0], [400.0]]),
        B=np.array([[2100.0], [1500.0]]), alpha=np.array([[0.35], [0.34]]),
        beta=np.array([[0.37], [0.3]]),
    )  # fmt: skip
    out = compute_optimal(batch, [1e21, 1e22, 1e23])
    assert out.n_opt.shape == (2, 3)
    single = compute_optimal(ChinchillaLaw(1.9, 400.0, 1500.0, 0.34, 0.3), [1e21, 1e22, 1e23])
    assert np.allclose(out.n_opt[1], single.n_opt)


@pytest.mark.parametrize("bad", [0.0, -1e20, np.inf, np.nan])
def test_bad_budget_is_named(bad):
    with pytest.raises(ValueError, match="compute budgets must be positive"):
        compute_optimal(EPOCH_LAW, [1e20, bad])


@pytest.mark.parametrize("size", [1e8, 7e10, 1e12])
def test_budget_for_size_inverts_the_allocation(size):
    from mlflow_scaling.laws.allocation import budget_for_size

    assert compute_optimal(EPOCH_LAW, budget_for_size(EPOCH_LAW, size)).n_opt[0] == pytest.approx(
        size, rel=1e-9
    )
