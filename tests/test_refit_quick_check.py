"""The quick no-change check against a live MLflow server (``jobs/changes.py``).

An experiment with two families whose runs started and ended two hours ago (older than the
watermark less its clock margin), and the first pass over it: that pass reads everything and
leaves a watermark; later passes read only what moved. Each test that changes runs gets an
experiment of its own (``quick``); the three that change nothing but the watermark's read time
share one (``settled``). So each test passes alone and in any order.
"""

from __future__ import annotations

import json
import time

import pytest
from _refit_support import RunSpec, call_cli, log_runs, new_experiment, synthetic_family
from mlflow import MlflowClient
from mlflow.entities import Metric

from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.changes import Watermark
from mlflow_scaling.jobs.refit import refit_pass
from mlflow_scaling.jobs.shards import Shard
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.fit_run import find_fit_runs
from mlflow_scaling.tracking.published import published_fit

SETTINGS = RefitSettings(n_boot=0, curves=False)
AGE_S = 2 * 3600
QUICK = "(quick check)"
READ_UNCHANGED = "unchanged since the last fit (same input and settings digests)"


def new_quick(mlflow_server: str) -> dict:
    """A new experiment with families alpha and beta, after its first pass."""
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "quick")
    specs = [*synthetic_family("alpha", sizes=(2e7, 2e8, 2e9), age_s=AGE_S),
             *synthetic_family("beta", sizes=(2e7, 2e8, 2e9), seed=1, age_s=AGE_S)]  # fmt: skip
    ids = log_runs(client, exp_id, specs)
    q = {"client": client, "exp_id": exp_id, "exp_name": exp_name, "uri": mlflow_server,
         "beta_ids": ids[9:]}  # fmt: skip
    q["before"] = int(time.time() * 1000)
    q["first_pass"] = run_pass(q)
    q["after"] = int(time.time() * 1000)
    q["first"] = watermark(q)
    return q


@pytest.fixture
def quick(mlflow_server):
    return new_quick(mlflow_server)


@pytest.fixture(scope="module")
def settled(mlflow_server):
    return new_quick(mlflow_server)


def run_pass(q, **kw) -> dict[str, tuple[str, int | None, str]]:
    outcomes = refit_pass(q["client"], experiments=[q["exp_name"]], settings=SETTINGS, **kw)
    return {o.family: (o.status, o.refit_number, o.message) for o in outcomes}


def watermark(q, key: str = schema.TAG_REFIT_WATERMARK) -> Watermark | None:
    return Watermark.from_tag(q["client"].get_experiment(q["exp_id"]).tags.get(key))


def fit_run(q, family: str):
    return find_fit_runs(q["client"], q["exp_id"], family)[0]


def test_first_pass_reads_everything_and_leaves_a_watermark(settled) -> None:
    got = settled["first_pass"]
    assert {k: v[:2] for k, v in got.items()} == {"alpha": ("fitted", 1), "beta": ("fitted", 1)}
    mark = settled["first"]
    assert mark is not None and settled["before"] <= mark.read_ms <= settled["after"]
    assert mark.full_ms == mark.read_ms  # a full check


def test_nothing_changed_skips_every_family_unread(settled) -> None:
    got = run_pass(settled)
    assert {k: v[:2] for k, v in got.items()} == {"alpha": ("skipped", 1), "beta": ("skipped", 1)}
    assert all(v[2].endswith(QUICK) for v in got.values()), got
    mark = watermark(settled)
    assert mark.read_ms > settled["first"].read_ms  # the check moved on ...
    assert mark.full_ms == settled["first"].full_ms  # ... and it was not a full one


def test_the_cli_skips_quickly_and_says_so(settled) -> None:
    res = call_cli("refit", "--tracking-uri", settled["uri"], "--experiment", settled["exp_name"],
                   "--bootstrap", 0, "--no-curves", "--format", "json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = {o["family"]: o for o in json.loads(res.stdout)["families"]}
    assert sorted(rows) == ["alpha", "beta"]
    assert all(o["status"] == "skipped" and o["message"].endswith(QUICK) for o in rows.values())
    assert rows["alpha"]["n_members"] == 9  # from the published record, members unread
    bad = call_cli("refit", "--tracking-uri", settled["uri"], "--full-check-every", "-1")
    assert bad.returncode == 2 and "'-1' must be a finite number, 0 or more" in bad.stderr
    bad = call_cli("refit", "--tracking-uri", settled["uri"], "--clock-margin", "soon")
    assert bad.returncode == 2
    assert "argument --clock-margin: interval 'soon' is not like 30s" in bad.stderr


def test_a_new_run_refits_only_its_family(quick) -> None:
    log_runs(quick["client"], quick["exp_id"], [RunSpec("alpha", 6e8, 1.2e10, 2.6)])
    got = run_pass(quick)
    assert got["alpha"][:2] == ("fitted", 2)
    assert got["beta"][:2] == ("skipped", 1) and got["beta"][2].endswith(QUICK)
    # The new run stays within the clock margin for a while: alpha is read (not refitted).
    again = run_pass(quick)
    assert again["alpha"] == ("skipped", 2, READ_UNCHANGED)
    assert again["beta"][2].endswith(QUICK)


def test_deleting_and_restoring_a_member_refits(quick) -> None:
    client, victim = quick["client"], quick["beta_ids"][4]
    client.delete_run(victim)
    got = run_pass(quick)
    assert got["beta"][:2] == ("fitted", 2)
    digest = fit_run(quick, "beta").data.tags[schema.TAG_DELETED_DIGEST]
    assert len(digest) == 64
    assert run_pass(quick)["beta"][:2] == ("skipped", 2)  # recorded: quiet again
    client.restore_run(victim)
    got = run_pass(quick)
    assert got["beta"][:2] == ("fitted", 3)
    assert fit_run(quick, "beta").data.tags[schema.TAG_DELETED_DIGEST] == ""
    checked = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(watermark(quick).read_ms / 1000))
    message = f"unchanged: no member run started, ended or was deleted since the check at {checked}"
    assert run_pass(quick)["beta"] == ("skipped", 3, f"{message} {QUICK}")


def test_an_edit_to_an_ended_run_waits_for_the_full_check(quick) -> None:
    client, edited = quick["client"], quick["beta_ids"][0]
    client.log_batch(edited, metrics=[Metric("val_loss", 9.0, int(time.time() * 1000), 5)])
    got = run_pass(quick)
    assert got["beta"][:2] == ("skipped", 1)  # what the quick check cannot see
    assert got["beta"][2].endswith(QUICK)
    got = run_pass(quick, full_check=True)
    assert got["beta"][:2] == ("fitted", 2)
    assert got["alpha"] == ("skipped", 1, READ_UNCHANGED)
    assert watermark(quick).full_ms == watermark(quick).read_ms
    client.log_batch(edited, metrics=[Metric("val_loss", 8.0, int(time.time() * 1000), 6)])
    got = run_pass(quick, full_every_ms=0)  # the last full check is older than 0 ms
    assert got["beta"][:2] == ("fitted", 3)


def test_other_settings_or_a_failed_refit_read_the_family(quick) -> None:
    client = quick["client"]
    client.set_tag(fit_run(quick, "alpha").info.run_id, schema.TAG_FIT_ERROR, "by hand")
    got = run_pass(quick)
    assert got["alpha"][:2] == ("fitted", 2)
    assert got["beta"][2].endswith(QUICK)
    other = RefitSettings(n_boot=0, curves=False, budgets=(1e20, 1e21))
    outcomes = refit_pass(client, experiments=[quick["exp_name"]], settings=other)
    assert sorted((o.family, o.status, o.refit_number) for o in outcomes) == [
        ("alpha", "fitted", 3), ("beta", "fitted", 2)]  # fmt: skip


def test_a_stopped_pass_keeps_the_watermark(quick) -> None:
    before = watermark(quick)
    log_runs(quick["client"], quick["exp_id"], [RunSpec("gamma", 1e8, 2e9, 2.8)])
    outcomes = refit_pass(quick["client"], experiments=[quick["exp_name"]], settings=SETTINGS,
                          should_stop=lambda: True)  # fmt: skip
    assert [o.family for o in outcomes if o.status != "skipped"] == []
    assert watermark(quick) == before
    got = run_pass(quick)
    assert got["gamma"][0] == "insufficient_data"  # one run: a fit run saying why
    assert published_fit(fit_run(quick, "gamma")) is not None


def test_each_shard_keeps_its_own_watermark(quick) -> None:
    shard = Shard(0, 2)
    first = run_pass(quick, shard=shard)
    key = f"{schema.TAG_REFIT_WATERMARK}.0of2"
    mark = watermark(quick, key)
    assert mark is not None and mark.full_ms == mark.read_ms  # its first pass: full
    second = run_pass(quick, shard=shard)
    assert sorted(second) == sorted(first)  # the same families, and only those
    assert all(shard.owns(quick["exp_id"], name) for name in second)
    assert watermark(quick, key).full_ms == mark.full_ms


def test_a_declared_comparison_is_skipped_unread_until_a_family_moves(quick) -> None:
    client = quick["client"]
    old = [*synthetic_family("base", sizes=(2e7, 2e8, 2e9), seed=2, age_s=AGE_S),
           *synthetic_family("cand", sizes=(2e7, 2e8, 2e9), seed=3, age_s=AGE_S)]  # fmt: skip
    log_runs(client, quick["exp_id"], old)
    # Old runs logged with a family tag by one's own code: unseen until ...
    assert "base" not in run_pass(quick)
    assert run_pass(quick, full_check=True)["base"][:2] == ("fitted", 1)  # ... the full check
    client.set_tag(fit_run(quick, "cand").info.run_id, schema.TAG_COMPARE_TO, "base")
    first = run_pass(quick)
    assert first["cand vs base"][0] == "compared"
    second = run_pass(quick)
    assert second["cand vs base"] == (
        "skipped", first["cand vs base"][1],
        "unchanged since the last comparison (neither family changed; quick check)")  # fmt: skip
    assert second["cand"][2].endswith(QUICK) and second["base"][2].endswith(QUICK)
    log_runs(client, quick["exp_id"], [RunSpec("base", 6e8, 3e10, 2.5)])
    third = run_pass(quick)
    assert third["base"][:2] == ("fitted", 2)
    assert third["cand"] == ("skipped", 1, READ_UNCHANGED)  # read for the comparison
    assert third["cand vs base"][:2] == ("compared", first["cand vs base"][1] + 1)


def test_an_unreadable_watermark_means_a_full_check(quick) -> None:
    client = quick["client"]
    client.set_experiment_tag(
        quick["exp_id"], schema.TAG_REFIT_WATERMARK, '{"read_ms": "yesterday"}'
    )
    got = run_pass(quick)
    assert not any(message.endswith(QUICK) for _, _, message in got.values())
    mark = watermark(quick)
    assert mark is not None and mark.full_ms == mark.read_ms


def test_families_assign_then_one_quick_pass_refits_the_family(quick) -> None:
    """Tagging old runs into a family moves no run's times; ``families --assign`` records the
    family on the experiment, so the next quick pass reads and fits it (once)."""
    client = quick["client"]
    old = synthetic_family(None, sizes=(2e7, 2e8, 2e9), seed=4, age_s=AGE_S,
                           params={"optimizer": "lion"})  # fmt: skip
    log_runs(client, quick["exp_id"], old)
    assert run_pass(quick).keys() == {"alpha", "beta"}  # untagged: not a family yet
    out = call_cli("families", "--tracking-uri", quick["uri"], "--experiment",
                   quick["exp_name"], "--assign", "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    (suggestion,) = doc["suggestions"]
    name = suggestion["family"]
    assert doc["assigned"] == 9
    got = run_pass(quick)
    assert got[name][:2] == ("fitted", 1)
    assert got["alpha"][2].endswith(QUICK) and got["beta"][2].endswith(QUICK)
    # Within the clock margin the family is read again (not refitted), like a new run.
    assert run_pass(quick)[name] == ("skipped", 1, READ_UNCHANGED)
    status, number, message = run_pass(quick, clock_margin_ms=0)[name]
    assert (status, number) == ("skipped", 1) and message.endswith(QUICK)
