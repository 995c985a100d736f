"""``mlflow-scaling phases``: cold start, scaling or plateau along one axis of a CSV."""

from __future__ import annotations

import argparse

from ..argtypes import positive_float
from ..laws.phases import detect_phases
from ..strict_json import dumps as strict_dumps
from ..tabular import InputError, numeric_column, read_csv
from .common import EXIT_OK


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


def run(args: argparse.Namespace) -> int:
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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``phases`` to the ``mlflow-scaling`` parser."""
    phases = subparsers.add_parser("phases", help="cold start, scaling or plateau along one axis")
    phases.add_argument("file", help="CSV with one row per run")
    phases.add_argument("--x-col", default="N", help="the axis: N, D or C column (default N)")
    phases.add_argument("--loss-col", default="loss")
    phases.add_argument(
        "--flat-drop-per-decade", type=positive_float, default=0.02,
        help="a segment is flat when loss falls less than this fraction per decade",
    )  # fmt: skip
    phases.add_argument(
        "--chance-loss", type=positive_float, default=None,
        help="loss of a uniform guess (e.g. ln(vocab)); tells a cold start from a plateau",
    )  # fmt: skip
    phases.add_argument("--format", choices=["table", "json"], default="table")
    phases.set_defaults(func=run)
