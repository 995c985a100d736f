"""`mlflow-scaling`: the command line.

Exit codes: 0 success (or a passing check), 1 a failing check, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from .laws.fitting import DEFAULT_HUBER_DELTA
from .summary import summarize_chinchilla
from .tabular import InputError, read_points

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


def _fmt(x) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


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
        interval = f"   ({_fmt(ci[name][0])}, {_fmt(ci[name][1])})" if name in ci else ""
        lines.append(f"{name:<8}{p[name]:>12.5g}{interval}")
    alloc = summary["allocation"]
    aci = alloc.get("ci", {})
    lines.append(
        f"allocation: N_opt ∝ C^{alloc['a']:.4f}, D_opt ∝ C^{alloc['b']:.4f}"
        + (f"   (a in ({aci['a'][0]:.3f}, {aci['a'][1]:.3f}))" if aci else "")
    )
    if summary.get("budgets"):
        lines.append("")
        header = ("budget C", "N_opt", "D_opt", "D/N", "loss", "lo", "hi")
        widths = (10, 10, 10, 6, 7, 7, 7)
        lines.append(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
        for r in summary["budgets"]:
            lines.append(
                f"{r['flops']:>10.3g} {r['n_opt']:>10.3g} {r['d_opt']:>10.3g} "
                f"{r['tokens_per_param']:>6.1f} {r['loss']:>7.4f} {_fmt(r['lo']):>7} "
                f"{_fmt(r['hi']):>7}"
            )
    if summary.get("predictions"):
        lines.append("")
        lines.append(f"{'N':>10} {'D':>10} {'loss':>7} {'lo':>7} {'hi':>7}")
        for r in summary["predictions"]:
            lines.append(
                f"{r['N']:>10.3g} {r['D']:>10.3g} {r['loss']:>7.4f} {_fmt(r['lo']):>7} "
                f"{_fmt(r['hi']):>7}"
            )
    return "\n".join(lines)


def _cmd_fit(args: argparse.Namespace) -> int:
    points = read_points(
        args.file, n_col=args.n_col, d_col=args.d_col, c_col=args.c_col, loss_col=args.loss_col
    )
    targets = None
    if args.predict:
        t = read_points(
            args.predict, n_col=args.n_col, d_col=args.d_col, c_col=args.c_col, loss_col=None
        )
        targets = (t.n, t.d)
    try:
        summary, _ = summarize_chinchilla(
            points.n,
            points.d,
            points.loss,
            huber_delta=args.huber_delta,
            n_boot=args.bootstrap,
            budgets=args.budget or (),
            targets=targets,
        )
    except ValueError as exc:
        raise InputError(f"{args.file}: {exc}") from None
    summary["file"] = str(args.file)
    if args.format == "json":
        print(json.dumps(summary, indent=2))
    else:
        print(format_fit_table(summary))
    return EXIT_OK


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive finite number")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlflow-scaling", description="Neural scaling laws for MLflow and Lightning."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="fit a scaling law to a CSV of runs (no MLflow needed)")
    fit.add_argument("file", help="CSV with one row per run")
    fit.add_argument("--law", choices=["chinchilla"], default="chinchilla")
    fit.add_argument("--n-col", default="N", help="parameters column (default N)")
    fit.add_argument("--d-col", default="D", help="tokens column (default D)")
    fit.add_argument("--c-col", default=None, help="compute column; D = C/(6N) when D is absent")
    fit.add_argument("--loss-col", default="loss", help="loss column (default loss)")
    fit.add_argument("--huber-delta", type=_positive_float, default=DEFAULT_HUBER_DELTA)
    fit.add_argument(
        "--bootstrap", type=_non_negative_int, default=1000, help="replicates (0: none)"
    )
    fit.add_argument("--predict", default=None, help="CSV of targets with N and D (or C)")
    fit.add_argument("--budget", type=_positive_float, nargs="+", help="compute budgets in FLOPs")
    fit.add_argument("--format", choices=["table", "json"], default="table")
    fit.set_defaults(handler=_cmd_fit)

    demo = sub.add_parser("demo", help="the main job: fit, allocate, predict (README command 1)")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except InputError as exc:
        print(f"mlflow-scaling {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
