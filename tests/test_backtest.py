import pytest
from reference_data import chinchilla

from mlflow_scaling.laws import backtest_chinchilla


def test_chinchilla_backtest_small_to_large():
    p = chinchilla()
    bt = backtest_chinchilla(p.n, p.d, p.loss, split_n=1e9, n_boot=200)
    assert bt.fit.n_points == int((p.n < 1e9).sum())
    assert bt.actual.size == int((p.n >= 1e9).sum())
    assert bt.mean_abs_relative_error <= 0.015
    # calibrated 95 % prediction intervals (the extrapolation error measured inside the
    # training part) cover at least 90 % of the 122 held-out runs
    assert bt.coverage >= 0.9
    d = bt.to_dict()
    assert d["n_test"] == bt.actual.size and d["mean_abs_relative_error"] <= 0.015


def test_backtest_needs_points_on_both_sides():
    p = chinchilla()
    with pytest.raises(ValueError, match="leaves"):
        backtest_chinchilla(p.n, p.d, p.loss, split_n=1e13, n_boot=0)
