"""``mlflow-scaling check``: the scaling check before a big run (exit 0 pass, 1 fail)."""

from __future__ import annotations

import argparse

from ..api import check as check_runs
from ..argtypes import (
    bootstrap_replicates,
    non_negative_int,
    params_count,
    positive_float,
    token_count,
)
from ..laws.check import DEFAULT_MAX_HALFWIDTH, PASS
from ..strict_json import dumps as strict_dumps
from ..tabular import read_points
from .common import EXIT_FAIL, EXIT_OK, add_point_columns, fmt, warn

CHECK_OPTIONS = (
    "min_sizes", "min_span_decades", "max_backtest_error", "max_exponent_gap", "max_extrapolation",
)  # fmt: skip
"""The thresholds passed through to :func:`~..laws.check.scaling_check` as they are named."""


def format_check_table(result: dict) -> str:
    lines = [f"scaling check: {result['verdict'].upper()}   (phase at the frontier: "
             f"{result['phase']})"]  # fmt: skip
    lines.append(f"{'criterion':<20}{'value':>12}{'threshold':>12}  result")
    for c in result["criteria"]:
        outcome = {True: "pass", False: "FAIL", None: "n/a"}[c["passed"]]
        lines.append(
            f"{c['name']:<20}{fmt(c['value']):>12}{fmt(c['threshold']):>12}  {outcome}"
            + (f"   {c['detail']}" if c["detail"] else "")
        )
    pred = result.get("prediction")
    if pred:
        interval = f" ({fmt(pred['lo'])}, {fmt(pred['hi'])})" if pred["lo"] else ""
        lines.append(
            f"predicted loss at N={pred['N']:.3g}, D={pred['D']:.3g} ({pred['tokens']}): "
            f"{pred['loss']:.4f}{interval}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    points = read_points(
        args.file, n_col=args.n_col, d_col=args.d_col, c_col=args.c_col, loss_col=args.loss_col
    )
    warn("check", points)
    options = {name: getattr(args, name) for name in CHECK_OPTIONS}
    result = check_runs(points, target_params=args.target_params,
                        target_tokens=args.target_tokens, n_boot=args.bootstrap,
                        max_halfwidth=args.max_halfwidth, source=str(args.file),
                        options=options).to_dict()  # fmt: skip
    result["file"] = str(args.file)
    print(strict_dumps(result, indent=2) if args.format == "json" else format_check_table(result))
    return EXIT_OK if result["verdict"] == PASS else EXIT_FAIL


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``check`` to the ``mlflow-scaling`` parser."""
    check = subparsers.add_parser(
        "check", help="the scaling check before a big run (exit 0 pass, 1 fail, 2 bad input)"
    )
    check.add_argument("file", help="CSV with one row per run")
    add_point_columns(check)
    check.add_argument("--target-params", type=params_count, required=True)
    check.add_argument(
        "--target-tokens", type=token_count, default=None,
        help="tokens for the target (default: compute-optimal by the fitted law)",
    )  # fmt: skip
    check.add_argument("--min-sizes", type=non_negative_int, default=4)
    check.add_argument("--min-span-decades", type=positive_float, default=1.0)
    check.add_argument("--max-backtest-error", type=positive_float, default=0.03)
    check.add_argument("--max-exponent-gap", type=positive_float, default=0.08)
    check.add_argument("--max-extrapolation", type=positive_float, default=10.0)
    check.add_argument(
        "--max-halfwidth", type=positive_float, default=DEFAULT_MAX_HALFWIDTH,
        help="precision: the largest (hi - lo)/2 over the predicted loss at the target "
        f"(default {DEFAULT_MAX_HALFWIDTH:g})",
    )  # fmt: skip
    check.add_argument(
        "--bootstrap", type=bootstrap_replicates, default=400,
        help="replicates for the prediction interval (0: none; else at least 50)",
    )  # fmt: skip
    check.add_argument("--format", choices=["table", "json"], default="table")
    check.set_defaults(func=run)
