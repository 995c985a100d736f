"""Repeated epochs over a small corpus: the data-constrained law on the stdlib GPT, end to end.

The family trains byte-level GPTs of 3 sizes on one small slice of the Python standard library
(U = 2^15 unique byte tokens) for 1, 2, 4, 8 and 16 epochs: 15 runs of seconds each on a CPU.
Each epoch is one pass over the slice's windows in a fixed shuffled order (the same order for
every run: the law assumes the runs differ only in how long they repeat), and each run has its
own warm-up and cosine decay ending at its last step (the law assumes the schedule ends at each
run's D). ``ScalingLawCallback(unique_tokens=U)`` logs ``scaling.unique_tokens`` and
``scaling.epochs`` beside N, D and C; ``MLFlowLogger`` logs the validation loss on held-out
modules. Then one refit pass fits the family and this script prints its ``data_constrained``
section: R*_D and R*_N with their intervals, the epoch count after which one more epoch is worth
less than 10 % of fresh data (1 + R*_D·ln 10), the phase (``data_limited`` where repetition
explains the frontier's plateau), the check's ``epochs_worth_training`` criterion, and the plan
under the data budget: at the check target's compute and this U, the best size and epochs and
the loss given up against unlimited fresh data.

    python examples/repeated_epochs.py [--tracking-uri sqlite:///mlflow.db]

Finished runs of the same shape are found again and reused, not retrained.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import MLFlowLogger
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stdlib_corpus import load_corpus  # noqa: E402
from tiny_gpt import ByteWindows, GPTConfig  # noqa: E402
from train_family import (  # noqa: E402
    TAG_SHAPE,
    ScheduledGPT,
    ensure_experiment,
    finished_shapes,
    lightning_quiet,
)

from lightning_callbacks import ScalingLawCallback  # noqa: E402
from mlflow_scaling.jobs.analysis import RefitSettings  # noqa: E402
from mlflow_scaling.jobs.refit import refit_pass  # noqa: E402
from mlflow_scaling.planning.data_budget import data_budget_lines, family_data_budget  # noqa: E402
from mlflow_scaling.tracking.connection import connect  # noqa: E402
from mlflow_scaling.tracking.fit_run import find_fit_runs  # noqa: E402
from mlflow_scaling.tracking.published import read_published_json  # noqa: E402
from mlflow_scaling.tracking.schema import ARTIFACT_FIT_JSON  # noqa: E402

FAMILY = "repeated-epochs"
SEQ_LEN = 64
BATCH = 4
"""Sequences per optimizer step: 256 tokens, 128 steps per epoch of 2^15 tokens (pilot: with 8
sequences per step the sizes hardly differ at these lengths)."""
UNIQUE_BYTES = 2**15
SIZES = ((1, 16), (1, 32), (2, 64))
"""(layers, width): 3.3k, 12.8k and 100k non-embedding parameters (pilot: the largest gets
worse from 8 to 16 epochs, 2.43 to 2.60; the middle one stops gaining, the smallest gains
little)."""
EPOCHS = (1, 2, 4, 8, 16)
VALIDATION_WINDOWS = 256
LR = 3e-3


class EpochWindows(Dataset):
    """``epochs`` passes over the non-overlapping windows of ``data``, each pass in its own
    fixed shuffled order (the same orders for every run, whatever its length)."""

    def __init__(self, data: torch.Tensor, epochs: int, seed: int = 0) -> None:
        self.windows = ByteWindows(data, SEQ_LEN)
        g = torch.Generator().manual_seed(seed)
        n = len(self.windows)
        self.order = torch.cat([torch.randperm(n, generator=g) for _ in range(epochs)])

    def __len__(self) -> int:
        return self.order.numel()

    def __getitem__(self, i: int):
        return self.windows[int(self.order[i])]


def unique_tokens(data: torch.Tensor) -> int:
    """U as the callback counts tokens: the input positions of one pass over the windows."""
    return len(ByteWindows(data, SEQ_LEN)) * SEQ_LEN


def shape_key(size: tuple[int, int], epochs: int, unique_bytes: int) -> str:
    return f"L{size[0]}-d{size[1]}-U{unique_bytes}-x{epochs}"


def train_run(size, epochs: int, data: torch.Tensor, validation, *, tracking_uri: str | None,
              experiment: str, family: str) -> float:  # fmt: skip
    """One run (``tracking_uri`` None: no logging, for pilots); its final validation loss."""
    L.seed_everything(0, verbose=False)
    config = GPTConfig(n_layer=size[0], n_head=max(1, size[1] // 32), d_model=size[1],
                       seq_len=SEQ_LEN, lr=LR)  # fmt: skip
    train = EpochWindows(data, epochs)
    steps = len(train) // BATCH
    logger, callbacks = False, []
    if tracking_uri is not None:
        key = shape_key(size, epochs, data.numel() - 1)
        logger = MLFlowLogger(experiment_name=experiment, tracking_uri=tracking_uri,
                              run_name=f"{family}-{key}", tags={TAG_SHAPE: key})  # fmt: skip
        callbacks = [ScalingLawCallback(family=family, unique_tokens=unique_tokens(data),
                                        log_every_n_steps=100)]  # fmt: skip
    with lightning_quiet(True):
        trainer = L.Trainer(
            accelerator="cpu", devices=1, max_steps=steps, max_epochs=1, logger=logger,
            callbacks=callbacks, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, val_check_interval=steps, num_sanity_val_steps=0,
            log_every_n_steps=min(50, steps),
        )  # fmt: skip
        model = ScheduledGPT(config, total_steps=steps)
        trainer.fit(model, DataLoader(train, batch_size=BATCH), DataLoader(validation, 64))
    return float(trainer.callback_metrics["val_loss"])


def train_grid(tracking_uri: str | None, experiment: str, family: str, *, sizes=SIZES,
               epochs=EPOCHS, unique_bytes: int = UNIQUE_BYTES, echo=print) -> dict:  # fmt: skip
    """Train (or reuse) every (size, epochs) run; shape key -> final validation loss (None for
    a reused run)."""
    torch.set_num_threads(1)  # tiny matrices: one thread per process is fastest on 2 cores
    corpus = load_corpus()
    data = torch.frombuffer(bytearray(corpus.train[: unique_bytes + 1]), dtype=torch.uint8)
    data = data.long()
    validation = ByteWindows(corpus.validation[: VALIDATION_WINDOWS * SEQ_LEN + 1], SEQ_LEN)
    done = {}
    if tracking_uri is not None:
        ensure_experiment(tracking_uri, experiment)
        done = finished_shapes(tracking_uri, experiment, family)
    grid = [(s, e) for s in sizes for e in epochs]
    echo(f"{family}: {len(grid)} runs ({len(sizes)} sizes × epochs {list(epochs)}) on "
         f"U = {unique_tokens(data)} unique byte tokens; "
         f"{sum(shape_key(s, e, unique_bytes) in done for s, e in grid)} reused")  # fmt: skip
    losses, started = {}, time.perf_counter()
    for size, e in grid:
        key = shape_key(size, e, unique_bytes)
        if key in done:
            losses[key] = None
            continue
        losses[key] = train_run(size, e, data, validation, tracking_uri=tracking_uri,
                                experiment=experiment, family=family)  # fmt: skip
        echo(f"  {key}: val_loss {losses[key]:.4f} ({time.perf_counter() - started:.0f} s)")
    return losses


def refit(tracking_uri: str, experiment: str, family: str, n_boot: int) -> dict | None:
    """One refit pass over the experiment; the family's ``fit.json`` (None when not fitted)."""
    client = connect(tracking_uri)
    refit_pass(client, experiments=[experiment], settings=RefitSettings(n_boot=n_boot))
    exp = client.get_experiment_by_name(experiment)
    runs = find_fit_runs(client, exp.experiment_id, family)
    return read_published_json(client, runs[0], ARTIFACT_FIT_JSON) if runs else None


def _with_interval(section: dict, name: str) -> str:
    value = section["params"][name]
    lo, hi = section["intervals"].get(name, (None, None))
    span = "" if lo is None else f" (95 % interval {lo:.3g}..{hi:.3g})"
    return f"{value:.3g}{span}"


def plan_budget(doc: dict) -> tuple[float, str]:
    """The compute to plan for: the check target's, else 10× the largest run's (the refit's
    default target is 10× the largest size; without a law there is no target to take)."""
    prediction = doc["check"].get("prediction") or {}
    if prediction.get("C"):
        return float(prediction["C"]), "the check target's compute"
    largest = max(float(m["C"]) for m in doc["members"])
    return 10 * largest, f"10× the largest run's compute ({largest:.3g} FLOPs)"


def describe(doc: dict | None, echo=print) -> dict | None:
    """Print the family's phase, check and data_constrained section; return the section."""
    if doc is None:
        echo("no fit run: the refit did not fit the family")
        return None
    echo(f"\nrefit: {doc['status']}; phase {doc['phase']}: {doc['phases'].get('reason')}")
    if doc["status"] != "fitted":
        return None
    section = doc.get("data_constrained")
    if section is None or section.get("error"):
        echo("no data-constrained law: " + ("no run repeats its data" if section is None
                                             else section["error"]))  # fmt: skip
        return section
    if not section["identified"]:
        echo(f"data-constrained law: {section['note']}")
        return section
    tenth = section["epochs_worth_tenth"]
    lo, hi = section["intervals"].get("epochs_worth_tenth", (None, None))
    bound = section["at_bound"]
    echo(f"R*_D = {_with_interval(section, 'r_star_d')}, "
         f"R*_N = {_with_interval(section, 'r_star_n')}"
         + (f"; at the bound: {', '.join(bound)}" if bound else ""))  # fmt: skip
    prior = section.get("prior") or {}
    if prior.get("without_prior"):  # the prior's share: what the runs alone say
        alone = prior["without_prior"]
        echo(
            f"without the prior (R*_D = {prior['r_star_d']}, R*_N = {prior['r_star_n']}, "
            f"sigma {prior['sigma_log']} in log) the runs alone give R*_D = "
            f"{alone['r_star_d']:.3g}, R*_N = {alone['r_star_n']:.3g}"
            + ("; the values above lean on the prior" if prior["leans_on_prior"] else "")
        )
    echo(f"one more epoch is worth < 10 % of fresh data after {tenth:.3g} epochs"
         + ("" if lo is None else f" (95 % interval {lo:.3g}..{hi:.3g})"))  # fmt: skip
    echo(f"data-limited: {section['phase']['data_limited']} ({section['phase']['reason']})")
    for c in doc["check"]["criteria"]:
        if c["name"] == "epochs_worth_training":
            echo(f"check {doc['check_verdict']}; epochs_worth_training "
                 f"{'n/a' if c['passed'] is None else c['passed']}: {c['detail']}")  # fmt: skip
    flops, at = plan_budget(doc)
    echo(f"plan under the data budget at {at} (`mlflow-scaling plan --experiment E --family F"
         " --ignore-check` prints it at its target's compute):")  # fmt: skip
    for line in data_budget_lines({"data_budget": family_data_budget(doc, flops)}):
        echo("  " + line)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default=FAMILY)
    parser.add_argument("--family", default=FAMILY)
    parser.add_argument("--bootstrap", type=int, default=100, help="bootstrap replicates")
    parser.add_argument("--epochs", type=int, nargs="+", default=list(EPOCHS),
                        help="epoch counts of every size (default 1 2 4 8 16)")  # fmt: skip
    parser.add_argument("--pilot", action="store_true", help="train only, no MLflow")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    started = time.perf_counter()
    uri = None if args.pilot else args.tracking_uri
    train_grid(uri, args.experiment, args.family, epochs=tuple(args.epochs))
    if uri is not None:
        describe(refit(uri, args.experiment, args.family, args.bootstrap))
    print(f"\ndone in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
