"""``mlflow-scaling hparams``: the learning rate and batch to use at a target, from a sweep CSV.

One row per run with N, D, the peak learning rate, the loss and (optionally) the global batch in
tokens. Without a batch column (``--batch-col``, default ``batch_tokens`` when the file has it)
only the learning rate is fitted. The science is :mod:`mlflow_scaling.laws.hparams`; this
module reads the file, calls :func:`mlflow_scaling.api.hparams` and prints its result.

Exit codes: 0 a fit was made, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys

from .. import api
from ..api import DEFAULT_BATCH_COL, HparamsResult
from ..argtypes import params_count, token_count
from ..strict_json import dumps as strict_dumps
from ..tabular import InputError, read_csv, read_targets
from .common import EXIT_OK


def _g(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def _span(pair) -> str:
    return "-" if pair is None else f"{pair[0]:.3g}..{pair[1]:.3g}"


def format_hparams_table(result: HparamsResult) -> str:
    """The readable form: cells, laws, notes and predictions."""
    doc = result.to_dict()
    head = f"{'N':>9} {'D':>9} {'runs':>4} {'lr_opt':>9} {'lr interval':>17} {'lr band 0.25%':>17}"
    lines = [head + f" {'batch_opt':>9} {'batch band 0.25%':>19} {'loss_opt':>8}"]
    for c in doc["cells"]:
        lines.append(
            f"{c['N']:>9.3g} {c['D']:>9.3g} {c['runs']:>4} {_g(c['lr_opt']):>9} "
            f"{_span([c['lr_lo'], c['lr_hi']]) if c['lr_lo'] and c['lr_hi'] else '-':>17} "
            f"{_span(c['band_025']['lr']):>17} {_g(c['batch_opt']):>9} "
            f"{_span(c['band_025']['batch']):>19} {c['loss_opt']:>8.4f}"
        )
    lines += ["", "laws:"]
    for chosen in (result.fit.lr_law, result.fit.batch_law):
        if chosen is not None:
            lines.append("  " + chosen.describe())
    if result.notes:
        lines += ["", "named (not in the laws):"] + [f"  {note}" for note in result.notes]
    for p in doc["predictions"]:
        lines += ["", f"at N={p['N']:.3g}, D={p['D']:.3g}:"]
        lines.append(f"  lr {_g(p['lr'])} ({_g(p['lr_lo'])}..{_g(p['lr_hi'])}), 0.25 % band "
                     f"{_span(p['band_025']['lr'])}")  # fmt: skip
        if p["batch_tokens"] is not None:
            interval = f"{_g(p['batch_lo'])}..{_g(p['batch_hi'])}"
            band = _span(p["band_025"]["batch"])
            lines.append(f"  batch {_g(p['batch_tokens'])} tokens ({interval}), 0.25 % band {band}")
        worst = p["loss_penalty"]["max"]
        if worst is not None:
            lines.append(f"  loss penalty at the interval's worst corner: {worst:.3%}")
    return "\n".join(lines)


def _targets(args: argparse.Namespace) -> tuple[tuple[float, float], ...]:
    given = (args.target_params is not None, args.target_tokens is not None)
    if any(given) and args.predict:
        raise InputError("give --target-params with --target-tokens, or --predict, not both")
    if any(given) and not all(given):
        raise InputError("--target-params and --target-tokens go together")
    if all(given):
        return ((args.target_params, args.target_tokens),)
    if args.predict:
        t = read_targets(args.predict, n_col=args.n_col, d_col=args.d_col)
        return tuple(zip(t.n.tolist(), t.d.tolist(), strict=True))
    return ()


def run(args: argparse.Namespace) -> int:
    result = api.hparams(
        read_csv(args.file),
        source=str(args.file),
        n_col=args.n_col,
        d_col=args.d_col,
        lr_col=args.lr_col,
        batch_col=args.batch_col,
        loss_col=args.loss_col,
        targets=_targets(args),
    )
    if args.format == "json":
        for note in result.notes:
            print(f"mlflow-scaling hparams: note: {note}", file=sys.stderr)
        print(strict_dumps(result.to_dict(), indent=2))
    else:
        print(format_hparams_table(result))
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hparams`` to the ``mlflow-scaling`` parser."""
    p = subparsers.add_parser(
        "hparams", help="learning-rate and batch scaling laws from a sweep CSV (no MLflow needed)"
    )
    p.add_argument("file", help="CSV with one row per run")
    p.add_argument("--n-col", default="N", help="parameters column (default N)")
    p.add_argument("--d-col", default="D", help="tokens column (default D)")
    p.add_argument("--lr-col", default="lr", help="peak learning-rate column (default lr)")
    p.add_argument(
        "--batch-col", default=None,
        help=f"global batch in tokens (default {DEFAULT_BATCH_COL} when the file has it; "
        "without one only the learning rate is fitted)",
    )  # fmt: skip
    p.add_argument("--loss-col", default="loss", help="loss column (default loss)")
    p.add_argument("--target-params", type=params_count, default=None)
    p.add_argument("--target-tokens", type=token_count, default=None)
    p.add_argument("--predict", default=None, help="CSV of targets with N and D columns")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=run)
