"""The data-constrained law on the Misfitting sweep's repeated-data runs (Li et al. 2025).

Reads ``../shared/data/dev_sweeps/misfitting2025_final.csv`` (open_lm, 12M–1.2B parameters,
``total_epochs`` 1–125; unique tokens U = D / total_epochs). Development data: it is absent from
a user's clone, and then this script says so and stops. One run per (model, D, epochs): the best
learning rate (lowest final loss) of the sweep's peak_lr values, so the law sees tuned runs.

Three treatments, each fitted by the same robust method (Huber δ = 1e-3 on log-loss, summed):

* fresh: Chinchilla on (N, D), every token counted as new (what the project does today);
* unique: Chinchilla on (N, U), repeated tokens worth nothing;
* data-constrained: L = E + A/N'^α + B/D'^β (:mod:`mlflow_scaling.laws.data_constrained`),
  with its default prior on R*_D, R*_N and without it ("no prior").

Splits: fit on runs with at most k epochs and predict the rest (k = 4, 16), and fit on the
smaller models and predict the larger ones: N ≤ 100M parameters (4 sizes, 57M–94M with
embeddings), and N_no_emb ≤ 100M (the 7 models up to "100m"; 200m–1b held out). ``--min-tokens
5e8`` fits every treatment only on runs of ≥ 500 steps of the sweep's 1M-token batch: its
shorter runs are where a smaller model still beats a larger one (2 epochs of 131M tokens: 5.20
at 12m, 5.26 at 25m), which no law additive in N and D follows. The error
is the mean relative error |L̂ − L| / L over the held-out runs. Then the full-data fit with a
bootstrap over runs gives R*_D, R*_N and the 10 %-epoch count 1 + R*_D·ln 10, beside the
paper's R*_D ≈ 15.4, R*_N ≈ 5.3 (Muennighoff et al. 2023). First, the same splits on a family
simulated from the law with the paper's constants, where the answer is known.

    PYTHONPATH=$PWD OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_data_constrained.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_sweeps_data import SWEEPS_DIR  # noqa: E402

from mlflow_scaling.laws import fit_chinchilla  # noqa: E402
from mlflow_scaling.laws.data_constrained import DataConstrainedLaw  # noqa: E402
from mlflow_scaling.laws.data_constrained_fit import (  # noqa: E402
    PAPER_R_STAR_D,
    PAPER_R_STAR_N,
    fit_data_constrained,
)

CSV = SWEEPS_DIR / "misfitting2025_final.csv"
SMALL_MODEL_MAX = 1.0e8


def load_runs(size_col: str, all_lr: bool) -> pd.DataFrame:
    """One row per (model, D, epochs) at its best learning rate (or every run), U = D / epochs."""
    frame = pd.read_csv(CSV)
    conflicting = frame.groupby(["model", "D", "loss"])["total_epochs"].transform("nunique") > 1
    if conflicting.any():
        models = sorted(frame.loc[conflicting, "model"].unique())
        print(f"dropped {int(conflicting.sum())} rows whose (model, D, loss) appears with "
              f"different total_epochs (one run, two labels): {models}")  # fmt: skip
        frame = frame[~conflicting]
    best = frame.copy() if all_lr else (
        frame.loc[frame.groupby(["model", "D", "total_epochs"])["loss"].idxmin()].copy()
    )  # fmt: skip
    best["U"] = best["D"] / best["total_epochs"]
    best["N_fit"] = best[size_col]
    return best.reset_index(drop=True)


def simulated_runs(noise: float = 0.005, seed: int = 0) -> pd.DataFrame:
    """Known truth: Chinchilla's constants with the paper's R*_D = 15.4, R*_N = 5.3.

    6 sizes (1e7–2e9) × U ∈ {1e8, 1e9, 1e10} × epochs {1, 2, 4, 8, 16, 48, 128}, log-normal
    noise of ``noise`` on the loss.
    """
    truth = DataConstrainedLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28,
                               r_star_d=PAPER_R_STAR_D, r_star_n=PAPER_R_STAR_N)  # fmt: skip
    sizes, corpora = np.geomspace(1e7, 2e9, 6), np.array([1e8, 1e9, 1e10])
    epochs = np.array([1, 2, 4, 8, 16, 48, 128], dtype=float)
    n, u, ep = (g.ravel() for g in np.meshgrid(sizes, corpora, epochs, indexing="ij"))
    rng = np.random.default_rng(seed)
    loss = truth.predict(n, u * ep, u) * np.exp(rng.normal(0.0, noise, n.size))
    return pd.DataFrame({"N": n, "N_fit": n, "D": u * ep, "U": u, "total_epochs": ep,
                         "loss": loss})  # fmt: skip


def print_splits(runs: pd.DataFrame, min_tokens: float = 0.0) -> None:
    print(f"{'split':<26} {'train':>5} {'test':>5} {'fresh':>7} {'unique':>7} {'constr.':>7} "
          f"{'no prior':>8}")  # fmt: skip
    for name, train, test in splits(runs, min_tokens):
        e = errors(train, test)
        print(f"{name:<26} {len(train):>5} {len(test):>5} {e['fresh']:>7.2%} "
              f"{e['unique']:>7.2%} {e['constrained']:>7.2%} {e['no prior']:>8.2%}")  # fmt: skip


def errors(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, float]:
    """Mean relative error on ``test`` of the three treatments fitted on ``train``."""
    n, d, u, y = (train[c].to_numpy(float) for c in ("N_fit", "D", "U", "loss"))
    tn, td, tu, ty = (test[c].to_numpy(float) for c in ("N_fit", "D", "U", "loss"))
    treatments = {
        "fresh": lambda: fit_chinchilla(n, d, y).law.predict(tn, td),
        "unique": lambda: fit_chinchilla(n, u, y).law.predict(tn, tu),
        "constrained": lambda: fit_data_constrained(n, d, u, y).predict(tn, td, tu),
        "no prior": lambda: fit_data_constrained(n, d, u, y, prior_sigma=None).predict(tn, td, tu),
    }
    out = {}
    for name, predict in treatments.items():
        try:
            out[name] = float(np.mean(np.abs(predict() - ty) / ty))
        except ValueError as err:  # a treatment whose fit diverges is reported, not hidden
            print(f"  {name}: fit failed: {err}")
            out[name] = float("nan")
    return out


def splits(runs: pd.DataFrame, min_tokens: float = 0.0):
    """(name, train, test): the training side keeps only runs of at least ``min_tokens``."""
    long = runs["D"] >= min_tokens
    for k in (4, 16):
        keep = runs["total_epochs"] <= k
        yield f"epochs <= {k} -> > {k}", runs[keep & long], runs[~keep]
    small = runs["N"] <= SMALL_MODEL_MAX
    yield "N <= 100M -> larger", runs[small & long], runs[~small]
    if "N_no_emb" in runs:  # the real sweep: its 7 smallest models (12m-100m) -> 200m-1b
        small = runs["N_no_emb"] <= SMALL_MODEL_MAX
        yield "N_no_emb <= 100M -> larger", runs[small & long], runs[~small]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--size-col", default="N", choices=["N", "N_no_emb"])
    parser.add_argument("--all-lr", action="store_true", help="every run, not the best lr")
    parser.add_argument("--min-tokens", type=float, default=0.0,
                        help="fit only on runs of at least this many tokens (the held-out "
                             "side keeps every run); 5e8: only runs of >= 500 steps")  # fmt: skip
    args = parser.parse_args()
    print("simulated family (known truth: R*_D = 15.4, R*_N = 5.3, 0.5 % noise), 126 runs:")
    print_splits(simulated_runs())
    print()
    if not CSV.is_file():
        print(f"no development data: {CSV} is absent (../shared is not beside this checkout)")
        return 0
    runs = load_runs(args.size_col, args.all_lr)
    which = "every learning rate" if args.all_lr else "best learning rate per model, D, epochs"
    repeating = int((runs.total_epochs > 1).sum())
    print(f"{len(runs)} runs ({which}), {repeating} repeating their data; N = {args.size_col}; "
          f"fitted on runs of >= {args.min_tokens:.3g} tokens")  # fmt: skip
    print_splits(runs, args.min_tokens)
    t0 = time.perf_counter()
    n, d, u, y = (runs[c].to_numpy(float) for c in ("N_fit", "D", "U", "loss"))
    fit = fit_data_constrained(n, d, u, y, n_boot=args.n_boot, seed=0)
    law, ci = fit.law, fit.intervals
    print(f"\nall runs, {args.n_boot} bootstrap replicates over runs "
          f"({time.perf_counter() - t0:.1f} s):")  # fmt: skip
    print(f"  E={law.E:.3f} A={law.A:.4g} B={law.B:.4g} alpha={law.alpha:.3f} beta={law.beta:.3f}")
    rows = (("R*_D", "r_star_d", PAPER_R_STAR_D), ("R*_N", "r_star_n", PAPER_R_STAR_N),
            ("10 %-epochs", "epochs_worth_tenth", 1 + PAPER_R_STAR_D * np.log(10)))  # fmt: skip
    for label, key, paper in rows:
        value = getattr(fit, key) if key == "epochs_worth_tenth" else getattr(law, key)
        lo, hi = ci[key]
        print(f"  {label:<12} {value:8.2f}  95% [{lo:.2f}, {hi:.2f}]   paper {paper:.2f}")
    print(f"  R*_N identified (some run larger than N_U): {fit.r_star_n_identified}")
    print(f"  at the upper bound 1e8 (no discount found; a floor): {list(fit.at_bound) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
