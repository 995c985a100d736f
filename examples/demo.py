"""The main job, end to end (README command 1).

1. Trains a family of byte-level GPTs on the Python standard library (``train_family.py``):
   an isoFLOP grid of 3 compute budgets × 4 model sizes (3 × 3-4 smaller ones with
   ``--quick``), each run logging N, D and C through ``ScalingLawCallback``, its validation
   loss at 8 points, and a downstream task (pick the true next line of held-out source among
   four) at the same 8 points (checkpoints for step 2 of the downstream chain).
2. Imports the Chinchilla runs (bundled: ``mlflow_scaling.datasets``) as a second family.
3. Runs one refit pass: every family is fitted (Approaches 3, 2 and 1 where the runs allow),
   its phase detected and the scaling check run; fits, plots and reports are posted to MLflow.
4. Prints, per family: the law, the allocation exponent by each of the three approaches side
   by side and whether they agree, the phase, the check, the compute-optimal allocation for a
   ladder of budgets, how well the largest trained size is predicted from the smaller ones,
   the downstream task's phase and prediction, and where to look in the MLflow UI.

    python examples/demo.py [--quick] [--verbose] [--tracking-uri sqlite:///mlflow.db]

The output is quiet: one progress bar for the training (one line per run when the output is
not a terminal), then the summary. ``--verbose`` brings back Lightning's own output.

Re-running reuses finished runs and skips families whose runs did not change.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_family import train_family  # noqa: E402

from mlflow_scaling.datasets import CHINCHILLA_CSV, data_path, load_chinchilla  # noqa: E402

EXPERIMENT = "scaling-demo"
FAMILY = "stdlib-gpt"
CHINCHILLA_FAMILY = "chinchilla"
TASK = "nextline"
AGREE = "approaches_agree"


def import_chinchilla(client, experiment: str, echo=print) -> None:
    from mlflow_scaling.tracking.importing import import_points

    points = load_chinchilla()
    result = import_points(
        client, points, family=CHINCHILLA_FAMILY, experiment=experiment,
        source=data_path(CHINCHILLA_CSV), params_convention="total (Hoffmann et al. 2022)",
    )  # fmt: skip
    echo(
        f"{CHINCHILLA_FAMILY}: imported {len(result.created)} runs from {CHINCHILLA_CSV} "
        f"(bundled; Epoch's preprocessing), {result.skipped} already there"
    )


def load_fit_document(client, fit_run_id: str) -> dict:
    """The published ``fit.json`` of the fit run (see mlflow_scaling.tracking.published)."""
    from mlflow_scaling.tracking import schema
    from mlflow_scaling.tracking.published import read_published_json

    doc = read_published_json(client, client.get_run(fit_run_id), schema.ARTIFACT_FIT_JSON)
    if doc is None:
        raise RuntimeError(f"fit run {fit_run_id} has no published fit.json")
    return doc


def describe_family(doc: dict, tracking_uri: str, echo=print) -> dict:
    """Print what the refit found for one family; return the numbers the tests check."""
    name = doc["family"]
    echo(f"\n=== family {name!r}: {doc['n_members']} runs, {doc['n_excluded']} excluded ===")
    for excluded in doc.get("excluded", []):
        echo(f"  excluded {excluded.get('run_id')}: {excluded.get('reason')}")
    fit = doc.get("approach3")
    if not fit:
        echo(f"  insufficient data: {doc.get('reason')}")
        return {"family": name, "phase": doc.get("phase")}
    p, ci = fit["params"], fit.get("ci", {})
    echo("  law: L(N, D) = E + A/N^alpha + B/D^beta")
    for key in ("E", "A", "B", "alpha", "beta"):
        interval = f"  (95% {ci[key][0]:.4g} to {ci[key][1]:.4g})" if key in ci else ""
        echo(f"    {key:<6}{p[key]:>12.5g}{interval}")
    alloc = fit["allocation"]
    echo(f"  allocation: N_opt ∝ C^{alloc['a']:.3f}, D_opt ∝ C^{alloc['b']:.3f}")
    exponents = describe_approaches(doc, echo)
    echo(f"  phase at the frontier: {doc['phase']} ({doc['phases'].get('reason', '')})")
    check = doc["check"]
    echo(f"  scaling check: {check['verdict']}")
    for c in check.get("criteria", []):
        mark = {True: "pass", False: "FAIL", None: "n/a"}[c["passed"]]
        value = (
            c["value"] if isinstance(c["value"], str) or c["value"] is None else f"{c['value']:.4g}"
        )
        echo(f"    {mark:<5}{c['name']:<20}{value!s:>12}  (threshold {c['threshold']})")
    agree = next((c for c in check.get("criteria", []) if c["name"] == AGREE), None)
    if agree is not None:
        verdict = {True: "agree", False: "DISAGREE", None: "n/a"}[agree["passed"]]
        echo(f"  approaches 2 and 3 {verdict}: {agree.get('detail') or agree['value']}")
    backtest = next((c for c in check.get("criteria", []) if c["name"] == "backtest"), None)
    held_out = None if backtest is None else backtest["value"]
    if held_out is not None:
        echo(f"  largest trained size predicted from the smaller ones: {held_out:.2%} mean error")
    echo(f"  {'budget C':>10} {'N_opt':>10} {'D_opt':>10} {'D/N':>6} {'loss':>7}  95% interval")
    for row in doc.get("budgets", []):
        interval = f"{row['lo']:.4f}-{row['hi']:.4f}" if row.get("lo") is not None else "-"
        echo(
            f"  {row['flops']:>10.3g} {row['n_opt']:>10.3g} {row['d_opt']:>10.3g} "
            f"{row['tokens_per_param']:>6.1f} {row['loss']:>7.4f}  {interval}"
        )
    task = describe_task(doc, TASK, echo) if doc.get("tasks") or name == FAMILY else None
    echo(
        f"  in the MLflow UI: experiment {doc['experiment_name']!r} → run {doc['fit_run_id']} "
        "(tag scaling.role = fit) → Artifacts → the folder in its tag scaling.published_path "
        "(fit.png, report.html, fit.json, predictions.csv); metrics scaling.fit.* over refits"
    )
    return {
        "family": name,
        "phase": doc["phase"],
        "check": check["verdict"],
        "params": p,
        "held_out_error": held_out,
        "exponents": exponents,
        "approaches_agree": agree,
        "task": task,
    }


def _interval(ci) -> str:
    return f" (95% {ci[0]:.3f} to {ci[1]:.3f})" if ci and None not in ci else ""


def describe_approaches(doc: dict, echo=print) -> dict[str, float | None]:
    """The allocation exponent a (N_opt ∝ C^a) by each approach, side by side."""
    axis = (doc.get("compute_axis") or {}).get("kind", "6ND")
    echo(f"  allocation exponent a (N_opt ∝ C^a), three ways, compute axis {axis}:")
    one, two, three = doc.get("approach1") or {}, doc.get("approach2") or {}, doc["approach3"]
    alloc = three["allocation"]
    rows = [
        ("approach1", "1: envelope of training curves", one,
         lambda: f"from {one.get('n_curves')} curves"),
        ("approach2", "2: isoFLOP profiles", two,
         lambda: f"{len(two.get('profiles', []))} budgets, {two.get('method')} minima"),
    ]  # fmt: skip
    exponents: dict[str, float | None] = {}
    for key, label, part, detail in rows:
        if part.get("applicable"):
            exponents[key] = part["a"]
            echo(f"    Approach {label:<34} a = {part['a']:.3f}  ({detail()})")
        else:
            exponents[key] = None
            echo(f"    Approach {label:<34} not applicable: {part.get('reason')}")
    ci = (alloc.get("ci") or {}).get("a")
    on_axis = alloc.get("a_on_axis")
    if on_axis is None:  # a refit that knows only C = 6ND
        exponents["approach3"] = alloc["a"]
        echo(f"    Approach {'3: parametric law L(N, D)':<34} a = {alloc['a']:.3f}{_interval(ci)}")
    else:
        exponents["approach3"] = on_axis
        echo(
            f"    Approach {'3: parametric law L(N, D)':<34} a = {on_axis:.3f}  (on the family's "
            f"compute axis; {alloc['a']:.3f}{_interval(ci)} with C = 6ND)"
        )
    return exponents


def _number(value, fmt: str = ".3f") -> str:
    return "n/a" if not isinstance(value, int | float) else format(value, fmt)


def describe_task(doc: dict, task: str, echo=print) -> dict | None:
    """The downstream task's phase and the largest size's accuracy predicted from the smaller
    sizes, when the refit analysed the task (``fit.json`` key ``tasks``)."""
    found = (doc.get("tasks") or {}).get(task)
    if not isinstance(found, dict):
        echo(
            f"  downstream task {task!r}: logged by every run, but this refit does not analyse "
            "downstream tasks (no 'tasks' in fit.json): the downstream analysis is not available"
        )
        return None
    echo(f"  downstream task {task!r}: phase {found.get('phase')}")
    points = (found.get("steps") or {}).get("sigmoid_points")
    if isinstance(points, dict):
        echo(f"    step 2 (task loss to accuracy) fitted on {points.get('n_points')} "
             f"{points.get('on')} of {points.get('n_runs')} runs")  # fmt: skip
    if found.get("error"):
        echo(f"    {found['error']}")
    backtest = found.get("largest_size_backtest")
    if isinstance(backtest, dict):
        value = {k: _number(backtest.get(k)) for k in ("measured", "predicted", "lo", "hi")}
        one_step = _number(backtest.get("one_step_predicted"))
        echo(
            f"    largest size (N = {_number(backtest.get('N'), '.3g')}): accuracy measured "
            f"{value['measured']}, predicted from the smaller sizes {value['predicted']} "
            f"(95% {value['lo']} to {value['hi']}), one-step fit {one_step}"
        )
    return {"phase": found.get("phase"), "largest_size_backtest": backtest}


def run_demo(
    *,
    tracking_uri: str,
    quick: bool,
    progress: bool = True,
    verbose: bool = False,
    n_boot: int | None = None,
    echo=print,
) -> list[dict]:
    from mlflow_scaling.jobs.analysis import RefitSettings
    from mlflow_scaling.jobs.progress import RefitProgress
    from mlflow_scaling.jobs.refit import refit_pass
    from mlflow_scaling.tracking.connection import connect
    from mlflow_scaling.tracking.fit_run import find_fit_runs

    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    started = time.perf_counter()
    echo(f"tracking store: {tracking_uri}")
    client = connect(tracking_uri)
    train_family(
        tracking_uri=tracking_uri, experiment=EXPERIMENT, family=FAMILY, quick=quick,
        progress=progress, verbose=verbose, echo=echo,
    )  # fmt: skip
    import_chinchilla(client, EXPERIMENT, echo)
    settings = RefitSettings() if n_boot is None else RefitSettings(n_boot=n_boot)
    shown = RefitProgress() if progress else None
    outcomes = refit_pass(
        client, experiments=[EXPERIMENT], settings=settings,
        on_family_start=shown and shown.start, on_outcome=shown and shown.done,
    )  # fmt: skip
    results = []
    for outcome in outcomes:
        note = "" if outcome.message in ("", outcome.status) else f" ({outcome.message})"
        echo(f"refit {outcome.family!r}: {outcome.status}{note}")
        if outcome.status == "error":
            continue
        runs = find_fit_runs(client, outcome.experiment_id, outcome.family)
        if runs:
            doc = load_fit_document(client, runs[0].info.run_id)
            results.append(describe_family(doc, tracking_uri, echo))
    store = tracking_uri if "://" in tracking_uri else f"sqlite:///{tracking_uri}"
    echo(f"\ndone in {time.perf_counter() - started:.0f} s. To look at it:")
    echo(f"  mlflow ui --backend-store-uri {store}")
    echo("    then open http://127.0.0.1:5000, experiment 'scaling-demo': member runs carry")
    echo("    scaling.params/tokens/flops; the 'fit' runs carry the artifacts under the folder")
    echo("    named by their tag scaling.published_path (scaling/fits/<refit>-<token>/)")
    echo(f"  mlflow server --app-name scaling --backend-store-uri {store}")
    echo("    then open http://127.0.0.1:5000/scaling/ for the fitted families (100 to a page)")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument(
        "--quick", action="store_true", help="fewer, smaller runs (about 4 minutes)"
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="Lightning's own output too")
    parser.add_argument("--bootstrap", type=int, default=None, help="bootstrap replicates")
    args = parser.parse_args(argv)
    run_demo(
        tracking_uri=args.tracking_uri, quick=args.quick, progress=not args.no_progress,
        verbose=args.verbose, n_boot=args.bootstrap,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
