"""`mlflow-scaling`: the command line, one thin module per subcommand.

Each module exposes ``register(subparsers)`` (adds its subparser, with ``func=run``) and
``run(args) -> int``: parse, call a library function, print. Exit codes
(:mod:`.common`): 0 success (or a passing check), 1 a failing check, a refused plan or a failed
family, 2 bad input, 3 an internal error (one line; the traceback goes to a file, see
:mod:`..crash_log`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..argtypes import ScalingArgumentParser
from ..crash_log import one_line, write_traceback
from ..tabular import InputError
from . import check, compare, downstream, families, fit, hparams, phases, plan, refit, watch
from .common import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK

SUBCOMMANDS = (fit, phases, check, downstream, families, refit, watch, plan, compare, hparams)
"""In the order ``mlflow-scaling --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = ScalingArgumentParser(
        prog="mlflow-scaling", description="Neural scaling laws for MLflow and Lightning."
    )
    parser.add_argument("--version", action="version", version=f"mlflow-scaling {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.func
    try:
        return run(args)
    except InputError as exc:
        message = " ".join(str(exc).split("\n"))  # one line, whatever the culprit's name holds
        print(f"mlflow-scaling {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # a bug, not the input: one line, the traceback in a file
        where = write_traceback(exc, args.command)
        print(f"mlflow-scaling {args.command}: internal error: {one_line(exc)} (full traceback "
              f"in {where})", file=sys.stderr)  # fmt: skip
        return EXIT_INTERNAL
