import numpy as np
import pytest

from mlflow_scaling.laws import ChinchillaLaw, allocation_exponents, training_curve_envelope

LAW = ChinchillaLaw(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)


def curves(sizes, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    n, c, loss, cid = [], [], [], []
    for i, size in enumerate(sizes):
        d = np.geomspace(1e8, 3e12, 80)
        n += [size] * d.size
        c += list(6 * size * d)
        loss += list(LAW.predict(size, d) * np.exp(rng.normal(scale=noise, size=d.size)))
        cid += [f"run-{i}"] * d.size
    return n, c, loss, cid


def test_envelope_recovers_allocation_exponent_of_a_known_law():
    env = training_curve_envelope(*curves(np.geomspace(1e7, 1e10, 25)))
    a, b = allocation_exponents(LAW)
    assert env.a == pytest.approx(a, abs=0.02)
    assert env.b == pytest.approx(b, abs=0.02)
    assert env.n_fit_points > 50


def test_envelope_is_the_lowest_curve():
    sizes = np.geomspace(1e7, 1e10, 10)
    n, c, loss, cid = curves(sizes)
    env = training_curve_envelope(n, c, loss, cid)
    for flops, best, size in zip(env.flops[::20], env.loss[::20], env.n_opt[::20], strict=True):
        on_budget = LAW.predict(sizes, flops / (6 * sizes))
        covered = (flops >= 6 * sizes * 1e8) & (flops <= 6 * sizes * 3e12)
        assert best == pytest.approx(on_budget[covered].min(), rel=2e-3)
        assert size == sizes[covered][np.argmin(on_budget[covered])]


def test_envelope_with_noise():
    env = training_curve_envelope(*curves(np.geomspace(1e7, 1e10, 25), noise=0.005))
    a, _ = allocation_exponents(LAW)
    assert env.a == pytest.approx(a, abs=0.05)


def test_envelope_bad_input():
    n, c, loss, cid = curves([1e8])
    with pytest.raises(ValueError, match="at least 2 model sizes"):
        training_curve_envelope(n, c, loss, cid)
    n, c, loss, cid = curves([1e8, 1e9])
    loss[3] = float("nan")
    with pytest.raises(ValueError, match="loss must be positive and finite; point 3"):
        training_curve_envelope(n, c, loss, cid)
