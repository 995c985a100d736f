"""The real sweeps the decision numbers are chosen on, as (name, N, D, loss) families.

Read from ``../shared/data/dev_sweeps/`` beside the checkout (see its README; it is absent from
a user's clone, and then only the bundled Chinchilla runs are used) plus the Chinchilla runs that
ship with the package.

* Chinchilla: Epoch's preprocessing of the paper's isoFLOP runs (240 runs).
* Porian et al. 2024: the ten isoFLOP sweeps (dataset × setting), N as the sweep counts it.
* Misfitting (Li et al. 2025): open_lm final runs, one family per peak learning rate with at
  least 40 runs; N with embeddings, the ``loss`` column.
* Pythia: LAMBADA log-perplexity of the seven sizes at every checkpoint from step 10,000 on
  (a task loss on intermediate checkpoints of one cosine schedule: the caveat the README names).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlflow_scaling.datasets import load_chinchilla

SWEEPS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev_sweeps"
PORIAN_KEYS = ["dataset", "hparams", "warmup", "decay", "param_count", "eval"]
MISFITTING_MIN_RUNS = 40
PYTHIA_FIRST_STEP = 10_000


@dataclass(frozen=True)
class Sweep:
    name: str
    n: np.ndarray
    d: np.ndarray
    loss: np.ndarray

    @property
    def flops(self) -> np.ndarray:
        return 6.0 * self.n * self.d


def porian_sweeps(folder: Path = SWEEPS_DIR) -> list[Sweep]:
    frame = pd.read_csv(folder / "porian2024_isoflops.csv")
    out = []
    for key, rows in frame.groupby(PORIAN_KEYS, sort=True):
        out.append(Sweep("porian " + "-".join(key), *_columns(rows, "N", "D", "loss")))
    return out


def porian_sweep(folder: Path, **setting: str) -> Sweep:
    """One Porian sweep by its setting (missing keys: standard counting, val loss)."""
    setting = {"param_count": "standard", "eval": "val", **setting}
    frame = pd.read_csv(folder / "porian2024_isoflops.csv")
    rows = frame.loc[np.logical_and.reduce([frame[k] == v for k, v in setting.items()])]
    if rows.empty:
        raise ValueError(f"no Porian sweep with {setting}")
    return Sweep("porian " + "-".join(setting.values()), *_columns(rows, "N", "D", "loss"))


def misfitting_sweeps(folder: Path = SWEEPS_DIR) -> list[Sweep]:
    frame = pd.read_csv(folder / "misfitting2025_final.csv")
    out = []
    for lr, rows in frame.groupby("peak_lr", sort=True):
        if len(rows) >= MISFITTING_MIN_RUNS:
            out.append(Sweep(f"misfitting lr={lr:g}", *_columns(rows, "N", "D", "loss")))
    return out


def pythia_sweep(folder: Path = SWEEPS_DIR) -> Sweep:
    frame = pd.read_csv(folder / "pythia_evals.csv")
    rows = frame[(frame.task == "lambada_openai") & (frame.step >= PYTHIA_FIRST_STEP)]
    rows = rows.assign(logppl=np.log(rows.ppl))
    return Sweep("pythia lambada log-ppl", *_columns(rows, "N", "D", "logppl"))


def chinchilla_sweep() -> Sweep:
    p = load_chinchilla()
    return Sweep("chinchilla", p.n, p.d, p.loss)


def all_sweeps(folder: Path = SWEEPS_DIR) -> tuple[list[Sweep], str]:
    """Every sweep, and a line that says where they came from (or that the folder is absent)."""
    sweeps = [chinchilla_sweep()]
    if not folder.is_dir():
        return sweeps, (f"{folder} is absent (as in a user's clone): only the bundled "
                        "Chinchilla runs are used")  # fmt: skip
    sweeps += porian_sweeps(folder) + misfitting_sweeps(folder) + [pythia_sweep(folder)]
    return sweeps, f"{len(sweeps)} sweeps: the bundled Chinchilla runs and {folder}"


def _columns(rows: pd.DataFrame, *names: str):
    return tuple(rows[name].to_numpy(dtype=float) for name in names)
