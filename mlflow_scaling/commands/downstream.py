"""``mlflow-scaling downstream``: predict a task's accuracy from a CSV of runs (no MLflow).

    mlflow-scaling downstream runs.csv --task-loss-col bpb --metric-col acc --chance 0.25 \\
        [--n-col N --d-col D --c-col C] [--n-examples 1000] [--predict targets.csv] \\
        [--bootstrap 200] [--run-col run --step-col step [--skip-fraction 0.1]] \\
        --format json|table

Step 1 fits the task-loss column against (N, D) (or against C on the frontier when the runs do
not span both axes); step 2 the sigmoid from ``--chance`` to a fitted ceiling. Columns are read
as by ``mlflow-scaling fit``: with C and D the compute axis f(N) = C/D is learned from the runs
and places the targets; from C alone D = C/(6N). Give the
training loss as ``--task-loss-col`` when the task has no loss of its own. Exit 0, or 2 on bad
input with one line naming the file, column and row.

With ``--run-col`` and ``--step-col`` the file is a checkpoint table (:mod:`.checkpoint_table`):
each run's last row is its final point for step 1; step 2 is fitted on the checkpoints past the
first ``--skip-fraction`` of each run's steps, with a free floor and height.
"""

from __future__ import annotations

import argparse

from .. import api
from ..argtypes import non_negative_int, positive_int
from ..laws.downstream import DEFAULT_SKIP_FRACTION
from ..strict_json import dumps as strict_dumps
from ..tabular import read_csv, read_targets

EXIT_OK = 0
PREDICTION_KEYS = ("N", "D", "task_loss", "metric", "lo", "hi")
SHARE_KEYS = ("share_step1", "share_step2")


def _in_unit_interval(hint: str = ""):
    """An argparse type: a number in [0, 1), the refusal ending with ``hint``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not 0 <= value < 1:
            raise argparse.ArgumentTypeError(f"{text!r} must lie in [0, 1){hint}")
        return value

    return parse


_chance = _in_unit_interval(" (e.g. 0.25 for 4 choices)")
_fraction = _in_unit_interval()


def downstream_report(args: argparse.Namespace) -> dict:
    """The JSON document of ``mlflow-scaling downstream``: :func:`..api.downstream` on the
    file, its predictions reduced to the documented keys."""
    cols = {"n_col": args.n_col, "d_col": args.d_col, "c_col": args.c_col}
    targets: list[tuple[float, ...]] = []
    if args.predict:
        t = read_targets(args.predict, **cols)
        tc = t.c if t.c is not None else [None] * t.n.size
        targets = [(a, b) if x is None else (a, b, x) for a, b, x in
                   zip(t.n, t.d, tc, strict=True)]  # fmt: skip
    fit = api.downstream(
        read_csv(args.file), task_loss_col=args.task_loss_col, metric_col=args.metric_col,
        chance=args.chance, targets=targets, n_boot=args.bootstrap, seed=args.seed,
        n_examples=args.n_examples, source=args.file, run_col=args.run_col,
        step_col=args.step_col, skip_fraction=args.skip_fraction, **cols,
    )  # fmt: skip
    doc = fit.to_dict()
    doc["predictions"] = [
        {**{k: row[k] for k in PREDICTION_KEYS}, "one_step": row["one_step"],
         **{k: row[k] for k in SHARE_KEYS if k in row}}
        for row in doc["predictions"]
    ]  # fmt: skip
    doc.pop("prediction", None)
    doc.pop("curve", None)
    doc["file"] = str(args.file)
    return doc


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _on(steps: dict) -> str:
    pts = steps.get("sigmoid_points") or {}
    if pts.get("on") != "checkpoints":
        return ""
    return f" on {pts['n_points']} checkpoints of {pts['n_runs']} runs (floor free)"


def format_table(doc: dict) -> str:
    steps = doc["steps"]
    fit = steps["loss_fit"]
    sig = steps["sigmoid"]
    lines = [
        f"phase: {doc['phase']}   ({doc['phase_reason']})",
        f"step 1: {fit['loss_source']} against {fit['variable']} ({fit['kind']}): "
        + ", ".join(f"{k} {v:.4g}" for k, v in fit["params"].items()),
        f"step 2: accuracy = {sig['floor']:.4g} + ({sig['ceiling']:.4g} - {sig['floor']:.4g}) * "
        f"sigmoid({sig['k']:.4g} * ({sig['L0']:.4g} - task loss))" + _on(steps),
    ]
    lines += [f"warning: {w}" for w in doc.get("warnings") or ()]
    for s in doc["segments"]:
        lines.append(f"  {s['phase']:<15} {s['axis']} {s['x_min']:.3g} .. {s['x_max']:.3g}")
    bt = doc.get("largest_size_backtest")
    if bt and bt.get("predicted") is not None:
        lines.append(
            f"largest size (N={bt['N']:.3g}) from the smaller ones: predicted "
            f"{bt['predicted']:.3f} ({_fmt(bt['lo'], '.3f')}-{_fmt(bt['hi'], '.3f')}), "
            f"measured {bt['measured']:.3f}, one-step {bt['one_step_predicted']:.3f}"
            + ("; measured outside the interval" if bt.get("measured_outside_interval") else "")
        )
    if doc["predictions"]:
        lines.append(f"{'N':>10} {'D':>10} {'task_loss':>10} {'metric':>7} {'lo':>7} {'hi':>7}"
                     f" {'one-step':>8}")  # fmt: skip
        for r in doc["predictions"]:
            lines.append(
                f"{r['N']:>10.3g} {r['D']:>10.3g} {r['task_loss']:>10.4f} {r['metric']:>7.3f} "
                f"{_fmt(r['lo'], '.3f'):>7} {_fmt(r['hi'], '.3f'):>7} {r['one_step']:>8.3f}"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    doc = downstream_report(args)
    print(strict_dumps(doc, indent=2) if args.format == "json" else format_table(doc))
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``downstream`` subcommand to the ``mlflow-scaling`` parser."""
    p = subparsers.add_parser("downstream", help="predict a task's accuracy in two steps (task "
                              "loss, then a sigmoid) from a CSV of runs")  # fmt: skip
    p.add_argument("file", help="CSV with one row per run")
    p.add_argument("--task-loss-col", required=True,
                   help="step-1 variable: the task loss (or the training loss)")  # fmt: skip
    p.add_argument("--metric-col", required=True, help="accuracy column (in [0, 1])")
    p.add_argument("--chance", type=_chance, required=True, help="accuracy of a guess")
    p.add_argument("--n-col", default="N", help="parameters column (default N)")
    p.add_argument("--d-col", default="D", help="tokens column (default D)")
    p.add_argument("--c-col", default=None, help="compute column; D = C/(6N) when D is absent")
    p.add_argument("--n-examples", type=positive_int, default=None,
                   help="evaluation examples per run (cold-start binomial test)")  # fmt: skip
    p.add_argument("--predict", default=None, help="CSV of targets with N and D (or C)")
    p.add_argument("--bootstrap", type=non_negative_int, default=200,
                   help="replicates over runs through both steps (0: no intervals)")  # fmt: skip
    p.add_argument(
        "--run-col",
        default=None,
        help="checkpoint table: the column naming each row's run (with --step-col)",
    )
    p.add_argument(
        "--step-col",
        default=None,
        help="checkpoint table: the column with each row's step; a run's last row "
        "is its final point for step 1",
    )
    p.add_argument(
        "--skip-fraction",
        type=_fraction,
        default=DEFAULT_SKIP_FRACTION,
        help="checkpoints in this first fraction of a run's steps are not used by "
        f"step 2 (default {DEFAULT_SKIP_FRACTION:g})",
    )
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=run)
