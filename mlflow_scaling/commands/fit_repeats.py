"""``mlflow-scaling fit --unique-col``: the data-constrained law of a CSV (part of ``fit``).

The library call is :func:`mlflow_scaling.api.fit_data_constrained`; this module reads the CSV,
refuses the options that do not apply, and prints the table or the JSON.
"""

from __future__ import annotations

import argparse

from ..api import DEFAULT_DC_N_BOOT, fit_data_constrained
from ..laws.data_constrained import WORTH_FRACTION
from ..strict_json import dumps as strict_dumps
from ..tabular import InputError, read_csv
from .common import EXIT_OK, fmt

_NAMES = (("E", "E"), ("A", "A"), ("B", "B"), ("alpha", "alpha"), ("beta", "beta"),
          ("r_star_d", "R*_D"), ("r_star_n", "R*_N"))  # fmt: skip


def _interval(ci: dict, name: str) -> str:
    return f"   ({fmt(ci[name][0])}, {fmt(ci[name][1])})" if name in ci else ""


def format_data_constrained(doc: dict) -> str:
    """The readable form of :meth:`~mlflow_scaling.api.DataConstrainedResult.to_dict`."""
    head = (f"law: data-constrained L(N, D, U) = E + A/N'^alpha + B/D'^beta   ({doc['n_points']} "
            f"rows, {doc['n_repeated']} repeat their data, Huber delta {doc['huber_delta']:g}, "
            f"objective {doc['objective']:.6e})")  # fmt: skip
    lines = [head]
    if not doc["identified"]:
        lines.append(f"note: {doc['note']}")
    ci, p = doc["intervals"], doc["params"]
    if ci:
        lines.append(f"{'param':<8}{'value':>12}   {round(doc['level'] * 100)}% interval")
    for key, label in _NAMES:
        if key in p:
            lines.append(f"{label:<8}{p[key]:>12.5g}{_interval(ci, key)}")
    if doc["identified"]:
        lines.append(
            f"one more epoch is worth less than {WORTH_FRACTION:.0%} of fresh data after "
            f"{doc['epochs_worth_tenth']:.4g} epochs (1 + R*_D·ln 10)"
            + _interval(ci, "epochs_worth_tenth")
        )
        prior = doc.get("prior") or {}
        if prior.get("leans_on_prior"):
            alone = prior["without_prior"]
            lines.append(
                f"note: R*_D leans on the prior: the runs alone put it at {alone['r_star_d']:.4g} "
                f"(R*_N {alone['r_star_n']:.4g}); the prior is Muennighoff et al.'s R*_D = "
                f"{prior['r_star_d']:g}, R*_N = {prior['r_star_n']:g} (σ = {prior['sigma_log']:g} "
                "in log), and the interval is the runs' scatter around it"
            )
        for name in doc["at_bound"]:
            lines.append(f"note: {name} is at its bound (1e8): the runs show no discount there; "
                         "read it as a floor, not an estimate")  # fmt: skip
        if not doc["r_star_n_identified"]:
            lines.append("note: R*_N is not identified: no run is larger than the "
                         "compute-optimal size for its unique tokens")  # fmt: skip
    rows = doc.get("data_budget")
    if rows:
        lines += ["", f"data budget: U = {rows[0]['unique_tokens']:.4g} unique tokens"]
        header = ("budget C", "N_opt", "D_opt", "epochs", "loss", "unlimited", "given up")
        lines.append(" ".join(f"{h:>10}" for h in header))
        for r in rows:
            values = (r["flops"], r["n_opt"], r["d_opt"], r["epochs"], r["loss"],
                      r["unlimited_loss"], r["loss_given_up"])  # fmt: skip
            lines.append(" ".join(f"{v:>10.4g}" for v in values))
        lines.append("given up: the loss above the compute-optimal run on unlimited fresh data "
                     "at the same budget")  # fmt: skip
    return "\n".join(lines)


def run_data_constrained(args: argparse.Namespace) -> int:
    """``fit`` with ``--unique-col``."""
    if args.file is None or args.dataset is not None:
        raise InputError("--unique-col needs a CSV file with the runs' unique tokens (the "
                         "bundled datasets have none)")  # fmt: skip
    if args.predict:
        raise InputError("--predict does not go with --unique-col; use --unique-tokens and "
                         "--budget for the data-constrained allocation")  # fmt: skip
    n_boot = DEFAULT_DC_N_BOOT if args.bootstrap is None else args.bootstrap
    result = fit_data_constrained(
        read_csv(args.file), unique_col=args.unique_col, run_col=args.run_col,
        unique_tokens=args.unique_tokens, budgets=args.budget or (), n_boot=n_boot,
        huber_delta=args.huber_delta, source=str(args.file), n_col=args.n_col,
        d_col=args.d_col, c_col=args.c_col, loss_col=args.loss_col,
    )  # fmt: skip
    doc = {**result.to_dict(), "file": args.file}
    print(strict_dumps(doc, indent=2) if args.format == "json" else format_data_constrained(doc))
    return EXIT_OK
