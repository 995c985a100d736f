"""``mlflow-scaling families``: listing, paged reads, and proposing families for untagged runs."""

from __future__ import annotations

import json

import pytest
from _refit_support import RunSpec, call_cli, log_runs, new_experiment, synthetic_family
from conftest import free_port
from mlflow import MlflowClient

from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.families import DEFAULT_SCALE_PARAMS, is_scale_param
from mlflow_scaling.tracking.reading import ExperimentRef, read_families


@pytest.fixture(scope="module")
def listed(mlflow_server):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "families")
    specs = synthetic_family("alpha", sizes=(1e7, 1e8, 1e9), tokens_per_param=(10, 30))
    specs += [RunSpec("alpha", 1e8, 1e9, 3.0, status="FAILED")]
    specs += [RunSpec('o\'brien "b"', 3e7 * (i + 1), 1e9, 3.0) for i in range(3)]
    specs += [RunSpec(None, 1e8, 1e9, 3.0, name="loner")]
    ids = log_runs(client, exp_id, specs)
    return client, mlflow_server, exp_id, exp_name, ids


def test_families_lists_counts_ranges_and_fit_state(listed):
    client, uri, exp_id, exp_name, _ = listed
    out = call_cli("families", "--tracking-uri", uri, "--experiment", exp_name, "--format", "json")
    assert out.returncode == 0, out.stderr
    got = {f["family"]: f for f in json.loads(out.stdout)}
    assert set(got) == {"alpha", 'o\'brien "b"'}
    alpha = got["alpha"]
    assert (alpha["n_runs"], alpha["n_members"], alpha["n_excluded"]) == (7, 6, 1)
    assert alpha["n_sizes"] == 3
    assert alpha["params_range"] == [1e7, 1e9]
    assert alpha["tokens_range"] == [1e8, 3e10]
    assert alpha["flops_range"] == pytest.approx([6e15, 1.8e20])
    assert alpha["last_fit"] is None

    out = call_cli("refit", "--tracking-uri", uri, "--experiment", exp_name,
                  "--family", "o'brien \"b\"", "--bootstrap", "0")  # fmt: skip
    assert out.returncode == 0, out.stderr
    out = call_cli("families", "--tracking-uri", uri, "--experiment", exp_name)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if "o'brien" in x)
    assert "#1 insufficient_data, check fail" in line and "up to date" in line
    assert "never fitted" in next(x for x in out.stdout.splitlines() if "alpha" in x)


def test_paged_reading_returns_every_run(listed):
    client, _, exp_id, exp_name, ids = listed
    fams = read_families(client, [ExperimentRef(exp_id, exp_name)], page_size=2)
    alpha = next(f for f in fams if f.name == "alpha")
    assert len(alpha.members) == 6 and len(alpha.excluded) == 1
    assert {p.run_id for p in alpha.members} | {alpha.excluded[0].run_id} == set(ids[:7])


def test_suggest_and_assign(mlflow_server):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "suggest")
    specs = []
    for opt in ("adam", "sgd"):
        for i, (n_layer, n) in enumerate(((2, 1e7), (4, 3e7), (8, 1e8))):
            params = {"optimizer": opt, "lr": "0.003", "n_layer": str(n_layer),
                      "max_steps": str(1000 * (i + 1)), "seed": str(i)}  # fmt: skip
            specs.append(RunSpec(None, n, 20 * n, 3.0 - 0.1 * i, name=f"{opt}-{n_layer}",
                                 params=params))  # fmt: skip
    specs.append(RunSpec(None, 1e7, 2e8, 3.0, name="odd", params={"optimizer": "lion"}))
    specs.append(RunSpec(None, None, None, None, name="not-scaling", params={"x": "1"}))
    specs.append(RunSpec("kept", 1e7, 2e8, 3.0, name="tagged", params={"optimizer": "adam"}))
    ids = dict(zip([s.name for s in specs], log_runs(client, exp_id, specs), strict=True))

    out = call_cli("families", "--tracking-uri", mlflow_server, "--experiment", exp_name,
                  "--suggest", "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["assigned"] is None
    groups = {s["family"]: s for s in doc["suggestions"]}
    assert len(groups) == 2
    adam = next(s for s in groups.values() if s["shared_params"]["optimizer"] == "adam")
    assert sorted(adam["run_ids"]) == sorted(ids[f"adam-{k}"] for k in (2, 4, 8))
    assert adam["shared_params"] == {"optimizer": "adam", "lr": "0.003"}
    assert adam["varying_params"] == ["max_steps", "n_layer", "seed"]
    assert adam["n_sizes"] == 3 and "optimizer=adam" in adam["family"]
    left = {r["run_name"]: r["reason"] for r in doc["left_alone"]}
    assert set(left) == {"odd", "not-scaling"}
    assert "no scaling.params" in left["not-scaling"] and "only 1 run" in left["odd"]
    assert schema.TAG_FAMILY not in client.get_run(ids["adam-2"]).data.tags  # nothing written

    out = call_cli("families", "--tracking-uri", mlflow_server, "--experiment", exp_name,
                  "--assign")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "tagged 6 runs with 2 families" in out.stdout
    assert client.get_run(ids["adam-8"]).data.tags[schema.TAG_FAMILY] == adam["family"]
    assert client.get_run(ids["tagged"]).data.tags[schema.TAG_FAMILY] == "kept"

    # With n_layer no longer a scale parameter, each size is its own group of one.
    out = call_cli("families", "--tracking-uri", mlflow_server, "--experiment", exp_name,
                  "--suggest", "--scale-params", "max_steps,seed", "--format", "json")  # fmt: skip
    assert json.loads(out.stdout)["suggestions"] == []


def test_scale_param_patterns():
    assert is_scale_param("N_LAYER", DEFAULT_SCALE_PARAMS)
    assert not is_scale_param("optimizer", DEFAULT_SCALE_PARAMS)
    assert is_scale_param("model.n_layers", ["*layers"])


def test_unreachable_server_is_one_line_and_exit_2():
    uri = f"http://127.0.0.1:{free_port()}"
    out = call_cli("families", "--tracking-uri", uri)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and uri in lines[0] and lines[0].startswith("mlflow-scaling families")


def test_unknown_experiment_is_exit_2(mlflow_server):
    out = call_cli("families", "--tracking-uri", mlflow_server, "--experiment", "nope-404")
    assert out.returncode == 2 and "no experiment named 'nope-404'" in out.stderr
