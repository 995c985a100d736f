"""A family that repeats its data, simulated from the data-constrained law (known R*_D, R*_N)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlflow_scaling.laws.data_constrained import DataConstrainedLaw

TRUTH = DataConstrainedLaw(
    E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, r_star_d=15.0, r_star_n=5.0
)
SIZES = (3e7, 1e8, 3e8)
CORPORA = (1e8, 1e9)
EPOCHS = (1, 2, 4, 8, 16, 40)


def repeated_runs(
    noise: float = 0.002, seed: int = 0, epochs=EPOCHS, sizes=SIZES, corpora=CORPORA
) -> pd.DataFrame:
    """One row per run: run, N, D, U, loss (sizes x corpora x the epoch counts)."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        for u in corpora:
            for e in epochs:
                d = u * e
                loss = float(TRUTH.predict(n, d, u)) * float(np.exp(rng.normal(0.0, noise)))
                rows.append({"run": f"N{n:.0e}-U{u:.0e}-x{e}", "N": n, "D": d, "U": u,
                             "loss": loss})  # fmt: skip
    return pd.DataFrame(rows)


LIMITED_SIZES = (1e7, 1e8, 3e8)
LIMITED_EPOCHS = (1, 4, 16, 32, 64)
LIMITED_CORPUS = 1e8


def limited_runs(noise: float = 0.002, seed: int = 1) -> pd.DataFrame:
    """One corpus of 1e8 tokens, 3 sizes x 1-64 epochs (15 runs): at large compute the runs
    repeat their data 32-64 times and the compute frontier levels off, a data-limited plateau."""
    return repeated_runs(noise, seed, LIMITED_EPOCHS, LIMITED_SIZES, (LIMITED_CORPUS,))
