"""``mlflow-scaling watch``: refit passes on a schedule until SIGTERM (:mod:`..jobs.watch`)."""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from .. import strict_json
from ..argtypes import non_negative_int
from ..jobs.watch import StopFlag, parse_interval, watch
from ..tracking.connection import connect as connect_uri
from .common import EXIT_OK, add_tracking_options, connect, mlflow_errors, uri_of
from .refit import add_refit_options, pass_summary, run_pass


def _interval(text: str) -> float:
    try:
        return parse_interval(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    stop = StopFlag()
    stop.install()
    with mlflow_errors(uri_of(args)):
        connect(args)  # a wrong URI is a configuration error: say so now, exit 2

    def stamp(text: str) -> None:
        print(f"[{datetime.now().isoformat(timespec='seconds')}] {text}", flush=True)

    def one_pass(client, cache):
        started = time.monotonic()
        outcomes = run_pass(args, client, cache, should_stop=stop.is_set, echo=stamp)
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
        lambda: connect_uri(args.resolved_uri, must_exist=True),
        one_pass,
        interval_s=args.interval,
        stop=stop,
        max_passes=args.max_passes,
        on_pass=report,
    )
    why = f" on {stop.signal_name}" if stop.signal_name else ""
    stamp(f"stopped{why} after {passes} pass(es)")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``watch`` to the ``mlflow-scaling`` parser."""
    w = subparsers.add_parser("watch", help="refit passes on a schedule until SIGTERM")
    add_tracking_options(w)
    add_refit_options(w)
    w.add_argument(
        "--interval",
        type=_interval,
        default=_interval("15m"),
        help="time between pass starts: 30s, 15m, 1h, 1d (default 15m)",
    )
    w.add_argument(
        "--max-passes",
        type=non_negative_int,
        default=None,
        help="stop after this many passes (default: run until stopped)",
    )
    w.set_defaults(func=run)
