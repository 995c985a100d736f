import numpy as np
import pytest
from reference_data import EPOCH_CI, chinchilla

from mlflow_scaling.laws import ChinchillaLaw, bootstrap_chinchilla, fit_chinchilla
from mlflow_scaling.laws.bootstrap import resample_weights


@pytest.fixture(scope="module")
def chinchilla_boot():
    p = chinchilla()
    return p, bootstrap_chinchilla(p.n, p.d, p.loss, n_boot=1000, seed=0, huber_delta=1e-3)


def test_intervals_overlap_epochs_published_ones(chinchilla_boot):
    _, boot = chinchilla_boot
    ci = boot.confidence_intervals(0.95)
    for name, (lo, hi) in EPOCH_CI.items():
        ours = ci[name]
        assert ours[0] < hi and lo < ours[1], f"{name}: ours {ours} vs Epoch's {(lo, hi)}"
        assert ours[0] < getattr(boot.fit.law, name) < ours[1]
    assert boot.n_boot == 1000


def test_prediction_intervals(chinchilla_boot):
    _, boot = chinchilla_boot
    point, lo, hi = boot.predict_interval([7e10, 7e9], [1.4e12, 1.4e11])
    conf_point, conf_lo, conf_hi = boot.predict_interval([7e10, 7e9], [1.4e12, 1.4e11],
                                                         kind="confidence")  # fmt: skip
    assert np.all(lo < point) and np.all(point < hi)
    assert np.allclose(point, conf_point)
    assert np.all(hi - lo > conf_hi - conf_lo)  # a new run scatters around the mean law
    assert point[0] == pytest.approx(1.9734, abs=1e-3)
    with pytest.raises(ValueError, match="kind"):
        boot.predict_interval(1e9, 1e10, kind="credible")


def test_allocation_intervals(chinchilla_boot):
    _, boot = chinchilla_boot
    out = boot.allocation_intervals([1e22, 5.88e23])
    for name in ("n_opt", "d_opt", "loss"):
        point, lo, hi = out[name]
        assert np.all(lo <= point) and np.all(point <= hi)
    ci = boot.confidence_intervals()
    assert ci["a"][0] < 0.513 < ci["a"][1]


def test_resampling_is_over_runs_not_points():
    groups = np.array(["r1", "r1", "r1", "r2", "r2", "r3"])
    w = resample_weights(groups, 500, np.random.default_rng(0))
    assert w.shape == (500, 6)
    # all points of a run share its weight, and each replicate draws 3 runs
    assert np.all(w[:, 0] == w[:, 1]) and np.all(w[:, 1] == w[:, 2]) and np.all(w[:, 3] == w[:, 4])
    assert np.all(w[:, [0, 3, 5]].sum(axis=1) == 3)


def test_bootstrap_reuses_a_given_fit_and_is_reproducible():
    truth = ChinchillaLaw(E=2.0, A=300.0, B=900.0, alpha=0.32, beta=0.30)
    rng = np.random.default_rng(3)
    n = np.repeat(np.geomspace(1e7, 3e9, 6), 5)
    d = np.tile(np.geomspace(2e8, 2e11, 5), 6)
    loss = truth.predict(n, d) * np.exp(rng.normal(scale=0.005, size=n.size))
    fit = fit_chinchilla(n, d, loss)
    groups = np.repeat(np.arange(15), 2)
    one = bootstrap_chinchilla(n, d, loss, groups=groups, n_boot=50, seed=7, fit=fit)
    two = bootstrap_chinchilla(n, d, loss, groups=groups, n_boot=50, seed=7, fit=fit)
    assert one.fit is fit and np.array_equal(one.thetas, two.thetas)
    assert one.n_groups == 15
    with pytest.raises(ValueError, match="groups has 3 entries"):
        bootstrap_chinchilla(n, d, loss, groups=[1, 2, 3], fit=fit)
