"""``mlflow-scaling compare``: does the candidate family scale better than the baseline?

Two sources:

* two CSV files, ``mlflow-scaling compare BASE.csv CAND.csv`` (the ``fit`` command's column
  options; nothing is written anywhere);
* MLflow, ``--experiment E --baseline F1 --candidate F2`` (or ``--baseline-experiment`` and
  ``--candidate-experiment``): the families' member runs, and the result is written to a
  comparison run in the candidate's experiment (unless ``--no-log``).

Exit codes: 0 a comparison was made (whatever the verdict), 2 bad input.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..api import compare, family_runs
from ..argtypes import non_negative_int, positive_float
from ..jobs.compare_publish import write_comparison
from ..strict_json import dumps as strict_dumps
from ..tabular import InputError, read_points
from ..tracking.compare_run import build_compare_document, comparison_settings
from ..tracking.compare_run import family_runs as mlflow_family_runs
from ..tracking.reading import read_families, resolve_experiments
from .common import EXIT_OK, add_point_columns, connect, mlflow_errors, uri_of

DEFAULT_N_BOOT = 200


def _g(x: Any) -> str:
    return "-" if x is None else f"{x:.3g}"


def _headline(doc: dict) -> list[str]:
    b, c = doc["baseline"], doc["candidate"]
    lines = [
        f"candidate {c['family']!r} vs baseline {b['family']!r}: {doc['verdict'].upper()} over "
        f"the trained range   ({doc['note']})",
    ]
    upto = doc.get("extrapolated_to")
    past = f"{doc.get('verdict_extrapolated', '-')}"
    if upto is not None:
        past += f" up to {upto:.3g} FLOPs"
    lines.append(f"past the trained range: {past}   ({doc.get('extrapolated_note', '')})")
    shift, slope = doc.get("shift_multiplier"), doc.get("slope_test")
    if shift and slope:
        level = int(round(100 * doc["level"]))
        lines.append(
            f"shift: one compute multiplier m = {shift['value']:.3g} ({level}% interval "
            f"{shift['lo']:.3g}..{shift['hi']:.3g}); slope test: {slope['decision']} "
            f"(F = {slope['statistic']:.3g}, p = {slope['p_value']:.3g})"
        )
    cross = doc["crossover_flops"]
    if cross is not None:
        band = doc.get("crossover_interval")
        lines.append(
            f"crossover: {_g(cross)} FLOPs"
            + (f" (laws' {int(round(100 * doc['level']))}% interval {band[0]:.3g}..{band[1]:.3g})"
               if band else "")
        )  # fmt: skip
    for role, info in (("baseline", b), ("candidate", c)):
        r = info["flops_range"]
        fit = info.get("law_fit") or {}
        law = fit.get("status", "-")
        if law == "misfit":
            law += f" (misses its measured frontier by {fit['largest_miss']:+.1%})"
        lines.append(
            f"{role:<9} {info['family']!r}: phase {info['phase'] or '-'}, check "
            f"{info['check'] or '-'}, law_fit {law}   ({info['runs']} runs, C {r[0]:.3g}.."
            f"{r[1]:.3g})"
        )
    return lines


def format_compare_table(doc: dict) -> str:
    """The readable form of a comparison document."""
    lines = _headline(doc)
    measured = (doc.get("measured") or {}).get("rows") or []
    if measured:
        lines += ["", "measured frontiers (lowest loss reached at each common budget)"]
        lines.append(f"{'budget C':>10} {'L base':>8} {'L cand':>8} {'cand lower':>10} "
                     f"{'noise':>7}  {'':<6}")  # fmt: skip
        for r in measured:
            mark = {1: "lower", -1: "higher", 0: "-"}[r["sign"]]
            lines.append(
                f"{r['flops']:>10.3g} {r['loss_baseline']:>8.4f} {r['loss_candidate']:>8.4f} "
                f"{-np.expm1(-r['diff']):>+10.2%} {r['threshold']:>7.2%}  {mark:<6}"
            )
    level = int(round(100 * doc["level"]))
    lines += ["", "laws (multiplier; past the trained range widened by the extrapolation error)"]
    head = f"({level}% interval)"
    lines.append(f"{'budget C':>10} {'L base':>8} {'L cand':>8} {'multiplier':>10} {head:>19} "
                 f"{'scope':>12}")  # fmt: skip
    for r in doc["budgets"]:
        interval = f"({r['lo']:.3f}, {r['hi']:.3f})"
        lines.append(
            f"{r['flops']:>10.3g} {r['loss_baseline']:>8.4f} {r['loss_candidate']:>8.4f} "
            f"{r['multiplier']:>10.3f} {interval:>19} {r['scope']:>12}"
        )
    for w in doc.get("warnings") or []:
        lines.append(f"warning: {w}")
    if doc.get("compare_run_id"):
        lines.append(
            f"comparison run {doc['compare_run_id']} in experiment "
            f"{doc['candidate'].get('experiment')!r}"
        )
    return "\n".join(lines)


def _families_from_csv(args: argparse.Namespace):
    return [family_runs(read_points(path, n_col=args.n_col, d_col=args.d_col, c_col=args.c_col,
                                    loss_col=args.loss_col), str(path))
            for path in args.files]  # fmt: skip


def _compare(baseline, candidate, args: argparse.Namespace):
    return compare(baseline, candidate, budgets=args.budget, n_boot=args.bootstrap)


def _from_csv(args: argparse.Namespace) -> dict:
    if len(args.files) != 2:
        raise InputError(f"give two CSV files, BASE.csv CAND.csv (got {len(args.files)})")
    doc = _compare(*_families_from_csv(args), args).to_dict()
    doc["baseline"]["file"], doc["candidate"]["file"] = map(str, args.files)
    doc["compare_run_id"] = None
    return doc


def _read_family(client, experiment: str, family: str):
    (exp,) = resolve_experiments(client, [experiment])
    found = [f for f in read_families(client, [exp], [family]) if f.name == family]
    if not found or not found[0].members:
        excluded = len(found[0].excluded) if found else 0
        more = f" ({excluded} runs excluded; see `mlflow-scaling families`)" if excluded else ""
        raise InputError(f"no usable runs of family {family!r} in experiment {exp.name!r}{more}")
    return found[0]


def _from_mlflow(args: argparse.Namespace) -> dict:
    if not (args.baseline and args.candidate):
        raise InputError("name both families: --baseline F1 --candidate F2 (or give two CSVs)")
    base_exp = args.baseline_experiment or args.experiment
    cand_exp = args.candidate_experiment or args.experiment
    if not (base_exp and cand_exp):
        raise InputError(
            "name the experiment: --experiment E (or --baseline-experiment and "
            "--candidate-experiment)"
        )
    with mlflow_errors(uri_of(args)):
        client = connect(args)
        base = _read_family(client, base_exp, args.baseline)
        cand = _read_family(client, cand_exp, args.candidate)
        comparison = _compare(mlflow_family_runs(base), mlflow_family_runs(cand), args)
        settings = comparison_settings(args.bootstrap, comparison.level, 0, args.budget)
        if args.no_log:
            return build_compare_document(comparison, base.experiment, cand.experiment,
                                          run_id=None, settings=settings, digest=None)  # fmt: skip
        return write_comparison(client, comparison, base, cand, settings=settings)


def run(args: argparse.Namespace) -> int:
    if args.files and (args.baseline or args.candidate or args.experiment):
        raise InputError("give either two CSV files or --baseline/--candidate from MLflow, "
                         "not both")  # fmt: skip
    doc = _from_csv(args) if args.files else _from_mlflow(args)
    if args.format == "json":
        print(strict_dumps(doc, indent=2))
    else:
        print(format_compare_table(doc))
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the ``mlflow-scaling`` parser."""
    p = subparsers.add_parser(
        "compare",
        help="does the candidate family scale better than the baseline? compute multiplier, "
        "crossover and verdict (from two CSVs or from MLflow)",
    )
    p.add_argument("files", nargs="*", metavar="CSV", help="BASE.csv CAND.csv (no MLflow)")
    add_point_columns(p)
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)")  # fmt: skip
    p.add_argument("--experiment", default=None, help="experiment of both families")
    p.add_argument("--baseline-experiment", default=None, help="experiment of the baseline")
    p.add_argument("--candidate-experiment", default=None, help="experiment of the candidate")
    p.add_argument("--baseline", default=None, metavar="F1", help="the baseline family")
    p.add_argument("--candidate", default=None, metavar="F2", help="the candidate family")
    p.add_argument(
        "--budget", type=positive_float, nargs="+", metavar="C",
        help="compute budgets in FLOPs (default: from the smallest budget both families cover "
        "to 10x past the larger one's largest run)",
    )  # fmt: skip
    p.add_argument("--bootstrap", type=non_negative_int, default=DEFAULT_N_BOOT,
                   help=f"bootstrap replicates per family (default {DEFAULT_N_BOOT})")  # fmt: skip
    p.add_argument("--no-log", action="store_true",
                   help="MLflow source: do not write the comparison run")  # fmt: skip
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=run)
