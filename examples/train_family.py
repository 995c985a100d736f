"""Train a scaling family of byte-level GPTs on the Python standard library, tracked in MLflow.

Every model size is crossed with every token budget, so the family supports both the isoFLOP
view (Approach 2) and the parametric fit (Approach 3). Each run has its own learning-rate
schedule (warm-up, then cosine decay ending at its own last step), so each run's final
validation loss is a fair point for the law. The ``ScalingLawCallback`` logs N, D and C with
every run; ``MLFlowLogger`` logs the losses.

    python examples/train_family.py --tracking-uri sqlite:///mlflow.db [--quick]

Finished runs of the same family and shape are found again and reused, not retrained.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import MLFlowLogger
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stdlib_corpus import load_corpus  # noqa: E402
from tiny_gpt import ByteWindows, GPTConfig, TinyGPT  # noqa: E402

from lightning_callbacks import ScalingLawCallback  # noqa: E402

TAG_SHAPE = "demo.shape"
SEQ_LEN = 64
BATCH = 16
VALIDATION_WINDOWS = 1024


@dataclass(frozen=True)
class Shape:
    """One member of the family: a model shape and a number of optimizer steps."""

    n_layer: int
    d_model: int
    steps: int

    @property
    def key(self) -> str:
        return f"L{self.n_layer}-d{self.d_model}-s{self.steps}"

    @property
    def tokens(self) -> int:
        return self.steps * BATCH * SEQ_LEN

    def config(self, lr_scale: float = 1.0) -> GPTConfig:
        return GPTConfig(
            n_layer=self.n_layer,
            n_head=max(1, self.d_model // 32),
            d_model=self.d_model,
            seq_len=SEQ_LEN,
            lr=lr_scale * min(3e-3, 3e-3 * math.sqrt(64 / self.d_model)),
        )


# (n_layer, d_model): non-embedding parameters 12.8k, 56.6k, 100k, 336k (1.4 decades).
FULL_SIZES = ((1, 32), (2, 48), (2, 64), (3, 96))
FULL_STEPS = (400, 1000, 2500)
# Quick: 3.3k to 56.6k non-embedding parameters (1.2 decades), a third of the steps.
QUICK_SIZES = ((1, 16), (1, 32), (2, 32), (2, 48))
QUICK_STEPS = (60, 120, 240)


def plan(quick: bool) -> list[Shape]:
    sizes, steps = (QUICK_SIZES, QUICK_STEPS) if quick else (FULL_SIZES, FULL_STEPS)
    return [Shape(n_layer, d, s) for n_layer, d in sizes for s in steps]


class ScheduledGPT(TinyGPT):
    """TinyGPT with a warm-up and a cosine decay that ends at the run's own last step."""

    def __init__(self, config: GPTConfig, total_steps: int) -> None:
        super().__init__(config)
        self.total_steps = total_steps

    def configure_optimizers(self):
        optimizer = super().configure_optimizers()
        warmup = max(1, self.total_steps // 10)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, self.total_steps - warmup))
            return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class RandomWindows(Dataset):
    """``count`` windows drawn at fixed random offsets of the training bytes."""

    def __init__(self, data: torch.Tensor, count: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.data = data
        self.starts = torch.randint(0, data.numel() - SEQ_LEN - 1, (count,), generator=g)

    def __len__(self) -> int:
        return self.starts.numel()

    def __getitem__(self, i: int):
        s = int(self.starts[i])
        chunk = self.data[s : s + SEQ_LEN + 1]
        return chunk[:-1], chunk[1:]


def finished_shapes(tracking_uri: str, experiment: str, family: str) -> dict[str, str]:
    """Shape key -> run id of this family's finished runs (to reuse them)."""
    from mlflow import MlflowClient

    from mlflow_scaling.tracking import schema

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return {}
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"{schema.family_filter(family)} and attributes.status = 'FINISHED'",
        max_results=1000,
    )
    return {r.data.tags[TAG_SHAPE]: r.info.run_id for r in runs if TAG_SHAPE in r.data.tags}


def train_one(
    shape: Shape,
    corpus_train: torch.Tensor,
    validation: ByteWindows,
    *,
    tracking_uri: str,
    experiment: str,
    family: str,
    seed: int,
    progress: bool,
    lr_scale: float = 1.0,
) -> str:
    """Train one member and return its MLflow run id."""
    L.seed_everything(seed, verbose=False)
    model = ScheduledGPT(shape.config(lr_scale), total_steps=shape.steps)
    train = DataLoader(RandomWindows(corpus_train, shape.steps * BATCH, seed), batch_size=BATCH)
    val = DataLoader(validation, batch_size=64)
    logger = MLFlowLogger(
        experiment_name=experiment,
        tracking_uri=tracking_uri,
        run_name=f"{family}-{shape.key}",
        tags={TAG_SHAPE: shape.key},
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=shape.steps,
        max_epochs=1,
        logger=logger,
        callbacks=[ScalingLawCallback(family=family, log_every_n_steps=50)],
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=20,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, train, val)
    return logger.run_id


def train_family(
    *,
    tracking_uri: str,
    experiment: str = "scaling-demo",
    family: str = "stdlib-gpt",
    quick: bool = False,
    seed: int = 0,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    lr_scale: float = 1.0,
) -> dict[str, str]:
    """Train (or reuse) every member of the family; shape key -> run id.

    ``lr_scale`` multiplies every member's learning rate (a second family for a comparison).
    """
    from tqdm import tqdm

    torch.set_num_threads(1)  # tiny matrices: one thread per process is fastest on 2 cores
    corpus = load_corpus()
    data = torch.frombuffer(bytearray(corpus.train), dtype=torch.uint8).long()
    validation = ByteWindows(corpus.validation[: VALIDATION_WINDOWS * SEQ_LEN + 1], SEQ_LEN)
    shapes = plan(quick)
    done = finished_shapes(tracking_uri, experiment, family)
    reused = [s.key for s in shapes if s.key in done]
    if reused:
        echo(f"{family}: reusing {len(reused)} finished runs ({', '.join(reused)})")
    runs = {k: done[k] for k in reused}
    bar = tqdm(
        total=len(shapes), initial=len(reused), desc=f"family {family}", disable=not progress
    )
    started = time.perf_counter()
    for shape in shapes:
        if shape.key in runs:
            continue
        runs[shape.key] = train_one(
            shape, data, validation, tracking_uri=tracking_uri, experiment=experiment,
            family=family, seed=seed, progress=progress, lr_scale=lr_scale,
        )  # fmt: skip
        bar.update(1)
    bar.close()
    trained = len(shapes) - len(reused)
    echo(f"{family}: trained {trained} runs in {time.perf_counter() - started:.0f} s")
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default="scaling-demo")
    parser.add_argument("--family", default="stdlib-gpt")
    parser.add_argument("--quick", action="store_true", help="fewer, smaller runs (~2 minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    train_family(
        tracking_uri=args.tracking_uri, experiment=args.experiment, family=args.family,
        quick=args.quick, seed=args.seed, progress=not args.no_progress,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
