"""``refit --shard I/N``: N passes, one per shard, together write every family exactly once."""

from __future__ import annotations

import argparse
import json
from collections import Counter

import pytest
from _refit_support import call_cli, fit_runs, log_runs, new_experiment, synthetic_family
from mlflow import MlflowClient

from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.refit import STATUS_SKIPPED, refit_pass
from mlflow_scaling.jobs.shards import Shard, parse_shard, shard_of

SHARDS = 3
SETTINGS = RefitSettings(n_boot=0, curves=False)


def test_every_family_falls_in_exactly_one_shard():
    families = [(str(e), f"family-{i}") for e in range(5) for i in range(400)]
    for count in (1, 2, 3, 8):
        owners = [[i for i in range(count) if Shard(i, count).owns(*f)] for f in families]
        assert all(len(o) == 1 for o in owners)
        sizes = Counter(o[0] for o in owners)
        # A hash, not a round robin: no shard is starved (2,000 families, expected 2000/count).
        assert min(sizes.values()) > 0.8 * len(families) / count
    # Stable across processes, machines and versions (SHA-256, not Python's salted hash()):
    # these values must never change, or pods of mixed versions would split families wrongly.
    assert shard_of("1", "gpt-small", 4) == 1
    assert shard_of("2", "gpt-small", 4) == 1
    assert shard_of("1", "gpt-large", 1000) == 16


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1", "a/b", "0/0", "1/2/3"])
def test_bad_shard_is_one_clear_message(text):
    with pytest.raises(argparse.ArgumentTypeError, match="is not a shard I/N"):
        parse_shard(text)


def test_n_shards_fit_every_family_exactly_once(mlflow_server):
    client = MlflowClient(mlflow_server)
    experiments = [new_experiment(client, "shards") for _ in range(2)]
    names = {}
    for k, (exp_id, exp_name) in enumerate(experiments):
        for i in range(4):
            name = f"fam-{k}-{i}"
            log_runs(client, exp_id, synthetic_family(name, sizes=(1e7, 1e8, 1e9),
                                                      tokens_per_param=(10, 40)))  # fmt: skip
            names[(exp_id, name)] = exp_name
    exp_names = [name for _, name in experiments]
    fitted = []
    for index in range(SHARDS):
        outcomes = refit_pass(
            client, experiments=exp_names, settings=SETTINGS, shard=Shard(index, SHARDS)
        )
        # 8 families hashed over 3 shards by (experiment id, name): a shard may own none
        assert all(o.status == "fitted" for o in outcomes), [o.to_dict() for o in outcomes]
        for o in outcomes:
            assert shard_of(o.experiment_id, o.family, SHARDS) == index
        fitted += [(o.experiment_id, o.family) for o in outcomes]
    assert sorted(fitted) == sorted(names)  # every family once, none twice
    for exp_id, _ in experiments:
        runs = fit_runs(client, exp_id)
        assert len(runs) == 4 and len({r.data.tags["scaling.family"] for r in runs}) == 4
    # The CLI takes the same option; with everything fitted, shard 1/3 skips its families.
    out = call_cli("refit", "--tracking-uri", mlflow_server, "--experiment", exp_names[0],
                   "--experiment", exp_names[1], "--bootstrap", "0", "--no-curves",
                   "--shard", f"1/{SHARDS}", "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    in_shard_1 = sorted(f for f in names if shard_of(*f, SHARDS) == 1)
    seen = sorted((f["experiment_id"], f["family"]) for f in report["families"])
    assert seen == in_shard_1
    assert all(f["status"] == STATUS_SKIPPED for f in report["families"])
    bad = call_cli("refit", "--tracking-uri", mlflow_server, "--shard", "4/3")
    assert bad.returncode == 2 and "'4/3' is not a shard I/N" in bad.stderr
