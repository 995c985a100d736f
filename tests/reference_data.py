"""The reference data bundled with the package (``mlflow_scaling.datasets``), for tests."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from mlflow_scaling.datasets import BNSL_ADDITION_CSV, CHINCHILLA_CSV, data_path, load_chinchilla

# Epoch AI's optimum on the Chinchilla runs (their notebook; see mlflow_scaling.datasets).
EPOCH = {"E": 1.8172, "A": 477.8, "B": 2143.0, "alpha": 0.3473, "beta": 0.3672}
EPOCH_OBJECTIVE = 1.018274e-3
# Besiroglu et al. 2024, Table 1: 95 % bootstrap intervals.
EPOCH_CI = {
    "E": (1.769, 1.871),
    "A": (285.2, 743.6),
    "B": (1042.4, 5810.3),
    "alpha": (0.317, 0.373),
    "beta": (0.331, 0.415),
}
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


@cache
def _chinchilla():
    return load_chinchilla()


def chinchilla():
    """Epoch's preprocessing of the Chinchilla runs: 240 runs as (n, d, loss)."""
    return _chinchilla()


def chinchilla_csv() -> Path:
    return data_path(CHINCHILLA_CSV)


def bnsl_csv() -> Path:
    return data_path(BNSL_ADDITION_CSV)
