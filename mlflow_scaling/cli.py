"""`mlflow-scaling`: the command line.

Exit codes: 0 success (or a passing check), 1 a failing check, 2 bad input, 3 an internal
error (one line; the traceback goes to a file, see :mod:`.crash_log`).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np

from . import __version__
from .argtypes import ScalingArgumentParser, params_count, token_count
from .argtypes import bootstrap_replicates as _bootstrap_replicates
from .argtypes import huber_delta as huber_delta_arg
from .argtypes import non_negative_int as _non_negative_int
from .argtypes import positive_float as _positive_float
from .inputs import check_extrapolates_up, check_within_reach
from .laws.check import DEFAULT_MAX_HALFWIDTH
from .laws.fitting import DEFAULT_HUBER_DELTA, MAX_BOOTSTRAP_WORK
from .strict_json import dumps as strict_dumps
from .summary import summarize_chinchilla
from .tabular import InputError, Points, read_points, read_targets

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return "n/a"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _fixed(x: float, decimals: int) -> str:
    """``x`` with fixed decimals where that reads well, else in 4 significant digits."""
    return f"{x:.{decimals}f}" if 1e-3 <= abs(x) < 1e5 else f"{x:.4g}"


def _warn(command: str, points: Points) -> None:
    for warning in points.warnings:
        print(f"mlflow-scaling {command}: warning: {warning}", file=sys.stderr)


def _check_bootstrap_work(n_boot: int, n_points: int) -> None:
    """Replicates × points beyond MAX_BOOTSTRAP_WORK take longer than anyone waits: say so."""
    if n_boot * n_points > MAX_BOOTSTRAP_WORK:
        most = MAX_BOOTSTRAP_WORK // n_points
        lower = f"--bootstrap {most} or fewer" if most >= 50 else "--bootstrap 0"
        raise InputError(
            f"--bootstrap {n_boot} on {n_points:,} points is {n_boot * n_points:.2g} point-refits, "
            f"more than the {MAX_BOOTSTRAP_WORK:.0e} that take about a minute; use {lower}, "
            "or aggregate per run first (one final loss per run)"
        )


def format_fit_table(summary: dict) -> str:
    """The readable form of a fit summary."""
    p = summary["params"]
    ci = summary.get("ci", {})
    lines = [
        f"law: L(N, D) = E + A/N^alpha + B/D^beta   ({summary['n_points']} points, "
        f"Huber delta {summary['huber_delta']:g}, objective {summary['objective']:.6e})",
    ]
    if ci:
        lines.append(f"{'param':<8}{'value':>12}   {int(summary['ci_level'] * 100)}% interval")
    for name in ("E", "A", "B", "alpha", "beta"):
        interval = f"   ({_fmt(ci[name][0])}, {_fmt(ci[name][1])})" if name in ci else ""
        lines.append(f"{name:<8}{p[name]:>12.5g}{interval}")
    alloc = summary["allocation"]
    aci = alloc.get("ci", {})
    lines.append(
        f"allocation: N_opt ∝ C^{alloc['a']:.4f}, D_opt ∝ C^{alloc['b']:.4f}"
        + (f"   (a in ({aci['a'][0]:.3f}, {aci['a'][1]:.3f}))" if aci else "")
        + " for C = 6ND"
    )
    axis = summary.get("compute_axis") or {}
    if axis.get("kind") == "measured":
        ratios = axis["ratio_to_6nd"]
        lines.append(
            f"compute axis: measured C = f(N)·D, f/6N from {ratios[0]:.2f} to {ratios[-1]:.2f} "
            "over the trained sizes; budgets below are on it"
        )
    else:
        lines.append("compute axis: 6ND (no FLOPs given with the tokens)")
    unc = summary.get("uncertainty")
    if unc:
        lines.append(f"intervals: {unc['interval_method']}")
        if unc.get("warning"):
            lines.append(f"warning: {unc['warning']}")
    if summary.get("budgets"):
        lines.append("")
        header = ("budget C", "N_opt", "D_opt", "D/N", "loss", "lo", "hi")
        widths = (10, 10, 10, 6, 7, 7, 7)
        lines.append(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
        for r in summary["budgets"]:
            lines.append(
                f"{r['flops']:>10.3g} {r['n_opt']:>10.3g} {r['d_opt']:>10.3g} "
                f"{_fixed(r['tokens_per_param'], 1):>6} {_fixed(r['loss'], 4):>7} "
                f"{_fmt(r['lo']):>7} {_fmt(r['hi']):>7}"
            )
    if summary.get("predictions"):
        lines.append("")
        lines.append(f"{'N':>10} {'D':>10} {'loss':>7} {'lo':>7} {'hi':>7}")
        for r in summary["predictions"]:
            lines.append(
                f"{r['N']:>10.3g} {r['D']:>10.3g} {_fixed(r['loss'], 4):>7} {_fmt(r['lo']):>7} "
                f"{_fmt(r['hi']):>7}"
            )
    return "\n".join(lines)


DATASETS = ("chinchilla",)
"""Bundled data ``fit --dataset`` can fit (``mlflow_scaling.datasets``)."""


def _fit_points(args: argparse.Namespace):
    if (args.file is None) == (args.dataset is None):
        raise InputError("give either a CSV file or --dataset, not both and not neither")
    if args.dataset is not None:
        from .datasets import load_chinchilla

        return load_chinchilla(), f"dataset {args.dataset}"
    points = read_points(
        args.file, n_col=args.n_col, d_col=args.d_col, c_col=args.c_col, loss_col=args.loss_col
    )
    _warn("fit", points)
    return points, str(args.file)


def _fit_targets(args: argparse.Namespace, points: Points) -> tuple | None:
    """The ``--predict`` targets as (N, D); targets and budgets within reach of the data."""
    if not (args.budget or args.predict):
        return None
    with np.errstate(over="ignore"):  # data past the float range: the fit says so itself
        axis, largest = points.axis(), float(np.max(points.flops))
    budgets = np.array(args.budget or [], dtype=float)
    check_within_reach(budgets, largest, lambda i: f"--budget {budgets[i]:g}")
    if not args.predict:
        return None
    t = read_targets(args.predict, n_col=args.n_col, d_col=args.d_col, c_col=args.c_col)
    with np.errstate(over="ignore"):
        flops = t.c if t.c is not None else axis.flops(t.n, t.d)
    check_within_reach(flops, largest, lambda i: f"{args.predict}: target row {i + 1}")
    return t.n, t.d


def _cmd_fit(args: argparse.Namespace) -> int:
    points, source = _fit_points(args)
    _check_bootstrap_work(args.bootstrap, points.n.size)
    targets = _fit_targets(args, points)
    try:
        summary, _ = summarize_chinchilla(
            points.n,
            points.d,
            points.loss,
            huber_delta=args.huber_delta,
            n_boot=args.bootstrap,
            budgets=args.budget or (),
            targets=targets,
            axis=points.axis(),
        )
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from None
    summary["file" if args.dataset is None else "dataset"] = args.file or args.dataset
    if args.format == "json":
        print(strict_dumps(summary, indent=2))
    else:
        print(format_fit_table(summary))
    return EXIT_OK


def format_phases_table(report: dict) -> str:
    lines = [f"phase at the frontier: {report['phase']}   ({report['reason']})"]
    if report.get("model"):
        lines.append(f"model: {report['model']}")
    if report["segments"]:
        lines.append(f"{'segment':<16}{'x_min':>11}{'x_max':>11}{'slope':>9}{'drop/decade':>13}")
        for s in report["segments"]:
            lines.append(
                f"{s['phase']:<16}{s['x_min']:>11.4g}{s['x_max']:>11.4g}{s['slope']:>9.4f}"
                f"{s['drop_per_decade']:>12.1%}"
            )
    if report.get("breaks"):
        lines.append("breaks at x = " + ", ".join(f"{b:.4g}" for b in report["breaks"]))
    return "\n".join(lines)


def _cmd_phases(args: argparse.Namespace) -> int:
    from .laws.phases import detect_phases
    from .tabular import numeric_column, read_csv

    frame = read_csv(args.file)
    x = numeric_column(frame, args.x_col, args.file, positive=True)
    loss = numeric_column(frame, args.loss_col, args.file, positive=True)
    try:
        report = detect_phases(
            x, loss, flat_drop_per_decade=args.flat_drop_per_decade, chance_loss=args.chance_loss
        ).to_dict()
    except ValueError as exc:
        raise InputError(f"{args.file}: {exc}") from None
    report["file"] = str(args.file)
    print(strict_dumps(report, indent=2) if args.format == "json" else format_phases_table(report))
    return EXIT_OK


def format_check_table(result: dict) -> str:
    lines = [f"scaling check: {result['verdict'].upper()}   (phase at the frontier: "
             f"{result['phase']})"]  # fmt: skip
    lines.append(f"{'criterion':<20}{'value':>12}{'threshold':>12}  result")
    for c in result["criteria"]:
        outcome = {True: "pass", False: "FAIL", None: "n/a"}[c["passed"]]
        lines.append(
            f"{c['name']:<20}{_fmt(c['value']):>12}{_fmt(c['threshold']):>12}  {outcome}"
            + (f"   {c['detail']}" if c["detail"] else "")
        )
    pred = result.get("prediction")
    if pred:
        interval = f" ({_fmt(pred['lo'])}, {_fmt(pred['hi'])})" if pred["lo"] else ""
        lines.append(
            f"predicted loss at N={pred['N']:.3g}, D={pred['D']:.3g} ({pred['tokens']}): "
            f"{pred['loss']:.4f}{interval}"
        )
    return "\n".join(lines)


def _cmd_check(args: argparse.Namespace) -> int:
    from .laws.check import PASS, scaling_check

    points = read_points(
        args.file, n_col=args.n_col, d_col=args.d_col, c_col=args.c_col, loss_col=args.loss_col
    )
    _warn("check", points)
    check_extrapolates_up(args.target_params, args.target_tokens, points.n, points.d)
    _check_bootstrap_work(args.bootstrap, points.n.size)
    try:
        result = scaling_check(
            points.n,
            points.d,
            points.loss,
            target_params=args.target_params,
            target_tokens=args.target_tokens,
            flops=points.flops,
            axis=points.axis(),
            min_sizes=args.min_sizes,
            min_span_decades=args.min_span_decades,
            max_backtest_error=args.max_backtest_error,
            max_exponent_gap=args.max_exponent_gap,
            max_extrapolation=args.max_extrapolation,
            max_halfwidth=args.max_halfwidth,
            n_boot=args.bootstrap,
        ).to_dict()
    except ValueError as exc:
        raise InputError(f"{args.file}: {exc}") from None
    result["file"] = str(args.file)
    print(strict_dumps(result, indent=2) if args.format == "json" else format_check_table(result))
    return EXIT_OK if result["verdict"] == PASS else EXIT_FAIL


def _add_point_columns(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-col", default="N", help="parameters column (default N)")
    p.add_argument("--d-col", default="D", help="tokens column (default D)")
    p.add_argument(
        "--c-col",
        default=None,
        help="compute column: with a D column, the compute axis f(N) = C/D is learned from it; "
        "without one, D = C/(6N)",
    )
    p.add_argument("--loss-col", default="loss", help="loss column (default loss)")


def build_parser() -> argparse.ArgumentParser:
    parser = ScalingArgumentParser(
        prog="mlflow-scaling", description="Neural scaling laws for MLflow and Lightning."
    )
    parser.add_argument("--version", action="version", version=f"mlflow-scaling {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="fit a scaling law to a CSV of runs (no MLflow needed)")
    fit.add_argument("file", nargs="?", default=None, help="CSV with one row per run")
    fit.add_argument(
        "--dataset", choices=DATASETS, default=None,
        help="fit bundled data instead of a file: the 240 Chinchilla runs (Epoch's preprocessing)",
    )  # fmt: skip
    fit.add_argument("--law", choices=["chinchilla"], default="chinchilla")
    _add_point_columns(fit)
    fit.add_argument(
        "--huber-delta",
        type=huber_delta_arg,
        default=DEFAULT_HUBER_DELTA,
        help="a number (default 1e-3, Epoch's, chosen on real sweeps) or 'auto': δ = 1.345 x the "
        "residuals' robust scale after a first fit at 1e-3",
    )
    fit.add_argument(
        "--bootstrap",
        type=_bootstrap_replicates,
        default=1000,
        help="replicates (0: none; else at least 50)",
    )
    fit.add_argument("--predict", default=None, help="CSV of targets with N and D (or C)")
    fit.add_argument("--budget", type=_positive_float, nargs="+", help="compute budgets in FLOPs")
    fit.add_argument("--format", choices=["table", "json"], default="table")
    fit.set_defaults(handler=_cmd_fit)

    phases = sub.add_parser("phases", help="cold start, scaling or plateau along one axis")
    phases.add_argument("file", help="CSV with one row per run")
    phases.add_argument("--x-col", default="N", help="the axis: N, D or C column (default N)")
    phases.add_argument("--loss-col", default="loss")
    phases.add_argument(
        "--flat-drop-per-decade", type=_positive_float, default=0.02,
        help="a segment is flat when loss falls less than this fraction per decade",
    )  # fmt: skip
    phases.add_argument(
        "--chance-loss", type=_positive_float, default=None,
        help="loss of a uniform guess (e.g. ln(vocab)); tells a cold start from a plateau",
    )  # fmt: skip
    phases.add_argument("--format", choices=["table", "json"], default="table")
    phases.set_defaults(handler=_cmd_phases)

    check = sub.add_parser(
        "check", help="the scaling check before a big run (exit 0 pass, 1 fail, 2 bad input)"
    )
    check.add_argument("file", help="CSV with one row per run")
    _add_point_columns(check)
    check.add_argument("--target-params", type=params_count, required=True)
    check.add_argument(
        "--target-tokens", type=token_count, default=None,
        help="tokens for the target (default: compute-optimal by the fitted law)",
    )  # fmt: skip
    check.add_argument("--min-sizes", type=_non_negative_int, default=4)
    check.add_argument("--min-span-decades", type=_positive_float, default=1.0)
    check.add_argument("--max-backtest-error", type=_positive_float, default=0.03)
    check.add_argument("--max-exponent-gap", type=_positive_float, default=0.08)
    check.add_argument("--max-extrapolation", type=_positive_float, default=10.0)
    check.add_argument(
        "--max-halfwidth", type=_positive_float, default=DEFAULT_MAX_HALFWIDTH,
        help="precision: the largest (hi - lo)/2 over the predicted loss at the target "
        f"(default {DEFAULT_MAX_HALFWIDTH:g})",
    )  # fmt: skip
    check.add_argument(
        "--bootstrap", type=_bootstrap_replicates, default=400,
        help="replicates for the prediction interval (0: none; else at least 50)",
    )  # fmt: skip
    check.add_argument("--format", choices=["table", "json"], default="table")
    check.set_defaults(handler=_cmd_check)

    from .downstream_cli import register as register_downstream
    from .jobs.commands import register as register_job_commands

    register_downstream(sub)
    register_job_commands(sub)
    from .planning.command import register as register_plan

    register_plan(sub)
    from .compare_command import register as register_compare

    register_compare(sub)
    from .commands.hparams import register as register_hparams

    register_hparams(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except InputError as exc:
        message = " ".join(str(exc).split("\n"))  # one line, whatever the culprit's name holds
        print(f"mlflow-scaling {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # a bug, not the input: one line, the traceback in a file
        from .crash_log import one_line, write_traceback

        where = write_traceback(exc, args.command)
        print(f"mlflow-scaling {args.command}: internal error: {one_line(exc)} (full traceback "
              f"in {where})", file=sys.stderr)  # fmt: skip
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
