"""The shared reference data, for tests: skip clearly where this machine has none."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from mlflow_scaling.datasets import BNSL_ADDITION_CSV, CHINCHILLA_CSV, load_chinchilla

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Epoch AI's optimum on the Chinchilla runs (their notebook; shared/data/README.md).
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


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"reference data {path} is absent (../shared/data is not on this machine)")
    return path


@cache
def _chinchilla():
    return load_chinchilla(SHARED_DATA / CHINCHILLA_CSV)


def chinchilla():
    """Epoch's preprocessing of the Chinchilla runs: 240 runs as (n, d, loss)."""
    shared_file(CHINCHILLA_CSV)
    return _chinchilla()


def chinchilla_csv() -> Path:
    return shared_file(CHINCHILLA_CSV)


def bnsl_csv() -> Path:
    return shared_file(BNSL_ADDITION_CSV)
