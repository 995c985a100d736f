"""``mlflow-scaling fit``: fit a Chinchilla law to a CSV of runs (no MLflow needed).

The library call is :func:`mlflow_scaling.summary.summarize_chinchilla`; this module reads the
CSV, checks the targets are within reach, and prints the table or the JSON. With
``--unique-col`` the law is the data-constrained one (:mod:`.fit_repeats`).
"""

from __future__ import annotations

import argparse

import numpy as np

from ..api import fit as fit_runs
from ..argtypes import bootstrap_replicates, positive_float, token_count
from ..argtypes import huber_delta as huber_delta_arg
from ..datasets import load_chinchilla
from ..inputs import check_bootstrap_work, check_within_reach
from ..laws.fitting import DEFAULT_HUBER_DELTA
from ..strict_json import dumps as strict_dumps
from ..tabular import InputError, Points, read_points, read_targets
from .common import EXIT_OK, add_point_columns, fixed, fmt, warn
from .fit_repeats import run_data_constrained


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
        interval = f"   ({fmt(ci[name][0])}, {fmt(ci[name][1])})" if name in ci else ""
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
                f"{fixed(r['tokens_per_param'], 1):>6} {fixed(r['loss'], 4):>7} "
                f"{fmt(r['lo']):>7} {fmt(r['hi']):>7}"
            )
    if summary.get("predictions"):
        lines.append("")
        lines.append(f"{'N':>10} {'D':>10} {'loss':>7} {'lo':>7} {'hi':>7}")
        for r in summary["predictions"]:
            lines.append(
                f"{r['N']:>10.3g} {r['D']:>10.3g} {fixed(r['loss'], 4):>7} {fmt(r['lo']):>7} "
                f"{fmt(r['hi']):>7}"
            )
    return "\n".join(lines)


DATASETS = ("chinchilla",)
"""Bundled data ``fit --dataset`` can fit (``mlflow_scaling.datasets``)."""


def _fit_points(args: argparse.Namespace):
    if (args.file is None) == (args.dataset is None):
        raise InputError("give either a CSV file or --dataset, not both and not neither")
    if args.dataset is not None:
        return load_chinchilla(), f"dataset {args.dataset}"
    points = read_points(
        args.file, n_col=args.n_col, d_col=args.d_col, c_col=args.c_col, loss_col=args.loss_col
    )
    warn("fit", points)
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


def run(args: argparse.Namespace) -> int:
    if args.unique_col is not None:
        return run_data_constrained(args)
    if args.run_col is not None or args.unique_tokens is not None:
        option = "--run-col" if args.run_col is not None else "--unique-tokens"
        raise InputError(f"{option} goes with --unique-col (the runs' unique tokens)")
    args.bootstrap = 1000 if args.bootstrap is None else args.bootstrap
    points, source = _fit_points(args)
    check_bootstrap_work(args.bootstrap, points.n.size)
    targets = _fit_targets(args, points)
    summary = fit_runs(points, budgets=args.budget or (), targets=targets, n_boot=args.bootstrap,
                       huber_delta=args.huber_delta, source=source).to_dict()  # fmt: skip
    summary["file" if args.dataset is None else "dataset"] = args.file or args.dataset
    if args.format == "json":
        print(strict_dumps(summary, indent=2))
    else:
        print(format_fit_table(summary))
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fit`` to the ``mlflow-scaling`` parser."""
    fit = subparsers.add_parser("fit", help="fit a scaling law to a CSV of runs (no MLflow needed)")
    fit.add_argument("file", nargs="?", default=None, help="CSV with one row per run")
    fit.add_argument(
        "--dataset", choices=DATASETS, default=None,
        help="fit bundled data instead of a file: the 240 Chinchilla runs (Epoch's preprocessing)",
    )  # fmt: skip
    fit.add_argument("--law", choices=["chinchilla"], default="chinchilla")
    add_point_columns(fit)
    fit.add_argument(
        "--huber-delta",
        type=huber_delta_arg,
        default=DEFAULT_HUBER_DELTA,
        help="a number (default 1e-3, Epoch's, chosen on real sweeps) or 'auto': δ = 1.345 x the "
        "residuals' robust scale after a first fit at 1e-3",
    )
    fit.add_argument(
        "--bootstrap",
        type=bootstrap_replicates,
        default=None,
        help="replicates (0: none; else at least 50); default 1000, 200 with --unique-col",
    )
    fit.add_argument("--predict", default=None, help="CSV of targets with N and D (or C)")
    fit.add_argument("--budget", type=positive_float, nargs="+", help="compute budgets in FLOPs")
    fit.add_argument("--format", choices=["table", "json"], default="table")
    fit.add_argument(
        "--unique-col", default=None,
        help="unique-tokens column: fit the data-constrained law (repeated epochs are worth "
        "less, docs/data-constrained.md); without it every token counts as fresh",
    )  # fmt: skip
    fit.add_argument("--run-col", default=None,
                     help="with --unique-col: the run of each row (one U per run; the "
                     "bootstrap resamples runs)")  # fmt: skip
    fit.add_argument("--unique-tokens", type=token_count, default=None, metavar="U",
                     help="with --unique-col and --budget: the best N, D and epochs of each "
                     "budget when only U unique tokens exist")  # fmt: skip
    fit.set_defaults(func=run)
