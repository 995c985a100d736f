"""The ``families``, ``refit`` and ``watch`` subcommands of ``mlflow-scaling``.

Handlers import MLflow lazily, so ``mlflow-scaling fit`` stays fast. Tracking URI:
``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else MLflow's default
(``sqlite:///mlflow.db``). Exit codes: 0 success, 1 some family failed (``refit``), 2 bad input
or an unreachable tracking server (one line on stderr naming the URI).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import strict_json
from ..argtypes import huber_delta as huber_delta_arg
from ..argtypes import non_negative_float as _non_negative_float
from ..argtypes import non_negative_int as _non_negative_int
from ..argtypes import params_count
from ..argtypes import positive_float as _positive_float
from ..argtypes import positive_int as _positive_int
from ..laws.fitting import DEFAULT_HUBER_DELTA
from ..tabular import InputError
from .shards import parse_shard

if TYPE_CHECKING:
    from .refit import FamilyOutcome

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


# --- argument types --------------------------------------------------------------------------


def _interval(text: str) -> float:
    from .watch import parse_interval

    try:
        return parse_interval(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _duration(text: str) -> float:
    """An interval such as ``10m`` (``_interval``), where zero is allowed."""
    from .watch import parse_interval

    try:
        return parse_interval(text, allow_zero=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _name_list(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no parameter")
    return names


# --- shared helpers --------------------------------------------------------------------------


def _mlflow_errors(uri_of: Any):
    """A context manager turning MLflow and connection errors into one-line InputErrors."""
    from contextlib import contextmanager

    @contextmanager
    def guard():
        try:
            yield
        except InputError:
            raise
        except Exception as exc:
            from mlflow.exceptions import MlflowException

            if not isinstance(exc, MlflowException | ConnectionError | OSError):
                raise
            text = str(exc).strip()
            detail = text.splitlines()[0] if text else type(exc).__name__
            raise InputError(f"MLflow at {uri_of()}: {detail}") from None

    return guard()


def _connect(args: argparse.Namespace):
    """The client of ``--tracking-uri`` for every command: an existing store only (a
    mistyped ``sqlite:///`` path is an error naming it, never a new empty store)."""
    from ..tracking.connection import bound_request_retries, connect, resolve_tracking_uri

    # MLflow prints "View run ... at URL" on set_terminated; keep our stdout to our own output.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    bound_request_retries()  # a server that dies mid-pass is noticed in seconds, not minutes
    args.resolved_uri = resolve_tracking_uri(args.tracking_uri)
    return connect(args.resolved_uri, must_exist=True)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
    )
    p.add_argument(
        "--experiment",
        action="append",
        metavar="NAME",
        help="experiment name (repeatable; default: every active experiment)",
    )
    p.add_argument("--format", choices=["table", "json"], default="table")


def _add_refit_options(p: argparse.ArgumentParser) -> None:
    from .analysis import DEFAULT_N_BOOT
    from .changes import CLOCK_MARGIN_MS, DEFAULT_FULL_CHECK_HOURS

    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--family", action="append", metavar="F", help="only this family (repeatable)"
    )
    which.add_argument("--all", action="store_true", help="every family (the default)")
    p.add_argument("--force", action="store_true", help="fit even when nothing changed")
    p.add_argument(
        "--bootstrap",
        type=_non_negative_int,
        default=DEFAULT_N_BOOT,
        help=f"bootstrap replicates over runs for the intervals (default {DEFAULT_N_BOOT}; "
        "0: none)",
    )
    p.add_argument(
        "--budget",
        type=_positive_float,
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
    p.add_argument(
        "--workers",
        type=_positive_int,
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
        type=_non_negative_float,
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
    p.add_argument(
        "--huber-delta",
        type=huber_delta_arg,
        default=DEFAULT_HUBER_DELTA,
        help="Huber threshold on log residuals: a number (default 1e-3, Epoch's, chosen on real "
        "sweeps) or 'auto' (scaled to the residuals)",
    )
    from ..planning.command import known_gpu

    p.add_argument(
        "--plan-gpu",
        type=known_gpu,
        default=None,
        metavar="NAME",
        help="write scaling/plan.json for every family: its check target on this GPU",
    )


def _settings(args: argparse.Namespace):
    from .analysis import RefitSettings

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


def _range(r: list[float] | None) -> str:
    return "-" if not r else f"{r[0]:.3g}..{r[1]:.3g}"


# --- families --------------------------------------------------------------------------------


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


def _cmd_families(args: argparse.Namespace) -> int:
    from ..tracking.families import (
        DEFAULT_SCALE_PARAMS,
        assign_families,
        list_families,
        suggest_families,
    )
    from ..tracking.reading import resolve_experiments

    with _mlflow_errors(lambda: getattr(args, "resolved_uri", args.tracking_uri)):
        client = _connect(args)
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


# --- refit -----------------------------------------------------------------------------------


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


def _run_pass(args: argparse.Namespace, client, cache=None, should_stop=None, echo=print):
    from .progress import RefitProgress
    from .refit import refit_pass

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


def _cmd_refit(args: argparse.Namespace) -> int:
    from .refit import STATUS_ERROR

    start = time.monotonic()
    with _mlflow_errors(lambda: getattr(args, "resolved_uri", args.tracking_uri)):
        client = _connect(args)
        outcomes = _run_pass(args, client, echo=lambda s: print(s, flush=True))
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


# --- watch -----------------------------------------------------------------------------------


def _cmd_watch(args: argparse.Namespace) -> int:
    from ..tracking.connection import connect
    from .watch import StopFlag, watch

    stop = StopFlag()
    stop.install()
    with _mlflow_errors(lambda: getattr(args, "resolved_uri", args.tracking_uri)):
        _connect(args)  # a wrong URI is a configuration error: say so now, exit 2

    def stamp(text: str) -> None:
        print(f"[{datetime.now().isoformat(timespec='seconds')}] {text}", flush=True)

    def one_pass(client, cache):
        started = time.monotonic()
        outcomes = _run_pass(args, client, cache, should_stop=stop.is_set, echo=stamp)
        if args.format == "json":
            print(strict_json.dumps({"families": [o.to_dict() for o in outcomes]}), flush=True)
        else:
            stamp(pass_summary(outcomes, time.monotonic() - started))
        return outcomes

    def report(number, outcomes, error):
        if error is not None:
            stamp(f"pass {number} failed: {type(error).__name__}: {error}".splitlines()[0])

    stamp(f"watching {args.resolved_uri} every {args.interval:g} s (SIGTERM or Ctrl-C stops)")
    passes = watch(
        lambda: connect(args.resolved_uri, must_exist=True),
        one_pass,
        interval_s=args.interval,
        stop=stop,
        max_passes=args.max_passes,
        on_pass=report,
    )
    why = f" on {stop.signal_name}" if stop.signal_name else ""
    stamp(f"stopped{why} after {passes} pass(es)")
    return EXIT_OK


# --- registration ----------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``families``, ``refit`` and ``watch`` to the ``mlflow-scaling`` parser."""
    fam = subparsers.add_parser(
        "families",
        help="list scaling families in MLflow; propose (--suggest) or tag "
        "(--assign) families for untagged runs",
    )
    _add_common(fam)
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
        type=_non_negative_int,
        default=2,
        help="smallest group proposed as a family (default 2)",
    )
    fam.set_defaults(handler=_cmd_families)

    refit = subparsers.add_parser(
        "refit",
        help="one refit pass: fit changed families and post the fits to MLflow "
        "(exit 1 when a family failed)",
    )
    _add_common(refit)
    _add_refit_options(refit)
    refit.set_defaults(handler=_cmd_refit)

    w = subparsers.add_parser("watch", help="refit passes on a schedule until SIGTERM")
    _add_common(w)
    _add_refit_options(w)
    w.add_argument(
        "--interval",
        type=_interval,
        default=_interval("15m"),
        help="time between pass starts: 30s, 15m, 1h, 1d (default 15m)",
    )
    w.add_argument(
        "--max-passes",
        type=_non_negative_int,
        default=None,
        help="stop after this many passes (default: run until stopped)",
    )
    w.set_defaults(handler=_cmd_watch)
