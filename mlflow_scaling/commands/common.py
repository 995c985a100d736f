"""What every subcommand shares: exit codes, number formats, the CSV column options, and the
MLflow connection with its one-line errors.

Exit codes: 0 success (or a passing check), 1 a failing check, a refused plan or a failed
family, 2 bad input or an unreachable tracking server, 3 an internal error.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..tabular import InputError, Points
from ..tracking import connection

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


def fmt(x) -> str:
    """A number in 4 significant digits, ``-`` for None and ``n/a`` for inf or nan."""
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return "n/a"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def fixed(x: float, decimals: int) -> str:
    """``x`` with fixed decimals where that reads well, else in 4 significant digits."""
    return f"{x:.{decimals}f}" if 1e-3 <= abs(x) < 1e5 else f"{x:.4g}"


def warn(command: str, points: Points) -> None:
    for warning in points.warnings:
        print(f"mlflow-scaling {command}: warning: {warning}", file=sys.stderr)


def add_point_columns(p: argparse.ArgumentParser) -> None:
    """The CSV column options of ``fit``, ``check`` and ``compare``."""
    p.add_argument("--n-col", default="N", help="parameters column (default N)")
    p.add_argument("--d-col", default="D", help="tokens column (default D)")
    p.add_argument(
        "--c-col",
        default=None,
        help="compute column: with a D column, the compute axis f(N) = C/D is learned from it; "
        "without one, D = C/(6N)",
    )
    p.add_argument("--loss-col", default="loss", help="loss column (default loss)")


@contextmanager
def mlflow_errors(uri_of: Callable[[], str | None]) -> Iterator[None]:
    """Turn MLflow and connection errors into one-line InputErrors naming the URI."""
    try:
        yield
    except InputError:
        raise
    except Exception as exc:
        from mlflow.exceptions import MlflowException  # reason: MLflow loads only when used

        if not isinstance(exc, MlflowException | ConnectionError | OSError):
            raise
        text = str(exc).strip()
        detail = text.splitlines()[0] if text else type(exc).__name__
        raise InputError(f"MLflow at {uri_of()}: {detail}") from None


def uri_of(args: argparse.Namespace) -> Callable[[], str | None]:
    """The URI a command's errors name: the resolved one once known, else the option."""
    return lambda: getattr(args, "resolved_uri", args.tracking_uri)


def connect(args: argparse.Namespace):
    """The client of ``--tracking-uri`` for every command: an existing store only (a
    mistyped ``sqlite:///`` path is an error naming it, never a new empty store)."""
    # MLflow prints "View run ... at URL" on set_terminated; keep our stdout to our own output.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    connection.bound_request_retries()  # a dead server is noticed in seconds, not minutes
    args.resolved_uri = connection.resolve_tracking_uri(args.tracking_uri)
    return connection.connect(args.resolved_uri, must_exist=True)


def add_tracking_options(p: argparse.ArgumentParser) -> None:
    """``--tracking-uri``, repeatable ``--experiment`` and ``--format`` (families, refit, watch)."""
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
