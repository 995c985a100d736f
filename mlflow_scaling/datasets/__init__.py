"""Published reference data shipped with the package, the way scikit-learn ships ``load_iris``.

``load_chinchilla()``
    The Chinchilla training runs (Hoffmann et al. 2022, "Training Compute-Optimal Large Language
    Models", Figure 4 isoFLOP profiles) as extracted from the paper's vector figure by Epoch AI
    (Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt"; repository
    ``epoch-research/analyzing-chinchilla``, file ``data/svg_extracted_data.csv``): 245 runs with
    columns ``Model Size`` (N), ``Training FLOP`` (C) and ``loss``. Epoch's preprocessing drops the
    5 highest-loss rows (figure-extraction outliers) and takes D = C / (6N).

``load_bnsl_addition()``
    17 points of test cross-entropy against training-set size for 4-digit addition, from the
    Broken Neural Scaling Laws paper (Caballero et al. 2022; repository
    ``ethancaballero/broken_neural_scaling_laws``, the 4-digit-addition fit-and-extrapolate
    script). Column ``split``: the first 14 rows (``fit``) are what the paper fits, the last 3
    (``extrapolate``) what it predicts.

Licence and use: both files are measurements read from published papers' figures, redistributed
unchanged (byte for byte) with attribution so that results can be reproduced offline; neither
source repository carried a licence file when they were bundled. Cite the papers when you use
them. See also the README's ``DATA_SOURCES`` section.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from ..laws.allocation import FLOPS_PER_PARAM_TOKEN
from ..tabular import Points, numeric_column, read_csv

CHINCHILLA_CSV = "chinchilla_epoch_svg_extracted.csv"
BNSL_ADDITION_CSV = "bnsl_4digit_addition.csv"
EPOCH_DROPPED_OUTLIERS = 5


def data_path(name: str) -> Path:
    """The path of a bundled data file (``CHINCHILLA_CSV`` or ``BNSL_ADDITION_CSV``)."""
    path = Path(str(resources.files(__package__) / "data" / name))
    if not path.is_file():
        raise FileNotFoundError(f"bundled data file {name!r} is missing from {path.parent}")
    return path


def load_chinchilla(
    path: str | Path | None = None, drop_highest_loss: int = EPOCH_DROPPED_OUTLIERS
) -> Points:
    """The Chinchilla runs as (N, D, loss), with Epoch's preprocessing (240 of 245 runs).

    ``path`` defaults to the bundled file. Epoch drop the ``drop_highest_loss`` runs with the
    highest loss (outliers of the figure extraction) and take D = C / (6N).
    """
    path = data_path(CHINCHILLA_CSV) if path is None else Path(path)
    frame = read_csv(path)
    n = numeric_column(frame, "Model Size", path, positive=True)
    c = numeric_column(frame, "Training FLOP", path, positive=True)
    loss = numeric_column(frame, "loss", path, positive=True)
    keep = np.sort(np.argsort(-loss, kind="stable")[drop_highest_loss:])
    return Points(n=n[keep], d=c[keep] / (FLOPS_PER_PARAM_TOKEN * n[keep]), loss=loss[keep])


def load_bnsl_addition():
    """The BNSL 4-digit-addition points as a DataFrame (``train_dataset_size``,
    ``test_cross_entropy``, ``split``)."""
    return read_csv(data_path(BNSL_ADDITION_CSV))
