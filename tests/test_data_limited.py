"""The data_limited phase and the epochs_worth_training criterion (laws/data_limited.py)."""

import dataclasses
import math

import numpy as np
import pytest
from _repeats_support import limited_runs, repeated_runs

from mlflow_scaling.laws.check import scaling_check
from mlflow_scaling.laws.data_constrained_fit import fit_data_constrained
from mlflow_scaling.laws.data_limited import (
    DATA_LIMITED,
    data_limited,
    epochs_criterion,
    with_data_limited,
)


def _arrays(df):
    return tuple(df[k].to_numpy(dtype=float) for k in ("N", "D", "U", "loss"))


@pytest.fixture(scope="module")
def limited():
    """The data-limited family, its scaling check (a plateau) and its data-constrained law."""
    n, d, u, loss = _arrays(limited_runs())
    check = scaling_check(n, d, loss, target_params=3e9, n_boot=0)
    return check, fit_data_constrained(n, d, u, loss), (n, d, u, loss, 6 * n * d)


def test_a_plateau_that_repetition_explains_is_data_limited(limited):
    check, fit, runs = limited
    assert check.phase.phase == "plateau"
    verdict = data_limited(check, fit, *runs)
    assert verdict.data_limited is True
    assert (verdict.plateau_runs, verdict.repeated_runs, verdict.epochs) == (2, 2, (32.0, 64.0))
    assert verdict.effective_share <= 0.5
    assert verdict.constrained_misfit <= 0.5 * verdict.fresh_misfit
    assert verdict.reason.startswith("the plateau is explained by repeated data: R*_D = ")
    assert "(32–64 epochs)" in verdict.reason

    changed = with_data_limited(check, verdict)
    assert changed.phase.phase == DATA_LIMITED and check.phase.phase == "plateau"
    assert changed.phase.reason.endswith(f"(plateau: {check.phase.reason})")
    (phase,) = [c for c in changed.criteria if c.name == "phase"]
    assert (phase.value, phase.passed, phase.detail) == (DATA_LIMITED, False, changed.phase.reason)
    assert changed.verdict == check.verdict == "fail"


def test_a_plateau_repetition_does_not_explain_stays_a_plateau(limited):
    check, fit, runs = limited
    nearly_fresh = dataclasses.replace(fit, law=dataclasses.replace(fit.law, r_star_d=1e3))
    verdict = data_limited(check, nearly_fresh, *runs)
    assert verdict.data_limited is False and verdict.reason.endswith("(D'/D above 0.5)")
    assert with_data_limited(check, verdict) is check
    # Repeats worth almost nothing (R*_D = 0.05): most tokens discounted, but the runs miss.
    wrong = dataclasses.replace(fit, law=dataclasses.replace(fit.law, r_star_d=0.05))
    verdict = data_limited(check, wrong, *runs)
    assert verdict.data_limited is False and verdict.reason.endswith("(not under 0.5 of it)")
    assert verdict.constrained_misfit > 0.5 * verdict.fresh_misfit


def test_only_a_plateau_with_identified_repetition_terms_can_be_data_limited(limited):
    check, fit, (n, d, u, loss, c) = limited
    single_epoch = fit_data_constrained(n, d, d, loss)  # U = D: no run repeats
    verdict = data_limited(check, single_epoch, n, d, d, loss, c)
    assert verdict.data_limited is False and verdict.reason.startswith("the repetition terms")
    n2, d2, _, loss2 = _arrays(repeated_runs())
    scaling = scaling_check(n2, d2, loss2, target_params=3e9, n_boot=0)
    assert data_limited(scaling, fit, n, d, u, loss, c).reason == (
        "the frontier is scaling, not a plateau"
    )


def test_the_epochs_criterion_compares_the_target_with_the_ten_percent_count(limited):
    _, fit, _ = limited
    worth = fit.epochs_worth_tenth
    assert worth == pytest.approx(1 + fit.law.r_star_d * math.log(10))
    few = {"N": 3e9, "D": 2e9, "unique_tokens": 1e8, "epochs": 20.0}
    ok = epochs_criterion(few, fit)
    assert (ok.name, ok.value, ok.threshold, ok.passed) == ("epochs_worth_training", 20.0,
                                                           worth, True)  # fmt: skip
    many = {**few, "D": 1e11, "epochs": 1000.0}
    bad = epochs_criterion(many, fit)
    assert (bad.value, bad.passed) == (1000.0, False)
    assert bad.detail.endswith("the fresh-data plan cannot be trained on this corpus")
    assert "1e+03 epochs of the family's U = 1e+08 unique tokens" in bad.detail
    assert epochs_criterion(None, fit).passed is None
    n, d, _, loss = (np.asarray(v) for v in _arrays(limited_runs()))
    unidentified = fit_data_constrained(n, d, d, loss)
    assert epochs_criterion(many, unidentified).passed is None
