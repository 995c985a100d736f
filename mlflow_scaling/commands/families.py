"""``mlflow-scaling families``: list the scaling families in MLflow; propose (``--suggest``) or
tag (``--assign``) families for untagged runs (:mod:`..tracking.families`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from .. import strict_json
from ..argtypes import non_negative_int
from ..tracking.families import (
    DEFAULT_SCALE_PARAMS,
    assign_families,
    list_families,
    suggest_families,
)
from ..tracking.reading import resolve_experiments
from .common import EXIT_OK, add_tracking_options, connect, mlflow_errors, uri_of


def _name_list(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no parameter")
    return names


def _range(r: list[float] | None) -> str:
    return "-" if not r else f"{r[0]:.3g}..{r[1]:.3g}"


def format_families_table(infos: Sequence[Any]) -> str:
    if not infos:
        return "no scaling families (no run has a scaling.family tag)"
    lines = [
        f"{'experiment':<16} {'family':<24} {'runs':>5} {'used':>5} {'excl':>5} {'sizes':>5} "
        f"{'N':>17} {'D':>17} {'C':>17}  last fit"
    ]
    for i in infos:
        fit = i.last_fit
        if fit is None:
            state = "never fitted"
        else:
            fresh = {True: "up to date", False: "stale", None: "incomplete"}[fit["up_to_date"]]
            state = (
                f"#{fit['refit_number']} {fit['phase'] or '-'}, check {fit['check'] or '-'}"
                f", {fit['finished_at'] or 'in progress'}, {fresh}"
            )
            if fit.get("error"):
                state += f"; last refit failed: {fit['error']}"
        lines.append(
            f"{i.experiment[:16]:<16} {i.family[:24]:<24} {i.n_runs:>5} {i.n_members:>5} "
            f"{i.n_excluded:>5} {i.n_sizes:>5} {_range(i.params_range):>17} "
            f"{_range(i.tokens_range):>17} {_range(i.flops_range):>17}  {state}"
        )
    return "\n".join(lines)


def format_suggestions(result: Any, assigned: int | None) -> str:
    lines = []
    if not result.suggestions:
        lines.append("no families to propose among the runs without a scaling.family tag")
    for s in result.suggestions:
        shared = ", ".join(f"{k}={v}" for k, v in sorted(s.shared.items())) or "(no params)"
        lines.append(f"[{s.experiment.name}] {s.name}: {len(s.run_ids)} runs, {s.n_sizes} sizes")
        lines.append(f"    shared: {shared}")
        lines.append(f"    varying: {', '.join(s.varying) or '(only scaling.params)'}")
    if result.left_alone:
        lines.append(f"{len(result.left_alone)} runs left without a family:")
        for r in result.left_alone:
            lines.append(
                f"    [{r['experiment']}] {r['run_name'] or '-'} ({r['run_id']}): {r['reason']}"
            )
    if assigned is not None:
        lines.append(f"tagged {assigned} runs with {len(result.suggestions)} families "
                     "(recorded on the experiments: the next refit pass refits them)")  # fmt: skip
    else:
        lines.append("(nothing written; --assign tags these runs)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    with mlflow_errors(uri_of(args)):
        client = connect(args)
        exps = resolve_experiments(client, args.experiment)
        if args.suggest or args.assign:
            scale = list(args.scale_params or DEFAULT_SCALE_PARAMS) + list(
                args.add_scale_params or ()
            )
            result = suggest_families(client, exps, scale, min_runs=args.min_runs)
            assigned = assign_families(client, result.suggestions) if args.assign else None
            if args.format == "json":
                print(strict_json.dumps({**result.to_dict(), "assigned": assigned}, indent=2))
            else:
                print(format_suggestions(result, assigned))
            return EXIT_OK
        infos = list_families(client, exps, args.family)
    if args.format == "json":
        print(strict_json.dumps([i.to_dict() for i in infos], indent=2))
    else:
        print(format_families_table(infos))
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``families`` to the ``mlflow-scaling`` parser."""
    fam = subparsers.add_parser(
        "families",
        help="list scaling families in MLflow; propose (--suggest) or tag "
        "(--assign) families for untagged runs",
    )
    add_tracking_options(fam)
    fam.add_argument("--family", action="append", metavar="F", help="only this family")
    mode = fam.add_mutually_exclusive_group()
    mode.add_argument(
        "--suggest",
        action="store_true",
        help="group untagged runs by their non-scale hyperparameters",
    )
    mode.add_argument("--assign", action="store_true", help="as --suggest, and write the tags")
    fam.add_argument(
        "--scale-params",
        type=_name_list,
        default=None,
        metavar="LIST",
        help="comma-separated param names (shell patterns allowed) that vary within a family; "
        "replaces the default list (see the README)",
    )
    fam.add_argument(
        "--add-scale-params",
        type=_name_list,
        default=None,
        metavar="LIST",
        help="comma-separated names added to the default list",
    )
    fam.add_argument(
        "--min-runs",
        type=non_negative_int,
        default=2,
        help="smallest group proposed as a family (default 2)",
    )
    fam.set_defaults(func=run)
