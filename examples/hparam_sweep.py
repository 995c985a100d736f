"""A (learning rate × batch) sweep of the stdlib GPT, and the learning rate and batch it implies.

Each *cell* is a model size N trained on a token budget D; in each cell every (peak learning
rate η, global batch B) pair of the cell's grid is one run, with its own warm-up and cosine
decay to its last step (``ScheduledGPT``). ``ScalingLawCallback`` logs N, D, the peak learning
rate (``scaling.lr_peak``) and the global batch in tokens (``scaling.batch_tokens``) with every
run; ``MLFlowLogger`` logs the validation loss. Then:

1. **The refit** (the project's own job, as ``mlflow-scaling refit``) fits the family: the
   ``hparams`` section of ``fit.json``, the heat maps ``scaling/hparams.png`` and η, B at the
   refit's target, a model 10× the largest.
2. **The held-out check.** The runs are read back from MLflow into a CSV; the laws are fitted on
   every cell but the largest (``mlflow-scaling hparams``, here through ``api.hparams``), they
   predict the largest cell's η and B, and the script says whether each lands inside that
   cell's own measured 0.25 % band, and what share of the cell's grid the band covers (a band
   that covers the whole grid proves nothing).

**Where the grids sit** (rules in N, D and B, fixed before any run of the largest cell was seen):

    B grid:  B_c(D) · 2^j,  j ∈ {−2, −1, 0, 1} sequences of 64 tokens (at least 1),
             B_c(D) = the power of 2 nearest 2.3 · (D / 262,144)^½
    η grid:  η_c(N) · (B / 2)^½ · 2^k at each batch B,  k ∈ {−½, 0, ½, 1},
             η_c(N) = 8e-3 · (12,288 / N)^½

N is the non-embedding parameter count 12·L·d². The batch grows with tokens as D^½ (Step Law's
B ∝ D^0.571, DeepSeek's): batches of 1, 2 and 4 sequences at 262k tokens, 1, 2, 4 and 8 at
524k. (Pilot runs: at 131k tokens every size was best at the grid's smallest batch of 1
sequence, so the budgets start at 262k. A first run of this script with j ∈ {−1, 0, 1} found
the batch optimum of the two larger sizes at 524k on the grid's smallest batch, 2 sequences:
a bound, not a band to judge by; so the grid was widened by one batch below, as the issue
asks of an edge.) The learning rate falls with size (pilot runs at 262k tokens and
a batch of 2: best near 8e-3 at N = 12.3k, near 4e-3 at 55.3k) and rises with the batch (at
12.3k: below 5.7e-3 at a batch of 1, 8e-3 at 2, above 1.1e-2 at 4), so each batch row of the
grid is shifted by Adam's square-root rule, (B / 2)^½: the grid follows the ridge of the
surface instead of cutting across it. The pilots placed the rules only: the check below
predicts the largest cell from the others' runs.

Gradients are clipped at norm 1 (as nanoGPT does): without clipping, runs near the largest
rates spike now and then (0.1–0.2 nats at one (η, B) and not at its neighbours), and a
cell's surface is then not convex. Runs are seeded alike (the same initial weights and the same
training windows in every run): the grid's differences are then the settings', not the seeds'.

    python examples/hparam_sweep.py [--tracking-uri sqlite:///mlflow.db]

84 runs of seconds (8 min 42 s on 2 CPU cores, two processes of one thread), each scored on
2,048 validation windows; finished runs are found again and reused. ``--seed 1`` in the same
experiment adds a second seed's 84 runs, which the fits pool with the first's (about 9 minutes
more; docs/hparams.md measures what that changes). Exit status 0 when the check was made
(inside or not).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.loggers import MLFlowLogger
from mlflow import MlflowClient
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stdlib_corpus import load_corpus  # noqa: E402
from tiny_gpt import ByteWindows, GPTConfig  # noqa: E402
from train_family import (  # noqa: E402
    TAG_SHAPE,
    RandomWindows,
    ScheduledGPT,
    ensure_experiment,
    finished_shapes,
    lightning_quiet,
)

from lightning_callbacks import ScalingLawCallback  # noqa: E402
from mlflow_scaling.api import hparams  # noqa: E402
from mlflow_scaling.commands.hparams import format_hparams_table  # noqa: E402
from mlflow_scaling.jobs.analysis import RefitSettings  # noqa: E402
from mlflow_scaling.jobs.refit import refit_pass  # noqa: E402
from mlflow_scaling.tabular import read_csv  # noqa: E402
from mlflow_scaling.tracking import schema  # noqa: E402
from mlflow_scaling.tracking.connection import connect  # noqa: E402
from mlflow_scaling.tracking.fit_run import find_fit_runs  # noqa: E402
from mlflow_scaling.tracking.published import (  # noqa: E402
    published_artifact_path,
    read_published_artifact,
    read_published_json,
)

FAMILY = "hparam-sweep"
SEQ_LEN = 64
VALIDATION_WINDOWS = 2048
"""Validation windows of SEQ_LEN bytes (131k bytes of the 149k-byte validation split). A loss
difference between two runs measured on 256 windows moves by 0.34–0.51 % of the loss from one
block of 256 windows to another, more than the 0.25 % band the check judges by; 2,048 windows
bring that down by about √8."""
SIZES = ((1, 32), (2, 32), (2, 48))
"""(layers, width): 12.3k, 24.6k and 55.3k non-embedding parameters (12·L·d²)."""
TOKENS = (2**18, 2**19)
"""Two token budgets per size: 262k and 524k tokens."""
LR_STEPS = (-0.5, 0.0, 0.5, 1.0)
"""Each batch row's η grid in powers of 2 around η_c(N)·(B/2)^½: a factor √2 apart, from
1/√2 to 2 times the row's centre."""
BATCH_STEPS = (-2, -1, 0, 1)
"""The B grid in powers of 2 around B_c(D) (batches below 1 sequence are dropped)."""
N_BOOT = 200
"""Bootstrap replicates of the refit and of the check (each cell's interval)."""


@dataclass(frozen=True)
class Point:
    """One run of the grid: a cell (size, tokens) and its (η, B) setting."""

    size: tuple[int, int]
    tokens: int
    lr: float
    batch: int
    """Sequences of SEQ_LEN tokens per optimizer step."""
    seed: int = 0
    """The initial weights' and the training windows' seed (alike in every run of a sweep)."""

    @property
    def key(self) -> str:
        seed = f"-s{self.seed}" if self.seed else ""
        cell = f"L{self.size[0]}-d{self.size[1]}-D{self.tokens}"
        # -v: the validation windows (runs scored on other windows are not reused)
        return f"{cell}-lr{self.lr:.4g}-b{self.batch}-v{VALIDATION_WINDOWS}{seed}"

    @property
    def steps(self) -> int:
        return max(1, self.tokens // (self.batch * SEQ_LEN))


def non_embedding(size: tuple[int, int]) -> int:
    """12·L·d²: attention (4d²) and the 4×-wide MLP (8d²) per layer."""
    return 12 * size[0] * size[1] ** 2


def lr_centre(n: float, batch: int) -> float:
    """η_c(N) · (B / 2)^½ with η_c(N) = 8e-3 · (12,288 / N)^½ and B in sequences."""
    return 8e-3 * math.sqrt(non_embedding((1, 32)) / n) * math.sqrt(batch / 2)


def batch_centre(tokens: float) -> float:
    """B_c(D): the power of 2 nearest 2.3 · (D / 262,144)^½ sequences."""
    return 2 ** round(math.log2(2.3 * math.sqrt(tokens / 2**18)))


def plan(sizes=SIZES, tokens=TOKENS, lr_steps=LR_STEPS, batch_steps=BATCH_STEPS,
         seed: int = 0) -> list[Point]:  # fmt: skip
    """Every run of the sweep: each cell's grid placed by the rules in N, D and B."""
    points = []
    for size in sizes:
        for d in tokens:
            batches = sorted({max(1, round(batch_centre(d) * 2.0**j)) for j in batch_steps})
            points += [Point(size, d, lr_centre(non_embedding(size), b) * 2.0**k, b, seed)
                       for b in batches for k in lr_steps]  # fmt: skip
    return points


def model_and_batches(point: Point, data: torch.Tensor) -> tuple[ScheduledGPT, DataLoader]:
    """The run's model (its seed's initial weights) and its training batches."""
    L.seed_everything(point.seed, verbose=False)
    layers, width = point.size
    config = GPTConfig(n_layer=layers, n_head=max(1, width // 32), d_model=width,
                       seq_len=SEQ_LEN, lr=point.lr)  # fmt: skip
    model = ScheduledGPT(config, total_steps=point.steps)
    train = DataLoader(RandomWindows(data, point.steps * point.batch, seed=point.seed),
                       batch_size=point.batch)  # fmt: skip
    return model, train


def sweep_trainer(point: Point, **settings) -> L.Trainer:
    """The grid's Trainer for ``point`` (gradients clipped at norm 1, no checkpoints, quiet),
    with ``settings`` (logger, callbacks, validation) added."""
    return L.Trainer(
        accelerator="cpu", devices=1, max_steps=point.steps, max_epochs=1,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, gradient_clip_val=1.0, **settings,
    )  # fmt: skip


def train_run(point: Point, data, validation, *, tracking_uri: str, experiment: str) -> None:
    """One run of the grid, with the callback and the validation loss at its end."""
    model, train = model_and_batches(point, data)
    logger = MLFlowLogger(experiment_name=experiment, tracking_uri=tracking_uri,
                          run_name=f"{FAMILY}-{point.key}",
                          tags={TAG_SHAPE: point.key})  # fmt: skip
    with lightning_quiet(True):
        trainer = sweep_trainer(
            point, logger=logger, val_check_interval=point.steps, log_every_n_steps=50,
            callbacks=[ScalingLawCallback(family=FAMILY, log_every_n_steps=100)],
        )  # fmt: skip
        trainer.fit(model, train, DataLoader(validation, batch_size=64))


_WORKER: dict = {}
"""What a training process holds: the corpus tensors and where to log."""


def _start_worker(tracking_uri: str, experiment: str) -> None:
    torch.set_num_threads(1)  # tiny matrices: one thread per process is fastest
    corpus = load_corpus()
    _WORKER["data"] = torch.frombuffer(bytearray(corpus.train), dtype=torch.uint8).long()
    _WORKER["validation"] = ByteWindows(
        corpus.validation[: VALIDATION_WINDOWS * SEQ_LEN + 1], SEQ_LEN
    )
    _WORKER["where"] = {"tracking_uri": tracking_uri, "experiment": experiment}


def _train_point(point: Point) -> Point:
    train_run(point, _WORKER["data"], _WORKER["validation"], **_WORKER["where"])
    return point


def train_grid(tracking_uri: str, experiment: str, points: list[Point], *, workers: int = 2,
               echo=print) -> None:  # fmt: skip
    """Train every point not already finished in the experiment, ``workers`` runs at a time
    (fresh processes; 1: in this one)."""
    ensure_experiment(tracking_uri, experiment)
    done = finished_shapes(tracking_uri, experiment, FAMILY)
    todo = sorted((p for p in points if p.key not in done), key=lambda p: -p.steps)
    cells = len({(p.size, p.tokens) for p in points})
    echo(f"{FAMILY}: {len(points)} runs in {cells} cells (size x tokens), "
         f"{len(points) - len(todo)} reused; {len(todo)} to train, {workers} at once")  # fmt: skip
    started = time.perf_counter()
    if workers == 1:
        _start_worker(tracking_uri, experiment)
        finished = map(_train_point, todo)
    else:
        pool = multiprocessing.get_context("spawn").Pool(
            workers, initializer=_start_worker, initargs=(tracking_uri, experiment)
        )
        finished = pool.imap_unordered(_train_point, todo)
    for i, _ in enumerate(finished, start=1):
        if i % 12 == 0 or i == len(todo):
            echo(f"  {i}/{len(todo)} trained ({time.perf_counter() - started:.0f} s)")
    if workers > 1:
        pool.close()
        pool.join()


def export_csv(tracking_uri: str, experiment: str, path: Path) -> pd.DataFrame:
    """The family's finished runs as rows N, D, lr, batch_tokens, loss, read from MLflow."""
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], schema.family_filter(FAMILY), max_results=1000)
    names = {"N": schema.METRIC_PARAMS, "D": schema.METRIC_TOKENS, "lr": schema.METRIC_LR_PEAK,
             "batch_tokens": schema.METRIC_BATCH_TOKENS, "loss": "val_loss"}  # fmt: skip
    members = [r for r in runs if r.data.tags.get(schema.TAG_ROLE) != schema.ROLE_FIT]
    missing = [r.info.run_name for r in members
               if any(m not in r.data.metrics for m in names.values())]  # fmt: skip
    if missing:
        raise RuntimeError(f"runs without all of {sorted(names.values())}: {missing}")
    frame = pd.DataFrame([{k: r.data.metrics[m] for k, m in names.items()} for r in members])
    frame.to_csv(path, index=False)
    return frame


def refit(tracking_uri: str, experiment: str, echo=print) -> dict:
    """The project's refit on the family; prints what its ``hparams`` section predicts at the
    refit's target (10× the largest model) and returns the section."""
    client = connect(tracking_uri)
    (outcome,) = refit_pass(client, experiments=[experiment], families=[FAMILY],
                            settings=RefitSettings(n_boot=N_BOOT))  # fmt: skip
    echo(f"\nrefit {FAMILY!r}: {outcome.status}")
    run = find_fit_runs(client, outcome.experiment_id, FAMILY)[0]
    section = read_published_json(client, run, schema.ARTIFACT_FIT_JSON).get("hparams")
    if section is None or "error" in section:
        raise RuntimeError(f"the refit wrote no hparams section: {section}")
    if read_published_artifact(client, run, schema.ARTIFACT_HPARAMS_PNG) is None:
        raise RuntimeError(f"the refit published no {schema.ARTIFACT_HPARAMS_PNG}")
    where = published_artifact_path(run, schema.ARTIFACT_HPARAMS_PNG)
    echo(f"  heat maps: fit run {run.info.run_id}, artifact {where}")
    statuses = [f"{c['lr_status']}/{c['batch_status']}" for c in section["cells"]]
    echo(f"  cells (lr/batch): {', '.join(statuses)}")
    target = section["target"]
    for p in section["predictions"]:
        echo(f"  at N={p['N']:.3g}, D={p['D']:.3g} ({target['source']}):")
        echo(f"    lr {p['lr']:.3g} (95 % {p['lr_lo']:.3g}..{p['lr_hi']:.3g})")
        if p["batch_tokens"] is not None:
            echo(f"    batch {p['batch_tokens']:.3g} tokens "
                 f"(95 % {p['batch_lo']:.3g}..{p['batch_hi']:.3g})")  # fmt: skip
    if not section["predictions"]:
        echo("  no law, so no prediction: " + "; ".join(section["notes"]))
    return section


def share_of_grid(band: tuple[float, float], grid) -> float:
    """The share of the grid's log-range the band covers (clipped to the grid)."""
    lo, hi = max(band[0], min(grid)), min(band[1], max(grid))
    return max(0.0, math.log(hi / lo) / math.log(max(grid) / min(grid)))


def held_out_check(csv_path: Path, echo=print) -> bool:
    """Fit every cell but the largest, predict it, and compare with its own measured band.
    True when both η and B were judged (inside or not)."""
    frame = read_csv(csv_path)
    largest = max(zip(frame["N"], frame["D"], strict=True))
    cell = [math.isclose(n, largest[0], rel_tol=0.02) and math.isclose(d, largest[1], rel_tol=0.02)
            for n, d in zip(frame["N"], frame["D"], strict=True)]  # fmt: skip
    train = csv_path.with_name(csv_path.stem + "_without_largest.csv")
    frame[[not c for c in cell]].to_csv(train, index=False)
    echo(f"\n$ mlflow-scaling hparams {train.name} --target-params {largest[0]:.0f} "
         f"--target-tokens {largest[1]:.0f}")  # fmt: skip
    without = hparams(read_csv(train), source=str(train), n_boot=N_BOOT)
    if without.fit.lr_law.law is None:  # nothing to predict with: say why, cell by cell
        echo(format_hparams_table(without))
        echo("\nno law to predict the largest cell with: too few cells have an optimum inside "
             "their grid (named above)")  # fmt: skip
        return False
    result = hparams(read_csv(train), source=str(train), targets=(largest,), n_boot=N_BOOT)
    echo(format_hparams_table(result))
    own = hparams(frame[cell], source=f"{csv_path} (largest cell)", n_boot=N_BOOT).fit.cells[0]
    p = result.predictions[0]
    echo(f"\nthe largest cell (N={largest[0]:.3g}, D={largest[1]:.3g}) on its own runs:")
    axes = (("lr", p.lr, own.lr), ("batch", p.batch, own.batch))
    return all([_judge_axis(name, pred, axis, echo) for name, pred, axis in axes])


def _judge_axis(name: str, predicted, axis, echo) -> bool:
    band = None if axis is None or axis.bands is None else axis.bands[0.0025]
    if band is None or predicted is None:
        status = axis.status if axis is not None else "absent"
        echo(f"  {name}: {status}, predicted {predicted}: no measured band to judge by")
        return False
    inside = band[0] <= predicted <= band[1]
    echo(f"  {name}: predicted {predicted:.3g}, measured optimum {axis.value:.3g}, 0.25 % band "
         f"{band[0]:.3g}..{band[1]:.3g}: {'INSIDE' if inside else 'OUTSIDE'}; the band covers "
         f"{share_of_grid(band, axis.grid):.0%} of the grid's range "
         f"{min(axis.grid):.3g}..{max(axis.grid):.3g}")  # fmt: skip
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default="hparam-sweep")
    parser.add_argument("--workers", type=int, default=2, help="runs trained at once")
    parser.add_argument("--csv", default="hparam_sweep.csv", help="where the runs are exported")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of every run's initial weights and training windows; in "
                             "the same --experiment a second seed's runs pool with the first's "
                             "as replicates (docs/hparams.md, 'How far the check moves with "
                             "the seed')")  # fmt: skip
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    started = time.perf_counter()
    train_grid(args.tracking_uri, args.experiment, plan(seed=args.seed), workers=args.workers)
    refit(args.tracking_uri, args.experiment)
    export_csv(args.tracking_uri, args.experiment, Path(args.csv))
    judged = held_out_check(Path(args.csv))
    print(f"\ndone in {time.perf_counter() - started:.0f} s")
    return 0 if judged else 1


if __name__ == "__main__":
    sys.exit(main())
