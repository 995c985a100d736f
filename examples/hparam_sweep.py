"""A (learning rate × batch) sweep of the stdlib GPT, and the learning rate and batch it implies.

Each cell is a model size trained on a token budget; in each cell every (peak learning rate,
global batch) pair of the grid is one run, with its own warm-up and cosine decay to its last
step. ``ScalingLawCallback`` logs N, D, the peak learning rate (``scaling.lr_peak``) and the
global batch in tokens (``scaling.batch_tokens``) with every run; ``MLFlowLogger`` logs the
validation loss. Then the runs are read back from MLflow into a CSV and

    mlflow-scaling hparams sweep.csv --target-params N --target-tokens D

fits each cell's optimum and the laws across cells on every cell but the largest, predicts the
largest cell's learning rate and batch, and this script says whether the prediction lands inside
that cell's own measured 0.25 % band, and what share of the grid the band covers (a band that
covers the whole grid proves nothing).

    python examples/hparam_sweep.py [--tracking-uri sqlite:///mlflow.db]

About 10 minutes on 2 CPU cores (54 runs of seconds); finished runs are found again and reused.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import MLFlowLogger
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stdlib_corpus import load_corpus  # noqa: E402
from tiny_gpt import ByteWindows, GPTConfig  # noqa: E402
from train_family import (  # noqa: E402
    RandomWindows,
    ScheduledGPT,
    ensure_experiment,
    finished_shapes,
    lightning_quiet,
)

from lightning_callbacks import ScalingLawCallback  # noqa: E402
from mlflow_scaling.tracking import schema  # noqa: E402

FAMILY = "hparam-sweep"
TAG_SHAPE = "demo.shape"
SEQ_LEN = 64
VALIDATION_WINDOWS = 256
SIZES = ((1, 16), (1, 32), (2, 32))
"""(layers, width): 3.3k, 12.8k and 25.5k non-embedding parameters."""
TOKENS = (2**17, 2**18)
"""Two token budgets per size (131k and 262k tokens)."""
LR_FACTORS = (0.5, 1.0, 2.0)
BATCHES = (2, 4, 8)
"""Sequences of SEQ_LEN per optimizer step: 128, 256 and 512 tokens (pilot runs: 512 and more
put every cell's optimum on the grid's smallest batch)."""


def learning_rates(size) -> tuple[float, ...]:
    """The grid's peak learning rates for a size: centred on 8e-3·(25.5k / N)^0.5 (pilot runs:
    near 8e-3 at 25.5k non-embedding parameters, above 1.6e-2 at 3.3k), a factor 2 apart."""
    non_embedding = 12 * size[0] * size[1] ** 2
    centre = 8e-3 * math.sqrt(12 * 2 * 32**2 / non_embedding)
    return tuple(centre * f for f in LR_FACTORS)


def _key(size, tokens: int, lr: float, batch: int) -> str:
    return f"L{size[0]}-d{size[1]}-D{tokens}-lr{lr:.4g}-b{batch}"


def train_run(size, tokens, lr, batch, data, validation, *, tracking_uri, experiment) -> None:
    """One run of the grid, with the callback and the validation loss at its end."""
    L.seed_everything(0, verbose=False)
    config = GPTConfig(n_layer=size[0], n_head=max(1, size[1] // 32), d_model=size[1],
                       seq_len=SEQ_LEN, lr=lr)  # fmt: skip
    steps = max(1, tokens // (batch * SEQ_LEN))
    model = ScheduledGPT(config, total_steps=steps)
    train = DataLoader(RandomWindows(data, steps * batch, seed=0), batch_size=batch)
    logger = MLFlowLogger(experiment_name=experiment, tracking_uri=tracking_uri,
                          run_name=f"{FAMILY}-{_key(size, tokens, lr, batch)}",
                          tags={TAG_SHAPE: _key(size, tokens, lr, batch)})  # fmt: skip
    with lightning_quiet(True):
        trainer = L.Trainer(
            accelerator="cpu", devices=1, max_steps=steps, max_epochs=1, logger=logger,
            callbacks=[ScalingLawCallback(family=FAMILY, log_every_n_steps=100)],
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            limit_val_batches=1.0, val_check_interval=steps, num_sanity_val_steps=0,
            log_every_n_steps=50,
        )  # fmt: skip
        trainer.fit(model, train, DataLoader(validation, batch_size=64))


def train_grid(tracking_uri: str, experiment: str) -> None:
    torch.set_num_threads(1)
    corpus = load_corpus()
    data = torch.frombuffer(bytearray(corpus.train), dtype=torch.uint8).long()
    validation = ByteWindows(corpus.validation[: VALIDATION_WINDOWS * SEQ_LEN + 1], SEQ_LEN)
    ensure_experiment(tracking_uri, experiment)
    done = finished_shapes(tracking_uri, experiment, FAMILY)
    grid = [(size, tokens, lr, batch) for size in SIZES for tokens in TOKENS
            for lr in learning_rates(size) for batch in BATCHES]  # fmt: skip
    todo = [g for g in grid if _key(*g) not in done]
    print(f"{FAMILY}: {len(grid)} runs ({len(SIZES)} sizes x {len(TOKENS)} token budgets x "
          f"{len(LR_FACTORS)} learning rates x {len(BATCHES)} batches); "
          f"{len(grid) - len(todo)} reused")  # fmt: skip
    started = time.perf_counter()
    for i, point in enumerate(todo, start=1):
        train_run(*point, data, validation, tracking_uri=tracking_uri, experiment=experiment)
        if i % 12 == 0 or i == len(todo):
            print(f"  {i}/{len(todo)} trained ({time.perf_counter() - started:.0f} s)")


def export_csv(tracking_uri: str, experiment: str, path: Path) -> list[dict]:
    """The family's runs as rows N, D, lr, batch_tokens, loss, read from MLflow."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], schema.family_filter(FAMILY), max_results=1000)
    names = {"N": schema.METRIC_PARAMS, "D": schema.METRIC_TOKENS, "lr": schema.METRIC_LR_PEAK,
             "batch_tokens": schema.METRIC_BATCH_TOKENS, "loss": "val_loss"}  # fmt: skip
    rows = [{k: r.data.metrics[m] for k, m in names.items()} for r in runs
            if all(m in r.data.metrics for m in names.values())]  # fmt: skip
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(names))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _share(band, grid) -> float:
    """The share of the grid's log-range the band covers (clipped to the grid)."""
    lo, hi = max(band[0], min(grid)), min(band[1], max(grid))
    return max(0.0, math.log(hi / lo) / math.log(max(grid) / min(grid)))


def judge(csv_path: Path, rows: list[dict]) -> int:
    """Fit all cells but the largest, predict it, and compare with its own measured band."""
    from mlflow_scaling.api import hparams
    from mlflow_scaling.commands.hparams import format_hparams_table
    from mlflow_scaling.tabular import read_csv

    def sweep_hparams(path: Path, **options):
        return hparams(read_csv(path), source=str(path), **options)

    largest = max((r["N"], r["D"]) for r in rows)
    train = csv_path.with_name("sweep_without_largest.csv")
    with csv_path.open() as src, train.open("w") as dst:
        lines = src.read().splitlines()
        kept = [ln for ln, r in zip(lines[1:], rows, strict=True) if (r["N"], r["D"]) != largest]
        dst.write("\n".join([lines[0], *kept]) + "\n")
    print(f"\n$ mlflow-scaling hparams {train.name} --target-params {largest[0]:.0f} "
          f"--target-tokens {largest[1]:.0f}")  # fmt: skip
    without = sweep_hparams(train, lr_col="lr")
    if without.fit.lr_law.law is None:  # nothing to predict with: say why, cell by cell
        print(format_hparams_table(without))
        print(
            "\nno law to predict the largest cell with: too few cells have an optimum inside "
            "their grid (named above). Widen the grid past the named edges, or train longer "
            "runs where the surfaces are not convex (seed noise larger than the differences)."
        )
        return 1
    result = sweep_hparams(train, lr_col="lr", targets=(largest,))
    print(format_hparams_table(result))
    own = sweep_hparams(csv_path, lr_col="lr").fit
    cell = next(c for c in own.cells if math.isclose(c.n, largest[0], rel_tol=1e-6)
                and math.isclose(c.d, largest[1], rel_tol=1e-6))  # fmt: skip
    p = result.predictions[0]
    print(f"\nthe largest cell (N={largest[0]:.3g}, D={largest[1]:.3g}) on its own runs:")
    for name, pred, axis in (("lr", p.lr, cell.lr), ("batch", p.batch, cell.batch)):
        band = None if axis is None or axis.bands is None else axis.bands[0.0025]
        if band is None or pred is None:
            print(f"  {name}: {axis.status if axis else 'absent'}: no measured band to judge by")
            continue
        inside = band[0] <= pred <= band[1]
        print(f"  {name}: predicted {pred:.3g}, measured optimum {axis.value:.3g}, 0.25 % band "
              f"{band[0]:.3g}..{band[1]:.3g}: {'inside' if inside else 'OUTSIDE'}; the band "
              f"covers {_share(band, axis.grid):.0%} of the grid's range")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default="hparam-sweep")
    parser.add_argument("--csv", default="hparam_sweep.csv", help="where the runs are exported")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    started = time.perf_counter()
    train_grid(args.tracking_uri, args.experiment)
    rows = export_csv(args.tracking_uri, args.experiment, Path(args.csv))
    code = judge(Path(args.csv), rows)
    print(f"\ndone in {time.perf_counter() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
