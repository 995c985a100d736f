"""Hyperparameter laws: cells, edges, too-few grids, the known-truth law, and the CLI's JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.hparam_simulation import simulate_grid, true_batch, true_lr, true_penalty
from mlflow_scaling.cli import main
from mlflow_scaling.laws.hparam_cells import EDGE_HIGH, FITTED, TOO_FEW
from mlflow_scaling.laws.hparam_laws import censored_fit
from mlflow_scaling.laws.hparams import fit_hparams

CELL_KEYS = {"N", "D", "lr_opt", "lr_lo", "lr_hi", "batch_opt", "batch_lo", "batch_hi",
             "loss_opt", "band_025", "runs"}  # fmt: skip
LAW_KEYS = {"form", "coef", "exponents", "loo_error"}
PREDICTION_KEYS = {"N", "D", "lr", "lr_lo", "lr_hi", "batch_tokens", "batch_lo", "batch_hi",
                   "band_025", "loss_penalty"}  # fmt: skip


def _parabola_cell(n, d, lrs, lr_opt, *, loss_opt=3.0, h=0.06):
    """Noise-free runs of L = L*(1 + ½h·(log η/η*)²) at the given rates."""
    lrs = np.asarray(lrs, dtype=float)
    loss = loss_opt * (1 + 0.5 * h * np.log(lrs / lr_opt) ** 2)
    return np.full(lrs.size, n), np.full(lrs.size, d), lrs, loss


def _stack(*cells):
    return [np.concatenate(parts) for parts in zip(*cells, strict=True)]


def test_noise_free_cell_gives_its_vertex_and_analytic_band() -> None:
    n, d, lr, loss = _parabola_cell(1e8, 2e9, [1e-3, 2e-3, 4e-3, 8e-3], 3e-3)
    cell = fit_hparams(n, d, lr, loss, n_boot=100).cells[0]
    assert cell.lr.status == FITTED
    assert cell.lr.value == pytest.approx(3e-3, rel=1e-9)
    assert cell.loss_opt == pytest.approx(3.0, rel=1e-12)
    half = np.sqrt(2 * 0.0025 / 0.06)  # |log η/η*| at which the loss is 0.25 % above the best
    assert cell.band(0.0025)["lr"] == pytest.approx([3e-3 * np.exp(-half), 3e-3 * np.exp(half)])
    assert cell.lr.lo <= 3e-3 <= cell.lr.hi
    assert cell.batch is None and cell.to_dict()["batch_opt"] is None


def test_edge_optimum_is_named_a_bound_and_kept_out_of_the_law() -> None:
    inner = _parabola_cell(1e8, 2e9, [1e-3, 2e-3, 4e-3], 2e-3)
    edge = _parabola_cell(2e8, 4e9, [1e-3, 2e-3, 4e-3], 2e-2)  # the optimum is 5x above the grid
    fit = fit_hparams(*_stack(inner, edge), n_boot=50)
    cell = next(c for c in fit.cells if c.n == 2e8)
    assert cell.lr.status == EDGE_HIGH
    # a bound: the best run is the largest rate, so the optimum lies above its midpoint with 2e-3
    assert (cell.lr.value, cell.lr.lo, cell.lr.hi) == (4e-3, pytest.approx(np.sqrt(8e-6)), None)
    assert cell.to_dict()["band_025"] == {"lr": None, "batch": None}
    assert fit.notes == (
        "cell N=2e+08, D=4e+09: lr optimum above the grid's largest value 0.004 (a bound)",
    )
    assert fit.lr_law.law is None  # one fitted cell is not enough for any form
    assert fit.lr_law.reasons[0] == (
        "step_law: 1 cells with a fitted optimum; the step_law form needs at least 4"
    )


def test_fewer_than_three_values_are_named_and_not_fitted() -> None:
    two = _parabola_cell(1e8, 2e9, [1e-3, 4e-3], 2e-3)
    batch = np.array([1e5, 1e5])
    fit = fit_hparams(*two, batch=batch, n_boot=50)
    cell = fit.cells[0]
    assert cell.lr.status == TOO_FEW and cell.batch.status == TOO_FEW
    assert (cell.lr.lo, cell.lr.hi, cell.runs) == (None, None, 2)
    assert fit.notes == ("cell N=1e+08, D=2e+09: not fitted: 2 learning rate(s) (a fit needs 3)",)
    one_batch = _parabola_cell(1e8, 2e9, [1e-3, 2e-3, 4e-3], 2e-3)
    fit = fit_hparams(*one_batch, batch=np.full(3, 1e5), n_boot=50)
    assert (fit.cells[0].lr.status, fit.cells[0].batch.status) == (FITTED, TOO_FEW)
    assert fit.notes == ("cell N=1e+08, D=2e+09: batch: 1 value(s) in the cell (a fit needs 3)",)
    three_by_two = _stack(*[_parabola_cell(1e8, 2e9, [1e-3, 2e-3, 4e-3], 2e-3)] * 2)
    fit = fit_hparams(*three_by_two, batch=np.repeat([1e5, 2e5], 3), n_boot=50)
    assert fit.notes == (
        "cell N=1e+08, D=2e+09: not fitted: 3 learning rates and 2 batch sizes (a fit needs 3 "
        "of each)",
    )


def test_known_law_is_recovered_and_its_prediction_lands_in_the_band() -> None:
    g = simulate_grid(3)
    fit = fit_hparams(g["N"], g["D"], g["lr"], g["loss"], batch=g["batch"], n_boot=200)
    assert all(c.lr.fitted and c.batch.fitted for c in fit.cells)
    lr_law, batch_law = fit.lr_law.law, fit.batch_law.law
    assert (lr_law.form, batch_law.form) == ("step_law", "step_law")
    assert lr_law.to_dict()["exponents"] == pytest.approx({"N": -0.713, "D": 0.307}, abs=0.03)
    assert batch_law.to_dict()["exponents"] == pytest.approx({"D": 0.571}, abs=0.03)
    n, d = 3e9, 6e10  # 10x the largest simulated size
    p = fit.predict(n, d)
    assert true_penalty(n, d, p.lr, p.batch) < 0.0025
    assert p.lr_lo <= true_lr(n, d) <= p.lr_hi
    assert p.batch_lo <= true_batch(n, d) <= p.batch_hi
    assert p.band_025["lr"][0] < p.lr < p.band_025["lr"][1]
    assert p.loss_penalty["max"] == max(c["relative"] for c in p.loss_penalty["corners"])
    assert len(p.loss_penalty["corners"]) == 4


@pytest.fixture(scope="module")
def sweep_csv(tmp_path_factory) -> str:
    g = simulate_grid(5)
    path = tmp_path_factory.mktemp("hparams") / "sweep.csv"
    frame = pd.DataFrame({"N": g["N"], "D": g["D"], "peak": g["lr"], "bs": g["batch"],
                          "loss": g["loss"]})  # fmt: skip
    frame.to_csv(path, index=False)
    return str(path)


def test_cli_json_has_exactly_the_documented_keys(sweep_csv, capsys) -> None:
    target = ["--target-params", "3e9", "--target-tokens", "6e10"]
    code = main(["hparams", sweep_csv, "--lr-col", "peak", "--batch-col", "bs", *target,
                 "--format", "json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(doc) == {"cells", "laws", "predictions"}
    assert len(doc["cells"]) == 8 and all(set(c) == CELL_KEYS for c in doc["cells"])
    assert set(doc["cells"][0]["band_025"]) == {"lr", "batch"}
    assert set(doc["laws"]) == {"lr", "batch"}
    assert set(doc["laws"]["lr"]) == LAW_KEYS and set(doc["laws"]["batch"]) == LAW_KEYS
    assert [set(p) for p in doc["predictions"]] == [PREDICTION_KEYS]


def test_cli_names_bad_input(sweep_csv, capsys) -> None:
    assert main(["hparams", sweep_csv]) == 2
    err = capsys.readouterr().err
    assert f"{sweep_csv}: no column 'lr' (columns: N, D, peak, bs, loss)" in err
    assert main(["hparams", sweep_csv, "--lr-col", "peak", "--target-params", "3e9"]) == 2
    assert "--target-params and --target-tokens go together" in capsys.readouterr().err


def _law_error(seed: int, *, with_bounds: bool) -> float:
    """Log error at 10x of the η law fitted on 40 cells whose optima scatter around a known law,
    on grids whose top rate (the law's value) cuts about half of them off as edge cells."""
    rng = np.random.default_rng(seed)
    n = np.repeat([1e7, 3e7, 1e8, 3e8], 10)
    d = np.tile(np.geomspace(1e8, 1e10, 10), 4)
    law = 1.79 * n**-0.713 * d**0.307
    optimum = law * np.exp(0.3 * rng.standard_normal(n.size))
    fitted = optimum < law
    edge = ~fitted if with_bounds else np.zeros(n.size, dtype=bool)
    x, xb = (np.column_stack([np.ones(int(m.sum())), np.log(n[m]), np.log(d[m])])
              for m in (fitted, edge))  # fmt: skip
    bound = np.log(law[edge] / np.sqrt(1.5))  # midpoint with the next rate down, 1.5x below
    theta = censored_fit(x, np.log(optimum[fitted]), xb, bound, np.ones(bound.size))
    predicted = theta @ [1.0, np.log(3e9), np.log(6e10)]
    return float(predicted - np.log(1.79 * 3e9**-0.713 * 6e10**0.307))


def test_edge_cells_enter_the_law_as_bounds_and_reduce_the_selection_bias() -> None:
    dropped = np.array([_law_error(seed, with_bounds=False) for seed in range(20)])
    censored = np.array([_law_error(seed, with_bounds=True) for seed in range(20)])
    assert dropped.mean() < -0.15  # the optima left inside their grids are the low ones
    assert abs(censored.mean()) < abs(dropped.mean()) - 0.05
    assert np.sqrt(np.mean(censored**2)) < np.sqrt(np.mean(dropped**2))


def test_cli_predicts_every_target_row(sweep_csv, tmp_path, capsys) -> None:
    targets = tmp_path / "targets.csv"
    targets.write_text("N,D\n3e9,6e10\n1e9,2e10\n")
    code = main(["hparams", sweep_csv, "--lr-col", "peak", "--batch-col", "bs",
                 "--predict", str(targets), "--format", "json"])  # fmt: skip
    predictions = json.loads(capsys.readouterr().out)["predictions"]
    assert code == 0
    assert [(p["N"], p["D"]) for p in predictions] == [(3e9, 6e10), (1e9, 2e10)]
    assert all(p["lr_lo"] < p["lr"] < p["lr_hi"] for p in predictions)


def test_python_api_returns_what_the_command_prints(sweep_csv, capsys) -> None:
    from mlflow_scaling import api

    frame = pd.read_csv(sweep_csv)
    result = api.hparams(frame, lr_col="peak", batch_col="bs", targets=((3e9, 6e10),))
    target = ["--target-params", "3e9", "--target-tokens", "6e10", "--format", "json"]
    assert main(["hparams", sweep_csv, "--lr-col", "peak", "--batch-col", "bs", *target]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result.to_dict()))
