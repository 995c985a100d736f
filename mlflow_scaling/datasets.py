"""Published reference data (the Chinchilla runs), read from the shared data folder.

The folder lives beside the repository (``../shared/data``) on the project's own machines and
in CI, not in a user's clone; set ``MLFLOW_SCALING_SHARED_DATA`` to point elsewhere. Callers
get ``None`` from :func:`find_shared_data` when it is absent and must say they skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .laws.allocation import FLOPS_PER_PARAM_TOKEN
from .tabular import Points, numeric_column, read_csv

ENV_SHARED_DATA = "MLFLOW_SCALING_SHARED_DATA"
CHINCHILLA_CSV = "chinchilla_epoch_svg_extracted.csv"
BNSL_ADDITION_CSV = "bnsl_4digit_addition.csv"


def find_shared_data() -> Path | None:
    """The shared data folder, or None when this machine does not have it.

    ``MLFLOW_SCALING_SHARED_DATA``, when set, is the only place looked at.
    """
    if os.environ.get(ENV_SHARED_DATA):
        candidates = [Path(os.environ[ENV_SHARED_DATA])]
    else:
        candidates = [
            Path(__file__).resolve().parents[2] / "shared" / "data",
            Path.cwd().resolve().parent / "shared" / "data",
        ]
    for path in candidates:
        if (path / CHINCHILLA_CSV).is_file():
            return path
    return None


def load_chinchilla(path: str | Path, drop_highest_loss: int = 5) -> Points:
    """The Chinchilla runs as (N, D, loss), with Epoch's preprocessing.

    Epoch drop the ``drop_highest_loss`` runs with the highest loss (outliers of the figure
    extraction) and take D = C / (6N).
    """
    frame = read_csv(path)
    n = numeric_column(frame, "Model Size", path, positive=True)
    c = numeric_column(frame, "Training FLOP", path, positive=True)
    loss = numeric_column(frame, "loss", path, positive=True)
    keep = np.sort(np.argsort(-loss, kind="stable")[drop_highest_loss:])
    return Points(n=n[keep], d=c[keep] / (FLOPS_PER_PARAM_TOKEN * n[keep]), loss=loss[keep])
