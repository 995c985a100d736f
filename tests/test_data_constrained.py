"""The data-constrained law (Muennighoff et al. 2023) on families simulated from it."""

import dataclasses
import math

import numpy as np
import pytest

from mlflow_scaling.laws import fit_chinchilla
from mlflow_scaling.laws.allocation import compute_optimal
from mlflow_scaling.laws.data_constrained import (
    DataConstrainedLaw,
    allocate_with_unique_tokens,
    epochs_worth_fraction,
)
from mlflow_scaling.laws.data_constrained_fit import fit_data_constrained

TRUTH = DataConstrainedLaw(
    E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, r_star_d=15.0, r_star_n=5.0
)
FAR_FROM_PRIOR = dataclasses.replace(TRUTH, r_star_d=4.0, r_star_n=40.0)
"""Constants 1.3 and 2.0 log units (5σ and 8σ) from the fit's prior at 15.4 and 5.3."""


def simulated_family(noise=0.003, seed=0, truth=TRUTH):
    """6 sizes × 3 corpora × 7 epoch counts, log-normal noise on the loss."""
    rng = np.random.default_rng(seed)
    sizes, corpora = np.geomspace(1e7, 2e9, 6), np.array([1e8, 1e9, 1e10])
    epochs = np.array([1, 2, 4, 8, 16, 48, 128], dtype=float)
    n, u, ep = (g.ravel() for g in np.meshgrid(sizes, corpora, epochs, indexing="ij"))
    d = u * ep
    loss = truth.predict(n, d, u) * np.exp(rng.normal(0.0, noise, n.size))
    return n, d, u, loss


@pytest.fixture(scope="module")
def family_fit():
    n, d, u, loss = simulated_family()
    return fit_data_constrained(n, d, u, loss, n_boot=40, seed=1)


def test_recovers_constants_far_from_the_prior_within_their_intervals():
    n, d, u, loss = simulated_family(truth=FAR_FROM_PRIOR)
    fit = fit_data_constrained(n, d, u, loss, n_boot=20, seed=2)
    assert not fit.leans_on_prior  # the runs place R*_D: with or without the prior, about 4
    assert fit.without_prior[0] == pytest.approx(4.0, rel=0.1)
    for name, true in (("r_star_d", 4.0), ("r_star_n", 40.0)):
        lo, hi = fit.intervals[name]
        assert lo <= true <= hi, f"{name}: {true} outside ({lo}, {hi})"
        assert getattr(fit.law, name) == pytest.approx(true, rel=0.15)


def test_recovers_the_repetition_constants_within_their_intervals(family_fit):
    fit = family_fit
    assert fit.identified and fit.r_star_n_identified
    assert fit.n_repeated == 6 * 3 * 6
    for name, true in (("r_star_d", 15.0), ("r_star_n", 5.0)):
        lo, hi = fit.intervals[name]
        assert lo <= true <= hi, f"{name}: {true} outside ({lo}, {hi})"
        assert getattr(fit.law, name) == pytest.approx(true, rel=0.3)
    assert fit.law.E == pytest.approx(1.69, rel=0.05)
    assert fit.law.alpha == pytest.approx(0.34, rel=0.2)
    assert fit.law.beta == pytest.approx(0.28, rel=0.2)
    lo, hi = fit.intervals["epochs_worth_tenth"]
    assert lo <= 1 + 15.0 * math.log(10) <= hi
    out = fit.to_dict()
    assert out["identified"] is True and out["note"] is None and out["at_bound"] == []
    assert out["epochs_worth_tenth"] == pytest.approx(1 + fit.law.r_star_d * math.log(10))
    n, d, u, _ = simulated_family()
    assert np.allclose(fit.predict(n, d, u), fit.law.predict(n, d, u))


def test_single_epoch_family_is_the_chinchilla_fit_and_says_so():
    n, d, u, loss = simulated_family()
    one = d == u
    fit = fit_data_constrained(n[one], d[one], u[one], loss[one], n_boot=10)
    chin = fit_chinchilla(n[one], d[one], loss[one])
    assert not fit.identified and not fit.r_star_n_identified
    assert fit.law.r_star_d == math.inf and fit.law.r_star_n == math.inf
    assert fit.chinchilla.law == chin.law
    assert fit.law.base == chin.law
    assert fit.intervals == {} and fit.n_boot == 0 and fit.at_bound == ()
    out = fit.to_dict()
    assert "not identified" in out["note"] and out["epochs_worth_tenth"] is None
    assert out["params"] == chin.law.to_dict()
    assert np.array_equal(fit.predict(n, d, u), chin.law.predict(n, d))


def test_repeats_as_good_as_fresh_put_r_star_d_at_its_bound():
    fresh = dataclasses.replace(TRUTH, r_star_d=math.inf, r_star_n=math.inf)
    n, d, u, loss = simulated_family(truth=fresh)
    fit = fit_data_constrained(n, d, u, loss, prior_sigma=None)
    assert fit.identified and "r_star_d" in fit.at_bound
    assert fit.law.r_star_d == pytest.approx(1e8, rel=1e-6)
    assert np.allclose(fit.predict(n, d, u), fresh.predict(n, d, u), rtol=0.01)
    assert fit.to_dict()["prior"] is None


def test_the_prior_gives_way_to_runs_that_show_no_discount():
    # 128 epochs as good as fresh: the prior at R*_D = 15.4 (σ = 0.25) is overruled by a factor
    # of about 25, so the 10 %-epoch count is near 900; the prior's cost is 2.5 % at 128 epochs
    fresh = dataclasses.replace(TRUTH, r_star_d=math.inf, r_star_n=math.inf)
    n, d, u, loss = simulated_family(truth=fresh)
    fit = fit_data_constrained(n, d, u, loss)
    assert fit.law.r_star_d > 300 and fit.epochs_worth_tenth > 600 and fit.at_bound == ()
    assert np.allclose(fit.predict(n, d, u), fresh.predict(n, d, u), rtol=0.03)
    # the runs alone put R*_D at its bound: the value reported leans on the prior, and says so
    assert fit.without_prior[0] == pytest.approx(1e8, rel=1e-6) and fit.leans_on_prior
    assert fit.to_dict()["prior"] == {
        "r_star_d": 15.4, "r_star_n": 5.3, "sigma_log": 0.25, "source": "Muennighoff et al. 2023",
        "without_prior": {"r_star_d": fit.without_prior[0], "r_star_n": fit.without_prior[1]},
        "leans_on_prior": True,
    }  # fmt: skip
    with pytest.raises(ValueError, match="prior_sigma"):
        fit_data_constrained(n, d, u, loss, prior_sigma=0.0)


def test_one_more_epoch_is_worth_a_tenth_after_one_plus_r_star_ln10_epochs():
    assert epochs_worth_fraction(15.4) == pytest.approx(1 + 15.4 * math.log(10))
    assert TRUTH.epochs_worth_tenth() == pytest.approx(35.538776, rel=1e-6)
    # the derivative of D' in D at that point is exactly a tenth of a fresh token's worth
    u, ep = 1e9, TRUTH.epochs_worth_tenth()
    h = 1e-6 * u
    d_prime = [TRUTH.effective(1e6, u * ep + s, u)[1] for s in (-h, h)]
    assert (d_prime[1] - d_prime[0]) / (2 * h) == pytest.approx(0.1, rel=1e-5)
    assert float(epochs_worth_fraction(math.inf)) == math.inf
    with pytest.raises(ValueError, match="fraction"):
        epochs_worth_fraction(15.0, fraction=1.5)


def test_effective_quantities():
    # one epoch: D' = D; a model no larger than N_U: N' = N
    n_u = float(TRUTH.params_for_unique(1e10))
    n_prime, d_prime = TRUTH.effective([n_u / 2, 4 * n_u], [1e10, 1e12], 1e10)
    assert n_prime[0] == pytest.approx(n_u / 2) and d_prime[0] == pytest.approx(1e10)
    assert n_prime[1] == pytest.approx(n_u * (1 + 5.0 * -math.expm1(-3.0 / 5.0)))
    assert d_prime[1] == pytest.approx(1e10 * (1 + 15.0 * -math.expm1(-99.0 / 15.0)))
    # infinite R* discount nothing: the law is Chinchilla's, and so is its data-budget allocation
    fresh = dataclasses.replace(TRUTH, r_star_d=math.inf, r_star_n=math.inf)
    n, d = np.array([1e7, 1e9, 3e9]), np.array([1e11, 5e12, 1e13])
    assert np.allclose(fresh.predict(n, d, 1e10), TRUTH.base.predict(n, d), rtol=1e-12)
    assert allocate_with_unique_tokens(fresh, 1e21, 1e9).loss_given_up == pytest.approx(0, abs=1e-9)
    # N_U is the size whose compute-optimal tokens are U
    alloc = compute_optimal(TRUTH.base, [6 * n_u * 1e10])
    assert alloc.n_opt[0] == pytest.approx(n_u, rel=1e-9)


def test_allocation_under_a_data_budget():
    c = 1e21
    free = compute_optimal(TRUTH.base, [c])
    huge = allocate_with_unique_tokens(TRUTH, c, 1e16)
    assert huge.n_opt == pytest.approx(free.n_opt[0], rel=1e-4)
    assert huge.loss == pytest.approx(free.loss[0], rel=1e-9)
    assert huge.loss_given_up == pytest.approx(0.0, abs=1e-9)
    assert huge.epochs < 1
    small = allocate_with_unique_tokens(TRUTH, c, 2e10)
    assert small.epochs > 1 and small.epochs > huge.epochs
    assert small.n_opt < huge.n_opt
    assert small.loss_given_up > 0
    assert small.to_dict()["loss_given_up"] == small.loss - small.unlimited_loss
    # the optimum is a minimum along the budget line
    for factor in (0.8, 1.25):
        n = small.n_opt * factor
        assert TRUTH.predict(n, c / (6 * n), 2e10) > small.loss


@pytest.mark.parametrize(
    ("u", "match"),
    [
        ([0.0, 1e9], "row 0 has unique tokens U=0.0"),
        ([1e9, float("nan")], "run 'b' has unique tokens U=nan"),
        ([-1.0, 1e9], "unique tokens must be positive"),
        ([1e9, 5e12], "run 'b' has unique tokens U=5000000000000.0; its tokens D=4e\\+12"),
    ],
)
def test_bad_unique_tokens_name_the_run(u, match):
    n, d, loss = [1e8, 2e8, 3e8, 4e8, 5e8], [2e9, 4e12, 1e10, 1e10, 1e10], [3.0, 2.9, 2.8, 2.7, 2.6]
    u = u + [1e9, 1e9, 1e9]
    runs = None if "row" in match else ["a", "b", "c", "d", "e"]
    with pytest.raises(ValueError, match=match):
        fit_data_constrained(n, d, u, loss, runs=runs)


def test_allocation_refuses_bad_budgets():
    with pytest.raises(ValueError, match="unique_tokens"):
        allocate_with_unique_tokens(TRUTH, 1e21, 0.0)
    with pytest.raises(ValueError, match="flops"):
        allocate_with_unique_tokens(TRUTH, float("nan"), 1e9)
