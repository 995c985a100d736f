"""The one-axis saturating power law and its robust (summed Huber, log-space) fit."""

from __future__ import annotations

import numpy as np
import pytest

from mlflow_scaling.laws.power_law import SaturatingPowerLaw, fit_saturating_power_law, huber


def test_predict_and_local_slope():
    law = SaturatingPowerLaw(E=1.5, A=400.0, alpha=0.3)
    x = np.array([1e6, 1e8, 1e10])
    np.testing.assert_allclose(law.predict(x), 1.5 + 400.0 * x**-0.3, rtol=1e-12)
    h = 1e-6
    numeric = (np.log(law.predict(x * np.exp(h))) - np.log(law.predict(x * np.exp(-h)))) / (2 * h)
    np.testing.assert_allclose(law.local_slope(x), numeric, rtol=1e-6)
    # Far past the knee the slope tends to 0 (the floor); far before it to -alpha.
    assert abs(law.local_slope(1e30)) < 1e-6
    assert law.local_slope(1.0) == pytest.approx(-0.3, rel=1e-2)


def test_huber_is_quadratic_then_linear():
    r = np.array([-2.0, -1e-4, 0.0, 1e-4, 2.0])
    np.testing.assert_allclose(huber(r, 1e-3), [2e-3 - 5e-7, 5e-9, 0.0, 5e-9, 2e-3 - 5e-7])
    np.testing.assert_allclose(huber(r, np.inf), 0.5 * r**2)


@pytest.mark.parametrize(
    ("E", "A", "alpha", "log10_x"),
    [
        (1.8, 400.0, 0.34, (7, 10)),  # parameters, Chinchilla-like
        (1.69, 1e4, 0.3, (18, 22)),  # FLOPs: x up to 1e22
        (0.5, 20.0, 0.08, (6, 9)),  # Kaplan-like small exponent
        (2.5, 3e3, 0.9, (3, 5)),  # steep, few decades
    ],
)
def test_recovers_noiseless_law(E, A, alpha, log10_x):
    x = np.logspace(*log10_x, 9)
    law, objective = fit_saturating_power_law(x, SaturatingPowerLaw(E, A, alpha).predict(x))
    assert law.E == pytest.approx(E, rel=1e-4)
    assert law.A == pytest.approx(A, rel=1e-3)
    assert law.alpha == pytest.approx(alpha, rel=1e-4)
    assert objective < 1e-12


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("noise", [0.01, 0.03])
def test_noisy_fit_tracks_the_true_curve(seed, noise):
    rng = np.random.default_rng(seed)
    true = SaturatingPowerLaw(E=1.7, A=406.4, alpha=0.34)
    x = np.logspace(7, 10, 10)
    y = true.predict(x) * np.exp(noise * rng.standard_normal(x.size))
    law, _ = fit_saturating_power_law(x, y)
    dense = np.logspace(7, 10, 50)
    assert np.max(np.abs(law.predict(dense) / true.predict(dense) - 1)) < 2.5 * noise


def test_objective_is_the_summed_weighted_huber_of_log_residuals():
    rng = np.random.default_rng(1)
    x = np.logspace(6, 9, 8)
    y = SaturatingPowerLaw(2.0, 50.0, 0.25).predict(x) * np.exp(0.02 * rng.standard_normal(8))
    w = rng.uniform(0.5, 2.0, 8)
    law, objective = fit_saturating_power_law(x, y, weights=w, huber_delta=1e-3)
    recomputed = np.sum(w * huber(np.log(y) - np.log(law.predict(x)), 1e-3))
    assert objective == pytest.approx(recomputed, rel=1e-9)


def test_huber_resists_an_outlier_that_least_squares_follows():
    true = SaturatingPowerLaw(E=1.7, A=406.4, alpha=0.34)
    x = np.logspace(7, 10, 10)
    y = true.predict(x)
    y[6] *= 1.4  # one broken run
    robust, _ = fit_saturating_power_law(x, y, huber_delta=1e-3)
    plain, _ = fit_saturating_power_law(x, y, huber_delta=np.inf)
    assert robust.alpha == pytest.approx(0.34, rel=1e-3)
    assert abs(plain.alpha - 0.34) > 10 * abs(robust.alpha - 0.34)


def test_zero_weight_is_the_same_as_dropping_the_point():
    rng = np.random.default_rng(2)
    x = np.logspace(6, 9, 9)
    y = SaturatingPowerLaw(1.0, 30.0, 0.2).predict(x) * np.exp(0.01 * rng.standard_normal(9))
    y[4] *= 2.0
    w = np.ones(9)
    w[4] = 0.0
    weighted, obj_w = fit_saturating_power_law(x, y, weights=w)
    dropped, obj_d = fit_saturating_power_law(np.delete(x, 4), np.delete(y, 4))
    np.testing.assert_allclose(
        weighted.predict(x), dropped.predict(x), rtol=1e-4
    )  # same optimum up to solver tolerance
    assert obj_w == pytest.approx(obj_d, rel=1e-4, abs=1e-12)


def test_flat_data_give_a_flat_law():
    x = np.logspace(5, 8, 7)
    law, _ = fit_saturating_power_law(x, np.full(7, 3.2))
    np.testing.assert_allclose(law.predict(x), 3.2, rtol=1e-6)
    assert np.all(np.abs(law.local_slope(x)) < 1e-6)


@pytest.mark.parametrize(
    ("x", "loss", "message"),
    [
        ([1, 2, 3], [1.0, 2.0], "x has 3 values but loss has 2"),
        ([1, 2], [1.0, 2.0], "at least 3 points"),
        ([1, 2, 3], [1.0, -2.0, 1.0], "index 1 has loss=-2.0"),
        ([1, 0, 3], [1.0, 2.0, 1.0], "index 1 has x=0.0"),
        ([1, 2, 3], [1.0, np.nan, 1.0], "index 1 has loss=nan"),
        ([2, 2, 2], [1.0, 2.0, 1.0], "2 distinct"),
    ],
)
def test_bad_input_is_named(x, loss, message):
    with pytest.raises(ValueError, match=message):
        fit_saturating_power_law(x, loss)


def test_bad_weights_and_delta():
    x, y = [1.0, 10.0, 100.0], [3.0, 2.0, 1.5]
    with pytest.raises(ValueError, match="weights has 2 values"):
        fit_saturating_power_law(x, y, weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="index 2"):
        fit_saturating_power_law(x, y, weights=[1.0, 1.0, -1.0])
    with pytest.raises(ValueError, match="all weights are zero"):
        fit_saturating_power_law(x, y, weights=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="huber_delta"):
        fit_saturating_power_law(x, y, huber_delta=0.0)


def test_law_is_a_frozen_value():
    law = SaturatingPowerLaw(1.0, 2.0, 0.5)
    with pytest.raises(AttributeError):
        law.E = 2.0  # type: ignore[misc]
    assert law.to_dict() == {"E": 1.0, "A": 2.0, "alpha": 0.5}
