import numpy as np
import pytest
from reference_data import EPOCH, EPOCH_OBJECTIVE, HOFFMANN, chinchilla
from scipy.optimize import minimize

from mlflow_scaling.laws import ChinchillaLaw, epoch_grid, fit_chinchilla
from mlflow_scaling.laws.fitting import EPOCH_HUBER_DELTA, chinchilla_objective


@pytest.fixture(scope="module")
def chinchilla_fit():
    p = chinchilla()
    return p, fit_chinchilla(p.n, p.d, p.loss, huber_delta=EPOCH_HUBER_DELTA)


def test_epoch_grid_has_4500_distinct_starts():
    grid = epoch_grid()
    assert grid.shape == (4500, 5)
    assert np.unique(grid, axis=0).shape[0] == 4500
    assert set(grid[:, 3]) == {0.0, 0.5, 1.0, 1.5, 2.0}
    assert set(grid[:, 0]) == {0.0, 5.0, 10.0, 15.0, 20.0, 25.0}
    assert set(grid[:, 2]) == {-1.0, -0.5, 0.0, 0.5, 1.0}


def test_reproduces_epoch_optimum(chinchilla_fit):
    points, fit = chinchilla_fit
    law = fit.law
    assert points.n.size == 240 and fit.n_points == 240
    assert law.E == pytest.approx(EPOCH["E"], abs=0.002)
    assert law.alpha == pytest.approx(EPOCH["alpha"], abs=0.002)
    assert law.beta == pytest.approx(EPOCH["beta"], abs=0.003)
    assert law.A == pytest.approx(EPOCH["A"], rel=0.02)
    assert law.B == pytest.approx(EPOCH["B"], rel=0.03)
    assert fit.objective == pytest.approx(EPOCH_OBJECTIVE, rel=1e-5)
    assert fit.converged and fit.n_starts == 4500


def test_objective_agrees_with_plain_formula(chinchilla_fit):
    points, fit = chinchilla_fit
    pred = fit.law.predict(points.n, points.d)
    r = np.log(points.loss) - np.log(pred)
    huber = np.where(np.abs(r) <= 1e-3, 0.5 * r**2, 1e-3 * (np.abs(r) - 0.5e-3))
    assert huber.sum() == pytest.approx(fit.objective, rel=1e-9)


def test_fitted_optimum_is_a_local_minimum(chinchilla_fit):
    points, fit = chinchilla_fit
    theta = fit.law.log_params
    best = chinchilla_objective(theta, points.n, points.d, points.loss)
    rng = np.random.default_rng(1)
    for _ in range(50):
        nudged = theta + rng.normal(scale=1e-4, size=5)
        assert chinchilla_objective(nudged, points.n, points.d, points.loss) >= best - 1e-15


def test_averaging_trap_stops_near_hoffmann():
    """Mean instead of sum, started at Hoffmann's values: L-BFGS stops almost at once."""
    p = chinchilla()
    start = ChinchillaLaw(**HOFFMANN).log_params
    res = minimize(
        chinchilla_objective, start, args=(p.n, p.d, p.loss, 1e-3, "mean"), method="L-BFGS-B"
    )
    trapped = ChinchillaLaw.from_log_params(res.x)
    assert res.nit <= 15
    assert trapped.E == pytest.approx(HOFFMANN["E"], rel=0.02)
    assert trapped.B == pytest.approx(HOFFMANN["B"], rel=0.05)
    assert trapped.beta == pytest.approx(HOFFMANN["beta"], abs=0.01)
    # ... far from the real optimum, with a far worse summed objective.
    assert abs(trapped.beta - EPOCH["beta"]) > 0.05
    summed = chinchilla_objective(res.x, p.n, p.d, p.loss)
    assert summed > 1.1 * EPOCH_OBJECTIVE
    # The summed objective, optimised to convergence from the same single start, escapes.
    escaped = fit_chinchilla(p.n, p.d, p.loss, starts=[start], huber_delta=EPOCH_HUBER_DELTA)
    assert escaped.objective == pytest.approx(EPOCH_OBJECTIVE, rel=1e-5)
    assert escaped.law.beta == pytest.approx(EPOCH["beta"], abs=0.003)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_a_known_law_from_noisy_runs(seed):
    truth = ChinchillaLaw(E=2.0, A=300.0, B=900.0, alpha=0.32, beta=0.30)
    rng = np.random.default_rng(seed)
    n = np.repeat(np.geomspace(1e7, 3e9, 8), 6)
    d = np.tile(np.geomspace(2e8, 2e11, 6), 8)
    loss = truth.predict(n, d) * np.exp(rng.normal(scale=0.003, size=n.size))
    fit = fit_chinchilla(n, d, loss)
    assert fit.law.E == pytest.approx(truth.E, rel=0.03)
    assert fit.law.alpha == pytest.approx(truth.alpha, abs=0.03)
    assert fit.law.beta == pytest.approx(truth.beta, abs=0.03)
    assert np.allclose(fit.law.predict(n, d), truth.predict(n, d), rtol=0.01)
    # One decade beyond the largest model, the extrapolation is still within 2 %.
    grid = np.geomspace(3e9, 3e10, 5)
    assert np.allclose(fit.law.predict(grid, 20 * grid), truth.predict(grid, 20 * grid), rtol=0.02)


def test_exact_law_is_recovered_exactly():
    truth = ChinchillaLaw(E=1.7, A=400.0, B=1500.0, alpha=0.35, beta=0.33)
    n = np.repeat(np.geomspace(1e7, 1e10, 6), 5)
    d = np.tile(np.geomspace(1e9, 1e12, 5), 6)
    fit = fit_chinchilla(n, d, truth.predict(n, d))
    assert fit.objective < 1e-12
    for name in ("E", "A", "B", "alpha", "beta"):
        assert getattr(fit.law, name) == pytest.approx(getattr(truth, name), rel=1e-4)


@pytest.mark.parametrize(
    ("n", "d", "loss", "message"),
    [
        ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, 3, 4], "equal lengths"),
        ([1, 2, -3, 4, 5], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5], "N must be positive"),
        ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, np.nan, 4, 5], "loss must be positive"),
        ([1, 2, 3], [1, 2, 3], [1, 2, 3], "only 3 points"),
    ],
)
def test_bad_input_is_named(n, d, loss, message):
    with pytest.raises(ValueError, match=message):
        fit_chinchilla(n, d, loss)
