"""``mlflow-scaling plan``: GPUs, memory per GPU and days for a target model.

From a family (``--experiment E --family F``) the target, the compute axis and the MFU come from
the family's runs, and the plan is refused (exit 1) unless the family's latest scaling check
passed (``--ignore-check`` plans anyway and says so). Standalone (``--params N --tokens D``) it
needs no MLflow. Exit 2 on bad input, with one line on stderr.
"""

from __future__ import annotations

import argparse
import sys

from ..argtypes import params_count, positive_float, token_count
from ..planning.family import check_summary, describe_failures, read_fit_doc, read_run_facts
from ..planning.family_plan import add_plan_options, plan_from_doc, standalone_plan
from ..planning.plan import format_plan
from ..strict_json import dumps as strict_dumps
from ..tabular import InputError
from ..tracking.reading import resolve_experiments
from .common import EXIT_FAIL, EXIT_OK, connect, mlflow_errors, uri_of

EXIT_REFUSED = EXIT_FAIL


def family_plan(args: argparse.Namespace) -> tuple[dict | None, str]:
    """The plan for ``--experiment E --family F``; (None, why) when the check refuses it."""
    if args.params is not None or args.tokens is not None:
        raise InputError("--params/--tokens are for a standalone plan; with --family use "
                         "--target-params/--target-tokens")  # fmt: skip
    with mlflow_errors(uri_of(args)):
        client = connect(args)
        (experiment,) = resolve_experiments(client, [args.experiment])
        doc, _ = read_fit_doc(client, experiment, args.family)
        summary = check_summary(doc, args.target_params)
        if summary["verdict"] != "pass" and not args.ignore_check:
            at = "" if args.target_params is None else f" at N = {args.target_params:.3g}"
            return None, (
                f"family {args.family!r} did not pass its latest scaling check{at} (refit "
                f"#{summary['refit_number']}): {describe_failures(summary)}; "
                "--ignore-check plans anyway"
            )
        facts = read_run_facts(client, experiment.experiment_id, args.family)
    return plan_from_doc(doc, args, facts, ignore_check=args.ignore_check), ""


def run(args: argparse.Namespace) -> int:
    if (args.experiment is None) != (args.family is None):
        raise InputError("a family plan needs both --experiment and --family")
    if args.family is not None:
        plan, refusal = family_plan(args)
        if plan is None:
            print(f"mlflow-scaling plan: {refusal}", file=sys.stderr)
            return EXIT_REFUSED
    else:
        plan = standalone_plan(args)
    print(strict_dumps(plan, indent=2) if args.format == "json" else format_plan(plan))
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``plan`` to the ``mlflow-scaling`` parser."""
    p = subparsers.add_parser(
        "plan",
        help="GPUs, memory per GPU and days to train a target model (exit 1: the family's "
        "scaling check did not pass)",
    )
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                   "sqlite:///mlflow.db)")  # fmt: skip
    p.add_argument("--experiment", default=None, metavar="NAME")
    p.add_argument("--family", default=None, metavar="F")
    p.add_argument("--target-params", type=params_count, default=None)
    p.add_argument("--target-tokens", type=token_count, default=None)
    p.add_argument("--params", type=params_count, default=None, help="standalone: N")
    p.add_argument("--tokens", type=token_count, default=None, help="standalone: D")
    p.add_argument("--budget", type=positive_float, default=None, metavar="C",
                   help="training FLOPs instead of tokens")  # fmt: skip
    p.add_argument("--ignore-check", action="store_true",
                   help="plan even when the family's check did not pass (recorded)")  # fmt: skip
    add_plan_options(p)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=run)
