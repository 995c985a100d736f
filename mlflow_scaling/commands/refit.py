"""``mlflow-scaling refit``: one refit pass (:func:`..jobs.refit.refit_pass`): fit the changed
families and post the fits to MLflow.

Tracking URI: ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else MLflow's default
(``sqlite:///mlflow.db``). Exit codes: 0 success, 1 some family failed, 2 bad input or an
unreachable tracking server (one line on stderr naming the URI).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from .. import strict_json
from ..argtypes import huber_delta as huber_delta_arg
from ..argtypes import (
    non_negative_float,
    non_negative_int,
    params_count,
    positive_float,
    positive_int,
)
from ..jobs.analysis import DEFAULT_N_BOOT, RefitSettings
from ..jobs.changes import CLOCK_MARGIN_MS, DEFAULT_FULL_CHECK_HOURS
from ..jobs.outcome import STATUS_ERROR, FamilyOutcome
from ..jobs.progress import RefitProgress
from ..jobs.refit import refit_pass
from ..jobs.shards import parse_shard
from ..jobs.watch import parse_interval
from ..laws.fitting import DEFAULT_HUBER_DELTA
from ..planning.family_plan import known_gpu
from .common import EXIT_FAIL, EXIT_OK, add_tracking_options, connect, mlflow_errors, uri_of


def _duration(text: str) -> float:
    """An interval such as ``10m`` (``_interval``), where zero is allowed."""
    try:
        return parse_interval(text, allow_zero=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_refit_options(p: argparse.ArgumentParser) -> None:
    """The options of ``refit`` and ``watch``: which families and what to fit, how the pass
    runs and reads, and the analysis."""
    _add_selection_options(p)
    _add_pass_options(p)
    _add_analysis_options(p)


def _add_selection_options(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--family", action="append", metavar="F", help="only this family (repeatable)"
    )
    which.add_argument("--all", action="store_true", help="every family (the default)")
    p.add_argument("--force", action="store_true", help="fit even when nothing changed")
    p.add_argument(
        "--bootstrap",
        type=non_negative_int,
        default=DEFAULT_N_BOOT,
        help=f"bootstrap replicates over runs for the intervals (default {DEFAULT_N_BOOT}; "
        "0: none)",
    )
    p.add_argument(
        "--budget",
        type=positive_float,
        nargs="+",
        metavar="C",
        help="compute budgets (FLOPs) for predictions.csv (default: half-decades from the "
        "smallest run to 100x the largest)",
    )
    p.add_argument(
        "--target-params",
        type=params_count,
        default=None,
        help="model size the scaling check predicts, for families whose fit run has no "
        "scaling.target_params tag (default: 10x the family's largest run)",
    )


def _add_pass_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="families analysed at once in worker processes (default 1: in this process)",
    )
    p.add_argument(
        "--no-curves", action="store_true", help="skip Approach 1 (do not read metric histories)"
    )
    p.add_argument(
        "--shard",
        type=parse_shard,
        default=None,
        metavar="I/N",
        help="only the families whose stable hash falls in shard I of N (0 <= I < N): N "
        "processes, e.g. the pods of a Kubernetes Indexed Job, split the families",
    )
    p.add_argument(
        "--full-check",
        action="store_true",
        help="read every member run now (a pass otherwise reads only the runs that started, "
        "ended or were deleted since the last pass; docs/reference.md, 'The quick check')",
    )
    p.add_argument(
        "--full-check-every",
        type=non_negative_float,
        default=DEFAULT_FULL_CHECK_HOURS,
        metavar="HOURS",
        help="read every member run when the experiment's last full check is older than this "
        f"(default {DEFAULT_FULL_CHECK_HOURS:g}; 0: every pass)",
    )
    p.add_argument(
        "--clock-margin",
        type=_duration,
        default=CLOCK_MARGIN_MS / 1000,
        metavar="DURATION",
        help="how far behind this machine's clock a training machine's clock may run: the "
        "quick check also reads runs that started or ended this long before the last pass "
        "(default 10m; 0s, 30s, 15m, 1h; a run whose clock is further behind waits for the "
        "next full check)",
    )


def _add_analysis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--huber-delta",
        type=huber_delta_arg,
        default=DEFAULT_HUBER_DELTA,
        help="Huber threshold on log residuals: a number (default 1e-3, Epoch's, chosen on real "
        "sweeps) or 'auto' (scaled to the residuals)",
    )
    p.add_argument(
        "--plan-gpu",
        type=known_gpu,
        default=None,
        metavar="NAME",
        help="write scaling/plan.json for every family: its check target on this GPU",
    )


def _settings(args: argparse.Namespace):
    return RefitSettings(
        n_boot=args.bootstrap,
        budgets=tuple(sorted(args.budget or ())),
        target_params=args.target_params,
        curves=not args.no_curves,
        huber_delta=args.huber_delta,
        plan_gpu=args.plan_gpu,
    )


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def format_outcome(o: FamilyOutcome) -> str:
    return (
        f"{o.experiment[:16]:<16} {o.family[:24]:<24} {o.status:<17} "
        f"{_fmt(o.refit_number):>5} {_fmt(o.phase):<17} {_fmt(o.check):<5} "
        f"{o.n_members:>5} {o.n_excluded:>5} {o.seconds:>7.1f}  {o.message}"
    )


OUTCOME_HEADER = (
    f"{'experiment':<16} {'family':<24} {'status':<17} {'refit':>5} {'phase':<17} "
    f"{'check':<5} {'used':>5} {'excl':>5} {'seconds':>7}  message"
)


def pass_summary(outcomes: Sequence[FamilyOutcome], seconds: float) -> str:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no families"
    return f"refit pass: {len(outcomes)} families ({parts}) in {seconds:.1f} s"


def run_pass(args: argparse.Namespace, client, cache=None, should_stop=None, echo=print):
    table = args.format == "table"
    if table:
        echo(OUTCOME_HEADER)
    progress = RefitProgress()

    def show(o):
        progress.done(o)
        if table:
            echo(format_outcome(o))

    return refit_pass(
        client,
        experiments=args.experiment,
        families=args.family,
        force=args.force,
        settings=_settings(args),
        curve_cache=cache,
        on_outcome=show,
        should_stop=should_stop,
        workers=args.workers,
        shard=args.shard,
        on_family_start=progress.start,
        full_check=args.full_check,
        full_every_ms=int(args.full_check_every * 3600 * 1000),
        clock_margin_ms=int(args.clock_margin * 1000),
    )


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    with mlflow_errors(uri_of(args)):
        client = connect(args)
        outcomes = run_pass(args, client, echo=lambda s: print(s, flush=True))
    elapsed = time.monotonic() - start
    if args.format == "json":
        print(
            strict_json.dumps(
                {"seconds": elapsed, "families": [o.to_dict() for o in outcomes]}, indent=2
            )
        )
    else:
        print(pass_summary(outcomes, elapsed))
    return EXIT_FAIL if any(o.status == STATUS_ERROR for o in outcomes) else EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``refit`` to the ``mlflow-scaling`` parser."""
    refit = subparsers.add_parser(
        "refit",
        help="one refit pass: fit changed families and post the fits to MLflow "
        "(exit 1 when a family failed)",
    )
    add_tracking_options(refit)
    add_refit_options(refit)
    refit.set_defaults(func=run)
