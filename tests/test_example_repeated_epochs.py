"""examples/repeated_epochs.py on a tiny grid: the runs carry U and epochs, the refit's section."""

import sys
from pathlib import Path

from _refit_support import new_experiment
from mlflow import MlflowClient

from mlflow_scaling.tracking import schema

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import repeated_epochs  # noqa: E402

SIZES = ((1, 16), (1, 32))
EPOCHS = (1, 2, 4)
UNIQUE_BYTES = 2**11
"""32 windows of 64 bytes: 4 optimizer steps per epoch."""


def test_the_example_logs_unique_tokens_reuses_runs_and_prints_the_section(mlflow_server):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "epochs-example")
    grid = {"sizes": SIZES, "epochs": EPOCHS, "unique_bytes": UNIQUE_BYTES}
    lines: list[str] = []
    losses = repeated_epochs.train_grid(mlflow_server, exp_name, "rep-ex", echo=lines.append,
                                        **grid)  # fmt: skip
    assert lines[0] == ("rep-ex: 6 runs (2 sizes × epochs [1, 2, 4]) on U = 2048 unique byte "
                        "tokens; 0 reused")  # fmt: skip
    assert len(losses) == 6 and all(2.0 < v < 6.0 for v in losses.values())
    runs = client.search_runs([exp_id], schema.family_filter("rep-ex"))
    by_key = {r.data.tags[repeated_epochs.TAG_SHAPE]: r.data.metrics for r in runs}
    assert set(by_key) == set(losses)
    for size in SIZES:
        for e in EPOCHS:
            m = by_key[repeated_epochs.shape_key(size, e, UNIQUE_BYTES)]
            assert m[schema.METRIC_UNIQUE_TOKENS] == 2048
            assert m[schema.METRIC_TOKENS] == 2048 * e and m[schema.METRIC_EPOCHS] == e

    again: list[str] = []
    assert repeated_epochs.train_grid(mlflow_server, exp_name, "rep-ex", echo=again.append,
                                      **grid) == dict.fromkeys(losses)  # fmt: skip
    assert again == [lines[0].replace("0 reused", "6 reused")]

    printed: list[str] = []
    doc = repeated_epochs.refit(mlflow_server, exp_name, "rep-ex", n_boot=0)
    section = repeated_epochs.describe(doc, echo=printed.append)
    assert doc["status"] == "fitted" and section == doc["data_constrained"]
    assert section["unique_tokens"] == 2048 and section["n_points"] == 6
    assert printed[0].startswith(f"\nrefit: fitted; phase {doc['phase']}: ")
    assert section["identified"] is True  # runs of 2 and 4 epochs repeat their data
    assert printed[1].startswith(f"R*_D = {section['params']['r_star_d']:.3g}, R*_N = ")
    alone = section["prior"]["without_prior"]
    prior_line = ("without the prior (R*_D = 15.4, R*_N = 5.3, sigma 0.25 in log) "
                  f"the runs alone give R*_D = {alone['r_star_d']:.3g}, ")  # fmt: skip
    assert printed[2].startswith(prior_line)
    assert printed[4] == (f"data-limited: {section['phase']['data_limited']} "
                          f"({section['phase']['reason']})")  # fmt: skip
    assert any(line.startswith("  under the data budget (U = 2048 unique tokens")
               for line in printed)  # fmt: skip
