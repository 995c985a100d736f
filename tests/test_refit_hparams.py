"""Learning-rate and batch sweeps through the refit, the family page and ``plan`` (issue 24).

One experiment on the session's live server, one refit of all its families:

* ``sweep``: 8 cells (4 sizes x 2 token budgets), each a 3 x 3 grid of peak learning rates and
  batches a factor 2 apart around a known optimum, η_opt = 0.5·N^-0.3 and B_opt = 20·D^0.5
  tokens; the loss is the Chinchilla law at the optimum times a quadratic bowl in (log η, log B)
  (relative curvature [[0.06, 0.01], [0.01, 0.03]]) and 0.01 % noise. Runs log
  ``scaling.lr_peak`` and ``scaling.batch_tokens`` as the callback does.
* ``keys``: the same runs, with the learning rate in a param ``lr`` and the batch in a param
  ``batch_size`` in sequences of 1,024 tokens, named by the tags ``scaling.lr_key``,
  ``scaling.batch_key`` and ``scaling.batch_unit``.
* ``flat``: a family without a sweep (one learning rate and batch for every run).
* ``bad``: runs whose tags or values are malformed.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from _refit_support import call_cli, fit_json, fit_runs, new_experiment, read_artifact, true_loss
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from mlflow_scaling.rendering import render
from mlflow_scaling.report.hparam_figures import _spread, hparams_figure
from mlflow_scaling.server.data import ClientSource, family_detail
from mlflow_scaling.server.hparam_table import hparam_view
from mlflow_scaling.server.pages import Links, render_family
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.published import read_published_artifact
from mlflow_scaling.tracking.reading import ExperimentRef
from mlflow_scaling.tracking.run_values import run_hparams

SIZES = (2e7, 6e7, 2e8, 6e8)
TOKENS_PER_PARAM = (10, 40)
CURVATURE = np.array([[0.06, 0.01], [0.01, 0.03]])
SEQ_LEN = 1024


def lr_opt(n):
    return 0.5 * n**-0.3


def batch_opt(d):
    return 20.0 * d**0.5


def sweep_runs(seed: int = 0) -> list[dict]:
    """One dict per run: N, D, lr, batch (tokens), loss."""
    rng = np.random.default_rng(seed)
    runs = []
    for n in SIZES:
        for k in TOKENS_PER_PARAM:
            d = k * n
            for i in (-1, 0, 1):
                for j in (-1, 0, 1):
                    lr, batch = lr_opt(n) * 2.0**i * 1.1, batch_opt(d) * 2.0**j * 0.95
                    delta = np.log([lr / lr_opt(n), batch / batch_opt(d)])
                    bowl = 1 + 0.5 * delta @ CURVATURE @ delta
                    loss = float(true_loss(n, d) * bowl * (1 + 1e-4 * rng.standard_normal()))
                    runs.append({"N": n, "D": d, "lr": lr, "batch": batch, "loss": loss})
    return runs


def _log(client, exp_id, family, name, metrics, params=None, tags=None) -> str:
    run = client.create_run(exp_id, run_name=name,
                            tags={schema.TAG_FAMILY: family, **(tags or {})})  # fmt: skip
    ts = 0
    client.log_batch(run.info.run_id, metrics=[Metric(k, float(v), ts, 0) for k, v in
                                               metrics.items()],
                     params=[Param(k, str(v)) for k, v in (params or {}).items()])  # fmt: skip
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def _axes(r) -> dict:
    return {schema.METRIC_PARAMS: r["N"], schema.METRIC_TOKENS: r["D"], "val_loss": r["loss"]}


def _families(client, exp_id) -> dict[str, list]:
    jobs = []
    for i, r in enumerate(sweep_runs()):
        jobs.append(
            (
                "sweep",
                f"sweep-{i}",
                {
                    **_axes(r),
                    schema.METRIC_LR_PEAK: r["lr"],
                    schema.METRIC_BATCH_TOKENS: r["batch"],
                },
                {},
                {},
            )
        )
        jobs.append(("keys", f"keys-{i}", _axes(r), {"lr": r["lr"],
                     "batch_size": r["batch"] / SEQ_LEN},
                     {schema.TAG_LR_KEY: "lr", schema.TAG_BATCH_KEY: "batch_size",
                      schema.TAG_BATCH_UNIT: f"sequences:{SEQ_LEN}"}))  # fmt: skip
    for n in (2e7, 6e7, 2e8, 6e8, 2e9):
        for k in (5, 20, 80):
            r = {"N": n, "D": k * n, "loss": float(true_loss(n, k * n))}
            jobs.append(("flat", f"flat-{n:.0e}-{k}", {**_axes(r), schema.METRIC_LR_PEAK: 3e-4,
                         schema.METRIC_BATCH_TOKENS: 5e5}, {}, {}))  # fmt: skip
    good = {"N": 1e8, "D": 2e9, "loss": 3.0}
    jobs += [
        ("bad", "not-a-number", _axes(good), {"lr": "fast"}, {schema.TAG_LR_KEY: "lr"}),
        ("bad", "names-nothing", _axes(good), {}, {schema.TAG_LR_KEY: "lr"}),
        ("bad", "bad-unit", _axes(good), {"bs": 8},
         {schema.TAG_BATCH_KEY: "bs", schema.TAG_BATCH_UNIT: "sequences:x"}),
        ("bad", "negative", {**_axes(good), schema.METRIC_LR_PEAK: -1e-3}, {}, {}),
    ]  # fmt: skip
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda job: _log(client, exp_id, *job), jobs))


@pytest.fixture(scope="module")
def site(mlflow_server, tmp_path_factory):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "hparams")
    _families(client, exp_id)
    out = call_cli("refit", "--tracking-uri", mlflow_server, "--experiment", exp_name,
                   "--bootstrap", 20, "--no-curves")  # fmt: skip
    assert out.returncode in (0, 1), out.stdout + out.stderr  # "bad" cannot be fitted
    runs = {name: fit_runs(client, exp_id, name)[0] for name in ("sweep", "keys", "flat", "bad")}
    docs = {name: fit_json(client, run.info.run_id) for name, run in runs.items()}
    return {"client": client, "uri": mlflow_server, "exp_id": exp_id, "exp_name": exp_name,
            "runs": runs, "docs": docs}  # fmt: skip


def test_sweep_gives_cells_laws_and_a_prediction(site):
    doc = site["docs"]["sweep"]
    h = doc["hparams"]
    assert len(h["cells"]) == 8 and h["axes"] == ["lr", "batch"] and h["swept_runs"] == 72
    assert {(c["lr_status"], c["batch_status"]) for c in h["cells"]} == {("fitted", "fitted")}
    assert all(c["runs"] == 9 for c in h["cells"])
    lr_law, batch_law = h["laws"]["lr"], h["laws"]["batch"]
    assert lr_law["form"] == "step_law" and batch_law["form"] == "step_law"
    assert lr_law["exponents"]["N"] == pytest.approx(-0.3, abs=0.01)
    assert lr_law["exponents"]["D"] == pytest.approx(0.0, abs=0.01)
    assert batch_law["exponents"]["D"] == pytest.approx(0.5, abs=0.01)
    (pred,) = h["predictions"]
    target = doc["check"]["prediction"]
    assert (
        (pred["N"], pred["D"]) == (target["N"], target["D"]) == (h["target"]["N"], h["target"]["D"])
    )
    assert h["target"]["source"].startswith("the scaling check's target (compute-optimal")
    assert pred["lr"] == pytest.approx(lr_opt(pred["N"]), rel=0.03)
    assert pred["batch_tokens"] == pytest.approx(batch_opt(pred["D"]), rel=0.03)
    assert pred["lr_lo"] < pred["lr"] < pred["lr_hi"]
    assert pred["band_025"]["lr"][0] < pred["lr"] < pred["band_025"]["lr"][1]
    # The Chinchilla law sees each cell's best run: the 8 centres of the grids.
    in_law = [r for r in h["runs"] if r["in_law"]]
    assert len(in_law) == 8 and len(h["runs"]) == 72 and doc["n_members"] == 72
    assert all(r["lr"] == pytest.approx(lr_opt(r["N"]) * 1.1) for r in in_law)
    assert doc["approach3"]["params"]["alpha"] == pytest.approx(0.347, abs=0.03)
    png = read_artifact(site["client"], site["runs"]["sweep"].info.run_id,
                        schema.ARTIFACT_HPARAMS_PNG)  # fmt: skip
    assert png[:4] == b"\x89PNG"
    metrics = site["client"].get_run(site["runs"]["sweep"].info.run_id).data.metrics
    assert metrics[schema.METRIC_FIT_LR] == pred["lr"]
    assert metrics[schema.METRIC_FIT_BATCH] == pred["batch_tokens"]


def test_runs_named_by_tags_are_read_the_same(site):
    sweep, keys = site["docs"]["sweep"]["hparams"], site["docs"]["keys"]["hparams"]

    # The same optima and laws; the cells' bootstrap intervals differ only because the runs
    # come in another order (run ids), which reorders the bootstrap's draws.
    def optima(h):
        return [[c[k] for k in ("N", "D", "lr_opt", "batch_opt", "loss_opt", "runs")]
                + c["band_025"]["lr"] + c["band_025"]["batch"] for c in h["cells"]]  # fmt: skip

    assert np.array(optima(keys)) == pytest.approx(np.array(optima(sweep)), rel=1e-9)
    assert [c["lr_status"] + c["batch_status"] for c in keys["cells"]] == [
        c["lr_status"] + c["batch_status"] for c in sweep["cells"]
    ]
    for key in ("lr", "batch"):
        law, same = keys["laws"][key], sweep["laws"][key]
        assert law["form"] == same["form"] and law["coef"] == pytest.approx(same["coef"])
        assert law["exponents"] == pytest.approx(same["exponents"], abs=1e-9)
    assert keys["predictions"][0]["lr"] == pytest.approx(sweep["predictions"][0]["lr"])

    def rows(h):
        return sorted((r["N"], r["D"], r["lr"], r["batch_tokens"], r["loss"], r["in_law"])
                      for r in h["runs"])  # fmt: skip

    assert rows(keys) == rows(sweep)


def test_family_without_a_sweep_has_no_section(site):
    doc = site["docs"]["flat"]
    assert "hparams" not in doc and doc["status"] == "fitted" and doc["n_members"] == 15
    run = site["client"].get_run(site["runs"]["flat"].info.run_id)
    assert schema.METRIC_FIT_LR not in run.data.metrics
    assert read_published_artifact(site["client"], run, schema.ARTIFACT_HPARAMS_PNG) is None
    source = ClientSource(site["client"])
    page = render_family(family_detail(source, _exp(site), "flat"), Links())
    assert "Learning rate and batch" not in page


def test_malformed_tags_and_values_are_named(site):
    reasons = {e["run_name"]: e["reason"] for e in site["docs"]["bad"]["excluded"]}
    assert reasons == {
        "not-a-number": "tag scaling.lr_key = 'lr': param 'lr' = 'fast' is not a number",
        "names-nothing": "tag scaling.lr_key = 'lr', but the run has no param or metric 'lr'",
        "bad-unit": "tag scaling.batch_unit = 'sequences:x': expected 'tokens' or "
        "'sequences:<seq_len>' with a positive whole seq_len",
        "negative": "metric scaling.lr_peak = -0.001 (must be positive)",
    }


def _exp(site) -> ExperimentRef:
    return ExperimentRef(site["exp_id"], site["exp_name"])


def test_family_page_shows_the_section(site):
    source = ClientSource(site["client"])
    page = render_family(family_detail(source, _exp(site), "sweep"), Links())
    pred = site["docs"]["sweep"]["hparams"]["predictions"][0]
    assert "<h2>Learning rate and batch</h2>" in page
    assert page.count('<tr class="hparam-cell">') == 8
    assert page.count('<td data-field="form">step_law</td>') == 2
    assert f"{pred['lr']:.3g}" in page and f"{pred['batch_tokens']:.3g}" in page
    assert "hparams.png" in page and "Sweep runs not in the Chinchilla law (64)" in page


def _plan(site, family, *args):
    return call_cli("plan", "--tracking-uri", site["uri"], "--experiment", site["exp_name"],
                    "--family", family, "--ignore-check", *args)  # fmt: skip


def test_plan_uses_the_family_batch_and_prints_the_learning_rate(site):
    pred = site["docs"]["sweep"]["hparams"]["predictions"][0]
    result = _plan(site, "sweep", "--format", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["global_batch_tokens"] == pred["batch_tokens"]
    assert plan["global_batch_sequences"] == round(pred["batch_tokens"] / 2048)
    assert plan["optimizer_steps"] == pytest.approx(pred["D"] / pred["batch_tokens"])
    assert plan["global_batch_source"].startswith("the family's batch law (step_law)")
    assert plan["hparams"]["lr"] == pred["lr"]
    assert plan["hparams"]["lr_band"] == pred["band_025"]["lr"]
    text = _plan(site, "sweep").stdout
    assert f"global batch: {pred['batch_tokens']:.4g} tokens" in text
    band = pred["band_025"]["lr"]
    assert f"peak learning rate: {pred['lr']:.3g} (95 % interval " in text
    assert f"0.25 % band {band[0]:.3g}..{band[1]:.3g})" in text
    given = json.loads(_plan(site, "sweep", "--global-batch-tokens", 1048576,
                             "--format", "json").stdout)  # fmt: skip
    assert given["global_batch_tokens"] == 1048576
    assert given["global_batch_source"] == "given (--global-batch-tokens)"


def test_plan_without_a_sweep_assumes_the_batch(site):
    plan = json.loads(_plan(site, "flat", "--format", "json").stdout)
    assert plan["global_batch_tokens"] == 4 * 2**20 and "hparams" not in plan
    assert plan["global_batch_source"] == (
        "assumed: the default 4194304 tokens (the family has no learning-rate/batch sweep)"
    )
    text = _plan(site, "flat").stdout
    assert "peak learning rate" not in text and "global batch:" not in text


# --- without a server ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metrics", "params", "tags", "expected"),
    [
        ({schema.METRIC_LR_PEAK: 1e-3, schema.METRIC_BATCH_TOKENS: 4096.0}, {}, {},
         (1e-3, 4096.0, ())),
        ({}, {"lr": "2e-3", "bs": "16"},
         {schema.TAG_LR_KEY: "lr", schema.TAG_BATCH_KEY: "bs",
          schema.TAG_BATCH_UNIT: "sequences:512"}, (2e-3, 8192.0, ())),
        ({"my_lr": 3e-3}, {"bs": "1000"}, {schema.TAG_LR_KEY: "my_lr", schema.TAG_BATCH_KEY: "bs"},
         (3e-3, 1000.0, ())),
        ({}, {}, {}, (None, None, ())),
        ({}, {"bs": "0"}, {schema.TAG_BATCH_KEY: "bs"},
         (None, None, ("tag scaling.batch_key = 'bs': param 'bs' = 0 (must be positive)",))),
    ],
)  # fmt: skip
def test_run_hparams(metrics, params, tags, expected):
    got = run_hparams(metrics, params, tags)
    assert (got.lr, got.batch, got.problems) == expected


def test_hostile_text_is_escaped_in_the_section_and_figure():
    text = "<script>x()</script>$\\alpha$"
    cell = {
        "N": 1e8,
        "D": 2e9,
        "runs": 9,
        "lr_opt": 1e-3,
        "lr_lo": 8e-4,
        "lr_hi": None,
        "lr_status": "edge_high",
        "lr_grid": [5e-4, 1e-3],
        "batch_opt": None,
        "batch_status": None,
        "loss_opt": 3.0,
        "band_025": {"lr": None, "batch": None},
    }
    h = {"law_runs": text, "swept_runs": 9, "notes": [text], "cells": [cell], "axes": ["lr"],
         "laws": {"lr": {"form": text, "coef": 1.0, "exponents": {"N": -0.3},
                         "loo_error": 0.1}}, "law_choice": {"lr": text},
         "target": {"N": 1e9, "D": 2e10, "source": text},
         "predictions": [{"N": 1e9, "D": 2e10, "lr": 5e-4, "lr_lo": 4e-4, "lr_hi": 6e-4,
                          "band_025": {"lr": [4.5e-4, 5.5e-4]}, "loss_penalty": {"max": 0.001}}],
         "runs": [{"run_id": text, "run_name": text, "N": 1e8, "D": 2e9, "lr": 1e-3,
                   "batch_tokens": None, "loss": 3.0, "cell": 0, "in_law": False}]}  # fmt: skip
    html = render("_hparams.html", h=hparam_view({"hparams": h}), figure=None)
    assert "<script>" not in html and html.count("&lt;script&gt;") == 6
    assert "&gt; 0.0008 (bound: best run on the grid&#39;s largest value)" in html
    fig = hparams_figure({"family": text, "hparams": h})
    fig.savefig(io.BytesIO(), format="png")  # the $ must not break mathtext


def test_heat_map_ticks_keep_grid_values_far_enough_apart_to_read() -> None:
    """A cell's rates a factor √2 apart on a one-decade axis: every other one is labelled."""
    grid = [4e-3 * 2 ** (k / 2) for k in range(-1, 5)]  # 2.83e-3 .. 1.6e-2
    assert _spread(grid + [grid[3] * (1 + 1e-15)], (2e-3, 2e-2)) == [grid[0], grid[2], grid[4]]
